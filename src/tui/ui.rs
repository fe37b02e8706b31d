//! Drawing the cockpit. Pure: `draw(frame, &app)` reads the state and
//! writes cells, nothing else.
//!
//! Layout: header (2 rows), body, footer (1 row). At 120x30 and more all
//! five panes are visible; below that a tab bar and one pane at a time;
//! below 40x10 a single line says the terminal is too small.

use super::app::{App, Confirm, Detail, Pane, Popup, Role};
use super::clock;
use super::logs::{LogStyles, LogsView};
use crate::release::engine::{Phase, StepRun, StepStatus};
use crate::release::{Step, VerdictKind};
use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};

/// The smallest usable size.
pub const MIN_W: u16 = 40;
/// The smallest usable height.
pub const MIN_H: u16 = 10;

/// Whether all panes fit at once.
pub fn wide(area: Rect) -> bool {
    area.width >= 120 && area.height >= 30
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!("terminal too small ({}x{})", area.width, area.height);
        // One line when it fits; wrapped (never cut) on the tiniest screens.
        f.render_widget(
            Paragraph::new(msg)
                .style(app.theme.warn)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    if app.debug_view {
        draw_debug(f, app, body);
    } else if app.zoom {
        draw_pane(f, app, app.focus, body);
    } else if wide(area) {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
        // Containers: a strip as tall as its rows (at most half) above the
        // logs and the actions; not drawn without [sources.docker].
        let bottom = if app.shown(Pane::Containers) {
            let h = super::containers::wanted_height(app).min((bottom.height / 2).max(4));
            let [strip, rest] =
                Layout::vertical([Constraint::Length(h), Constraint::Min(1)]).areas(bottom);
            draw_pane(f, app, Pane::Containers, strip);
            rest
        } else {
            bottom
        };
        let [pipeline, canary] =
            Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(top);
        let [logs, side] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(bottom);
        draw_pane(f, app, Pane::Pipeline, pipeline);
        draw_pane(f, app, Pane::Canary, canary);
        draw_pane(f, app, Pane::Logs, logs);
        // An unconfigured pane is not drawn: the actions take its room.
        if app.shown(Pane::Migrations) {
            let [migrations, runbook] =
                Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(side);
            draw_pane(f, app, Pane::Migrations, migrations);
            draw_pane(f, app, Pane::Runbook, runbook);
        } else {
            draw_pane(f, app, Pane::Runbook, side);
        }
    } else {
        let [tabs, pane] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
        draw_tabs(f, app, tabs);
        draw_pane(f, app, app.focus, pane);
    }
    super::footer::draw(f, app, footer);
    if let Some(p) = &app.popup {
        draw_popup(f, app, p, area);
    }
}

fn age(now: Timestamp, t: Timestamp) -> f64 {
    ((now.as_millisecond() - t.as_millisecond()) as f64 / 1000.0).max(0.0)
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut l1 = vec![
        Span::styled(" rolldeck ", t.title),
        Span::styled(format!(" {} ", app.service), t.header),
    ];
    let env_word = if app.protected {
        let n = app.environment.to_lowercase();
        if n == "production" || n == "prod" {
            "PRODUCTION".to_string()
        } else {
            app.environment.to_uppercase()
        }
    } else {
        app.environment.clone()
    };
    l1.push(Span::raw(" "));
    l1.push(Span::styled(
        format!(" {env_word} "),
        if app.protected { t.danger_env } else { t.env },
    ));
    if let Some(clock) = app.incident_clock() {
        l1.push(Span::styled(
            format!(" ● {clock} "),
            t.danger_env.add_modifier(Modifier::BOLD),
        ));
    }
    let room = area.width as usize;
    if let Some(e) = &app.journal_error {
        l1.push(Span::styled(
            format!("  JOURNAL UNREADABLE: {e}"),
            t.crit.add_modifier(Modifier::BOLD),
        ));
    } else if let Some(r) = &app.release {
        // The release id is the first thing to go on a narrow screen.
        if room >= 120 {
            l1.push(Span::styled(format!("  {} ", r.id), t.muted));
        } else {
            l1.push(Span::raw(" "));
        }
        if let Some(v) = &r.version {
            l1.push(Span::styled(format!("v{v} "), t.text));
        }
        let (word, style) = match &r.phase {
            Phase::Running => ("RUNNING", t.ok),
            Phase::Paused { .. } => ("PAUSED", t.warn),
            Phase::WaitingApproval { .. } => ("WAITING APPROVAL", t.warn),
            Phase::RollingBack { .. } => ("ROLLING BACK", t.crit),
            Phase::Finished { outcome, .. } => match outcome {
                crate::release::Outcome::Promoted => ("PROMOTED", t.ok),
                crate::release::Outcome::RolledBack => ("ROLLED BACK", t.crit),
                crate::release::Outcome::Aborted => ("ABORTED", t.crit),
                crate::release::Outcome::Failed => ("ROLLBACK FAILED", t.crit),
            },
        };
        l1.push(Span::styled(
            format!(" {word} "),
            style.add_modifier(Modifier::BOLD),
        ));
    } else {
        l1.push(Span::styled("  no release", t.muted));
    }
    let role = match &app.role {
        Role::Observer(h) if app.driver_gone => Span::styled(
            match h {
                Some(h) => format!(
                    "  DRIVER GONE — {}@{} (pid {}) stopped; :takeover to drive",
                    h.user, h.host, h.pid
                ),
                None => "  DRIVER GONE — :takeover to drive".to_string(),
            },
            t.danger_env,
        ),
        Role::Attached(d) if app.driver_gone => Span::styled(
            format!("  DRIVER GONE — {d} was killed; :takeover resumes with a new one"),
            t.danger_env,
        ),
        Role::Attached(d) => Span::styled(format!("  ATTACHED — {d}"), t.muted),
        Role::Driver => Span::styled("  driver", t.muted),
        Role::Observer(Some(h)) => Span::styled(format!("  OBSERVER — driven by {h}"), t.warn),
        Role::Observer(None) => Span::styled("  OBSERVER", t.warn),
        Role::ReadOnly => Span::styled("  READ-ONLY", t.warn),
        Role::Idle => Span::styled("  IDLE — :start begins a release", t.muted),
    };
    if app.journal_error.is_none() {
        l1.push(role);
    }
    let l1 = fit_spans(l1, room);

    // Line 2: traffic weight bar and source dots.
    let weight = app.release.as_ref().map_or(0, |r| r.weight);
    let bar_w: usize = if area.width >= 120 { 30 } else { 16 };
    let canary_cells = (weight as usize * bar_w).div_ceil(100).min(bar_w);
    let mut l2 = vec![
        Span::styled(" baseline ", t.baseline),
        Span::styled(format!("{}%", 100 - weight), t.baseline),
        Span::raw(" "),
        Span::styled("█".repeat(bar_w - canary_cells), t.baseline),
        Span::styled("█".repeat(canary_cells), t.canary),
        Span::raw(" "),
        Span::styled(format!("{weight}% canary"), t.canary),
        Span::raw("  "),
    ];
    let mut used: usize = l2.iter().map(|s| s.content.chars().count()).sum();
    for d in &app.sources {
        let stale = d
            .last_ok
            .is_none_or(|at| age(app.now, at) > 3.0 * d.interval_s);
        let (dot, style) = if !d.ok {
            ("●", t.crit)
        } else if stale {
            ("●", t.muted)
        } else {
            ("●", t.ok)
        };
        let when = match d.last_ok {
            Some(at) if d.ok => clock::source_age(age(app.now, at), d.interval_s),
            _ => "down".into(),
        };
        let label = format!("{} {when}  ", d.name);
        let need = 1 + label.chars().count();
        if used + need > room {
            // Whole dots only: never a name cut in half.
            l2.push(Span::styled("+", t.muted));
            break;
        }
        used += need;
        l2.push(Span::styled(dot, style));
        l2.push(Span::styled(label, if d.ok { t.muted } else { t.crit }));
    }
    f.render_widget(Paragraph::new(vec![l1, Line::from(l2)]).style(t.text), area);
}

/// Keeps whole spans while they fit in `room` columns; a span that does not
/// fit is cut at a word boundary with `…`, and the rest dropped.
pub fn fit_spans(spans: Vec<Span<'_>>, room: usize) -> Line<'_> {
    let mut out = Vec::new();
    let mut used = 0;
    for sp in spans {
        let w = sp.content.chars().count();
        if used + w <= room {
            used += w;
            out.push(sp);
        } else {
            let cut = fit(&sp.content, room - used);
            if !cut.trim().is_empty() {
                out.push(Span::styled(cut, sp.style));
            }
            break;
        }
    }
    Line::from(out)
}

/// `text` cut to `width` columns at a word boundary, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let limit: String = text.chars().take(width.saturating_sub(1)).collect();
    let cut = match limit.rfind([' ', ',', ';', '(']) {
        Some(i) if i > 0 => limit[..i].trim_end().to_string(),
        _ => limit,
    };
    format!("{cut}…")
}

/// The tab bar (below 120x30): the drawn panes, then the unconfigured
/// ones, muted, saying what would configure them
/// (`3 Migrations — add [[sources.migrations]]`), shortened to fit, or
/// left out when even the shortest wording does not.
fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    let mut used = 0;
    let short = |p: Pane| match p {
        Pane::Migrations => "Migr.",
        Pane::Containers => "Cont.",
        _ => p.title(),
    };
    for p in app.shown_panes() {
        let title = if area.width < 70 { short(p) } else { p.title() };
        let style = if p == app.focus {
            app.theme.tab_active
        } else {
            app.theme.tab
        };
        let text = format!(" {} {title} ", p.index_1());
        used += text.chars().count() + 1;
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(" "));
    }
    let mut room = (area.width as usize).saturating_sub(used);
    for p in Pane::ALL.into_iter().filter(|p| !app.shown(*p)) {
        let how = p.configured_by().unwrap_or("not configured");
        let n = p.index_1();
        let short = short(p);
        // The longest wording that fits: never a cut key name. A pane
        // without room is left out (its digit key says why).
        let Some(text) = [
            format!(" {n} {} — {how} ", p.title()),
            format!(" {n} {short} — {how}"),
            format!(" {n} {short} {how}"),
            format!(" {n} {how}"),
        ]
        .into_iter()
        .find(|t| t.chars().count() <= room) else {
            continue;
        };
        room = room.saturating_sub(text.chars().count());
        spans.push(Span::styled(text, app.theme.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The bordered block of `pane` with its number and title (`extra` after
/// the title); the focused pane's border in the focus style.
pub(super) fn block<'a>(app: &App, pane: Pane, extra: String) -> Block<'a> {
    let focused = app.focus == pane;
    let n = pane.index_1();
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused {
            app.theme.border_focus
        } else {
            app.theme.border
        })
        .title(Span::styled(
            format!(" {n} {}{extra} ", pane.title()),
            app.theme.title,
        ))
}

trait PaneIndex {
    fn index_1(self) -> usize;
}
impl PaneIndex for Pane {
    fn index_1(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }
}

fn draw_pane(f: &mut Frame, app: &App, pane: Pane, area: Rect) {
    match pane {
        Pane::Pipeline => draw_pipeline(f, app, area),
        Pane::Canary => super::canary::draw_canary(f, app, area),
        Pane::Migrations => draw_migrations(f, app, area),
        Pane::Logs => {
            let t = &app.theme;
            let tags = super::containers::tag_styles(app);
            let mut logs = app.logs_mut();
            // Lines the tracing layer queued while the buffer was busy.
            logs.drain_pending();
            let view = LogsView {
                buffer: &logs,
                focused: app.focus == Pane::Logs,
                styles: LogStyles {
                    text: t.text,
                    muted: t.muted,
                    warn: t.warn,
                    crit: t.crit,
                    border: t.border,
                    border_focus: t.border_focus,
                    title: t.title,
                },
                time_zone: Some(&app.time_zone),
                container_tags: Some(&tags),
            };
            f.render_widget(view, area);
        }
        Pane::Runbook => super::runbook::draw(f, app, area),
        Pane::Containers => super::containers::draw(f, app, area),
    }
}

/// The Migrations pane: per source `current → head`, then the pending
/// migrations with their lint findings. A source down, dirty or failed is
/// in the danger colour (and says so in words); pending and multiple heads
/// in the warning colour; at head and clean in the ok colour.
fn draw_migrations(f: &mut Frame, app: &App, area: Rect) {
    use crate::migrations::Severity;
    let t = &app.theme;
    let r = |s: &str| app.redactor.redact(s);
    let mut lines: Vec<Line> = Vec::new();
    let Some(all) = &app.migrations else {
        let b = block(app, Pane::Migrations, String::new());
        let p = Paragraph::new(Line::styled("reading migration sources…", t.muted)).block(b);
        f.render_widget(p, area);
        return;
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut errors = 0;
    for s in all {
        let bad = !s.ok || s.dirty || !s.failed.is_empty();
        let clean = s.at_head_and_clean().is_ok();
        let (mark, style) = if bad {
            ("✗", t.crit.add_modifier(Modifier::BOLD))
        } else if s.directory_only {
            ("?", t.warn)
        } else if clean {
            ("✓", t.ok)
        } else {
            ("▲", t.warn)
        };
        let state = if !s.ok {
            "DOWN".to_string()
        } else if s.directory_only {
            "applied state unknown".to_string()
        } else if clean {
            "at head".to_string()
        } else {
            format!("{} pending", s.pending.len())
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} {} ", r(&s.name)), style),
            Span::styled(format!("({}) ", s.tool.as_str()), t.muted),
            Span::styled(
                format!("{} → {}  {state}", list(&s.current), list(&s.heads)),
                style,
            ),
        ]));
        if let Some(e) = &s.error {
            lines.push(Line::styled(format!("  DOWN: {}", r(e)), t.crit));
        }
        if s.directory_only {
            lines.push(Line::styled(
                "  directory only: no database is read, so every file is listed",
                t.warn,
            ));
        }
        if s.dirty || !s.failed.is_empty() {
            lines.push(Line::styled(
                format!(
                    "  DIRTY: a migration stopped half-way (failed: {}) — schema state unknown",
                    list(&s.failed)
                ),
                t.crit.add_modifier(Modifier::BOLD),
            ));
        }
        for w in &s.warnings {
            lines.push(Line::styled(format!("  ⚠ {}", r(w)), t.warn));
        }
        if !s.missing_files.is_empty() {
            lines.push(Line::styled(
                format!("  ⚠ applied but no file: {}", list(&s.missing_files)),
                t.warn,
            ));
        }
        for p in &s.pending {
            let file = std::path::Path::new(&p.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.file.clone());
            lines.push(Line::from(vec![
                Span::styled("  · ", t.muted),
                Span::styled(format!("{} ", p.revision), t.text),
                Span::styled(r(&file), t.muted),
            ]));
            for fd in &p.findings {
                let (sym, word, st) = match fd.severity {
                    Severity::Error => {
                        errors += 1;
                        ("✗", "error", t.crit)
                    }
                    Severity::Warning => ("!", "warn", t.warn),
                };
                let at = fd.line.map(|l| format!(":{l}")).unwrap_or_default();
                lines.push(Line::styled(
                    format!("      {sym} {word} {}{at} {}", fd.rule, r(&fd.message)),
                    st,
                ));
            }
        }
        // Applied destructive migrations: what a rollback does not undo.
        for p in &s.applied_destructive {
            let file = std::path::Path::new(&p.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.file.clone());
            let what: Vec<String> = p
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| {
                    format!(
                        "{}{}",
                        f.rule,
                        f.line.map(|l| format!(":{l}")).unwrap_or_default()
                    )
                })
                .collect();
            lines.push(Line::from(vec![
                Span::styled(format!("  applied {} ", p.revision), t.muted),
                Span::styled(r(&file), t.muted),
                Span::styled(
                    format!(
                        " ✗ {} — a rollback does not bring the data back",
                        what.join(", ")
                    ),
                    t.crit,
                ),
            ]));
        }
    }
    let extra = if errors > 0 {
        format!("  {errors} destructive")
    } else {
        String::new()
    };
    let b = block(app, Pane::Migrations, extra);
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(b);
    f.render_widget(p, area);
}

