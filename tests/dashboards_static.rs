//! The Grafana dashboards (`dashboards/grafana/*.json`) and the Prometheus
//! rules (`dashboards/prometheus/`) are checked, without a cluster, against
//! what kmon exports and against real Prometheus tools:
//!
//! - `promtool check rules` / `check config` / `test rules` pass, and
//!   `alerts_test.yml` has a firing and a quiet case for every alert;
//! - every metric name in a panel, a template variable or a rule is in
//!   `dashboards/METRICS.md`, is a name the node agent exports
//!   (`agent/src/metrics.rs`), is a recording rule, or is `up`;
//! - every dashboard parses, has the `${datasource}` variable and its
//!   template variables, uses every variable, has unique panel ids, no
//!   overlapping panels, a datasource on every panel and a unit on every
//!   graph, and every panel expression is valid PromQL (written out as
//!   recording rules for `promtool check rules`);
//! - every dashboard type-checks against the `Dashboard` type of the
//!   `@grafana/schema` npm package (`tsc --noEmit --strict`; both pinned in
//!   `dashboards/schema-check/`, which test.sh installs with `npm ci`), and
//!   broken copies of one do not.
//!
//! `dashboards_live.rs` runs the same dashboards and rules on a real
//! Prometheus scraping a real cluster. promtool comes from Debian's
//! `prometheus` package (test.sh installs it when missing), tsc from
//! `dashboards/schema-check/node_modules`.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use common::dashboards::{
    all_panel_expressions, dashboard_expressions, dashboards, panels, prometheus_dir, read, root,
};
use serde_json::Value;

/// Metric names a panel may show before any broker exports them: the
/// reassignment progress panel's, added by the reassignment issue (the
/// panel's description says so).
const ANNOUNCED: &[&str] = &["kmon_reassignment_partitions_pending", "kmon_reassignment_bytes_left"];

/// Recording rules made for other people's dashboards (the JMX exporter's
/// quantile series), not used by kmon's own.
const DROP_IN_RECORDINGS: &[&str] = &["kafka_network_requestmetrics_totaltimems"];

/// Node-mixin recording rule names kmon's rules must not reuse (a
/// Prometheus that loads both would get two rules writing one series).
const NODE_MIXIN_RECORDINGS: &[&str] = &[
    "instance:node_cpu_utilisation:rate5m",
    "instance:node_memory_utilisation:ratio",
    "instance:node_load1_per_cpu:ratio",
    "instance:node_network_receive_bytes_excluding_lo:rate5m",
    "instance_device:node_disk_io_time_seconds:rate5m",
];

/// Template variables each dashboard must have (besides `datasource`).
const REQUIRED_VARIABLES: &[(&str, &[&str])] = &[
    ("cluster-overview.json", &["cluster", "fault_domain", "update_domain", "broker", "topic"]),
    ("consumer-lag.json", &["cluster", "consumergroup", "topic"]),
    ("isr-replication.json", &["cluster", "fault_domain", "update_domain", "broker", "topic"]),
    ("partition-balance.json", &["cluster", "fault_domain", "update_domain", "broker"]),
    ("nodes.json", &["cluster", "node"]),
];

