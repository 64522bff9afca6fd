//! The retry policy: when the next attempt happens, if any.

/// The largest share by which a scheduled delay is moved either way.
pub const JITTER: f64 = 0.2;

/// The delay before the next attempt, given how many attempts were made
/// since the delivery was (re)queued, or `None` when the schedule is done.
///
/// `jitter` is a number in [-1, 1] (random in production); `retry_after_ms`
/// is the receiver's `Retry-After` (429/503): it may lengthen the delay, up
/// to twice the scheduled one, never shorten it (§14: a proxy answering
/// `Retry-After: 0` during an outage must not burn the schedule).
pub fn next_delay_ms(
    schedule: &[u64],
    attempts_made: u32,
    jitter: f64,
    retry_after_ms: Option<u64>,
) -> Option<u64> {
    let scheduled = *schedule.get((attempts_made as usize).checked_sub(1)?)?;
    let jittered = (scheduled as f64 * (1.0 + JITTER * jitter.clamp(-1.0, 1.0))).round() as u64;
    Some(match retry_after_ms {
        Some(ra) => jittered.max(ra.min(scheduled.saturating_mul(2))),
        None => jittered,
    })
}

/// Parses `Retry-After`: delta seconds, or an HTTP date relative to `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let at_ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    Some((at_ms - now_ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: [u64; 7] = [
        5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ];

    #[test]
    fn follows_the_schedule_then_stops() {
        assert_eq!(next_delay_ms(&DEFAULT, 1, 0.0, None), Some(5_000));
        assert_eq!(next_delay_ms(&DEFAULT, 2, 0.0, None), Some(300_000));
        assert_eq!(next_delay_ms(&DEFAULT, 7, 0.0, None), Some(36_000_000));
        assert_eq!(next_delay_ms(&DEFAULT, 8, 0.0, None), None);
        assert_eq!(
            next_delay_ms(&[], 1, 0.0, None),
            None,
            "[] means a single attempt"
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        assert_eq!(next_delay_ms(&DEFAULT, 1, 1.0, None), Some(6_000));
        assert_eq!(next_delay_ms(&DEFAULT, 1, -1.0, None), Some(4_000));
        assert_eq!(next_delay_ms(&DEFAULT, 1, 7.0, None), Some(6_000));
    }

    #[test]
    fn retry_after_lengthens_up_to_twice_the_scheduled_delay() {
        assert_eq!(next_delay_ms(&DEFAULT, 1, 0.5, Some(7_000)), Some(7_000));
        assert_eq!(next_delay_ms(&DEFAULT, 1, 0.0, Some(60_000)), Some(10_000));
        assert_eq!(next_delay_ms(&DEFAULT, 8, 0.0, Some(1_000)), None);
    }

    #[test]
    fn retry_after_never_shortens_the_scheduled_delay() {
        assert_eq!(next_delay_ms(&DEFAULT, 1, 0.0, Some(1_000)), Some(5_000));
        assert_eq!(next_delay_ms(&DEFAULT, 1, 0.0, Some(0)), Some(5_000));
        assert_eq!(next_delay_ms(&DEFAULT, 2, -1.0, Some(0)), Some(240_000));
        // Within the jittered delay: the jittered delay.
        assert_eq!(next_delay_ms(&DEFAULT, 1, 1.0, Some(5_500)), Some(6_000));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("3", 0), Some(3_000));
        let now = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(10_000)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-5", 0), None, "negative: ignored");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(0),
            "a past date is no delay"
        );
    }
}
