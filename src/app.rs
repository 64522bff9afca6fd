//! Wiring and lifecycle: opens the store, resolves keys, builds the HTTP
//! router, and runs until the shutdown token fires.
//!
//! `serve` takes an already-bound listener and a cancellation token, so a
//! test binds port 0 and runs the real server in-process or as a child.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::crypto::{Cipher, generate_api_key, write_private_file};
use crate::http::auth::Authenticator;
use crate::http::{AppState, router};
use crate::store::{SqliteStore, Store};

const KEY_FILE: &str = "management_api_key";

/// Opens the configured store, creating the data directory when needed.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let cipher = Arc::new(
        Cipher::load_or_create(args.encryption_key.as_deref(), &args.data_dir)
            .context("loading the encryption key")?,
    );
    if let Some(url) = &args.database_url {
        let scheme = url.split(':').next().unwrap_or_default();
        anyhow::bail!(
            "--database-url with scheme {scheme:?} is not supported by this build; \
             only SQLite (the default, under --data-dir) is available"
        );
    }
    let store = SqliteStore::open(&args.data_dir, cipher)
        .await
        .with_context(|| format!("opening the SQLite store in {}", args.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// The bootstrap keys: from the configuration, else from the key file,
/// else a new key generated into the key file (mode 0600). The path is
/// logged, never the key.
pub fn bootstrap_keys(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = args
        .management_api_keys
        .iter()
        .chain(args.management_api_key.iter())
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    keys.dedup();
    if !keys.is_empty() {
        return Ok(keys);
    }
    let path = args.store.data_dir.join(KEY_FILE);
    read_or_create_key_file(&path).map(|k| vec![k])
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            tracing::info!(path = %path.display(), "management key read from key file");
            Ok(s.trim().to_owned())
        }
        Ok(_) => anyhow::bail!("the key file {} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = format!("mk_{}", generate_api_key().trim_start_matches("hk_"));
            write_private_file(path, &key)
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "no MANAGEMENT_API_KEY configured: generated a management key into this file (mode 0600)"
            );
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = Arc::new(Settings::from_args(&args)?);
    let store = open_store(&args.store).await?;
    let keys = bootstrap_keys(&args)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState {
        authenticator: Arc::new(Authenticator::new(keys, store.clone())),
        store,
        settings,
        clock,
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, role = ?args.role, "hookd listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving HTTP")?;
    tracing::info!("hookd stopped");
    Ok(())
}