// ----------------------------------------------------------------- promtool

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool (test.sh installs Debian's prometheus package)")
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named way to break a dashboard, for the type check's negative cases.
type Breakage = (&'static str, fn(&mut Value));
#[test]
fn rules_and_config_pass_promtool_and_their_unit_tests() {
    let check =
        promtool(&["check", "rules", "dashboards/prometheus/recording.yml", "dashboards/prometheus/alerts.yml"]);
    assert_success("promtool check rules", &check);
    assert_success("promtool check config", &promtool(&["check", "config", "dashboards/prometheus/prometheus.yml"]));
    let tests = promtool(&["test", "rules", "dashboards/prometheus/alerts_test.yml"]);
    assert_success("promtool test rules", &tests);
    assert!(String::from_utf8_lossy(&tests.stdout).contains("SUCCESS"));
}

// ----------------------------------------------------------- rule files

/// One rule of a rule file: `alert` or `record` name, its expression, and
/// the other `key: value` lines under it (labels, annotations, `for`).
#[derive(Debug, Default)]
struct Rule {
    name: String,
    alert: bool,
    expr: String,
    fields: BTreeMap<String, String>,
}

/// A small reader for the rule files' YAML subset: `- alert:`/`- record:`
/// start a rule; `expr:` is one line or a block scalar (`>-`, `|`) of the
/// lines indented deeper.
fn parse_rules(text: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        let indent = line.len() - line.trim_start().len();
        i += 1;
        if trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "alert" | "record" => rules.push(Rule { name: value.to_owned(), alert: key == "alert", ..Rule::default() }),
            _ if rules.is_empty() => {}
            "expr" | "summary" | "description" if value.starts_with('>') || value.starts_with('|') => {
                let mut block = Vec::new();
                while i < lines.len()
                    && (lines[i].trim().is_empty() || lines[i].len() - lines[i].trim_start().len() > indent)
                {
                    block.push(lines[i].trim());
                    i += 1;
                }
                set(rules.last_mut().unwrap(), key, block.join(" "));
            }
            _ => set(rules.last_mut().unwrap(), key, value.trim_matches('"').to_owned()),
        }
    }
    rules
}

fn set(rule: &mut Rule, key: &str, value: String) {
    if key == "expr" {
        rule.expr = value;
    } else {
        rule.fields.insert(key.to_owned(), value);
    }
}

fn rule_file(name: &str) -> Vec<Rule> {
    parse_rules(&read(&prometheus_dir().join(name)))
}

#[test]
fn every_alert_says_what_to_do_and_is_tested_firing_and_quiet() {
    let alerts: Vec<Rule> = rule_file("alerts.yml").into_iter().filter(|r| r.alert).collect();
    assert!(alerts.len() >= 14, "{} alerts", alerts.len());
    for a in &alerts {
        assert!(!a.expr.is_empty(), "{}: no expr", a.name);
        let severity = a.fields.get("severity").map(String::as_str);
        assert!(matches!(severity, Some("critical" | "warning")), "{}: severity {severity:?}", a.name);
        assert!(a.fields.get("summary").is_some_and(|s| !s.is_empty()), "{}: no summary", a.name);
        assert!(a.fields.get("description").is_some_and(|s| s.len() > 80), "{}: no useful description", a.name);
    }
    // alerts_test.yml: `alertname: X` then `exp_alerts: []` (quiet) or a list (fires).
    let tests = read(&prometheus_dir().join("alerts_test.yml"));
    let mut cases: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut current = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("exp_alerts:") {
            let kind = if rest.trim() == "[]" { "quiet" } else { "fires" };
            cases.entry(current.clone().expect("exp_alerts after alertname")).or_default().insert(kind);
        }
    }
    let untested: Vec<String> = alerts
        .iter()
        .filter(|a| cases.get(&a.name).is_none_or(|c| c.len() != 2))
        .map(|a| format!("{} ({:?})", a.name, cases.get(&a.name)))
        .collect();
    assert!(untested.is_empty(), "alerts without both a firing and a quiet test: {untested:?}");
}

// ----------------------------------------------------------- metric names

/// Metric names in a PromQL expression (see [`selectors`]).
fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|(name, _)| name).collect()
}

