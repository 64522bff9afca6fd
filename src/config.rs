//! Command line and environment configuration.
//!
//! Every flag has an environment variable (clap's `env`), so `hookd --help`
//! is the complete list. Values are validated here, once, into `Config`;
//! nothing downstream re-reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::duration::parse_duration_ms;
use crate::domain::webhook::UrlPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "hookd",
    version,
    about = "Self-hosted webhook delivery service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (API and delivery workers, per --role).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Manage provisioned API keys from the command line.
    Keys {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Run a local receiver that verifies signatures and prints each delivery.
    Listen(ListenArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints the plaintext key once.
    Create {
        /// Human-readable name of the key.
        #[arg(long)]
        name: String,
        /// Tenant the key belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Permissions, comma-separated (webhooks:read, webhooks:list,
        /// webhooks:write, events:publish, deliveries:read, deliveries:write, admin).
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
    },
    /// List keys (never their plaintext).
    List {
        /// Only the keys of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        id: i64,
        /// Tenant the key belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// Where the data lives: shared by every subcommand that opens the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory for the SQLite database and generated key files.
    #[arg(
        long,
        env = "HOOKD_DATA_DIR",
        default_value = "./hookd-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); SQLite under --data-dir when absent.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Key for secrets at rest: 32 bytes, base64 or hex. Generated into
    /// <data-dir>/encryption_key when absent.
    #[arg(
        long,
        env = "HOOKD_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub encryption_key: Option<String>,
    /// SQLite durability: `full` syncs every commit to disk (survives power
    /// loss); `normal` syncs at checkpoints (survives a process crash).
    #[arg(
        long,
        env = "HOOKD_SQLITE_SYNC",
        value_enum,
        default_value = "full",
        global = true
    )]
    pub sqlite_sync: SqliteSync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    Full,
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Serve the API only; nothing is delivered.
    Api,
    /// Deliver only; the API answers health and metrics.
    Worker,
    /// Both (the default).
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }
    pub fn delivers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "HOOKD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Which jobs this instance does.
    #[arg(long, env = "HOOKD_ROLE", value_enum, default_value = "all")]
    pub role: Role,
    /// Log format.
    #[arg(long, env = "HOOKD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// One management (bootstrap) key.
    #[arg(long, env = "MANAGEMENT_API_KEY", hide_env_values = true)]
    pub management_api_key: Option<String>,
    /// Several management keys, comma-separated.
    #[arg(
        long,
        env = "MANAGEMENT_API_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub management_api_keys: Vec<String>,
    /// URL rules for webhooks: `standard` (http/https) or `strict` (https
    /// only, no IP literal, no localhost, no query or fragment).
    #[arg(long, env = "HOOKD_URL_POLICY", value_enum, default_value = "standard")]
    pub url_policy: UrlPolicy,
    /// Environments webhooks and events may name, comma-separated.
    #[arg(
        long,
        env = "HOOKD_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "production,staging,development"
    )]
    pub environments: Vec<String>,
    /// The operator tenant: hookd publishes its operational events
    /// (`hookd.webhook.*`, `hookd.delivery.exhausted`) about every other
    /// tenant's webhooks into it (SPEC §12). None when unset.
    #[arg(long, env = "HOOKD_OPERATIONAL_TENANT")]
    pub operational_tenant: Option<String>,
    /// Largest accepted request body, in bytes (413 above it).
    #[arg(long, env = "HOOKD_MAX_BODY_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Default delay before each retry, comma-separated durations.
    #[arg(
        long,
        env = "HOOKD_RETRY_SCHEDULE",
        value_delimiter = ',',
        default_value = "5s,5m,30m,2h,5h,10h,10h"
    )]
    pub retry_schedule: Vec<String>,
    /// Default attempt timeout.
    #[arg(long, env = "HOOKD_DEFAULT_TIMEOUT", default_value = "10s")]
    pub default_timeout: String,
    /// Default failed attempts before a webhook may be suspended.
    #[arg(long, env = "HOOKD_SUSPEND_MIN_FAILURES", default_value_t = 10)]
    pub suspend_min_failures: u32,
    /// Default time without success before a failing webhook is suspended.
    #[arg(long, env = "HOOKD_SUSPEND_AFTER", default_value = "5d")]
    pub suspend_after: String,
    /// Prefix of the Idempotency-Key and webhook-id headers: at most 64
    /// visible ASCII characters, not `"` or `\`.
    #[arg(long, env = "HOOKD_IDEMPOTENCY_PREFIX", default_value = "sls-webhook-")]
    pub idempotency_prefix: String,
    /// Allow deliveries to loopback, private and link-local addresses.
    #[arg(long, env = "HOOKD_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,
    /// Networks deliveries may reach despite the private-address rule (CIDR, comma-separated).
    #[arg(long, env = "HOOKD_ALLOWED_TARGET_CIDRS", value_delimiter = ',')]
    pub allowed_target_cidrs: Vec<ipnet::IpNet>,
    /// How long events, deliveries and attempts are kept.
    #[arg(long, env = "HOOKD_RETENTION", default_value = "30d")]
    pub retention: String,
    /// How often the retention purge runs.
    #[arg(long, env = "HOOKD_PURGE_INTERVAL", default_value = "1m")]
    pub purge_interval: String,
    /// Mark the admin page's session cookie `Secure` (set this when users
    /// reach hookd over HTTPS, e.g. behind a TLS-terminating proxy).
    #[arg(long, env = "HOOKD_ADMIN_SECURE_COOKIES")]
    pub admin_secure_cookies: bool,
    /// Threads of the delivery engine (the commit loop, the scheduler and
    /// every attempt). 0 (the default) picks one on up to two cores, where
    /// a second engine thread measured slower, and half the cores (at most
    /// 8) above that.
    #[arg(long, env = "HOOKD_ENGINE_THREADS", default_value_t = 0)]
    pub engine_threads: usize,
    /// Most connections open at once (API and admin page); beyond it new
    /// connections wait until one closes. Keep it below the process's
    /// file-descriptor limit (`ulimit -n`), with room for the database and
    /// outbound deliveries.
    #[arg(long, env = "HOOKD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Time a client has to send a request's headers (from its first byte,
    /// or from connecting).
    #[arg(long, env = "HOOKD_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub header_read_timeout: String,
    /// Time after which a keep-alive connection with no request closes.
    #[arg(long, env = "HOOKD_IDLE_TIMEOUT", default_value = "60s")]
    pub idle_timeout: String,
    /// Time a request may take once its headers are in: reading its body
    /// and answering it. Past it the answer is 408 and the connection
    /// closes (a body that never comes must not hold a connection).
    #[arg(long, env = "HOOKD_REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: String,
    /// The address users reach hookd at (`https://hooks.example.com`):
    /// portal links are made under it. Without it, under the `Host` the
    /// link was asked for with (http).
    #[arg(long, env = "HOOKD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Origins that may show the customer portal in a frame
    /// (`https://app.example.com`, comma-separated); none by default. The
    /// admin page may never be framed.
    #[arg(long, env = "HOOKD_PORTAL_FRAME_ANCESTORS", value_delimiter = ',')]
    pub portal_frame_ancestors: Vec<String>,
    /// The product name the customer portal shows.
    #[arg(long, env = "HOOKD_PORTAL_PRODUCT_NAME", default_value = "Webhooks")]
    pub portal_product_name: String,
    /// The customer portal's accent colour (`#rrggbb`).
    #[arg(long, env = "HOOKD_PORTAL_ACCENT_COLOR", default_value = "#3451d1")]
    pub portal_accent_color: String,
}

