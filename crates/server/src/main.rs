//! `palisade`: Palisade's reference server and command-line tool.
//!
//! `palisade serve` runs the reference server on its embedded defaults (loopback
//! `127.0.0.1:8080`, state in `./palisade-data/`); the interface it serves is fixed by the
//! project's contract. The other commands manage keys, OAuth clients, users, signing
//! credentials and development certificates on the same data directory or database,
//! without a running server. See `palisade --help`.

mod admin;
mod app;
mod backends;
mod cli;
mod clock;
mod config;
mod credentials;
mod db;
mod metrics;
mod oauth;
mod openapi;
mod orders;
mod problems;
mod serve;
mod sign;
mod state;
mod webhooks;

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
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference server.
    Serve(serve::ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(cli::KeysCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(cli::ClientsCommand),
    /// Manage users (for the authorization-code and device flows).
    #[command(subcommand)]
    Users(cli::UsersCommand),
    /// Manage request-signing credentials.
    #[command(subcommand)]
    Credentials(cli::CredentialsCommand),
    /// Print the headers that sign a request.
    Sign(sign::SignArgs),
    /// Development certificates.
    #[command(subcommand)]
    Certs(cli::CertsCommand),
    /// The configuration.
    #[command(subcommand)]
    Config(cli::ConfigCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that need no configuration run even when it is broken.
    let result = match cli.command {
        Command::Sign(args) => cli::sign(&args, cli.json),
        Command::Certs(command) => cli::certs(command, cli.json),
        command => match config::Config::load(cli.config.as_deref(), cli.data_dir.as_deref()) {
            Err(message) => Err(message),
            Ok(config) => match command {
                Command::Serve(args) => serve::run(config, args),
                Command::Keys(command) => cli::keys(config, command, cli.json),
                Command::Clients(command) => cli::clients(config, command, cli.json),
                Command::Users(command) => cli::users(config, command, cli.json),
                Command::Credentials(command) => cli::credentials(config, command, cli.json),
                Command::Config(command) => cli::config(&config, command, cli.json),
                Command::Sign(_) | Command::Certs(_) => Ok(()),
            },
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// One clear line on stderr and a non-zero exit.
#[allow(clippy::print_stderr)] // start-up errors are for the operator's terminal
fn fail(message: &str) -> ExitCode {
    eprintln!("palisade: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}
