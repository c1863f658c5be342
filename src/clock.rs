//! Time as the status stores it.
use k8s_openapi::jiff::Timestamp;

/// Now, in whole seconds: status timestamps are serialized with second precision, so a finer
/// one in a desired status would differ from the stored one on every comparison and cause a
/// write each time.
pub fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}
