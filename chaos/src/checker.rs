//! The verdict of a run, taken with the network healed and every broker
//! back:
//!
//! 1. Every partition is read from its earliest offset to its high
//!    watermark: every acknowledged record is at its acknowledged offset,
//!    no seq appears twice (exactly once), seqs increase along offsets
//!    (order), and whatever the concurrent consumer saw is still there.
//! 2. Each broker's metrics agree with the final state: no under-replicated
//!    partition, one active controller, leaders summing to the partitions,
//!    log end offsets at the high watermark; and `kmon status --json` says
//!    the same.
//! 3. The brokers are stopped and each partition's `.log` segments are
//!    parsed batch by batch on every replica: the batches below the high
//!    watermark are byte-identical across replicas (so every batch has the
//!    same partition leader epoch everywhere: no two leaders wrote one
//!    epoch's offsets differently), and epochs never decrease along a log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kmon_client::{Consumer, ConsumerConfig, OffsetSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hosts::Hosts;
use crate::workload::{Ack, Record, parse_value};

/// What the checker found; `problems` empty means green.
#[derive(Debug, Default)]
pub struct Verdict {
    pub acked: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub records: usize,
    pub problems: Vec<String>,
}

impl Verdict {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 50 {
            self.problems.push(text);
        }
    }
}

/// Step 1: reads every partition and checks it against the acks.
pub async fn check_reads(
    hosts: &Hosts,
    topic: &str,
    partitions: u32,
    record: &Record,
    verdict: &mut Verdict,
) -> anyhow::Result<BTreeMap<u32, i64>> {
    // The high watermark as each partition's leader has it: a follower's
    // (what a metadata answer from any broker shows) lags by a fetch.
    let admin = hosts.admin().await?;
    let mut hwm: BTreeMap<u32, i64> = BTreeMap::new();
    for partition in 0..partitions {
        let latest = admin.list_offset(topic, partition, OffsetSpec::Latest).await?;
        let end = latest.offset.with_context(|| format!("partition {partition} has no high watermark"))?;
        hwm.insert(partition, end);
    }
    let mut consumer = Consumer::connect(ConsumerConfig::new(hosts.address(1))).await?;
    for partition in 0..partitions {
        consumer.assign_at(topic, partition, OffsetSpec::Earliest).await?;
    }
    let mut logs: BTreeMap<u32, BTreeMap<i64, Vec<u8>>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..partitions).any(|p| consumer.position(topic, p).unwrap_or(0) < hwm[&p]) {
        if Instant::now() > deadline {
            bail!("could not read every partition up to its high watermark within 60 s");
        }
        for r in consumer.poll().await? {
            logs.entry(r.partition).or_default().insert(r.offset, r.value.to_vec());
        }
    }

    let acks: Vec<Ack> = record.acks.lock().expect("acks").clone();
    verdict.acked = acks.len();
    for ack in &acks {
        let at = logs.get(&ack.partition).and_then(|log| log.get(&ack.offset));
        match at.and_then(|v| parse_value(ack.partition, v)) {
            Some(seq) if seq == ack.seq => {}
            other => {
                verdict.lost += 1;
                verdict.problem(format!(
                    "LOST: partition {} seq {} acknowledged at offset {}, but the offset holds {:?}",
                    ack.partition, ack.seq, ack.offset, other
                ));
            }
        }
    }
    for (&partition, log) in &logs {
        let mut seen = BTreeSet::new();
        let mut last: Option<(i64, u64)> = None;
        for (&offset, value) in log {
            if offset >= hwm[&partition] {
                continue;
            }
            verdict.records += 1;
            let Some(seq) = parse_value(partition, value) else {
                verdict.problem(format!("partition {partition} offset {offset}: not a workload record"));
                continue;
            };
            if !seen.insert(seq) {
                verdict.duplicates += 1;
                verdict.problem(format!("DUPLICATE: partition {partition} seq {seq} again at offset {offset}"));
            }
            if let Some((at, before)) = last
                && seq <= before
            {
                verdict.problem(format!(
                    "ORDER: partition {partition} seq {seq} at offset {offset} after seq {before} at {at}"
                ));
            }
            last = Some((offset, seq));
        }
    }
    for (&(partition, offset), &seq) in record.consumed.lock().expect("consumed").iter() {
        let now = logs.get(&partition).and_then(|l| l.get(&offset)).and_then(|v| parse_value(partition, v));
        if now != Some(seq) {
            verdict.problem(format!(
                "TAKEN BACK: the consumer read seq {seq} at partition {partition} offset {offset}; now {now:?}"
            ));
        }
    }
    for violation in record.consumer_violations.lock().expect("v").iter() {
        verdict.problem(format!("consumer: {violation}"));
    }
    Ok(hwm)
}

