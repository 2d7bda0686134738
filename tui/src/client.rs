//! The data task: every refresh, one [`Snapshot`] from the cluster.
//!
//! It asks its current broker for `Metadata` and every group in one
//! `DescribeGroups` (the broker gathers them from the other coordinators),
//! so the cluster's data takes two RPCs whatever the number of groups and
//! partitions; then the node agents (`ListAgents` on every live broker,
//! merged by node) and, every [`PLAN_EVERY`] refreshes, a rebalance plan.
//! It scrapes the brokers' and agents' `/metrics`, keeping only the series
//! it shows; counters become rates against the previous scrape. When its
//! broker fails it tries every other broker it has seen in `Metadata` (and
//! the bootstrap address); when none answers it sends
//! [`Event::Disconnected`] and tries again next refresh.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use kmon_client::Admin;
use kmon_proto::agent::v1::ListAgentsRequest;
use kmon_proto::agent::v1::node_metrics_client::NodeMetricsClient;
use kmon_proto::metric_names::broker::{
    BYTES_IN_TOTAL as BYTES_IN, BYTES_OUT_TOTAL as BYTES_OUT, MESSAGES_IN_TOTAL as MESSAGES_IN,
};
use kmon_proto::metric_names::node::{
    CPU_SECONDS, DISK_READ, DISK_WRITTEN, FILESYSTEM_AVAIL, FILESYSTEM_SIZE, MEM_AVAILABLE, MEM_TOTAL,
    NET_RX_BYTES as NET_RX, NET_RX_DROP, NET_RX_ERRS, NET_TX_BYTES as NET_TX, NET_TX_DROP, NET_TX_ERRS,
};
use tokio::sync::mpsc;

use crate::event::Event;
use crate::prom::Sample;
use crate::prom::scrape;
use crate::snapshot::{Group, NodeStats, Snapshot, Throughput};
use crate::timings::Timings;

/// A rebalance plan is asked for once every this many refreshes.
pub const PLAN_EVERY: u32 = 10;

/// Bound on one RPC or one scrape.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

const NET_ERRS: [&str; 2] = [NET_RX_ERRS, NET_TX_ERRS];
const NET_DROPS: [&str; 2] = [NET_RX_DROP, NET_TX_DROP];
/// The series read from a broker's `/metrics` (the rest is skipped unparsed).
const BROKER_SERIES: [&str; 3] = [MESSAGES_IN, BYTES_IN, BYTES_OUT];
/// The series read from a node agent's `/metrics`.
const NODE_SERIES: [&str; 13] = [
    FILESYSTEM_SIZE,
    FILESYSTEM_AVAIL,
    DISK_READ,
    DISK_WRITTEN,
    NET_RX,
    NET_TX,
    NET_ERRS[0],
    NET_ERRS[1],
    NET_DROPS[0],
    NET_DROPS[1],
    CPU_SECONDS,
    MEM_TOTAL,
    MEM_AVAILABLE,
];

