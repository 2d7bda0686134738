//! Kafka's topic name rules.

use crate::error::{BrokerError, Result};

pub const MAX_TOPIC_NAME_LEN: usize = 249;
pub const MAX_PARTITIONS: u32 = 100_000;

/// Kafka's topic name rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Err(BrokerError::InvalidTopicName { name: name.into(), reason: reason.into() });
    if name.is_empty() {
        return invalid("a topic name cannot be empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(&format!("{} characters, at most {MAX_TOPIC_NAME_LEN} are allowed", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return invalid(&format!("character {bad:?} is not allowed; use only ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// Checks that `name` may be created next to `existing` topics: valid, not
/// taken, and not colliding with another name that differs only by '.'
/// versus '_' (their metric names would be the same, so Kafka refuses it).
pub fn check_new_topic<'a>(name: &str, existing: impl Iterator<Item = &'a String>) -> Result<()> {
    validate_topic_name(name)?;
    let metric_name = |n: &str| n.replace('.', "_");
    for other in existing {
        if other == name {
            return Err(BrokerError::TopicAlreadyExists(name.into()));
        }
        if metric_name(other) == metric_name(name) {
            return Err(BrokerError::InvalidTopicName {
                name: name.into(),
                reason: format!(
                    "collides with existing topic '{other}' ('.' and '_' are treated alike in metric names)"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules() {
        for ok in ["orders", "a.b_c-d", "X9", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "has space", "ümlaut", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn duplicates_and_collisions_are_refused() {
        let existing = ["a.b".to_string()];
        assert!(matches!(check_new_topic("a.b", existing.iter()), Err(BrokerError::TopicAlreadyExists(_))));
        assert!(matches!(check_new_topic("a_b", existing.iter()), Err(BrokerError::InvalidTopicName { .. })));
        check_new_topic("a-b", existing.iter()).unwrap();
    }
}