/// Step 2: every broker's metrics and `kmon status --json`.
pub async fn check_metrics(
    hosts: &Hosts,
    exe: &Path,
    topic: &str,
    hwm: &BTreeMap<u32, i64>,
    verdict: &mut Verdict,
) -> anyhow::Result<()> {
    use kmon_proto::metric_names::broker::{ACTIVE_CONTROLLER, LEADER_COUNT, LOG_END_OFFSET, UNDER_REPLICATED};
    let mut leaders = 0.0;
    let mut controllers = 0.0;
    for id in hosts.ids() {
        let text = scrape(&hosts.metrics_address(id)).await.with_context(|| format!("broker {id}'s metrics"))?;
        let under = sum(&text, UNDER_REPLICATED);
        if under != 0.0 {
            verdict.problem(format!("METRICS: broker {id} reports {under} under-replicated partitions"));
        }
        leaders += sum(&text, LEADER_COUNT);
        controllers += sum(&text, ACTIVE_CONTROLLER);
        for (&partition, &end) in hwm {
            let labels = format!("partition=\"{partition}\"");
            let topic_label = format!("topic=\"{topic}\"");
            for line in text
                .lines()
                .filter(|l| l.starts_with(LOG_END_OFFSET) && l.contains(&labels) && l.contains(&topic_label))
            {
                let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(-1.0);
                if value as i64 != end {
                    verdict.problem(format!("METRICS: broker {id} {line} but the high watermark is {end}"));
                }
            }
        }
    }
    if controllers != 1.0 {
        verdict.problem(format!("METRICS: {controllers} active controllers across the brokers"));
    }
    if leaders != hwm.len() as f64 {
        verdict.problem(format!("METRICS: leader counts sum to {leaders}, the topic has {} partitions", hwm.len()));
    }

    let output = tokio::process::Command::new(exe)
        .args(["status", "--json", "--bootstrap", &hosts.address(1)])
        .output()
        .await
        .context("cannot run kmon status")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Option<i64> {
        let at = text.find(&format!("\"{name}\""))?;
        let rest = text[at..].split_once(':')?.1.trim_start();
        rest.split(|c: char| !(c.is_ascii_digit() || c == '-')).next()?.parse().ok()
    };
    if !output.status.success() {
        verdict.problem(format!("STATUS: kmon status failed: {}", String::from_utf8_lossy(&output.stderr)));
    } else {
        if field("under_replicated_partitions") != Some(0) || field("offline_partitions") != Some(0) {
            verdict.problem(format!("STATUS: kmon status reports trouble: {text}"));
        }
        if field("controller_id").is_none_or(|c| c < 0) {
            verdict.problem(format!("STATUS: kmon status shows no controller: {text}"));
        }
        if text.contains("\"alive\": false") || text.contains("\"alive\":false") {
            verdict.problem(format!("STATUS: kmon status shows a dead broker: {text}"));
        }
    }
    Ok(())
}

/// Sum of the samples of `name` (any labels).
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// GET /metrics over plain HTTP/1.0.
async fn scrape(address: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    Ok(tokio::time::timeout(Duration::from_secs(5), fetch).await??)
}

/// Step 3 (brokers stopped): replicas byte-identical below the high
/// watermark, epochs never decreasing.
pub fn check_replicas(
    hosts: &Hosts,
    topic: &str,
    hwm: &BTreeMap<u32, i64>,
    verdict: &mut Verdict,
) -> anyhow::Result<()> {
    for (&partition, &end) in hwm {
        let mut reference: Option<(u32, Vec<u8>)> = None;
        for id in hosts.ids() {
            let dir = hosts.data_dir(id).join(format!("{topic}-{partition}"));
            let (bytes, epochs, problems) = batches_below(&dir, end)?;
            for p in problems {
                verdict.problem(format!("REPLICA: broker {id} partition {partition}: {p}"));
            }
            if let Some(at) = epochs.windows(2).position(|w| w[1] < w[0]) {
                verdict.problem(format!(
                    "EPOCH: broker {id} partition {partition}: leader epoch {} after {} at batch {} of {}",
                    epochs[at + 1],
                    epochs[at],
                    at + 1,
                    epochs.len()
                ));
            }
            match &reference {
                None => reference = Some((id, bytes)),
                Some((first, theirs)) => {
                    if *theirs != bytes {
                        let at = theirs
                            .iter()
                            .zip(&bytes)
                            .position(|(a, b)| a != b)
                            .unwrap_or(theirs.len().min(bytes.len()));
                        verdict.problem(format!(
                            "REPLICA: partition {partition}: brokers {first} and {id} differ below the high watermark {end} \
                             ({} vs {} bytes, first difference at byte {at})",
                            theirs.len(),
                            bytes.len()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The batches of the `.log` segments in `dir` whose base offset is below
/// `end`, concatenated; their partition leader epochs; and what is wrong.
fn batches_below(dir: &Path, end: i64) -> anyhow::Result<(Vec<u8>, Vec<i32>, Vec<String>)> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let (mut bytes, mut epochs, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = None;
    for segment in segments {
        let data = std::fs::read(&segment)?;
        let mut at = 0;
        while at + 27 <= data.len() {
            let base = i64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
            let length = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
            let epoch = i32::from_be_bytes(data[at + 12..at + 16].try_into().expect("4 bytes"));
            let last_delta = i32::from_be_bytes(data[at + 23..at + 27].try_into().expect("4 bytes")) as i64;
            let size = 12 + length;
            if at + size > data.len() {
                if base < end {
                    problems.push(format!("{} ends in a torn batch at byte {at}", segment.display()));
                }
                break;
            }
            if base >= end {
                break;
            }
            if let Some(expected) = next
                && base != expected
            {
                problems.push(format!("batch at offset {base} after one ending at {}", expected - 1));
            }
            if base + last_delta >= end {
                problems.push(format!("batch {base}..={} straddles the high watermark {end}", base + last_delta));
            }
            next = Some(base + last_delta + 1);
            bytes.extend_from_slice(&data[at..at + size]);
            epochs.push(epoch);
            at += size;
        }
    }
    if end > 0 && next.is_none_or(|n| n < end) {
        problems.push(format!("the log ends at {next:?}, below the high watermark {end}"));
    }
    Ok((bytes, epochs, problems))
}
