//! `/proc/mounts`: one line per mount, `device mountpoint fstype options
//! dump pass`, in mount order (a later mount on the same mount point hides
//! the earlier one). The kernel escapes space, tab, newline and backslash
//! in the first three fields as octal (`\040`, `\011`, `\012`, `\134`);
//! they are decoded here, as node_exporter does, so `mountpoint` labels
//! read as the paths themselves.

use super::SourceError;

pub const PATH: &str = "/proc/mounts";

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    /// The mount options (`rw`/`ro`, `relatime`, ...), in order.
    pub options: Vec<String>,
}

impl Mount {
    /// Mounted read-only (`ro` among its options).
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }
}

/// Reads and parses [`PATH`].
pub fn read() -> Result<Vec<Mount>, SourceError> {
    parse(&super::read(PATH)?)
}

/// Parses the text of `/proc/mounts`, in mount order.
pub fn parse(text: &str) -> Result<Vec<Mount>, SourceError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 4 {
            return Err(SourceError::Parse {
                path: PATH.to_owned(),
                line: index + 1,
                message: format!("{} fields, expected at least 4", fields.len()),
                text: line.to_owned(),
            });
        }
        out.push(Mount {
            device: unescape(fields[0]),
            mountpoint: unescape(fields[1]),
            fstype: unescape(fields[2]),
            options: fields[3].split(',').map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

/// Decodes the kernel's `\ooo` octal escapes (anything else stays as is).
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal.map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'))) {
            Some(code) if code <= 0xff => {
                out.push(code as u8);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on the development VM (one line, a sandbox's own tmpfs, left out).
    const VM: &str = include_str!("testdata/mounts-vm");

    #[test]
    fn parses_a_captured_file() {
        let mounts = parse(VM).unwrap();
        assert_eq!(mounts.len(), 19);
        let root = mounts.iter().find(|m| m.mountpoint == "/").unwrap();
        assert_eq!((root.device.as_str(), root.fstype.as_str()), ("/dev/vda", "ext4"));
        assert_eq!(root.options[..2], ["rw", "relatime"]);
        assert!(!root.read_only());
        assert!(mounts.iter().any(|m| m.fstype == "cgroup2" && m.mountpoint == "/sys/fs/cgroup/unified"));
    }

    #[test]
    fn read_only_mounts_and_escaped_paths() {
        // As the kernel prints them: a read-only bind mount, a mount point
        // with a space and a tab, and a device path with a backslash.
        let text = "/dev/sdb1 /srv/archive xfs ro,relatime,attr2,inode64 0 0\n\
                    /dev/sdc1 /mnt/my\\040disk\\011x ext4 rw,noatime 0 0\n\
                    //nas/share\\134x /mnt/nas cifs rw 0 0\n";
        let mounts = parse(text).unwrap();
        assert!(mounts[0].read_only());
        assert!(!mounts[1].read_only());
        assert_eq!(mounts[1].mountpoint, "/mnt/my disk\tx");
        assert_eq!(mounts[2].device, "//nas/share\\x");
        // An option merely starting with "ro" is not read-only.
        assert!(!parse("/dev/sdd /x ext4 rw,rootcontext=y 0 0").unwrap()[0].read_only());
    }

    #[test]
    fn short_lines_name_the_file_and_line() {
        let err = parse("/dev/vda / ext4 rw 0 0\n/dev/vdb /data\n").unwrap_err().to_string();
        assert!(err.starts_with("/proc/mounts line 2: 2 fields, expected at least 4"), "{err}");
    }
}
