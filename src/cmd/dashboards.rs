//! `kmon dashboards export --out DIR`: writes the Grafana dashboards, the
//! Prometheus rules (with their promtool tests), the scrape configuration
//! and the metrics catalogue, all embedded in the binary, so a user of the
//! release binary has them without the source tree.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/", $path)))),*]
    };
}

/// (path under the export directory, contents).
const FILES: &[(&str, &str)] = embedded!(
    "METRICS.md",
    "grafana/cluster-overview.json",
    "grafana/consumer-lag.json",
    "grafana/isr-replication.json",
    "grafana/nodes.json",
    "grafana/partition-balance.json",
    "RUNBOOK.md",
    "alertmanager/alertmanager.yml",
    "prometheus/alerts.yml",
    "prometheus/alerts_test.yml",
    "prometheus/prometheus.yml",
    "prometheus/recording.yml",
);

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DashboardsCommand {
    /// Write the dashboards, rules, scrape configuration and catalogue.
    Export {
        /// Directory to write into (created; existing files are not overwritten without --force).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        names: ScrapeNames,
    },
}

/// The names the rules select their series by, as the operator's
/// Prometheus sets them: the exported files are rewritten to use them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ScrapeNames {
    /// Scrape job name of the brokers' /metrics in your Prometheus.
    #[arg(long, default_value = DEFAULT_BROKER_JOB, value_parser = job_name)]
    broker_job: String,
    /// Scrape job name of the node agents' /metrics.
    #[arg(long, default_value = DEFAULT_AGENT_JOB, value_parser = job_name)]
    agent_job: String,
    /// Scrape job name of `kmon mirror`'s /metrics.
    #[arg(long, default_value = DEFAULT_MIRROR_JOB, value_parser = job_name)]
    mirror_job: String,
    /// Where RUNBOOK.md is published (e.g. https://wiki.example.com/kmon/runbook):
    /// the alerts' `runbook_url` links become URL#<alert>. Default: the
    /// exported RUNBOOK.md beside the rules, as a relative link.
    #[arg(long)]
    runbook_url: Option<String>,
}

const DEFAULT_BROKER_JOB: &str = "kmon-broker";
const DEFAULT_AGENT_JOB: &str = "kmon-agent";
const DEFAULT_MIRROR_JOB: &str = "kmon-mirror";

/// A Prometheus job name that can be put into a rule's `job="..."`
/// matcher and a scrape config unquoted.
fn job_name(name: &str) -> Result<String, String> {
    let ok =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!("{name:?} is not a job name kmon can write into rules (letters, digits and - _ . : / only)"))
    }
}

impl ScrapeNames {
    /// `contents` of one exported file with the job names and runbook
    /// links replaced.
    fn apply(&self, contents: &str) -> String {
        let jobs = [
            (DEFAULT_BROKER_JOB, &self.broker_job),
            (DEFAULT_AGENT_JOB, &self.agent_job),
            (DEFAULT_MIRROR_JOB, &self.mirror_job),
        ];
        let mut text = contents.to_owned();
        for (default, name) in jobs {
            // Rule matchers, scrape configs and the expected labels in the
            // rules' unit tests.
            text = text
                .replace(&format!("job=\"{default}\""), &format!("job=\"{name}\""))
                .replace(&format!("job_name: {default}\n"), &format!("job_name: {name}\n"))
                .replace(&format!("job: {default}\n"), &format!("job: {name}\n"));
        }
        if let Some(url) = &self.runbook_url {
            text =
                text.replace("runbook_url: \"RUNBOOK.md#", &format!("runbook_url: \"{}#", url.trim_end_matches('#')));
        }
        text
    }
}

pub(crate) fn run(command: DashboardsCommand) -> anyhow::Result<()> {
    match command {
        DashboardsCommand::Export { out, force, names } => export(&out, force, &names),
    }
}

fn export(out: &Path, force: bool, names: &ScrapeNames) -> anyhow::Result<()> {
    if !force {
        let existing: Vec<String> =
            FILES.iter().map(|(p, _)| out.join(p)).filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        if !existing.is_empty() {
            bail!("refusing to overwrite {} (pass --force to replace them)", existing.join(", "));
        }
    }
    for (path, contents) in FILES {
        let target = out.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, names.apply(contents)).with_context(|| format!("cannot write {}", target.display()))?;
        println!("{}", target.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboard_and_rule_file_is_embedded() {
        let on_disk: Vec<String> = ["grafana", "prometheus", "alertmanager"]
            .iter()
            .flat_map(|dir| {
                std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards").join(dir))
                    .unwrap()
                    .map(move |e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
            })
            .collect();
        for file in on_disk {
            assert!(FILES.iter().any(|(p, _)| *p == file), "{file} is not embedded in `kmon dashboards export`");
        }
    }

    #[test]
    fn export_writes_every_file_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = ScrapeNames {
            broker_job: DEFAULT_BROKER_JOB.into(),
            agent_job: DEFAULT_AGENT_JOB.into(),
            mirror_job: DEFAULT_MIRROR_JOB.into(),
            runbook_url: None,
        };
        export(dir.path(), false, &defaults).unwrap();
        let alerts = std::fs::read_to_string(dir.path().join("prometheus/alerts.yml")).unwrap();
        assert!(alerts.contains("groups:"));
        assert!(dir.path().join("RUNBOOK.md").exists());
        let err = export(dir.path(), false, &defaults).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        export(dir.path(), true, &defaults).unwrap();
    }

    #[test]
    fn job_names_must_fit_a_matcher() {
        assert!(job_name("kafka/kmon-brokers").is_ok());
        let err = job_name("a\"b").unwrap_err();
        assert!(err.contains("not a job name"), "{err}");
        assert!(job_name("").is_err());
    }
}
