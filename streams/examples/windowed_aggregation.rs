//! A per-key sum over hopping windows on record time, with grace for late
//! records (Kafka Streams' `windowedBy(TimeWindows…).aggregate(…)`).
//!
//! Records `sensor → reading` of `readings` → the sum per sensor over
//! 1-minute windows that start every 20 s, late records accepted up to 10 s
//! after a window's end → `reading-sums` keyed `sensor@window_start_ms`.
//!
//! ```text
//! kmon topic create readings --partitions 2
//! kmon topic create reading-sums --partitions 2
//! cargo run -p kmon-streams --example windowed_aggregation -- 127.0.0.1:9092
//! echo "boiler-1:42" | kmon produce --topic readings --key-separator :
//! ```
//!
//! A record later than its window's end plus the grace is dropped and
//! counted in `kafka_streams_stream_task_metrics_dropped_records_total{reason="late"}`.

use std::time::Duration;

use kmon_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StringSerde, TimeWindows, U64Serde};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let windows = TimeWindows::hopping(Duration::from_secs(60), Duration::from_secs(20)).grace(Duration::from_secs(10));
    let builder = StreamsBuilder::new("windowed-aggregation-example");
    builder
        .stream("readings", StringSerde, StringSerde)
        .filter(|_, reading: &String| reading.trim().parse::<u64>().is_ok())
        .map_values(|reading: String| reading.trim().parse::<u64>().unwrap_or_default())
        .group_by_key(StringSerde, U64Serde)
        .windowed_by(windows)
        .aggregate("reading-sums", || 0u64, |_, reading, sum| sum + reading, U64Serde)
        .to_stream()
        .map(|window, sum| (format!("{}@{}", window.key, window.start_ms), sum))
        .to("reading-sums", StringSerde, U64Serde);

    let streams = KafkaStreams::new(&builder, StreamsConfig::new(bootstrap))?;
    println!("windowed aggregation running; Ctrl-C stops");
    streams.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    Ok(())
}
