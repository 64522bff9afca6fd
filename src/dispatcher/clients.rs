//! The outbound HTTP clients: one shared client for every webhook without
//! TLS options, and one per webhook with a client certificate (`mtls`) or
//! a private CA (`ca_certificate`), so that a webhook's identity and trust
//! reach its receiver alone (the public roots stay for the others).
//!
//! A client is a pool of HTTP/1 connections (`pool`, exchanges by
//! `http1`) over rustls, built
//! the same way every time: the SSRF-safe resolver, no proxy, no redirects
//! (none is followed), the same timeouts. A webhook's own client is kept while
//! its TLS options are unchanged (by fingerprint), so its pooled
//! connections survive the target cache's reloads. `send` is the one way
//! a request goes out (attempts and OAuth2 token requests) and `failure`
//! the one way its failure is named.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Uri};
use hyper_util::client::legacy::connect::HttpConnector;

use super::outbound::{AddressPolicy, BlockedError, DnsError, SafeResolver};
use super::pool::{Answer, Destination, Pool, RequestError, handshake};
use super::targets::TlsOptions;
use crate::domain::delivery::ErrorKind;
use crate::domain::receiver_auth::pem;

/// How long a connection may take to set up (DNS, TCP, TLS handshake),
/// whatever the request's own timeout (which also ends it, with the
/// request): a receiver that accepts and never finishes the handshake
/// holds no attempt longer than this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive on pooled connections, so a peer or middlebox that
/// vanished is noticed before a delivery waits out its timeout on it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The most of a response body that is read and kept.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// One outbound client (cheap to clone: its pool is shared).
pub type HttpClient = Arc<Pool>;

/// The shared client and the webhooks' own.
pub struct Clients {
    shared: HttpClient,
    addresses: AddressPolicy,
    own: Mutex<HashMap<i64, ([u8; 32], HttpClient)>>,
}

impl Clients {
    pub fn new(addresses: AddressPolicy) -> Self {
        Self {
            shared: build_client(&addresses),
            addresses,
            own: Mutex::new(HashMap::new()),
        }
    }

    /// The client of webhook `id` with `tls` (the shared one without).
    /// Fails, saying why, when its options do not make a TLS
    /// configuration (they were checked on the way in, so only a stored
    /// value gone bad does).
    pub fn client_for(&self, id: i64, tls: Option<&TlsOptions>) -> Result<HttpClient, String> {
        let Some(tls) = tls else {
            return Ok(self.shared.clone());
        };
        if let Some((fingerprint, client)) = self.own.lock().expect("clients").get(&id)
            && *fingerprint == tls.fingerprint
        {
            return Ok(client.clone());
        }
        let client = build(&self.addresses, tls_config(Some(tls))?);
        self.own
            .lock()
            .expect("clients")
            .insert(id, (tls.fingerprint, client.clone()));
        Ok(client)
    }

    /// Drops webhook `id`'s own client, if it has one (the webhook is
    /// gone): its idle connections close.
    pub fn forget(&self, id: i64) {
        self.own.lock().expect("clients").remove(&id);
    }
}

/// Builds the shared outbound HTTP client: the public roots, pooled
/// keep-alive connections, the SSRF-safe resolver.
pub fn build_client(addresses: &AddressPolicy) -> HttpClient {
    build(
        addresses,
        tls_config(None).expect("the public roots make a TLS configuration"),
    )
}

fn build(addresses: &AddressPolicy, tls: rustls::ClientConfig) -> HttpClient {
    // The process's rustls provider, for whatever builds a configuration
    // without naming one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = Arc::new(addresses.clone());
    let mut http = HttpConnector::new_with_resolver(SafeResolver {
        policy: policy.clone(),
    });
    // https too: the TLS connector wraps this one.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(TCP_KEEPALIVE));
    let connector = SafeConnect {
        inner: hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
        policy,
    };
    Pool::new(Box::new(move |uri| {
        Box::pin(handshake(connector.clone(), uri))
    }))
}

/// The connector every request goes through: an IP literal host is held
/// to the address policy here (the resolver checks names, and the
/// connector uses a literal without asking it), and the whole connect
/// (DNS, TCP, TLS) ends after `CONNECT_TIMEOUT` with a `TimedOut` I/O
/// error.
#[derive(Clone)]
pub struct SafeConnect<C> {
    inner: C,
    policy: Arc<AddressPolicy>,
}

impl<C> tower_service::Service<Uri> for SafeConnect<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = C::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<C::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Some(blocked) = forbidden_literal(&uri, &self.policy) {
            return Box::pin(async move { Err(blocked.into()) });
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                )
                .into()),
            }
        })
    }
}

/// The refusal of a URI whose host is an IP literal the policy forbids.
fn forbidden_literal(uri: &Uri, policy: &AddressPolicy) -> Option<BlockedError> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    (!policy.allows(ip)).then(|| BlockedError {
        host: host.to_owned(),
        addrs: ip.to_string(),
    })
}

