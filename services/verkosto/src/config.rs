//! Command-line and environment settings. Every flag has a `VERKOSTO_*` twin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "verkosto",
    version,
    about = "Multi-agency case conferences for victims of human trafficking"
)]
pub struct Cli {
    /// What to run: the service, or one of the operator's tools.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run Verkosto: every service in one process (the default), or one target.
    Serve(Box<ServeArgs>),
    /// Auditor tools that read the log directly.
    Audit {
        /// Where the log is.
        #[command(flatten)]
        store: StoreArgs,
        /// Which check to run.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Consent and case events a process could not read (each makes its
    /// case withhold everything), and the operator's logged way past one.
    Guard {
        /// Where the log is.
        #[command(flatten)]
        store: StoreArgs,
        /// What to do about them.
        #[command(subcommand)]
        command: GuardCommand,
    },
    /// Administration of a real deployment: its first agency and admin.
    Admin {
        /// Where the log is.
        #[command(flatten)]
        store: StoreArgs,
        /// What to set up.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Drop read models and rebuild them by replaying the log (stop the
    /// targets that run them first). Names: directory, cases, meetings,
    /// tasks, guard-<target>; `all` for every one.
    Rebuild {
        /// Where the log is.
        #[command(flatten)]
        store: StoreArgs,
        /// The read models to rebuild, by the names above.
        #[arg(required = true)]
        projections: Vec<String>,
    },
    /// The keys that seal client data: `rotate` the key-encryption key.
    Keys {
        /// Where the log and the keys are.
        #[command(flatten)]
        store: StoreArgs,
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the embedded log and key store, apart, into a new folder (the
    /// key-encryption key is never copied). Online: no need to stop.
    Backup {
        /// Where the log is.
        #[command(flatten)]
        store: StoreArgs,
        /// The new folder for the copy.
        dir: PathBuf,
    },
    /// Put a backup in place as the embedded store of an empty data
    /// directory (refused when its key store does not open with this
    /// deployment's key-encryption key).
    Restore {
        /// Where the log is to go.
        #[command(flatten)]
        store: StoreArgs,
        /// The folder `verkosto backup` made.
        dir: PathBuf,
    },
    /// Generate the wire contract in `proto/` (JSON Schemas and AsyncAPI).
    Proto {
        /// Write the files (default: check that they are up to date).
        #[arg(long)]
        write: bool,
        /// Directory to write to or check.
        #[arg(long, default_value = "proto")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Re-wrap every data key under a new key-encryption key and delete
    /// the old one, so that key-store backups made before open nothing
    /// (stop every process of the deployment first).
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the integrity chain of the whole log.
    Verify,
    /// Print a case's consent matrix at a moment, and the changes that led to it.
    Replay {
        /// The case id.
        #[arg(long = "case")]
        case_id: String,
        /// The moment (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// First run: register the first agency and its admin, the user whose
    /// tokens from your identity provider carry `--admin-subject` as `sub`,
    /// and print the claims the provider must put into them. No dev token
    /// is needed, ever. Running it again changes nothing.
    Bootstrap(Box<BootstrapArgs>),
}

/// `verkosto admin bootstrap`. Values are checked by the command (one line
/// naming the flag), not by clap.
#[derive(Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// The agency's id (a-z, 0-9, '-'), e.g. `assistance-system`: the
    /// `agency` claim of its users' tokens.
    #[arg(long)]
    pub agency_id: String,
    /// police, social_services, health_care, ngo, immigration,
    /// assistance_system, child_welfare, legal_counsel or other.
    #[arg(long)]
    pub agency_kind: String,
    /// The agency's name, in Finnish, Swedish and English unless
    /// `--agency-name-fi`, `-sv` or `-en` give another.
    #[arg(long)]
    pub agency_name: String,
    /// The agency's name in Finnish.
    #[arg(long)]
    pub agency_name_fi: Option<String>,
    /// The agency's name in Swedish.
    #[arg(long)]
    pub agency_name_sv: Option<String>,
    /// The agency's name in English.
    #[arg(long)]
    pub agency_name_en: Option<String>,
    /// The admin's subject at the identity provider: the `sub` of their
    /// tokens (in Keycloak, the user's ID).
    #[arg(long)]
    pub admin_subject: String,
    /// The admin's name as the directory shows it.
    #[arg(long)]
    pub admin_name: String,
    /// Add this admin though the directory has one already (a second
    /// admin, or one to replace an admin whose account is gone).
    #[arg(long)]
    pub another_admin: bool,
    /// Who runs this (kept in the log); default $USER.
    #[arg(long, env = "USER")]
    pub operator: String,
    /// The provider's issuer, as `serve --jwt-issuer` (for the printed
    /// claims only).
    #[arg(long, env = "VERKOSTO_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience, as `serve --jwt-audience` (for the printed claims only).
    #[arg(long, env = "VERKOSTO_JWT_AUDIENCE", default_value = "verkosto")]
    pub jwt_audience: String,
}

#[derive(Subcommand, Debug)]
pub enum GuardCommand {
    /// List the events some process could not read, by case.
    Unreadable,
    /// Let reads of the event's case go on without it. Appends an event to
    /// the log saying who decided this and why; every process then drops
    /// its mark. Prefer upgrading the process that cannot read it.
    Resolve {
        /// The unreadable event's id.
        #[arg(long)]
        event: String,
        /// Why reads may go on without it (kept in the log).
        #[arg(long)]
        reason: String,
        /// Who decides (kept in the log); default $USER.
        #[arg(long, env = "USER")]
        operator: String,
    },
}

/// Where the log is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded store (SQLite file `verkosto.db`).
    #[arg(
        long,
        global = true,
        env = "VERKOSTO_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL; when given, the distributed mode is used. It may
    /// hold a password: never shown in `--help`; prefer `--database-url-file`.
    #[arg(
        long,
        global = true,
        env = "VERKOSTO_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A file holding the PostgreSQL URL (a mounted secret).
    #[arg(
        long,
        global = true,
        env = "VERKOSTO_DATABASE_URL_FILE",
        conflicts_with = "database_url"
    )]
    pub database_url_file: Option<PathBuf>,
    /// The key-encryption key's file, which wraps every case's data key
    /// (`verkosto-kek-v1:<hex>`; `verkosto keys rotate` replaces it). Keep it
    /// apart from backups of the data. Embedded default: `<data-dir>/kek`,
    /// made on first start; required with `--database-url`.
    #[arg(long, global = true, env = "VERKOSTO_KEY_FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// The key-encryption key itself (`verkosto-kek-v1:<hex>`), from a
    /// secret store's environment; prefer `--key-file`.
    #[arg(long, global = true, env = "VERKOSTO_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Where the data keys are: a SQLite URL, or a PostgreSQL URL (schema
    /// `verkosto_keys`). Default: `<data-dir>/keys.db` embedded, the
    /// `--database-url` database distributed.
    #[arg(long, global = true, env = "VERKOSTO_KEYS_URL", hide_env_values = true)]
    pub keys_url: Option<String>,
}

/// A secret from the file a `*_FILE` flag names: its content, trimmed.
/// A period as `<n>s`, `<n>m`, `<n>h` or `<n>d`.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let unit = |u: &str| match u {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    };
    let split = text.char_indices().last().map_or(0, |(i, _)| i);
    let (n, u) = text.split_at(split);
    match (n.parse::<u64>(), unit(u)) {
        (Ok(n), Some(seconds)) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(seconds))),
        _ => Err(format!(
            "`{text}` is not a period like 30d, 12h, 90m or 45s"
        )),
    }
}

