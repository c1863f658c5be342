//! Locking that survives a panic elsewhere.
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a panic elsewhere poisoned it. The maps behind these locks stay
/// consistent (every update is a single insert or remove), so a panicking reconcile must not
/// take every later one down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
