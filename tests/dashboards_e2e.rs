//! The Grafana dashboards (`dashboards/grafana/*.json`) and the Prometheus
//! rules (`dashboards/prometheus/`) are checked against what kmon really
//! exports and against real Prometheus tools:
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
//!   broken copies of one do not;
//! - against a real 3-broker cluster, its node agent and a real
//!   `prometheus` scraping every second: every panel expression runs
//!   through the HTTP API, and SIGKILLing a broker makes the
//!   under-replicated and broker-down alerts fire, then resolve after a
//!   restart, and producing to a topic whose group stopped consuming makes
//!   the consumer-lag alert fire. That run loads a copy of `alerts.yml` whose `for:` are
//!   `1s` (the real ones wait minutes) and whose recording group runs
//!   every second; the expressions are the real ones.
//!
//! promtool and prometheus come from Debian's `prometheus` package (test.sh
//! installs it when missing), tsc from `dashboards/schema-check/node_modules`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Metric names a panel may show before any broker exports them: the
/// reassignment progress panel's, added by the reassignment issue (the
/// panel's description says so).
const ANNOUNCED: &[&str] = &["kmon_reassignment_partitions_pending", "kmon_reassignment_bytes_left"];

/// Template variables each dashboard must have (besides `datasource`).
const REQUIRED_VARIABLES: &[(&str, &[&str])] = &[
    ("cluster-overview.json", &["cluster", "fault_domain", "update_domain", "broker", "topic"]),
    ("consumer-lag.json", &["cluster", "consumergroup", "topic"]),
    ("isr-replication.json", &["cluster", "fault_domain", "update_domain", "broker", "topic"]),
    ("partition-balance.json", &["cluster", "fault_domain", "update_domain", "broker"]),
    ("nodes.json", &["cluster", "node"]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prometheus_dir() -> PathBuf {
    root().join("dashboards/prometheus")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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

/// Metric names in a PromQL expression: identifiers that are not
/// functions or aggregations (followed by `(`), keywords, label lists
/// (`by (...)`, `on (...)`, ...), label matchers (`{...}`), ranges
/// (`[...]`), strings or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
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
    let mut names = BTreeSet::new();
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
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every name the brokers and the agent export, the recording rules, `up`.
fn known_metric_names() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = ["up".to_owned()].into();
    // METRICS.md: every `kafka_...` / `kmon_...` in backticks; `/ `_leaders``
    // abbreviates a sibling of the name before it.
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
        if (name.starts_with("kafka_") || name.starts_with("kmon_"))
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            // Histograms are exposed as _bucket, _sum and _count.
            for suffix in ["", "_bucket", "_sum", "_count"] {
                known.insert(format!("{name}{suffix}"));
            }
            previous = name;
        }
    }
    // The agent: every string constant in its metrics module (counters of
    // its own figures get `_total` from prometheus-client).
    let agent = read(&root().join("agent/src/metrics.rs"));
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

/// Every PromQL expression of one dashboard, labelled by where it is: the
/// panel targets and the template variables' queries (the metric selector
/// of `label_values(selector, label)`).
fn dashboard_expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for var in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if var["type"] == "query" {
            let query = var["query"]["query"].as_str().or(var["query"].as_str()).unwrap_or_default();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map_or(query, |(selector, _)| selector);
            out.push((format!("variable {}", var["name"]), inner.to_owned()));
        }
    }
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((format!("panel {:?}", panel["title"].as_str().unwrap_or("?")), expr.to_owned()));
            }
        }
    }
    out
}

/// Every panel, rows' nested panels included; rows themselves left out.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = root().join("dashboards/grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards/grafana")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let json: Value = serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect()
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
    let unused: Vec<String> =
        rule_file("recording.yml").into_iter().map(|r| r.name).filter(|n| !used.contains(n)).collect();
    assert!(unused.is_empty(), "recording rules no dashboard or alert uses: {unused:?}");
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
            assert_eq!(v["includeAll"], true, "{}", ctx(name));
        }
        // `cluster` matches series without the label too (`.*`).
        let cluster = vars.iter().find(|v| v["name"] == "cluster").unwrap();
        assert_eq!(cluster["allValue"], ".*", "{}", ctx("cluster allValue"));

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

/// A panel expression as Prometheus would get it from Grafana, every
/// variable set to "all".
fn filled_in(expr: &str) -> String {
    let mut out = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s");
    for name in ["cluster", "broker", "topic", "consumergroup", "fault_domain", "update_domain", "node"] {
        out = out.replace(&format!("${{{name}}}"), ".*").replace(&format!("${name}"), ".*");
    }
    assert!(!out.contains('$'), "unknown variable in {expr}");
    out
}

