//! `/metrics?name[]=A&name[]=B`: only the named metrics, as node_exporter's
//! `collect[]` narrows a scrape. A reader after three counters (the TUI)
//! then costs the broker microseconds instead of rendering one series per
//! partition (10,000 partitions: ~100,000 lines it would throw away).

use std::collections::BTreeSet;

/// Sample-name suffixes of a metric family (Prometheus text and OpenMetrics).
const SUFFIXES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_created", "_info"];

/// The metric names a scrape asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFilter(BTreeSet<String>);

impl NameFilter {
    /// Reads `name[]=` (or `name=`) parameters from a URL query; `None`
    /// when none is given (the whole page). Anything else is an error that
    /// says what was wrong.
    pub fn from_query(query: &str) -> Result<Option<NameFilter>, String> {
        let mut names = BTreeSet::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !matches!(key, "name[]" | "name%5B%5D" | "name%5b%5d" | "name") {
                return Err(format!("unknown query parameter {key:?}: /metrics takes name[]=METRIC (repeatable)"));
            }
            let valid = !value.is_empty()
                && !value.starts_with(|c: char| c.is_ascii_digit())
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if !valid {
                return Err(format!("invalid metric name {value:?} in name[]: use [a-zA-Z_:][a-zA-Z0-9_:]*"));
            }
            names.insert(value.to_owned());
        }
        Ok((!names.is_empty()).then_some(NameFilter(names)))
    }

    /// Whether the family `family` (its base name) may have been asked
    /// for, by its own name or one of its sample names (`x_total` asks for
    /// `x`). Errs on the side of yes (it does not know the family's type):
    /// it decides what to compute; [`NameFilter::apply`] decides exactly.
    pub fn wants(&self, family: &str) -> bool {
        self.0.contains(family) || SUFFIXES.iter().any(|s| self.0.contains(&format!("{family}{s}")))
    }

    /// Whether any of `families` was asked for.
    pub fn wants_any(&self, families: &[&str]) -> bool {
        families.iter().any(|f| self.wants(f))
    }

    /// Whether the family `name` of type `kind` (from its `# TYPE` line)
    /// was asked for by its name or by one of its sample names.
    /// Prometheus text names a counter family `x_total`, OpenMetrics `x`.
    fn wants_typed(&self, name: &str, kind: &str) -> bool {
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"],
            "summary" => &["_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[],
        };
        self.0.contains(name)
            || suffixes.iter().any(|s| self.0.contains(&format!("{name}{s}")))
            || (kind == "counter" && name.strip_suffix("_total").is_some_and(|base| self.0.contains(base)))
    }

    /// The lines of an exposition page that belong to wanted families
    /// (`# EOF` kept). A family's samples follow its `# HELP`/`# TYPE`
    /// lines, so they are judged by that family and its type, not by their
    /// own names: a gauge `x_sum` is not a part of `x`.
    pub fn apply(&self, page: &str) -> String {
        let kinds: std::collections::HashMap<&str, &str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
            .map(|(name, kind)| (name, kind.trim()))
            .collect();
        let mut out = String::new();
        let mut family: Option<(&str, bool)> = None;
        for line in page.lines() {
            let keep = match line.strip_prefix("# ") {
                Some("EOF") => true,
                Some(comment) => {
                    let name = comment.split(' ').nth(1).unwrap_or_default();
                    let wanted = match family {
                        Some((current, wanted)) if current == name => wanted,
                        _ => self.wants_typed(name, kinds.get(name).copied().unwrap_or("unknown")),
                    };
                    family = Some((name, wanted));
                    wanted
                }
                None => match family {
                    Some((_, wanted)) => wanted,
                    None => line.split(['{', ' ']).next().is_some_and(|name| self.0.contains(name)),
                },
            };
            if keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(query: &str) -> NameFilter {
        NameFilter::from_query(query).unwrap().unwrap()
    }

    #[test]
    fn reads_repeated_names_and_refuses_bad_input() {
        assert_eq!(NameFilter::from_query("").unwrap(), None);
        let f = filter("name[]=a_total&name%5B%5D=b&name=c");
        assert!(f.wants("a") && f.wants("b") && f.wants("c") && !f.wants("d"));
        let err = NameFilter::from_query("match[]=up").unwrap_err();
        assert!(err.contains("unknown query parameter \"match[]\""), "{err}");
        let err = NameFilter::from_query("name[]=a{b}").unwrap_err();
        assert!(err.contains("invalid metric name \"a{b}\""), "{err}");
        assert!(NameFilter::from_query("name[]=").is_err());
        assert!(NameFilter::from_query("name[]=9lives").is_err());
    }

    #[test]
    fn keeps_the_wanted_families_whole_in_both_formats() {
        let page = "# HELP a_total A.\n# TYPE a_total counter\na_total{topic=\"t\"} 1\na_total 2\n\
                    # HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n\
                    # HELP g G.\n# TYPE g gauge\ng 5\n# EOF\n";
        assert_eq!(
            filter("name[]=a_total").apply(page),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{topic=\"t\"} 1\na_total 2\n# EOF\n"
        );
        let kept = filter("name[]=h&name[]=g").apply(page);
        assert_eq!(kept.lines().count(), 9, "{kept}");
        assert!(!kept.contains("a_total"), "{kept}");
        // OpenMetrics names a counter family without `_total`.
        let om = "# TYPE a counter\na_total 2\na_created 1.5\n# TYPE g gauge\ng 5\n# EOF\n";
        assert_eq!(filter("name[]=a_total").apply(om), "# TYPE a counter\na_total 2\na_created 1.5\n# EOF\n");
        assert_eq!(filter("name[]=a").apply(om), "# TYPE a counter\na_total 2\na_created 1.5\n# EOF\n");
    }

    /// kafka_exporter has gauges `kafka_consumergroup_lag` and
    /// `kafka_consumergroup_lag_sum`: two families, not one with a `_sum`.
    #[test]
    fn a_gauge_named_like_a_suffix_is_its_own_family() {
        let page = "# HELP lag L.\n# TYPE lag gauge\nlag{p=\"0\"} 3\n\
                    # HELP lag_sum S.\n# TYPE lag_sum gauge\nlag_sum{t=\"x\"} 3\n# EOF\n";
        assert_eq!(
            filter("name[]=lag_sum").apply(page),
            "# HELP lag_sum S.\n# TYPE lag_sum gauge\nlag_sum{t=\"x\"} 3\n# EOF\n"
        );
        assert_eq!(filter("name[]=lag").apply(page), "# HELP lag L.\n# TYPE lag gauge\nlag{p=\"0\"} 3\n# EOF\n");
    }
}
