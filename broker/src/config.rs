//! Broker configuration (TOML file + command-line flags) and the per-topic
//! log configuration derived from it.
//!
//! Keys use Kafka's names with `.` replaced by `_` at the broker level
//! (`log_segment_bytes` ↔ `log.segment.bytes`); topic-level overrides use
//! Kafka's topic config names (`retention.ms`, `segment.bytes`, ...).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

/// Everything a broker reads at start-up. `kmon broker --print-default-config`
/// prints this struct with its defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// This broker's id in the cluster (node.id).
    pub broker_id: i32,
    /// Fault domain: brokers that fail together (power, network).
    pub fault_domain: String,
    /// Update domain: brokers rebooted together for maintenance.
    pub update_domain: String,
    /// Voters of the metadata quorum, `id@host:port,...` (the brokers' gRPC
    /// addresses). Empty: this broker is a single-node cluster on its own.
    pub controller_voters: String,
    /// A broker that has not heartbeated for this long is fenced and its
    /// partitions get new leaders (broker.session.timeout.ms).
    pub broker_session_timeout_ms: u64,
    /// How often a broker heartbeats the active controller.
    pub broker_heartbeat_interval_ms: u64,
    /// A follower that has not caught up for this long leaves the ISR
    /// (replica.lag.time.max.ms).
    pub replica_lag_time_max_ms: u64,
    /// Long-poll bound of follower fetches (replica.fetch.wait.max.ms).
    pub replica_fetch_wait_max_ms: u32,
    /// Bytes per follower fetch (replica.fetch.max.bytes).
    pub replica_fetch_max_bytes: u32,
    /// Default `min.insync.replicas` of new topics.
    pub min_insync_replicas: u32,
    /// Partitions of `__consumer_offsets` (offsets.topic.num.partitions).
    pub offsets_topic_num_partitions: u32,
    /// Replication factor of `__consumer_offsets` (capped by live brokers).
    pub offsets_topic_replication_factor: u32,
    /// Committed offsets of a group empty for this long are deleted
    /// (offsets.retention.minutes, in ms).
    pub offsets_retention_ms: u64,
    /// Smallest and largest session timeout a member may ask for.
    pub group_min_session_timeout_ms: u64,
    pub group_max_session_timeout_ms: u64,
    /// An empty group waits this long for more members before its first
    /// rebalance completes (group.initial.rebalance.delay.ms).
    pub group_initial_rebalance_delay_ms: u64,
    /// Commits kept per partition by the lag evaluator.
    pub group_lag_window: u32,
    /// Lag with no commit for this long is STOP.
    pub group_lag_stop_after_ms: u64,
    /// Data directories. A new partition goes to the least used one.
    pub data_dirs: Vec<PathBuf>,
    /// gRPC listen address (port 0 picks a free port; the bound address is
    /// printed on standard output).
    pub listen: String,
    /// Prometheus `/metrics` listen address.
    pub metrics_listen: String,
    /// Kafka wire-protocol listen address, HOST:PORT (port 0 picks a free
    /// port); empty serves no Kafka listener. Metadata advertises the bound
    /// address to Kafka clients.
    pub kafka_listen: String,
    /// PEM certificate chain the gRPC listener presents (and the broker
    /// presents when it dials other brokers). Empty: plain text. Reloaded on
    /// SIGHUP and when the file changes.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// PEM CA bundle: with it every peer (client, broker, agent) must
    /// present a certificate it signed (mutual TLS), and the broker checks
    /// other brokers against it.
    pub tls_ca: String,
    /// How a peer certificate's subject becomes a principal, Kafka's
    /// `ssl.principal.mapping.rules` format (`RULE:pattern/replacement/[LU]`,
    /// `DEFAULT` = the CN).
    pub tls_principal_mapping_rules: String,
    /// Principals that every ACL check allows, `;`-separated
    /// (`User:admin;User:broker`), Kafka's `super.users`. Brokers dial each
    /// other with their own certificate: list their principal here or grant
    /// it ClusterAction on the cluster.
    pub super_users: String,
    /// Once any ACL exists, whether a resource that no ACL names is open to
    /// everyone (Kafka's `allow.everyone.if.no.acl.found`, default false).
    pub allow_everyone_if_no_acl_found: bool,
    /// SASL mechanisms the Kafka listener requires before any other
    /// request (Kafka's `sasl.enabled.mechanisms`): empty (no SASL) or
    /// `SCRAM-SHA-512`, with users from `kmon user add`. With TLS on the
    /// listener this is Kafka's SASL_SSL, else SASL_PLAINTEXT.
    pub kafka_sasl_mechanisms: String,
    /// After SIGTERM or SIGINT, how long a broker may take to stop cleanly
    /// (finish requests, flush logs) before it exits anyway, in ms.
    pub shutdown_grace_ms: u64,
    /// Largest Kafka request frame accepted; a larger one closes the
    /// connection (socket.request.max.bytes).
    pub socket_request_max_bytes: u32,
    /// Count events for `/metrics` (false only to measure what metrics cost).
    pub metrics_enabled: bool,
    /// Segment size at which the active segment rolls (log.segment.bytes).
    pub log_segment_bytes: u64,
    /// Age at which the active segment rolls, in ms (log.roll.ms).
    pub log_roll_ms: i64,
    /// Delete segments older than this, in ms; -1 keeps them forever
    /// (log.retention.ms).
    pub log_retention_ms: i64,
    /// Delete old segments while a partition is larger than this; -1 means
    /// no size limit (log.retention.bytes).
    pub log_retention_bytes: i64,
    /// How often retention runs, in ms (log.retention.check.interval.ms);
    /// idle producers are forgotten on the same tick.
    pub log_retention_check_interval_ms: u64,
    /// An idempotent producer that wrote nothing to a partition for this
    /// long is forgotten there, in ms (producer.id.expiration.ms); its next
    /// batch is taken at whatever sequence it carries (as Kafka does).
    pub producer_id_expiration_ms: i64,
    /// `interval`: fsync every `log_flush_interval_ms`; `always`: fsync
    /// before acknowledging each produce (replicated copies every interval).
    pub log_flush_policy: FlushPolicy,
    /// Flush interval in ms (everything with `interval`, replicated copies
    /// with `always`).
    pub log_flush_interval_ms: u64,
    /// Bytes between two offset/time index entries (log.index.interval.bytes).
    pub log_index_interval_bytes: u32,
    /// Largest record batch accepted, in bytes (message.max.bytes).
    pub message_max_bytes: u32,
    /// Partitions of a topic created without a count (num.partitions).
    pub num_partitions: u32,
    /// Replication factor when a topic is created without one.
    pub default_replication_factor: u32,
    /// Longest a fetch may wait for data, in ms, whatever the client asks.
    pub fetch_max_wait_ms: u32,
    /// OTLP/gRPC collector (`http://host:port`) that receives this broker's
    /// spans and metrics; empty (the default) exports nothing.
    pub otlp_endpoint: String,
    /// How often metrics are exported over OTLP, in ms.
    pub otlp_interval_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_id: 1,
            fault_domain: "FD0".into(),
            update_domain: "UD0".into(),
            controller_voters: String::new(),
            broker_session_timeout_ms: 2_000,
            broker_heartbeat_interval_ms: 250,
            replica_lag_time_max_ms: 10_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 8 << 20,
            min_insync_replicas: 1,
            offsets_topic_num_partitions: 12,
            offsets_topic_replication_factor: 3,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            group_min_session_timeout_ms: 1_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 500,
            group_lag_window: 10,
            group_lag_stop_after_ms: 60_000,
            data_dirs: vec![PathBuf::from("kmon-data")],
            listen: "127.0.0.1:9092".into(),
            metrics_listen: "127.0.0.1:9644".into(),
            kafka_listen: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            tls_principal_mapping_rules: "DEFAULT".into(),
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            kafka_sasl_mechanisms: String::new(),
            socket_request_max_bytes: 100 << 20,
            shutdown_grace_ms: 30_000,
            metrics_enabled: true,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 7 * 24 * 3600 * 1000,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 5 * 60 * 1000,
            producer_id_expiration_ms: 24 * 3600 * 1000,
            log_flush_policy: FlushPolicy::Interval,
            log_flush_interval_ms: 1000,
            log_index_interval_bytes: 4096,
            message_max_bytes: 1_048_588,
            num_partitions: 1,
            default_replication_factor: 1,
            fetch_max_wait_ms: 30_000,
            otlp_endpoint: String::new(),
            otlp_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushPolicy {
    Interval,
    Always,
}

