//! `kmon topic create|list|describe|delete`.

use anyhow::Context;
use clap::Subcommand;
use kmon_client::{Admin, TopicDescription};
use serde::Serialize;

use super::ClientArgs;
use super::format::{human_bytes, render_rows};

#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        partitions: u32,
        /// Replicas per partition (the broker default if unset).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        replication_factor: Option<u32>,
        /// A topic config, e.g. `--config retention.ms=60000`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<(String, String)>,
    },
    /// List topic names.
    List,
    /// Show a topic's partitions (replicas out of the ISR are marked) and
    /// configs.
    Describe {
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub(crate) async fn run(client: ClientArgs, command: TopicCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        TopicCommand::Create { name, partitions, replication_factor, configs } => {
            let (topic, placement_note) = admin
                .create_topic_placed(&name, partitions, replication_factor.unwrap_or(0), configs)
                .await
                .with_context(|| format!("cannot create topic {name:?}"))?;
            if let Some(note) = placement_note {
                eprintln!("warning: replica placement: {note}");
            }
            println!(
                "created topic {} ({} partitions, replication factor {})",
                topic.name,
                topic.partitions.len(),
                topic.replication_factor
            );
        }
        TopicCommand::List => {
            let mut topics = admin.list_topics().await?;
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in topics {
                println!("{}", topic.name);
            }
        }
        TopicCommand::Describe { name, json } => {
            let topic = admin.describe_topic(&name).await.with_context(|| format!("cannot describe topic {name:?}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&TopicJson::from(&topic))?);
            } else {
                print!("{}", render_description(&topic));
            }
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await.with_context(|| format!("cannot delete topic {name:?}"))?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// `topic describe --json`; field order is the output order (the required
/// keys first, extra ones after).
#[derive(Debug, Serialize)]
struct TopicJson<'a> {
    topic: &'a str,
    partitions: Vec<PartitionJson<'a>>,
    replication_factor: u32,
    topic_id: &'a str,
    configs: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Debug, Serialize)]
struct PartitionJson<'a> {
    partition: u32,
    /// -1 when offline.
    leader: i32,
    replicas: &'a [i32],
    isr: &'a [i32],
    /// Eligible leader replicas (KIP-966).
    elr: &'a [i32],
    leader_epoch: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    size_bytes: u64,
}

impl<'a> From<&'a TopicDescription> for TopicJson<'a> {
    fn from(topic: &'a TopicDescription) -> Self {
        TopicJson {
            topic: &topic.name,
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionJson {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: &p.replicas,
                    isr: &p.isr,
                    elr: &p.elr,
                    leader_epoch: p.leader_epoch,
                    log_start_offset: p.log_start_offset,
                    log_end_offset: p.log_end_offset,
                    high_watermark: p.high_watermark,
                    size_bytes: p.size_bytes,
                })
                .collect(),
            replication_factor: topic.replication_factor,
            topic_id: &topic.topic_id,
            configs: topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }
}

/// Replica ids, a `*` after those missing from the ISR.
fn replicas_marked(replicas: &[i32], isr: &[i32]) -> String {
    replicas.iter().map(|r| if isr.contains(r) { r.to_string() } else { format!("{r}*") }).collect::<Vec<_>>().join(",")
}

