//! `/proc/diskstats`: one line per block device (whole disks, partitions,
//! device-mapper `dm-N`, `loop`, `zram`, ...), named as the kernel names
//! them, which is what node_exporter reports in its `device` label.
//!
//! Layout (Documentation/admin-guide/iostats.rst): `major minor name`, then
//! at least 11 counters; kernels since 4.18 add 4 discard counters and
//! since 5.5 2 flush counters, which are not read here. The fields used:
//!
//! | field (1-based after the name) | meaning |
//! |---|---|
//! | 1 | reads completed successfully |
//! | 3 | sectors read (512 bytes each, whatever the device's sector size) |
//! | 5 | writes completed |
//! | 7 | sectors written |
//! | 10 | milliseconds spent doing I/Os |

use super::SourceError;

pub const PATH: &str = "/proc/diskstats";
/// The kernel counts diskstats sectors in 512-byte units.
pub const SECTOR_BYTES: u64 = 512;

/// One device's counters (totals since boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub device: String,
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
    pub io_time_ms: u64,
}

/// Reads and parses [`PATH`].
pub fn read() -> Result<Vec<DiskStats>, SourceError> {
    parse(&super::read(PATH)?)
}

/// Parses the text of `/proc/diskstats`, one entry per device line.
pub fn parse(text: &str) -> Result<Vec<DiskStats>, SourceError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let error = |message: String| SourceError::Parse {
            path: PATH.to_owned(),
            line: index + 1,
            message,
            text: line.to_owned(),
        };
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 14 {
            return Err(error(format!("{} fields, expected at least 14", fields.len())));
        }
        let counter = |n: usize| -> Result<u64, SourceError> {
            // Counter n (1-based) follows `major minor name`.
            let field = fields[2 + n];
            field.parse().map_err(|_| error(format!("counter {n} is not a number: {field:?}")))
        };
        out.push(DiskStats {
            device: fields[2].to_owned(),
            reads_completed: counter(1)?,
            sectors_read: counter(3)?,
            writes_completed: counter(5)?,
            sectors_written: counter(7)?,
            io_time_ms: counter(10)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on the development VM (kernel 6.18: 17 counters per line).
    const VM: &str = include_str!("testdata/diskstats-vm");
    /// Written in the layout of a server with a SATA and an NVMe disk, their
    /// partitions and LVM volumes (the VM has none of these), as an older
    /// kernel (before 4.18) prints it: 14 fields, no discard or flush counters.
    const SERVER: &str = include_str!("testdata/diskstats-server");

    #[test]
    fn parses_a_captured_file() {
        let disks = parse(VM).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["loop0", "loop1", "loop2", "loop3", "loop4", "loop5", "loop6", "loop7", "vda", "zram0"]);
        let vda = &disks[8];
        assert_eq!(
            vda,
            &DiskStats {
                device: "vda".into(),
                reads_completed: 2683601,
                sectors_read: 105121658,
                writes_completed: 890249,
                sectors_written: 851705560,
                io_time_ms: 524912,
            }
        );
    }

    #[test]
    fn parses_partitions_device_mapper_and_short_lines() {
        let disks = parse(SERVER).unwrap();
        let find = |name: &str| disks.iter().find(|d| d.device == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(find("sda1").reads_completed, 420);
        assert_eq!(find("nvme0n1").sectors_written, 9_876_543);
        assert_eq!(find("nvme0n1p2").io_time_ms, 300);
        assert_eq!(find("dm-0").io_time_ms, 61_200);
        assert_eq!(disks.len(), 10);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let err = parse("   8       0 sda 1 2 3\n").unwrap_err().to_string();
        assert!(err.starts_with("/proc/diskstats line 1: 6 fields"), "{err}");
        let err = parse(&format!("{}\n 8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n", VM.lines().next().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/proc/diskstats line 2: counter 3 is not a number: \"x\""), "{err}");
    }
}
