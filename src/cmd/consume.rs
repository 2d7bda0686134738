//! `kmon consume`: print one line per record.
//!
//! Without `--partition` every partition of the topic is read; `--offset N`
//! then applies to each of them. Without `--follow` the command stops at
//! the end offsets taken when it starts (or at `--max-records`).

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, bail};
use kmon_client::{Consumer, ConsumerConfig, OffsetSpec};

use super::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset of each partition.
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Start at this offset (in every chosen partition).
    #[arg(long)]
    offset: Option<i64>,
    /// Read only this partition (default: all of them).
    #[arg(long)]
    partition: Option<u32>,
    /// Stop after this many records.
    #[arg(long)]
    max_records: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long)]
    follow: bool,
    /// Print `key<TAB>value` (an absent key prints as empty).
    #[arg(long)]
    print_key: bool,
}

pub(crate) async fn run(client: ClientArgs, args: ConsumeArgs) -> anyhow::Result<()> {
    if !args.from_beginning && args.offset.is_none() {
        bail!("say where to start: --from-beginning or --offset N");
    }
    let mut consumer = Consumer::connect(ConsumerConfig::new(client.bootstrap)).await?;
    let topic = consumer
        .admin()
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {:?}", args.topic))?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if topic.partitions.iter().any(|d| d.partition == p) => vec![p],
        Some(p) => bail!("topic {:?} has no partition {p} (it has {})", args.topic, topic.partitions.len()),
        None => topic.partitions.iter().map(|d| d.partition).collect(),
    };

    // End offsets, unless following.
    let mut ends: HashMap<u32, i64> = HashMap::new();
    if !args.follow {
        let request: Vec<_> = partitions.iter().map(|&p| (args.topic.as_str(), p, OffsetSpec::Latest)).collect();
        for offset in consumer.admin().list_offsets(&request).await? {
            ends.insert(offset.partition, offset.offset.unwrap_or(0));
        }
    }

    for &partition in &partitions {
        let start = match args.offset {
            Some(offset) => {
                consumer.assign(&args.topic, partition, offset);
                offset
            }
            None => consumer.assign_at(&args.topic, partition, OffsetSpec::Earliest).await?,
        };
        if let Some(&end) = ends.get(&partition) {
            if start > end {
                let earliest = consumer
                    .admin()
                    .list_offset(&args.topic, partition, OffsetSpec::Earliest)
                    .await?
                    .offset
                    .unwrap_or(0);
                bail!(
                    "offset {start} is out of range for {}-{partition}: valid offsets are {earliest}..{end} (log start offset to log end offset)",
                    args.topic
                );
            }
            if start == end {
                consumer.unassign(&args.topic, partition);
            }
        }
    }

    let max_records = args.max_records.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = Vec::with_capacity(1 << 20);
    while printed < max_records && consumer.assignments().next().is_some() {
        let records = consumer.poll().await?;
        out.clear();
        for record in &records {
            if printed >= max_records {
                break;
            }
            if ends.get(&record.partition).is_some_and(|&end| record.offset >= end) {
                continue;
            }
            if args.print_key {
                out.extend_from_slice(record.key.as_deref().unwrap_or_default());
                out.push(b'\t');
            }
            out.extend_from_slice(&record.value);
            out.push(b'\n');
            printed += 1;
        }
        if !write_stdout(&out)? {
            return Ok(());
        }
        if !args.follow {
            let done: Vec<u32> = consumer
                .assignments()
                .filter(|&(_, p, position)| ends.get(&p).is_some_and(|&end| position >= end))
                .map(|(_, p, _)| p)
                .collect();
            for partition in done {
                consumer.unassign(&args.topic, partition);
            }
        }
    }
    Ok(())
}

/// Writes to stdout; `false` if the reader went away (e.g. `| head`).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<bool> {
    if bytes.is_empty() {
        return Ok(true);
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err).context("cannot write to standard output"),
    }
}
