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
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| anyhow::anyhow!("--status must be an HTTP status"))?;
    let (secret, made_here) = match &args.secret {
        Some(s) => {
            webhook_secret_bytes(s).map_err(|e| anyhow::anyhow!("--secret {e}"))?;
            (s.clone(), false)
        }
        None => (crate::crypto::generate_webhook_secret(), true),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let here = format!("http://{}/", listener.local_addr()?);
    if made_here {
        println!("{}", create_command(&args, &here, &secret));
    } else {
        println!(
            "listening on {here} — verifying with the given secret (it must be the secret of the webhook whose URL is {here})"
        );
    }
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
                        "✘ signature rejected: {e} (webhook-id {:?})\n  \
                         Is this the webhook listen was started for? Each webhook signs with its own secret: \
                         read it with GET /management/webhooks/{{id}}/secret and pass it as --secret.\n{pretty}\n",
                        h("webhook-id")
                    );
                    StatusCode::UNAUTHORIZED
                }
            }
        }
    }));
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::cancel_on_signal(shutdown.clone()));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// What to run so that a webhook delivers here, signed with `secret`.
fn create_command(args: &ListenArgs, here: &str, secret: &str) -> String {
    let body = serde_json::json!({
        "name": format!("listen-{}", args.port),
        "url": here,
        "events": args.events,
        "secret": secret,
    });
    format!(
        "listening on {here} — verifying with a new secret made for this run.\n\
         \n\
         Create a webhook that delivers here, signed with that secret (KEY is a management key,\n\
         e.g. KEY=$(cat hookd-data/management_api_key)):\n\
         \n\
         \x20 curl -sS {server}/management/webhooks -H \"Authorization: Bearer $KEY\" \\\n\
         \x20   -H \"Content-Type: application/json\" -d '{body}'\n\
         \n\
         The server must allow deliveries to this machine: start it with --allow-private-targets\n\
         (or --allowed-target-cidrs 127.0.0.0/8); otherwise each attempt is refused, and its log says so.\n\
         Then publish one of those events; each delivery is printed here.\n",
        server = args.server.trim_end_matches('/'),
    )
}
