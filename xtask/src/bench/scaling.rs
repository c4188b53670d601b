//! `cargo xtask bench scaling`: how cost grows with the number of keys.
//!
//! Runs `benches/benches/scaling.rs` (one rate-limit check and one API-key verification
//! among N keys, N from 1 to 1 000 000, in memory), reads criterion's median estimates
//! and the memory file the bench writes, then draws docs/bench-scaling.svg and rewrites
//! the table between the scaling markers of docs/BENCHMARKS.md. `--report-only` skips
//! the run and uses the estimates already in `target/criterion/`.

use std::fs;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::util::{cargo, run as run_command, workspace_root};

const BEGIN: &str = "<!-- xtask-bench-scaling:begin -->";
const END: &str = "<!-- xtask-bench-scaling:end -->";
const COMMAND: &str = "cargo xtask bench scaling";
const SIZES: [u64; 4] = [1, 1_000, 100_000, 1_000_000];
const MEMORY_FILE: &str = "bench-scaling-memory.json";

/// One measured operation: criterion group and function name, and what to call it.
struct Operation {
    group: &'static str,
    function: &'static str,
    label: &'static str,
    colour: RGBColor,
}

const OPERATIONS: [Operation; 3] = [
    Operation {
        group: "scaling_ratelimit_check",
        function: "ratelimit_check",
        label: "rate-limit check (per-minute window)",
        colour: RGBColor(31, 119, 180),
    },
    Operation {
        group: "scaling_apikey_verify",
        function: "apikey_verify",
        label: "API-key verify, cache holds every key",
        colour: RGBColor(255, 127, 14),
    },
    Operation {
        group: "scaling_apikey_verify_default_cache",
        function: "apikey_verify_default_cache",
        label: "API-key verify, default cache (10 000 keys)",
        colour: RGBColor(44, 160, 44),
    },
];

/// One line of the chart and one column of the table: median ns per N (`None` when not
/// measured).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) label: &'static str,
    colour: RGBColor,
    pub(crate) points: Vec<(u64, Option<f64>)>,
}

/// When and where the run happened, for the note under the table.
pub(crate) struct RunInfo {
    pub(crate) date: String,
    pub(crate) load_average: Option<String>,
    /// Resident bytes added by populating the largest N, per operation name.
    pub(crate) memory: Vec<(String, u64)>,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let report_only = args.iter().any(|arg| arg == "--report-only");
    if let Some(unknown) = args.iter().find(|arg| *arg != "--report-only") {
        return Err(format!(
            "bench scaling: unknown option `{unknown}` (usage: cargo xtask bench scaling [--report-only])"
        ));
    }
    let root = workspace_root();
    if !report_only {
        run_command(cargo().args([
            "bench",
            "-p",
            "palisade-benches",
            "--features",
            "apikey,ratelimit",
            "--bench",
            "scaling",
        ]))?;
    }
    let target = root.join("target");
    let series = collect(&target.join("criterion"))?;
    if series
        .iter()
        .all(|s| s.points.iter().all(|(_, v)| v.is_none()))
    {
        return Err(
            "bench scaling: no estimates in target/criterion/scaling_*; run without --report-only"
                .into(),
        );
    }
    let info = RunInfo {
        date: crate::e2e::utc_now(),
        load_average: crate::e2e::load_average(),
        memory: read_memory(&target.join("tmp").join(MEMORY_FILE)),
    };

    let svg_path = root.join("docs").join("bench-scaling.svg");
    fs::write(&svg_path, render_svg(&series)?)
        .map_err(|error| format!("bench scaling: writing {}: {error}", svg_path.display()))?;
    let doc_path = root.join("docs").join("BENCHMARKS.md");
    let doc = fs::read_to_string(&doc_path)
        .map_err(|error| format!("bench scaling: reading {}: {error}", doc_path.display()))?;
    let updated = replace_between(&doc, &render_table(&series, &info))?;
    fs::write(&doc_path, updated)
        .map_err(|error| format!("bench scaling: writing {}: {error}", doc_path.display()))?;
    eprintln!("bench scaling: docs/bench-scaling.svg and docs/BENCHMARKS.md written");
    Ok(())
}

/// Reads `<criterion>/<group>/<function>/<N>/new/estimates.json` for every operation
/// and N; a missing estimate stays `None`.
fn collect(criterion: &Path) -> Result<Vec<Series>, String> {
    OPERATIONS
        .iter()
        .map(|op| {
            let points = SIZES
                .iter()
                .map(|&n| {
                    let path = criterion
                        .join(op.group)
                        .join(op.function)
                        .join(n.to_string())
                        .join("new")
                        .join("estimates.json");
                    Ok((n, median(&path)?))
                })
                .collect::<Result<_, String>>()?;
            Ok(Series {
                label: op.label,
                colour: op.colour,
                points,
            })
        })
        .collect()
}

