//! Word count, Kafka Streams' first example, on kmon-streams.
//!
//! Lines of `text-lines` → lowercase words → a count per word, kept in the
//! store `counts` (backed by the compacted topic
//! `word-count-example-counts-changelog`) → `word-counts` (word → count,
//! u64 big-endian), once per commit per changed word.
//!
//! ```text
//! kmon up                                      # a local cluster on 127.0.0.1:9092
//! kmon topic create text-lines --partitions 4
//! kmon topic create word-counts --partitions 4
//! cargo run -p kmon-streams --example word_count -- 127.0.0.1:9092
//! echo "the quick brown fox jumps over the lazy dog" | kmon produce --topic text-lines
//! ```
//!
//! Start it twice to share the partitions between two instances; stop one
//! and the other restores its stores from the changelog and goes on.

use kmon_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StringSerde, U64Serde};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let builder = StreamsBuilder::new("word-count-example");
    builder
        .stream("text-lines", StringSerde, StringSerde)
        .flat_map(|_, line: String| {
            let words = line.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty());
            words.map(|w| (w.to_lowercase(), String::new())).collect::<Vec<_>>()
        })
        // The key changed (line key → word): records go through the
        // repartition topic so one task sees every occurrence of a word.
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        .to("word-counts", StringSerde, U64Serde);

    let streams = KafkaStreams::new(&builder, StreamsConfig::new(bootstrap))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("word count running; metrics at http://{}/metrics; Ctrl-C stops", listener.local_addr()?);
    tokio::spawn(streams.metrics().serve(listener));
    streams.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    Ok(())
}
