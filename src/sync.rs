//! Locking that survives a panic elsewhere.
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a panic elsewhere poisoned it. The maps behind these locks stay
/// consistent (every update is a single insert or remove), so a panicking reconcile must not
/// take every later one down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `l`, also after a panic elsewhere poisoned it (see [`lock`]).
pub fn read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Writes `l`, also after a panic elsewhere poisoned it (see [`lock`]).
pub fn write<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
