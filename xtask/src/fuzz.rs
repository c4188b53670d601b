//! `cargo xtask fuzz [--time SECS] [--smoke] [TARGET...]`: run the fuzz targets in `fuzz/`.
//!
//! The targets use cargo-fuzz's layout (libFuzzer). cargo-fuzz needs nightly compiler
//! flags; on the stable toolchain this machine has, `RUSTC_BOOTSTRAP=1` unlocks them for
//! the fuzz build only.
//!
//! A campaign (the default) runs each target for `--time` seconds (60) under
//! AddressSanitizer, starting from its committed seeds in `fuzz/seeds/TARGET` (read only)
//! and growing its working corpus in `fuzz/corpus/TARGET`, which is not committed; a
//! crash leaves its input in `fuzz/artifacts/TARGET/`.
//!
//! `--smoke` is the short run CI makes (`--time` defaults to 8 there): every target,
//! without a sanitizer (the targets' code is safe Rust; the sanitizer is for the long
//! campaigns), from the seeds into a throwaway corpus under the fuzz build's target
//! folder, so the clone stays clean. A crash fails the task. The build goes to
//! `$XTASK_FUZZ_TARGET_DIR` when set (CI keeps it between runs, like a CI cache:
//! the instrumented build of every dependency is the slow part), else `fuzz/target`.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use crate::util::{cargo, run as run_command, workspace_root};

struct Options {
    seconds: Option<u64>,
    smoke: bool,
    targets: Vec<String>,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        seconds: None,
        smoke: false,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                let value = args
                    .next()
                    .ok_or("fuzz: --time needs a number of seconds")?;
                let seconds = value
                    .parse()
                    .map_err(|_| format!("fuzz: --time takes whole seconds, not `{value}`"))?;
                options.seconds = Some(seconds);
            }
            "--smoke" => options.smoke = true,
            flag if flag.starts_with('-') => return Err(format!("fuzz: unknown option `{flag}`")),
            target => options.targets.push(target.to_owned()),
        }
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let known = targets()?;
    if known.is_empty() {
        return Err("fuzz: no targets in fuzz/fuzz_targets".into());
    }
    if let Some(unknown) = options
        .targets
        .iter()
        .find(|target| !known.contains(target))
    {
        return Err(format!(
            "fuzz: no target `{unknown}` (targets: {})",
            known.join(", ")
        ));
    }
    let chosen = if options.targets.is_empty() {
        known
    } else {
        options.targets.clone()
    };
    let seconds = options
        .seconds
        .unwrap_or(if options.smoke { 8 } else { 60 });
    let fuzz_dir = workspace_root().join("fuzz");
    let target_dir = std::env::var_os("XTASK_FUZZ_TARGET_DIR")
        .map_or_else(|| fuzz_dir.join("target"), PathBuf::from);
    let sanitizer = if options.smoke { "none" } else { "address" };

    let started = Instant::now();
    let mut build = cargo();
    build
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--sanitizer", sanitizer, "--target-dir"])
        .arg(&target_dir);
    if options.targets.len() == 1 {
        build.args(&options.targets);
    }
    run_command(&mut build).map_err(|error| {
        format!("{error}\nfuzz: cargo-fuzz is needed: `cargo install cargo-fuzz --locked`")
    })?;
    println!(
        "fuzz: built {} target(s) in {:.0} s",
        chosen.len(),
        started.elapsed().as_secs_f64()
    );

    for target in &chosen {
        let corpus = if options.smoke {
            target_dir.join("smoke-corpus").join(target)
        } else {
            fuzz_dir.join("corpus").join(target)
        };
        if options.smoke {
            // Each smoke run starts from the committed seeds alone.
            let _ = fs::remove_dir_all(&corpus);
        }
        fs::create_dir_all(&corpus)
            .map_err(|error| format!("fuzz: creating {}: {error}", corpus.display()))?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let mut command = cargo();
        command
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", sanitizer, "--target-dir"])
            .arg(&target_dir)
            .arg(target)
            // libFuzzer writes new inputs into the first directory only.
            .arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
        ]);
        if options.smoke {
            // A crash input goes where CI's log names it, not into the clone.
            let artifacts = target_dir.join("smoke-artifacts").join(target);
            fs::create_dir_all(&artifacts)
                .map_err(|error| format!("fuzz: creating {}: {error}", artifacts.display()))?;
            command.arg(format!("-artifact_prefix={}/", artifacts.display()));
            command.arg("-print_final_stats=1");
        }
        run_command(&mut command)
            .map_err(|error| format!("fuzz: target `{target}` failed: {error}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn options() {
        let options = parse_options(&strings(&["--smoke", "--time", "5", "jwt_parse"])).unwrap();
        assert!(options.smoke);
        assert_eq!(options.seconds, Some(5));
        assert_eq!(options.targets, ["jwt_parse"]);
        assert!(parse_options(&strings(&["--time", "soon"])).is_err());
        assert!(parse_options(&strings(&["--fast"])).is_err());
    }

    #[test]
    fn every_target_has_seeds() {
        let seeds = workspace_root().join("fuzz").join("seeds");
        for target in targets().unwrap() {
            let dir = seeds.join(&target);
            let count = fs::read_dir(&dir).map_or(0, Iterator::count);
            assert!(count > 0, "fuzz/seeds/{target} has no seed inputs");
        }
    }
}
