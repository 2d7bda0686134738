//! Network interfaces: bytes, packets and errors received and transmitted
//! from sysinfo's `Networks` (totals since boot); drops, which sysinfo does
//! not give, from `/sys/class/net/IF/statistics/{rx,tx}_dropped` on Linux
//! (the same counters sysinfo reads the others from; 0 elsewhere); the link
//! speed from `/sys/class/net/IF/speed` ([`crate::source::net_speed`]) as
//! `node_network_speed_bytes` (Mb/s × 125000), only for interfaces whose
//! speed is known, as node_exporter.

use std::collections::BTreeMap;

use sysinfo::Networks;

use super::{Collect, CollectError, MAX_INTERFACES, Series};
use crate::metrics::{
    NET_RX_BYTES, NET_RX_DROP, NET_RX_ERRS, NET_RX_PACKETS, NET_SPEED, NET_TX_BYTES, NET_TX_DROP, NET_TX_ERRS,
    NET_TX_PACKETS,
};
use crate::source::net_speed::{self, BYTES_PER_MBIT};

/// Per-container virtual interfaces: they come and go with containers.
const SKIPPED_PREFIXES: &[&str] = &["veth", "cali", "lxc"];

#[derive(Debug, Default)]
pub struct NetworkCollector {
    networks: Option<Networks>,
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errs: u64,
    pub tx_errs: u64,
    pub rx_drop: u64,
    pub tx_drop: u64,
    /// Link speed in Mb/s, when known.
    pub speed_mbit: Option<u64>,
}

impl Collect for NetworkCollector {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        let networks = match &mut self.networks {
            Some(networks) => {
                networks.refresh(true);
                networks
            }
            None => self.networks.insert(Networks::new_with_refreshed_list().map_err(|e| CollectError(e.to_string()))?),
        };
        let interfaces: BTreeMap<String, Interface> = networks
            .iter()
            .map(|(name, data)| {
                let name = name.to_string_lossy().into_owned();
                let speed_mbit = if cfg!(target_os = "linux") { net_speed::read(&name)? } else { None };
                let interface = Interface {
                    rx_bytes: data.total_received(),
                    tx_bytes: data.total_transmitted(),
                    rx_packets: data.total_packets_received(),
                    tx_packets: data.total_packets_transmitted(),
                    rx_errs: data.total_errors_on_received(),
                    tx_errs: data.total_errors_on_transmitted(),
                    rx_drop: dropped(&name, "rx_dropped"),
                    tx_drop: dropped(&name, "tx_dropped"),
                    speed_mbit,
                };
                Ok((name, interface))
            })
            .collect::<Result<_, CollectError>>()?;
        series(&interfaces, out);
        Ok(())
    }
}

fn dropped(interface: &str, counter: &str) -> u64 {
    if !cfg!(target_os = "linux") || interface.contains('/') {
        return 0;
    }
    std::fs::read_to_string(format!("/sys/class/net/{interface}/statistics/{counter}"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// The bounded series of the interfaces (sorted by name).
pub fn series(interfaces: &BTreeMap<String, Interface>, out: &mut Vec<Series>) {
    let kept = interfaces
        .iter()
        .filter(|(name, _)| !SKIPPED_PREFIXES.iter().any(|p| name.starts_with(p)))
        .take(MAX_INTERFACES);
    for (name, i) in kept {
        let label = || vec![("device", name.clone())];
        for (desc, value) in [
            (&NET_RX_BYTES, i.rx_bytes),
            (&NET_TX_BYTES, i.tx_bytes),
            (&NET_RX_PACKETS, i.rx_packets),
            (&NET_TX_PACKETS, i.tx_packets),
            (&NET_RX_ERRS, i.rx_errs),
            (&NET_TX_ERRS, i.tx_errs),
            (&NET_RX_DROP, i.rx_drop),
            (&NET_TX_DROP, i.tx_drop),
        ] {
            out.push(Series::new(desc, label(), value as f64));
        }
        if let Some(mbit) = i.speed_mbit {
            out.push(Series::new(&NET_SPEED, label(), mbit.saturating_mul(BYTES_PER_MBIT) as f64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_interfaces_are_skipped_and_the_count_capped() {
        let mut interfaces: BTreeMap<String, Interface> = BTreeMap::new();
        interfaces.insert("lo".into(), Interface { rx_bytes: 3, ..Default::default() });
        interfaces.insert("veth12ab".into(), Interface::default());
        for i in 0..40 {
            interfaces.insert(format!("eth{i:02}"), Interface::default());
        }
        let mut out = Vec::new();
        series(&interfaces, &mut out);
        assert_eq!(out.len(), MAX_INTERFACES * 8);
        assert!(out.iter().all(|s| !s.labels[0].1.starts_with("veth")));
        let mut small = BTreeMap::new();
        small.insert("lo".to_owned(), Interface { rx_bytes: 3, tx_drop: 2, ..Default::default() });
        let mut out = Vec::new();
        series(&small, &mut out);
        assert_eq!(out[0].desc, &NET_RX_BYTES);
        assert_eq!(out[0].value, 3.0);
        assert_eq!(out[7].desc, &NET_TX_DROP);
        assert_eq!(out[7].value, 2.0);
        assert_eq!(out.len(), 8, "no speed series when the speed is unknown");
    }

    #[test]
    fn a_known_link_speed_is_exported_in_bytes_per_second() {
        let mut interfaces = BTreeMap::new();
        interfaces.insert("eth0".to_owned(), Interface { speed_mbit: Some(10_000), ..Default::default() });
        let mut out = Vec::new();
        series(&interfaces, &mut out);
        let speed = out.iter().find(|s| s.desc == &NET_SPEED).unwrap();
        assert_eq!(speed.labels, vec![("device", "eth0".to_owned())]);
        assert_eq!(speed.value, 1.25e9);
    }
}
