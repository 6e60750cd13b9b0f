//! Number arguments: decimal or `0x` hexadecimal, and comma-separated bit lists.

/// Parses `text` as decimal or `0x`-prefixed hexadecimal.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.map_err(|e| format!("invalid number {text:?}: {e}"))
}

/// Parses a number that must fit `u32`.
pub fn parse_u32(text: &str) -> Result<u32, String> {
    let value = parse_u64(text)?;
    u32::try_from(value).map_err(|_| format!("{text} does not fit 32 bits"))
}

/// Parses a number that must fit `u8`.
pub fn parse_u8(text: &str) -> Result<u8, String> {
    let value = parse_u64(text)?;
    u8::try_from(value).map_err(|_| format!("{text} does not fit 8 bits"))
}

/// Parses a comma-separated list of bit numbers (0–63) into a mask; empty means none.
pub fn parse_bits(text: &str) -> Result<u64, String> {
    let mut mask = 0u64;
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bit: u32 = item.parse().map_err(|_| format!("invalid bit number {item:?}"))?;
        if bit > 63 {
            return Err(format!("bit {bit} is beyond 63"));
        }
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// The bit numbers set in `mask`, ascending.
pub fn bit_numbers(mask: u64) -> Vec<u32> {
    (0..64).filter(|b| mask & (1 << b) != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_bits() {
        assert_eq!(parse_u64("0x3F8"), Ok(0x3F8));
        assert_eq!(parse_u64("1016"), Ok(1016));
        assert_eq!(parse_u64("0x0000_1000"), Ok(0x1000));
        assert!(parse_u64("0xZZ").is_err());
        assert!(parse_u64("").is_err());
        assert!(parse_u32("0x1_0000_0000").is_err());
        assert_eq!(parse_bits("7, 24"), Ok((1 << 7) | (1 << 24)));
        assert_eq!(parse_bits(""), Ok(0));
        assert!(parse_bits("64").is_err());
        assert!(parse_bits("x").is_err());
        assert_eq!(bit_numbers(0x81), vec![0, 7]);
    }
}
