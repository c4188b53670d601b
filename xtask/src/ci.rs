//! `cargo xtask ci`: the steps of `.ci/run`, in the same order.
//!
//! `.ci/run` makes sure Redis and PostgreSQL answer, then calls this. Tests that need
//! those services fail instead of skipping because this sets `PALISADE_REQUIRE_SERVICES=1`
//! (pass `--allow-skips` on a laptop without them).

use crate::util::{cargo, run as run_command};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let allow_skips = args.iter().any(|arg| arg == "--allow-skips");
    if let Some(unknown) = args.iter().find(|arg| *arg != "--allow-skips") {
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
    run_command(&mut test)
}
