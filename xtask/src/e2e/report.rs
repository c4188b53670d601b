//! Summaries, goals, and the generated section of docs/BENCHMARKS.md.

use std::fmt::Write as _;

use super::wrk::WrkRun;

pub(crate) const BEGIN: &str = "<!-- xtask-bench-e2e:begin -->";
pub(crate) const END: &str = "<!-- xtask-bench-e2e:end -->";

/// The chart, next to BENCHMARKS.md.
pub(crate) const CHART_FILE: &str = "bench-e2e.svg";

/// The runs of one configuration.
#[derive(Clone, Debug)]
pub(crate) struct ConfigResult {
    /// Short name, as `--only` takes it (`api-key`).
    pub(crate) name: &'static str,
    /// Short label for the chart.
    pub(crate) short: &'static str,
    /// What the configuration measures, for the table.
    pub(crate) label: &'static str,
    /// The bare service's runs, in order.
    pub(crate) bare: Vec<WrkRun>,
    /// The reference server's runs, in order.
    pub(crate) palisade: Vec<WrkRun>,
    /// The bare service's single-connection (latency) runs.
    pub(crate) bare_single: Vec<WrkRun>,
    /// The reference server's single-connection (latency) runs.
    pub(crate) palisade_single: Vec<WrkRun>,
}

/// Medians of a configuration's rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub(crate) bare_rps: f64,
    pub(crate) palisade_rps: f64,
    /// Palisade's median throughput over the bare service's.
    pub(crate) ratio: f64,
    pub(crate) bare_p50: f64,
    pub(crate) palisade_p50: f64,
    pub(crate) bare_p99: f64,
    pub(crate) palisade_p99: f64,
    /// Palisade's median p99 minus the bare service's, in milliseconds.
    pub(crate) p99_added: f64,
    /// The same at one connection (no queueing): NaN without single-connection runs.
    pub(crate) single_bare_p50: f64,
    pub(crate) single_palisade_p50: f64,
    pub(crate) single_bare_p99: f64,
    pub(crate) single_palisade_p99: f64,
    pub(crate) single_p99_added: f64,
}

impl Summary {
    /// Whether single-connection runs were made.
    pub(crate) fn has_single(&self) -> bool {
        self.single_p99_added.is_finite()
    }

    /// The p99 latency Palisade adds: at one connection when measured there (the
    /// loaded runs' p99 is mostly queueing: connections / throughput), else loaded.
    pub(crate) fn added_latency(&self) -> f64 {
        if self.has_single() {
            self.single_p99_added
        } else {
            self.p99_added
        }
    }
}

impl ConfigResult {
    pub(crate) fn summary(&self) -> Summary {
        let of = |runs: &[WrkRun], field: fn(&WrkRun) -> f64| {
            median(&runs.iter().map(field).collect::<Vec<_>>())
        };
        let bare_rps = of(&self.bare, |run| run.rps);
        let palisade_rps = of(&self.palisade, |run| run.rps);
        let bare_p99 = of(&self.bare, |run| run.p99_ms);
        let palisade_p99 = of(&self.palisade, |run| run.p99_ms);
        let single_bare_p99 = of(&self.bare_single, |run| run.p99_ms);
        let single_palisade_p99 = of(&self.palisade_single, |run| run.p99_ms);
        Summary {
            bare_rps,
            palisade_rps,
            ratio: palisade_rps / bare_rps,
            bare_p50: of(&self.bare, |run| run.p50_ms),
            palisade_p50: of(&self.palisade, |run| run.p50_ms),
            bare_p99,
            palisade_p99,
            p99_added: palisade_p99 - bare_p99,
            single_bare_p50: of(&self.bare_single, |run| run.p50_ms),
            single_palisade_p50: of(&self.palisade_single, |run| run.p50_ms),
            single_bare_p99,
            single_palisade_p99,
            single_p99_added: single_palisade_p99 - single_bare_p99,
        }
    }
}

/// The median (mean of the middle two for an even count); NaN for no values.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A goal of issue 11.
pub(crate) struct Goal {
    pub(crate) config: &'static str,
    pub(crate) min_ratio: f64,
    pub(crate) max_p99_added_ms: Option<f64>,
}

pub(crate) const GOALS: [Goal; 3] = [
    Goal {
        config: "api-key",
        min_ratio: 0.70,
        max_p99_added_ms: Some(0.5),
    },
    Goal {
        config: "jwt",
        min_ratio: 0.60,
        max_p99_added_ms: None,
    },
    Goal {
        config: "redis",
        min_ratio: 0.50,
        max_p99_added_ms: None,
    },
];