/// Polls every `refresh` until the receiver is gone.
pub async fn run(bootstrap: String, refresh: Duration, tx: mpsc::Sender<Event>, timings: Timings) {
    let mut poller = Poller::new(bootstrap);
    let mut interval = tokio::time::interval(refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let started = Instant::now();
        let result = poller.poll().await;
        timings.record("refresh", started.elapsed(), &format!("rpcs={}", poller.last_poll_rpcs()));
        let event = match result {
            Ok(snapshot) => Event::Data(Box::new(snapshot)),
            Err((error, tried)) => Event::Disconnected { error, tried },
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// Counters of one `/metrics` endpoint at one time.
#[derive(Debug, Clone, Default)]
struct Counters {
    at: Option<Instant>,
    values: BTreeMap<String, f64>,
}

impl Counters {
    fn rate(&self, previous: Option<&Counters>, key: &str) -> Option<f64> {
        let previous = previous?;
        let seconds = self.at?.duration_since(previous.at?).as_secs_f64();
        let (now, before) = (self.values.get(key)?, previous.values.get(key)?);
        (seconds > 0.0).then(|| ((now - before) / seconds).max(0.0))
    }
}

/// The data task's memory: known brokers, the current connection and the
/// previous counters of every scraped endpoint.
pub struct Poller {
    bootstrap: String,
    known: Vec<String>,
    admin: Option<(String, Admin)>,
    previous: BTreeMap<String, Counters>,
    plan: Option<Result<kmon_client::RebalancePlan, String>>,
    polls: u32,
    /// RPCs sent by the current / last `poll`, failed attempts included.
    rpcs: u64,
}

impl Poller {
    pub fn new(bootstrap: String) -> Poller {
        Poller {
            known: vec![bootstrap.clone()],
            bootstrap,
            admin: None,
            previous: BTreeMap::new(),
            plan: None,
            polls: 0,
            rpcs: 0,
        }
    }

    /// One snapshot, from the current broker or failing over to any other
    /// known one; the error names every broker tried.
    pub async fn poll(&mut self) -> Result<Snapshot, (String, Vec<String>)> {
        self.rpcs = 0;
        let mut candidates: Vec<String> = self.admin.iter().map(|(a, _)| a.clone()).collect();
        for address in self.known.iter().chain(std::iter::once(&self.bootstrap)) {
            if !candidates.contains(address) {
                candidates.push(address.clone());
            }
        }
        let mut last_error = String::from("no broker known");
        for address in &candidates {
            match self.gather(address).await {
                Ok(snapshot) => return Ok(snapshot),
                Err(error) => {
                    tracing::debug!(%address, %error, "broker did not answer");
                    if self.admin.as_ref().is_some_and(|(a, _)| a == address) {
                        self.admin = None;
                    }
                    last_error = format!("{address}: {error}");
                }
            }
        }
        Err((last_error, candidates))
    }

    /// RPCs the last [`Poller::poll`] sent (counted by the client library,
    /// plus the `ListAgents` calls), failed attempts and failover included.
    pub fn last_poll_rpcs(&self) -> u64 {
        self.rpcs
    }

    async fn gather(&mut self, address: &str) -> Result<Snapshot, String> {
        let admin = match &self.admin {
            Some((a, admin)) if a == address => admin.clone(),
            _ => {
                let admin = timed(Admin::connect(address)).await?;
                self.admin = Some((address.to_owned(), admin.clone()));
                admin
            }
        };
        let sent_before = admin.requests_sent();
        let result = self.gather_from(address, &admin).await;
        self.rpcs += admin.requests_sent() - sent_before;
        result
    }

    async fn gather_from(&mut self, address: &str, admin: &Admin) -> Result<Snapshot, String> {
        let metadata = timed(admin.metadata(&[])).await?;
        let alive: Vec<String> =
            metadata.brokers.iter().filter(|b| b.alive && !b.address.is_empty()).map(|b| b.address.clone()).collect();
        // Live brokers first. The client's router may already have sent
        // these calls to another broker; once the cluster fences ours,
        // the next refresh connects to a live one.
        let mut known: Vec<String> = alive.clone();
        for b in &metadata.brokers {
            if !b.address.is_empty() && !known.contains(&b.address) {
                known.push(b.address.clone());
            }
        }
        if !alive.iter().any(|a| a == address) && !alive.is_empty() {
            self.admin = None;
        }
        self.known = known;

        let groups = async {
            match timed(admin.describe_groups(&[])).await {
                Ok(described) => {
                    let gaps = described
                        .unavailable
                        .into_iter()
                        .map(|u| match u.broker_id {
                            -1 => u.error,
                            id => format!("coordinator #{id} ({}): {}", u.address, u.error),
                        })
                        .collect();
                    let groups = described
                        .groups
                        .into_iter()
                        .map(|d| Group { listing: d.listing(), description: Ok(d) })
                        .collect();
                    (groups, gaps)
                }
                Err(error) => (Vec::new(), vec![format!("DescribeGroups: {error}")]),
            }
        };
        self.rpcs += alive.len() as u64;
        let agents = async { merge_agents(join_all(alive.iter().map(|a| list_agents(a))).await) };
        let plan = async {
            let due = self.polls.is_multiple_of(PLAN_EVERY) || self.plan.as_ref().is_none_or(|p| p.is_err());
            if due { Some(timed(admin.plan_rebalance(&[])).await) } else { None }
        };
        let ((groups, group_gaps), agents, plan) = tokio::join!(groups, agents, plan);
        self.polls = self.polls.wrapping_add(1);
        if let Some(plan) = plan {
            self.plan = Some(plan);
        }

        let broker_metrics: Vec<String> = metadata
            .brokers
            .iter()
            .filter(|b| b.alive && !b.metrics_address.is_empty())
            .map(|b| b.metrics_address.clone())
            .collect();
        let (broker_scrapes, agent_scrapes) = tokio::join!(
            join_all(broker_metrics.iter().map(|a| scrape(a, &BROKER_SERIES, CALL_TIMEOUT))),
            join_all(agents.iter().map(|(_, a)| scrape(a, &NODE_SERIES, CALL_TIMEOUT))),
        );

        let mut throughput: Option<Throughput> = None;
        let mut topic_rates: BTreeMap<String, f64> = BTreeMap::new();
        for (address, scrape) in broker_metrics.iter().zip(broker_scrapes) {
            let Ok(samples) = scrape else { continue };
            let counters = broker_counters(&samples);
            let previous = self.previous.get(address);
            if let (Some(m), Some(bi), Some(bo)) = (
                counters.rate(previous, MESSAGES_IN),
                counters.rate(previous, BYTES_IN),
                counters.rate(previous, BYTES_OUT),
            ) {
                let t = throughput.get_or_insert_default();
                t.messages_in += m;
                t.bytes_in += bi;
                t.bytes_out += bo;
            }
            for key in counters.values.keys().filter_map(|k| k.strip_prefix("topic/")) {
                if let Some(rate) = counters.rate(previous, &format!("topic/{key}")) {
                    *topic_rates.entry(key.to_owned()).or_default() += rate;
                }
            }
            self.previous.insert(address.clone(), counters);
        }

        let mut nodes = Vec::new();
        for ((node, address), scrape) in agents.into_iter().zip(agent_scrapes) {
            let stats = match scrape {
                Ok(samples) => {
                    let counters = node_counters(&samples);
                    let stats = node_stats(&node, &address, &samples, &counters, self.previous.get(&address));
                    self.previous.insert(address.clone(), counters);
                    stats
                }
                Err(error) => NodeStats { node, metrics_address: address, error: Some(error), ..Default::default() },
            };
            nodes.push(stats);
        }
        let seen: BTreeSet<&String> = broker_metrics.iter().chain(nodes.iter().map(|n| &n.metrics_address)).collect();
        self.previous.retain(|a, _| seen.contains(a));

        Ok(Snapshot {
            at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            source: address.to_owned(),
            metadata,
            groups,
            group_gaps,
            throughput,
            topic_rates,
            nodes,
            plan: self.plan.clone(),
        })
    }
}

async fn timed<T, E: std::fmt::Display>(call: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("timed out after {CALL_TIMEOUT:?}")),
    }
}

/// One broker's `ListAgents`: (node, metrics address, last seen ms);
/// an unreachable broker counts as none.
async fn list_agents(address: &str) -> Vec<(String, String, i64)> {
    let call = async {
        let channel = kmon_client::connection::endpoint(address)
            .map_err(|e| e.to_string())?
            .connect_timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let response =
            NodeMetricsClient::new(channel).list_agents(ListAgentsRequest {}).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(response.into_inner().agents)
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(agents)) => agents.into_iter().map(|a| (a.node, a.metrics_address, a.last_seen_ms)).collect(),
        _ => Vec::new(),
    }
}

