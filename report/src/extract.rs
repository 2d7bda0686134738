//! From samples to chart data: pure functions, no drawing, no I/O.
//!
//! [`charts`] gives the report's panels in layout order ([`TITLES`]), each
//! a set of named [`Line`]s of `(time ms, value)` points:
//!
//! | panel | from | how |
//! |---|---|---|
//! | throughput | `kafka_server_brokertopicmetrics_bytes{in,out}_total{broker}` | rate per broker, summed |
//! | lag per group | `kafka_consumergroup_lag_sum{consumergroup,topic}` | summed over topics |
//! | under-replicated | `kmon_cluster_{underreplicated,offline}_partitions` | as is |
//! | ISR size | `kmon_cluster_isr_size_min`, `_isr_replicas`, `_replicas`, `_partitions` | min; sums ÷ partitions |
//! | partitions per broker | `kmon_cluster_broker_{replicas,leaders}{broker}` | as is |
//! | disk per node | `node_disk_{read,written}_bytes_total{device}` | rate per device, summed per node |
//! | network per node | `node_network_{receive,transmit}_bytes_total{device}` | rate per device, summed per node |
//! | CPU per node | `node_cpu_seconds_total{cpu,mode}` | non-idle share of the rate of all modes, % |
//!
//! Rates come from counter deltas between consecutive samples of one node
//! (per full label set: one series' reset — a negative delta — drops only
//! that series from that interval). The cluster panels use the cluster
//! sample of one node only, the one that shipped most of them, so several
//! agents sampling the cluster do not add up.

use kmon_proto::metric_names as names;
use std::collections::{BTreeMap, HashMap};

use crate::history::{Sample, Series};

/// Panel titles, in layout order (row by row, two per row).
pub const TITLES: [&str; 8] = [
    "Produce / consume throughput",
    "Consumer lag per group",
    "Under-replicated partitions",
    "ISR size",
    "Partitions per broker",
    "Disk I/O per node",
    "Network per node",
    "CPU busy per node",
];

/// What a panel's values are, which gives its axis label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Scaled to B/s, KiB/s, MiB/s or GiB/s when drawn.
    BytesPerSecond,
    Records,
    Partitions,
    Replicas,
    Percent,
}

/// One named line of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    /// `(milliseconds since the Unix epoch, value)`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// One panel's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: &'static str,
    pub unit: Unit,
    pub lines: Vec<Line>,
}

impl Chart {
    pub fn points(&self) -> usize {
        self.lines.iter().map(|l| l.points.len()).sum()
    }
}

const CLUSTER_MARKER: &str = names::cluster::PARTITIONS;

/// The report's panels, in layout order.
pub fn charts(samples: &[Sample]) -> Vec<Chart> {
    let nodes = by_node(samples);
    let cluster: Vec<&Sample> = cluster_node(&nodes).map(|n| nodes[n].clone()).unwrap_or_default();
    let chart = |index: usize, unit, lines| Chart { title: TITLES[index], unit, lines };
    vec![
        chart(0, Unit::BytesPerSecond, throughput(&cluster)),
        chart(
            1,
            Unit::Records,
            gauge(&cluster, names::broker::GROUP_LAG_SUM, |s| s.label("consumergroup").map(str::to_owned)),
        ),
        chart(2, Unit::Partitions, under_replicated(&cluster)),
        chart(3, Unit::Replicas, isr(&cluster)),
        chart(4, Unit::Partitions, balance(&cluster)),
        chart(
            5,
            Unit::BytesPerSecond,
            per_node(&nodes, &[(names::node::DISK_READ, "read"), (names::node::DISK_WRITTEN, "write")]),
        ),
        chart(
            6,
            Unit::BytesPerSecond,
            per_node(&nodes, &[(names::node::NET_RX_BYTES, "rx"), (names::node::NET_TX_BYTES, "tx")]),
        ),
        chart(7, Unit::Percent, cpu(&nodes)),
    ]
}

