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
    },
}

pub(crate) fn run(command: DashboardsCommand) -> anyhow::Result<()> {
    match command {
        DashboardsCommand::Export { out, force } => export(&out, force),
    }
}

fn export(out: &Path, force: bool) -> anyhow::Result<()> {
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
        std::fs::write(&target, contents).with_context(|| format!("cannot write {}", target.display()))?;
        println!("{}", target.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboard_and_rule_file_is_embedded() {
        let on_disk: Vec<String> = ["grafana", "prometheus"]
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
        export(dir.path(), false).unwrap();
        let alerts = std::fs::read_to_string(dir.path().join("prometheus/alerts.yml")).unwrap();
        assert!(alerts.contains("groups:"));
        let err = export(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        export(dir.path(), true).unwrap();
    }
}
