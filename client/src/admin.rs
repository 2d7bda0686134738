//! Topic administration, offsets and cluster metadata.
//!
//! Topic calls and `Metadata` go to any broker; `ListOffsets` goes to each
//! partition's leader and is retried on leader changes (see `router`).
//! The consumer-group calls are in `group::admin` (they go to the group's
//! coordinator; `list_groups` asks every broker).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kmon_proto::v1 as pb;
/// One access control list entry, as the broker API carries it.
pub use kmon_proto::v1::AclBinding;

use crate::connection::{KmonClient, Security};
use crate::convert::offset_spec;
use crate::error::ClientError;
use crate::router::Router;
use crate::types::{
    ClusterMetadata, LeaderElection, OffsetSpec, PartitionMove, PartitionOffset, ReassignmentStatus, RebalancePlan,
    TopicDescription,
};

/// How long `list_offsets` keeps retrying leader errors.
const LEADER_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Admin client. Cheap to clone (shares the connections and the metadata
/// cache).
#[derive(Debug, Clone)]
pub struct Admin {
    pub(crate) router: Arc<Router>,
}

impl Admin {
    /// Connects to a broker (`HOST:PORT`); the others are found through
    /// `Metadata`.
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        Ok(Admin { router: Router::connect(bootstrap, None).await? })
    }

    /// [`Admin::connect`] with connections secured by `security` instead
    /// of this process's settings.
    pub async fn connect_with(bootstrap: &str, security: &Security) -> Result<Self, ClientError> {
        Ok(Admin { router: Router::connect(bootstrap, Some(security)).await? })
    }

    /// Wraps an existing connection (used as the bootstrap broker).
    pub fn from_client(client: KmonClient) -> Self {
        Admin { router: Router::from_client(client) }
    }

    pub(crate) fn from_router(router: Arc<Router>) -> Self {
        Admin { router }
    }

    /// Creates a topic; `replication_factor` 0 means the broker default.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: Vec<(String, String)>,
    ) -> Result<TopicDescription, ClientError> {
        Ok(self.create_topic_placed(name, partitions, replication_factor, configs).await?.0)
    }

    /// Like [`Admin::create_topic`], also returning the broker's placement
    /// note: which domain constraint it had to relax, if any.
    pub async fn create_topic_placed(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: Vec<(String, String)>,
    ) -> Result<(TopicDescription, Option<String>), ClientError> {
        let request = pb::CreateTopicRequest {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: configs.into_iter().map(|(key, value)| pb::TopicConfigEntry { key, value }).collect(),
        };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.create_topic(request).await }
            })
            .await?;
        let note = (!response.placement_note.is_empty()).then_some(response.placement_note);
        Ok((topic_from(response.topic, name)?, note))
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicDescription>, ClientError> {
        let response = self
            .router
            .any_broker(|mut client| async move { client.list_topics(pb::ListTopicsRequest {}).await })
            .await?;
        Ok(response.topics.into_iter().map(Into::into).collect())
    }

    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        let request = pb::DescribeTopicRequest { name: name.to_owned() };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.describe_topic(request).await }
            })
            .await?;
        topic_from(response.topic, name)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = pb::DeleteTopicRequest { name: name.to_owned() };
        self.router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.delete_topic(request).await }
            })
            .await?;
        Ok(())
    }

    /// Resolves offsets of several partitions: one request per partition
    /// leader, retried on leader changes for up to 30 s.
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, u32, OffsetSpec)],
    ) -> Result<Vec<PartitionOffset>, ClientError> {
        let items: Vec<pb::ListOffsetsPartition> = partitions
            .iter()
            .map(|&(topic, partition, spec)| {
                let (spec, timestamp_ms) = offset_spec(spec);
                pb::ListOffsetsPartition { topic: topic.to_owned(), partition, spec: spec.into(), timestamp_ms }
            })
            .collect();
        for &(topic, _, _) in partitions {
            // Loads the leaders of topics not yet in the cache.
            self.router.partition_count(topic).await?;
        }
        let deadline = Instant::now() + LEADER_RETRY_TIMEOUT;
        let offsets = self
            .router
            .call_leaders(
                items,
                |p: &pb::ListOffsetsPartition| (p.topic.as_str(), p.partition),
                deadline,
                |mut client, partitions| async move {
                    let response = client.list_offsets(pb::ListOffsetsRequest { partitions }).await?;
                    Ok(response.into_inner().partitions)
                },
            )
            .await?;
        Ok(offsets.into_iter().map(Into::into).collect())
    }

    /// Resolves one partition's offset.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<PartitionOffset, ClientError> {
        self.list_offsets(&[(topic, partition, spec)])
            .await?
            .into_iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .ok_or_else(|| {
                ClientError::InvalidArgument(format!("the broker returned no offset for {topic}-{partition}"))
            })
    }

    /// Brokers and topics; an empty `topics` asks for every topic.
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata, ClientError> {
        self.router.metadata(topics).await
    }

    /// A rebalance plan (any broker; nothing moves). Only `topics` may move;
    /// empty: every topic.
    pub async fn plan_rebalance(&self, topics: &[&str]) -> Result<RebalancePlan, ClientError> {
        let request = pb::PlanRebalanceRequest { topics: topics.iter().map(|t| (*t).to_owned()).collect() };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.plan_rebalance(request).await }
            })
            .await?;
        Ok(response.into())
    }

    /// Starts moving partitions (usually a plan's moves); returns the
    /// partitions and bytes that started moving. With no moves and a
    /// reassignment in progress, only its throttle changes.
    /// `throttle_bytes_per_sec`: per broker and direction; None: unthrottled.
    pub async fn execute_reassignment(
        &self,
        moves: &[PartitionMove],
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<(u32, u64), ClientError> {
        let request = pb::ExecuteReassignmentRequest {
            moves: moves
                .iter()
                .map(|m| pb::PartitionMove {
                    topic: m.topic.clone(),
                    partition: m.partition,
                    from_replicas: m.from_replicas.clone(),
                    to_replicas: m.to_replicas.clone(),
                    bytes_to_move: m.bytes_to_move,
                })
                .collect(),
            throttle_bytes_per_sec: throttle_bytes_per_sec.unwrap_or(0),
        };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.execute_reassignment(request).await }
            })
            .await?;
        Ok((response.partitions, response.bytes))
    }

    /// The reassignment in progress, with bytes left to copy.
    pub async fn reassignment_status(&self) -> Result<ReassignmentStatus, ClientError> {
        let response = self
            .router
            .any_broker(|mut client| async move { client.reassignment_status(pb::ReassignmentStatusRequest {}).await })
            .await?;
        Ok(response.into())
    }

    /// Reverts every pending move; returns (reverted, kept moving).
    pub async fn cancel_reassignment(&self) -> Result<(u32, u32), ClientError> {
        let response = self
            .router
            .any_broker(|mut client| async move { client.cancel_reassignment(pb::CancelReassignmentRequest {}).await })
            .await?;
        Ok((response.reverted, response.kept))
    }

    /// Moves leadership to each partition's preferred replica where it is
    /// in sync and alive; `topics` empty: every topic.
    pub async fn elect_preferred_leaders(&self, topics: &[&str]) -> Result<LeaderElection, ClientError> {
        let request = pb::ElectLeadersRequest { topics: topics.iter().map(|t| (*t).to_owned()).collect() };
        let r = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.elect_leaders(request).await }
            })
            .await?;
        Ok(LeaderElection { moved: r.moved, already_preferred: r.already_preferred, not_eligible: r.not_eligible })
    }

    /// Adds ACLs; returns how many were new. Enumerations go by name
    /// (`Topic`, `Prefixed`, `Write`, `Deny`...); the broker checks them.
    pub async fn create_acls(&self, acls: Vec<AclBinding>) -> Result<u32, ClientError> {
        let request = pb::CreateAclsRequest { acls };
        let r = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.create_acls(request).await }
            })
            .await?;
        Ok(r.created)
    }

    /// Every ACL of the cluster.
    pub async fn list_acls(&self) -> Result<Vec<AclBinding>, ClientError> {
        let r =
            self.router.any_broker(|mut client| async move { client.list_acls(pb::ListAclsRequest {}).await }).await?;
        Ok(r.acls)
    }

    /// Removes exactly these ACLs; returns how many existed.
    pub async fn delete_acls(&self, acls: Vec<AclBinding>) -> Result<u32, ClientError> {
        let request = pb::DeleteAclsRequest { acls };
        let r = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.delete_acls(request).await }
            })
            .await?;
        Ok(r.deleted)
    }

    /// Adds SASL/SCRAM-SHA-512 user `user` with `password`, or changes its
    /// password; whether it existed. The password is salted and hashed
    /// here: only the salted password travels (over TLS, if configured).
    pub async fn upsert_scram_user(&self, user: &str, password: &str, iterations: u32) -> Result<bool, ClientError> {
        let fresh = kmon_tls::ScramCredential::generate(password, iterations)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let salted = kmon_tls::scram::salted_password(password.as_bytes(), &fresh.salt, iterations)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let request = pb::UpsertScramUserRequest {
            user: user.into(),
            mechanism: kmon_tls::scram::MECHANISM.into(),
            iterations,
            salt: fresh.salt.into(),
            salted_password: salted.into(),
        };
        let r = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.upsert_scram_user(request).await }
            })
            .await?;
        Ok(r.replaced)
    }

    /// Removes SCRAM user `user` (NotFound if there is none).
    pub async fn delete_scram_user(&self, user: &str) -> Result<(), ClientError> {
        let request = pb::DeleteScramUserRequest { user: user.into() };
        self.router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.delete_scram_user(request).await }
            })
            .await?;
        Ok(())
    }

    /// The SCRAM users: name, mechanism, iterations (never a key).
    pub async fn list_scram_users(&self) -> Result<Vec<pb::ScramUser>, ClientError> {
        let r = self
            .router
            .any_broker(|mut client| async move { client.list_scram_users(pb::ListScramUsersRequest {}).await })
            .await?;
        Ok(r.users)
    }

    /// The metadata quorum's voters as `ID@HOST:PORT,...` (what a new
    /// broker's `--controller-voters` needs).
    pub async fn controller_voters(&self) -> Result<String, ClientError> {
        let response = self
            .router
            .any_broker(|mut client| async move { client.metadata(pb::MetadataRequest { topics: vec![] }).await })
            .await?;
        Ok(response.controller_voters)
    }

    /// Asks to remove a broker. Scale-down is not supported: the broker
    /// always refuses (`ErrorCode::InvalidKafkaScaleDownRequest`, the
    /// message says why and what to do instead) and nothing changes.
    pub async fn remove_broker(&self, broker_id: i32) -> Result<(), ClientError> {
        let request = pb::RemoveBrokerRequest { broker_id };
        self.router.any_broker(|mut client| async move { client.remove_broker(request).await }).await?;
        Ok(())
    }
}

