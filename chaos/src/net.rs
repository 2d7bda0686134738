//! The network of a chaos run: one Linux bridge `kmonbr<N>` in the root
//! namespace with address `10.77.<N>.254/24` (so the test process reaches
//! every broker), and per broker `i` a namespace `kmonc<N>-<i>` joined to
//! the bridge by a veth pair (`kmv<N>h<i>` on the bridge, `kmv<N>n<i>` in
//! the namespace with `10.77.<N>.<i>/24`).
//!
//! Faults act inside a namespace only: a partition is an nftables table
//! `inet kmonchaos` dropping traffic to and from some addresses; a lossy or
//! slow link is a netem qdisc on the namespace's veth. Healing deletes both.
//!
//! Every object is removed when the [`Network`] is dropped; a run that died
//! without dropping (SIGKILL) leaves its objects behind, and the next
//! [`Network::create`] sweeps them: the owner of run `N` is recorded in
//! `/run/kmon-chaos/<N>.pid`, and a bridge whose owner is gone is removed
//! with its namespaces.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const OWNERS: &str = "/run/kmon-chaos";
const BRIDGE_PREFIX: &str = "kmonbr";
const NFT_TABLE: &str = "kmonchaos";
const NFT_LOSS_TABLE: &str = "kmonchaosloss";

/// The bridge, namespaces and veth pairs of one run.
#[derive(Debug)]
pub struct Network {
    pub run: u8,
    pub hosts: usize,
}

/// Runs `program args`, failing with its stderr.
pub fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `program args` with `input` on its standard input.
fn sh_stdin(program: &str, args: &[&str], input: &str) -> anyhow::Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    child.stdin.take().expect("piped").write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Why this machine cannot run the chaos harness, if it cannot: not root,
/// no `ip`, `tc` or `nft`, or namespaces refused.
pub fn unsupported() -> Option<String> {
    let uid = sh("id", &["-u"]).unwrap_or_default();
    if uid.trim() != "0" {
        return Some("needs root (network namespaces, nftables, tc, tmpfs)".into());
    }
    for tool in ["ip", "tc", "nft"] {
        if sh("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            return Some(format!("`{tool}` is not installed (Debian: iproute2, nftables)"));
        }
    }
    let probe = format!("kmonprobe{}", std::process::id());
    match sh("ip", &["netns", "add", &probe]) {
        Ok(_) => {
            let _ = sh("ip", &["netns", "del", &probe]);
            None
        }
        Err(err) => Some(format!("cannot create a network namespace: {err}")),
    }
}

impl Network {
    /// Sweeps leftovers of dead runs, then creates the bridge and one
    /// namespace per host on the first free run number.
    pub fn create(hosts: usize) -> anyhow::Result<Network> {
        sweep();
        std::fs::create_dir_all(OWNERS)?;
        let run = (1..=250u8)
            .find(|n| !link_exists(&bridge_name(*n)) && !owner_file(*n).exists())
            .context("no free chaos run number (250 runs in use?)")?;
        std::fs::write(owner_file(run), std::process::id().to_string())?;
        let network = Network { run, hosts };
        network.build().with_context(|| format!("cannot build the network of chaos run {run}"))?;
        Ok(network)
    }

    fn build(&self) -> anyhow::Result<()> {
        let bridge = bridge_name(self.run);
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        sh("ip", &["addr", "add", &format!("{}/24", self.host_address()), "dev", &bridge])?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        for i in 1..=self.hosts {
            let ns = self.namespace(i);
            let (outer, inner) = (format!("kmv{}h{i}", self.run), format!("kmv{}n{i}", self.run));
            sh("ip", &["netns", "add", &ns])?;
            sh("ip", &["link", "add", &outer, "type", "veth", "peer", "name", &inner])?;
            sh("ip", &["link", "set", &outer, "master", &bridge])?;
            sh("ip", &["link", "set", &outer, "up"])?;
            sh("ip", &["link", "set", &inner, "netns", &ns])?;
            self.exec(i, &["ip", "link", "set", "lo", "up"])?;
            self.exec(i, &["ip", "addr", "add", &format!("{}/24", self.address(i)), "dev", &inner])?;
            self.exec(i, &["ip", "link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    pub fn namespace(&self, i: usize) -> String {
        format!("kmonc{}-{i}", self.run)
    }

    /// Address of host `i` (1-based).
    pub fn address(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.run, i as u8)
    }

    /// The root namespace's address on the bridge (where clients are).
    pub fn host_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.run, 254)
    }

    /// Runs a command inside host `i`'s namespace.
    pub fn exec(&self, i: usize, command: &[&str]) -> anyhow::Result<String> {
        let ns = self.namespace(i);
        let mut args = vec!["netns", "exec", ns.as_str()];
        args.extend_from_slice(command);
        sh("ip", &args)
    }

