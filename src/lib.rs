//! portcullis: an identity provider with OpenID Connect, SAML 2.0, passkeys
//! and built-in Privileged Identity Management.
//!
//! [`build_app`] turns [`config::Settings`] into a server bound to its port
//! (port 0 in tests); `main.rs` is the command line around it.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod ephemeral;
pub mod error;
pub mod protocol;
pub mod service;
pub mod store;
pub mod web;

use clock::{SharedClock, SystemClock};
use config::{LogFormat, Settings};
use error::{Error, Result};
use service::Services;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Opens the database (applying migrations) and the ephemeral store.
pub async fn open_services(
    settings: Settings,
    clock: SharedClock,
    issuer: String,
) -> Result<Services> {
    let db = settings.database.clone();
    let store = tokio::task::spawn_blocking(move || store::diesel::DieselStore::open(&db))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    let ephemeral = ephemeral::connect(&settings.ephemeral, clock.clone()).await?;
    let sealer = key_sealer(&settings)?;
    let store = store.with_audit_key(crypto::audit::AuditKey::derive(&sealer));
    let webauthn = service::webauthn::relying_party(&settings, &issuer)?.map(Arc::new);
    let attestation_cas = service::attestation::attestation_cas(&settings)?.map(Arc::new);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hashing_slots = Arc::new(tokio::sync::Semaphore::new(
        settings.login.password_hashings_at_once(cores),
    ));
    Ok(Services {
        hashing_slots,
        hashing_memory: Default::default(),
        webauthn,
        attestation_cas,
        store: Arc::new(store),
        ephemeral,
        clock,
        settings: Arc::new(settings),
        keys: Arc::new(service::keys::KeyCache::new(sealer)),
        issuer,
        http: reqwest::Client::builder()
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("http client: {e}")))?,
    })
}

/// The at-rest key for signing keys: configured, or (SQLite only) a file
/// beside the database created on first start.
fn key_sealer(settings: &Settings) -> Result<crypto::seal::Sealer> {
    use crypto::seal::Sealer;
    if let Some(k) = &settings.keys.encryption_key {
        return Sealer::from_base64(k.expose()).map_err(Error::invalid);
    }
    let db = settings.database.url.expose();
    let Some(path) = db.strip_prefix("sqlite://") else {
        return Err(Error::invalid(
            "keys.encryption_key is required with PostgreSQL",
        ));
    };
    let file = std::path::PathBuf::from(format!("{path}.key"));
    if !file.exists() {
        write_secret_file(&file, &Sealer::generate_key_base64())?;
        tracing::warn!(
            "created {}: it encrypts the signing keys in the database; back it up with the database, \
             or set keys.encryption_key instead",
            file.display()
        );
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::unavailable(format!("cannot read {}: {e}", file.display())))?;
    Sealer::from_base64(text.trim()).map_err(|e| Error::invalid(format!("{}: {e}", file.display())))
}

fn write_secret_file(path: &std::path::Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::unavailable(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(content.as_bytes())
        .map_err(|e| Error::unavailable(format!("cannot write {}: {e}", path.display())))
}

/// A server bound to its port, not yet running.
pub struct App {
    pub port: u16,
    pub issuer: String,
    pub services: Services,
    server: actix_web::dev::Server,
}

impl App {
    /// Stops the server (gracefully when `graceful`).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`App::handle`], with background
    /// housekeeping alongside.
    pub async fn run(self) -> std::io::Result<()> {
        let services = self.services.clone();
        tokio::select! {
            r = self.server => r,
            () = housekeeping(services) => Ok(()),
        }
    }

    /// Like [`App::run`], and also stops gracefully on SIGTERM or SIGINT:
    /// no new connections, running requests finish (up to 10 s). The
    /// "listening" line is logged only once the signal handlers are in place.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let handle = self.server.handle();
        tracing::info!(issuer = %self.issuer, backend = self.services.store.backend(), "portcullis listening on port {}", self.port);
        let stopper = async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name} received; finishing running requests");
            handle.stop(true).await;
        };
        let services = self.services.clone();
        let server = self.server;
        tokio::select! {
            r = async { tokio::join!(server, stopper).0 } => r,
            () = housekeeping(services) => Ok(()),
        }
    }
}

/// Background upkeep: the PIM sweeper (windows starting and ending,
/// webhooks) every `pim.sweep_interval`; keys rotated by another node or
/// the CLI, and idle password-hashing memory, every minute; expired
/// sessions and grants every ten.
async fn housekeeping(services: Services) {
    tokio::join!(services.run_pim_worker(), upkeep(services.clone()));
}

async fn upkeep(services: Services) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        round += 1;
        if let Err(e) = services.reload_keys().await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
        // Password hashing's working memory, idle for a minute, goes back.
        services.hashing_memory.trim(Duration::from_secs(60));
        if round % 10 != 1 {
            continue;
        }
        // Timed-out sessions end as a sign-out would (their grants revoked,
        // their clients told); then what has expired is dropped.
        let now = services.now();
        let purged = async {
            let ended = services.end_timed_out_sessions().await?;
            services
                .db(move |r| Ok(ended + r.purge_expired_grants(now)?))
                .await
        }
        .await;
        match purged {
            Ok(n) if n > 0 => tracing::info!(removed = n, "expired sessions and grants removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "clean-up failed"),
        }
    }
}

/// Builds the IdP from settings with the system clock.
pub async fn build_app(settings: Settings) -> Result<App> {
    build_app_with_clock(settings, Arc::new(SystemClock)).await
}

/// Builds the IdP with an injected clock (tests use a fixed one).
pub async fn build_app_with_clock(settings: Settings, clock: SharedClock) -> Result<App> {
    let bind = settings.bind;
    let listener = TcpListener::bind(bind)
        .map_err(|e| Error::unavailable(format!("cannot listen on {bind}: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::internal(e.to_string()))?
        .port();
    let issuer = settings.issuer_for_port(port);
    let services = open_services(settings, clock, issuer.clone()).await?;
    services.ensure_keys().await?;
    services.ensure_saml_cert().await?;
    if let Some(password) = services.bootstrap().await? {
        tracing::warn!(
            "created the first administrator: username `admin`, one-time password `{password}`. \
             It is shown only this once and must be changed at first sign-in."
        );
    }
    let secure_cookies = services
        .settings
        .session
        .secure_cookie
        .unwrap_or_else(|| issuer.starts_with("https://"));
    let state = actix_web::web::Data::new(web::AppState {
        services: services.clone(),
        metrics: Arc::new(web::Metrics::new()),
        issuer: issuer.clone(),
        secure_cookies,
    });
    let headers_for = issuer.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(web::bound_params))
            .wrap(web::security_headers(&headers_for))
            .wrap(actix_web::middleware::from_fn(web::observe))
            .configure(web::routes)
    })
    .listen(listener)
    .map_err(|e| Error::unavailable(format!("cannot serve on {bind}: {e}")))?
    .shutdown_timeout(10)
    .disable_signals()
    .run();
    Ok(App {
        port,
        issuer,
        services,
        server,
    })
}

/// Sets up tracing once for the process: text or JSON lines on stderr.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