fn all_panel_expressions() -> Vec<(String, String)> {
    dashboards()
        .iter()
        .flat_map(|(file, d)| {
            dashboard_expressions(d)
                .into_iter()
                .filter(|(place, _)| place.starts_with("panel"))
                .map(move |(place, expr)| (format!("{file} {place}"), filled_in(&expr)))
        })
        .collect()
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
/// (`name`, JSON text): `const d: Json<Dashboard> = <the JSON>;`, an object
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
            "import type {{ Dashboard }} from '@grafana/schema'; import type {{ Json }} from '../json'; \
             const d: Json<Dashboard> = {};\nexport default d;\n",
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

// ----------------------------------------------------------- real Prometheus

/// `prometheus` on 127.0.0.1, killed on drop.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, config: &Path) -> Prometheus {
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (test.sh installs Debian's prometheus package)");
        let p = Prometheus { child, address, log };
        wait_for("prometheus to be ready", Duration::from_secs(60), || {
            http_get(&p.address, "/-/ready").filter(|(status, _)| *status == 200)
        });
        p
    }

    /// GET an API path; the parsed `data` of a successful answer.
    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(&self.address, path).ok_or("no answer")?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if json["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(json["data"].clone())
    }

    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Firing alerts named `name`, as their label sets.
    fn firing(&self, name: &str) -> Vec<Value> {
        let data = self.api("/api/v1/alerts").unwrap_or_default();
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .map(|a| a["labels"].clone())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node agent, killed on drop.
struct Agent {
    child: Child,
    metrics: String,
}

impl Agent {
    fn start(dir: &Path, bootstrap: &str) -> Agent {
        let mut child = Command::new(KMON)
            .args(["agent", "--bootstrap", bootstrap, "--metrics-listen", "127.0.0.1:0", "--interval", "1s"])
            .arg("--buffer-dir")
            .arg(dir.join("agent-buffer"))
            .env_remove("KMON_BOOTSTRAP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
            .spawn()
            .expect("spawn kmon agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the agent's ready line");
        let metrics = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .unwrap_or_else(|| panic!("no metrics= in {line}"))
            .to_owned();
        Agent { child, metrics }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The rule files as the live test loads them: the real expressions, with
/// every `for:` cut to 1s and the recording group evaluated every second.
fn fast_rule_copies(dir: &Path) -> (PathBuf, PathBuf) {
    let recording = read(&prometheus_dir().join("recording.yml")).replace("interval: 15s", "interval: 1s");
    let alerts: String = read(&prometheus_dir().join("alerts.yml"))
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 1s\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(!alerts.contains("for: 5m") && recording.contains("interval: 1s"));
    let (r, a) = (dir.join("recording.yml"), dir.join("alerts.yml"));
    std::fs::write(&r, recording).unwrap();
    std::fs::write(&a, alerts).unwrap();
    (r, a)
}

/// Panels whose expressions only have data while something is wrong: they
/// are checked after a broker is killed (its replicas leave the ISRs and
/// its partitions' leadership moves off their preferred replicas).
const DATA_WHILE_A_BROKER_IS_DOWN: &[&str] =
    &["Partitions missing in-sync replicas", "Partitions led by a non-preferred replica"];

#[test]
fn a_real_prometheus_runs_every_panel_and_fires_alerts_on_a_killed_broker() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 2000\n",
    )
    .unwrap();
    let mut cluster = Cluster::start(3, &["--config", config.to_str().unwrap()]);
    let bootstrap = cluster.brokers[0].bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "watched", "--partitions", "3", "--replication-factor", "3"], "");
    let agent = Agent::start(dir.path(), &bootstrap);

    // Workload: records in, a group that consumed part of them (so it lags).
    let records: String = (0..300).map(|i| format!("r{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "watched", "--group", "readers", "--from-beginning", "--max-records", "100"],
        "",
    );
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);

    let (recording, alerts) = fast_rule_copies(dir.path());
    let targets = cluster.brokers.iter().map(|b| format!("\"{}\"", b.metrics)).collect::<Vec<_>>().join(", ");
    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{:?}, {:?}]\n\
             scrape_configs:\n  - job_name: kmon-broker\n    static_configs:\n      - targets: [{targets}]\n        labels: {{cluster: test}}\n\
             \x20 - job_name: kmon-agent\n    static_configs:\n      - targets: [\"{}\"]\n        labels: {{cluster: test}}\n",
            recording.display(),
            alerts.display(),
            agent.metrics
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(dir.path(), &prometheus_yml);
    let context =
        |p: &Prometheus, cluster: &Cluster| format!("prometheus log:\n{}\nbrokers:\n{}", p.log(), cluster.logs());

    wait_for("every target up", Duration::from_secs(60), || {
        let up = prometheus.query(r#"sum(up{cluster="test"})"#).ok()?;
        (up.first()?["value"][1] == "4").then_some(())
    });
    // The group consumes a little more while Prometheus watches, so its
    // consume rate (and time to drain) is measured.
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "watched", "--group", "readers", "--from-beginning", "--max-records", "50"],
        "",
    );
    // A few scrapes so that rates have two samples and the group is evaluated.
    wait_for("consumer lag in Prometheus", Duration::from_secs(60), || {
        let lag = prometheus.query(r#"consumergroup:kafka_consumergroup_lag:sum{consumergroup="readers"} > 0"#).ok()?;
        (!lag.is_empty()).then_some(())
    });

    // (a) Every panel expression runs; those with data on a healthy cluster
    // have some (rates need a few scrapes: asked again until a deadline).
    let panels_without_data = || {
        let mut empty = Vec::new();
        for (place, expr) in all_panel_expressions() {
            let result = prometheus.query(&expr).unwrap_or_else(|e| panic!("{place}: {expr}: {e}"));
            if result.is_empty() && !DATA_WHILE_A_BROKER_IS_DOWN.iter().any(|t| place.contains(&format!("{t:?}"))) {
                empty.push(format!("{place}: {expr}"));
            }
        }
        empty
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut empty = panels_without_data();
    while !empty.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        empty = panels_without_data();
    }
    assert!(empty.is_empty(), "panels without data:\n{}", empty.join("\n"));
    assert!(
        prometheus.firing("KmonUnderReplicatedPartitions").is_empty(),
        "healthy cluster: {:?}",
        prometheus.api("/api/v1/alerts")
    );
    assert!(prometheus.firing("KmonBrokerDown").is_empty());

    // (c) The group's consumer has stopped; more records make its lag grow.
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);
    wait_for("KmonConsumerLagGrowing firing for the stopped group", Duration::from_secs(60), || {
        let lagging = prometheus.firing("KmonConsumerLagGrowing");
        lagging.iter().any(|l| l["consumergroup"] == "readers" && l["topic"] == "watched").then_some(())
    });

    // (b) SIGKILL a broker that is not the active controller.
    let controller = prometheus
        .query("kafka_controller_kafkacontroller_activecontrollercount == 1")
        .unwrap()
        .first()
        .and_then(|s| s["metric"]["instance"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let victim = (1..=3).find(|id| cluster.broker(*id).metrics != controller).unwrap();
    let victim_metrics = cluster.broker(victim).metrics.clone();
    cluster.broker(victim).kill();
    wait_for("KmonBrokerDown and KmonUnderReplicatedPartitions firing", Duration::from_secs(60), || {
        let down = prometheus.firing("KmonBrokerDown");
        let urp = prometheus.firing("KmonUnderReplicatedPartitions");
        (down.iter().any(|l| l["instance"] == victim_metrics.as_str()) && !urp.is_empty()).then_some(())
    });
    let down = prometheus.firing("KmonBrokerDown");
    assert_eq!(down.len(), 1, "only the killed broker is down: {down:?}\n{}", context(&prometheus, &cluster));
    // The panels that are empty on a healthy cluster now have data.
    for (place, expr) in all_panel_expressions() {
        if DATA_WHILE_A_BROKER_IS_DOWN.iter().any(|t| place.contains(&format!("{t:?}"))) {
            wait_for(&format!("{place} to have data with broker {victim} down"), Duration::from_secs(30), || {
                let result = prometheus.query(&expr).unwrap_or_else(|e| panic!("{place}: {expr}: {e}"));
                (!result.is_empty()).then_some(())
            });
        }
    }
    assert_eq!(down[0]["severity"], "critical");
    assert_eq!(down[0]["cluster"], "test");

    // Back on the same ports and data: both resolve.
    cluster.restart(victim);
    wait_for("the alerts to resolve", Duration::from_secs(90), || {
        (prometheus.firing("KmonBrokerDown").is_empty()
            && prometheus.firing("KmonUnderReplicatedPartitions").is_empty())
        .then_some(())
    });
    drop(agent);
}
