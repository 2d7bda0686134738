//! `kmon status`: the cluster at a glance, from one `Metadata` call:
//! controller, brokers (address, metrics, domains, alive), and partition
//! health (under-replicated: ISR smaller than the replica set; offline: no
//! leader), and the node agents that report: every live broker's
//! `ListAgents`, merged by node (latest `last_seen` wins). After those, the
//! same data `kmon tui` shows, from one of its refreshes: consumer groups
//! with lag and status, the nodes' figures, and the alert conditions that
//! hold now.

use std::collections::BTreeMap;
use std::time::Duration;

use kmon_client::{Admin, ClusterMetadata};
use kmon_proto::agent::v1::node_metrics_client::NodeMetricsClient;
use kmon_proto::agent::v1::{AgentInfo, ListAgentsRequest};
use serde::Serialize;

use super::ClientArgs;
use super::format::{human_bytes, render_rows};

/// Bound on asking one broker for its agents.
const AGENT_LIST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The `--json` document; field order is the output order.
#[derive(Debug, Serialize, PartialEq)]
struct Status {
    /// -1 when there is no controller.
    controller_id: i32,
    brokers: Vec<Broker>,
    partitions: usize,
    under_replicated_partitions: usize,
    offline_partitions: usize,
    /// Node agents heard from by any live broker, by node name.
    agents: Vec<Agent>,
    /// Consumer groups with their total lag and Burrow-style status.
    groups: Vec<GroupSummary>,
    /// The agents' figures (fullest file system, CPU, memory, NIC trouble).
    nodes: Vec<NodeSummary>,
    /// Conditions the alert rules fire on, as the TUI evaluates them now.
    alerts: Vec<AlertSummary>,
    /// The partition reassignment in progress, if any.
    reassignment: Option<ReassignmentSummary>,
}

#[derive(Debug, Serialize, PartialEq)]
struct ReassignmentSummary {
    partitions_pending: usize,
    partitions_total: u32,
    bytes_left: u64,
    bytes_total: u64,
    /// Bytes/s per broker and direction; null: unthrottled.
    throttle_bytes_per_sec: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq)]
