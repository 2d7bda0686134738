//! Enrichment: a stream of events joined with a table of the latest
//! profile per user (Kafka Streams' `KStream#leftJoin(KTable)`).
//!
//! `page-views` (user → page) and the compacted `user-profiles` (user →
//! profile; same partition count: the join is per partition) →
//! `enriched-views`: `page|profile`, or `page|unknown` for a user without
//! a profile yet. The table is a store restored from its own topic.
//!
//! ```text
//! kmon topic create user-profiles --partitions 2 --config cleanup.policy=compact
//! kmon topic create page-views --partitions 2
//! kmon topic create enriched-views --partitions 2
//! cargo run -p kmon-streams --example enrichment_join -- 127.0.0.1:9092
//! echo "alice:gold, Berlin" | kmon produce --topic user-profiles --key-separator :
//! echo "alice:/checkout" | kmon produce --topic page-views --key-separator :
//! ```

use kmon_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StringSerde};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
    let builder = StreamsBuilder::new("enrichment-join-example");
    let profiles = builder.table("user-profiles", StringSerde, StringSerde);
    builder
        .stream("page-views", StringSerde, StringSerde)
        .left_join(&profiles, |page: &String, profile: Option<String>| match profile {
            Some(profile) => format!("{page}|{profile}"),
            None => format!("{page}|unknown"),
        })
        .to("enriched-views", StringSerde, StringSerde);

    let streams = KafkaStreams::new(&builder, StreamsConfig::new(bootstrap))?;
    println!("enrichment join running; Ctrl-C stops");
    streams.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    Ok(())
}