impl BrokerConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BrokerError::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| BrokerError::Config(format!("{}: {e}", path.display())))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    /// Rejects bad values with a message naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(BrokerError::Config(format!("{key}: {why}")));
        if self.data_dirs.is_empty() {
            return bad("data_dirs", "at least one data directory is needed".into());
        }
        for (key, addr) in [("listen", &self.listen), ("metrics_listen", &self.metrics_listen)] {
            if addr.parse::<SocketAddr>().is_err() {
                return bad(key, format!("'{addr}' is not HOST:PORT with a numeric host"));
            }
        }
        for mechanism in self.kafka_sasl_mechanism_list() {
            if mechanism != kmon_tls::scram::MECHANISM {
                return bad(
                    "kafka_sasl_mechanisms",
                    format!("'{mechanism}' is not supported (only {})", kmon_tls::scram::MECHANISM),
                );
            }
        }
        if !self.kafka_listen.is_empty() && self.kafka_listen.parse::<SocketAddr>().is_err() {
            return bad(
                "kafka_listen",
                format!("'{}' is not HOST:PORT with a numeric host (empty: no Kafka listener)", self.kafka_listen),
            );
        }
        if self.shutdown_grace_ms == 0 {
            return bad("shutdown_grace_ms", "must be > 0".into());
        }
        if self.socket_request_max_bytes < 1024 {
            return bad("socket_request_max_bytes", "must be at least 1024".into());
        }
        self.default_log_config().validate_all()?;
        if self.log_flush_interval_ms == 0 {
            return bad("log_flush_interval_ms", "must be > 0".into());
        }
        if self.producer_id_expiration_ms <= 0 {
            return bad("producer_id_expiration_ms", "must be > 0".into());
        }
        if self.log_retention_check_interval_ms == 0 {
            return bad("log_retention_check_interval_ms", "must be > 0".into());
        }
        if self.broker_id < 0 {
            return bad("broker_id", "must be >= 0".into());
        }
        self.voters()?;
        self.super_user_list()?;
        if self.broker_heartbeat_interval_ms == 0 || self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms
        {
            return bad(
                "broker_session_timeout_ms",
                "must be larger than broker_heartbeat_interval_ms (and the interval > 0)".into(),
            );
        }
        if self.num_partitions == 0 {
            return bad("num_partitions", "must be > 0".into());
        }
        if !self.otlp_endpoint.is_empty() {
            let ok = self
                .otlp_endpoint
                .parse::<tonic::codegen::http::Uri>()
                .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
            if !ok {
                return bad("otlp_endpoint", format!("'{}' is not http://HOST:PORT", self.otlp_endpoint));
            }
        }
        if self.otlp_interval_ms == 0 {
            return bad("otlp_interval_ms", "must be > 0".into());
        }
        Ok(())
    }

    /// `kafka_sasl_mechanisms`, comma-separated, upper-cased.
    pub fn kafka_sasl_mechanism_list(&self) -> Vec<String> {
        self.kafka_sasl_mechanisms.split(',').map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect()
    }

    /// `super_users` as principals; each must be `User:NAME`.
    pub fn super_user_list(&self) -> Result<Vec<String>> {
        let mut users = Vec::new();
        for user in self.super_users.split(';').map(str::trim).filter(|u| !u.is_empty()) {
            if user.strip_prefix("User:").is_none_or(str::is_empty) {
                return Err(BrokerError::Config(format!(
                    "super_users: '{user}' is not User:NAME (separate principals with ';')"
                )));
            }
            users.push(user.to_string());
        }
        Ok(users)
    }

    /// The topic-level configuration a topic gets when it sets nothing.
    pub fn default_log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.log_segment_bytes,
            segment_ms: self.log_roll_ms,
            retention_ms: self.log_retention_ms,
            retention_bytes: self.log_retention_bytes,
            max_message_bytes: self.message_max_bytes,
            index_interval_bytes: self.log_index_interval_bytes,
            min_insync_replicas: self.min_insync_replicas,
            unclean_leader_election: false,
            cleanup_policy: "delete".into(),
        }
    }

    /// The quorum's voters: id → gRPC address. Empty when this broker runs
    /// alone (it is then its own single voter).
    pub fn voters(&self) -> Result<BTreeMap<i32, String>> {
        let mut voters = BTreeMap::new();
        for entry in self.controller_voters.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| {
                BrokerError::Config(format!(
                    "controller_voters: '{entry}' {why} (expected id@host:port, comma-separated)"
                ))
            };
            let (id, addr) = entry.split_once('@').ok_or_else(|| bad("has no '@'"))?;
            let id: i32 = id.parse().map_err(|_| bad("has a non-numeric id"))?;
            addr.parse::<SocketAddr>().map_err(|_| bad("has an address that is not HOST:PORT"))?;
            if voters.insert(id, addr.to_string()).is_some() {
                return Err(bad("repeats an id"));
            }
        }
        Ok(voters)
    }

    /// Settings of the group coordinator.
    pub fn group_config(&self) -> crate::group::GroupConfig {
        crate::group::GroupConfig {
            offsets_partitions: self.offsets_topic_num_partitions.max(1),
            offsets_replication_factor: self.offsets_topic_replication_factor.max(1),
            min_session_timeout: Duration::from_millis(self.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(self.group_max_session_timeout_ms),
            initial_rebalance_delay: Duration::from_millis(self.group_initial_rebalance_delay_ms),
            offsets_retention: Duration::from_millis(self.offsets_retention_ms),
            lag: crate::group::lag::LagRules {
                window: self.group_lag_window.max(2) as usize,
                stop_after: Duration::from_millis(self.group_lag_stop_after_ms),
            },
        }
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.log_flush_interval_ms)
    }
}

