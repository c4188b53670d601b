//! `cargo xtask bench`: run every criterion benchmark and refresh docs/BENCHMARKS.md.
//!
//! The benches live in `benches/benches/`, one file per crate, each measuring Palisade
//! side by side with its best peer in the same run (ratios, not absolute times: these
//! machines are shared). This task runs them all, reads criterion's estimates from
//! `target/criterion/`, and rewrites the generated table between the markers in
//! docs/BENCHMARKS.md; the prose around the markers is kept. `bench e2e` (module
//! `e2e`) and `bench scaling` (cost as the number of keys grows, `bench/scaling.rs`) are
//! separate runs with their own sections.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::{cargo, run as run_command, workspace_root};

mod scaling;

const BEGIN: &str = "<!-- xtask-bench:begin -->";
const END: &str = "<!-- xtask-bench:end -->";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(("e2e", rest)) = args
        .split_first()
        .map(|(first, rest)| (first.as_str(), rest))
    {
        return crate::e2e::run(rest);
    }
    if let Some(("scaling", rest)) = args
        .split_first()
        .map(|(first, rest)| (first.as_str(), rest))
    {
        return scaling::run(rest);
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    if let Some(unknown) = args.iter().find(|arg| *arg != "--quick") {
        return Err(format!(
            "bench: unknown option `{unknown}` (usage: cargo xtask bench [--quick] | cargo xtask bench e2e [OPTIONS] | cargo xtask bench scaling [--report-only])"
        ));
    }
    let mut bench = cargo();
    // Only the criterion targets: the crate's lib and bins have libtest harnesses, which
    // refuse criterion's options.
    bench.args([
        "bench",
        "-p",
        "palisade-benches",
        "--all-features",
        "--bench",
        "*",
        "--",
    ]);
    if quick {
        bench.args(["--warm-up-time", "1", "--measurement-time", "2"]);
    }
    run_command(&mut bench)?;

    let root = workspace_root();
    let mut rows = Vec::new();
    collect(&root.join("target").join("criterion"), &mut rows)?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let table = render(&rows);
    let path = root.join("docs").join("BENCHMARKS.md");
    let doc = fs::read_to_string(&path)
        .map_err(|error| format!("bench: reading {}: {error}", path.display()))?;
    let updated = replace_between(&doc, &table)?;
    fs::write(&path, updated)
        .map_err(|error| format!("bench: writing {}: {error}", path.display()))?;
    eprintln!(
        "bench: {} results written to docs/BENCHMARKS.md",
        rows.len()
    );
    Ok(())
}

/// (full id, mean in nanoseconds, 95% interval low, high) for every benchmark found.
fn collect(dir: &Path, rows: &mut Vec<(String, f64, f64, f64)>) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("new").join("benchmark.json");
        let estimates = path.join("new").join("estimates.json");
        if benchmark.is_file() && estimates.is_file() {
            let id = read_json(&benchmark)?["full_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mean = &read_json(&estimates)?["mean"];
            let point = mean["point_estimate"].as_f64().unwrap_or(f64::NAN);
            let low = mean["confidence_interval"]["lower_bound"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let high = mean["confidence_interval"]["upper_bound"]
                .as_f64()
                .unwrap_or(f64::NAN);
            rows.push((id, point, low, high));
        } else {
            collect(&path, rows)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path)
        .map_err(|error| format!("bench: reading {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("bench: {}: {error}", path.display()))
}

fn render(rows: &[(String, f64, f64, f64)]) -> String {
    let mut table = String::from("| benchmark | mean | 95% interval |\n|---|---:|---:|\n");
    for (id, mean, low, high) in rows {
        table.push_str(&format!(
            "| `{id}` | {} | {} – {} |\n",
            human(*mean),
            human(*low),
            human(*high)
        ));
    }
    table
}

fn human(nanos: f64) -> String {
    if nanos >= 1e6 {
        format!("{:.2} ms", nanos / 1e6)
    } else if nanos >= 1e3 {
        format!("{:.2} µs", nanos / 1e3)
    } else {
        format!("{nanos:.1} ns")
    }
}

fn replace_between(doc: &str, table: &str) -> Result<String, String> {
    let (head, rest) = doc
        .split_once(BEGIN)
        .ok_or("bench: docs/BENCHMARKS.md lacks the begin marker")?;
    let (_, tail) = rest
        .split_once(END)
        .ok_or("bench: docs/BENCHMARKS.md lacks the end marker")?;
    Ok(format!("{head}{BEGIN}\n{table}{END}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_replaces_only_the_generated_part() {
        let doc = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        let table = render(&[("apikey/verify".into(), 512.0, 500.0, 530.0)]);
        let new = replace_between(&doc, &table).unwrap();
        assert!(new.starts_with("intro\n"));
        assert!(new.ends_with("outro\n"));
        assert!(new.contains("| `apikey/verify` | 512.0 ns | 500.0 ns – 530.0 ns |"));
        assert!(!new.contains("old"));
        assert!(replace_between("no markers", &table).is_err());
    }

    #[test]
    fn units_scale() {
        assert_eq!(human(12.34), "12.3 ns");
        assert_eq!(human(12_340.0), "12.34 µs");
        assert_eq!(human(12_340_000.0), "12.34 ms");
    }
}
