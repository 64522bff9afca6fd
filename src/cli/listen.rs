//! `hookd listen`: a local receiver that verifies each delivery's
//! signature and prints it, for users integrating with hookd.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

use crate::clock::{Clock, SystemClock};
use crate::config::ListenArgs;
use crate::crypto::webhook_secret_bytes;
use crate::dispatcher::signing::verify;

const TOLERANCE_S: i64 = 300;

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    webhook_secret_bytes(&args.secret).map_err(|e| anyhow::anyhow!("--secret {e}"))?;
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| anyhow::anyhow!("--status must be an HTTP status"))?;
    let secret = args.secret.clone();
    let app = Router::new().fallback(any(move |headers: HeaderMap, body: Bytes| {
        let secret = secret.clone();
        async move {
            let h = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            };
            let verdict = verify(
                &secret,
                h("webhook-id"),
                h("webhook-timestamp"),
                h("webhook-signature"),
                &body,
                SystemClock.now_ms() / 1000,
                TOLERANCE_S,
            );
            let pretty = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            match verdict {
                Ok(()) => {
                    println!(
                        "✔ {} signature verified (webhook-id {})\n{pretty}\n",
                        h("user-agent"),
                        h("webhook-id")
                    );
                    status
                }
                Err(e) => {
                    println!(
                        "✘ signature rejected: {e} (webhook-id {:?})\n{pretty}\n",
                        h("webhook-id")
                    );
                    StatusCode::UNAUTHORIZED
                }
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!(
        "listening on http://{} — verifying with the given secret",
        listener.local_addr()?
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::cancel_on_signal(shutdown.clone()));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
