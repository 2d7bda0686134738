//! `kmon up`: a local cluster on embedded defaults. Today that is one
//! broker on 127.0.0.1:9092 with its data under `./kmon-data`; it grows
//! into a multi-broker cluster with its node agent with replication.

use std::path::PathBuf;

use kmon_broker::BrokerConfig;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where the cluster keeps its data.
    #[arg(long, default_value = "kmon-data")]
    data_dir: PathBuf,
    /// gRPC address of the (first) broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: String,
    /// /metrics address of the (first) broker.
    #[arg(long, default_value = "127.0.0.1:9644")]
    metrics_listen: String,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    crate::cmd::init_logging();
    let config = BrokerConfig {
        data_dirs: vec![args.data_dir.join("broker-0")],
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        ..BrokerConfig::default()
    };
    eprintln!(
        "kmon up: broker 0 on {} (metrics {}), data in {}; Ctrl-C to stop",
        config.listen,
        config.metrics_listen,
        config.data_dirs[0].display()
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(super::broker::cancel_on_signal(shutdown.clone()));
    kmon_broker::run(config, shutdown).await?;
    Ok(())
}