fn topic_from(topic: Option<pb::TopicDescription>, name: &str) -> Result<TopicDescription, ClientError> {
    topic
        .map(Into::into)
        .ok_or_else(|| ClientError::InvalidArgument(format!("the broker's answer for topic {name:?} was empty")))
}

/// The throttle of a reassignment (`--throttle`) in bytes/s.
/// Parses a rate: `50MB/s`, `512KiB/s`, `2MB`, `1000000` (bytes/s).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("invalid rate {text:?}: expected e.g. 50MB/s, 512KiB/s or 1000000"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!("invalid rate {text:?}: unknown unit {other:?} (use B, KB, MB, GB, KiB, MiB, GiB)"));
        }
    };
    let rate = (value * scale).round() as u64;
    if rate == 0 {
        return Err(format!("invalid rate {text:?}: must be positive"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_rate("50MB/s"), Ok(50_000_000));
        assert_eq!(parse_rate("512KiB/s"), Ok(512 * 1024));
        assert_eq!(parse_rate("2.5mb"), Ok(2_500_000));
        assert_eq!(parse_rate("1000000"), Ok(1_000_000));
        assert!(parse_rate("fast").unwrap_err().contains("\"fast\""));
        assert!(parse_rate("5 furlongs/s").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("0MB/s").unwrap_err().contains("positive"));
    }
}
