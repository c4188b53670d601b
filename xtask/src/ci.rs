//! `cargo xtask ci`: the steps of `.ci/run`, in the same order.
//!
//! `.ci/run` makes sure Redis and PostgreSQL answer and cargo-fuzz is installed, then
//! calls this. Tests that need those services fail instead of skipping because this sets
//! `PALISADE_REQUIRE_SERVICES=1` (pass `--allow-skips` on a laptop without them). The last
//! step is a fuzz smoke run, every target for a few seconds from its seeds (`--no-fuzz`
//! leaves it out; `XTASK_FUZZ_SMOKE_SECS` sets the seconds, else the smoke run's own default).

use crate::util::{cargo, run as run_command};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let allow_skips = args.iter().any(|arg| arg == "--allow-skips");
    let fuzz = !args.iter().any(|arg| arg == "--no-fuzz");
    if let Some(unknown) = args
        .iter()
        .find(|arg| !["--allow-skips", "--no-fuzz"].contains(&arg.as_str()))
    {
        return Err(format!("ci: unknown option `{unknown}`"));
    }

    run_command(cargo().args(["fmt", "--all", "--check"]))?;
    run_command(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::check_deps::run(&crate::util::workspace_root())?;
    run_command(
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;

    // The README's test command.
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"]);
    if !allow_skips {
        test.env("PALISADE_REQUIRE_SERVICES", "1");
    }
    run_command(&mut test)?;

    if fuzz {
        let mut fuzz_args = vec!["--smoke".to_owned()];
        if let Ok(seconds) = std::env::var("XTASK_FUZZ_SMOKE_SECS") {
            fuzz_args.extend(["--time".to_owned(), seconds]);
        }
        crate::fuzz::run(&fuzz_args)?;
    }
    Ok(())
}
