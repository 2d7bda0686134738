//! What one refresh gathers: plain data, built by [`crate::client`] from
//! the cluster and by hand in tests.

use std::collections::{BTreeMap, BTreeSet};

use kmon_client::{BrokerInfo, ClusterMetadata, GroupDescription, GroupListing, PartitionDescription, RebalancePlan};

/// One refresh of the cluster's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was taken (ms since the Unix epoch).
    pub at_ms: u64,
    /// The broker that answered.
    pub source: String,
    pub metadata: Metadata,
    pub groups: Vec<Group>,
    /// Why some groups may be missing: coordinators that did not answer,
    /// or the whole `DescribeGroups` failing.
    pub group_gaps: Vec<String>,
    /// Cluster throughput (sum of the brokers' rates); `None` until two
    /// scrapes give a rate.
    pub throughput: Option<Throughput>,
    /// Messages in per second by topic.
    pub topic_rates: BTreeMap<String, f64>,
    pub nodes: Vec<NodeStats>,
    /// What a rebalance would move (asked every few refreshes; `None`
    /// until asked).
    pub plan: Option<Result<RebalancePlan, String>>,
}

/// The brokers, controller and topics (the client's `ClusterMetadata`).
pub type Metadata = ClusterMetadata;

/// A group: its listing, and its description unless describing failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub listing: GroupListing,
    pub description: Result<GroupDescription, String>,
}

/// Burrow-style status, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupStatus {
    Ok,
    Warn,
    Rewind,
    Stall,
    Stop,
    Err,
}

impl GroupStatus {
    pub fn parse(text: &str) -> GroupStatus {
        match text {
            "OK" => GroupStatus::Ok,
            "WARN" => GroupStatus::Warn,
            "REWIND" => GroupStatus::Rewind,
            "STALL" => GroupStatus::Stall,
            "STOP" => GroupStatus::Stop,
            _ => GroupStatus::Err,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "OK",
            GroupStatus::Warn => "WARN",
            GroupStatus::Rewind => "REWIND",
            GroupStatus::Stall => "STALL",
            GroupStatus::Stop => "STOP",
            GroupStatus::Err => "ERR",
        }
    }
}

impl Group {
    /// ERR when it could not be described; otherwise the worst partition
    /// status, or the group's own status when it has no partitions.
    pub fn status(&self) -> GroupStatus {
        match &self.description {
            Err(_) => GroupStatus::Err,
            Ok(d) => d
                .partitions
                .iter()
                .map(|p| GroupStatus::parse(&p.status))
                .max()
                .unwrap_or_else(|| GroupStatus::parse(&d.status)),
        }
    }

    pub fn total_lag(&self) -> i64 {
        self.description.as_ref().map(|d| d.partitions.iter().map(|p| p.lag.max(0)).sum()).unwrap_or(0)
    }

    pub fn id(&self) -> &str {
        &self.listing.group_id
    }
}

/// Cluster rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Throughput {
    pub messages_in: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
}

/// One node agent's figures (rates per second; the fullest filesystem).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeStats {
    pub node: String,
    pub metrics_address: String,
    /// Set when its `/metrics` could not be read.
    pub error: Option<String>,
    pub disk_mount: String,
    pub disk_size: f64,
    pub disk_avail: f64,
    pub disk_read_rate: Option<f64>,
    pub disk_write_rate: Option<f64>,
    pub net_rx_rate: Option<f64>,
    pub net_tx_rate: Option<f64>,
    /// Receive + transmit errors and drops (totals).
    pub net_errors: f64,
    pub net_drops: f64,
    /// Busy fraction (0–1) since the previous scrape.
    pub cpu_busy: Option<f64>,
    pub mem_total: f64,
    pub mem_available: f64,
}

impl NodeStats {
    /// Used fraction of the fullest filesystem (0 when unknown).
    pub fn disk_used_fraction(&self) -> f64 {
        if self.disk_size > 0.0 { (self.disk_size - self.disk_avail) / self.disk_size } else { 0.0 }
    }

    pub fn mem_used_fraction(&self) -> f64 {
        if self.mem_total > 0.0 { (self.mem_total - self.mem_available) / self.mem_total } else { 0.0 }
    }
}

/// Per-broker counts derived from the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerLoad {
    pub replicas: usize,
    pub leaders: usize,
    /// Partitions it leads whose ISR is smaller than the replica set.
    pub under_replicated: usize,
}

pub fn is_under_replicated(p: &PartitionDescription) -> bool {
    p.replicas.iter().any(|r| !p.isr.contains(r))
}

pub fn is_offline(p: &PartitionDescription) -> bool {
    p.leader < 0
}

impl Snapshot {
    pub fn partitions(&self) -> impl Iterator<Item = (&str, &PartitionDescription)> {
        self.metadata.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.metadata.brokers.iter().find(|b| b.id == id)
    }

    pub fn load(&self, broker: i32) -> BrokerLoad {
        let mut load = BrokerLoad::default();
        for (_, p) in self.partitions() {
            if p.replicas.contains(&broker) {
                load.replicas += 1;
            }
            if p.leader == broker {
                load.leaders += 1;
                if is_under_replicated(p) {
                    load.under_replicated += 1;
                }
            }
        }
        load
    }

