//! `/sys/class/net/IF/speed`: a network interface's link speed in Mb/s.
//!
//! The kernel prints `-1` when the driver does not know it (virtio NICs,
//! a link that is down), and reading fails (`EINVAL`) for interfaces
//! without a link speed at all (`lo`, tunnels, bridges). node_exporter
//! exports no `node_network_speed_bytes` series for those: neither does
//! the agent ([`read`] gives `None`).

use super::SourceError;

/// Bits per second in a Mb/s, over 8: node_exporter's Mb/s → bytes/s.
pub const BYTES_PER_MBIT: u64 = 125_000;

/// The speed file of `interface`.
pub fn path(interface: &str) -> String {
    format!("/sys/class/net/{interface}/speed")
}

/// The link speed of `interface` in Mb/s; `None` when unknown or when the
/// interface has none (the file cannot be read, or reads `-1`).
pub fn read(interface: &str) -> Result<Option<u64>, SourceError> {
    if interface.contains('/') {
        return Ok(None);
    }
    let path = path(interface);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path),
        Err(_) => Ok(None),
    }
}

/// Parses a speed file's text (`path` names it in errors): Mb/s, or `None`
/// for an unknown (negative) speed.
pub fn parse(text: &str, path: &str) -> Result<Option<u64>, SourceError> {
    let value = text.trim();
    let speed: i64 = value.parse().map_err(|_| SourceError::Parse {
        path: path.to_owned(),
        line: 1,
        message: "not a speed in Mb/s".into(),
        text: value.to_owned(),
    })?;
    Ok(u64::try_from(speed).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// eth0 of the development VM (virtio: speed unknown).
    const VM_ETH0: &str = include_str!("testdata/speed-eth0-vm");

    #[test]
    fn unknown_speed_gives_none_and_known_speeds_parse() {
        let path = path("eth0");
        assert_eq!(parse(VM_ETH0, &path).unwrap(), None);
        assert_eq!(parse("10000\n", &path).unwrap(), Some(10_000));
        assert_eq!(parse("10000\n", &path).unwrap().map(|mbit| mbit * BYTES_PER_MBIT), Some(1_250_000_000));
    }

    #[test]
    fn garbage_names_the_file() {
        let err = parse("fast\n", "/sys/class/net/eth9/speed").unwrap_err().to_string();
        assert_eq!(err, "/sys/class/net/eth9/speed line 1: not a speed in Mb/s: \"fast\"");
    }

    #[test]
    fn interfaces_without_a_speed_file_give_none() {
        assert_eq!(read("no-such-interface-kmon").unwrap(), None);
        assert_eq!(read("../../etc").unwrap(), None);
    }
}