/// Symbol and word of a step status; symbols carry the meaning without colour.
pub fn status_mark(s: StepStatus) -> (&'static str, &'static str) {
    match s {
        StepStatus::Pending => ("·", "pending"),
        StepStatus::Running => ("▶", "running"),
        StepStatus::WaitingApproval => ("⏸", "waiting"),
        StepStatus::Passed => ("✓", "passed"),
        StepStatus::Failed => ("✗", "failed"),
        StepStatus::Skipped => ("»", "skipped"),
        StepStatus::Interrupted => ("!", "interrupted"),
    }
}

fn step_style(app: &App, s: StepStatus) -> Style {
    let t = &app.theme;
    match s {
        StepStatus::Pending | StepStatus::Skipped => t.muted,
        StepStatus::Running => t.text.add_modifier(Modifier::BOLD),
        StepStatus::WaitingApproval | StepStatus::Interrupted => t.warn,
        StepStatus::Passed => t.ok,
        StepStatus::Failed => t.crit,
    }
}

fn elapsed(app: &App, run: &StepRun) -> String {
    match (run.started_at, run.finished_at) {
        (Some(s), Some(e)) => clock::fixed(age(e, s)),
        (Some(s), None)
            if matches!(
                run.status,
                StepStatus::Running | StepStatus::WaitingApproval
            ) =>
        {
            clock::running(age(app.now, s))
        }
        _ => String::new(),
    }
}

