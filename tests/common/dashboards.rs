//! The Grafana dashboards and Prometheus rules of the repository, as the
//! dashboards tests read them (`dashboards_static.rs` checks them without a
//! cluster, `dashboards_live.rs` runs them on a real Prometheus).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository (the kmon-cli package's directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `dashboards/prometheus/`: rules, alert tests, scrape config.
pub fn prometheus_dir() -> PathBuf {
    root().join("dashboards/prometheus")
}

/// A file's text; panics with its path.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL expression of one dashboard, labelled by where it is: the
/// panel targets, the annotation queries and the template variables' queries (the metric selector
/// of `label_values(selector, label)`).
pub fn dashboard_expressions(dashboard: &Value) -> Vec<(String, String)> {
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
    for annotation in dashboard["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push((format!("annotation {:?}", annotation["name"].as_str().unwrap_or("?")), expr.to_owned()));
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
pub fn panels(dashboard: &Value) -> Vec<&Value> {
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

/// `dashboards/grafana/*.json` by file name, parsed, in name order.
pub fn dashboards() -> Vec<(String, Value)> {
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

/// A panel expression as Prometheus would get it from Grafana, every
/// variable set to "all".
pub fn filled_in(expr: &str) -> String {
    let mut out = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s");
    for name in
        ["cluster", "broker_instance", "broker", "topic", "consumergroup", "fault_domain", "update_domain", "node"]
    {
        out = out.replace(&format!("${{{name}}}"), ".*").replace(&format!("${name}"), ".*");
    }
    assert!(!out.contains('$'), "unknown variable in {expr}");
    out
}

/// Every panel expression of every dashboard, [`filled_in`], labelled
/// `FILE panel "TITLE"`.
pub fn all_panel_expressions() -> Vec<(String, String)> {
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
