//! The subcommands: serve, migrate, keys, listen.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock, format_rfc3339};
use crate::config::{Cli, Command, KeysAction, LogFormat};
use crate::domain::api_key::Principal;
use crate::ops::OpError;
use crate::ops::api_keys::{create_api_key, list_api_keys, revoke_api_key};

pub mod listen;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            let listener = tokio::net::TcpListener::bind(args.bind)
                .await
                .with_context(|| format!("binding {}", args.bind))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            crate::app::serve(*args, listener, shutdown).await
        }
        Command::Migrate(store) => {
            init_logging(LogFormat::Text);
            crate::app::open_store(&store).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { store, action } => {
            init_logging(LogFormat::Text);
            let store = crate::app::open_store(&store).await?;
            let now = SystemClock.now_ms();
            match action {
                KeysAction::Create {
                    name,
                    tenant,
                    permissions,
                } => {
                    // Whoever holds the database is the operator: a management key.
                    let operator = Principal::Bootstrap {
                        tenant: tenant.clone(),
                    };
                    let (r, key) = create_api_key(
                        store.as_ref(),
                        &operator,
                        &tenant,
                        &name,
                        &permissions,
                        now,
                    )
                    .await?;
                    println!("id:          {}", r.id);
                    println!("tenant:      {}", r.tenant_id);
                    println!("permissions: {}", perms(&r.permissions));
                    println!("key:         {key}");
                    println!("(the key is shown this once; only its hash is stored)");
                }
                KeysAction::List { tenant } => {
                    for r in list_api_keys(store.as_ref(), tenant.as_deref()).await? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            r.id,
                            r.tenant_id,
                            r.name,
                            perms(&r.permissions),
                            format_rfc3339(r.created_at)
                        );
                    }
                }
                KeysAction::Revoke { id, tenant } => {
                    match revoke_api_key(store.as_ref(), None, &tenant, id, now).await {
                        Err(OpError::NotFound(_)) => {
                            anyhow::bail!("no live key {id} in tenant {tenant:?}")
                        }
                        other => other?,
                    }
                    println!("revoked key {id}");
                }
            }
            Ok(())
        }
        Command::Listen(args) => {
            init_logging(LogFormat::Text);
            listen::run(args).await
        }
    }
}

fn perms(p: &[crate::domain::api_key::Permission]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
