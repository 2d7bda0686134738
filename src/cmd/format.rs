//! How the commands write values and read them back: aligned tables, byte
//! sizes, record rates, and byte rates given on the command line. Shared by
//! several commands, so none of them imports another for it.

/// Left-aligned columns separated by two spaces.
pub(super) fn render_rows<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

pub(super) fn format_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M records/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}K records/s", rate / 1e3)
    } else {
        format!("{rate:.0} records/s")
    }
}

/// Parses a rate: `50MB/s`, `512KiB/s`, `2MB`, `1000000` (bytes/s).
pub(super) fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("invalid rate {text:?}: expected e.g. 50MB/s, 512KiB/s or 1000000"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!("invalid rate {text:?}: unknown unit {other:?} (use B, KB, MB, GB, KiB, MiB, GiB)"));
        }
    };
    let rate = (value * scale).round() as u64;
    if rate == 0 {
        return Err(format!("invalid rate {text:?}: must be positive"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_rate("50MB/s"), Ok(50_000_000));
        assert_eq!(parse_rate("512KiB/s"), Ok(512 * 1024));
        assert_eq!(parse_rate("2.5mb"), Ok(2_500_000));
        assert_eq!(parse_rate("1000000"), Ok(1_000_000));
        assert!(parse_rate("fast").unwrap_err().contains("\"fast\""));
        assert!(parse_rate("5 furlongs/s").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("0MB/s").unwrap_err().contains("positive"));
    }

    #[test]
    fn byte_sizes_and_record_rates_are_short() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(format_rate(1_620_000.0), "1.62M records/s");
        assert_eq!(format_rate(2_500.0), "2.5K records/s");
        assert_eq!(format_rate(12.0), "12 records/s");
    }

    #[test]
    fn rows_are_aligned_without_trailing_spaces() {
        let rows = [["id".to_owned(), "name".to_owned()], ["10".to_owned(), "x".to_owned()]];
        assert_eq!(render_rows(&rows), "id  name\n10  x\n");
    }
}
