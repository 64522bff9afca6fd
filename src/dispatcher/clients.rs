//! The outbound HTTP clients: one shared client for every webhook without
//! TLS options, and one per webhook with a client certificate (`mtls`) or
//! a private CA (`ca_certificate`), so that a webhook's identity and trust
//! reach its receiver alone (the public roots stay for the others).
//!
//! Every client is built the same way (no redirects, no proxy, the
//! SSRF-safe resolver, the same timeouts); a webhook's own client is kept
//! while its TLS options are unchanged (by fingerprint), so its pooled
//! connections survive the target cache's reloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::attempt::USER_AGENT_VALUE;
use super::outbound::{AddressPolicy, SafeResolver};
use super::targets::TlsOptions;
use crate::domain::receiver_auth::pem;

/// Idle connections kept per host (the in-flight bound).
const MAX_IDLE_PER_HOST: usize = 512;

/// The shared client and the webhooks' own.
pub struct Clients {
    shared: reqwest::Client,
    addresses: AddressPolicy,
    own: Mutex<HashMap<i64, ([u8; 32], reqwest::Client)>>,
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
    pub fn client_for(&self, id: i64, tls: Option<&TlsOptions>) -> Result<reqwest::Client, String> {
        let Some(tls) = tls else {
            return Ok(self.shared.clone());
        };
        if let Some((fingerprint, client)) = self.own.lock().expect("clients").get(&id)
            && *fingerprint == tls.fingerprint
        {
            return Ok(client.clone());
        }
        let config = tls_config(tls)?;
        let client = builder(&self.addresses)
            .use_preconfigured_tls(config)
            .build()
            .map_err(|e| format!("the webhook's TLS client could not be built: {e}"))?;
        self.own
            .lock()
            .expect("clients")
            .insert(id, (tls.fingerprint, client.clone()));
        Ok(client)
    }
}

fn builder(addresses: &AddressPolicy) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(SafeResolver {
            policy: Arc::new(addresses.clone()),
        }))
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(USER_AGENT_VALUE)
}

/// Builds the shared outbound HTTP client: no redirects, no proxy, pooled
/// keep-alive connections, the SSRF-safe resolver.
pub fn build_client(addresses: &AddressPolicy) -> reqwest::Client {
    builder(addresses)
        .build()
        .expect("the HTTP client configuration is valid")
}

/// The public roots plus the webhook's CA, and its client certificate.
fn tls_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = &tls.ca_certificate {
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
    match &tls.identity {
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