/// By node, the latest report winning: (node, metrics address).
fn merge_agents(lists: Vec<Vec<(String, String, i64)>>) -> Vec<(String, String)> {
    let mut latest: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for (node, address, seen) in lists.into_iter().flatten() {
        match latest.get(&node) {
            Some((_, known)) if *known >= seen => {}
            _ => {
                latest.insert(node, (address, seen));
            }
        }
    }
    latest.into_iter().filter(|(_, (a, _))| !a.is_empty()).map(|(n, (a, _))| (n, a)).collect()
}

/// The all-topics counters, and messages in by topic (`topic/NAME`).
fn broker_counters(samples: &[Sample]) -> Counters {
    let mut values = BTreeMap::new();
    for s in samples {
        if ![MESSAGES_IN, BYTES_IN, BYTES_OUT].contains(&s.name.as_str()) {
            continue;
        }
        match s.label("topic") {
            None => {
                *values.entry(s.name.clone()).or_default() += s.value;
            }
            Some(topic) if s.name == MESSAGES_IN => {
                *values.entry(format!("topic/{topic}")).or_default() += s.value;
            }
            Some(_) => {}
        }
    }
    Counters { at: Some(Instant::now()), values }
}

/// A node's counters summed over devices (loopback left out) and CPUs.
fn node_counters(samples: &[Sample]) -> Counters {
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    for s in samples {
        let name = s.name.as_str();
        let key = match name {
            DISK_READ | DISK_WRITTEN => name,
            NET_RX | NET_TX if s.label("device") != Some("lo") => name,
            CPU_SECONDS if s.label("mode") == Some("idle") || s.label("mode") == Some("iowait") => "cpu/idle",
            _ => "",
        };
        if !key.is_empty() {
            *values.entry(key.to_owned()).or_default() += s.value;
        }
        if name == CPU_SECONDS {
            *values.entry("cpu/total".to_owned()).or_default() += s.value;
        }
    }
    Counters { at: Some(Instant::now()), values }
}

