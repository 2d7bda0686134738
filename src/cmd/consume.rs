//! `kmon consume`: print one line per record.
//!
//! Without `--partition` every partition of the topic is read; `--offset N`
//! then applies to each of them. Without `--follow` the command stops at
//! the end offsets taken when it starts (or at `--max-records`).
//!
//! With `--group G` the command is a member of consumer group G (like
//! kafka-console-consumer with a group): it reads the partitions the group
//! assigns it, from the group's committed offsets (`--from-beginning`: from
//! the earliest offset where the group has committed nothing, else the
//! latest), follows until `--max-records` or SIGINT/SIGTERM, then commits
//! what it printed and leaves the group.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use kmon_client::{
    Assignor, AutoOffsetReset, ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, GroupConsumer,
    GroupConsumerConfig, OffsetSpec,
};

use super::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset of each partition (with --group: where
    /// the group has committed nothing).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Start at this offset (in every chosen partition).
    #[arg(long)]
    offset: Option<i64>,
    /// Read only this partition (default: all of them).
    #[arg(long)]
    partition: Option<u32>,
    /// Join this consumer group and read the partitions it assigns, from
    /// its committed offsets; follows until --max-records or a signal.
    #[arg(long, conflicts_with_all = ["offset", "partition"])]
    group: Option<String>,
    /// Static group membership (group.instance.id): a restart with the
    /// same id gets its partitions back without a rebalance.
    #[arg(long, requires = "group")]
    instance_id: Option<String>,
    /// Partition assignor to offer, by preference; repeatable (default:
    /// range, cooperative-sticky; cooperative-sticky alone rebalances
    /// incrementally).
    #[arg(long = "assignor", requires = "group", value_name = "NAME")]
    assignors: Vec<Assignor>,
    /// Group session timeout.
    #[arg(long, requires = "group", default_value = "10s", value_parser = humantime::parse_duration)]
    session_timeout: Duration,
    /// Interval between group heartbeats.
    #[arg(long, requires = "group", default_value = "3s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
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
    if let Some(group) = args.group.clone() {
        return run_group(client, args, group).await;
    }
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
            print_record(&mut out, record, args.print_key);
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

/// `--group`: a member of the group until `--max-records` or a signal;
/// commits what was printed and leaves on the way out.
async fn run_group(client: ClientArgs, args: ConsumeArgs, group: String) -> anyhow::Result<()> {
    // Joins, revocations and rebalances are logged to standard error.
    super::init_logging();
    let mut config = GroupConsumerConfig::new(client.bootstrap, group.clone());
    config.client_id = "kmon-consume".to_owned();
    config.group_instance_id = args.instance_id.clone();
    config.session_timeout = args.session_timeout;
    config.heartbeat_interval = args.heartbeat_interval;
    if args.from_beginning {
        config.auto_offset_reset = AutoOffsetReset::Earliest;
    }
    if !args.assignors.is_empty() {
        config.assignors = args.assignors.clone();
    }
    let mut consumer = GroupConsumer::connect(config).await.context("cannot start the group consumer")?;
    consumer.subscribe(vec![args.topic.clone()]);

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let max_records = args.max_records.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = Vec::with_capacity(1 << 20);
    let mut outcome = Ok(());
    while printed < max_records {
        let remaining = (max_records - printed).min(500) as usize;
        let polled = tokio::select! {
            _ = &mut shutdown => break,
            polled = consumer.poll_up_to(remaining) => polled,
        };
        let records = match polled {
            Ok(records) => records,
            Err(err) if transient(&err) => {
                tracing::warn!(%group, error = %err, "poll failed, retrying");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            Err(err) => {
                outcome = Err(anyhow::Error::new(err).context(format!("consumer group {group:?}")));
                break;
            }
        };
        out.clear();
        for record in &records {
            print_record(&mut out, record, args.print_key);
            printed += 1;
        }
        match write_stdout(&out) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    let closed = consumer.close().await.with_context(|| format!("leaving consumer group {group:?}"));
    outcome.and(closed)
}

/// Errors after which the group consumer can go on polling (the
/// coordinator moving or loading, a rebalance, leader changes).
fn transient(err: &ClientError) -> bool {
    err.is_retriable()
        || matches!(
            err.code(),
            Some(
                ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::CoordinatorLoadInProgress
                    | ErrorCode::RebalanceInProgress
                    | ErrorCode::UnknownMemberId
                    | ErrorCode::IllegalGeneration
            )
        )
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
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

/// One output line: `key<TAB>value` with `print_key`, else the value.
fn print_record(out: &mut Vec<u8>, record: &ConsumerRecord, print_key: bool) {
    if print_key {
        out.extend_from_slice(record.key.as_deref().unwrap_or_default());
        out.push(b'\t');
    }
    out.extend_from_slice(&record.value);
    out.push(b'\n');
}
