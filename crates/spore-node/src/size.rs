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

/// A byte size the way [`parse_size`] reads it: the largest binary unit that divides it
/// (`64MiB`, `1536KiB`, `100`).
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Checks a call's memory cap against the most the runtime gives any call
/// ([`spore_runtime::MAX_MEMORY_BYTES`]), for the configuration and the command line.
pub fn check_memory(bytes: u64) -> Result<(), String> {
    let max = spore_runtime::MAX_MEMORY_BYTES;
    if bytes > max {
        return Err(format!(
            "{} is over the most memory a call may have, {}",
            format_size(bytes),
            format_size(max)
        ));
    }
    if bytes < spore_runtime::WASM_PAGE_BYTES {
        return Err(format!(
            "{} is less than one WebAssembly page ({} bytes)",
            format_size(bytes),
            spore_runtime::WASM_PAGE_BYTES
        ));
    }
    Ok(())
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

    #[test]
    fn sizes_print_as_they_parse() {
        for bytes in [0, 100, 1024, 1536 << 10, 64 << 20, 1 << 30, (1 << 30) + 1] {
            assert_eq!(parse_size(&format_size(bytes)), Some(bytes), "{bytes}");
        }
        assert_eq!(format_size(64 << 20), "64MiB");
    }

    #[test]
    fn a_memory_cap_is_at_most_the_runtime_maximum_and_at_least_a_page() {
        assert!(check_memory(64 << 20).is_ok());
        assert!(check_memory(spore_runtime::MAX_MEMORY_BYTES).is_ok());
        let over = check_memory(5 << 30).unwrap_err();
        assert!(over.contains("5GiB") && over.contains("1GiB"), "{over}");
        assert!(check_memory(100).is_err());
    }
}
