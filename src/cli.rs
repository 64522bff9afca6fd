//! The subcommands: serve, migrate, keys, listen.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock, format_rfc3339};
use crate::config::{Cli, Command, KeysAction, LogFormat};
use crate::crypto::{generate_api_key, hash_api_key};
use crate::http::api_keys::validate_api_key_request;

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
                    let permissions = validate_api_key_request(&name, &tenant, &permissions)
                        .map_err(|e| {
                            let msgs: Vec<String> =
                                e.0.iter()
                                    .map(|f| format!("{}: {}", f.field, f.message))
                                    .collect();
                            anyhow::anyhow!(msgs.join("; "))
                        })?;
                    let key = generate_api_key();
                    let r = store
                        .create_api_key(&tenant, &name, &hash_api_key(&key), &permissions, now)
                        .await?;
                    println!("id:          {}", r.id);
                    println!("tenant:      {}", r.tenant_id);
                    println!("permissions: {}", perms(&r.permissions));
                    println!("key:         {key}");
                    println!("(the key is shown this once; only its hash is stored)");
                }
                KeysAction::List { tenant } => {
                    for r in store.list_api_keys(tenant.as_deref()).await? {
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
                    if !store.revoke_api_key(&tenant, id, now).await? {
                        anyhow::bail!("no live key {id} in tenant {tenant:?}");
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