fn render_description(topic: &TopicDescription) -> String {
    let ids = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let mut rows = vec![[
        "PARTITION".to_owned(),
        "LEADER".to_owned(),
        "REPLICAS".to_owned(),
        "ISR".to_owned(),
        "LOG-START".to_owned(),
        "LOG-END".to_owned(),
        "HIGH-WATERMARK".to_owned(),
        "SIZE".to_owned(),
    ]];
    for p in &topic.partitions {
        rows.push([
            p.partition.to_string(),
            if p.leader < 0 { "none".to_owned() } else { p.leader.to_string() },
            replicas_marked(&p.replicas, &p.isr),
            ids(&p.isr),
            p.log_start_offset.to_string(),
            p.log_end_offset.to_string(),
            p.high_watermark.to_string(),
            human_bytes(p.size_bytes),
        ]);
    }
    let mut out = format!(
        "Topic: {}  TopicId: {}  Partitions: {}  ReplicationFactor: {}\n\n",
        topic.name,
        if topic.topic_id.is_empty() { "-" } else { &topic.topic_id },
        topic.partitions.len(),
        topic.replication_factor
    );
    out.push_str(&render_rows(&rows));
    if topic.partitions.iter().any(|p| p.replicas.iter().any(|r| !p.isr.contains(r))) {
        out.push_str("\n* replica not in the ISR (out of sync)\n");
    }
    let eligible: Vec<String> = topic
        .partitions
        .iter()
        .filter(|p| !p.elr.is_empty())
        .map(|p| format!("{}: {}", p.partition, ids(&p.elr)))
        .collect();
    if !eligible.is_empty() {
        out.push_str(&format!(
            "\nEligible leader replicas (left the ISR below min.insync.replicas; they hold every acknowledged record): {}\n",
            eligible.join("; ")
        ));
    }
    if !topic.configs.is_empty() {
        out.push_str("\nConfigs:\n");
        let mut configs = topic.configs.clone();
        configs.sort();
        for (key, value) in configs {
            out.push_str(&format!("  {key}={value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmon_client::PartitionDescription;

    #[test]
    fn config_needs_an_equals_sign() {
        assert_eq!(parse_config("retention.ms=1000").unwrap(), ("retention.ms".to_owned(), "1000".to_owned()));
        assert_eq!(parse_config("a=b=c").unwrap().1, "b=c");
        assert!(parse_config("retention.ms").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_config("=x").is_err());
    }

    #[test]
    fn description_is_a_table() {
        let topic = TopicDescription {
            name: "orders".into(),
            topic_id: "00c0ffee00c0ffee".into(),
            replication_factor: 3,
            configs: vec![("retention.ms".into(), "604800000".into())],
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2],
                elr: Vec::new(),
                log_start_offset: 0,
                log_end_offset: 42,
                high_watermark: 40,
                size_bytes: 2048,
                data_dir: "/data".into(),
            }],
        };
        let text = render_description(&topic);
        assert!(
            text.contains("Topic: orders  TopicId: 00c0ffee00c0ffee  Partitions: 1  ReplicationFactor: 3"),
            "{text}"
        );
        assert!(text.contains("1,2,3*"), "{text}");
        assert!(text.contains("* replica not in the ISR"), "{text}");
        assert!(!text.contains("Eligible leader replicas"), "{text}");
        let mut shrunk = topic.clone();
        shrunk.partitions[0].isr = vec![1];
        shrunk.partitions[0].elr = vec![2];
        let text = render_description(&shrunk);
        assert!(text.contains("they hold every acknowledged record): 0: 2\n"), "{text}");
        assert!(text.contains("2.0 KiB"));
        assert!(text.contains("retention.ms=604800000"));

        let json = serde_json::to_value(TopicJson::from(&topic)).unwrap();
        assert_eq!(json["topic"], "orders");
        assert_eq!(json["topic_id"], "00c0ffee00c0ffee");
        assert_eq!(
            json["partitions"][0],
            serde_json::json!({
                "partition": 0, "leader": 1, "replicas": [1, 2, 3], "isr": [1, 2], "elr": [],
                "leader_epoch": 0, "log_start_offset": 0, "log_end_offset": 42,
                "high_watermark": 40, "size_bytes": 2048,
            })
        );
        let text = serde_json::to_string(&TopicJson::from(&topic)).unwrap();
        assert!(
            text.starts_with(
                r#"{"topic":"orders","partitions":[{"partition":0,"leader":1,"replicas":[1,2,3],"isr":[1,2]"#
            ),
            "{text}"
        );
    }
}
