//! The budget of failed authentications per client (SPEC §14): API keys on
//! `/management/*` and `/v1/*`, and sign-in on the admin page.
//!
//! Each client (the connection's peer address; IPv6 by /64, which one
//! subscriber usually holds whole) has a token bucket of failures: a burst
//! of `BURST` wrong keys, refilled one per `REFILL_MS`. Once it is empty,
//! a key from that client is refused (429, with the wait until the next
//! token) without being checked: guessing stops, and costs no database
//! read. Exceptions, so that a flood of bad keys does not lock out valid
//! callers: other clients have budgets of their own, and a key that has
//! authenticated from this client (before or during its failures) keeps
//! passing: a broken neighbour behind the same address does not stop a
//! working publisher, and an attacker learns nothing new from it (a key
//! never seen from the address is refused unchecked, right or wrong).
//!
//! `X-Forwarded-For` is not read: anyone can send it. Behind a proxy every
//! client shares the proxy's budget.
//!
//! Invariants: memory is bounded (`MAX_CLIENTS` buckets, the clients whose
//! budget is whole again going first, then those closest to it; and
//! `MAX_CLIENTS` clients' `KNOWN_KEYS` seen keys); a valid request takes a
//! read lock (a write the first time its key is seen from its client);
//! time is an input (`now`, epoch ms).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

/// Failures a client may make in a row before it is refused.
pub const BURST: i64 = 10;
/// One more failure is allowed per this many milliseconds.
pub const REFILL_MS: i64 = 6_000;
/// Clients tracked at once.
const MAX_CLIENTS: usize = 10_000;
/// Keys remembered per client as having authenticated from it.
const KNOWN_KEYS: usize = 8;

/// Who a budget belongs to: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(IpAddr);

impl ClientId {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// The client of a request: its connection's peer, which the listener
    /// records (`None` when the request came another way, as in a test
    /// calling the router directly).
    pub fn of_request(extensions: &axum::http::Extensions) -> Option<Self> {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| Self::of(info.0.ip()))
    }
}

/// The client of a request, as a handler argument.
pub struct Client(pub Option<ClientId>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(ClientId::of_request(&parts.extensions)))
    }
}

/// A refused attempt: the client may try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_s: u64,
}

struct Bucket {
    /// When the budget is whole again: each failure adds `REFILL_MS` to
    /// `max(full_at, now)` (a token bucket kept as one instant).
    full_at: i64,
}

impl Bucket {
    /// The wait until a failure is allowed again, if the budget is spent.
    fn wait_ms(&self, now: i64) -> Option<i64> {
        let owed = self.full_at - now;
        let allowed = (BURST - 1) * REFILL_MS;
        (owed > allowed).then_some(owed - allowed)
    }
}

/// Every client's budget of failures.
#[derive(Default)]
pub struct FailureBudget {
    clients: Mutex<HashMap<ClientId, Bucket>>,
    /// The number of buckets, read without the lock.
    tracked: AtomicUsize,
    /// SHA-256 hashes of the keys that authenticated from each client.
    seen: RwLock<HashMap<ClientId, Vec<Vec<u8>>>>,
}

impl FailureBudget {
    /// Whether a key with this hash may be checked for `client` now.
    pub fn admit(
        &self,
        client: Option<ClientId>,
        key_hash: &[u8],
        now: i64,
    ) -> Result<(), Throttled> {
        let Some(client) = client else { return Ok(()) };
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let mut clients = self.clients.lock().expect("budget lock");
        let Some(bucket) = clients.get(&client) else {
            return Ok(());
        };
        if bucket.full_at <= now {
            // Whole again: nothing left to remember about this client.
            clients.remove(&client);
            self.tracked.store(clients.len(), Ordering::Relaxed);
            return Ok(());
        }
        match bucket.wait_ms(now) {
            Some(wait) if !self.has_seen(client, key_hash) => Err(Throttled {
                retry_after_s: (wait as u64).div_ceil(1000),
            }),
            _ => Ok(()),
        }
    }