/// A topic's effective log configuration (broker defaults + overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: u32,
    pub index_interval_bytes: u32,
    pub min_insync_replicas: u32,
    pub unclean_leader_election: bool,
    pub cleanup_policy: String,
}

/// The topic configs kmon knows, in the order `describe` lists them.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "max.message.bytes",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "unclean.leader.election.enable",
];

impl LogConfig {
    /// Whether the log cleaner keeps only the latest record per key.
    pub fn compacts(&self) -> bool {
        self.cleanup_policy.split(',').any(|p| p == "compact")
    }

    /// Whether segments past `retention.ms` / `retention.bytes` are dropped.
    pub fn deletes(&self) -> bool {
        self.cleanup_policy.split(',').any(|p| p == "delete")
    }

    /// Applies topic overrides (Kafka names) on top of `self`, rejecting
    /// unknown keys and bad values.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        config.validate_all()?;
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let invalid =
            |reason: &str| BrokerError::InvalidConfig { key: key.into(), value: value.into(), reason: reason.into() };
        let int = || value.trim().parse::<i64>().map_err(|_| invalid("not an integer"));
        match key {
            "cleanup.policy" => {
                // A list, as Kafka's: `compact,delete` both compacts and
                // drops segments past retention (Kafka Streams' windowed
                // changelogs). Kept in one spelling.
                let mut policies: Vec<&str> = value.split(',').map(str::trim).collect();
                policies.sort_unstable();
                policies.dedup();
                if policies.is_empty() || policies.iter().any(|p| *p != "delete" && *p != "compact") {
                    return Err(invalid("must be 'delete', 'compact' or 'compact,delete'"));
                }
                self.cleanup_policy = policies.join(",");
            }
            "max.message.bytes" => {
                self.max_message_bytes = u32::try_from(int()?).map_err(|_| invalid("must be between 0 and 2^32-1"))?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = u32::try_from(int()?).map_err(|_| invalid("must be >= 1"))?
            }
            "retention.bytes" => self.retention_bytes = int()?,
            "retention.ms" => self.retention_ms = int()?,
            "segment.bytes" => self.segment_bytes = u64::try_from(int()?).map_err(|_| invalid("must be positive"))?,
            "segment.ms" => self.segment_ms = int()?,
            "segment.index.bytes" => {
                // Accepted for compatibility; kmon's indexes grow as needed.
                int()?;
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("must be true or false")),
                }
            }
            _ => {
                return Err(BrokerError::InvalidConfig {
                    key: key.into(),
                    value: value.into(),
                    reason: format!("unknown topic config; known keys: {}", TOPIC_CONFIG_KEYS.join(", ")),
                });
            }
        }
        Ok(())
    }

    fn validate_all(&self) -> Result<()> {
        let invalid = |key: &str, value: String, reason: &str| {
            Err(BrokerError::InvalidConfig { key: key.into(), value, reason: reason.into() })
        };
        if self.segment_bytes < 1024 || self.segment_bytes > (1 << 31) - 1 {
            return invalid("segment.bytes", self.segment_bytes.to_string(), "must be between 1024 and 2147483647");
        }
        if self.segment_ms < 1 {
            return invalid("segment.ms", self.segment_ms.to_string(), "must be >= 1");
        }
        if self.retention_ms < -1 || self.retention_ms == 0 {
            return invalid("retention.ms", self.retention_ms.to_string(), "must be -1 (forever) or > 0");
        }
        if self.retention_bytes < -1 {
            return invalid("retention.bytes", self.retention_bytes.to_string(), "must be -1 (no limit) or >= 0");
        }
        if self.max_message_bytes < 64 {
            return invalid("max.message.bytes", self.max_message_bytes.to_string(), "must be >= 64");
        }
        if self.min_insync_replicas < 1 {
            return invalid("min.insync.replicas", self.min_insync_replicas.to_string(), "must be >= 1");
        }
        if self.index_interval_bytes == 0 {
            return invalid("log_index_interval_bytes", "0".into(), "must be > 0");
        }
        Ok(())
    }

    /// Every topic config with its effective value, for `describe`.
    pub fn entries(&self) -> Vec<(String, String)> {
        TOPIC_CONFIG_KEYS
            .iter()
            .map(|key| {
                let value = match *key {
                    "cleanup.policy" => self.cleanup_policy.clone(),
                    "max.message.bytes" => self.max_message_bytes.to_string(),
                    "min.insync.replicas" => self.min_insync_replicas.to_string(),
                    "retention.bytes" => self.retention_bytes.to_string(),
                    "retention.ms" => self.retention_ms.to_string(),
                    "segment.bytes" => self.segment_bytes.to_string(),
                    "segment.ms" => self.segment_ms.to_string(),
                    "segment.index.bytes" => "10485760".into(),
                    "unclean.leader.election.enable" => self.unclean_leader_election.to_string(),
                    _ => unreachable!("every key in TOPIC_CONFIG_KEYS has a value"),
                };
                (key.to_string(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_through_toml() {
        let config = BrokerConfig::default();
        let text = config.to_toml();
        let back: BrokerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.log_segment_bytes, config.log_segment_bytes);
        back.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<BrokerConfig>("log_segmnt_bytes = 5").unwrap_err();
        assert!(err.to_string().contains("log_segmnt_bytes"), "{err}");
    }

    #[test]
    fn topic_overrides_are_checked() {
        let base = BrokerConfig::default().default_log_config();
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "abc".to_string());
        let err = base.with_overrides(&o).unwrap_err().to_string();
        assert!(err.contains("retention.ms=abc") && err.contains("not an integer"), "{err}");
        o.clear();
        o.insert("retention.mss".to_string(), "1".to_string());
        assert!(base.with_overrides(&o).unwrap_err().to_string().contains("unknown topic config"));
        o.clear();
        o.insert("segment.bytes".to_string(), "4096".to_string());
        assert_eq!(base.with_overrides(&o).unwrap().segment_bytes, 4096);
    }

    #[test]
    fn cleanup_policy_is_a_list_of_compact_and_delete() {
        let base = BrokerConfig::default().default_log_config();
        let with =
            |policy: &str| base.with_overrides(&BTreeMap::from([("cleanup.policy".to_string(), policy.to_string())]));
        let both = with("delete, compact").unwrap();
        assert_eq!(both.cleanup_policy, "compact,delete");
        assert!(both.compacts() && both.deletes());
        let compact = with("compact").unwrap();
        assert!(compact.compacts() && !compact.deletes());
        assert!(base.deletes() && !base.compacts());
        let err = with("compact,forever").unwrap_err().to_string();
        assert!(err.contains("cleanup.policy=compact,forever") && err.contains("'compact,delete'"), "{err}");
    }
}
