//! `kmon topic create|list|describe|delete`.

use anyhow::Context;
use clap::Subcommand;
use kmon_client::{Admin, TopicDescription};

use super::ClientArgs;

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
    /// Show a topic's partitions and configs.
    Describe { name: String },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub(crate) async fn run(client: ClientArgs, command: TopicCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let topic = admin
                .create_topic(&name, partitions, replication_factor.unwrap_or(0), configs)
                .await
                .with_context(|| format!("cannot create topic {name:?}"))?;
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
        TopicCommand::Describe { name } => {
            let topic = admin
                .describe_topic(&name)
                .await
                .with_context(|| format!("cannot describe topic {name:?}"))?;
            print!("{}", render_description(&topic));
        }
        TopicCommand::Delete { name } => {
            admin
                .delete_topic(&name)
                .await
                .with_context(|| format!("cannot delete topic {name:?}"))?;
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
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            p.log_start_offset.to_string(),
            p.log_end_offset.to_string(),
            p.high_watermark.to_string(),
            human_bytes(p.size_bytes),
        ]);
    }
    let mut widths = [0; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = format!(
        "Topic: {}  Partitions: {}  ReplicationFactor: {}\n\n",
        topic.name,
        topic.partitions.len(),
        topic.replication_factor
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
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

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmon_client::PartitionDescription;

    #[test]
    fn config_needs_an_equals_sign() {
        assert_eq!(
            parse_config("retention.ms=1000").unwrap(),
            ("retention.ms".to_owned(), "1000".to_owned())
        );
        assert_eq!(parse_config("a=b=c").unwrap().1, "b=c");
        assert!(
            parse_config("retention.ms")
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert!(parse_config("=x").is_err());
    }

    #[test]
    fn description_is_a_table() {
        let topic = TopicDescription {
            name: "orders".into(),
            replication_factor: 3,
            configs: vec![("retention.ms".into(), "604800000".into())],
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2],
                log_start_offset: 0,
                log_end_offset: 42,
                high_watermark: 40,
                size_bytes: 2048,
                data_dir: "/data".into(),
            }],
        };
        let text = render_description(&topic);
        assert!(text.contains("Topic: orders  Partitions: 1  ReplicationFactor: 3"));
        assert!(text.contains("1,2,3"));
        assert!(text.contains("2.0 KiB"));
        assert!(text.contains("retention.ms=604800000"));
    }
}
