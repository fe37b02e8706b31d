//! The Canary pane: one row per metric check (canary and baseline values,
//! the condition and the verdict, values in the check's unit), the
//! selected check's reason, and its time-series chart.
//!
//! The chart (ratatui `Chart`, braille) plots canary and baseline over the
//! check's analysis window (its `window`: now − window … now, the span
//! its verdicts are about, so every chart of a check spans the same
//! time whatever the number of evaluations kept), the limit the
//! canary must stay under (or above) as its own line, and each change of
//! traffic weight as a vertical mark; the y axis is in the check's unit.
//! Every series has its own marker, so a colourless theme (`mono`) still
//! tells them apart: canary `⣿` braille line, baseline `•` dots, limit `▀`
//! half blocks, traffic change `▄` column.

use super::app::{App, ChartPoint, Pane};
use super::ui::{block, countdown, fit, selectable, verdict_mark};
use crate::release::analysis::CheckDef;
use crate::units;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};

/// Rows the chart needs at least (plot and x-axis labels); below that it
/// is not drawn.
const MIN_CHART_H: u16 = 5;

/// Draws the Canary pane into `area`.
pub fn draw_canary(f: &mut Frame, app: &App, area: Rect) {
    let b = block(app, Pane::Canary, String::new());
    let inner = b.inner(area);
    f.render_widget(b, area);
    let Some(r) = &app.release else {
        f.render_widget(
            Paragraph::new(Line::styled("no release yet", app.theme.muted)),
            inner,
        );
        return;
    };
    let t = &app.theme;
    let names: Vec<&String> = r.checks.keys().collect();
    // Narrow: the condition moves to the detail below the table.
    let narrow = inner.width < 100;
    let spark_w: usize = if inner.width > 110 { 16 } else { 8 };
    let val_w = 9usize;
    let name_w = names
        .iter()
        .map(|n| r.check_label(n).chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 24);
    let cond_w =
        (inner.width as usize).saturating_sub(1 + name_w + 2 * val_w + 15 + 12 + spark_w + 6);
    let rows: Vec<Row> = names
        .iter()
        .map(|name| {
            let run = &r.checks[*name];
            let def = r.plan.checks.get(*name);
            let unit = def.and_then(|d| d.unit);
            let last = run.last.as_ref();
            let (sym, word, style) = match last {
                // The normal wait before the first data is not a warning.
                Some(v) if app.waiting_for_first_data(name, v) => ("·", "no data yet", t.muted),
                _ => verdict_mark(app, last.map(|v| (v.verdict, v.pending))),
            };
            let val = |x: Option<f64>| x.map_or_else(|| "–".into(), |x| units::value(x, unit));
            let points = app.series.get(*name);
            let c: Vec<Option<f64>> = points
                .map(|s| s.iter().map(|p| p.canary).collect())
                .unwrap_or_default();
            let (lo, hi) = bounds(points.into_iter().flatten(), None);
            let mut cells = vec![
                Cell::from(Span::styled(fit(r.check_label(name), name_w), t.text)),
                Cell::from(Span::styled(val(last.and_then(|v| v.canary)), t.canary)),
                Cell::from(Span::styled(val(last.and_then(|v| v.baseline)), t.baseline)),
            ];
            if !narrow {
                let cond = def.map(CheckDef::condition_text).unwrap_or_default();
                cells.push(Cell::from(Span::styled(fit(&cond, cond_w), t.muted)));
            }
            cells.push(Cell::from(Span::styled(format!("{sym} {word}"), style)));
            cells.push(Cell::from(Span::styled(countdown(app, name), t.warn)));
            cells.push(Cell::from(Span::styled(
                sparkline(&c, lo, hi, spark_w),
                t.canary,
            )));
            Row::new(cells)
        })
        .collect();
    let mut head = vec!["check", "canary", "baseline"];
    if !narrow {
        head.push("condition");
    }
    head.extend(["verdict", "for", "trend"]);
    let header = Row::new(head).style(t.muted.add_modifier(Modifier::UNDERLINED));
    let table_h = (names.len() as u16 + 1).min(inner.height);
    let [table_area, rest] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(0)]).areas(inner);
    let mut widths = vec![
        Constraint::Length(name_w as u16),
        Constraint::Length(val_w as u16),
        Constraint::Length(val_w as u16),
    ];
    if !narrow {
        widths.push(Constraint::Min(cond_w as u16));
    }
    widths.extend([
        Constraint::Length(15),
        Constraint::Length(12),
        Constraint::Length(spark_w as u16),
    ]);
    let mut state =
        TableState::default().with_selected((app.focus == Pane::Canary).then(|| app.shown_check()));
    f.render_stateful_widget(
        selectable(
            app,
            Table::new(rows, widths).header(header).column_spacing(1),
        ),
        table_area,
        &mut state,
    );
    if rest.height < 2 {
        return;
    }
    // The selected check: its reason, then its chart in the space left.
    let Some(name) = names.get(app.shown_check().min(names.len().saturating_sub(1))) else {
        return;
    };
    let def = r.plan.checks.get(*name);
    let run = &r.checks[*name];
    let mut lines = Vec::new();
    match &run.last {
        Some(v) => {
            let (_, _, style) = verdict_mark(app, Some((v.verdict, v.pending)));
            lines.push(Line::from(vec![
                Span::styled(format!("{}: ", r.check_label(name)), t.title),
                Span::styled(v.reason.clone(), style),
            ]));
            // A wrap breaks between the fields, never inside a label and
            // its value (no-break spaces).
            let field =
                |label: &str, value: String| format!("{label} {value}").replace(' ', "\u{a0}");
            lines.push(Line::styled(
                format!(
                    "condition {}   {}   {}   {}",
                    v.condition,
                    field(
                        "requests in the window",
                        units::requests(v.requests.0, v.requests.1)
                    ),
                    field("passes this step", run.passes.to_string()),
                    field("no data in a row", run.consecutive_inconclusive.to_string()),
                ),
                t.muted,
            ));
            // The query once, decoded, on its own line.
            lines.push(Line::styled(format!("query {}", v.query), t.muted));
            if let Some(e) = &v.error {
                lines.push(Line::styled(format!("no data: {e}"), t.warn));
            }
        }
        None => lines.push(Line::styled(
            format!("{}: not evaluated yet", r.check_label(name)),
            t.muted,
        )),
    }
    let w = rest.width.max(1) as usize;
    let text_h: u16 = lines
        .iter()
        .map(|l| l.width().div_ceil(w).max(1) as u16)
        .sum();
    // The chart gets what is left; the text gives way first on small screens.
    let chart_h = rest.height.saturating_sub(text_h + 1);
    let (text_h, chart_h) = if chart_h >= MIN_CHART_H {
        (text_h, chart_h)
    } else if rest.height >= MIN_CHART_H + 3 {
        (rest.height - MIN_CHART_H - 1, MIN_CHART_H)
    } else {
        (rest.height, 0)
    };
    let [text_area, legend_area, chart_area] = Layout::vertical([
        Constraint::Length(text_h),
        Constraint::Length(u16::from(chart_h > 0)),
        Constraint::Length(chart_h),
    ])
    .areas(rest);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text_area);
    if chart_h == 0 {
        return;
    }
    let points: Vec<ChartPoint> = app
        .series
        .get(*name)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    if let Some(def) = def {
        let window = chart_window(r.plan.window(name));
        draw_chart(f, app, def, window, &points, legend_area, chart_area);
    }
}

