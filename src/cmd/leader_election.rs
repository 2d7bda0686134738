//! `kmon leader-election --preferred`: moves leadership back to each
//! partition's preferred (first) replica wherever it is in sync and alive,
//! as Kafka's `kafka-leader-election.sh --election-type preferred`.

use anyhow::{Context, bail};
use clap::Args;
use kmon_client::Admin;

use super::ClientArgs;

#[derive(Debug, Args)]
pub(crate) struct LeaderElectionArgs {
    /// Elect the preferred replica (the only election kmon runs on request;
    /// unclean election is a topic config, `unclean.leader.election.enable`).
    #[arg(long)]
    preferred: bool,
    /// Only these topics (comma-separated); default: every topic.
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
}

pub(crate) async fn run(client: ClientArgs, args: LeaderElectionArgs) -> anyhow::Result<()> {
    if !args.preferred {
        bail!("say which election to run: `--preferred` (the only kind kmon runs on request)");
    }
    let admin = Admin::connect(&client.bootstrap).await?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let result = admin.elect_preferred_leaders(&topics).await.context("preferred leader election failed")?;
    println!(
        "preferred leader election: {} partition(s) moved to their preferred replica, {} already led by it, {} not eligible (preferred replica out of sync or down)",
        result.moved, result.already_preferred, result.not_eligible
    );
    Ok(())
}