/// One line per goal whose configuration ran: what it asks, what was measured, and
/// whether it is met.
pub(crate) fn verdicts(results: &[ConfigResult], connections: u32) -> Vec<(String, bool)> {
    let mut lines = Vec::new();
    for goal in &GOALS {
        let Some(result) = results.iter().find(|result| result.name == goal.config) else {
            continue;
        };
        let summary = result.summary();
        let mut asked = format!("{}: ratio ≥ {:.2}", result.short, goal.min_ratio);
        let mut met = summary.ratio >= goal.min_ratio;
        let mut measured = format!("{:.2}", summary.ratio);
        if let Some(limit) = goal.max_p99_added_ms {
            let at = if summary.has_single() {
                " (1 connection)"
            } else {
                ""
            };
            let _ = write!(asked, " and p99 added{at} < {limit} ms");
            met &= summary.added_latency() < limit;
            let _ = write!(
                measured,
                ", p99 added{at} {}",
                signed_ms(summary.added_latency())
            );
            if summary.has_single() {
                let _ = write!(
                    measured,
                    "; {} at {connections} connections",
                    signed_ms(summary.p99_added)
                );
            }
        }
        let word = if met { "met" } else { "**missed**" };
        lines.push((format!("{asked}: {word} ({measured})"), met));
    }
    lines
}

/// Where and how the numbers were taken.
#[derive(Clone, Debug)]
pub(crate) struct RunInfo {
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub(crate) date: String,
    /// The command as typed.
    pub(crate) command: String,
    pub(crate) cores: usize,
    pub(crate) cpu: String,
    pub(crate) kernel: String,
    pub(crate) wrk: String,
    pub(crate) threads: u32,
    pub(crate) connections: u32,
    pub(crate) seconds: u64,
    /// Length of the single-connection runs (0: none).
    pub(crate) single_seconds: u64,
    pub(crate) warmup: u64,
    pub(crate) rounds: usize,
    pub(crate) orders: usize,
    /// Size of the page both services answer.
    pub(crate) body_bytes: usize,
    /// Anything that disturbed the run (other builds, load).
    pub(crate) caveats: Vec<String>,
}

