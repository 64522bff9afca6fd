//! Durations as the API writes them: `500ms`, `10s`, `5m`, `2h`, `5d`.

/// Parses a duration string into milliseconds. Accepts humantime's forms
/// (`1h30m`, `250ms`, `5days`) and a bare `0`.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("is empty; expected a duration such as \"500ms\" or \"10s\"".into());
    }
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let d = humantime::parse_duration(s).map_err(|_| {
        format!("{s:?} is not a duration; expected a form such as \"500ms\", \"10s\" or \"5m\"")
    })?;
    u64::try_from(d.as_millis()).map_err(|_| "is too long".into())
}

/// Formats milliseconds in the largest unit that divides them exactly.
pub fn format_duration_ms(ms: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".into();
    }
    for (size, unit) in UNITS {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    unreachable!("1 divides every number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("5d"), Ok(432_000_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        assert_eq!(parse_duration_ms("0"), Ok(0));
    }

    #[test]
    fn rejects_garbage_and_negatives() {
        assert!(parse_duration_ms("ten seconds").is_err());
        assert!(parse_duration_ms("-5s").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("10").is_err());
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(500), "500ms");
        assert_eq!(format_duration_ms(10_000), "10s");
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(432_000_000), "5d");
        assert_eq!(format_duration_ms(1_500), "1500ms");
    }
}
