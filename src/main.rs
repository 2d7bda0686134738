//! `kmon`: one binary for the broker, the local cluster and every client
//! command. Each subcommand lives in `cmd/` and is a thin layer over the
//! `kmon-broker` and `kmon-client` libraries.

mod cmd;
mod telemetry;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