fn read_secret(flag: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{flag}: cannot read {}: {e}", path.display()))?;
    let secret = text.trim().to_string();
    anyhow::ensure!(!secret.is_empty(), "{flag}: {} is empty", path.display());
    Ok(secret)
}

impl Command {
    /// Reads the secrets that `*_FILE` flags name into their flags.
    pub fn load_secret_files(&mut self) -> anyhow::Result<()> {
        let store = match self {
            Command::Serve(args) => {
                if let Some(path) = args.oidc_client_secret_file.take() {
                    args.oidc_client_secret =
                        Some(read_secret("--oidc-client-secret-file", &path)?);
                }
                if let Some(path) = args.nats_password_file.take() {
                    args.nats_password = Some(read_secret("--nats-password-file", &path)?);
                }
                &mut args.store
            }
            Command::Audit { store, .. }
            | Command::Admin { store, .. }
            | Command::Guard { store, .. }
            | Command::Rebuild { store, .. }
            | Command::Keys { store, .. }
            | Command::Backup { store, .. }
            | Command::Restore { store, .. } => store,
            Command::Proto { .. } => return Ok(()),
        };
        if let Some(path) = store.database_url_file.take() {
            store.database_url = Some(read_secret("--database-url-file", &path)?);
        }
        Ok(())
    }
}

