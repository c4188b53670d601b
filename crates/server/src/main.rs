//! `palisade`: Palisade's reference server and command-line tool.
//!
//! `palisade serve` runs the reference server on its embedded defaults (loopback
//! `127.0.0.1:8080`, state in `./palisade-data/`); the interface it serves is fixed by the
//! project's contract. See `palisade --help`.

mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Palisade's reference server and command-line tool.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables `PALISADE_<KEY>` override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, signing keys).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference server.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::Config::load(cli.config.as_deref(), cli.data_dir.as_deref()) {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(config, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// One clear line on stderr and a non-zero exit.
#[allow(clippy::print_stderr)] // start-up errors are for the operator's terminal
fn fail(message: &str) -> ExitCode {
    eprintln!("palisade: {message}");
    ExitCode::FAILURE
}
