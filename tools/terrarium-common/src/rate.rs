//! Transfer rates as operators write them (`20M`, `512KiB/s`, `100Mbit`), for
//! `backup.export.bwlimit` and `terrarium-backup export --bwlimit`.
//!
//! Bytes use 1024-based units, as rsync's and syncoid's `--bwlimit` do; bits use
//! 1000-based units, as uplinks are sold. A bare number is refused: `100` could mean
//! bytes, KiB (rsync) or Mbit (a VPS plan), and a wrong guess is off by 1000.

/// A rate in bytes per second.
pub type BytesPerSecond = u64;

const BYTE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
];

/// Bits per second, as a divisor-friendly multiplier of bits.
const BIT_UNITS: &[(&str, u64)] = &[("kbit", 1_000), ("mbit", 1_000_000), ("gbit", 1_000_000_000)];

/// Parse `RATE` (`20M`, `1.5MiB/s`, `512k`, `100Mbit`, `1gbit/s`) into bytes per second.
/// The error says what is wrong and shows the accepted forms.
pub fn parse_rate(text: &str) -> Result<BytesPerSecond, String> {
    const FORMS: &str = "write it as 20M or 512K (bytes per second, 1024-based) or 100Mbit (bits per second)";
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let unit_text = lower.strip_suffix("/s").unwrap_or(&lower);
    let split = unit_text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unit_text.len());
    let (number, unit) = unit_text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{trimmed}` does not start with a number; {FORMS}"));
    }
    if unit.is_empty() {
        return Err(format!("`{trimmed}` has no unit; {FORMS}"));
    }
    let value: f64 = number.parse().map_err(|_| format!("`{number}` in `{trimmed}` is not a number; {FORMS}"))?;
    let bytes = if let Some((_, scale)) = BIT_UNITS.iter().find(|(name, _)| *name == unit) {
        value * *scale as f64 / 8.0
    } else if let Some((_, scale)) = BYTE_UNITS.iter().find(|(name, _)| *name == unit) {
        value * *scale as f64
    } else {
        return Err(format!("`{unit}` in `{trimmed}` is not a unit; {FORMS}"));
    };
    // Below 1 KiB/s an export of even a small container would take days: surely a typo.
    if bytes < 1024.0 {
        return Err(format!("`{trimmed}` is below 1 KiB/s; {FORMS}"));
    }
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("`{trimmed}` is too large; {FORMS}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_1024_based_and_bits_1000_based() {
        assert_eq!(parse_rate("20M"), Ok(20 << 20));
        assert_eq!(parse_rate("20MiB/s"), Ok(20 << 20));
        assert_eq!(parse_rate("512k"), Ok(512 << 10));
        assert_eq!(parse_rate("1.5G"), Ok(3 << 29));
        assert_eq!(parse_rate("100Mbit"), Ok(12_500_000));
        assert_eq!(parse_rate("1gbit/s"), Ok(125_000_000));
        assert_eq!(parse_rate(" 2048B "), Ok(2048));
    }

    #[test]
    fn ambiguous_or_wrong_rates_are_refused_with_the_forms() {
        for (input, says) in [
            ("100", "has no unit"),
            ("M", "does not start with a number"),
            ("10 furlongs", "is not a unit"),
            ("1.2.3M", "is not a number"),
            ("100b", "below 1 KiB/s"),
            ("0M", "below 1 KiB/s"),
            ("-5M", "does not start with a number"),
        ] {
            let err = parse_rate(input).unwrap_err();
            assert!(err.contains(says), "{input}: {err}");
            assert!(err.contains("20M or 512K"), "{input}: {err}");
        }
    }
}
