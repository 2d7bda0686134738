//! Exposition text → OTLP metrics. Pure: no I/O, no clock (the caller
//! passes the timestamps).
//!
//! Reads both formats kmon serves: the Prometheus text format 0.0.4 (the
//! broker's `render(.., PrometheusText)`) and OpenMetrics (the agent's
//! `/metrics`). Mapping:
//!
//! | exposition                         | OTLP                                               |
//! |------------------------------------|----------------------------------------------------|
//! | `counter`                          | `Sum`, monotonic, cumulative, double points         |
//! | `gauge`, `untyped`, `unknown`      | `Gauge`, double points                             |
//! | `histogram` (`_bucket{le}`, `_sum`, `_count`) | `Histogram`, cumulative, per-bucket counts, `le` bounds |
//! | anything else (`summary`, …)       | dropped (kmon serves none)                         |
//! | labels                             | string attributes (`le` is the bucket bound)        |
//! | `# HELP`                           | description                                        |
//!
//! Metric names are the sample names as scraped (counters keep `_total`),
//! so the series a collector forwards to Prometheus keep the names the
//! dashboards and alert rules use. Cumulative points carry `start` as their
//! start time: the exporter's start, close to the process start.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum, metric,
    number_data_point,
};

/// Timestamps of one conversion, in ns since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    /// Start of the cumulative series.
    pub(crate) start_ns: u64,
    /// When the text was rendered.
    pub(crate) now_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Other,
}

/// One parsed sample line.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// A family being assembled, in the order families first appear.
struct Family {
    name: String,
    help: String,
    kind: Kind,
    numbers: Vec<NumberDataPoint>,
    /// Histogram series by their labels (without `le`), in first-seen order.
    histograms: Vec<(Vec<(String, String)>, HistogramAcc)>,
}

#[derive(Default)]
struct HistogramAcc {
    /// (upper bound, cumulative count), as scraped.
    buckets: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// Converts exposition text into OTLP metrics. Lines that do not parse are
/// skipped (and counted in the second value), never fatal.
pub(crate) fn to_otlp(text: &str, times: Times) -> (Vec<Metric>, usize) {
    let mut kinds: HashMap<&str, Kind> = HashMap::new();
    let mut helps: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            let kind = match kind.trim() {
                "counter" => Kind::Counter,
                "gauge" | "untyped" | "unknown" => Kind::Gauge,
                "histogram" => Kind::Histogram,
                _ => Kind::Other,
            };
            kinds.insert(name, kind);
        } else if let Some(rest) = line.strip_prefix("# HELP ")
            && let Some((name, help)) = rest.split_once(' ')
        {
            helps.insert(name, help);
        }
    }

    let mut families: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(sample) = parse_sample(line) else {
            skipped += 1;
            continue;
        };
        let (family_name, suffix, kind) = resolve(sample.name, &kinds);
        if kind == Kind::Other || suffix == "_created" {
            continue;
        }
        // Counters are named by their sample (`x_total`) whatever the format.
        let otlp_name = if kind == Kind::Counter { sample.name } else { family_name };
        let at = *index.entry(otlp_name.to_string()).or_insert_with(|| {
            families.push(Family {
                name: otlp_name.to_string(),
                help: helps
                    .get(family_name)
                    .or_else(|| helps.get(otlp_name))
                    .map_or_else(String::new, |h| unescape_help(h)),
                kind,
                numbers: Vec::new(),
                histograms: Vec::new(),
            });
            families.len() - 1
        });
        let family = &mut families[at];
        match kind {
            Kind::Counter | Kind::Gauge => family.numbers.push(NumberDataPoint {
                attributes: attributes(sample.labels.iter().map(|(k, v)| (*k, v.as_str()))),
                start_time_unix_nano: if kind == Kind::Counter { times.start_ns } else { 0 },
                time_unix_nano: times.now_ns,
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                ..Default::default()
            }),
            Kind::Histogram => {
                let mut le = None;
                let mut key: Vec<(String, String)> = Vec::with_capacity(sample.labels.len());
                for (k, v) in &sample.labels {
                    if *k == "le" {
                        le = parse_value(v);
                    } else {
                        key.push(((*k).to_string(), v.clone()));
                    }
                }
                let acc = match family.histograms.iter().position(|(k, _)| *k == key) {
                    Some(i) => &mut family.histograms[i].1,
                    None => {
                        family.histograms.push((key, HistogramAcc::default()));
                        &mut family.histograms.last_mut().expect("just pushed").1
                    }
                };
                match suffix {
                    "_bucket" => match le {
                        Some(le) => acc.buckets.push((le, sample.value)),
                        None => skipped += 1,
                    },
                    "_sum" => acc.sum = Some(sample.value),
                    "_count" => acc.count = Some(sample.value),
                    _ => skipped += 1,
                }
            }
            Kind::Other => {}
        }
    }
    (families.into_iter().map(|f| f.into_metric(times)).collect(), skipped)
}

