//! [`GroupConsumerConfig`]: the group consumer's settings, Kafka's
//! defaults, and the checks made before connecting.

use std::str::FromStr;
use std::time::Duration;

use crate::connection::Security;
use crate::consumer::ConsumerConfig;
use crate::error::ClientError;
use crate::group::assignor::{Assignor, RebalanceProtocol};
use crate::types::OffsetSpec;

/// Where a member starts reading a partition the group has committed
/// nothing for (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset: only records produced from now on (Kafka's
    /// default).
    #[default]
    Latest,
}

impl FromStr for AutoOffsetReset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            other => Err(format!("expected earliest or latest, got {other:?}")),
        }
    }
}

impl From<AutoOffsetReset> for OffsetSpec {
    fn from(reset: AutoOffsetReset) -> Self {
        match reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
        }
    }
}

/// Group consumer settings; [`GroupConsumerConfig::new`] gives Kafka's
/// defaults.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// Any broker, `HOST:PORT`.
    pub bootstrap: String,
    pub group_id: String,
    /// Shown by `DescribeGroup`.
    pub client_id: String,
    /// Static membership (`group.instance.id`): a restarted member with the
    /// same id gets its partitions back without a rebalance, and `close`
    /// does not leave the group.
    pub group_instance_id: Option<String>,
    /// The coordinator removes a member it has not heard from for this
    /// long (default 10 s).
    pub session_timeout: Duration,
    /// Between two heartbeats (default 3 s, at most a third of the session
    /// timeout is advised).
    pub heartbeat_interval: Duration,
    /// Longest time between two `poll` calls before the member leaves the
    /// group; also the rebalance timeout sent in JoinGroup (default 5 min).
    pub max_poll_interval: Duration,
    /// Assignors offered, by preference (default `range`,
    /// `cooperative-sticky`; see the module docs).
    pub assignors: Vec<Assignor>,
    /// Commit the positions of returned records periodically, on revocation
    /// and on close (default true).
    pub auto_commit: bool,
    /// Default 5 s.
    pub auto_commit_interval: Duration,
    /// Default [`AutoOffsetReset::Latest`].
    pub auto_offset_reset: AutoOffsetReset,
    /// Most records one `poll` returns (default 500); the rest wait for
    /// the next `poll`.
    pub max_poll_records: usize,
    /// How often the topic list is re-read (a pattern subscription picks
    /// up new topics; the leader notices partition count changes);
    /// default 10 s.
    pub metadata_max_age: Duration,
    /// Fetch long-poll bound, also the longest a `poll` without records
    /// takes when the group is stable (default 500 ms).
    pub max_wait: Duration,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub partition_max_bytes: u32,
    /// Added to `max_wait` to bound a fetch round trip.
    pub request_timeout: Duration,
    /// TLS and credentials for this member's connections (default `None`:
    /// this process's settings).
    pub security: Option<Security>,
}

impl GroupConsumerConfig {
    pub fn new(bootstrap: impl Into<String>, group_id: impl Into<String>) -> Self {
        let fetch = ConsumerConfig::new("");
        GroupConsumerConfig {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            client_id: "kmon-consumer".to_owned(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            auto_offset_reset: AutoOffsetReset::Latest,
            max_poll_records: 500,
            metadata_max_age: Duration::from_secs(10),
            max_wait: fetch.max_wait,
            min_bytes: fetch.min_bytes,
            max_bytes: fetch.max_bytes,
            partition_max_bytes: fetch.partition_max_bytes,
            request_timeout: fetch.request_timeout,
            security: None,
        }
    }

    /// Rejects settings the coordinator or the protocol cannot work with.
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |reason: String| Err(ClientError::InvalidArgument(reason));
        if self.group_id.is_empty() {
            return invalid("the group id is empty".into());
        }
        if self.assignors.is_empty() {
            return invalid("no assignor configured".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return invalid(format!(
                "the heartbeat interval ({:?}) must be positive and below the session timeout ({:?})",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        if millis(self.session_timeout).is_none() || millis(self.max_poll_interval).is_none() {
            return invalid("session timeout and max poll interval must fit in u32 milliseconds".into());
        }
        if self.group_instance_id.as_deref() == Some("") {
            return invalid("the group instance id is empty (leave it unset for a dynamic member)".into());
        }
        Ok(())
    }

    pub(super) fn fetch_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            bootstrap: self.bootstrap.clone(),
            max_wait: self.max_wait,
            min_bytes: self.min_bytes,
            max_bytes: self.max_bytes,
            partition_max_bytes: self.partition_max_bytes,
            request_timeout: self.request_timeout,
            security: self.security.clone(),
        }
    }

    pub(super) fn protocol(&self) -> RebalanceProtocol {
        Assignor::common_protocol(&self.assignors)
    }
}

pub(super) fn millis(duration: Duration) -> Option<u32> {
    u32::try_from(duration.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_s() {
        let config = GroupConsumerConfig::new("127.0.0.1:9092", "g");
        assert_eq!(config.session_timeout, Duration::from_secs(10));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(config.max_poll_interval, Duration::from_secs(300));
        assert_eq!(config.auto_commit_interval, Duration::from_secs(5));
        assert!(config.auto_commit);
        assert_eq!(config.auto_offset_reset, AutoOffsetReset::Latest);
        assert_eq!(config.assignors, [Assignor::Range, Assignor::CooperativeSticky]);
        assert_eq!(config.protocol(), RebalanceProtocol::Eager);
        config.validate().unwrap();
    }

    #[test]
    fn bad_settings_are_refused() {
        let base = GroupConsumerConfig::new("127.0.0.1:9092", "g");
        let mut config = base.clone();
        config.group_id.clear();
        assert!(config.validate().unwrap_err().to_string().contains("group id"));
        let mut config = base.clone();
        config.heartbeat_interval = config.session_timeout;
        assert!(config.validate().unwrap_err().to_string().contains("heartbeat interval"));
        let mut config = base.clone();
        config.assignors.clear();
        assert!(config.validate().is_err());
        let mut config = base.clone();
        config.group_instance_id = Some(String::new());
        assert!(config.validate().is_err());
        let mut config = base;
        config.max_poll_interval = Duration::from_secs(u64::from(u32::MAX));
        assert!(config.validate().is_err());
    }

    #[test]
    fn auto_offset_reset_parses() {
        assert_eq!("earliest".parse::<AutoOffsetReset>().unwrap(), AutoOffsetReset::Earliest);
        assert_eq!("latest".parse::<AutoOffsetReset>().unwrap(), AutoOffsetReset::Latest);
        assert!("none".parse::<AutoOffsetReset>().is_err());
        assert_eq!(OffsetSpec::from(AutoOffsetReset::Earliest), OffsetSpec::Earliest);
    }
}
