//! The workload: one idempotent acks=all producer per partition sends
//! numbered records (`<partition>:<seq>`, seq counting up from 0) to its
//! partition at a steady pace and records every acknowledgement as
//! (partition, offset, seq, when); a consumer reads every partition
//! concurrently and records what it saw, so the checker can also prove that
//! nothing a reader saw was ever taken back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmon_client::{Consumer, ConsumerConfig, Producer, ProducerConfig};
use tokio::task::JoinHandle;

/// Bound on a producer finishing its records in flight once told to stop
/// (longer than its delivery timeout, so only a stuck producer misses it).
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// One acknowledged record.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub partition: u32,
    pub offset: i64,
    pub seq: u64,
    pub at: Instant,
}

/// The record value for `seq` of `partition`.
pub fn value(partition: u32, seq: u64) -> String {
    format!("{partition}:{seq}")
}

/// The seq of a record value of `partition`, if it is one of ours.
pub fn parse_value(partition: u32, value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let (p, seq) = text.split_once(':')?;
    (p.parse::<u32>().ok()? == partition).then_some(())?;
    seq.parse().ok()
}

/// What the workload saw, shared with its tasks.
#[derive(Debug, Default)]
pub struct Record {
    pub acks: Mutex<Vec<Ack>>,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// (partition, offset) → seq, as the concurrent consumer read it.
    pub consumed: Mutex<BTreeMap<(u32, i64), u64>>,
    /// Order violations the consumer saw.
    pub consumer_violations: Mutex<Vec<String>>,
}

/// The running producers and consumer.
pub struct Workload {
    pub record: Arc<Record>,
    stop: Arc<AtomicBool>,
    producers: Vec<JoinHandle<()>>,
    consumer: JoinHandle<()>,
}

impl Workload {
    /// Connects the producers (one per partition) and the consumer to
    /// `bootstrap` and starts them; each producer sends one record every
    /// `interval`.
    pub async fn start(bootstrap: &str, topic: &str, partitions: u32, interval: Duration) -> anyhow::Result<Workload> {
        let record = Arc::new(Record::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut producers = Vec::new();
        for partition in 0..partitions {
            let mut config = ProducerConfig::new(bootstrap);
            config.linger = Duration::from_millis(2);
            config.request_timeout = Duration::from_secs(2);
            config.delivery_timeout = Duration::from_secs(20);
            let producer = Producer::connect(config).await?;
            producers.push(tokio::spawn(produce(
                producer,
                topic.to_string(),
                partition,
                interval,
                record.clone(),
                stop.clone(),
            )));
        }
        let consumer =
            tokio::spawn(consume(bootstrap.to_string(), topic.to_string(), partitions, record.clone(), stop.clone()));
        Ok(Workload { record, stop, producers, consumer })
    }

    /// Stops sending, waits (bounded) for the records in flight to be
    /// acknowledged or fail, and stops the consumer. Also returns the
    /// partitions whose producer missed [`STOP_DEADLINE`]; those are
    /// aborted so nothing is written behind the checker's back.
    pub async fn stop(self) -> (Arc<Record>, Vec<u32>) {
        self.stop.store(true, Ordering::Release);
        let until = tokio::time::Instant::now() + STOP_DEADLINE;
        let mut stuck = Vec::new();
        for (partition, mut producer) in self.producers.into_iter().enumerate() {
            if tokio::time::timeout_at(until, &mut producer).await.is_err() {
                producer.abort();
                stuck.push(partition as u32);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.consumer).await;
        (self.record, stuck)
    }
}

async fn produce(
    producer: Producer,
    topic: String,
    partition: u32,
    interval: Duration,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waiting = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Acquire) {
        ticker.tick().await;
        match producer.send_to(&topic, Some(partition), None, value(partition, seq).as_bytes()).await {
            Ok(handle) => {
                record.sent.fetch_add(1, Ordering::Relaxed);
                let record = record.clone();
                let this = seq;
                waiting.push(tokio::spawn(async move {
                    match handle.wait().await {
                        Ok(meta) => record.acks.lock().expect("acks").push(Ack {
                            partition,
                            offset: meta.offset,
                            seq: this,
                            at: Instant::now(),
                        }),
                        Err(_) => {
                            record.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
                seq += 1;
            }
            Err(_) => {
                record.send_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        waiting.retain(|w| !w.is_finished());
    }
    let _ = producer.flush().await;
    for waiter in waiting {
        let _ = waiter.await;
    }
}

async fn consume(bootstrap: String, topic: String, partitions: u32, record: Arc<Record>, stop: Arc<AtomicBool>) {
    let mut next: Vec<i64> = vec![0; partitions as usize];
    let mut last_seq: Vec<Option<u64>> = vec![None; partitions as usize];
    while !stop.load(Ordering::Acquire) {
        let mut consumer = match Consumer::connect(ConsumerConfig::new(bootstrap.clone())).await {
            Ok(consumer) => consumer,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for partition in 0..partitions {
            consumer.assign(&topic, partition, next[partition as usize]);
        }
        while !stop.load(Ordering::Acquire) {
            let records = match tokio::time::timeout(Duration::from_secs(5), consumer.poll()).await {
                Ok(Ok(records)) => records,
                _ => break,
            };
            let mut consumed = record.consumed.lock().expect("consumed");
            for r in records {
                let p = r.partition as usize;
                let Some(seq) = parse_value(r.partition, &r.value) else {
                    record.consumer_violations.lock().expect("v").push(format!(
                        "partition {}: offset {} holds a value that is not ours: {:?}",
                        r.partition,
                        r.offset,
                        String::from_utf8_lossy(&r.value)
                    ));
                    continue;
                };
                if r.offset < next[p] {
                    continue;
                }
                if let Some(last) = last_seq[p]
                    && seq <= last
                {
                    record
                        .consumer_violations
                        .lock()
                        .expect("v")
                        .push(format!("partition {}: seq {seq} at offset {} after seq {last}", r.partition, r.offset));
                }
                last_seq[p] = Some(seq);
                next[p] = r.offset + 1;
                consumed.insert((r.partition, r.offset), seq);
            }
        }
    }
}
