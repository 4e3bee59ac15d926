//! CLI entry point; see `portcullis --help`.

use clap::Parser;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    if !matches!(cli.command, portcullis::cli::Command::Serve) {
        // Commands keep stdout for their output; only warnings go to stderr.
        portcullis::init_logging(portcullis::config::LogFormat::Text, "warn");
    }
    portcullis::cli::run(cli).await
}
