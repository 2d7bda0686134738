//! `kmon report --since 15m --out report.png`: one image (PNG or SVG, by
//! the file's extension) of time charts drawn from the history the node
//! agents ship to `__kmon_node_metrics`: throughput, lag per group,
//! under-replicated partitions, ISR size, partitions per broker, and disk,
//! network and CPU per node (see the `kmon-report` crate; the cluster
//! figures are the agent's cluster sample, `kmon_agent::collect::cluster`).
//!
//! The output's extension is checked before the cluster is asked
//! anything; a window without samples is an error, not an empty image.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kmon_report::draw::{self, HEIGHT, WIDTH};
use kmon_report::history::TOPIC;
use kmon_report::{Format, ReportError};

use crate::cmd::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// How far back the charts go, e.g. 15m, 1h, 90s.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    since: Duration,
    /// The image to write: a .png or .svg file name chooses the format.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) async fn run(client: ClientArgs, args: ReportArgs) -> anyhow::Result<()> {
    let format = Format::from_path(&args.out)?;
    if args.since.is_zero() {
        return Err(ReportError::EmptyWindow.into());
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let from_ms = now_ms - args.since.as_millis() as i64;
    let history = kmon_report::read::read(&client.bootstrap, args.since, now_ms).await?;
    if history.samples.is_empty() {
        return Err(ReportError::NoHistory {
            since: args.since,
            detail: format!("{TOPIC} holds no sample taken since {} UTC", draw::utc(from_ms)),
        }
        .into());
    }
    let charts = kmon_report::charts(&history.samples);
    if charts.iter().all(|c| c.lines.is_empty()) {
        return Err(ReportError::NoHistory {
            since: args.since,
            detail: format!("the {} samples hold none of the charted series", history.samples.len()),
        }
        .into());
    }
    let nodes: std::collections::BTreeSet<&str> = history.samples.iter().map(|s| s.node.as_str()).collect();
    let title = format!(
        "kmon report · {} – {} UTC · {} samples from {} node{} · {}",
        draw::utc(from_ms),
        &draw::utc(now_ms)[11..],
        history.samples.len(),
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        client.bootstrap,
    );
    let out = args.out.clone();
    let drawn = charts.clone();
    tokio::task::spawn_blocking(move || kmon_report::draw(&out, format, &title, &drawn)).await??;

    println!(
        "wrote {} ({WIDTH}x{HEIGHT} {}): {} samples from {} node(s) since {} UTC",
        args.out.display(),
        if format == Format::Png { "PNG" } else { "SVG" },
        history.samples.len(),
        nodes.len(),
        draw::utc(from_ms)
    );
    for chart in &charts {
        println!("  {}: {} lines, {} points", chart.title, chart.lines.len(), chart.points());
    }
    if history.undecodable > 0 {
        eprintln!("kmon report: skipped {} records of {TOPIC} that are not samples", history.undecodable);
    }
    Ok(())
}
