//! The example topologies: word count, a per-key windowed sum, an
//! enrichment join. `examples/`, `kmon streams` and `kmon bench streams`
//! run them.

use crate::serde::{StringSerde, U64Serde};
use crate::topology::StreamsBuilder;
use crate::window::TimeWindows;

/// Lines of `input` → lowercase words → count per word in the store
/// `counts` → `output` (word → count, u64 big-endian), once per commit per
/// changed word.
pub fn word_count(builder: &StreamsBuilder, input: &str, output: &str) {
    builder
        .stream(input, StringSerde, StringSerde)
        .flat_map(|_, line: String| {
            line.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| (w.to_lowercase(), String::new()))
                .collect::<Vec<_>>()
        })
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        .to(output, StringSerde, U64Serde);
}

/// Keyed records of `input` whose value is an unsigned number → sum per
/// key and window (`windows`: size, hop, grace, retention) on record time
/// → `output` keyed `key@window_start_ms`.
pub fn windowed_sum(builder: &StreamsBuilder, input: &str, output: &str, windows: TimeWindows) {
    builder
        .stream(input, StringSerde, StringSerde)
        .map_values(|v: String| v.trim().parse::<u64>().unwrap_or(0))
        .group_by_key(StringSerde, U64Serde)
        .windowed_by(windows)
        .aggregate("window-sums", || 0u64, |_, v, sum| sum + v, U64Serde)
        .to_stream()
        .map(|w, sum| (format!("{}@{}", w.key, w.start_ms), sum))
        .to(output, StringSerde, U64Serde);
}

/// Events of `input` keyed by user id, enriched with the user's profile
/// from the compacted `table` (same key, same partition count) →
/// `output`: `event|profile`, or `event|unknown` without one.
pub fn enrich(builder: &StreamsBuilder, input: &str, table: &str, output: &str) {
    let users = builder.table(table, StringSerde, StringSerde);
    builder
        .stream(input, StringSerde, StringSerde)
        .left_join(&users, |event: &String, profile: Option<String>| {
            format!("{event}|{}", profile.as_deref().unwrap_or("unknown"))
        })
        .to(output, StringSerde, StringSerde);
}
