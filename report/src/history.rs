//! The shipped history: records of [`TOPIC`] decoded into [`Sample`]s.
//!
//! Each record value is one agent sample, as the broker stores it
//! (`broker/src/service/agent.rs`):
//!
//! ```json
//! {"node": "host1", "metrics_address": "10.0.0.5:9744", "sequence": 42,
//!  "timestamp_ms": 1700000000000,
//!  "series": [{"name": "node_load1", "labels": {}, "value": 0.5}, ...]}
//! ```
//!
//! Host series keep node_exporter's names; the cluster sample (taken by
//! the agent, see `kmon_agent::collect::cluster`) adds `kmon_cluster_*`,
//! the brokers' all-topics `kafka_server_brokertopicmetrics_*_total{broker}`
//! and `kafka_consumergroup_lag_sum{consumergroup,topic}`. Delivery is at
//! least once: [`dedupe`] keeps one sample per (node, sequence).

use kmon_proto::node_sample::StoredSample;

/// The internal topic the brokers store agent samples in.
pub const TOPIC: &str = kmon_proto::node_sample::TOPIC;

/// One agent sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub node: String,
    pub sequence: u64,
    pub timestamp_ms: i64,
    pub series: Vec<Series>,
}

/// One value; labels sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Series {
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> Self {
        let mut labels: Vec<(String, String)> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        labels.sort();
        Series { name: name.to_owned(), labels, value }
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Decodes one record value; `None` for a value that is not a sample.
pub fn decode(value: &[u8]) -> Option<Sample> {
    let record = StoredSample::from_json(value)?;
    Some(Sample {
        node: record.node,
        sequence: record.sequence,
        timestamp_ms: record.timestamp_ms,
        series: record
            .series
            .into_iter()
            .filter_map(|s| Some(Series { name: s.name, labels: s.labels.into_iter().collect(), value: s.value? }))
            .collect(),
    })
}

/// Sorts by (node, time) and keeps the first of each (node, sequence).
pub fn dedupe(mut samples: Vec<Sample>) -> Vec<Sample> {
    samples.sort_by(|a, b| (&a.node, a.timestamp_ms, a.sequence).cmp(&(&b.node, b.timestamp_ms, b.sequence)));
    let mut seen = std::collections::BTreeSet::new();
    samples.retain(|s| seen.insert((s.node.clone(), s.sequence)));
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_stored_record_value() {
        let value = br#"{"node":"h1","metrics_address":"a:1","sequence":7,"timestamp_ms":1000,
            "series":[{"name":"node_load1","labels":{},"value":0.5},
                      {"name":"node_disk_read_bytes_total","labels":{"device":"/dev/sda"},"value":10},
                      {"name":"x","labels":{},"value":null}]}"#;
        let sample = decode(value).unwrap();
        assert_eq!((sample.node.as_str(), sample.sequence, sample.timestamp_ms), ("h1", 7, 1000));
        assert_eq!(sample.series.len(), 2);
        assert_eq!(sample.series[1].label("device"), Some("/dev/sda"));
        assert!(decode(b"not json").is_none());
    }

    #[test]
    fn dedupe_keeps_one_per_node_and_sequence_in_time_order() {
        let s =
            |node: &str, sequence, timestamp_ms| Sample { node: node.into(), sequence, timestamp_ms, series: vec![] };
        let out = dedupe(vec![s("b", 1, 20), s("a", 2, 20), s("a", 1, 10), s("a", 2, 20)]);
        let keys: Vec<_> = out.iter().map(|s| (s.node.as_str(), s.sequence)).collect();
        assert_eq!(keys, [("a", 1), ("a", 2), ("b", 1)]);
    }
}