fn step_rows<'a>(
    app: &App,
    steps: &'a [Step],
    runs: &'a [StepRun],
    prefix: &str,
    detail_w: usize,
) -> Vec<Row<'a>> {
    steps
        .iter()
        .zip(runs)
        .map(|(s, run)| {
            let (sym, word) = status_mark(run.status);
            let st = step_style(app, run.status);
            // The running step of a paused release is paused, not running.
            let (sym, word, st) = if run.status == StepStatus::Running
                && prefix.is_empty()
                && matches!(
                    app.release.as_ref().map(|r| &r.phase),
                    Some(Phase::Paused { .. })
                ) {
                ("⏸", "paused", app.theme.warn)
            } else {
                (sym, word, st)
            };
            Row::new(vec![
                Cell::from(Span::styled(
                    fit(&format!("{sym} {prefix}{}", s.name), 22),
                    st,
                )),
                Cell::from(Span::styled(word, st)),
                Cell::from(Span::styled(elapsed(app, run), app.theme.muted)),
                Cell::from(Span::styled(fit(&run.detail, detail_w), app.theme.muted)),
            ])
        })
        .collect()
}

fn draw_pipeline(f: &mut Frame, app: &App, area: Rect) {
    let Some(r) = &app.release else {
        f.render_widget(
            Paragraph::new(Line::styled("no release yet", app.theme.muted)).block(block(
                app,
                Pane::Pipeline,
                String::new(),
            )),
            area,
        );
        return;
    };
    // Progress in steps and time, never a percentage: the header's weight
    // bar is the only traffic figure.
    let extra = format!(" — {} · {}", r.plan.name, r.position_words(app.now));
    let detail_w = (area.width as usize).saturating_sub(2 + 1 + 22 + 12 + 5 + 3);
    let mut rows = step_rows(app, &r.plan.steps, &r.steps, "", detail_w);
    let rollback_started = r
        .rollback_steps
        .iter()
        .any(|s| s.status != StepStatus::Pending);
    // The selected row in table rows (the `rollback:` heading is a row).
    let mut selected = app.selected_step.min(r.plan.steps.len().saturating_sub(1));
    if rollback_started || matches!(r.phase, Phase::RollingBack { .. }) {
        rows.push(Row::new(vec![Cell::from(Span::styled(
            "rollback:",
            app.theme.crit,
        ))]));
        rows.extend(step_rows(
            app,
            &r.plan.rollback,
            &r.rollback_steps,
            "↩ ",
            detail_w,
        ));
        if app.selected_step >= r.plan.steps.len() {
            selected = (app.selected_step + 1).min(rows.len().saturating_sub(1));
        }
    }
    let why = phase_reason(app, r);
    let b = block(app, Pane::Pipeline, extra);
    let inner = b.inner(area);
    f.render_widget(b, area);
    // The reason wraps whole; the steps keep at least 3 rows (the
    // selection scrolls them) and the detail popup (Enter) has the rest.
    let why_h = match &why {
        Some((text, _)) => {
            let need = Paragraph::new(text.as_str())
                .wrap(Wrap { trim: true })
                .line_count(inner.width);
            (need as u16).min(inner.height.saturating_sub(3))
        }
        None => 0,
    };
    let [table_area, why_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(why_h)]).areas(inner);
    let widths = [
        Constraint::Length(22),
        Constraint::Length(12),
        Constraint::Length(5),
        Constraint::Min(10),
    ];
    let table = selectable(app, Table::new(rows, widths).column_spacing(1));
    let mut state =
        TableState::default().with_selected((app.focus == Pane::Pipeline).then_some(selected));
    f.render_stateful_widget(table, table_area, &mut state);
    if let Some((text, style)) = why {
        f.render_widget(
            Paragraph::new(Line::styled(text, style)).wrap(Wrap { trim: true }),
            why_area,
        );
    }
}

