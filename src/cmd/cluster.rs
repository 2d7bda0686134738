//! `kmon cluster remove-broker`: shrinking the broker set is not
//! supported; the broker refuses with `InvalidKafkaScaleDownRequestErrorCode`
//! (why, and what to do instead) and nothing changes. This command prints
//! that message and exits non-zero.

use anyhow::bail;
use clap::Subcommand;
use kmon_client::Admin;

use super::ClientArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Remove a broker: always refused (scale-down is not supported; the
    /// message says what to do instead).
    RemoveBroker {
        /// The broker's id.
        id: i32,
    },
}

pub(crate) async fn run(client: ClientArgs, command: ClusterCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        ClusterCommand::RemoveBroker { id } => match admin.remove_broker(id).await {
            Ok(()) => bail!("the broker accepted removing broker {id}, which kmon never does: is it another version?"),
            Err(err) => Err(err.into()),
        },
    }
}