/// The median point estimate in nanoseconds; `None` when the file does not exist.
fn median(path: &Path) -> Result<Option<f64>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(path)
        .map_err(|error| format!("bench scaling: reading {}: {error}", path.display()))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|error| format!("bench scaling: {}: {error}", path.display()))?;
    Ok(json["median"]["point_estimate"].as_f64())
}

/// The bench's `{"keys": N, "rss_bytes": {"name": bytes, ...}}`; empty when absent.
fn read_memory(path: &Path) -> Vec<(String, u64)> {
    let Some(json) = fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    else {
        return Vec::new();
    };
    json["rss_bytes"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(name, bytes)| Some((name.clone(), bytes.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn keys_label(n: u64) -> String {
    match n {
        1_000_000 => "1 000 000".into(),
        100_000 => "100 000".into(),
        1_000 => "1 000".into(),
        other => other.to_string(),
    }
}

pub(crate) fn render_table(series: &[Series], info: &RunInfo) -> String {
    let mut table = String::from("| keys |");
    let mut rule = String::from("|---:|");
    for s in series {
        table.push_str(&format!(" {} |", s.label));
        rule.push_str("---:|");
    }
    table.push('\n');
    table.push_str(&rule);
    table.push('\n');
    for (row, &n) in SIZES.iter().enumerate() {
        table.push_str(&format!("| {} |", keys_label(n)));
        for s in series {
            let cell = s
                .points
                .get(row)
                .and_then(|(_, v)| *v)
                .map_or_else(|| "–".to_owned(), super::human);
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    table.push('\n');
    if !info.memory.is_empty() {
        let parts: Vec<String> = info
            .memory
            .iter()
            .map(|(name, bytes)| {
                format!(
                    "`{name}` {} MiB ({} bytes per key)",
                    bytes / (1 << 20),
                    bytes / 1_000_000
                )
            })
            .collect();
        table.push_str(&format!(
            "Resident memory added by populating 1 000 000 keys (VmRSS before and after): \
             {}. The API-key figure includes the raw keys the bench keeps and the last-used \
             buffer the first verifications fill (the bench never flushes it).\n\n",
            parts.join(", ")
        ));
    }
    let load = info
        .load_average
        .as_deref()
        .map_or_else(String::new, |load| {
            format!(", load average {load} at the end")
        });
    table.push_str(&format!(
        "Criterion medians per operation from `{COMMAND}` on {date} UTC (20 samples, 3 s \
         each){load}. The machine has 2 cores and is shared with other builds, so compare \
         the sizes with each other rather than with other machines. Chart: \
         [bench-scaling.svg](bench-scaling.svg).\n",
        date = info.date,
    ));
    table
}

fn replace_between(doc: &str, table: &str) -> Result<String, String> {
    let (head, rest) = doc
        .split_once(BEGIN)
        .ok_or("bench scaling: docs/BENCHMARKS.md lacks the scaling begin marker")?;
    let (_, tail) = rest
        .split_once(END)
        .ok_or("bench scaling: docs/BENCHMARKS.md lacks the scaling end marker")?;
    Ok(format!("{head}{BEGIN}\n{table}{END}{tail}"))
}

/// The chart as SVG text: ns per operation against N on a log axis, one line each.
pub(crate) fn render_svg(series: &[Series]) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, series).map_err(|error| format!("bench scaling: drawing the chart: {error}"))?;
    Ok(svg)
}

fn draw(svg: &mut String, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let measured = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v))
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let highest = measured().fold(1.0_f64, f64::max);
    let lowest = measured().fold(highest, f64::min);
    let root = SVGBackend::with_string(svg, (860, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cost per operation as the number of keys grows (in memory)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.5_f64..2_000_000.0).log_scale(),
            // Log scale on both axes: the operations span two orders of magnitude.
            (lowest * 0.6..highest * 1.6).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("keys holding state (log scale)")
        .y_desc("time per operation (log scale)")
        .x_label_formatter(&|v| {
            // The log axis puts its labels on powers of ten.
            let power = v.log10().round();
            if (v.log10() - power).abs() > 1e-6 {
                String::new()
            } else if power >= 6.0 {
                format!("{:.0}M", v / 1e6)
            } else if power >= 3.0 {
                format!("{:.0}k", v / 1e3)
            } else {
                format!("{v:.0}")
            }
        })
        .y_label_formatter(&|v| super::human(*v))
        .draw()?;
    for s in series {
        #[allow(clippy::cast_precision_loss, reason = "N is at most 10^6")]
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|(n, v)| Some((*n as f64, (*v)?)))
            .collect();
        let colour = s.colour;
        chart
            .draw_series(std::iter::once(PathElement::new(
                points.clone(),
                colour.stroke_width(2),
            )))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        chart.draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 4, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Series> {
        vec![
            Series {
                label: "rate-limit check",
                colour: BLUE,
                points: vec![
                    (1, Some(40.0)),
                    (1_000, Some(45.0)),
                    (100_000, Some(90.0)),
                    (1_000_000, Some(150.0)),
                ],
            },
            Series {
                label: "API-key verify",
                colour: RED,
                points: vec![
                    (1, Some(480.0)),
                    (1_000, Some(500.0)),
                    (100_000, None),
                    (1_000_000, Some(1_250.0)),
                ],
            },
        ]
    }

    fn info() -> RunInfo {
        RunInfo {
            date: "2026-11-28 01:00".into(),
            load_average: Some("3.10".into()),
            memory: vec![("ratelimit_check".into(), 150 * (1 << 20))],
        }
    }

    #[test]
    fn table_has_a_row_per_size_and_the_run_note() {
        let table = render_table(&series(), &info());
        assert!(
            table.starts_with("| keys | rate-limit check | API-key verify |\n|---:|---:|---:|\n")
        );
        assert!(table.contains("| 1 | 40.0 ns | 480.0 ns |\n"), "{table}");
        assert!(table.contains("| 100 000 | 90.0 ns | – |\n"), "{table}");
        assert!(
            table.contains("| 1 000 000 | 150.0 ns | 1.25 µs |\n"),
            "{table}"
        );
        assert!(table.contains("`ratelimit_check` 150 MiB (157 bytes per key)"));
        assert!(table.contains("`cargo xtask bench scaling` on 2026-11-28 01:00 UTC"));
        assert!(table.contains("load average 3.10"));
        assert!(table.contains("shared with other builds"));
    }

    #[test]
    fn table_replaces_only_the_scaling_part() {
        let doc = format!(
            "intro\n<!-- xtask-bench:begin -->\nkeep\n<!-- xtask-bench:end -->\n{BEGIN}\nold\n{END}\noutro\n"
        );
        let new = replace_between(&doc, "new\n").unwrap();
        assert_eq!(
            new,
            format!(
                "intro\n<!-- xtask-bench:begin -->\nkeep\n<!-- xtask-bench:end -->\n{BEGIN}\nnew\n{END}\noutro\n"
            )
        );
        assert!(replace_between("no markers", "new\n").is_err());
    }

    #[test]
    fn svg_has_every_line_point_and_axis() {
        let svg = render_svg(&series()).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "rate-limit check",
            "API-key verify",
            "time per operation (log scale)",
            "keys holding state (log scale)",
            "1M",
            "1k",
        ] {
            assert!(svg.contains(text), "missing `{text}`");
        }
        // Four points on the first line, three measured on the second.
        assert!(svg.matches("<circle").count() >= 7, "{svg}");
        // One line per series plus its legend swatch.
        assert!(svg.matches("<polyline").count() >= 4, "{svg}");
    }

    #[test]
    fn estimates_are_read_by_group_function_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let at = |group: &str, function: &str, n: u64| {
            dir.path()
                .join(group)
                .join(function)
                .join(n.to_string())
                .join("new")
        };
        let path = at("scaling_ratelimit_check", "ratelimit_check", 1_000);
        fs::create_dir_all(&path).unwrap();
        fs::write(
            path.join("estimates.json"),
            r#"{"mean":{"point_estimate":99.0},"median":{"point_estimate":42.5}}"#,
        )
        .unwrap();
        let series = collect(dir.path()).unwrap();
        assert_eq!(series.len(), OPERATIONS.len());
        assert_eq!(
            series[0].points,
            vec![
                (1, None),
                (1_000, Some(42.5)),
                (100_000, None),
                (1_000_000, None)
            ]
        );
        assert!(series[1].points.iter().all(|(_, v)| v.is_none()));

        let memory = dir.path().join(MEMORY_FILE);
        fs::write(
            &memory,
            r#"{"keys": 1000000, "rss_bytes": {"ratelimit_check": 123, "apikey_verify": 456}}"#,
        )
        .unwrap();
        let mut read = read_memory(&memory);
        read.sort();
        assert_eq!(
            read,
            vec![
                ("apikey_verify".to_owned(), 456),
                ("ratelimit_check".to_owned(), 123)
            ]
        );
        assert!(read_memory(&dir.path().join("absent.json")).is_empty());
    }
}