/// Vector selectors in a PromQL expression, as (metric name, the text of
/// its `{...}` matchers or ""): metric names are identifiers that are not
/// functions or aggregations (followed by `(`), keywords, label lists
/// (`by (...)`, `on (...)`, ...), label matchers (`{...}`), ranges
/// (`[...]`), strings or numbers.
fn selectors(expr: &str) -> Vec<(String, String)> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"];
    // Aggregations may put `by (...)` before their `(`: never metric names.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_to = |i: &mut usize, open: char, close: char| {
        let mut depth = 0;
        while *i < chars.len() {
            match chars[*i] {
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        *i += 1;
                        return;
                    }
                }
                '"' | '\'' | '`' => {
                    let quote = chars[*i];
                    *i += 1;
                    while *i < chars.len() && chars[*i] != quote {
                        *i += if chars[*i] == '\\' { 2 } else { 1 };
                    }
                }
                _ => {}
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            skip_to(&mut i, '{', '}');
        } else if c == '[' {
            skip_to(&mut i, '[', ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number (1, 0.5, 1e3, 0x1f) or a duration (5m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if call {
                    i = next;
                    skip_to(&mut i, '(', ')');
                }
            } else if !call
                && !KEYWORDS.contains(&word.to_lowercase().as_str())
                && !AGGREGATIONS.contains(&word.as_str())
            {
                let matchers = if chars.get(next) == Some(&'{') {
                    let start = next;
                    i = next;
                    skip_to(&mut i, '{', '}');
                    chars[start + 1..i - 1].iter().collect()
                } else {
                    String::new()
                };
                names.push((word, matchers));
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every name the brokers and the agent export, the recording rules, `up`.
fn known_metric_names() -> BTreeSet<String> {
    // `up` and `ALERTS` are Prometheus' own.
    let mut known: BTreeSet<String> = ["up".to_owned(), "ALERTS".to_owned()].into();
    // METRICS.md: every `kafka_...` / `kmon_...` / `process_...` in
    // backticks; `/ `_leaders`` abbreviates a sibling of the name before it.
    let catalogue = read(&root().join("dashboards/METRICS.md"));
    // The series only shipped into the cluster's history are not in Prometheus.
    let catalogue = catalogue.split("## Shipped history only").next().unwrap_or_default();
    let mut previous = String::new();
    for (n, token) in catalogue.split('`').enumerate() {
        if n % 2 == 0 {
            continue;
        }
        let name = if let Some(suffix) = token.strip_prefix('_') {
            match previous.rsplit_once('_') {
                Some((stem, _)) => format!("{stem}_{suffix}"),
                None => continue,
            }
        } else {
            token.to_owned()
        };
        if ["kafka_", "kmon_", "process_"].iter().any(|prefix| name.starts_with(prefix))
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            // Histograms are exposed as _bucket, _sum and _count.
            for suffix in ["", "_bucket", "_sum", "_count"] {
                known.insert(format!("{name}{suffix}"));
            }
            previous = name;
        }
    }
    // The agent: every string constant of its metrics module and of the
    // shared names it exports (`kmon_proto::metric_names`); counters of its
    // own figures get `_total` from prometheus-client.
    let agent = read(&root().join("agent/src/metrics.rs")) + &read(&root().join("proto/src/metric_names.rs"));
    for (n, literal) in agent.split('"').enumerate() {
        if n % 2 == 1
            && (literal.starts_with("node_") || literal.starts_with("kmon_"))
            && literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            known.insert(literal.to_owned());
            known.insert(format!("{literal}_total"));
        }
    }
    for rule in rule_file("recording.yml") {
        known.insert(rule.name);
    }
    known
}

#[test]
fn tokenizer_finds_metric_names_only() {
    let names = metric_names(
        r#"sum by (cluster, le) (rate(a_bucket{x=~"$y", z="w(v)"}[$__rate_interval])) / on (cluster) group_left (q) b:rec:rate5m > 0.5 and count_values("leader", c) or vector(1e3) * 6 * 3600"#,
    );
    assert_eq!(names, ["a_bucket", "b:rec:rate5m", "c"].into_iter().map(String::from).collect());
}

#[test]
fn every_metric_in_the_dashboards_and_rules_is_exported() {
    let known = known_metric_names();
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    let mut check = |place: String, expr: &str| {
        for name in metric_names(expr) {
            used.insert(name.clone());
            if !known.contains(&name) && !ANNOUNCED.contains(&name.as_str()) {
                unknown.push(format!("{name} (in {place})"));
            }
        }
    };
    for file in ["recording.yml", "alerts.yml"] {
        for rule in rule_file(file) {
            check(format!("{file} {}", rule.name), &rule.expr);
        }
    }
    let mut expressions = 0;
    for (file, dashboard) in dashboards() {
        for (place, expr) in dashboard_expressions(&dashboard) {
            expressions += 1;
            check(format!("{file} {place}"), &expr);
        }
    }
    assert!(expressions > 50, "only {expressions} expressions found");
    assert!(unknown.is_empty(), "metric names nobody exports:\n{}", unknown.join("\n"));
    let unused: Vec<String> = rule_file("recording.yml")
        .into_iter()
        .map(|r| r.name)
        .filter(|n| !used.contains(n) && !DROP_IN_RECORDINGS.contains(&n.as_str()))
        .collect();
    assert!(unused.is_empty(), "recording rules no dashboard or alert uses: {unused:?}");
}

#[test]
fn selectors_keep_their_matchers() {
    let found = selectors(r#"rate(a{job="x",b=~"y}"}[5m]) / on (job) b and c {job="z"}"#);
    assert_eq!(
        found,
        [("a", r#"job="x",b=~"y}""#), ("b", ""), ("c", r#"job="z""#)]
            .map(|(n, m)| (n.to_owned(), m.to_owned()))
            .to_vec()
    );
}

/// Every selector in the rules names a job, so the rules can share a
/// Prometheus with real Kafka's or node_exporter's series; recorded names
/// never reuse the node-mixin's.
#[test]
fn every_rule_selects_kmon_jobs_only() {
    let mut unscoped = Vec::new();
    for file in ["recording.yml", "alerts.yml"] {
        for rule in rule_file(file) {
            for (name, matchers) in selectors(&rule.expr) {
                let job = matchers.split(',').map(str::trim).find_map(|m| m.strip_prefix("job="));
                if !matches!(job, Some("\"kmon-broker\"" | "\"kmon-agent\"" | "\"kmon-mirror\"")) {
                    unscoped.push(format!("{file} {}: {name}{{{matchers}}}", rule.name));
                }
            }
        }
    }
    assert!(unscoped.is_empty(), "selectors without a kmon job matcher:\n{}", unscoped.join("\n"));
    for rule in rule_file("recording.yml") {
        assert!(!NODE_MIXIN_RECORDINGS.contains(&rule.name.as_str()), "{} is the node-mixin's name", rule.name);
        assert!(
            !rule.name.contains(":node_"),
            "{}: recorded node figures are named `kmon_node_...` beside the node-mixin's",
            rule.name
        );
    }
}

/// Each alert links its own section of RUNBOOK.md, and the runbook has no
/// section for an alert that does not exist.
#[test]
fn every_alert_has_a_runbook_section() {
    let runbook = read(&root().join("dashboards/RUNBOOK.md"));
    let sections: BTreeSet<&str> = runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(str::trim).collect();
    let alerts: Vec<Rule> = rule_file("alerts.yml").into_iter().filter(|r| r.alert).collect();
    for alert in &alerts {
        let url = alert.fields.get("runbook_url").unwrap_or_else(|| panic!("{}: no runbook_url", alert.name));
        assert_eq!(url, &format!("RUNBOOK.md#{}", alert.name.to_lowercase()), "{}", alert.name);
        assert!(sections.contains(alert.name.as_str()), "RUNBOOK.md has no `## {}` section", alert.name);
    }
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    let stale: Vec<&&str> = sections.iter().filter(|s| !names.contains(*s)).collect();
    assert!(stale.is_empty(), "RUNBOOK.md sections for alerts that do not exist: {stale:?}");
}

/// `kmon dashboards export` with other job names and a runbook URL: the
/// exported rules select only those jobs, still pass promtool and their
/// own unit tests (whose input series are renamed alike), and link the
/// runbook there.
#[test]
fn exported_rules_follow_other_job_names() {
    let out = tempfile::tempdir().unwrap();
    let export = Command::new(common::KMON)
        .args(["dashboards", "export", "--out"])
        .arg(out.path())
        .args(["--broker-job", "kafka-kmon", "--agent-job", "node-kmon", "--runbook-url", "https://runbooks.test/kmon"])
        .output()
        .unwrap();
    assert_success("kmon dashboards export", &export);
    let rules = out.path().join("prometheus");
    let alerts = read(&rules.join("alerts.yml"));
    let recording = read(&rules.join("recording.yml"));
    for text in [&alerts, &recording, &read(&rules.join("prometheus.yml"))] {
        assert!(!text.contains("job=\"kmon-broker\"") && !text.contains("job_name: kmon-broker"));
        assert!(!text.contains("job=\"kmon-agent\""));
    }
    assert!(alerts.contains(r#"up{job="kafka-kmon"}"#) && recording.contains(r#"{job="node-kmon",mode="idle"}"#));
    assert!(alerts.contains(r#"runbook_url: "https://runbooks.test/kmon#kmonbrokerdown""#));
    let dir = rules.to_str().unwrap();
    let check = promtool(&["check", "rules", &format!("{dir}/recording.yml"), &format!("{dir}/alerts.yml")]);
    assert_success("promtool check rules (exported)", &check);
    // The unit tests compare annotations, so the runbook links are renamed
    // in the expectations as well; they pass against the renamed rules.
    let tests = read(&rules.join("alerts_test.yml"));
    assert!(tests.contains(r#"job="kafka-kmon""#));
    assert_success("promtool test rules (exported)", &promtool(&["test", "rules", &format!("{dir}/alerts_test.yml")]));
    let bad = Command::new(common::KMON)
        .args(["dashboards", "export", "--out"])
        .arg(out.path().join("bad"))
        .args(["--broker-job", "a\"b"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("not a job name"), "{err}");
}

/// The Alertmanager example passes `amtool check-config`, and a real
/// Alertmanager given it inhibits the under-replicated alert while the
/// broker-down alert of the same cluster fires (not another cluster's).
#[test]
fn alertmanager_example_inhibits_consequences_of_a_broker_down() {
    let config = root().join("dashboards/alertmanager/alertmanager.yml");
    let check = Command::new("amtool").arg("check-config").arg(&config).output().expect("amtool (test.sh installs it)");
    assert_success("amtool check-config", &check);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cluster_port = common::free_port();
    let _alertmanager = common::KillOnDrop(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (test.sh installs it)"),
    );
    let (address, path) = (format!("127.0.0.1:{port}"), "/api/v2/alerts");
    let alert = |name: &str, cluster: &str, severity: &str| {
        serde_json::json!({"labels": {"alertname": name, "cluster": cluster, "severity": severity,
            "instance": "b1:9644", "job": "kmon-broker"}})
    };
    let alerts = serde_json::json!([
        alert("KmonBrokerDown", "east", "critical"),
        alert("KmonUnderReplicatedPartitions", "east", "warning"),
        alert("KmonUnderReplicatedPartitions", "west", "warning"),
    ]);
    common::wait_for("alertmanager to accept alerts", std::time::Duration::from_secs(20), || {
        common::http_post_json(&address, path, &alerts.to_string()).filter(|(status, _)| *status == 200)
    });
    let states = common::wait_for("the inhibition to apply", std::time::Duration::from_secs(20), || {
        let list: Value = serde_json::from_str(&common::http_get(&address, path)?.1).ok()?;
        let state = |name: &str, cluster: &str| {
            list.as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == name && a["labels"]["cluster"] == cluster)
                .and_then(|a| a["status"]["state"].as_str().map(str::to_owned))
        };
        let east = state("KmonUnderReplicatedPartitions", "east")?;
        (east == "suppressed")
            .then(|| (state("KmonBrokerDown", "east"), state("KmonUnderReplicatedPartitions", "west")))
    });
    assert_eq!(states.0.as_deref(), Some("active"), "the cause stays active");
    assert_eq!(states.1.as_deref(), Some("active"), "another cluster's alert is not inhibited");
}

/// `rate`, `irate` and `increase` only of counters (and a histogram's
/// counters): of a gauge they read every decrease as a counter reset.
#[test]
fn rates_are_taken_of_counters_only() {
    let rate = regex::Regex::new(r"\b(rate|irate|increase)\(\s*([A-Za-z_:][A-Za-z0-9_:]*)").unwrap();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for file in ["recording.yml", "alerts.yml"] {
        exprs.extend(rule_file(file).into_iter().map(|r| (format!("{file} {}", r.name), r.expr)));
    }
    for (file, dashboard) in dashboards() {
        exprs.extend(dashboard_expressions(&dashboard).into_iter().map(|(place, e)| (format!("{file} {place}"), e)));
    }
    let mut gauges = Vec::new();
    for (place, expr) in &exprs {
        for found in rate.captures_iter(expr) {
            let name = &found[2];
            if !["_total", "_bucket", "_count", "_sum"].iter().any(|s| name.ends_with(s)) {
                gauges.push(format!("{}({name}) in {place}", &found[1]));
            }
        }
    }
    assert!(exprs.len() > 80, "only {} expressions", exprs.len());
    assert!(gauges.is_empty(), "rates of gauges (use deriv or delta):\n{}", gauges.join("\n"));
}

// ----------------------------------------------------------- dashboards

fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"].as_array().map(|l| l.iter().collect()).unwrap_or_default()
}

fn uses_variable(text: &str, name: &str) -> bool {
    text.contains(&format!("${{{name}}}"))
        || text
            .match_indices(&format!("${name}"))
            .any(|(at, m)| !text[at + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

#[test]
fn dashboards_are_well_formed_and_portable() {
    let found = dashboards();
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    let wanted: BTreeSet<&str> = REQUIRED_VARIABLES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, wanted, "the five dashboards");
    let mut uids = BTreeSet::new();
    for (file, d) in &found {
        let ctx = |what: &str| format!("{file}: {what}");
        assert!(d["schemaVersion"].as_u64().unwrap_or(0) >= 39, "{}", ctx("schemaVersion < 39"));
        assert!(d["id"].is_null(), "{}", ctx("id must be null so it imports anywhere"));
        assert!(uids.insert(d["uid"].as_str().expect("uid").to_owned()), "{}", ctx("duplicate uid"));
        assert!(d["title"].as_str().is_some_and(|t| t.starts_with("kmon / ")), "{}", ctx("title"));

        // The datasource variable and the required template variables.
        let vars = variables(d);
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{}", ctx("no datasource variable")));
        assert_eq!(
            (ds["type"].as_str(), ds["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{}",
            ctx("datasource")
        );
        let required = REQUIRED_VARIABLES.iter().find(|(n, _)| n == file).unwrap().1;
        for name in required {
            let v =
                vars.iter().find(|v| v["name"] == *name).unwrap_or_else(|| panic!("{}", ctx(&format!("no ${name}"))));
            assert_eq!(v["type"], "query", "{}", ctx(name));
            assert_eq!(v["datasource"]["uid"], "${datasource}", "{}", ctx(name));
            // One cluster at a time (stat panels sum whatever is selected);
            // every other variable may take several values or all.
            let single = *name == "cluster";
            assert_eq!(v["includeAll"], !single, "{}", ctx(name));
            assert_eq!(v["multi"], !single, "{}", ctx(name));
        }
        // Brokers are chosen by id, from kafka_broker_info, on every
        // dashboard that has `$broker`.
        if let Some(broker) = vars.iter().find(|v| v["name"] == "broker") {
            let query = broker["query"]["query"].as_str().unwrap_or_default();
            assert!(
                query.starts_with("label_values(kafka_broker_info{") && query.ends_with(", broker)"),
                "{}",
                ctx(query)
            );
        }
        // Firing alerts are marked on every dashboard.
        let annotations: Vec<&str> =
            d["annotations"]["list"].as_array().into_iter().flatten().filter_map(|a| a["expr"].as_str()).collect();
        assert!(annotations.iter().any(|e| e.starts_with("ALERTS{")), "{}", ctx("no alert annotation"));
        // Per-partition series are many (10,000 partitions): a graph of
        // them shows the worst few (topk/bottomk); tables list them.
        for p in panels(d).into_iter().filter(|p| p["type"] == "timeseries") {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                if expr.contains("partition)") && !expr.contains("count_values") {
                    assert!(
                        expr.starts_with("topk(") || expr.starts_with("bottomk("),
                        "{}",
                        ctx(&format!("per-partition graph without topk/bottomk: {expr}"))
                    );
                }
                let legend = t["legendFormat"].as_str().unwrap_or_default();
                assert!(
                    !(vars.iter().any(|v| v["name"] == "broker") && legend.contains("{{instance}}")),
                    "{}",
                    ctx(&format!("a broker legend shows the instance, not the broker: {legend}"))
                );
            }
        }

        // Panels: ids, layout, datasource, units, the cluster filter.
        let all = panels(d);
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(i64, i64, i64, i64, String)> = Vec::new();
        let mut text_using_vars = String::new();
        for v in &vars {
            text_using_vars.push_str(&v["query"].to_string());
        }
        for p in d["panels"].as_array().unwrap() {
            let id = p["id"].as_i64().expect("panel id");
            assert!(ids.insert(id), "{}", ctx(&format!("duplicate panel id {id}")));
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(x >= 0 && w > 0 && h > 0 && x + w <= 24, "{}", ctx(&format!("panel {id} gridPos {g}")));
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            for (bx, by, bw, bh, other) in &boxes {
                let overlap = x < bx + bw && *bx < x + w && y < by + bh && *by < y + h;
                assert!(!overlap, "{}", ctx(&format!("panels {title:?} and {other:?} overlap")));
            }
            boxes.push((x, y, w, h, title));
        }
        for p in all {
            let title = p["title"].as_str().unwrap_or("?");
            let pctx = |what: &str| ctx(&format!("panel {title:?}: {what}"));
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", pctx("datasource"));
            assert!(p["description"].as_str().is_some_and(|s| !s.is_empty()), "{}", pctx("description"));
            if ["timeseries", "stat", "bargauge", "table", "gauge"].contains(&p["type"].as_str().unwrap_or("")) {
                assert!(
                    p["fieldConfig"]["defaults"]["unit"].as_str().is_some_and(|u| !u.is_empty()),
                    "{}",
                    pctx("unit")
                );
            }
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{}", pctx("no targets")));
            assert!(!targets.is_empty(), "{}", pctx("no targets"));
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", pctx("target datasource"));
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{}", pctx("no expr")));
                assert!(expr.contains(r#"cluster=~"$cluster""#), "{}", pctx(&format!("no cluster filter in {expr}")));
                text_using_vars.push_str(expr);
            }
        }
        // (`datasource` is used by every panel, checked above.)
        for v in vars.iter().filter(|v| v["name"] != "datasource") {
            let name = v["name"].as_str().unwrap();
            assert!(uses_variable(&text_using_vars, name), "{}", ctx(&format!("${name} is never used")));
        }
    }
}

#[test]
fn every_panel_expression_is_valid_promql() {
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: panels\n    rules:\n");
    for (n, (_, expr)) in all_panel_expressions().iter().enumerate() {
        rules.push_str(&format!("      - record: panel_{n}\n        expr: {}\n", serde_json::to_string(expr).unwrap()));
    }
    let file = dir.path().join("panels.yml");
    std::fs::write(&file, rules).unwrap();
    assert_success("promtool check rules (panel expressions)", &promtool(&["check", "rules", file.to_str().unwrap()]));
}

// ----------------------------------------------------------- @grafana/schema

/// `dashboards/schema-check`: TypeScript and `@grafana/schema`, pinned in its
/// package-lock.json; test.sh runs `npm ci` there when node_modules is missing.
fn schema_check_dir() -> PathBuf {
    root().join("dashboards/schema-check")
}

/// `tsc --noEmit --strict` over one generated `<name>.ts` per dashboard
/// (`name`, JSON text): `const d: Json<KmonDashboard> = <the JSON>;` (the
/// schema's `Dashboard`, annotations with the Prometheus fields), an object
/// literal assigned to a typed const, so excess properties are errors too.
/// The JSON starts on the first line, so an error's line is the JSON's line.
/// The files live in a temporary `gen-*` folder inside schema-check, where
/// `@grafana/schema` resolves from its node_modules.
fn tsc_over(dashboards: &[(String, String)]) -> Output {
    let dir = schema_check_dir();
    let tsc = dir.join("node_modules/.bin/tsc");
    assert!(
        tsc.exists() && dir.join("node_modules/@grafana/schema/package.json").exists(),
        "{} is not installed: run ./test.sh (it runs `npm ci --no-audit --no-fund` there), \
         or `npm ci` in dashboards/schema-check yourself",
        dir.join("node_modules").display()
    );
    let gen_dir = tempfile::Builder::new().prefix("gen-").tempdir_in(&dir).unwrap();
    let mut files = Vec::new();
    for (name, json) in dashboards {
        let file = format!("{}.ts", name.trim_end_matches(".json"));
        let text = format!(
            "import type {{ Json, KmonDashboard }} from '../json'; \
             const d: Json<KmonDashboard> = {};\nexport default d;\n",
            json.trim_end()
        );
        std::fs::write(gen_dir.path().join(&file), text).unwrap();
        files.push(file);
    }
    let tsconfig = serde_json::json!({ "extends": "../tsconfig.json", "files": files });
    std::fs::write(gen_dir.path().join("tsconfig.json"), tsconfig.to_string()).unwrap();
    Command::new(&tsc)
        .args(["--noEmit", "--strict", "-p"])
        .arg(gen_dir.path())
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (is node installed? ./test.sh installs it)", tsc.display()))
}

#[test]
fn dashboards_type_check_against_the_grafana_schema() {
    let dir = root().join("dashboards/grafana");
    let texts: Vec<(String, String)> =
        dashboards().into_iter().map(|(name, _)| (name.clone(), read(&dir.join(&name)))).collect();
    assert_eq!(texts.len(), 5);
    let out = tsc_over(&texts);
    assert_success("tsc --noEmit --strict (the dashboards against @grafana/schema's Dashboard)", &out);

    // The check bites: each broken copy of a dashboard fails, in its own file.
    let base: Value = serde_json::from_str(&read(&dir.join("cluster-overview.json"))).unwrap();
    assert_eq!(base["panels"][1]["fieldConfig"]["defaults"]["color"]["mode"], "thresholds");
    let broken: [Breakage; 5] = [
        ("gridpos-string", |d| d["panels"][1]["gridPos"] = "0 1 3 4".into()),
        ("unknown-panel-field", |d| {
            let p = d["panels"][1].as_object_mut().unwrap();
            let g = p.remove("gridPos").unwrap();
            p.insert("gridPosition".into(), g);
        }),
        ("unknown-dashboard-field", |d| d["refreshInterval"] = "10s".into()),
        ("bad-color-mode", |d| d["panels"][1]["fieldConfig"]["defaults"]["color"]["mode"] = "rainbow".into()),
        ("no-schema-version", |d| drop(d.as_object_mut().unwrap().remove("schemaVersion"))),
    ];
    let copies: Vec<(String, String)> = broken
        .iter()
        .map(|(name, breaks)| {
            let mut d = base.clone();
            breaks(&mut d);
            (format!("{name}.json"), serde_json::to_string_pretty(&d).unwrap())
        })
        .collect();
    let out = tsc_over(&copies);
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "broken dashboards type-check:\n{report}");
    for (name, _) in &broken {
        assert!(
            report.lines().any(|l| l.contains(&format!("/{name}.ts(")) && l.contains(": error TS")),
            "no type error for the {name} copy:\n{report}"
        );
    }
}
