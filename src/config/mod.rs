//! Configuration: a TOML file overlaid by `PORTCULLIS_*` environment variables.
//!
//! Environment names are the key path in upper case with `_` between parts:
//! `PORTCULLIS_DATABASE_URL` is `database.url`, `PORTCULLIS_SESSION_IDLE_TIMEOUT`
//! is `session.idle_timeout`. `PORTCULLIS_TEST_*` variables belong to the test
//! suite and are ignored here.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod login;
mod pim;
mod secret;
mod webauthn;
pub use login::LoginSettings;
pub use pim::{PimSettings, WebhookSettings};
pub use secret::Secret;
#[cfg(test)]
use secret::redact_url;
pub use webauthn::{AttestationPolicy, WebauthnSettings};

/// Sections of the file; an env var `PORTCULLIS_<SECTION>_<KEY>` nests under one.
const SECTIONS: &[&str] = &[
    "database",
    "ephemeral",
    "session",
    "login",
    "log",
    "keys",
    "oidc",
    "webauthn",
    "pim",
];

/// The header a reverse proxy appends the client's address to. Only the
/// one the proxies write is read: a client can send the other itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Public base URL; unset means `http://localhost:<bound port>`.
    pub issuer: Option<String>,
    pub bind: SocketAddr,
    /// Proxies whose `X-Forwarded-For` is believed, as CIDRs.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header the trusted proxies write the client's address into.
    pub forwarded_header: ForwardedHeader,
    pub database: DatabaseSettings,
    pub ephemeral: EphemeralSettings,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub log: LogSettings,
    pub keys: KeySettings,
    pub oidc: OidcSettings,
    pub webauthn: WebauthnSettings,
    pub pim: PimSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            database: DatabaseSettings::default(),
            ephemeral: EphemeralSettings::default(),
            session: SessionSettings::default(),
            login: LoginSettings::default(),
            log: LogSettings::default(),
            keys: KeySettings::default(),
            oidc: OidcSettings::default(),
            webauthn: WebauthnSettings::default(),
            pim: PimSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`.
    pub url: Secret,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://./data/portcullis.db"),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EphemeralSettings {
    /// `memory` (one node) or `redis://host:port/db` (several nodes).
    pub url: Secret,
    /// Upper bound on entries held by the in-memory store.
    pub max_entries: usize,
    /// Prefix for every Redis key, so several deployments can share a server.
    pub key_prefix: String,
}

