//! The record a broker stores in `__kmon_node_metrics` for each sample a
//! node agent ships (key: the node's name; value: this type as JSON), and
//! that `kmon report` reads back: one serde type for both sides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The internal topic node samples are stored in.
pub const TOPIC: &str = "__kmon_node_metrics";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub node: String,
    /// Where the agent serves `/metrics` (empty in samples of old agents).
    #[serde(default)]
    pub metrics_address: String,
    /// The agent's sample counter: a sample shipped twice has one sequence.
    pub sequence: u64,
    pub timestamp_ms: i64,
    #[serde(default)]
    pub series: Vec<StoredSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSeries {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// JSON has no NaN: a NaN (or infinite) value is stored as null.
    pub value: Option<f64>,
}

impl StoredSample {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a sample always serializes")
    }

    /// `None` for a value that is not a sample.
    pub fn from_json(bytes: &[u8]) -> Option<StoredSample> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stores_nan_as_null() {
        let sample = StoredSample {
            node: "n1".into(),
            metrics_address: "127.0.0.1:9744".into(),
            sequence: 7,
            timestamp_ms: 1_700_000_000_000,
            series: vec![
                StoredSeries { name: "a".into(), labels: [("k".into(), "v".into())].into(), value: Some(1.5) },
                StoredSeries { name: "b".into(), labels: BTreeMap::new(), value: Some(f64::NAN) },
            ],
        };
        let json = sample.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"value\":null"));
        let back = StoredSample::from_json(&json).unwrap();
        assert_eq!(back.series[0], sample.series[0]);
        assert_eq!(back.series[1].value, None);
        assert_eq!(StoredSample::from_json(b"not json"), None);
    }
}