impl Family {
    fn into_metric(self, times: Times) -> Metric {
        let data = match self.kind {
            Kind::Counter => metric::Data::Sum(Sum {
                data_points: self.numbers,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            Kind::Histogram => metric::Data::Histogram(Histogram {
                data_points: self.histograms.into_iter().map(|(labels, acc)| acc.into_point(&labels, times)).collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
            Kind::Gauge | Kind::Other => metric::Data::Gauge(Gauge { data_points: self.numbers }),
        };
        Metric { name: self.name, description: self.help, data: Some(data), ..Default::default() }
    }
}

impl HistogramAcc {
    /// Prometheus buckets are cumulative and end with `+Inf`; OTLP wants a
    /// count per bucket and the finite bounds only.
    fn into_point(mut self, labels: &[(String, String)], times: Times) -> HistogramDataPoint {
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = self.count.or_else(|| self.buckets.last().map(|b| b.1)).unwrap_or(0.0);
        let mut explicit_bounds = Vec::with_capacity(self.buckets.len());
        let mut bucket_counts = Vec::with_capacity(self.buckets.len() + 1);
        let mut below = 0.0;
        for &(le, cumulative) in self.buckets.iter().filter(|(le, _)| le.is_finite()) {
            explicit_bounds.push(le);
            bucket_counts.push((cumulative - below).max(0.0) as u64);
            below = cumulative;
        }
        bucket_counts.push((count - below).max(0.0) as u64);
        HistogramDataPoint {
            attributes: attributes(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            start_time_unix_nano: times.start_ns,
            time_unix_nano: times.now_ns,
            count: count as u64,
            sum: self.sum,
            bucket_counts,
            explicit_bounds,
            ..Default::default()
        }
    }
}

/// The family a sample belongs to: (family name, suffix, kind).
fn resolve<'a>(name: &'a str, kinds: &HashMap<&str, Kind>) -> (&'a str, &'a str, Kind) {
    if let Some(kind) = kinds.get(name) {
        return (name, "", *kind);
    }
    for suffix in ["_total", "_created", "_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(kind) = kinds.get(base)
        {
            return (base, suffix, *kind);
        }
    }
    (name, "", Kind::Gauge)
}

/// `name{a="x",b="y"} value [timestamp]`
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches([' ', ',']);
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = body.split_once('=')?;
            let after = after.trim_start().strip_prefix('"')?;
            let (value, after) = take_quoted(after)?;
            labels.push((key.trim(), value));
            body = after;
        }
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample { name, labels, value })
}

/// A label value up to its closing quote, unescaped; and what follows.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn unescape_help(help: &str) -> String {
    help.replace("\\n", "\n").replace("\\\\", "\\")
}