fn node_stats(node: &str, address: &str, samples: &[Sample], now: &Counters, previous: Option<&Counters>) -> NodeStats {
    let mut stats = NodeStats { node: node.to_owned(), metrics_address: address.to_owned(), ..Default::default() };
    // The fullest filesystem.
    let avail: BTreeMap<&str, f64> = samples
        .iter()
        .filter(|s| s.name == FILESYSTEM_AVAIL)
        .filter_map(|s| Some((s.label("mountpoint")?, s.value)))
        .collect();
    let mut worst = -1.0;
    for s in samples.iter().filter(|s| s.name == FILESYSTEM_SIZE && s.value > 0.0) {
        let Some(mount) = s.label("mountpoint") else { continue };
        let Some(free) = avail.get(mount) else { continue };
        let used = (s.value - free) / s.value;
        if used > worst {
            worst = used;
            stats.disk_mount = mount.to_owned();
            stats.disk_size = s.value;
            stats.disk_avail = *free;
        }
    }
    for s in samples {
        let name = s.name.as_str();
        if NET_ERRS.contains(&name) {
            stats.net_errors += s.value;
        } else if NET_DROPS.contains(&name) {
            stats.net_drops += s.value;
        } else if name == MEM_TOTAL {
            stats.mem_total = s.value;
        } else if name == MEM_AVAILABLE {
            stats.mem_available = s.value;
        }
    }
    stats.disk_read_rate = now.rate(previous, DISK_READ);
    stats.disk_write_rate = now.rate(previous, DISK_WRITTEN);
    stats.net_rx_rate = now.rate(previous, NET_RX);
    stats.net_tx_rate = now.rate(previous, NET_TX);
    if let (Some(idle), Some(total)) = (now.rate(previous, "cpu/idle"), now.rate(previous, "cpu/total"))
        && total > 0.0
    {
        stats.cpu_busy = Some((1.0 - idle / total).clamp(0.0, 1.0));
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom;

    #[test]
    fn node_figures_from_agent_metrics() {
        let text = |idle: f64, rx: f64| {
            format!(
                "node_filesystem_size_bytes{{device=\"a\",mountpoint=\"/\",fstype=\"ext4\"}} 100\n\
                 node_filesystem_avail_bytes{{device=\"a\",mountpoint=\"/\",fstype=\"ext4\"}} 10\n\
                 node_filesystem_size_bytes{{device=\"b\",mountpoint=\"/data\",fstype=\"ext4\"}} 100\n\
                 node_filesystem_avail_bytes{{device=\"b\",mountpoint=\"/data\",fstype=\"ext4\"}} 50\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle}\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} 10\n\
                 node_network_receive_bytes_total{{device=\"eth0\"}} {rx}\n\
                 node_network_receive_bytes_total{{device=\"lo\"}} 999999\n\
                 node_memory_MemTotal_bytes 1000\nnode_memory_MemAvailable_bytes 250\n"
            )
        };
        let first = prom::parse(&text(10.0, 0.0));
        let mut before = node_counters(&first);
        before.at = Some(Instant::now() - Duration::from_secs(1));
        let second = prom::parse(&text(10.5, 1000.0));
        let after = node_counters(&second);
        let stats = node_stats("n1", "h:1", &second, &after, Some(&before));
        assert_eq!(stats.disk_mount, "/");
        assert!((stats.disk_used_fraction() - 0.9).abs() < 1e-9);
        assert!((stats.mem_used_fraction() - 0.75).abs() < 1e-9);
        let rx = stats.net_rx_rate.unwrap();
        assert!(rx > 900.0 && rx <= 1000.0, "{rx}");
        assert!(stats.cpu_busy.unwrap() < 0.01);
    }
}
