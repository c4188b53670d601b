//! The SVG chart of docs/bench-e2e.svg: median throughput per configuration, the bare
//! service's bar beside Palisade's, with the ratio written above.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::ConfigResult;

const WIDTH: u32 = 860;
const HEIGHT: u32 = 440;
const BARE: RGBColor = RGBColor(160, 160, 160);
const PALISADE: RGBColor = RGBColor(31, 119, 180);

/// The chart as SVG text.
pub(crate) fn render_svg(results: &[ConfigResult]) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, results).map_err(|error| format!("bench e2e: drawing the chart: {error}"))?;
    Ok(svg)
}

fn draw(svg: &mut String, results: &[ConfigResult]) -> Result<(), Box<dyn std::error::Error>> {
    let summaries: Vec<_> = results.iter().map(ConfigResult::summary).collect();
    let highest = summaries
        .iter()
        .flat_map(|s| [s.bare_rps, s.palisade_rps])
        .filter(|v| v.is_finite())
        .fold(1.0_f64, f64::max);
    let count = results.len().max(1);
    #[allow(clippy::cast_precision_loss, reason = "a handful of configurations")]
    let width = count as f64;
    let centres: Vec<f64> = (0..count)
        .map(|i| {
            #[allow(clippy::cast_precision_loss, reason = "a handful of configurations")]
            let i = i as f64;
            i + 0.5
        })
        .collect();
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "GET /api/orders: median requests per second, bare axum vs Palisade",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..width, 0.0..highest * 1.18)?;
    // Category names under the bars (plotters' axis labels fall on its own key points).
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_desc("requests per second")
        .y_label_formatter(&|v| format!("{:.0}k", v / 1000.0))
        .draw()?;

    chart
        .draw_series(centres.iter().zip(&summaries).map(|(centre, s)| {
            Rectangle::new(
                [(centre - 0.38, 0.0), (centre - 0.02, s.bare_rps)],
                BARE.filled(),
            )
        }))?
        .label("bare axum service")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BARE.filled()));
    chart
        .draw_series(centres.iter().zip(&summaries).map(|(centre, s)| {
            Rectangle::new(
                [(centre + 0.02, 0.0), (centre + 0.38, s.palisade_rps)],
                PALISADE.filled(),
            )
        }))?
        .label("Palisade reference server")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], PALISADE.filled()));
    chart.draw_series(centres.iter().zip(&summaries).map(|(centre, s)| {
        Text::new(
            format!("{:.2}x", s.ratio),
            (centre + 0.06, s.palisade_rps + highest * 0.035),
            ("sans-serif", 14).into_font(),
        )
    }))?;
    let below =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (centre, result) in centres.iter().zip(results) {
        let (x, y) = chart.backend_coord(&(*centre, 0.0));
        root.draw(&Text::new(result.short, (x, y + 10), below.clone()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::wrk::WrkRun;

    fn run(rps: f64) -> WrkRun {
        WrkRun {
            requests: 1,
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            non_2xx: 0,
            socket_errors: 0,
            wrapped: 0,
        }
    }

    #[test]
    fn svg_names_every_configuration_and_ratio() {
        let results = vec![
            ConfigResult {
                name: "api-key",
                short: "API key",
                label: "",
                bare: vec![run(20_000.0)],
                palisade: vec![run(15_000.0)],
                bare_single: Vec::new(),
                palisade_single: Vec::new(),
            },
            ConfigResult {
                name: "tls",
                short: "TLS",
                label: "",
                bare: vec![run(12_000.0)],
                palisade: vec![run(6_000.0)],
                bare_single: Vec::new(),
                palisade_single: Vec::new(),
            },
        ];
        let svg = render_svg(&results).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "API key",
            "TLS",
            "0.75x",
            "0.50x",
            "bare axum service",
            "requests per second",
        ] {
            assert!(svg.contains(text), "missing `{text}`");
        }
        // Two bars per configuration plus the legend's two swatches.
        assert!(svg.matches("<rect").count() >= 6);
    }
}
