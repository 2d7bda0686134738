//! `kmon cluster`: change the broker set.
//!
//! - `add-broker`: the general way to grow a cluster (`kmon up --brokers N`
//!   is the local one). It asks the cluster for the next free id, the
//!   fault × update domain cell that has the fewest brokers (walking the
//!   grid's diagonals, as placement does) and the quorum's voters, then
//!   becomes that `kmon broker` in the foreground. The new broker joins as a
//!   learner; new topics use it at once, existing partitions move onto it
//!   with `kmon rebalance execute`.
//! - `remove-broker`: shrinking the broker set is not supported; the broker
//!   refuses with `InvalidKafkaScaleDownRequestErrorCode` (why, and what to
//!   do instead) and nothing changes. This command prints that message and
//!   exits non-zero.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use kmon_broker::placement;
use kmon_client::{Admin, BrokerInfo};

use super::ClientArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start a new broker that joins the cluster (runs in the foreground).
    AddBroker {
        /// gRPC listen address of the new broker, HOST:PORT.
        #[arg(long)]
        listen: String,
        /// Its /metrics listen address, HOST:PORT.
        #[arg(long)]
        metrics_listen: String,
        /// Its data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Its id (default: one above the highest registered id).
        #[arg(long)]
        id: Option<i32>,
        /// Its fault domain (default: the emptiest cell of the domain grid).
        #[arg(long, requires = "update_domain")]
        fault_domain: Option<String>,
        /// Its update domain (default: the emptiest cell of the domain grid).
        #[arg(long, requires = "fault_domain")]
        update_domain: Option<String>,
        /// Print the `kmon broker` command instead of running it.
        #[arg(long)]
        dry_run: bool,
    },
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
        ClusterCommand::AddBroker { listen, metrics_listen, data_dir, id, fault_domain, update_domain, dry_run } => {
            let metadata = admin.metadata(&[]).await.context("cannot read the cluster's brokers")?;
            let id = match id {
                Some(id) if metadata.brokers.iter().any(|b| b.id == id) => {
                    bail!(
                        "broker {id} is already registered: choose a new id (or leave --id out for the next free one)"
                    )
                }
                Some(id) if id < 0 => bail!("invalid broker id {id}: must not be negative"),
                Some(id) => id,
                None => metadata.brokers.iter().map(|b| b.id).max().unwrap_or(0) + 1,
            };
            let (fd, ud) = match (fault_domain, update_domain) {
                (Some(fd), Some(ud)) => (fd, ud),
                _ => emptiest_cell(&metadata.brokers),
            };
            let voters = admin.controller_voters().await.context("cannot read the quorum's voters")?;
            if voters.is_empty() {
                bail!("the cluster did not name its quorum voters (is it an older kmon?)");
            }
            let mut broker = std::process::Command::new(std::env::current_exe()?);
            broker
                .arg("broker")
                .args(["--id", &id.to_string(), "--fault-domain", &fd, "--update-domain", &ud])
                .args(["--controller-voters", &voters, "--listen", &listen, "--metrics-listen", &metrics_listen])
                .arg("--data-dir")
                .arg(&data_dir);
            eprintln!("adding broker {id} in {fd}/{ud}, joining the quorum {voters}");
            if dry_run {
                println!("{broker:?}");
                return Ok(());
            }
            Err(broker.exec()).context("cannot start the broker")
        }
        ClusterCommand::RemoveBroker { id } => match admin.remove_broker(id).await {
            Ok(()) => bail!("the broker accepted removing broker {id}, which kmon never does: is it another version?"),
            Err(err) => Err(err.into()),
        },
    }
}

/// The (fault domain, update domain) cell with the fewest brokers, first in
/// the diagonal walk of the grid the cluster's domains span (FD0/UD0,
/// FD1/UD1, ..., then the next diagonal), so brokers added one by one fill
/// the grid as `kmon up` lays it out.
fn emptiest_cell(brokers: &[BrokerInfo]) -> (String, String) {
    let fds: Vec<&str> = brokers.iter().map(|b| b.fault_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let uds: Vec<&str> =
        brokers.iter().map(|b| b.update_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    if fds.is_empty() || uds.is_empty() {
        return ("FD0".into(), "UD0".into());
    }
    let mut count: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for b in brokers {
        *count.entry((b.fault_domain.as_str(), b.update_domain.as_str())).or_default() += 1;
    }
    let cells = fds.len() * uds.len();
    let walk = placement::diagonal_walk(cells, fds.len(), uds.len()).map(|(fd, ud)| (fds[fd], uds[ud]));
    let (fd, ud) = walk.min_by_key(|cell| count.get(cell).copied().unwrap_or(0)).expect("a non-empty grid");
    (fd.to_owned(), ud.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32, fd: &str, ud: &str) -> BrokerInfo {
        BrokerInfo {
            id,
            address: String::new(),
            metrics_address: String::new(),
            kafka_address: String::new(),
            fault_domain: fd.into(),
            update_domain: ud.into(),
            alive: true,
        }
    }

    #[test]
    fn new_brokers_fill_the_grid_along_its_diagonals() {
        let mut brokers = vec![broker(1, "FD0", "UD0"), broker(2, "FD1", "UD1"), broker(3, "FD2", "UD2")];
        let mut added = Vec::new();
        for id in 4..=9 {
            let (fd, ud) = emptiest_cell(&brokers);
            added.push(format!("{fd}/{ud}"));
            brokers.push(broker(id, &fd, &ud));
        }
        assert_eq!(added, ["FD0/UD1", "FD1/UD2", "FD2/UD0", "FD0/UD2", "FD1/UD0", "FD2/UD1"]);
        assert_eq!(emptiest_cell(&brokers), ("FD0".to_owned(), "UD0".to_owned()), "full grid: start again");
    }
}