    /// Host `i` drops every packet to or from `peers` (addresses), in both
    /// directions, replacing any earlier rules of its own.
    pub fn block(&self, i: usize, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
        self.unblock(i);
        if peers.is_empty() {
            return Ok(());
        }
        let set = peers.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", ");
        let rules = format!(
            "table inet {NFT_TABLE} {{\n\
             chain input {{ type filter hook input priority 0; policy accept; ip saddr {{ {set} }} drop; }}\n\
             chain output {{ type filter hook output priority 0; policy accept; ip daddr {{ {set} }} drop; }}\n\
             }}\n"
        );
        sh_stdin("ip", &["netns", "exec", &self.namespace(i), "nft", "-f", "-"], &rules)
    }

    /// Removes host `i`'s drop rules (none is fine).
    pub fn unblock(&self, i: usize) {
        let _ = self.exec(i, &["nft", "delete", "table", "inet", NFT_TABLE]);
    }

    /// Packet loss (percent) and delay on host `i`'s link; returns how.
    /// Kernels without `sch_netem` (some VM kernels) get the nearest thing
    /// they have: random loss from nftables (`numgen random`) in both
    /// directions, and a slow link (token bucket at 1 Mbit/s, queueing up to
    /// `delay_ms`) instead of a fixed delay.
    pub fn degrade(&self, i: usize, loss_percent: u32, delay_ms: u32) -> anyhow::Result<String> {
        let dev = format!("kmv{}n{i}", self.run);
        let (loss, delay) = (format!("{loss_percent}%"), format!("{delay_ms}ms"));
        let jitter = format!("{}ms", delay_ms / 4);
        let netem = self.exec(
            i,
            &["tc", "qdisc", "replace", "dev", &dev, "root", "netem", "delay", &delay, &jitter, "loss", &loss],
        );
        match netem {
            Ok(_) => Ok("netem".into()),
            Err(err) if err.to_string().contains("qdisc kind is unknown") => {
                let rules = format!(
                    "table inet {NFT_LOSS_TABLE} {{\n\
                     chain input {{ type filter hook input priority 0; policy accept; numgen random mod 100 < {loss_percent} drop; }}\n\
                     chain output {{ type filter hook output priority 0; policy accept; numgen random mod 100 < {loss_percent} drop; }}\n\
                     }}\n"
                );
                sh_stdin("ip", &["netns", "exec", &self.namespace(i), "nft", "-f", "-"], &rules)?;
                self.exec(
                    i,
                    &[
                        "tc", "qdisc", "replace", "dev", &dev, "root", "tbf", "rate", "1mbit", "burst", "16kb",
                        "latency", &delay,
                    ],
                )?;
                Ok("no sch_netem in this kernel: nftables random loss + tbf 1 Mbit/s".into())
            }
            Err(err) => Err(err),
        }
    }

    /// Removes host `i`'s loss rules and qdisc (none is fine).
    pub fn restore(&self, i: usize) {
        let dev = format!("kmv{}n{i}", self.run);
        let _ = self.exec(i, &["tc", "qdisc", "del", "dev", &dev, "root"]);
        let _ = self.exec(i, &["nft", "delete", "table", "inet", NFT_LOSS_TABLE]);
    }

    /// Heals every host: no drop rules, no loss, no netem.
    pub fn heal_all(&self) {
        for i in 1..=self.hosts {
            self.unblock(i);
            self.restore(i);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        remove_run(self.run);
    }
}

/// The source name of run `run`'s tmpfs mount, so a sweep finds it.
pub fn tmpfs_source(run: u8) -> String {
    format!("kmon-chaos-{run}")
}

fn bridge_name(run: u8) -> String {
    format!("{BRIDGE_PREFIX}{run}")
}

fn owner_file(run: u8) -> PathBuf {
    PathBuf::from(OWNERS).join(format!("{run}.pid"))
}

fn link_exists(name: &str) -> bool {
    sh("ip", &["link", "show", name]).is_ok()
}

/// Kills the processes in run `run`'s namespaces, deletes the namespaces
/// (their veth ends go with them), unmounts its tmpfs, and deletes its
/// bridge and owner file.
fn remove_run(run: u8) {
    let prefix = format!("kmonc{run}-");
    if let Ok(list) = sh("ip", &["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with(&prefix)) {
            // Brokers a dead run left behind go first.
            for pid in sh("ip", &["netns", "pids", ns]).unwrap_or_default().split_whitespace() {
                let _ = sh("kill", &["-KILL", pid]);
            }
            let _ = sh("ip", &["netns", "del", ns]);
        }
    }
    let source = tmpfs_source(run);
    for line in std::fs::read_to_string("/proc/mounts").unwrap_or_default().lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(source.as_str())
            && let Some(target) = fields.next()
        {
            let _ = sh("umount", &["-l", target]);
        }
    }
    let _ = sh("ip", &["link", "del", &bridge_name(run)]);
    let _ = std::fs::remove_file(owner_file(run));
}

/// Removes the objects of runs whose owner process is gone.
pub fn sweep() {
    let mut runs = std::collections::BTreeSet::new();
    if let Ok(list) = sh("ip", &["-o", "link", "show", "type", "bridge"]) {
        for line in list.lines() {
            let name = line.split(':').nth(1).map(str::trim).unwrap_or_default();
            if let Some(run) = name.strip_prefix(BRIDGE_PREFIX).and_then(|n| n.parse::<u8>().ok()) {
                runs.insert(run);
            }
        }
    }
    if let Ok(list) = sh("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if let Some(run) = name.strip_prefix("kmonc").and_then(|n| n.split('-').next()?.parse::<u8>().ok()) {
                runs.insert(run);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(OWNERS) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(run) = name.strip_suffix(".pid").and_then(|n| n.parse::<u8>().ok()) {
                runs.insert(run);
            }
        }
    }
    for run in runs {
        let owner = std::fs::read_to_string(owner_file(run)).ok().and_then(|p| p.trim().parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| PathBuf::from(format!("/proc/{pid}")).exists());
        if !alive {
            eprintln!("kmon chaos: removing leftovers of dead run {run}");
            remove_run(run);
        }
    }
}