    /// Spends one failure of `client`'s budget.
    pub fn failed(&self, client: Option<ClientId>, now: i64) {
        let Some(client) = client else { return };
        let mut clients = self.clients.lock().expect("budget lock");
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            make_room(&mut clients, now);
        }
        let bucket = clients.entry(client).or_insert(Bucket { full_at: now });
        bucket.full_at = bucket.full_at.max(now) + REFILL_MS;
        self.tracked.store(clients.len(), Ordering::Relaxed);
    }

    /// Remembers that this key authenticated from `client`.
    pub fn succeeded(&self, client: Option<ClientId>, key_hash: &[u8]) {
        let Some(client) = client else { return };
        if self.has_seen(client, key_hash) {
            return;
        }
        let mut seen = self.seen.write().expect("seen keys lock");
        if !seen.contains_key(&client)
            && seen.len() >= MAX_CLIENTS
            && let Some(any) = seen.keys().next().copied()
        {
            seen.remove(&any);
        }
        let keys = seen.entry(client).or_default();
        if !keys.iter().any(|k| k == key_hash) {
            if keys.len() >= KNOWN_KEYS {
                keys.remove(0);
            }
            keys.push(key_hash.to_vec());
        }
    }

    fn has_seen(&self, client: ClientId, key_hash: &[u8]) -> bool {
        self.seen
            .read()
            .expect("seen keys lock")
            .get(&client)
            .is_some_and(|keys| keys.iter().any(|k| k == key_hash))
    }
}

/// Drops the clients whose budget is whole again; if none is, the one
/// closest to it.
fn make_room(clients: &mut HashMap<ClientId, Bucket>, now: i64) {
    clients.retain(|_, b| b.full_at > now);
    if clients.len() >= MAX_CLIENTS
        && let Some(oldest) = clients
            .iter()
            .min_by_key(|(_, b)| b.full_at)
            .map(|(c, _)| *c)
    {
        clients.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(last: u8) -> Option<ClientId> {
        Some(ClientId::of(IpAddr::from([192, 0, 2, last])))
    }

    #[test]
    fn a_burst_of_failures_is_allowed_then_refused_until_a_token_refills() {
        let budget = FailureBudget::default();
        let now = 1_000_000;
        for _ in 0..BURST {
            assert_eq!(budget.admit(client(1), b"bad", now), Ok(()));
            budget.failed(client(1), now);
        }
        assert_eq!(
            budget.admit(client(1), b"bad", now),
            Err(Throttled { retry_after_s: 6 })
        );
        assert_eq!(
            budget.admit(client(1), b"bad", now + 2_000),
            Err(Throttled { retry_after_s: 4 })
        );
        // One token back: one more failure, then refused again.
        let later = now + REFILL_MS;
        assert_eq!(budget.admit(client(1), b"bad", later), Ok(()));
        budget.failed(client(1), later);
        assert!(budget.admit(client(1), b"bad", later).is_err());
        // Another client is not affected.
        assert_eq!(budget.admit(client(2), b"bad", later), Ok(()));
        // Whole again after BURST refills: forgotten.
        let whole = later + BURST * REFILL_MS;
        assert_eq!(budget.admit(client(1), b"bad", whole), Ok(()));
        assert_eq!(budget.tracked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_key_that_authenticated_from_the_client_still_passes_while_it_is_throttled() {
        let budget = FailureBudget::default();
        let now = 0;
        budget.failed(client(1), now);
        budget.succeeded(client(1), b"good");
        for _ in 1..BURST {
            budget.failed(client(1), now);
        }
        assert_eq!(budget.admit(client(1), b"good", now), Ok(()));
        assert!(budget.admit(client(1), b"other-valid-key", now).is_err());
    }

    #[test]
    fn a_key_used_before_the_failures_began_still_passes() {
        let budget = FailureBudget::default();
        budget.succeeded(client(1), b"good");
        for _ in 0..BURST {
            budget.failed(client(1), 0);
        }
        assert_eq!(budget.admit(client(1), b"good", 0), Ok(()));
        assert!(budget.admit(client(1), b"never-seen", 0).is_err());
        assert!(budget.admit(client(2), b"never-seen", 0).is_ok());
    }

    #[test]
    fn clients_without_failures_have_no_budget_on_record() {
        let budget = FailureBudget::default();
        budget.succeeded(client(1), b"good");
        assert_eq!(budget.tracked.load(Ordering::Relaxed), 0);
        assert_eq!(budget.admit(None, b"x", 0), Ok(()));
        budget.failed(None, 0);
        assert_eq!(budget.tracked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_number_of_tracked_clients_is_bounded() {
        let budget = FailureBudget::default();
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            let addr = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            budget.failed(Some(ClientId::of(addr)), 0);
        }
        assert_eq!(budget.clients.lock().unwrap().len(), MAX_CLIENTS);
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            let addr = IpAddr::from((0x0b00_0000u32 + i).to_be_bytes());
            budget.succeeded(Some(ClientId::of(addr)), b"key");
        }
        assert_eq!(budget.seen.read().unwrap().len(), MAX_CLIENTS);
    }

    #[test]
    fn an_ipv6_client_is_its_64_prefix_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientId::of(a), ClientId::of(b));
        assert_ne!(ClientId::of(a), ClientId::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            ClientId::of(mapped),
            ClientId::of(IpAddr::from([192, 0, 2, 7]))
        );
    }
}
