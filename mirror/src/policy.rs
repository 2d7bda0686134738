//! Which topics are mirrored and what they are called on the target: MM2's
//! DefaultReplicationPolicy (`<source-alias>.<topic>`) with its cycle
//! guard, and the topics never mirrored (internal ones). Pure.

use regex::Regex;

use crate::error::MirrorError;

/// The separator between an alias and a topic name, as MM2's default.
pub const SEPARATOR: &str = ".";

/// Names and filters of one source → target flow.
#[derive(Debug, Clone)]
pub struct ReplicationPolicy {
    pub source_alias: String,
    pub target_alias: String,
    /// Put before every mirrored topic's name (`<source-alias>.` unless set).
    pub prefix: String,
    topics: Regex,
    topics_exclude: Option<Regex>,
    groups: Regex,
    groups_exclude: Option<Regex>,
}

impl ReplicationPolicy {
    /// Compiles the filters; a bad regex is named with the flag it came from.
    pub fn new(
        source_alias: &str,
        target_alias: &str,
        prefix: Option<&str>,
        topics: &str,
        topics_exclude: Option<&str>,
        groups: &str,
        groups_exclude: Option<&str>,
    ) -> Result<Self, MirrorError> {
        for (flag, alias) in [("--source-alias", source_alias), ("--target-alias", target_alias)] {
            if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')) {
                return Err(MirrorError::BadArgument(format!(
                    "{flag} {alias:?}: use ASCII letters, digits, '_' and '-' (it becomes part of topic names)"
                )));
            }
        }
        if source_alias == target_alias {
            return Err(MirrorError::BadArgument(format!(
                "--source-alias and --target-alias are both {source_alias:?}: the cycle guard needs them different"
            )));
        }
        let compile = |flag: &str, pattern: &str| {
            // Anchored, as MM2's topics/groups filters match whole names.
            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| MirrorError::BadRegex {
                flag: flag.to_owned(),
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })
        };
        Ok(ReplicationPolicy {
            source_alias: source_alias.to_owned(),
            target_alias: target_alias.to_owned(),
            prefix: prefix.map_or_else(|| format!("{source_alias}{SEPARATOR}"), str::to_owned),
            topics: compile("--topics", topics)?,
            topics_exclude: topics_exclude.map(|p| compile("--topics-exclude", p)).transpose()?,
            groups: compile("--groups", groups)?,
            groups_exclude: groups_exclude.map(|p| compile("--groups-exclude", p)).transpose()?,
        })
    }

    /// The name `topic` gets on the target.
    pub fn remote_topic(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// Whether `topic` of the source is mirrored: it matches the filters,
    /// is not internal, and did not come from the target (a cycle).
    pub fn mirrors_topic(&self, topic: &str) -> bool {
        self.topics.is_match(topic)
            && !self.topics_exclude.as_ref().is_some_and(|r| r.is_match(topic))
            && !is_internal_topic(topic)
            && !self.is_cycle(topic)
    }

    /// Whether the offsets of `group` are checkpointed and synced.
    pub fn mirrors_group(&self, group: &str) -> bool {
        self.groups.is_match(group) && !self.groups_exclude.as_ref().is_some_and(|r| r.is_match(group))
    }

    /// MM2's cycle detection: a topic whose name says it came from the
    /// target (`<target-alias>.x`, at any depth: `a.<target-alias>.x`) is
    /// not sent back.
    pub fn is_cycle(&self, topic: &str) -> bool {
        let mut rest = topic;
        while let Some((alias, tail)) = rest.split_once(SEPARATOR) {
            if alias == self.target_alias {
                return true;
            }
            rest = tail;
        }
        false
    }

    /// The offset-syncs topic on the target (MM2's name with
    /// `offset-syncs.topic.location=target`).
    pub fn offset_syncs_topic(&self) -> String {
        format!("mm2-offset-syncs.{}.internal", self.source_alias)
    }

    /// The checkpoints topic on the target (MM2's name).
    pub fn checkpoints_topic(&self) -> String {
        format!("{}.checkpoints.internal", self.source_alias)
    }
}

/// Topics no mirror copies: MM2's internal topics (offset syncs,
/// checkpoints, heartbeats), Connect's, and `__`-prefixed ones.
pub fn is_internal_topic(topic: &str) -> bool {
    topic.starts_with("__")
        || topic.starts_with("mm2-")
        || topic.ends_with(".internal")
        || topic.ends_with("-internal")
        || topic == "heartbeats"
        || topic.ends_with(".heartbeats")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(topics: &str) -> ReplicationPolicy {
        ReplicationPolicy::new("east", "west", None, topics, None, ".*", Some("kmon-mirror.*")).unwrap()
    }

    #[test]
    fn renames_with_the_source_alias() {
        let p = policy(".*");
        assert_eq!(p.remote_topic("orders"), "east.orders");
        assert_eq!(p.offset_syncs_topic(), "mm2-offset-syncs.east.internal");
        assert_eq!(p.checkpoints_topic(), "east.checkpoints.internal");
        let custom = ReplicationPolicy::new("east", "west", Some("dr-"), ".*", None, ".*", None).unwrap();
        assert_eq!(custom.remote_topic("orders"), "dr-orders");
    }

    #[test]
    fn filters_whole_names_and_skips_internal_and_cycles() {
        let p = policy("orders.*|payments");
        assert!(p.mirrors_topic("orders") && p.mirrors_topic("orders-eu") && p.mirrors_topic("payments"));
        assert!(!p.mirrors_topic("payments2"), "anchored");
        let all = policy(".*");
        for never in [
            "west.orders",
            "north.west.orders",
            "mm2-offset-syncs.west.internal",
            "east.checkpoints.internal",
            "__consumer_offsets",
            "heartbeats",
        ] {
            assert!(!all.mirrors_topic(never), "{never}");
        }
        // Mirrored from elsewhere, not from the target: copied on (a chain).
        assert!(all.mirrors_topic("north.orders"));
        assert!(all.mirrors_group("app") && !all.mirrors_group("kmon-mirror.east"));
    }

    #[test]
    fn bad_patterns_and_aliases_are_named() {
        let err = ReplicationPolicy::new("east", "west", None, "(", None, ".*", None).unwrap_err().to_string();
        assert!(err.contains("--topics") && err.contains("\"(\""), "{err}");
        let err = ReplicationPolicy::new("east", "west", None, ".*", None, "[", None).unwrap_err().to_string();
        assert!(err.contains("--groups"), "{err}");
        assert!(ReplicationPolicy::new("a.b", "west", None, ".*", None, ".*", None).is_err());
        assert!(ReplicationPolicy::new("same", "same", None, ".*", None, ".*", None).is_err());
    }
}