/// The CPU model of `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The generated section (without the markers).
pub(crate) fn render(info: &RunInfo, results: &[ConfigResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured on {} UTC with `{}`.\n",
        info.date, info.command
    );
    let _ = writeln!(
        out,
        "- Machine: {} cores, {}, Linux {}; {}.",
        info.cores, info.cpu, info.kernel, info.wrk
    );
    let _ = writeln!(
        out,
        "- Load: `wrk --latency -t {} -c {}` on the same machine, {} s per run, {} rounds per configuration alternating bare and Palisade (after a {} s warm-up of each); the figures are the medians of the rounds, the ratio is Palisade's median throughput over bare's; the p99 added column is Palisade's median p99 minus bare's.",
        info.threads, info.connections, info.seconds, info.rounds, info.warmup
    );
    let _ = writeln!(
        out,
        "- Work: `GET /api/orders` for a caller with {} orders: both services read them from SQLite with the same query and answer the same {}-byte JSON page (checked before measuring). The bare service is `benches/src/bin/bare_orders.rs` (axum on hyper-util, no security).",
        info.orders, info.body_bytes
    );
    for caveat in &info.caveats {
        let _ = writeln!(out, "- Caveat: {caveat}");
    }
    out.push('\n');
    out.push_str(&table(results));
    let _ = writeln!(
        out,
        "\n![Throughput per configuration, Palisade against the bare service]({CHART_FILE})\n"
    );
    if results.iter().any(|result| result.summary().has_single()) {
        let _ = writeln!(
            out,
            "Latency at one connection (`wrk -t 1 -c 1`, {} s per run, in every round): nothing queues, so the difference is the time Palisade adds to a request. At {} connections both services are saturated and p99 is mostly queueing (about connections / throughput).\n",
            info.single_seconds, info.connections
        );
        out.push_str(&single_table(results));
        out.push('\n');
    }
    let verdicts = verdicts(results, info.connections);
    if !verdicts.is_empty() {
        out.push_str("Goals of issue 11:\n\n");
        for (line, _) in &verdicts {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
    out.push_str("Requests per second of each round, bare / Palisade:\n\n");
    out.push_str("| configuration | rounds |\n|---|---|\n");
    for result in results {
        let rounds: Vec<String> = result
            .bare
            .iter()
            .zip(&result.palisade)
            .map(|(bare, palisade)| {
                format!("{} / {}", thousands(bare.rps), thousands(palisade.rps))
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", result.label, rounds.join("; "));
    }
    out
}

/// The summary table (also printed on the terminal).
pub(crate) fn table(results: &[ConfigResult]) -> String {
    let mut out = String::from(
        "| configuration | bare req/s | Palisade req/s | ratio | p50 bare / Palisade | p99 bare / Palisade | p99 added |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for result in results {
        let s = result.summary();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {} |",
            result.label,
            thousands(s.bare_rps),
            thousands(s.palisade_rps),
            s.ratio,
            s.bare_p50,
            s.palisade_p50,
            s.bare_p99,
            s.palisade_p99,
            signed_ms(s.p99_added),
        );
    }
    out
}

fn signed_ms(ms: f64) -> String {
    format!("{ms:+.2} ms")
}

/// The single-connection latency table.
pub(crate) fn single_table(results: &[ConfigResult]) -> String {
    let mut out = String::from(
        "| configuration | p50 bare / Palisade | p99 bare / Palisade | p50 added | p99 added |\n|---|---:|---:|---:|---:|\n",
    );
    for result in results {
        let s = result.summary();
        if !s.has_single() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {} | {} |",
            result.label,
            s.single_bare_p50,
            s.single_palisade_p50,
            s.single_bare_p99,
            s.single_palisade_p99,
            signed_ms(s.single_palisade_p50 - s.single_bare_p50),
            signed_ms(s.single_p99_added),
        );
    }
    out
}

/// A whole number with spaces between thousands (`21 837`).
pub(crate) fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// `doc` with the text between the markers replaced by `section`.
pub(crate) fn replace_section(doc: &str, section: &str) -> Result<String, String> {
    let (head, rest) = doc
        .split_once(BEGIN)
        .ok_or_else(|| format!("bench e2e: docs/BENCHMARKS.md lacks the marker {BEGIN}"))?;
    let (_, tail) = rest
        .split_once(END)
        .ok_or_else(|| format!("bench e2e: docs/BENCHMARKS.md lacks the marker {END}"))?;
    let mut section = section.to_owned();
    if !section.ends_with('\n') {
        section.push('\n');
    }
    Ok(format!("{head}{BEGIN}\n{section}{END}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rps: f64, p50: f64, p99: f64) -> WrkRun {
        WrkRun {
            requests: 1000,
            rps,
            p50_ms: p50,
            p99_ms: p99,
            non_2xx: 0,
            socket_errors: 0,
            wrapped: 0,
        }
    }

    fn results() -> Vec<ConfigResult> {
        vec![
            ConfigResult {
                name: "api-key",
                short: "API key",
                label: "API key + in-memory rate limit",
                bare: vec![
                    run(20_000.0, 2.0, 4.0),
                    run(22_000.0, 2.1, 4.2),
                    run(21_000.0, 1.9, 3.8),
                ],
                palisade: vec![
                    run(15_000.0, 2.8, 4.5),
                    run(16_000.0, 2.9, 4.4),
                    run(14_000.0, 3.0, 4.6),
                ],
                bare_single: Vec::new(),
                palisade_single: Vec::new(),
            },
            ConfigResult {
                name: "jwt",
                short: "JWT",
                label: "Bearer ES256 JWT",
                bare: vec![run(20_000.0, 2.0, 4.0), run(20_000.0, 2.0, 4.0)],
                palisade: vec![run(10_000.0, 4.0, 9.0), run(12_000.0, 4.0, 9.0)],
                bare_single: vec![run(3_000.0, 0.2, 0.4), run(3_000.0, 0.3, 0.5)],
                palisade_single: vec![run(2_000.0, 0.4, 0.7), run(2_000.0, 0.5, 0.9)],
            },
        ]
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summaries_use_medians() {
        let summary = results()[0].summary();
        assert_eq!(summary.bare_rps, 21_000.0);
        assert_eq!(summary.palisade_rps, 15_000.0);
        assert!((summary.ratio - 15.0 / 21.0).abs() < 1e-12);
        assert_eq!(summary.bare_p99, 4.0);
        assert_eq!(summary.palisade_p99, 4.5);
        assert!((summary.p99_added - 0.5).abs() < 1e-12);
    }

    #[test]
    fn goals_are_judged() {
        let judged = verdicts(&results(), 50);
        assert_eq!(judged.len(), 2, "redis did not run: no verdict");
        // 0.71 but p99 added exactly 0.5 ms: missed.
        assert!(!judged[0].1);
        assert!(judged[0].0.contains("ratio ≥ 0.70 and p99 added < 0.5 ms"));
        assert!(
            judged[0]
                .0
                .contains("**missed** (0.71, p99 added +0.50 ms)")
        );
        // 11 000 / 20 000 = 0.55 < 0.60.
        assert!(!judged[1].1);
        let mut better = results();
        better[1].palisade = vec![run(13_000.0, 3.0, 6.0)];
        assert!(verdicts(&better, 50)[1].1);
        assert!(verdicts(&better, 50)[1].0.ends_with("met (0.65)"));
        // With single-connection runs the latency goal is judged there.
        let mut quick = results();
        quick[0].bare_single = vec![run(3_000.0, 0.20, 0.40)];
        quick[0].palisade_single = vec![run(2_500.0, 0.30, 0.60)];
        quick[0].palisade = vec![run(16_000.0, 2.9, 9.0)];
        let judged = verdicts(&quick, 50);
        assert!(judged[0].1, "{}", judged[0].0);
        assert!(
            judged[0].0.contains("and p99 added (1 connection) < 0.5 ms: met (0.76, p99 added (1 connection) +0.20 ms; +5.00 ms at 50 connections)"),
            "{}",
            judged[0].0
        );
    }

    #[test]
    fn report_has_machine_command_table_chart_and_goals() {
        let info = RunInfo {
            date: "2026-11-28 00:10".into(),
            command: "cargo xtask bench e2e --duration 10".into(),
            cores: 2,
            cpu: "Test CPU @ 2.0GHz".into(),
            kernel: "6.1.0-test".into(),
            wrk: "wrk 4.1.0".into(),
            threads: 2,
            connections: 50,
            seconds: 10,
            single_seconds: 5,
            warmup: 2,
            rounds: 3,
            orders: 20,
            body_bytes: 5123,
            caveats: vec!["a release build ran on the other core".into()],
        };
        let text = render(&info, &results());
        for expected in [
            "Measured on 2026-11-28 00:10 UTC with `cargo xtask bench e2e --duration 10`.",
            "2 cores, Test CPU @ 2.0GHz, Linux 6.1.0-test; wrk 4.1.0.",
            "- Caveat: a release build ran on the other core",
            "| API key + in-memory rate limit | 21 000 | 15 000 | 0.71 | 2.00 / 2.90 ms | 4.00 / 4.50 ms | +0.50 ms |",
            "| Bearer ES256 JWT | 20 000 | 11 000 | 0.55 |",
            "](bench-e2e.svg)",
            "- JWT: ratio ≥ 0.60: **missed** (0.55)",
            "| API key + in-memory rate limit | 20 000 / 15 000; 22 000 / 16 000; 21 000 / 14 000 |",
            "5123-byte JSON page",
            "Latency at one connection (`wrk -t 1 -c 1`, 5 s per run",
            "| Bearer ES256 JWT | 0.250 / 0.450 ms | 0.450 / 0.800 ms | +0.20 ms | +0.35 ms |",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in\n{text}");
        }
        assert!(
            !text.contains("| API key + in-memory rate limit | 0."),
            "no single-connection row without single-connection runs"
        );
    }

    #[test]
    fn section_replacement_keeps_the_rest() {
        let doc = format!("intro\n{BEGIN}\nold table\n{END}\noutro\n");
        let new = replace_section(&doc, "new table").unwrap();
        assert_eq!(new, format!("intro\n{BEGIN}\nnew table\n{END}\noutro\n"));
        assert!(replace_section("no markers", "x").is_err());
        assert!(replace_section(&format!("{BEGIN} but no end"), "x").is_err());
    }

    #[test]
    fn machine_and_numbers() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert_eq!(thousands(21_837.46), "21 837");
        assert_eq!(thousands(999.6), "1 000");
        assert_eq!(thousands(1_234_567.0), "1 234 567");
        assert_eq!(thousands(-4_000.0), "-4 000");
        assert_eq!(thousands(f64::NAN), "-");
    }
}