    pub fn under_replicated(&self) -> usize {
        self.partitions().filter(|(_, p)| is_under_replicated(p)).count()
    }

    /// Partitions with fewer in-sync replicas than their topic's
    /// `min.insync.replicas` (acks=all produce fails on them).
    pub fn under_min_isr(&self) -> usize {
        self.metadata
            .topics
            .iter()
            .map(|t| {
                let min = t
                    .configs
                    .iter()
                    .find(|(k, _)| k == "min.insync.replicas")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(1);
                t.partitions.iter().filter(|p| p.isr.len() < min).count()
            })
            .sum()
    }

    /// The node agent on a broker's host (matched by the host part of the
    /// addresses), if one reports.
    pub fn node_of(&self, broker: &BrokerInfo) -> Option<&NodeStats> {
        let host = |address: &str| address.rsplit_once(':').map_or(address.to_owned(), |(h, _)| h.to_owned());
        let broker_host = host(&broker.address);
        self.nodes.iter().find(|n| n.error.is_none() && host(&n.metrics_address) == broker_host)
    }

    pub fn offline(&self) -> usize {
        self.partitions().filter(|(_, p)| is_offline(p)).count()
    }

    /// Sorted fault domains and update domains of the brokers.
    pub fn domains(&self) -> (Vec<String>, Vec<String>) {
        let fds: BTreeSet<&str> = self.metadata.brokers.iter().map(|b| b.fault_domain.as_str()).collect();
        let uds: BTreeSet<&str> = self.metadata.brokers.iter().map(|b| b.update_domain.as_str()).collect();
        (fds.into_iter().map(str::to_owned).collect(), uds.into_iter().map(str::to_owned).collect())
    }

    /// The two-domain rule (as the balance planner has it): replicas span
    /// min(#FD, RF) fault domains and min(#UD, RF) update domains, counting
    /// the domains of the alive brokers.
    pub fn spans_domains(&self, replicas: &[i32]) -> bool {
        self.domain_rule().spans(replicas)
    }

    /// The two-domain rule with its inputs worked out once, for checking
    /// many partitions.
    pub fn domain_rule(&self) -> DomainRule<'_> {
        let alive = self.metadata.brokers.iter().filter(|b| b.alive);
        DomainRule {
            fault_domains: alive.clone().map(|b| &b.fault_domain).collect::<BTreeSet<_>>().len(),
            update_domains: alive.map(|b| &b.update_domain).collect::<BTreeSet<_>>().len(),
            domains: self
                .metadata
                .brokers
                .iter()
                .map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str())))
                .collect(),
        }
    }

    /// Partitions violating the two-domain rule, as `topic-partition`.
    pub fn domain_violations(&self) -> Vec<String> {
        let rule = self.domain_rule();
        self.partitions()
            .filter(|(_, p)| !rule.spans(&p.replicas))
            .map(|(t, p)| format!("{t}-{}", p.partition))
            .collect()
    }
}

/// See [`Snapshot::domain_rule`].
#[derive(Debug, Clone)]
pub struct DomainRule<'a> {
    fault_domains: usize,
    update_domains: usize,
    /// Broker id → (fault domain, update domain).
    domains: BTreeMap<i32, (&'a str, &'a str)>,
}

impl DomainRule<'_> {
    /// Whether `replicas` span enough fault and update domains. Counts
    /// without allocating: this runs for every partition of the cluster.
    pub fn spans(&self, replicas: &[i32]) -> bool {
        let known = replicas.iter().filter_map(|r| self.domains.get(r));
        distinct(known.clone().map(|d| d.0)) >= self.fault_domains.min(replicas.len())
            && distinct(known.map(|d| d.1)) >= self.update_domains.min(replicas.len())
    }
}

/// Distinct values among a few (a replica list): quadratic, allocation-free.
fn distinct<'a>(values: impl Iterator<Item = &'a str> + Clone) -> usize {
    values.clone().enumerate().filter(|(i, v)| !values.clone().take(*i).any(|w| w == *v)).count()
}

/// Max / mean of the values (1.0 is perfect; 0 for no values or all zero).
pub fn skew(values: &[usize]) -> f64 {
    let sum: usize = values.iter().sum();
    if values.is_empty() || sum == 0 {
        return 0.0;
    }
    let mean = sum as f64 / values.len() as f64;
    *values.iter().max().unwrap_or(&0) as f64 / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_max_over_mean() {
        assert_eq!(skew(&[]), 0.0);
        assert_eq!(skew(&[2, 2]), 1.0);
        assert_eq!(skew(&[3, 1]), 1.5);
    }

    #[test]
    fn group_status_is_the_worst() {
        assert!(GroupStatus::Stop > GroupStatus::Stall);
        assert!(GroupStatus::Err > GroupStatus::Stop);
        assert_eq!(GroupStatus::parse("STOP").as_str(), "STOP");
    }

    #[test]
    fn distinct_counts_each_value_once() {
        assert_eq!(distinct(["a", "b", "a", "c", "b"].into_iter()), 3);
        assert_eq!(distinct(std::iter::empty()), 0);
    }
}