/// String attributes from label pairs.
pub(crate) fn attributes<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<KeyValue> {
    pairs
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_string())) }),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: Times = Times { start_ns: 1, now_ns: 2 };

    fn find<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
        metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn attr(kv: &[KeyValue], key: &str) -> Option<String> {
        kv.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
    }

    #[test]
    fn parses_labels_with_escapes() {
        let s = parse_sample(r#"m{a="x\"y",b="1\\2\n"} 3.5 1700000000"#).unwrap();
        assert_eq!(s.name, "m");
        assert_eq!(s.labels, vec![("a", "x\"y".to_string()), ("b", "1\\2\n".to_string())]);
        assert_eq!(s.value, 3.5);
        assert_eq!(parse_sample("up 1").unwrap().labels, vec![]);
        assert!(parse_sample("up{a=\"x} 1").is_none());
        assert!(parse_sample("up").is_none());
    }

    #[test]
    fn prometheus_text_counters_gauges_and_histograms() {
        let text = "\
# HELP kafka_server_brokertopicmetrics_messagesin_total Records appended.
# TYPE kafka_server_brokertopicmetrics_messagesin_total counter
kafka_server_brokertopicmetrics_messagesin_total{topic=\"t\"} 5
kafka_server_brokertopicmetrics_messagesin_total 5
# TYPE kafka_log_log_size gauge
kafka_log_log_size{topic=\"t\",partition=\"0\"} 1024
# TYPE lat histogram
lat_sum{request=\"Produce\"} 7.5
lat_count{request=\"Produce\"} 4
lat_bucket{le=\"1.0\",request=\"Produce\"} 1
lat_bucket{le=\"5.0\",request=\"Produce\"} 3
lat_bucket{le=\"+Inf\",request=\"Produce\"} 4
";
        let (metrics, skipped) = to_otlp(text, TIMES);
        assert_eq!(skipped, 0);
        assert_eq!(metrics.len(), 3);
        let m = find(&metrics, "kafka_server_brokertopicmetrics_messagesin_total");
        assert_eq!(m.description, "Records appended.");
        let Some(metric::Data::Sum(sum)) = &m.data else { panic!("not a sum: {m:?}") };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        assert_eq!(sum.data_points.len(), 2);
        assert_eq!(attr(&sum.data_points[0].attributes, "topic").as_deref(), Some("t"));
        assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsDouble(5.0)));
        assert_eq!(sum.data_points[0].start_time_unix_nano, 1);
        assert!(sum.data_points[1].attributes.is_empty());

        let Some(metric::Data::Gauge(gauge)) = &find(&metrics, "kafka_log_log_size").data else { panic!() };
        assert_eq!(attr(&gauge.data_points[0].attributes, "partition").as_deref(), Some("0"));

        let Some(metric::Data::Histogram(h)) = &find(&metrics, "lat").data else { panic!() };
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, vec![1.0, 5.0]);
        assert_eq!(p.bucket_counts, vec![1, 2, 1]);
        assert_eq!((p.count, p.sum), (4, Some(7.5)));
        assert_eq!(attr(&p.attributes, "request").as_deref(), Some("Produce"));
        assert!(attr(&p.attributes, "le").is_none());
    }

    #[test]
    fn openmetrics_counters_keep_their_total_name() {
        let text = "\
# HELP kmon_agent_samples_shipped Samples acknowledged.
# TYPE kmon_agent_samples_shipped counter
kmon_agent_samples_shipped_total 9
kmon_agent_samples_shipped_created 1.7e9
# TYPE node_load1 gauge
node_load1 0.5
# TYPE q summary
q{quantile=\"0.5\"} 1
# EOF
";
        let (metrics, skipped) = to_otlp(text, TIMES);
        assert_eq!(skipped, 0);
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["kmon_agent_samples_shipped_total", "node_load1"]);
        assert_eq!(metrics[0].description, "Samples acknowledged.");
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else { panic!() };
        assert_eq!(sum.data_points.len(), 1);
    }

    #[test]
    fn untyped_and_broken_lines() {
        let (metrics, skipped) = to_otlp("loose 1\nbroken{ 2\n", TIMES);
        assert_eq!(skipped, 1);
        assert!(matches!(metrics[0].data, Some(metric::Data::Gauge(_))));
    }
}
