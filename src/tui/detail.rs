//! What `Enter` shows: the focused pane's selected row whole, for the
//! detail popup ([`Detail`]). Rows in the panes are cut to fit their
//! column; here nothing is cut (the popup wraps and scrolls).

use super::app::{App, Detail, Pane};
use super::ui::{phase_reason, status_mark, verdict_mark};
use crate::units;
use jiff::Timestamp;

/// Seconds as people read a duration: `42 s`, `3 min 5 s`.
fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// A timestamp to the second in the cockpit's time zone, with the date
/// and the zone (`2026-11-23 15:04:05 CET`).
fn when(app: &App, t: Timestamp) -> String {
    t.to_zoned(app.time_zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// The detail of the focused pane's selected row, or `None` when the pane
/// has no rows (no release yet, no actions, no log lines).
///
/// - Pipeline: the selected step (plan steps, then rollback steps): its
///   status, times and whole detail, and why the release is paused,
///   waiting, rolling back or finished.
/// - Canary: the selected check's verdict, whole reason, query, condition,
///   values and request counts, and the error if any.
/// - Logs: the lines in view, whole, oldest first.
/// - Actions: the selected action's time, who, what and whole result.
pub fn for_focus(app: &App) -> Option<Detail> {
    match app.focus {
        Pane::Pipeline => step(app),
        Pane::Canary => check(app),
        Pane::Logs => logs(app),
        Pane::Runbook => action(app),
        Pane::Migrations | Pane::Containers => None,
    }
}

fn step(app: &App) -> Option<Detail> {
    let r = app.release.as_ref()?;
    let n = r.plan.steps.len();
    let i = app.selected_step;
    let (step, run, label) = if i < n {
        (
            r.plan.steps.get(i)?,
            r.steps.get(i)?,
            format!("step {}/{n}", i + 1),
        )
    } else {
        let j = i - n;
        (
            r.plan.rollback.get(j)?,
            r.rollback_steps.get(j)?,
            format!("rollback step {}/{}", j + 1, r.plan.rollback.len()),
        )
    };
    let (sym, word) = status_mark(run.status);
    let mut lines = vec![format!("{sym} {word}")];
    if let Some(s) = run.started_at {
        lines.push(format!("started {}", when(app, s)));
        let end = run.finished_at.unwrap_or(app.now);
        let ran = (end.as_millisecond() - s.as_millisecond()) as f64 / 1000.0;
        match run.finished_at {
            Some(e) => lines.push(format!(
                "finished {} (took {})",
                when(app, e),
                duration(ran)
            )),
            None => lines.push(format!("running for {}", duration(ran))),
        }
    }
    if run.attempts > 1 {
        lines.push(format!("attempts: {}", run.attempts));
    }
    lines.push(String::new());
    lines.push(if run.detail.is_empty() {
        "no detail yet".into()
    } else {
        run.detail.clone()
    });
    if let Some((why, _)) = phase_reason(app, r) {
        lines.push(String::new());
        lines.push(format!("release — {why}"));
    }
    Some(Detail::new(format!("{label}: {}", step.name), lines))
}

fn check(app: &App) -> Option<Detail> {
    let r = app.release.as_ref()?;
    let name = r.checks.keys().nth(app.shown_check())?;
    let run = &r.checks[name];
    let Some(v) = &run.last else {
        return Some(Detail::new(
            format!("check {}", r.check_label(name)),
            vec!["not evaluated yet".into()],
        ));
    };
    let (sym, word, _) = verdict_mark(app, Some((v.verdict, v.pending)));
    let unit = r.plan.checks.get(name).and_then(|d| d.unit);
    let num = |x: Option<f64>| x.map_or_else(|| "no data".into(), |x| units::value(x, unit));
    let mut lines = vec![
        format!("{sym} {word}"),
        v.reason.clone(),
        String::new(),
        format!("condition: {}", v.condition),
        format!("canary {}   baseline {}", num(v.canary), num(v.baseline)),
        format!(
            "requests in the window: {}",
            units::requests(v.requests.0, v.requests.1)
        ),
        format!(
            "passes this step: {}   inconclusive in a row: {}",
            run.passes, run.consecutive_inconclusive
        ),
    ];
    if let Some(e) = &v.error {
        lines.push(format!("no data: {e}"));
    }
    lines.push(String::new());
    lines.push("query:".into());
    lines.push(v.query.clone());
    Some(Detail::new(format!("check {}", r.check_label(name)), lines))
}

fn logs(app: &App) -> Option<Detail> {
    let logs = app.logs_mut();
    let lines: Vec<String> = logs
        .in_view()
        .into_iter()
        .map(|l| {
            format!(
                "{} {} {}: {}",
                app.clock_time(l.ts),
                l.level.as_str(),
                l.source.qualified(),
                l.text
            )
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(Detail::new("the log lines in view, whole", lines))
}

fn action(app: &App) -> Option<Detail> {
    let a = app.actions.iter().rev().nth(app.selected_action)?;
    let lines = vec![
        format!(
            "{} {}",
            if a.ok { "✓" } else { "✗" },
            if a.ok { "succeeded" } else { "failed" }
        ),
        format!("at {}", when(app, a.at)),
        format!("by {}", a.who),
        String::new(),
        a.detail.clone(),
    ];
    Some(Detail::new(format!("action {}", a.what), lines))
}