/// The public roots plus the webhook's CA, and its client certificate.
fn tls_config(tls: Option<&TlsOptions>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = tls.and_then(|t| t.ca_certificate.as_ref()) {
        for cert in pem::certificates(ca).map_err(|e| format!("ca_certificate {e}"))? {
            roots
                .add(cert)
                .map_err(|e| format!("ca_certificate cannot be a trust anchor: {e}"))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    match tls.and_then(|t| t.identity.as_ref()) {
        None => Ok(builder.with_no_client_auth()),
        Some((certificate, private_key)) => {
            let (certs, key) =
                pem::identity(certificate, private_key).map_err(|e| format!("auth {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("the client certificate cannot be used: {e}"))
        }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// No answer's head within the request's timeout.
    TimedOut(Duration),
    Failed(RequestError),
}

/// POSTs `body` with `headers` to `to`; the answer's head must come
/// within `timeout` (the caller reads the body in what is left of it).
pub async fn send(
    client: &HttpClient,
    to: &Destination,
    headers: HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, SendError> {
    match tokio::time::timeout(timeout, client.post(to, headers, body)).await {
        Ok(answer) => answer.map_err(SendError::Failed),
        Err(_) => Err(SendError::TimedOut(timeout)),
    }
}

/// Reads up to `MAX_RESPONSE_BODY` bytes, within `remaining` time; says
/// why the body was cut short, if it was. An answer read to its end
/// gives its connection back to the pool; one cut short closes it.
pub async fn read_limited(mut answer: Answer, remaining: Duration) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    match tokio::time::timeout(remaining, answer.read_body(MAX_RESPONSE_BODY, &mut body)).await {
        Ok(Ok(())) => (body, None),
        Ok(Err(e)) => (body, Some(e.to_string())),
        Err(_) => (body, Some("timed out reading the body".into())),
    }
}

/// Names a failed request from its error's chain of causes: what outbound
/// safety refused, DNS, a timeout (of the request or of its connect), TLS,
/// or else a connection failure.
pub fn failure(e: &SendError) -> (ErrorKind, String) {
    let e = match e {
        SendError::TimedOut(after) => {
            return (
                ErrorKind::Timeout,
                format!("no answer within {} ms", after.as_millis()),
            );
        }
        SendError::Failed(e) => e,
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let (mut tls, mut timed_out) = (false, false);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<BlockedError>() {
            return (ErrorKind::Blocked, b.to_string());
        }
        if let Some(d) = s.downcast_ref::<DnsError>() {
            return (ErrorKind::Dns, d.to_string());
        }
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        // An I/O error's `source` skips the error it wraps: look at what
        // it wraps directly (rustls's errors come wrapped so, twice).
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(e) = io {
            timed_out |= e.kind() == std::io::ErrorKind::TimedOut;
            let inner = e.get_ref();
            tls |= inner.is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some());
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        source = s.source();
    }
    let message = error_chain(e);
    let kind = if timed_out {
        ErrorKind::Timeout
    } else if tls || message.contains("certificate") || message.to_ascii_lowercase().contains("tls")
    {
        ErrorKind::Tls
    } else {
        ErrorKind::Connect
    };
    (kind, message)
}

/// An error and its causes, each said once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector that never connects.
    struct Never;

    impl tower_service::Service<Uri> for Never {
        type Response = ();
        type Error = std::io::Error;
        type Future = std::future::Pending<Result<(), std::io::Error>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Uri) -> Self::Future {
            std::future::pending()
        }
    }

    fn policy(allow_private: bool) -> AddressPolicy {
        AddressPolicy {
            allow_private,
            allowed: Vec::new(),
        }
    }

    /// A connector that never connects, behind the address policy.
    fn never(allow_private: bool) -> SafeConnect<Never> {
        SafeConnect {
            inner: Never,
            policy: Arc::new(policy(allow_private)),
        }
    }

    #[tokio::test]
    async fn a_gone_webhooks_own_client_is_dropped() {
        let clients = Clients::new(policy(true));
        let tls = TlsOptions {
            ca_certificate: None,
            identity: None,
            fingerprint: [7; 32],
        };
        clients.client_for(1, Some(&tls)).unwrap();
        clients.client_for(2, Some(&tls)).unwrap();
        assert_eq!(clients.own.lock().unwrap().len(), 2);
        clients.forget(2);
        assert_eq!(clients.own.lock().unwrap().keys().collect::<Vec<_>>(), [&1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_that_never_ends_is_a_timeout_after_the_connect_bound() {
        use tower_service::Service;
        let mut connect = never(true);
        let started = tokio::time::Instant::now();
        let error = connect
            .call(Uri::from_static("https://hooks.example.test/"))
            .await
            .expect_err("no connection");
        assert_eq!(started.elapsed(), CONNECT_TIMEOUT);
        let (kind, message) = failure(&SendError::Failed(RequestError::Connect(error)));
        assert_eq!(kind, ErrorKind::Timeout, "{message}");
        assert!(message.contains("no connection within 10 s"), "{message}");
    }

    #[tokio::test]
    async fn an_ip_literal_the_policy_forbids_is_refused_before_connecting() {
        use tower_service::Service;
        let mut connect = never(false);
        let error = connect
            .call(Uri::from_static("http://127.0.0.1:9/"))
            .await
            .expect_err("refused");
        let (kind, message) = failure(&SendError::Failed(RequestError::Connect(error)));
        assert_eq!(kind, ErrorKind::Blocked, "{message}");
    }
}
