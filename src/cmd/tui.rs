//! `kmon tui`: the operator's live view (the `kmon-tui` crate). Logs go
//! nowhere while it runs: the screen is the terminal.

use std::time::Duration;

use super::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct TuiArgs {
    /// Time between two refreshes of the cluster's data.
    #[arg(long, default_value = "1s", value_parser = parse_refresh)]
    refresh: Duration,
    /// Append key-to-frame, draw and refresh times to this file (what
    /// `kmon bench tui` measures with).
    #[arg(long, env = "KMON_TUI_TIMINGS", hide = true)]
    timings: Option<std::path::PathBuf>,
}

fn parse_refresh(text: &str) -> Result<Duration, String> {
    let refresh = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if refresh < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(refresh)
}

pub(crate) async fn run(client: ClientArgs, args: TuiArgs) -> anyhow::Result<()> {
    kmon_tui::run(kmon_tui::Config { bootstrap: client.bootstrap, refresh: args.refresh, timings: args.timings })
        .await?;
    Ok(())
}