impl StoreArgs {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("verkosto.db").display()),
        }
    }

    pub fn distributed(&self) -> bool {
        self.database_url.is_some()
    }

    /// The key store, opened with the key-encryption key (made in the data
    /// directory on an embedded store's first start).
    pub async fn open_keys(&self) -> anyhow::Result<verkosto_keys::KeyStore> {
        self.open_keys_with(std::sync::Arc::new(self.kek()?)).await
    }

    /// The key store, opened with `kek`.
    pub async fn open_keys_with(
        &self,
        kek: std::sync::Arc<dyn verkosto_keys::KeyEncryptionKeys>,
    ) -> anyhow::Result<verkosto_keys::KeyStore> {
        let url = match (&self.keys_url, &self.database_url) {
            (Some(url), _) => url.clone(),
            (None, Some(db)) => db.clone(),
            (None, None) => format!("sqlite://{}", self.data_dir.join("keys.db").display()),
        };
        tracing::debug!(kek = %kek.current_id(), "key-encryption key");
        verkosto_keys::KeyStore::open(&url, kek)
            .await
            .context("cannot open the key store")
    }

    /// The key-encryption key: `--key`, `--key-file`, or on an embedded
    /// store the data directory's, made on first use.
    fn kek(&self) -> anyhow::Result<verkosto_keys::FileKeys> {
        use verkosto_keys::FileKeys;
        Ok(match (&self.key, &self.key_file) {
            (Some(value), _) => FileKeys::parse(value).context("--key")?,
            (None, Some(path)) => {
                FileKeys::load(path).with_context(|| format!("--key-file {}", path.display()))?
            }
            (None, None) if self.distributed() => anyhow::bail!(
                "--key-file (or VERKOSTO_KEY) is required with --database-url: every process \
                 of the deployment needs the same key-encryption key"
            ),
            (None, None) => {
                let path = self.data_dir.join("kek");
                if path.exists() {
                    FileKeys::load(&path).with_context(|| format!("{}", path.display()))?
                } else {
                    std::fs::create_dir_all(&self.data_dir)
                        .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
                    let made = FileKeys::generate(&path)
                        .with_context(|| format!("cannot make {}", path.display()))?;
                    tracing::warn!(
                        path = %path.display(),
                        "made a key-encryption key beside the data; for a deployment, keep it \
                         apart (--key-file) and out of the data's backups"
                    );
                    made
                }
            }
        })
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockSync {
    Database,
    System,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    All,
    Cases,
    Consent,
    Meetings,
    Tasks,
    Relay,
    Web,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VERKOSTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the log is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Load demo agencies and users.
    #[arg(long, env = "VERKOSTO_DEMO")]
    pub demo: bool,
    /// With `--demo`: also one worked example case (needs every service in
    /// this process and dev auth).
    #[arg(long, env = "VERKOSTO_DEMO_CASE", value_enum, default_value = "on")]
    pub demo_case: OnOff,
    /// Dev tokens (`POST /api/v1/dev/token`: anyone who reaches the port is
    /// anyone they like): off unless `--demo` or `--dev-auth on`. Without
    /// them, sign-in needs `--jwks-url` and `--jwt-issuer`.
    #[arg(long, env = "VERKOSTO_DEV_AUTH")]
    pub dev_auth: Option<OnOff>,
    /// Seed of the dev signing key (hex, 32 bytes), so that several processes
    /// in a dev deployment accept each other's tokens. Random when unset.
    #[arg(long, env = "VERKOSTO_DEV_KEY_SEED", hide_env_values = true)]
    pub dev_key_seed: Option<String>,
    /// Which service(s) this process runs.
    #[arg(long, env = "VERKOSTO_TARGET", value_enum, default_value = "all")]
    pub target: Target,
    /// NATS server (distributed mode).
    #[arg(
        long,
        env = "VERKOSTO_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// The NATS user this process connects as (each service its own; see
    /// `deploy/nats/`).
    #[arg(long, env = "VERKOSTO_NATS_USER")]
    pub nats_user: Option<String>,
    /// A file holding that user's password (a mounted secret).
    #[arg(long, env = "VERKOSTO_NATS_PASSWORD_FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// Read from `--nats-password-file`; never a flag of its own.
    #[arg(skip)]
    pub nats_password: Option<String>,
    /// CA certificate of the NATS servers (PEM): with it, TLS is required.
    #[arg(long, env = "VERKOSTO_NATS_CA_FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// This process's certificate for NATS (PEM), where servers verify clients.
    #[arg(long, env = "VERKOSTO_NATS_CERT_FILE", requires = "nats_key_file")]
    pub nats_cert_file: Option<PathBuf>,
    /// The key of `--nats-cert-file` (PEM).
    #[arg(long, env = "VERKOSTO_NATS_KEY_FILE", requires = "nats_cert_file")]
    pub nats_key_file: Option<PathBuf>,
    /// How long the events stream keeps a message (`30d`, `12h`, `90s`). The
    /// log is the truth: a consumer further behind reads the rest from it.
    #[arg(long, env = "VERKOSTO_STREAM_MAX_AGE", default_value = "30d", value_parser = parse_period)]
    pub stream_max_age: Duration,
    /// JetStream replicas of the events stream (3 on a cluster).
    #[arg(long, env = "VERKOSTO_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// JWKS URL of the identity provider (production auth).
    #[arg(long, env = "VERKOSTO_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Expected token issuer (production auth).
    #[arg(long, env = "VERKOSTO_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Expected token audience (production auth).
    #[arg(long, env = "VERKOSTO_JWT_AUDIENCE", default_value = "verkosto")]
    pub jwt_audience: String,
    /// Accepted signing algorithms, comma-separated.
    #[arg(
        long,
        env = "VERKOSTO_JWT_ALGORITHMS",
        default_value = "RS256,ES256,EdDSA",
        value_delimiter = ','
    )]
    pub jwt_algorithms: Vec<String>,
    /// How many hours ahead a meeting that needs an interpreter must be set
    /// (sooner only with a stated reason).
    #[arg(
        long,
        env = "VERKOSTO_INTERPRETER_LEAD_TIME_HOURS",
        default_value_t = 24
    )]
    pub interpreter_lead_time_hours: u64,
    /// How long a closed case is kept before it is erased, counted from
    /// closing: years, months, days (`6y`, `18mo`, `90d`, `2y6mo`). The
    /// sweep erases each expired case unless a legal hold keeps it.
    #[arg(long, env = "VERKOSTO_RETENTION", default_value = "6y")]
    pub retention: verkosto_cases::retention::Period,
    /// Serve `POST /api/v1/dev/clock`, which moves the process's clock
    /// forward (for tests of due dates and retention; never in production).
    #[arg(long, env = "VERKOSTO_DEV_CLOCK")]
    pub dev_clock: bool,
    /// Whose clock stamps events and judges expiry: the database's (every
    /// process corrects its own by it), or each machine's own (`system`,
    /// where NTP is trusted).
    #[arg(
        long,
        env = "VERKOSTO_CLOCK_SYNC",
        value_enum,
        default_value = "database"
    )]
    pub clock_sync: ClockSync,
    /// The web app's OpenID Connect provider (its issuer URL); with it the
    /// sign-in page offers "sign in with your organisation".
    #[arg(long, env = "VERKOSTO_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// This app's client id at the provider.
    #[arg(long, env = "VERKOSTO_OIDC_CLIENT_ID", default_value = "verkosto-web")]
    pub oidc_client_id: String,
    /// The client secret, for a confidential client (PKCE is used either way).
    #[arg(long, env = "VERKOSTO_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// A file holding the client secret (a mounted secret).
    #[arg(
        long,
        env = "VERKOSTO_OIDC_CLIENT_SECRET_FILE",
        conflicts_with = "oidc_client_secret"
    )]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The web app's public address, e.g. https://verkosto.example.fi (default:
    /// taken from each request's Host).
    #[arg(long, env = "VERKOSTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long a web session lasts without a request (`30m`, `2h`, `45s`);
    /// then the next page asks to sign in again.
    #[arg(long, env = "VERKOSTO_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_period)]
    pub session_idle_timeout: Duration,
    /// The longest a web session lasts, however busy (`12h`); then the next
    /// page asks to sign in again.
    #[arg(long, env = "VERKOSTO_SESSION_MAX_AGE", default_value = "12h", value_parser = parse_period)]
    pub session_max_age: Duration,
    /// Leave `Secure` off the web app's cookies, for browsers that refuse
    /// `Secure` cookies over plain HTTP even on this machine. Only when
    /// listening on a loopback address with no public URL other than
    /// `http://` on loopback: the process refuses to start otherwise.
    #[arg(long, env = "VERKOSTO_INSECURE_COOKIES_ON_LOOPBACK")]
    pub insecure_cookies_on_loopback: bool,
    /// For `--target web`: the base URL of a process that serves the API.
    #[arg(long, env = "VERKOSTO_API_URL")]
    pub api_url: Option<String>,
    /// A host webhooks may reach though it is internal, or over plain http:
    /// `host`, `host:port`, `[v6]` or `[v6]:port` (no port: every port).
    /// Repeat it, or comma-separate the environment variable. Without it,
    /// webhooks must be https to public addresses only.
    #[arg(
        long = "webhook-allow-host",
        env = "VERKOSTO_WEBHOOK_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub webhook_allow_hosts: Vec<verkosto_tasks::outbound::AllowHost>,
    /// Rate limit per signed-in user, in this process: `50/s:500` is 50
    /// requests a second with bursts of up to 500 (units s, m, h). `off`
    /// only for benchmarks. Over it: 429 with Retry-After.
    #[arg(
        long,
        env = "VERKOSTO_RATE_LIMIT_PER_USER",
        default_value = "50/s:500",
        value_name = "RATE[:BURST]"
    )]
    pub rate_limit_per_user: verkosto_http::limits::Rate,
    /// Rate limit per client address for requests without a recently
    /// verified token (pages, feeds, bad or fresh tokens).
    #[arg(
        long,
        env = "VERKOSTO_RATE_LIMIT_PER_ADDRESS",
        default_value = "20/s:200",
        value_name = "RATE[:BURST]"
    )]
    pub rate_limit_per_address: verkosto_http::limits::Rate,
    /// Rate limit per client address on sign-in: `POST /api/v1/dev/token`,
    /// `POST /signin`, `/oidc/start` and `/oidc/callback`.
    #[arg(
        long,
        env = "VERKOSTO_RATE_LIMIT_SIGN_IN",
        default_value = "30/m:30",
        value_name = "RATE[:BURST]"
    )]
    pub rate_limit_sign_in: verkosto_http::limits::Rate,
    /// A proxy (the gateway) whose `X-Forwarded-For` names the client:
    /// an address or CIDR block. Repeat it, or comma-separate the
    /// environment variable. From any other peer the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "VERKOSTO_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "IP|CIDR",
        value_parser = verkosto_http::limits::parse_trusted_proxy
    )]
    pub trusted_proxies: Vec<verkosto_http::limits::IpNet>,
    /// Database pool size (PostgreSQL).
    #[arg(long, env = "VERKOSTO_DB_POOL", default_value_t = 32)]
    pub db_pool: u32,
    /// Log as JSON (default: JSON unless stderr is a terminal).
    #[arg(long, env = "VERKOSTO_LOG_JSON")]
    pub log_json: Option<bool>,
    /// Send traces over OTLP (HTTP/protobuf) to this collector, e.g.
    /// `http://otel-collector:4318`; they go to `<url>/v1/traces`, as
    /// service `verkosto-<target>`. Off when unset. The environment variable
    /// is OpenTelemetry's own; its other `OTEL_EXPORTER_OTLP_*` settings
    /// (headers, timeout) apply too.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Bench builds only: serve case records with no consent filtering and
    /// no access log, as the read benchmark's baseline.
    #[cfg(feature = "bench")]
    #[arg(long, env = "VERKOSTO_BENCH_UNFILTERED_READS")]
    pub bench_unfiltered_reads: bool,
}