/// The effective limit on the canary at one point: the lowest upper limit
/// (`max`, baseline + `max_increase`, `max_ratio` × the baseline or its
/// floor) or, with none, the lower limit `min`.
fn limit_at(def: &CheckDef, baseline: Option<f64>) -> Option<f64> {
    let mut upper: Option<f64> = def.max;
    let mut lower = |v: f64| upper = Some(upper.map_or(v, |u| u.min(v)));
    if let (Some(inc), Some(b)) = (def.max_increase, baseline) {
        lower(b + inc);
    }
    if let (Some(ratio), Some(b)) = (def.max_ratio, baseline) {
        lower(ratio * def.min_baseline.map_or(b, |f| b.max(f)));
    }
    upper.or(def.min)
}

/// The chart's x span in seconds for a check whose analysis window is
/// `window`: the window itself; a check without one (zero: unknown to the
/// plan) gets the config default, 60 s.
pub fn chart_window(window: std::time::Duration) -> f64 {
    if window.is_zero() {
        60.0
    } else {
        window.as_secs_f64()
    }
}

/// The chart of one check: canary, baseline, limit and traffic changes over
/// its analysis window, `window_s` seconds before now to now (x: seconds
/// before now; y: the check's unit), with a one-line legend above it.
/// Points outside the window are not drawn.
fn draw_chart(
    f: &mut Frame,
    app: &App,
    def: &CheckDef,
    window_s: f64,
    kept: &[ChartPoint],
    legend_area: Rect,
    area: Rect,
) {
    let t = &app.theme;
    let x = |p: &ChartPoint| (p.at.as_millisecond() - app.now.as_millisecond()) as f64 / 1000.0;
    let x_lo = -window_s;
    let inside = |p: &ChartPoint| (x_lo..=0.0).contains(&x(p));
    let points: Vec<ChartPoint> = kept.iter().filter(|p| inside(p)).copied().collect();
    let points = points.as_slice();
    let series = |pick: fn(&ChartPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| pick(p).filter(|v| v.is_finite()).map(|v| (x(p), v)))
            .collect()
    };
    let canary = series(|p| p.canary);
    let baseline = series(|p| p.baseline);
    let limit: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| limit_at(def, p.baseline).map(|l| (x(p), l)))
        .collect();
    let (y_lo, y_hi) = bounds(points.iter(), limit_at(def, None).or(def.max));
    let y_hi = if y_hi > y_lo {
        y_hi + (y_hi - y_lo) * 0.1
    } else {
        y_lo + 1.0
    };
    let y_hi = y_hi.max(limit.iter().map(|(_, l)| *l).fold(y_hi, f64::max));
    // A flat limit line at the x range's ends when it does not depend on
    // the baseline (so it spans the chart even before the first point).
    let limit = if def.max_increase.is_none() && def.max_ratio.is_none() {
        limit_at(def, None).map_or_else(Vec::new, |l| vec![(x_lo, l), (0.0, l)])
    } else {
        limit
    };
    // A change whose first point at the new weight is in the window (the
    // point before it may be older).
    let changes: Vec<[(f64, f64); 2]> = kept
        .windows(2)
        .filter(|w| w[0].weight != w[1].weight && inside(&w[1]))
        .map(|w| [(x(&w[1]), y_lo), (x(&w[1]), y_hi)])
        .collect();
    let set = |marker, graph, style, data| {
        Dataset::default()
            .marker(marker)
            .graph_type(graph)
            .style(style)
            .data(data)
    };
    // Drawn in this order: the canary's line comes out on top.
    let mut sets: Vec<Dataset> = changes
        .iter()
        .map(|c| set(Marker::Bar, GraphType::Line, t.muted, c.as_slice()))
        .collect();
    sets.push(set(Marker::HalfBlock, GraphType::Line, t.warn, &limit));
    sets.push(set(Marker::Dot, GraphType::Scatter, t.baseline, &baseline));
    sets.push(set(Marker::Braille, GraphType::Line, t.canary, &canary));
    let y_label = |v: f64| Span::styled(units::value(v, def.unit), t.muted);
    // Axis labels to the second below ten minutes: `−1m33s`, `−46s`, `now`.
    let ago = |s: f64| {
        let s = (-s).round() as u64;
        match s {
            0 => "now".to_string(),
            1..60 => format!("−{s}s"),
            60..600 if s.is_multiple_of(60) => format!("−{}m", s / 60),
            60..600 => format!("−{}m{:02}s", s / 60, s % 60),
            _ => format!("−{}", units::short_duration(s as f64)),
        }
    };
    let chart = Chart::new(sets)
        .x_axis(Axis::default().bounds([x_lo, 0.0]).style(t.border).labels([
            Span::styled(ago(x_lo), t.muted),
            Span::styled(ago(x_lo / 2.0), t.muted),
            Span::styled(ago(0.0), t.muted),
        ]))
        .y_axis(
            Axis::default()
                .bounds([y_lo, y_hi])
                .style(t.border)
                .labels([y_label(y_lo), y_label((y_lo + y_hi) / 2.0), y_label(y_hi)]),
        )
        .legend_position(None);
    f.render_widget(chart, area);
    let mut legend = vec![
        Span::styled("⣿ canary", t.canary),
        Span::raw("  "),
        Span::styled("• baseline", t.baseline),
        Span::raw("  "),
    ];
    if let Some(l) =
        limit_at(def, None).filter(|_| def.max_increase.is_none() && def.max_ratio.is_none())
    {
        legend.push(Span::styled(
            format!("▀ limit {}", units::value(l, def.unit)),
            t.warn,
        ));
    } else if def.max_increase.is_some() || def.max_ratio.is_some() {
        legend.push(Span::styled("▀ limit (from the baseline)", t.warn));
    }
    if let Some(w) = kept.windows(2).rfind(|w| w[0].weight != w[1].weight) {
        legend.push(Span::raw("  "));
        legend.push(Span::styled(
            format!(
                "▄ traffic {}% → {}%, {} ago",
                w[0].weight,
                w[1].weight,
                units::short_duration(-x(&w[1]))
            ),
            t.muted,
        ));
    }
    f.render_widget(
        Paragraph::new(super::ui::fit_spans(legend, legend_area.width as usize)),
        legend_area,
    );
}

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of `values` scaled to `[lo, hi]`; gaps (no data) as space.
pub fn sparkline(values: &[Option<f64>], lo: f64, hi: f64, width: usize) -> String {
    let start = values.len().saturating_sub(width);
    values[start..]
        .iter()
        .map(|v| match v {
            Some(x) if x.is_finite() => {
                let r = if hi > lo {
                    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                SPARK[((r * 7.0).round() as usize).min(7)]
            }
            _ => ' ',
        })
        .collect()
}

/// The value range of both tracks (and `extra`, e.g. a limit), from 0 when
/// every value is positive; `(0, 0)` without any finite value.
fn bounds<'a>(points: impl Iterator<Item = &'a ChartPoint>, extra: Option<f64>) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for x in points
        .flat_map(|p| [p.canary, p.baseline])
        .chain([extra])
        .flatten()
    {
        if x.is_finite() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo.min(0.0), hi)
    }
}
