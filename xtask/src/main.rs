//! `cargo xtask`: Palisade's CI, benchmark, fuzzing and release tasks.
//!
//! One module per task, few dependencies, plain `std::process::Command` calls, so that
//! what CI does can be read here and repeated by hand.
//!
//! ```text
//! cargo xtask ci                       the steps of .ci/run (fmt, clippy, deps, docs, tests)
//! cargo xtask check-deps [--workspace DIR]   core crates must not depend on a web framework
//! cargo xtask bench [--quick]          run the criterion benches, refresh docs/BENCHMARKS.md
//! cargo xtask bench e2e [OPTIONS]      the reference server under wrk against a bare axum service
//! cargo xtask bench scaling [--report-only]   cost per check/verify for 1 to 1 000 000 keys
//! cargo xtask fuzz [--time SECS] [--smoke] [TARGET...]   fuzz every (or each named) target
//! cargo xtask release VERSION [--dry-run]
//! ```

// A command-line tool reports on stdout and stderr by design.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod check_deps;
mod ci;
mod e2e;
mod fuzz;
mod release;
#[cfg(test)]
mod security_doc;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <ci | check-deps | bench [e2e | scaling] | fuzz [--time SECS] [--smoke] [TARGET...] | release VERSION [--dry-run]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match task.as_str() {
        "ci" => ci::run(rest),
        "check-deps" => check_deps::run_cli(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "release" => release::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
