//! A real `prometheus` (Debian's package, which test.sh installs) for the
//! tests that run queries, rules and alerts against kmon's metrics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, http_get, wait_for};

/// `prometheus` on 127.0.0.1, killed on drop.
pub struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` with `config`, its data under `dir`, on a free
    /// port; waits (60 s at most) until it is ready.
    pub fn start(dir: &Path, config: &Path) -> Prometheus {
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
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(&self.address, path).ok_or("no answer")?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if json["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// An instant query's result vector.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Firing alerts named `name`, as their label sets.
    pub fn firing(&self, name: &str) -> Vec<Value> {
        let data = self.api("/api/v1/alerts").unwrap_or_default();
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .map(|a| a["labels"].clone())
            .collect()
    }

    /// What prometheus wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