/// A table whose selected row is drawn in the theme's `selection` style
/// with a `▌` bar in a one-column gutter every row keeps, so the selection
/// shows in every theme, colourless ones included. Built-in themes draw
/// the selection reversed.
pub(super) fn selectable<'a>(app: &App, table: Table<'a>) -> Table<'a> {
    table
        .row_highlight_style(app.theme.selection)
        .highlight_symbol(Text::from("▌"))
        .highlight_spacing(HighlightSpacing::Always)
}

/// Why the release is not simply running, in words, with its style:
/// `paused: …`, `approval: … (a to approve)`, `rollback: …`, or the
/// outcome and its reason; `None` while running.
pub fn phase_reason(app: &App, r: &crate::release::engine::Release) -> Option<(String, Style)> {
    match &r.phase {
        Phase::Paused { reason, danger } => Some((
            format!("paused: {reason}"),
            // E.g. an action that ran unaudited: a danger, not a wait.
            if *danger {
                app.theme.crit
            } else {
                app.theme.warn
            },
        )),
        Phase::WaitingApproval { message } => Some((
            format!("approval: {message} (a to approve)"),
            app.theme.warn,
        )),
        Phase::RollingBack { reason } => {
            Some((crate::units::led("rollback", reason), app.theme.crit))
        }
        Phase::Finished { outcome, reason } => Some((
            crate::units::led(outcome.words(), reason),
            if *outcome == crate::release::Outcome::Promoted {
                app.theme.ok
            } else {
                app.theme.crit
            },
        )),
        Phase::Running => None,
    }
}

