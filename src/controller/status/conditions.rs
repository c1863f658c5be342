//! Building `metav1.Condition` lists, pure: `lastTransitionTime` moves only when a condition's
//! status changes, so an unchanged state yields an identical list and no status write.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition status values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// One condition the reconciler wants, before transition times are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub type_: &'static str,
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

impl Want {
    pub fn new(
        type_: &'static str,
        status: Status,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The conditions to store: `wanted` in order, each keeping its previous `lastTransitionTime`
/// when its status did not change, else stamped `now`. Conditions of other types that were
/// there before (written by someone else) are kept after ours.
pub fn merge(previous: &[Condition], wanted: &[Want], generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let mut out: Vec<Condition> = wanted
        .iter()
        .map(|w| {
            let before = previous.iter().find(|c| c.type_ == w.type_);
            let last_transition_time = match before {
                Some(c) if c.status == w.status.as_str() => c.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: w.type_.to_string(),
                status: w.status.as_str().to_string(),
                reason: w.reason.to_string(),
                message: w.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    out.extend(
        previous
            .iter()
            .filter(|c| !wanted.iter().any(|w| w.type_ == c.type_))
            .cloned(),
    );
    out
}

/// The condition of `type_` in a list.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The reason of `type_` when its status is True.
pub fn true_reason<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    find(conditions, type_)
        .filter(|c| c.status == "True")
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("timestamp"))
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let first = merge(
            &[],
            &[Want::new("Ready", Status::False, "Progressing", "wait")],
            Some(1),
            &t(100),
        );
        assert_eq!(first[0].last_transition_time, t(100));

        // Same status, new reason and message: time stays.
        let second = merge(
            &first,
            &[Want::new("Ready", Status::False, "Other", "still")],
            Some(2),
            &t(200),
        );
        assert_eq!(second[0].last_transition_time, t(100));
        assert_eq!(
            (second[0].reason.as_str(), second[0].observed_generation),
            ("Other", Some(2))
        );

        // Status flips: time moves.
        let third = merge(
            &second,
            &[Want::new("Ready", Status::True, "Ready", "ok")],
            Some(2),
            &t(300),
        );
        assert_eq!(third[0].last_transition_time, t(300));
    }

    #[test]
    fn unchanged_state_gives_an_identical_list() {
        let wanted = [
            Want::new("Ready", Status::True, "Ready", "ok"),
            Want::new("Stalled", Status::False, "NotStalled", ""),
        ];
        let once = merge(&[], &wanted, Some(3), &t(1));
        assert_eq!(merge(&once, &wanted, Some(3), &t(99)), once);
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let theirs = merge(
            &[],
            &[Want::new("Registered", Status::True, "Contacts", "1")],
            None,
            &t(1),
        );
        let merged = merge(
            &theirs,
            &[Want::new("Ready", Status::True, "Ready", "ok")],
            Some(1),
            &t(2),
        );
        assert_eq!(
            merged.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "Registered"]
        );
        assert_eq!(true_reason(&merged, "Registered"), Some("Contacts"));
        assert_eq!(true_reason(&merged, "Stalled"), None);
    }
}