/// Each node's samples, in time order.
fn by_node(samples: &[Sample]) -> BTreeMap<&str, Vec<&Sample>> {
    let mut nodes: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in samples {
        nodes.entry(sample.node.as_str()).or_default().push(sample);
    }
    for list in nodes.values_mut() {
        list.sort_by_key(|s| (s.timestamp_ms, s.sequence));
    }
    nodes
}

/// The node that shipped the most cluster samples.
fn cluster_node<'a>(nodes: &BTreeMap<&'a str, Vec<&Sample>>) -> Option<&'a str> {
    nodes
        .iter()
        .map(|(node, samples)| {
            (*node, samples.iter().filter(|s| s.series.iter().any(|x| x.name == CLUSTER_MARKER)).count())
        })
        .filter(|(_, count)| *count > 0)
        .max_by_key(|(node, count)| (*count, std::cmp::Reverse(*node)))
        .map(|(node, _)| node)
}

/// Per sample, the values of `name` summed by the key `key` gives (series
/// whose key is `None` are left out).
pub fn gauge(samples: &[&Sample], name: &str, key: impl Fn(&Series) -> Option<String>) -> Vec<Line> {
    let mut lines: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for sample in samples {
        for series in sample.series.iter().filter(|s| s.name == name) {
            if let Some(key) = key(series) {
                *lines.entry(key).or_default().entry(sample.timestamp_ms).or_default() += series.value;
            }
        }
    }
    to_lines(lines)
}

/// Per consecutive pair of samples, the per-second rate of the counter
/// `name`, taken per label set and summed by `key`.
pub fn rate(samples: &[&Sample], name: &str, key: impl Fn(&Series) -> Option<String>) -> Vec<Line> {
    let mut lines: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for pair in samples.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let seconds = (after.timestamp_ms - before.timestamp_ms) as f64 / 1000.0;
        if seconds <= 0.0 {
            continue;
        }
        let previous: HashMap<&[(String, String)], f64> =
            before.series.iter().filter(|s| s.name == name).map(|s| (s.labels.as_slice(), s.value)).collect();
        for series in after.series.iter().filter(|s| s.name == name) {
            let Some(key) = key(series) else { continue };
            // A series new in this sample, or reset (a restart), has no rate yet.
            let Some(delta) = previous.get(series.labels.as_slice()).map(|p| series.value - p) else { continue };
            if delta >= 0.0 {
                *lines.entry(key).or_default().entry(after.timestamp_ms).or_default() += delta / seconds;
            }
        }
    }
    to_lines(lines)
}

fn to_lines(lines: BTreeMap<String, BTreeMap<i64, f64>>) -> Vec<Line> {
    lines.into_iter().map(|(name, points)| Line { name, points: points.into_iter().collect() }).collect()
}

fn named(mut lines: Vec<Line>, name: &str) -> Option<Line> {
    lines.pop().map(|mut line| {
        name.clone_into(&mut line.name);
        line
    })
}

fn all(_: &Series) -> Option<String> {
    Some(String::new())
}

fn throughput(cluster: &[&Sample]) -> Vec<Line> {
    [(names::broker::BYTES_IN_TOTAL, "produce (bytes in)"), (names::broker::BYTES_OUT_TOTAL, "consume (bytes out)")]
        .into_iter()
        .filter_map(|(metric, name)| named(rate(cluster, metric, all), name))
        .collect()
}

fn under_replicated(cluster: &[&Sample]) -> Vec<Line> {
    [(names::cluster::UNDER_REPLICATED, "under-replicated"), (names::cluster::OFFLINE, "offline")]
        .into_iter()
        .filter_map(|(metric, name)| named(gauge(cluster, metric, all), name))
        .collect()
}

