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

/// Parses a duration written as the API documents it: a whole number (no
/// leading zero, no sign, no space) and one unit of `ms`, `s`, `m`, `h`,
/// `d`. For fields whose OpenAPI pattern says exactly that, so the
/// document and the server take the same strings.
pub fn parse_plain_duration_ms(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("is empty; expected a duration such as \"30m\" or \"2h\"".into());
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    if number.is_empty() || scale == 0 || (number.len() > 1 && number.starts_with('0')) {
        return Err(format!(
            "{s:?} is not a duration; expected a whole number and one unit of ms, s, m, h, d (\"30m\", \"2h\")"
        ));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| "is too long".into())
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
    fn plain_durations_are_one_whole_number_and_one_unit() {
        for (text, ms) in [
            ("0s", 0),
            ("1ms", 1),
            ("30m", 1_800_000),
            ("24h", 86_400_000),
            ("1d", 86_400_000),
            ("86400s", 86_400_000),
        ] {
            assert_eq!(parse_plain_duration_ms(text), Ok(ms), "{text}");
        }
        for bad in [
            "",
            "0",
            "h",
            "1 h",
            " 1h",
            "1h ",
            "1h30m",
            "01h",
            "-1h",
            "+1h",
            "1.5h",
            "1H",
            "1days",
            "99999999999999999999h",
        ] {
            assert!(parse_plain_duration_ms(bad).is_err(), "{bad:?}");
        }
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
