//! OAuth2 client credentials for receivers (SPEC §13): a token per
//! webhook, fetched through the webhook's own outbound client (the same
//! address policy, resolver and timeouts as deliveries), cached until
//! shortly before it expires and shared by all of the webhook's attempts.
//!
//! Invariant: at most one token request per webhook is under way. Attempts
//! that find no usable token queue on the webhook's fetch lock; the first
//! fetches, the others take its result — its token, or its failure, so a
//! failing token endpoint is asked once per wave of attempts, not once per
//! attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::clients::{HttpClient, failure, read_limited, send};
use super::pool::Destination;
use crate::domain::receiver_auth::OAuth2Config;

/// A token whose lifetime the endpoint did not state is used this long
/// (a 401 from the receiver refreshes it sooner).
const DEFAULT_LIFETIME_MS: i64 = 3_600_000;
/// A token is replaced this long before it expires, at most…
const MAX_EARLY_MS: i64 = 30_000;
/// …and at most this share of its lifetime (short-lived tokens).
const EARLY_SHARE: i64 = 10;

/// The tokens of every OAuth2 webhook this instance delivers to.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
}

struct Slot {
    /// The configuration the token was fetched with: another means a new slot.
    config: Arc<OAuth2Config>,
    state: Mutex<SlotState>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    token: Option<Token>,
    /// Bumped by every fetch, good or bad.
    generation: u64,
    /// Why the last fetch failed, if it did.
    failure: Option<String>,
}

#[derive(Clone)]
struct Token {
    header: HeaderValue,
    /// Epoch ms after which it is not used.
    refresh_at: i64,
}

/// What a token request goes through.
pub struct Fetcher<'a> {
    pub client: &'a HttpClient,
    pub timeout: Duration,
}

impl TokenCache {
    fn slot(&self, webhook_id: i64, config: &Arc<OAuth2Config>) -> Arc<Slot> {
        let mut slots = self.slots.lock().expect("token slots");
        match slots.get(&webhook_id) {
            Some(s) if *s.config == **config => s.clone(),
            _ => {
                let s = Arc::new(Slot {
                    config: config.clone(),
                    state: Mutex::new(SlotState::default()),
                    fetching: tokio::sync::Mutex::new(()),
                });
                slots.insert(webhook_id, s.clone());
                s
            }
        }
    }

    /// The `Authorization` value for webhook `webhook_id`: the cached
    /// token while it lives, else a new one. `stale` is a token the
    /// receiver refused (401): it is not handed out again.
    pub async fn bearer(
        &self,
        webhook_id: i64,
        config: &Arc<OAuth2Config>,
        stale: Option<&HeaderValue>,
        fetcher: &Fetcher<'_>,
        now: impl Fn() -> i64,
    ) -> Result<HeaderValue, String> {
        let slot = self.slot(webhook_id, config);
        let usable = |s: &SlotState, now: i64| {
            s.token
                .as_ref()
                .filter(|t| t.refresh_at > now && Some(&t.header) != stale)
                .map(|t| t.header.clone())
        };
        let seen = {
            let s = slot.state.lock().expect("token slot");
            if let Some(h) = usable(&s, now()) {
                return Ok(h);
            }
            s.generation
        };
        let _one_at_a_time = slot.fetching.lock().await;
        {
            let s = slot.state.lock().expect("token slot");
            if let Some(h) = usable(&s, now()) {
                return Ok(h);
            }
            // A fetch finished while this attempt waited: its failure is
            // this attempt's too.
            if s.generation != seen
                && let Some(why) = &s.failure
            {
                return Err(why.clone());
            }
        }
        let fetched = fetch(&slot.config, fetcher).await;
        let mut s = slot.state.lock().expect("token slot");
        s.generation += 1;
        match fetched {
            Ok((header, lifetime_ms)) => {
                let early = (lifetime_ms / EARLY_SHARE).min(MAX_EARLY_MS);
                s.token = Some(Token {
                    header: header.clone(),
                    refresh_at: now() + lifetime_ms - early,
                });
                s.failure = None;
                Ok(header)
            }
            Err(why) => {
                s.token = None;
                s.failure = Some(why.clone());
                Err(why)
            }
        }
    }
}

/// The token response (RFC 6749 §5.1).
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<f64>,
}

/// An error response (RFC 6749 §5.2): its code and description only.
#[derive(serde::Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded, then
/// used as Basic authentication's user name and password.
fn client_authentication(config: &OAuth2Config) -> Result<HeaderValue, String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            enc(&config.client_id),
            enc(&config.client_secret)
        ))
    ))
    .map_err(|_| "the client credentials do not fit a header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// Asks the token endpoint for a token: the bearer header and its
/// lifetime in ms, or why there is none (no credential ever appears in it).
async fn fetch(config: &OAuth2Config, f: &Fetcher<'_>) -> Result<(HeaderValue, i64), String> {
    let url = url::Url::parse(&config.token_url)
        .map_err(|_| "the token URL does not parse".to_string())?;
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(s) = &config.scope {
        form.push(("scope", s));
    }
    if let Some(a) = &config.audience {
        form.push(("audience", a));
    }
    let to = url
        .as_str()
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| Destination::new(&u))
        .ok_or_else(|| "the token URL is not a request URI".to_string())?;
    let body = serde_urlencoded::to_string(&form).expect("strings form-encode");
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(AUTHORIZATION, client_authentication(config)?);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(super::attempt::USER_AGENT_VALUE),
    );
    let started = std::time::Instant::now();
    let resp = match send(f.client, &to, headers, body.into(), f.timeout).await {
        Ok(r) => r,
        Err(e) => return Err(format!("token endpoint: {}", failure(&e).1)),
    };
    let status = resp.status().as_u16();
    let (bytes, _) = read_limited(resp, f.timeout.saturating_sub(started.elapsed())).await;
    if !(200..300).contains(&status) {
        let detail = serde_json::from_slice::<TokenError>(&bytes)
            .map(|e| match e.error_description {
                Some(d) => format!(": {} ({d})", e.error),
                None => format!(": {}", e.error),
            })
            .unwrap_or_default();
        return Err(format!("token endpoint answered HTTP {status}{detail}"));
    }
    let token: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
        "token endpoint: the answer is not a token response (RFC 6749 §5.1)".to_string()
    })?;
    if token
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err("token endpoint: the token is not a bearer token".into());
    }
    let mut header = HeaderValue::from_str(&format!("Bearer {}", token.access_token))
        .map_err(|_| "token endpoint: the access token is not a valid header value".to_string())?;
    header.set_sensitive(true);
    let lifetime_ms = token
        .expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_LIFETIME_MS, |s| {
            (s * 1000.0).min(i64::MAX as f64 / 2.0) as i64
        });
    Ok((header, lifetime_ms))
}