/// Smallest ISR, mean ISR and mean replica count over all partitions.
fn isr(cluster: &[&Sample]) -> Vec<Line> {
    let value = |sample: &Sample, name: &str| sample.series.iter().find(|s| s.name == name).map(|s| s.value);
    let mut min = Line { name: "smallest ISR".into(), points: vec![] };
    let mut mean = Line { name: "mean ISR".into(), points: vec![] };
    let mut replicas = Line { name: "mean replicas".into(), points: vec![] };
    for sample in cluster {
        let t = sample.timestamp_ms;
        if let Some(v) = value(sample, names::cluster::ISR_MIN) {
            min.points.push((t, v));
        }
        let Some(partitions) = value(sample, names::cluster::PARTITIONS).filter(|p| *p > 0.0) else { continue };
        if let Some(v) = value(sample, names::cluster::ISR_REPLICAS) {
            mean.points.push((t, v / partitions));
        }
        if let Some(v) = value(sample, names::cluster::REPLICAS) {
            replicas.points.push((t, v / partitions));
        }
    }
    [min, mean, replicas].into_iter().filter(|l| !l.points.is_empty()).collect()
}

fn balance(cluster: &[&Sample]) -> Vec<Line> {
    let mut lines = Vec::new();
    for (metric, what) in [(names::cluster::BROKER_REPLICAS, "replicas"), (names::cluster::BROKER_LEADERS, "leaders")] {
        lines.extend(gauge(cluster, metric, |s| s.label("broker").map(|b| format!("broker {b:>3} {what}"))));
    }
    // Broker by broker: its replicas, then its leaders.
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    for line in &mut lines {
        line.name = line.name.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    lines
}

/// For every node, the rate of each counter (summed over its devices) as
/// a line `"<node> <suffix>"`.
fn per_node(nodes: &BTreeMap<&str, Vec<&Sample>>, counters: &[(&str, &str)]) -> Vec<Line> {
    let mut lines = Vec::new();
    for (node, samples) in nodes {
        for (metric, suffix) in counters {
            lines.extend(named(rate(samples, metric, all), &format!("{node} {suffix}")));
        }
    }
    lines
}

/// For every node, 100 × non-idle ÷ all CPU seconds (idle and iowait count
/// as idle, as node_exporter dashboards do).
fn cpu(nodes: &BTreeMap<&str, Vec<&Sample>>) -> Vec<Line> {
    let mut lines = Vec::new();
    for (node, samples) in nodes {
        let split = rate(samples, names::node::CPU_SECONDS, |s| {
            Some(if matches!(s.label("mode"), Some("idle" | "iowait")) { "idle" } else { "busy" }.to_owned())
        });
        let find = |name: &str| -> BTreeMap<i64, f64> {
            split.iter().find(|l| l.name == name).map(|l| l.points.iter().copied().collect()).unwrap_or_default()
        };
        let (busy, idle) = (find("busy"), find("idle"));
        let points: Vec<(i64, f64)> = busy
            .iter()
            .filter_map(|(t, b)| {
                let total = b + idle.get(t).copied().unwrap_or(0.0);
                (total > 0.0).then(|| (*t, 100.0 * b / total))
            })
            .collect();
        if !points.is_empty() {
            lines.push(Line { name: (*node).to_owned(), points });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node: &str, sequence: u64, t: i64, series: Vec<Series>) -> Sample {
        Sample { node: node.into(), sequence, timestamp_ms: t, series }
    }

    fn cluster(sequence: u64, t: i64, bytes_in: [f64; 2], lag: f64) -> Sample {
        sample(
            "n1",
            sequence,
            t,
            vec![
                Series::new("kmon_cluster_partitions", &[], 4.0),
                Series::new("kmon_cluster_replicas", &[], 12.0),
                Series::new("kmon_cluster_isr_replicas", &[], 10.0),
                Series::new("kmon_cluster_isr_size_min", &[], 2.0),
                Series::new("kmon_cluster_underreplicated_partitions", &[], 2.0),
                Series::new("kmon_cluster_broker_replicas", &[("broker", "1")], 4.0),
                Series::new("kmon_cluster_broker_leaders", &[("broker", "1")], 2.0),
                Series::new("kmon_cluster_broker_replicas", &[("broker", "10")], 4.0),
                Series::new("kafka_server_brokertopicmetrics_bytesin_total", &[("broker", "1")], bytes_in[0]),
                Series::new("kafka_server_brokertopicmetrics_bytesin_total", &[("broker", "2")], bytes_in[1]),
                Series::new("kafka_consumergroup_lag_sum", &[("consumergroup", "g"), ("topic", "a")], lag),
                Series::new("kafka_consumergroup_lag_sum", &[("consumergroup", "g"), ("topic", "b")], 1.0),
            ],
        )
    }

    fn line<'a>(chart: &'a Chart, name: &str) -> &'a Line {
        chart.lines.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no line {name} in {chart:?}"))
    }

    #[test]
    fn throughput_is_the_sum_of_per_broker_rates_and_survives_a_reset() {
        let samples = [
            cluster(1, 1_000, [100.0, 1_000.0], 5.0),
            cluster(2, 3_000, [300.0, 1_200.0], 6.0),
            // Broker 1 restarted: its counter went back; broker 2 still counts.
            cluster(3, 4_000, [10.0, 1_300.0], 7.0),
        ];
        let charts = charts(&samples);
        assert_eq!(charts.len(), TITLES.len());
        let produce = line(&charts[0], "produce (bytes in)");
        assert_eq!(produce.points, [(3_000, 100.0 + 100.0), (4_000, 100.0)]);
        assert!(charts[0].lines.iter().all(|l| l.name != "consume (bytes out)"), "no bytesout series, no line");
        assert_eq!(line(&charts[1], "g").points, [(1_000, 6.0), (3_000, 7.0), (4_000, 8.0)]);
        assert_eq!(line(&charts[2], "under-replicated").points.len(), 3);
        assert_eq!(line(&charts[3], "mean ISR").points[0], (1_000, 2.5));
        assert_eq!(line(&charts[3], "mean replicas").points[0], (1_000, 3.0));
        assert_eq!(line(&charts[3], "smallest ISR").points[0], (1_000, 2.0));
        let names: Vec<&str> = charts[4].lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["broker 1 leaders", "broker 1 replicas", "broker 10 replicas"]);
    }

    #[test]
    fn node_rates_sum_devices_per_node() {
        let node = |node: &str, sequence, t, sda: f64, sdb: f64, rx: f64| {
            sample(
                node,
                sequence,
                t,
                vec![
                    Series::new("node_disk_written_bytes_total", &[("device", "/dev/sda")], sda),
                    Series::new("node_disk_written_bytes_total", &[("device", "/dev/sdb")], sdb),
                    Series::new("node_network_receive_bytes_total", &[("device", "lo")], rx),
                    Series::new("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")], sda / 100.0),
                    Series::new("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")], sdb / 100.0),
                ],
            )
        };
        let samples = [
            node("a", 1, 0, 0.0, 0.0, 0.0),
            node("a", 2, 500, 500.0, 1_500.0, 50.0),
            node("b", 1, 0, 0.0, 0.0, 0.0),
            node("b", 2, 2_000, 2_000.0, 0.0, 0.0),
        ];
        let charts = charts(&samples);
        assert_eq!(line(&charts[5], "a write").points, [(500, 4_000.0)]);
        assert_eq!(line(&charts[5], "b write").points, [(2_000, 1_000.0)]);
        assert_eq!(line(&charts[6], "a rx").points, [(500, 100.0)]);
        assert_eq!(line(&charts[7], "a").points, [(500, 75.0)]);
        assert_eq!(line(&charts[7], "b").points, [(2_000, 0.0)]);
        // No cluster sample: the cluster panels are empty, not an error.
        assert!(charts[..5].iter().all(|c| c.lines.is_empty()));
    }

    #[test]
    fn cluster_panels_use_one_node_even_when_two_sample_the_cluster() {
        let mut other = cluster(1, 1_000, [0.0, 0.0], 100.0);
        other.node = "n0".into();
        let samples = [other, cluster(1, 1_000, [0.0, 0.0], 5.0), cluster(2, 2_000, [0.0, 0.0], 5.0)];
        let charts = charts(&samples);
        assert_eq!(line(&charts[1], "g").points, [(1_000, 6.0), (2_000, 6.0)]);
    }
}