/// Verdict symbol, word and theme style; symbols carry the meaning without colour.
pub fn verdict_mark(
    app: &App,
    v: Option<(VerdictKind, bool)>,
) -> (&'static str, &'static str, Style) {
    let t = &app.theme;
    match v {
        None => ("·", "no data yet", t.muted),
        Some((_, true)) => ("…", "pending", t.warn),
        Some((VerdictKind::Pass, _)) => ("✓", "pass", t.ok),
        Some((VerdictKind::Fail, _)) => ("✗", "fail", t.crit),
        Some((VerdictKind::Inconclusive, _)) => ("?", "inconclusive", t.warn),
    }
}

/// The `for` countdown of a pending check: `fails in 23s`, else empty.
pub(super) fn countdown(app: &App, check: &str) -> String {
    let Some(r) = &app.release else {
        return String::new();
    };
    let last = r.checks.get(check).and_then(|c| c.last.as_ref());
    match (last, r.plan.checks.get(check)) {
        (Some(v), Some(d)) if v.pending => match v.violated_since {
            Some(since) => {
                let left = d.for_.as_secs_f64() - age(app.now, since);
                format!("fails in {}", clock::countdown(left))
            }
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// Everything on screen that depends on the clock, as text: running
/// steps' elapsed time, the ETA, source ages and staleness, `for`
/// countdowns. A tick redraws only when this changes, so an idle cockpit
/// writes next to nothing to the terminal.
pub fn clock_signature(app: &App) -> String {
    let mut sig = app.incident_clock().unwrap_or_default();
    if let Some(r) = &app.release {
        for run in r.steps.iter().chain(&r.rollback_steps) {
            sig.push_str(&elapsed(app, run));
            sig.push('|');
        }
        sig.push_str(&r.position_words(app.now));
        for name in r.checks.keys() {
            sig.push_str(&countdown(app, name));
            sig.push('|');
        }
    }
    if app.shown(Pane::Containers) {
        sig.push_str(&super::containers::clock_signature(app));
    }
    for d in &app.sources {
        if let Some(at) = d.last_ok {
            let a = age(app.now, at);
            sig.push_str(&clock::source_age(a, d.interval_s));
            sig.push(if a > 3.0 * d.interval_s { 's' } else { 'f' });
        }
        sig.push('|');
    }
    sig
}

/// When the next clock drawn changes (`None`: none is drawn): the
/// cockpit sleeps until then.
pub fn next_clock_change(app: &App) -> Option<Timestamp> {
    clock::next_change(app.now, clock_waits(app))
}

/// Seconds until each clock in [`clock_signature`] next changes (see
/// [`clock`] for the granularities). Keep the two in step: a clock drawn
/// but missing here is redrawn late.
pub fn clock_waits(app: &App) -> Vec<f64> {
    let mut waits: Vec<f64> = app.incident_clock_wait().into_iter().collect();
    if let Some(r) = &app.release {
        for run in r.steps.iter().chain(&r.rollback_steps) {
            if run.finished_at.is_none()
                && matches!(
                    run.status,
                    StepStatus::Running | StepStatus::WaitingApproval
                )
                && let Some(s) = run.started_at
            {
                waits.push(clock::running_next(age(app.now, s)));
            }
        }
        // The time left falls only while the current step has a deadline.
        if !r.is_finished()
            && r.steps
                .get(r.current)
                .and_then(|s| s.deadline)
                .is_some_and(|d| d > app.now)
        {
            waits.extend(clock::running_down_next(r.eta_s(app.now)));
        }
        for (name, run) in &r.checks {
            if let (Some(v), Some(d)) = (&run.last, r.plan.checks.get(name))
                && v.pending
                && let Some(since) = v.violated_since
            {
                waits.extend(clock::countdown_next(
                    d.for_.as_secs_f64() - age(app.now, since),
                ));
            }
        }
    }
    waits.extend(super::containers::clock_waits(app));
    for d in &app.sources {
        if let Some(at) = d.last_ok {
            let a = age(app.now, at);
            waits.push(clock::source_age_next(a, d.interval_s));
            let stale_in = 3.0 * d.interval_s - a;
            if stale_in >= 0.0 {
                waits.push(stale_in + 0.001);
            }
        }
    }
    waits
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The detail popup (`Enter`): the row's text whole, wrapped, scrolled by
/// `j`/`k`, PgUp/PgDn, `g`/`G`; the title says where the view is when the
/// text is longer than the popup.
fn draw_detail(f: &mut Frame, app: &App, d: &Detail, area: Rect) {
    let t = &app.theme;
    let w = area.width.saturating_sub(4).min(100);
    let lines: Vec<Line> = d
        .lines
        .iter()
        .map(|l| Line::styled(l.as_str(), t.text))
        .collect();
    let para = Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false });
    let total = para.line_count(w.saturating_sub(2));
    let room = usize::from(area.height.saturating_sub(4));
    let h = total.min(room) as u16 + 2;
    let max = total.saturating_sub(room.min(total));
    d.max_scroll.set(max);
    let scroll = d.scroll.min(max);
    let mut title = format!(" {} — Esc closes ", d.title);
    if max > 0 {
        title.push_str(&format!(
            "· j/k scroll · lines {}–{} of {total} ",
            scroll + 1,
            (scroll + room).min(total)
        ));
    }
    let rect = centered(area, w, h);
    f.render_widget(Clear, rect);
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border_focus)
        .title(Span::styled(title, t.title))
        .style(t.popup);
    f.render_widget(
        para.scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(b),
        rect,
    );
}

/// The `:debug` view: rolldeck's own tracing as tui-logger records it
/// (targets `rolldeck::…` from debug, other crates from warn), with its
/// target list to change per target the level shown and the level
/// captured; the last row lists the view's keys.
fn draw_debug(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [view, keys] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let widget = tui_logger::TuiLoggerSmartWidget::default()
        .title_log(Span::styled(" debug: rolldeck's own tracing ", t.title))
        .title_target(Span::styled(" targets ", t.title))
        .border_style(t.border_focus)
        .style(t.text)
        .style_error(t.crit)
        .style_warn(t.warn)
        .style_info(t.text)
        .style_debug(t.muted)
        .style_trace(t.muted)
        .highlight_style(t.selection)
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".into()))
        .output_file(false)
        .output_line(false)
        .state(&app.debug_state);
    f.render_widget(widget, view);
    f.render_widget(
        Paragraph::new(fit_spans(
            vec![Span::styled(
                " ↑/↓ target  ←/→ level shown  -/+ level captured  PgUp/PgDn history  \
                 space hide off  t target list  f this target only  Esc close",
                t.muted,
            )],
            keys.width as usize,
        )),
        keys,
    );
}

fn draw_popup(f: &mut Frame, app: &App, p: &Popup, area: Rect) {
    if let Popup::Detail(d) = p {
        draw_detail(f, app, d, area);
        return;
    }
    let t = &app.theme;
    let (title, lines, w, h): (String, Vec<Line>, u16, u16) = match p {
        Popup::Help => return super::help::draw(f, app, area),
        Popup::Command(s) => command_lines(app, s),
        Popup::Filter(s) => (
            "filter logs (text, !invert, ~regex)".into(),
            vec![Line::from(format!("/{s}▏"))],
            60,
            3,
        ),
        Popup::Weight(s) => (
            "canary weight, percent 0–100".into(),
            vec![Line::from(format!("{s}▏ %"))],
            44,
            3,
        ),
        Popup::Quit => (
            "quit?".into(),
            vec![
                Line::from("A release is running under this cockpit."),
                Line::from("Quitting stops driving it and kills running actions:"),
                Line::styled(
                    app.release
                        .as_ref()
                        .map(crate::runtime::left_unwatched)
                        .unwrap_or_default(),
                    t.warn,
                ),
                Line::from("Exit code 6 (left unfinished).  Quit? y/N"),
                Line::from("d: detach instead — a background driver keeps driving and"),
                Line::from("watching it (exit 7; `rolldeck attach` returns to it)."),
            ],
            60,
            11,
        ),
        Popup::Confirm(c) => confirm_lines(app, c),
        Popup::Detail(_) => return,
    };
    let rect = centered(area, w.min(area.width.saturating_sub(2)), h);
    f.render_widget(Clear, rect);
    let dangerous = matches!(p, Popup::Confirm(c) if !c.down.is_empty() || matches!(
        c.intent,
        super::app::Intent::Command(crate::release::Command::Rollback | crate::release::Command::Abort)
    ));
    let style = if dangerous { t.crit } else { t.border_focus };
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(format!(" {title} "), t.title))
        .style(t.popup);
    f.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(b),
        rect,
    );
}