impl Default for EphemeralSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("memory"),
            max_entries: 100_000,
            key_prefix: "portcullis:".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub cookie_name: String,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    /// Force the cookie's `Secure` flag; unset means "when the issuer is https".
    pub secure_cookie: Option<bool>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            cookie_name: "portcullis_session".into(),
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            secure_cookie: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `portcullis=debug,actix_web=info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// 32 bytes, base64: encrypts signing keys at rest. Unset with SQLite
    /// means a key file beside the database, created on first start;
    /// PostgreSQL (several nodes) needs it set, the same on every node.
    pub encryption_key: Option<Secret>,
    /// How long a rotated-in key is published before it signs anything, so
    /// relying parties that cache the JWKS have it in time.
    #[serde(with = "humantime_serde")]
    pub publish_ahead: Duration,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            encryption_key: None,
            publish_ahead: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Upper bound on every access and ID token lifetime; a retired key stays
    /// published this long after its last use.
    #[serde(with = "humantime_serde")]
    pub max_token_lifetime: Duration,
    /// Defaults for new clients.
    #[serde(with = "humantime_serde")]
    pub access_token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub id_token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_lifetime: Duration,
    /// How long an authorization code can be redeemed.
    #[serde(with = "humantime_serde")]
    pub code_lifetime: Duration,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            max_token_lifetime: Duration::from_secs(3600),
            access_token_lifetime: Duration::from_secs(600),
            id_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            code_lifetime: Duration::from_secs(60),
        }
    }
}

/// A configuration problem, phrased as one line that names the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn key_error(key: &str, msg: impl fmt::Display) -> ConfigError {
    ConfigError(format!("configuration key `{key}`: {msg}"))
}

/// Maps `database_url` to `database.url`; leaves top-level keys alone.
fn env_key_to_path(key: &str) -> String {
    for section in SECTIONS {
        if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key.to_string()
}

impl Settings {
    /// Reads `path` (it must exist when given explicitly), else `portcullis.toml`
    /// if present, then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        match path {
            Some(p) if !p.is_file() => {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    p.display()
                )));
            }
            Some(p) => fig = fig.merge(Toml::file_exact(p)),
            None if Path::new("portcullis.toml").is_file() => {
                fig = fig.merge(Toml::file_exact("portcullis.toml"))
            }
            None => {}
        }
        let env = Env::prefixed("PORTCULLIS_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !k.starts_with("test_") && k != "config"
            })
            .map(|k| env_key_to_path(&k.as_str().to_ascii_lowercase()).into());
        Self::from_figment(fig.merge(env))
    }

    /// Parses settings from TOML text alone; for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = fig.extract().map_err(describe_figment_error)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            let rest = issuer
                .strip_prefix("https://")
                .or_else(|| issuer.strip_prefix("http://"))
                .ok_or_else(|| key_error("issuer", "must start with https:// or http://"))?;
            if rest.is_empty() || rest.starts_with('/') {
                return Err(key_error("issuer", "must name a host"));
            }
            if issuer.contains(['?', '#']) || issuer.ends_with('/') {
                return Err(key_error(
                    "issuer",
                    "must not end with `/` or contain a query or fragment",
                ));
            }
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(key_error(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if db == "sqlite://" {
            return Err(key_error("database.url", "names no file"));
        }
        if self.database.max_connections == 0 {
            return Err(key_error("database.max_connections", "must be at least 1"));
        }
        let eph = self.ephemeral.url.expose();
        if !(eph == "memory" || eph.starts_with("redis://") || eph.starts_with("rediss://")) {
            return Err(key_error(
                "ephemeral.url",
                "must be `memory` or start with redis://",
            ));
        }
        if self.ephemeral.max_entries == 0 {
            return Err(key_error("ephemeral.max_entries", "must be at least 1"));
        }
        let name = &self.session.cookie_name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(key_error(
                "session.cookie_name",
                "may contain only letters, digits, `_` and `-`",
            ));
        }
        if self.session.idle_timeout.is_zero() || self.session.absolute_timeout.is_zero() {
            return Err(key_error(
                "session.idle_timeout",
                "timeouts must be positive",
            ));
        }
        self.login.validate()?;
        let o = &self.oidc;
        if o.access_token_lifetime > o.max_token_lifetime
            || o.id_token_lifetime > o.max_token_lifetime
        {
            return Err(key_error(
                "oidc.max_token_lifetime",
                "must be at least oidc.access_token_lifetime and oidc.id_token_lifetime",
            ));
        }
        if o.code_lifetime.is_zero() || o.code_lifetime > Duration::from_secs(600) {
            return Err(key_error(
                "oidc.code_lifetime",
                "must be between 1s and 10m",
            ));
        }
        if let Some(k) = &self.keys.encryption_key {
            if let Err(e) = crate::crypto::seal::Sealer::from_base64(k.expose()) {
                return Err(key_error("keys.encryption_key", e));
            }
        } else if !self.database.url.expose().starts_with("sqlite://") {
            return Err(key_error(
                "keys.encryption_key",
                "is required with PostgreSQL (every node must share it); generate one with `portcullis keys generate-secret`",
            ));
        }
        self.webauthn.validate()?;
        self.pim.validate()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| key_error("log.level", e))?;
        Ok(())
    }

    /// The issuer once the listening port is known.
    pub fn issuer_for_port(&self, port: u16) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{port}"))
    }
}

/// Parser messages draw the offending line with a caret; keep their words only.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('|')
                && !l.contains(" | ")
                && !l.trim_matches(['^', ' ']).is_empty()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn join_key(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn describe_figment_error(e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut path = e.path.join(".");
    let msg = match &e.kind {
        Kind::UnknownField(field, _) => {
            if e.path.last() != Some(field) {
                path = join_key(&path, field);
            }
            "is not a known setting".to_string()
        }
        Kind::MissingField(field) => {
            if e.path.last().map(String::as_str) != Some(field.as_ref()) {
                path = join_key(&path, field);
            }
            "is required".to_string()
        }
        other => one_line(&other.to_string()),
    };
    let source = e
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
            _ => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    if path.is_empty() {
        ConfigError(format!("configuration: {msg}{source}"))
    } else {
        ConfigError(format!("configuration key `{path}`: {msg}{source}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_an_embedded_single_node() {
        let s = Settings::from_toml("").unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.url.expose(), "sqlite://./data/portcullis.db");
        assert_eq!(s.ephemeral.url.expose(), "memory");
        assert_eq!(s.issuer_for_port(8080), "http://localhost:8080");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Settings::from_toml("[database]\nurll = \"x\"").unwrap_err();
        assert!(e.0.contains("`database.urll`"), "{e}");
        assert!(e.0.contains("not a known setting"), "{e}");
    }

    #[test]
    fn wrong_types_are_named() {
        let e = Settings::from_toml("bind = 42").unwrap_err();
        assert!(e.0.contains("`bind`"), "{e}");
        let e = Settings::from_toml("[log]\nformat = \"xml\"").unwrap_err();
        assert!(e.0.contains("`log.format`"), "{e}");
        let e = Settings::from_toml("[session]\nidle_timeout = \"soon\"").unwrap_err();
        assert!(e.0.contains("`session.idle_timeout`"), "{e}");
    }

    #[test]
    fn semantic_checks_name_the_key() {
        let e = Settings::from_toml("issuer = \"ftp://x\"").unwrap_err();
        assert!(e.0.contains("`issuer`"), "{e}");
        let e = Settings::from_toml("issuer = \"https://x/\"").unwrap_err();
        assert!(e.0.contains("`issuer`"), "{e}");
        let e = Settings::from_toml("[database]\nurl = \"mysql://x\"").unwrap_err();
        assert!(e.0.contains("`database.url`"), "{e}");
        let e = Settings::from_toml("[ephemeral]\nurl = \"memcached://x\"").unwrap_err();
        assert!(e.0.contains("`ephemeral.url`"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::from_toml(
            "[database]\nurl = \"postgres://app:hunter2@db.internal:5432/idp?password=x\"\n\
             [keys]\nencryption_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(
            dbg.contains("postgres://app:***@db.internal:5432/idp"),
            "{dbg}"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("memory"), "memory");
    }

    #[test]
    fn env_keys_nest_under_known_sections() {
        assert_eq!(env_key_to_path("database_url"), "database.url");
        assert_eq!(
            env_key_to_path("session_idle_timeout"),
            "session.idle_timeout"
        );
        assert_eq!(env_key_to_path("trusted_proxies"), "trusted_proxies");
        assert_eq!(env_key_to_path("issuer"), "issuer");
    }

    #[test]
    fn durations_and_cidrs_parse() {
        let s = Settings::from_toml(
            "trusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]\n[session]\nidle_timeout = \"30m\"",
        )
        .unwrap();
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.session.idle_timeout, Duration::from_secs(1800));
    }
}
