//! CLI entry point; see `portcullis --help`.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: the token endpoint's many small JSON and header allocations
/// cost less than with the system allocator, and freed memory goes back to
/// the system. Built without transparent huge pages (`no_thp`): with them
/// every partly used 2 MiB of its arenas counted whole, 16 MiB at idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    if !matches!(cli.command, portcullis::cli::Command::Serve) {
        // A command piped into `head` ends quietly when the pipe closes, as
        // command-line tools do, instead of panicking on the write. (Not for
        // `serve`: a server must outlive clients that hang up.)
        // SAFETY: sets the process-wide disposition of one signal; nothing
        // in a CLI command relies on SIGPIPE being ignored.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        // Commands keep stdout for their output; only warnings go to stderr.
        portcullis::init_logging(portcullis::config::LogFormat::Text, "warn");
    }
    portcullis::cli::run(cli).await
}