impl ServeArgs {
    /// Who this process is to NATS.
    pub fn nats_access(&self) -> verkosto_bus::NatsAccess {
        verkosto_bus::NatsAccess {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            ca_file: self.nats_ca_file.clone(),
            client_cert: self.nats_cert_file.clone().zip(self.nats_key_file.clone()),
        }
    }

    /// Whether the web app's cookies carry `Secure`, for a process listening
    /// on `listen`: always, unless `--insecure-cookies-on-loopback`, which is
    /// refused unless nothing but this machine can reach it over plain HTTP.
    pub fn secure_cookies(&self, listen: SocketAddr) -> anyhow::Result<bool> {
        if !self.insecure_cookies_on_loopback {
            return Ok(true);
        }
        anyhow::ensure!(
            listen.ip().is_loopback(),
            "--insecure-cookies-on-loopback: {listen} is not a loopback address; \
             cookies stay Secure on any address another machine can reach"
        );
        if let Some(url) = self.public_url.as_deref().filter(|u| !u.trim().is_empty()) {
            let host = url
                .strip_prefix("http://")
                .map(|rest| rest.split('/').next().unwrap_or(""))
                .map(|authority| authority.rsplit_once(':').map_or(authority, |(h, _)| h))
                .unwrap_or("");
            let loopback = host == "localhost"
                || host == "[::1]"
                || host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            anyhow::ensure!(
                loopback,
                "--insecure-cookies-on-loopback: the public URL {url} is not plain http on \
                 loopback; cookies stay Secure"
            );
        }
        Ok(false)
    }

    /// The name this process's traces carry: `verkosto-<target>`.
    pub fn service_name(&self) -> String {
        format!("verkosto-{:?}", self.target).to_lowercase()
    }

    /// Dev tokens only when asked for: by name, or with the demo.
    pub fn dev_auth_on(&self) -> bool {
        match self.dev_auth {
            Some(OnOff::On) => true,
            Some(OnOff::Off) => false,
            None => self.demo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_with_their_unit_and_nothing_else() {
        assert_eq!(parse_period("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_period("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_period("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_period("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "d", "0d", "30", "30w", "-1d", "1.5h", "３d", "3３"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }
}