/// An origin a frame-ancestors list may name: `scheme://host[:port]`,
/// http or https, nothing after it.
fn parse_origin(text: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(text)
        .map_err(|e| anyhow::anyhow!("--portal-frame-ancestors: {text:?} is not an origin: {e}"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || text.trim_end_matches('/') != origin
    {
        anyhow::bail!(
            "--portal-frame-ancestors: {text:?} must be an origin such as https://app.example.com \
             (scheme, host and port only)"
        );
    }
    Ok(origin)
}

/// `#rgb` or `#rrggbb`, lowercased.
fn parse_colour(text: &str) -> anyhow::Result<String> {
    let hex = text.strip_prefix('#').unwrap_or("");
    if !matches!(hex.len(), 3 | 6) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("--portal-accent-color must be a colour such as #3451d1, not {text:?}");
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// Validated service settings derived from `ServeArgs`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url_policy: UrlPolicy,
    pub environments: Vec<String>,
    /// Where operational events go (`--operational-tenant`).
    pub operational_tenant: Option<String>,
    pub max_body_bytes: usize,
    pub default_retry_schedule_ms: Vec<u64>,
    pub default_timeout_ms: u64,
    pub suspend_min_failures: u32,
    pub suspend_after_ms: u64,
    pub idempotency_prefix: String,
    pub allow_private_targets: bool,
    pub allowed_target_cidrs: Vec<ipnet::IpNet>,
    pub retention_ms: u64,
    pub purge_interval_ms: u64,
    pub admin_secure_cookies: bool,
    pub max_connections: usize,
    /// Delivery engine threads (`--engine-threads`, 0 resolved).
    pub engine_threads: usize,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    /// Origins, as CSP writes them.
    pub portal_frame_ancestors: Vec<String>,
    pub portal_product_name: String,
    pub portal_accent_color: String,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let parse = |what: &str, v: &str| {
            parse_duration_ms(v).map_err(|e| anyhow::anyhow!("invalid {what} {v:?}: {e}"))
        };
        let default_retry_schedule_ms = args
            .retry_schedule
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| parse("--retry-schedule entry", s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let default_timeout_ms = parse("--default-timeout", &args.default_timeout)?;
        if default_timeout_ms == 0 || default_timeout_ms > 60_000 {
            anyhow::bail!("--default-timeout must be between 1ms and 60s");
        }
        let environments: Vec<String> = args
            .environments
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if environments.is_empty() {
            anyhow::bail!("--environments must name at least one environment");
        }
        if args.engine_threads > 64 {
            anyhow::bail!("--engine-threads must be at most 64 (0 picks it from the cores)");
        }
        if args.max_connections == 0 {
            anyhow::bail!("--max-connections must be at least 1");
        }
        check_idempotency_prefix(&args.idempotency_prefix)?;
        let header_read_timeout_ms = parse("--header-read-timeout", &args.header_read_timeout)?;
        let idle_timeout_ms = parse("--idle-timeout", &args.idle_timeout)?;
        let request_timeout_ms = parse("--request-timeout", &args.request_timeout)?;
        if header_read_timeout_ms == 0 || idle_timeout_ms == 0 || request_timeout_ms == 0 {
            anyhow::bail!(
                "--header-read-timeout, --idle-timeout and --request-timeout must be longer than 0"
            );
        }
        let public_url = match &args.public_url {
            None => None,
            Some(u) => {
                let parsed =
                    url::Url::parse(u).map_err(|e| anyhow::anyhow!("--public-url {u:?}: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    anyhow::bail!("--public-url must be an http or https URL, not {u:?}");
                }
                Some(u.trim_end_matches('/').to_owned())
            }
        };
        let portal_frame_ancestors = args
            .portal_frame_ancestors
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(parse_origin)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let portal_product_name = args.portal_product_name.trim().to_owned();
        if portal_product_name.is_empty()
            || portal_product_name.chars().count() > 60
            || portal_product_name.chars().any(char::is_control)
        {
            anyhow::bail!(
                "--portal-product-name must be 1 to 60 characters, no control characters"
            );
        }
        let operational_tenant = args.operational_tenant.clone();
        if let Some(t) = &operational_tenant {
            crate::domain::tenant::validate_tenant_id(t)
                .map_err(|e| anyhow::anyhow!("invalid --operational-tenant {t:?}: {e}"))?;
        }
        Ok(Self {
            public_url,
            portal_frame_ancestors,
            portal_product_name,
            portal_accent_color: parse_colour(&args.portal_accent_color)?,
            url_policy: args.url_policy,
            environments,
            operational_tenant,
            max_body_bytes: args.max_body_bytes,
            default_retry_schedule_ms,
            default_timeout_ms,
            suspend_min_failures: args.suspend_min_failures,
            suspend_after_ms: parse("--suspend-after", &args.suspend_after)?,
            idempotency_prefix: args.idempotency_prefix.clone(),
            allow_private_targets: args.allow_private_targets,
            allowed_target_cidrs: args.allowed_target_cidrs.clone(),
            retention_ms: parse("--retention", &args.retention)?,
            purge_interval_ms: parse("--purge-interval", &args.purge_interval)?.max(10),
            admin_secure_cookies: args.admin_secure_cookies,
            max_connections: args.max_connections,
            engine_threads: engine_threads(
                args.engine_threads,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            header_read_timeout_ms,
            idle_timeout_ms,
            request_timeout_ms,
        })
    }

    /// The environment used when a request names none.
    pub fn default_environment(&self) -> &str {
        if self.environments.iter().any(|e| e == "production") {
            "production"
        } else {
            &self.environments[0]
        }
    }
}

/// Arguments of `hookd listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, env = "HOOKD_LISTEN_PORT", default_value_t = 9000)]
    pub port: u16,
    /// Signing secret (whsec_…) to verify deliveries with: the webhook's
    /// own. Without it, listen makes a new one and prints the command that
    /// creates a webhook pointing here with it.
    #[arg(long, env = "HOOKD_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The hookd server the printed webhook-create command talks to.
    #[arg(
        long,
        env = "HOOKD_LISTEN_SERVER",
        default_value = "http://localhost:8080"
    )]
    pub server: String,
    /// The event types of the printed webhook-create command (comma-separated).
    #[arg(long, default_value = "license.created", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Status code to answer each delivery with.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
}

/// `--engine-threads`: as given, or for 0 one on up to two `cores`
/// (measured: a second engine thread was slower there, sharing them with
/// the HTTP runtime and the database) and half the cores, at most 8, above.
fn engine_threads(asked: usize, cores: usize) -> usize {
    match asked {
        0 if cores <= 2 => 1,
        0 => (cores / 2).min(8),
        n => n,
    }
}

/// The prefix of every delivery's `webhook-id` and `Idempotency-Key`:
/// visible ASCII a header carries and JSON holds as it is. A prefix a
/// header cannot carry would otherwise give every delivery the same
/// stand-in id, which receivers deduplicate by.
fn check_idempotency_prefix(prefix: &str) -> anyhow::Result<()> {
    const MAX: usize = 64;
    if prefix.len() > MAX {
        anyhow::bail!("--idempotency-prefix must be at most {MAX} characters");
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\\'))
    {
        anyhow::bail!(
            "--idempotency-prefix may hold visible ASCII characters other than \" and \\ only; it holds {c:?}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_idempotency_prefix, engine_threads};

    #[test]
    fn an_idempotency_prefix_is_visible_ascii_that_json_holds_as_it_is() {
        for good in ["", "sls-webhook-", "msg_", "acme.prod:"] {
            assert!(check_idempotency_prefix(good).is_ok(), "{good:?}");
        }
        for bad in [
            "with space",
            "tab\t",
            "quote\"",
            "back\\slash",
            "ünï",
            "\u{7f}",
        ] {
            let error = check_idempotency_prefix(bad).expect_err(bad).to_string();
            assert!(error.contains("--idempotency-prefix"), "{error}");
        }
        assert!(check_idempotency_prefix(&"x".repeat(65)).is_err());
    }

    #[test]
    fn engine_threads_follow_the_cores_unless_given() {
        let picked: Vec<usize> = [1, 2, 3, 4, 8, 16, 64]
            .iter()
            .map(|&cores| engine_threads(0, cores))
            .collect();
        assert_eq!(picked, [1, 1, 1, 2, 4, 8, 8]);
        assert_eq!(engine_threads(3, 2), 3, "as given, whatever the cores");
    }
}
