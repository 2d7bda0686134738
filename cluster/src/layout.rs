//! Where the brokers of a local cluster go: ids, ports of 127.0.0.1, and
//! cells of the fault domain × update domain grid (`kmon_broker::placement`'s
//! diagonal walk, or row by row), kept in `DIR/cluster.toml` so a restart
//! brings back the same cluster and a larger `--brokers` grows it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kmon_broker::placement;
use serde::{Deserialize, Serialize};

/// Every local cluster binds 127.0.0.1 only.
pub const HOST: &str = "127.0.0.1";
/// The layout file inside the cluster's directory.
pub const LAYOUT_FILE: &str = "cluster.toml";
/// Small clusters run combined: every broker a voter, up to five (as KRaft
/// advises); brokers beyond that are learners.
pub const MAX_VOTERS: usize = 5;

/// What `kmon up`'s flags ask of the layout (None: the default, or what
/// `cluster.toml` says).
#[derive(Debug, Clone, Default)]
pub struct LayoutRequest {
    pub data_dir: PathBuf,
    pub brokers: Option<u32>,
    pub base_port: Option<u16>,
    pub base_metrics_port: Option<u16>,
    pub base_kafka_port: Option<u16>,
    pub layout: Option<Layout>,
    pub fault_domains: Option<u32>,
    pub update_domains: Option<u32>,
}

/// How brokers are placed on the fault domain × update domain grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Walk the grid's diagonals (`kmon_broker::placement::diagonal_walk`):
    /// with 3×3: 1 FD0/UD0, 2 FD1/UD1, 3 FD2/UD2, 4 FD0/UD1, ... so any F
    /// consecutive brokers span every fault domain and, when F == U, every
    /// update domain too.
    Diagonal,
    /// Row by row: for ud in 0..U, for fd in 0..F: (fd, ud).
    Rows,
}

/// `DIR/cluster.toml`: the cluster as first started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterLayout {
    /// The layout the domains were assigned with (informational).
    pub layout: Layout,
    /// `ID@HOST:PORT,...` of the controller voters.
    pub controller_voters: String,
    /// Grid size the domains were assigned on (absent in files written
    /// before scale-up existed: then the flags, or 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_domains: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_domains: Option<u32>,
    pub brokers: Vec<BrokerLayout>,
}

/// One broker of `cluster.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerLayout {
    pub id: u32,
    /// gRPC `HOST:PORT`.
    pub listen: String,
    /// Metrics `HOST:PORT`.
    pub metrics_listen: String,
    /// Kafka-protocol `HOST:PORT` (layouts written before the Kafka listener
    /// have none: broker i then gets the default 19092+i-1).
    #[serde(default)]
    pub kafka_listen: String,
    pub fault_domain: String,
    pub update_domain: String,
    /// Data directory, relative to the cluster's directory.
    pub data_dir: PathBuf,
}

/// Kafka clients' default port, for broker 1 of `kmon up`.
const BASE_KAFKA_PORT: u16 = 19092;

/// Fault and update domain numbers of the first `count` brokers.
pub fn domains(layout: Layout, count: usize, fault_domains: u32, update_domains: u32) -> Vec<(u32, u32)> {
    let (f, u) = (fault_domains as usize, update_domains as usize);
    match layout {
        Layout::Diagonal => placement::diagonal_walk(count, f, u).map(|(fd, ud)| (fd as u32, ud as u32)).collect(),
        Layout::Rows => (0..count).map(|i| ((i % f) as u32, ((i / f) % u) as u32)).collect(),
    }
}

