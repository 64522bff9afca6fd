//! Time enters here: everything below the HTTP handlers and the
//! dispatcher loop takes `now` as an argument. The app is built with a
//! `Clock` (`app::Parts`): the system's in production, a `ManualClock` in
//! tests of time rules, which move it instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::watch;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// A receiver that sees each jump of the clock (a `ManualClock`
    /// moved), so that loops waiting for a due time read it again at once.
    /// A real clock never jumps: `None`.
    fn jumps(&self) -> Option<watch::Receiver<()>> {
        None
    }
}

/// Waits until the clock jumps (once since the last wait on `jumps`: a jump
/// made while the caller was busy is not missed); for ever if it cannot.
pub async fn jumped(jumps: &mut Option<watch::Receiver<()>>) {
    if let Some(rx) = jumps
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
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

/// A clock that stands still until it is moved: time rules (retry
/// schedules, windows, expiries, retention) tested without waiting.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
    jumps: Arc<watch::Sender<()>>,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(now_ms)),
            jumps: Arc::new(watch::Sender::new(())),
        }
    }

    /// Moves the clock forward and wakes whoever waits on it.
    pub fn advance(&self, by: std::time::Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        self.jumps.send_replace(());
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn jumps(&self) -> Option<watch::Receiver<()>> {
        Some(self.jumps.subscribe())
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

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced_and_wakes_its_waiters() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        let mut jumps = clock.jumps();
        let waiter = tokio::spawn(async move { jumped(&mut jumps).await });
        tokio::task::yield_now().await;
        clock.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.now_ms(), 91_000);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was woken")
            .unwrap();
    }

    #[tokio::test]
    async fn a_jump_made_while_nobody_waits_is_seen_by_the_next_wait() {
        let clock = ManualClock::new(0);
        let mut jumps = clock.jumps();
        clock.advance(std::time::Duration::from_secs(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), jumped(&mut jumps))
            .await
            .expect("the earlier jump was remembered");
    }

    #[tokio::test]
    async fn a_real_clock_never_jumps() {
        let mut jumps = SystemClock.jumps();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), jumped(&mut jumps)).await;
        assert!(waited.is_err());
    }

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
