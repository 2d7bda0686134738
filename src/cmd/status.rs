//! `kmon status`: the cluster at a glance, from one `Metadata` call:
//! controller, brokers (address, metrics, domains, alive), and partition
//! health (under-replicated: ISR smaller than the replica set; offline: no
//! leader).

use kmon_client::{Admin, ClusterMetadata};
use serde::Serialize;

use super::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The `--json` document; field order is the output order.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Status {
    /// -1 when there is no controller.
    controller_id: i32,
    brokers: Vec<Broker>,
    partitions: usize,
    under_replicated_partitions: usize,
    offline_partitions: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct Broker {
    id: i32,
    address: String,
    metrics_address: String,
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
        }
    }
}

pub(crate) async fn run(client: ClientArgs, args: StatusArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    let status = Status::from(admin.metadata(&[]).await?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
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
    let mut rows = vec![[
        "ID".to_owned(),
        "ADDRESS".to_owned(),
        "METRICS".to_owned(),
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
            b.fault_domain.clone(),
            b.update_domain.clone(),
            state,
        ]);
    }
    out.push_str(&render_rows(&rows));
    out
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn render_rows<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmon_client::{BrokerInfo, PartitionDescription, TopicDescription};

    fn partition(leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionDescription {
        PartitionDescription {
            partition: 0,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
            size_bytes: 0,
            data_dir: String::new(),
        }
    }

    fn metadata() -> ClusterMetadata {
        let broker = |id: i32, alive: bool| BrokerInfo {
            id,
            address: format!("127.0.0.1:{}", 9091 + id),
            metrics_address: format!("127.0.0.1:{}", 9643 + id),
            fault_domain: format!("FD{}", id - 1),
            update_domain: format!("UD{}", id - 1),
            alive,
        };
        ClusterMetadata {
            brokers: vec![broker(2, false), broker(1, true)],
            controller_id: 1,
            topics: vec![TopicDescription {
                name: "t".into(),
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
                     "fault_domain": "FD0", "update_domain": "UD0", "alive": true},
                    {"id": 2, "address": "127.0.0.1:9093", "metrics_address": "127.0.0.1:9645",
                     "fault_domain": "FD1", "update_domain": "UD1", "alive": false},
                ],
                "partitions": 3,
                "under_replicated_partitions": 2,
                "offline_partitions": 1,
            })
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