impl ClusterLayout {
    pub fn new(args: &LayoutRequest) -> anyhow::Result<Self> {
        let count = args.brokers.unwrap_or(3) as usize;
        let base_port = args.base_port.unwrap_or(9092);
        let base_metrics_port = args.base_metrics_port.unwrap_or(9644);
        let base_kafka_port = args.base_kafka_port.unwrap_or(BASE_KAFKA_PORT);
        let port = |base: u16, index: usize, what: &str| {
            u16::try_from(usize::from(base) + index)
                .with_context(|| format!("{what} port {base}+{index} is above 65535"))
        };
        let ports = (0..count)
            .map(|index| Ok((port(base_port, index, "gRPC")?, port(base_metrics_port, index, "metrics")?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut cluster = Self::on_ports(
            args.layout.unwrap_or(Layout::Diagonal),
            &ports,
            args.fault_domains.unwrap_or(3),
            args.update_domains.unwrap_or(3),
        )?;
        for (index, broker) in cluster.brokers.iter_mut().enumerate() {
            broker.kafka_listen = format!("{HOST}:{}", port(base_kafka_port, index, "Kafka")?);
        }
        cluster.check()?;
        Ok(cluster)
    }

    /// One broker per `(gRPC port, metrics port)` of 127.0.0.1, ids from 1;
    /// their Kafka listeners on any free port.
    pub fn on_ports(
        layout: Layout,
        ports: &[(u16, u16)],
        fault_domains: u32,
        update_domains: u32,
    ) -> anyhow::Result<Self> {
        let mut cluster = ClusterLayout {
            layout,
            controller_voters: String::new(),
            fault_domains: Some(fault_domains),
            update_domains: Some(update_domains),
            brokers: Vec::with_capacity(ports.len()),
        };
        for &(grpc, metrics) in ports {
            cluster.push_on_ports(grpc, metrics)?;
        }
        Ok(cluster.with_voters(MAX_VOTERS))
    }

    /// Only the first `count` brokers vote for the controller (tests keep
    /// three voters however many brokers they start).
    pub fn with_voters(mut self, count: usize) -> Self {
        self.controller_voters = voters(&self.brokers[..count.min(self.brokers.len())]);
        self
    }

    /// Adds brokers up to `count`: the next ids, the ports after broker 1's
    /// (broker i on base + i - 1), the next slots of the layout. Voters do
    /// not change: the new brokers join as learners.
    pub fn grow(
        &mut self,
        count: usize,
        fault_domains: Option<u32>,
        update_domains: Option<u32>,
    ) -> anyhow::Result<Vec<BrokerLayout>> {
        let port_of = |address: &str| -> anyhow::Result<u16> {
            address.rsplit(':').next().and_then(|p| p.parse().ok()).with_context(|| format!("bad address {address}"))
        };
        let first = &self.brokers[0];
        let (base, base_metrics) = (port_of(&first.listen)?, port_of(&first.metrics_listen)?);
        let base_kafka = port_of(&first.kafka_listen)?;
        let fault_domains = self.fault_domains.or(fault_domains).unwrap_or(3);
        let update_domains = self.update_domains.or(update_domains).unwrap_or(3);
        self.fault_domains = Some(fault_domains);
        self.update_domains = Some(update_domains);
        let mut added = Vec::new();
        for index in self.brokers.len()..count {
            let port = |base: u16| {
                u16::try_from(usize::from(base) + index)
                    .with_context(|| format!("broker {}'s port is above 65535", index + 1))
            };
            let mut broker = self.push_on_ports(port(base)?, port(base_metrics)?)?;
            // Port 0 (a bench's cluster) stays "any free port".
            if base_kafka != 0 {
                broker.kafka_listen = format!("{HOST}:{}", port(base_kafka)?);
                self.brokers[index].kafka_listen = broker.kafka_listen.clone();
            }
            added.push(broker);
        }
        self.check()?;
        Ok(added)
    }

    /// Adds one broker on these ports of 127.0.0.1 (its Kafka listener on
    /// any free port), the next id in the next cell of the layout. Voters do
    /// not change: it joins as a learner.
    pub fn push_on_ports(&mut self, grpc: u16, metrics: u16) -> anyhow::Result<BrokerLayout> {
        let index = self.brokers.len();
        let (f, u) = (self.fault_domains.unwrap_or(3), self.update_domains.unwrap_or(3));
        let (fd, ud) = domains(self.layout, index + 1, f, u)[index];
        let id = index as u32 + 1;
        let broker = BrokerLayout {
            id,
            listen: format!("{HOST}:{grpc}"),
            metrics_listen: format!("{HOST}:{metrics}"),
            kafka_listen: format!("{HOST}:0"),
            fault_domain: format!("FD{fd}"),
            update_domain: format!("UD{ud}"),
            data_dir: PathBuf::from(format!("broker-{id}")),
        };
        self.brokers.push(broker.clone());
        self.check()?;
        Ok(broker)
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(LAYOUT_FILE);
        let text = format!(
            "# Written by `kmon up` on first start (and when it adds brokers); `kmon up`\n\
             # on this directory restarts the same cluster from it.\n{}",
            toml::to_string(self)?
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Ports must not collide (gRPC and metrics ranges may overlap).
    pub fn check(&self) -> anyhow::Result<()> {
        let mut seen = BTreeSet::new();
        for b in &self.brokers {
            for address in [&b.listen, &b.metrics_listen, &b.kafka_listen] {
                if address.ends_with(":0") {
                    continue;
                }
                if !seen.insert(address) {
                    bail!("address {address} would be used twice; choose other base ports");
                }
            }
        }
        Ok(())
    }

    /// Loads `DIR/cluster.toml` (growing it when `--brokers` asks for
    /// more), or writes it on first start. Returns the brokers added.
    pub fn load_or_create(args: &LayoutRequest) -> anyhow::Result<(Self, Vec<BrokerLayout>)> {
        let path = args.data_dir.join(LAYOUT_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut cluster: ClusterLayout =
                toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
            for (index, broker) in cluster.brokers.iter_mut().enumerate() {
                if broker.kafka_listen.is_empty() {
                    broker.kafka_listen = format!("{HOST}:{}", usize::from(BASE_KAFKA_PORT) + index);
                }
            }
            let mut added = Vec::new();
            if let Some(wanted) = args.brokers {
                check_broker_count(&args.data_dir, cluster.brokers.len(), wanted as usize)?;
                if wanted as usize > cluster.brokers.len() {
                    added = cluster.grow(wanted as usize, args.fault_domains, args.update_domains)?;
                    cluster.write(&args.data_dir)?;
                    eprintln!(
                        "kmon up: adding broker(s) {} to the cluster in {}",
                        added
                            .iter()
                            .map(|b| format!("{} ({}/{})", b.id, b.fault_domain, b.update_domain))
                            .collect::<Vec<_>>()
                            .join(", "),
                        args.data_dir.display()
                    );
                }
            }
            if args.base_port.is_some()
                || args.base_metrics_port.is_some()
                || args.base_kafka_port.is_some()
                || args.layout.is_some()
                || args.fault_domains.is_some()
                || args.update_domains.is_some()
            {
                eprintln!(
                    "kmon up: restarting the cluster as stored in {}; layout and port flags are ignored",
                    path.display()
                );
            }
            return Ok((cluster, added));
        }
        let cluster = ClusterLayout::new(args)?;
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        cluster.write(&args.data_dir)?;
        Ok((cluster, Vec::new()))
    }
}

/// `ID@HOST:PORT,...` of `brokers`.
fn voters(brokers: &[BrokerLayout]) -> String {
    brokers.iter().map(|b| format!("{}@{}", b.id, b.listen)).collect::<Vec<_>>().join(",")
}

/// `--brokers` on an existing cluster: the same count restarts it, more
/// adds brokers; fewer is a scale-down, refused as the broker refuses
/// `RemoveBroker`.
pub fn check_broker_count(dir: &Path, stored: usize, wanted: usize) -> anyhow::Result<()> {
    if wanted < stored {
        let what = format!("restarting the cluster in {} with {wanted} of its {stored} brokers", dir.display());
        bail!("{}", kmon_broker::balance::scale_down::refusal(&what));
    }
    Ok(())
}
