//! An OAuth2 authorization server in front of a receiver, on loopback:
//! `POST /token` issues bearer tokens for client credentials (counting
//! requests, able to fail on cue, tokens revocable at once), and every
//! other path is a receiver that accepts only a live token (401 otherwise).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One token request as the server read it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The client id and secret of its Basic authentication (form-decoded).
    pub client: Option<(String, String)>,
    pub form: HashMap<String, String>,
}

/// One request to the protected receiver.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub authorization: Option<String>,
    pub status: u16,
}

struct State {
    client_id: String,
    client_secret: String,
    expires_in: Option<u64>,
    issued: u64,
    token_requests: Vec<TokenRequest>,
    live: HashSet<String>,
    /// Statuses to answer the next token requests with instead of a token.
    failures: VecDeque<u16>,
    hooks: Vec<HookRequest>,
}

#[derive(Clone)]
pub struct OAuthServer {
    /// `http://IP:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl OAuthServer {
    /// Listens on `ip` (127.0.0.1, or another loopback address to test
    /// the address policy); tokens live `expires_in` seconds (`None`:
    /// the answer does not say).
    pub async fn start_on(
        ip: &str,
        client_id: &str,
        client_secret: &str,
        expires_in: Option<u64>,
    ) -> Self {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in,
            issued: 0,
            token_requests: Vec::new(),
            live: HashSet::new(),
            failures: VecDeque::new(),
            hooks: Vec::new(),
        }));
        let st = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let st = st.clone();
            async move { handle(&st, uri, &headers, &body) }
        });
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state }
    }

    pub async fn start(client_id: &str, client_secret: &str, expires_in: Option<u64>) -> Self {
        Self::start_on("127.0.0.1", client_id, client_secret, expires_in).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().token_requests.clone()
    }

    pub fn hooks(&self) -> Vec<HookRequest> {
        self.state.lock().unwrap().hooks.clone()
    }

    /// Requests the receiver accepted.
    pub fn accepted(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .hooks
            .iter()
            .filter(|h| h.status == 200)
            .count()
    }

    /// Every token issued so far stops working (the receiver answers 401).
    pub fn revoke_all(&self) {
        self.state.lock().unwrap().live.clear();
    }

    /// The next token requests are answered with these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .failures
            .extend(statuses.iter().copied());
    }
}

fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let raw = STANDARD.decode(v.strip_prefix("Basic ")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

fn json(status: u16, body: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn handle(state: &Mutex<State>, uri: Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut s = state.lock().unwrap();
    if uri.path() == "/token" {
        let request = TokenRequest {
            client: basic_client(headers),
            form: url::form_urlencoded::parse(body).into_owned().collect(),
        };
        s.token_requests.push(request.clone());
        if let Some(status) = s.failures.pop_front() {
            return json(
                status,
                serde_json::json!({"error": "temporarily_unavailable", "error_description": "scripted failure"}),
            );
        }
        if request.client != Some((s.client_id.clone(), s.client_secret.clone())) {
            return json(401, serde_json::json!({"error": "invalid_client"}));
        }
        if request.form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return json(400, serde_json::json!({"error": "unsupported_grant_type"}));
        }
        s.issued += 1;
        let token = format!("tok-{}-{:016x}", s.issued, rand::random::<u64>());
        s.live.insert(token.clone());
        let mut answer = serde_json::json!({"access_token": token, "token_type": "Bearer"});
        if let Some(e) = s.expires_in {
            answer["expires_in"] = e.into();
        }
        return json(200, answer);
    }
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ok = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| s.live.contains(t));
    let status = if ok { 200 } else { 401 };
    s.hooks.push(HookRequest {
        authorization,
        status,
    });
    StatusCode::from_u16(status).unwrap().into_response()
}
