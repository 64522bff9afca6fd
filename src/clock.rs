//! Time enters here: everything below the HTTP handlers and the
//! dispatcher loop takes `now` as an argument.

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as i64
    }
}

/// RFC 3339 UTC with second precision, as seed 000 shows (`2026-04-21T12:00:00Z`).
pub fn format_rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 timestamp such as 2026-04-21T12:00:00Z"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(format_rfc3339(1_776_772_800_000), "2026-04-21T12:00:00Z");
        assert_eq!(format_rfc3339(1_776_772_800_999), "2026-04-21T12:00:00Z");
    }

    #[test]
    fn parses_with_offsets() {
        assert_eq!(parse_rfc3339("2026-04-21T12:00:00Z"), Ok(1_776_772_800_000));
        assert_eq!(
            parse_rfc3339("2026-04-21T14:00:00+02:00"),
            Ok(1_776_772_800_000)
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
