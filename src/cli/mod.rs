//! The command line. Every command reads the same configuration as `serve`
//! and works beside a running server on the same database.

mod directory;
mod oidc;
mod pim;
mod saml;

use crate::config::Settings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Identity provider: OpenID Connect, SAML 2.0, passkeys and just-in-time privilege"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./portcullis.toml when present.
    /// PORTCULLIS_* environment variables override it.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the identity provider.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(directory::UserCommand),
    /// Manage groups and their members.
    #[command(subcommand)]
    Group(directory::GroupCommand),
    /// Manage roles and permanent role assignments.
    #[command(subcommand)]
    Role(directory::RoleCommand),
    /// Manage OpenID Connect clients.
    #[command(subcommand)]
    Client(oidc::ClientCommand),
    /// Manage SAML service providers.
    #[command(subcommand)]
    Sp(saml::SpCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(oidc::KeysCommand),
    /// Privileged Identity Management: policies, eligibility, windows.
    #[command(subcommand)]
    Pim(pim::PimCommand),
    /// Read and verify the audit trail.
    #[command(subcommand)]
    Audit(directory::AuditCommand),
}

/// Exit code for configuration problems.
pub const EXIT_CONFIG: u8 = 2;

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::User(c) => directory::user(settings, c).await,
        Command::Group(c) => directory::group(settings, c).await,
        Command::Role(c) => directory::role(settings, c).await,
        Command::Audit(c) => directory::audit(settings, c).await,
        Command::Client(c) => oidc::client(settings, c).await,
        Command::Keys(c) => oidc::keys(settings, c).await,
        Command::Sp(c) => saml::sp(settings, c).await,
        Command::Pim(c) => pim::pim(settings, c).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.detail() {
                Some(d) => eprintln!("error: {} ({d})", e.public()),
                None => eprintln!("error: {}", e.public()),
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> crate::error::Result<()> {
    crate::init_logging(settings.log.format, &settings.log.level);
    let app = crate::build_app(settings).await?;
    app.run_until_signal()
        .await
        .map_err(|e| crate::error::Error::internal(format!("server failed: {e}")))?;
    tracing::info!("portcullis stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> crate::error::Result<()> {
    let db = settings.database.clone();
    // Opening the store applies what is pending.
    tokio::task::spawn_blocking(move || crate::store::diesel::DieselStore::open(&db))
        .await
        .map_err(|e| crate::error::Error::internal(e.to_string()))??;
    println!("database is up to date");
    Ok(())
}