/// The `:` prompt: the line, then the Tab candidates for the word being
/// typed (or, once a command is typed, what its argument is).
fn command_lines<'a>(app: &App, s: &str) -> (String, Vec<Line<'a>>, u16, u16) {
    let t = &app.theme;
    let completion = super::command::complete_with(s, &app.plan_names(), &app.runbook_names());
    let word = s.split_whitespace().next().unwrap_or("").to_lowercase();
    let hint = match completion.candidates.as_slice() {
        [] => match super::command::usage(&word) {
            Some(u) if s.contains(char::is_whitespace) => Line::styled(u, t.muted),
            _ if s.trim().is_empty() => Line::raw(""),
            _ => Line::styled("no such command or argument (Tab completes)", t.warn),
        },
        many => Line::from(vec![
            Span::styled("Tab: ", t.muted),
            Span::styled(many.join("  "), t.text),
        ]),
    };
    (
        ":command — Tab completes".into(),
        vec![Line::from(format!(":{s}▏")), hint],
        72,
        4,
    )
}

fn confirm_lines<'a>(app: &App, c: &Confirm) -> (String, Vec<Line<'a>>, u16, u16) {
    let t = &app.theme;
    let mut lines = vec![Line::styled(
        c.title.clone(),
        t.text.add_modifier(Modifier::BOLD),
    )];
    if c.will_run.is_empty() {
        lines.push(Line::styled("runs no command by itself", t.muted));
    } else {
        // Commands are shown as a shell would run them; a plan as its steps.
        let (head, prefix) = match c.intent {
            super::app::Intent::Start(_) => ("the plan:", "  "),
            super::app::Intent::Command(_) | super::app::Intent::RunBlock(_) => {
                ("will run:", "  $ ")
            }
        };
        lines.push(Line::styled(head, t.muted));
        for w in &c.will_run {
            lines.push(Line::styled(format!("{prefix}{w}"), t.text));
        }
    }
    if !c.down.is_empty() {
        lines.push(Line::styled(
            format!(
                "DOWN — {} source(s) the plan needs; nothing would watch them:",
                c.down.len()
            ),
            t.crit.add_modifier(Modifier::BOLD),
        ));
        for d in &c.down {
            lines.push(Line::styled(format!("  ✗ {d}"), t.crit));
        }
    }
    lines.push(Line::raw(""));
    if let Some(name) = &c.type_to_confirm {
        let cur = if c.field == 0 { "▏" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("type `{name}` to confirm: "), t.danger_env),
            Span::raw(format!("{}{cur}", c.typed)),
        ]));
    }
    let cur = if c.type_to_confirm.is_none() || c.field == 1 {
        "▏"
    } else {
        ""
    };
    lines.push(Line::from(vec![
        Span::styled("reason (audit log, optional): ", t.muted),
        Span::raw(format!("{}{cur}", c.reason)),
    ]));
    lines.push(Line::styled(
        if c.type_to_confirm.is_some() {
            "Enter confirm · Tab next field · Esc cancel"
        } else {
            "Enter confirm · Esc cancel"
        },
        t.muted,
    ));
    let h = lines.len() as u16
        + 2
        + c.will_run
            .iter()
            .chain(&c.down)
            .filter(|w| w.len() > 70)
            .count() as u16;
    ("confirm".into(), lines, 84, h)
}
