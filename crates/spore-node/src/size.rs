/// Parses a byte size as people write it: `123`, `64KiB`, `64MiB`, `1GiB`, or the
/// decimal `KB`, `MB`, `GB`. Used by the configuration file and the command line.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2KB"), Some(2000));
        assert_eq!(parse_size("64 moons"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("99999999999999GiB"), None);
    }
}
