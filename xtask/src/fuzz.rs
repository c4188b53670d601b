//! `cargo xtask fuzz [--time SECS] [TARGET...]`: run the fuzz targets in `fuzz/`.
//!
//! The targets use cargo-fuzz's layout (libFuzzer). cargo-fuzz needs nightly compiler
//! flags; on the stable toolchain this machine has, `RUSTC_BOOTSTRAP=1` unlocks them for
//! the fuzz build only. Each target starts from its committed seeds in `fuzz/seeds/TARGET`
//! (read only) and grows its working corpus in `fuzz/corpus/TARGET`, which is not
//! committed; a crash leaves its input in `fuzz/artifacts/TARGET/`.

use std::fs;

use crate::util::{cargo, run as run_command, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 60;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                let value = args
                    .next()
                    .ok_or("fuzz: --time needs a number of seconds")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("fuzz: --time takes whole seconds, not `{value}`"))?;
            }
            target => chosen.push(target.to_owned()),
        }
    }
    let targets = if chosen.is_empty() {
        targets()?
    } else {
        chosen
    };
    if targets.is_empty() {
        return Err("fuzz: no targets in fuzz/fuzz_targets".into());
    }
    let fuzz_dir = workspace_root().join("fuzz");
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)
            .map_err(|error| format!("fuzz: creating {}: {error}", corpus.display()))?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let mut command = cargo();
        command
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target])
            // libFuzzer writes new inputs into the first directory only.
            .arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        run_command(command.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
        ]))?;
    }
    Ok(())
}

/// The names of the targets, from `fuzz/fuzz_targets/*.rs`.
pub(crate) fn targets() -> Result<Vec<String>, String> {
    let dir = workspace_root().join("fuzz").join("fuzz_targets");
    let entries =
        fs::read_dir(&dir).map_err(|error| format!("fuzz: reading {}: {error}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}