struct GroupSummary {
    group: String,
    state: String,
    members: u32,
    lag: i64,
    status: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct NodeSummary {
    node: String,
    disk_mount: String,
    disk_used_fraction: f64,
    disk_avail_bytes: f64,
    /// Busy share of the CPUs since the previous sample; null until known.
    cpu_busy_fraction: Option<f64>,
    memory_used_fraction: f64,
    network_errors: f64,
    network_drops: f64,
}

#[derive(Debug, Serialize, PartialEq)]
struct AlertSummary {
    severity: &'static str,
    message: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct Agent {
    node: String,
    /// Where the agent serves `/metrics`.
    metrics_address: String,
    /// Last sample received, RFC 3339 (UTC, milliseconds).
    last_seen: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct Broker {
    id: i32,
    address: String,
    metrics_address: String,
    /// Kafka wire-protocol listener ("" when none).
    kafka_address: String,
    fault_domain: String,
    update_domain: String,
    alive: bool,
}

impl From<ClusterMetadata> for Status {
    fn from(metadata: ClusterMetadata) -> Self {
        let partitions = metadata.topics.iter().flat_map(|t| &t.partitions);
        let mut brokers: Vec<Broker> = metadata
            .brokers
            .into_iter()
            .map(|b| Broker {
                id: b.id,
                address: b.address,
                metrics_address: b.metrics_address,
                kafka_address: b.kafka_address,
                fault_domain: b.fault_domain,
                update_domain: b.update_domain,
                alive: b.alive,
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Status {
            controller_id: metadata.controller_id,
            brokers,
            partitions: partitions.clone().count(),
            under_replicated_partitions: partitions
                .clone()
                .filter(|p| p.replicas.iter().any(|r| !p.isr.contains(r)))
                .count(),
            offline_partitions: partitions.filter(|p| p.leader < 0).count(),
            agents: Vec::new(),
            groups: Vec::new(),
            nodes: Vec::new(),
            alerts: Vec::new(),
            reassignment: None,
        }
    }
}

pub(crate) async fn run(client: ClientArgs, args: StatusArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    let metadata = admin.metadata(&[]).await?;
    let addresses: Vec<String> = metadata.brokers.iter().filter(|b| b.alive).map(|b| b.address.clone()).collect();
    let mut status = Status::from(metadata);
    status.agents = merge_agents(futures::future::join_all(addresses.iter().map(|a| list_agents(a))).await);
    if let Ok(snapshot) = kmon_tui::client::Poller::new(client.bootstrap.clone()).poll().await {
        add_live_view(&mut status, &snapshot);
    }
    if let Ok(r) = admin.reassignment_status().await
        && r.in_progress
    {
        status.reassignment = Some(ReassignmentSummary {
            partitions_pending: r.pending.len(),
            partitions_total: r.partitions_total,
            bytes_left: r.bytes_left,
            bytes_total: r.bytes_total,
            throttle_bytes_per_sec: r.throttle_bytes_per_sec,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// Groups, nodes and alerts from one TUI refresh.
fn add_live_view(status: &mut Status, snapshot: &kmon_tui::Snapshot) {
    status.groups = snapshot
        .groups
        .iter()
        .map(|g| GroupSummary {
            group: g.listing.group_id.clone(),
            state: g.listing.state.clone(),
            members: g.listing.members,
            lag: g.total_lag(),
            status: g.status().as_str().to_string(),
        })
        .collect();
    status.nodes = snapshot
        .nodes
        .iter()
        .map(|n| NodeSummary {
            node: n.node.clone(),
            disk_mount: n.disk_mount.clone(),
            disk_used_fraction: n.disk_used_fraction(),
            disk_avail_bytes: n.disk_avail,
            cpu_busy_fraction: n.cpu_busy,
            memory_used_fraction: n.mem_used_fraction(),
            network_errors: n.net_errors,
            network_drops: n.net_drops,
        })
        .collect();
    status.alerts = kmon_tui::alerts::evaluate(snapshot, &BTreeMap::new())
        .into_iter()
        .map(|c| AlertSummary {
            severity: match c.severity {
                kmon_tui::alerts::Severity::Warning => "warning",
                kmon_tui::alerts::Severity::Critical => "critical",
            },
            message: c.message,
        })
        .collect();
}

/// One broker's `ListAgents`; an unreachable broker counts as none.
async fn list_agents(address: &str) -> Vec<AgentInfo> {
    let call = async {
        let channel = kmon_client::connection::endpoint(address)?.connect_timeout(AGENT_LIST_TIMEOUT).connect().await?;
        let response = NodeMetricsClient::new(channel).list_agents(ListAgentsRequest {}).await?;
        anyhow::Ok(response.into_inner().agents)
    };
    match tokio::time::timeout(AGENT_LIST_TIMEOUT, call).await {
        Ok(Ok(agents)) => agents,
        _ => Vec::new(),
    }
}

/// By node; the most recent report of each wins.
fn merge_agents(lists: Vec<Vec<AgentInfo>>) -> Vec<Agent> {
    let mut latest: BTreeMap<String, AgentInfo> = BTreeMap::new();
    for agent in lists.into_iter().flatten() {
        match latest.get(&agent.node) {
            Some(known) if known.last_seen_ms >= agent.last_seen_ms => {}
            _ => {
                latest.insert(agent.node.clone(), agent);
            }
        }
    }
    latest
        .into_values()
        .map(|a| Agent {
            node: a.node,
            metrics_address: a.metrics_address,
            last_seen: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(a.last_seen_ms.max(0) as u64),
            )
            .to_string(),
        })
        .collect()
}

fn render(status: &Status) -> String {
    let controller = if status.controller_id >= 0 { status.controller_id.to_string() } else { "none".to_owned() };
    let mut out = format!(
        "Controller: {controller}  Brokers: {} ({} alive)\n\
         Partitions: {}  Under-replicated: {}  Offline: {}\n\n",
        status.brokers.len(),
        status.brokers.iter().filter(|b| b.alive).count(),
        status.partitions,
        status.under_replicated_partitions,
        status.offline_partitions,
    );
    if let Some(r) = &status.reassignment {
        let throttle = r.throttle_bytes_per_sec.map_or("unthrottled".to_owned(), |t| format!("{}/s", human_bytes(t)));
        out.push_str(&format!(
            "Reassignment: {}/{} partition(s) pending, {} of {} left to copy, {throttle} (`kmon rebalance status`)\n\n",
            r.partitions_pending,
            r.partitions_total,
            human_bytes(r.bytes_left),
            human_bytes(r.bytes_total),
        ));
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "ADDRESS".to_owned(),
        "METRICS".to_owned(),
        "KAFKA".to_owned(),
        "FD".to_owned(),
        "UD".to_owned(),
        "STATE".to_owned(),
    ]];
    for b in &status.brokers {
        let mut state = if b.alive { "alive" } else { "dead" }.to_owned();
        if b.id == status.controller_id {
            state.push_str(" (controller)");
        }
        rows.push([
            b.id.to_string(),
            b.address.clone(),
            b.metrics_address.clone(),
            if b.kafka_address.is_empty() { "-".to_owned() } else { b.kafka_address.clone() },
            b.fault_domain.clone(),
            b.update_domain.clone(),
            state,
        ]);
    }
    out.push_str(&render_rows(&rows));
    if !status.agents.is_empty() {
        let mut rows = vec![["AGENT".to_owned(), "METRICS".to_owned(), "LAST SEEN".to_owned()]];
        for a in &status.agents {
            rows.push([a.node.clone(), a.metrics_address.clone(), a.last_seen.clone()]);
        }
        out.push('\n');
        out.push_str(&render_rows(&rows));
    }
    if !status.groups.is_empty() {
        let mut rows =
            vec![["GROUP".to_owned(), "STATE".to_owned(), "MEMBERS".to_owned(), "LAG".to_owned(), "STATUS".to_owned()]];
        for g in &status.groups {
            rows.push([g.group.clone(), g.state.clone(), g.members.to_string(), g.lag.to_string(), g.status.clone()]);
        }
        out.push('\n');
        out.push_str(&render_rows(&rows));
    }
    if !status.nodes.is_empty() {
        let mut rows = vec![[
            "NODE".to_owned(),
            "DISK USED".to_owned(),
            "CPU".to_owned(),
            "MEMORY".to_owned(),
            "NIC ERR/DROP".to_owned(),
        ]];
        let pct = |f: f64| format!("{:.0}%", f * 100.0);
        for n in &status.nodes {
            rows.push([
                n.node.clone(),
                format!("{} of {}", pct(n.disk_used_fraction), n.disk_mount),
                n.cpu_busy_fraction.map_or("-".into(), pct),
                pct(n.memory_used_fraction),
                format!("{}/{}", n.network_errors, n.network_drops),
            ]);
        }
        out.push('\n');
        out.push_str(&render_rows(&rows));
    }
    out.push('\n');
    if status.alerts.is_empty() {
        out.push_str("Alerts: none\n");
    } else {
        out.push_str("Alerts:\n");
        for a in &status.alerts {
            out.push_str(&format!("  {:<8}  {}\n", a.severity, a.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmon_client::{BrokerInfo, PartitionDescription, TopicDescription};

    fn partition(leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionDescription {
        PartitionDescription { leader, replicas: replicas.to_vec(), isr: isr.to_vec(), ..Default::default() }
    }

    fn metadata() -> ClusterMetadata {
        let broker = |id: i32, alive: bool| BrokerInfo {
            id,
            address: format!("127.0.0.1:{}", 9091 + id),
            metrics_address: format!("127.0.0.1:{}", 9643 + id),
            kafka_address: format!("127.0.0.1:{}", 19091 + id),
            fault_domain: format!("FD{}", id - 1),
            update_domain: format!("UD{}", id - 1),
            alive,
        };
        ClusterMetadata {
            brokers: vec![broker(2, false), broker(1, true)],
            controller_id: 1,
            topics: vec![TopicDescription {
                name: "t".into(),
                topic_id: String::new(),
                replication_factor: 2,
                configs: vec![],
                partitions: vec![partition(1, &[1, 2], &[1, 2]), partition(1, &[1, 2], &[1]), partition(-1, &[2], &[])],
            }],
        }
    }

    #[test]
    fn counts_and_json_keys() {
        let status = Status::from(metadata());
        assert_eq!(status.partitions, 3);
        assert_eq!(status.under_replicated_partitions, 2);
        assert_eq!(status.offline_partitions, 1);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "controller_id": 1,
                "brokers": [
                    {"id": 1, "address": "127.0.0.1:9092", "metrics_address": "127.0.0.1:9644",
                     "kafka_address": "127.0.0.1:19092", "fault_domain": "FD0", "update_domain": "UD0", "alive": true},
                    {"id": 2, "address": "127.0.0.1:9093", "metrics_address": "127.0.0.1:9645",
                     "kafka_address": "127.0.0.1:19093", "fault_domain": "FD1", "update_domain": "UD1", "alive": false},
                ],
                "partitions": 3,
                "under_replicated_partitions": 2,
                "offline_partitions": 1,
                "agents": [],
                "groups": [],
                "nodes": [],
                "alerts": [],
                "reassignment": null,
            })
        );
    }

    #[test]
    fn agents_are_merged_by_node_latest_first() {
        let info = |node: &str, address: &str, seen: i64| AgentInfo {
            node: node.into(),
            metrics_address: address.into(),
            last_seen_ms: seen,
            last_sequence: 0,
        };
        let merged = merge_agents(vec![
            vec![info("b", "h2:1", 5_000), info("a", "h1:1", 1_000)],
            vec![info("a", "h1:2", 2_000)],
        ]);
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            serde_json::json!([
                {"node": "a", "metrics_address": "h1:2", "last_seen": "1970-01-01T00:00:02.000Z"},
                {"node": "b", "metrics_address": "h2:1", "last_seen": "1970-01-01T00:00:05.000Z"},
            ])
        );
    }

    #[test]
    fn table_names_the_controller_and_dead_brokers() {
        let text = render(&Status::from(metadata()));
        assert!(text.contains("Controller: 1  Brokers: 2 (1 alive)"), "{text}");
        assert!(text.contains("Under-replicated: 2  Offline: 1"), "{text}");
        assert!(text.contains("alive (controller)"), "{text}");
        assert!(text.contains("dead"), "{text}");
    }
}
