//! The Containers pane (`6`): the containers `[sources.docker]` selects,
//! one row each — mark, track, name, image:tag, state (with the exit code),
//! health (with the failing streak), restarts, uptime.
//!
//! * **Fed by the event stream.** The cockpit's [`crate::docker::DockerWatch`]
//!   sends a [`crate::docker::WatchView`] each time its state changes (a
//!   container started, died, turned unhealthy …), so a container that dies
//!   shows at once, not at the next periodic list.
//! * **Colours.** A canary that exited, is dead or unhealthy is in the
//!   danger colour, as is a down engine; a baseline that stopped, a health
//!   check still `starting`, a restarting container and any restarts are in
//!   the warning colour; a running container whose health check passes (or
//!   that has none) in the ok colour. A mark carries the same meaning
//!   without colour: `✓` running, `…` starting, `▲` other, `✗` stopped or
//!   unhealthy.
//! * **Logs.** `Enter` on a container shows only its lines in the Logs pane
//!   (`Enter` again or `Esc` shows every line again); each container's log
//!   tag has its own colour ([`tag_styles`]), also used for its name here.
//! * **Hidden when not configured**, like the Migrations pane: without
//!   `[sources.docker]` the pane is not drawn, and its tab (when there is
//!   room) and the `6` key say `add [sources.docker]`.
//!
//! Layout: a strip across the bottom row above the Logs and Actions panes at
//! 120x30 and more (as tall as its rows, at most half of that row); its own
//! tab below. Below 110 columns the image column narrows and the failing
//! streak reads `unhealthy (3)` instead of `unhealthy, 3 failed`.

use super::app::{App, Pane};
use super::clock;
use super::ui::{block, fit, selectable};
use crate::docker::ContainerInfo;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use std::collections::BTreeMap;
use unicode_width::UnicodeWidthStr as _;

/// The colours given to containers' log tags, in the pane's order.
const TAG_COLOURS: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::LightGreen,
    Color::LightRed,
];

/// The style of each container's log tag and name, by name: one colour
/// per container in the pane's order (cycling after six); every tag
/// `muted` in a monochrome theme (the name tells them apart there).
pub fn tag_styles(app: &App) -> BTreeMap<String, Style> {
    app.containers
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let style = if app.theme.monochrome {
                app.theme.muted
            } else {
                Style::new().fg(TAG_COLOURS[i % TAG_COLOURS.len()])
            };
            (c.name.clone(), style)
        })
        .collect()
}

/// Rows the pane would like in the wide layout: borders, the header, one
/// row per container (at least one: the state line), and a line for a
/// down or stale source.
pub fn wanted_height(app: &App) -> u16 {
    let rows = app.containers.containers.len().max(1) + usize::from(status_line(app).is_some());
    u16::try_from(rows + 3).unwrap_or(u16::MAX)
}

/// Whether the list is older than the watcher's staleness limit (no
/// periodic read confirmed it for 3 × `interval`).
fn stale(app: &App) -> bool {
    let v = &app.containers;
    matches!(v.conn, Some(Ok(_)))
        && v.confirmed.is_some_and(|t| {
            (app.now.as_millisecond() - t.as_millisecond()) as u128 > v.stale_after.as_millis()
        })
}

/// The line above the rows when the source is not simply up: connecting,
/// down with the reason (danger), or stale (warning).
fn status_line(app: &App) -> Option<(String, Style)> {
    let t = &app.theme;
    let v = &app.containers;
    match &v.conn {
        None => Some(("connecting to the Docker Engine…".into(), t.muted)),
        Some(Err(e)) => Some((
            format!(
                "✗ Docker DOWN: {}{}",
                app.redactor.redact(e),
                if v.containers.is_empty() {
                    ""
                } else {
                    " — rows below are the last known state"
                }
            ),
            t.crit,
        )),
        Some(Ok(_)) if stale(app) => Some((
            format!(
                "▲ stale: the engine last confirmed this list at {}",
                v.confirmed.map_or_else(String::new, |c| app.clock_time(c))
            ),
            t.warn,
        )),
        Some(Ok(_)) => None,
    }
}

/// Seconds since `c` started, while it runs.
fn uptime(app: &App, c: &ContainerInfo) -> Option<f64> {
    c.uptime_s(app.now).map(|s| s as f64)
}

/// The pane's clock-dependent text (uptimes at [`clock::running`]
/// granularity, staleness), for [`super::ui::clock_signature`].
pub fn clock_signature(app: &App) -> String {
    let mut sig: String = app
        .containers
        .containers
        .iter()
        .map(|c| uptime(app, c).map_or_else(String::new, clock::running) + "|")
        .collect();
    sig.push(if stale(app) { 's' } else { 'f' });
    sig
}

/// Seconds until the pane's clocks next change, for
/// [`super::ui::clock_waits`].
pub fn clock_waits(app: &App) -> Vec<f64> {
    if !app.shown(Pane::Containers) {
        return Vec::new();
    }
    let mut waits: Vec<f64> = app
        .containers
        .containers
        .iter()
        .filter_map(|c| uptime(app, c))
        .map(clock::running_next)
        .collect();
    let v = &app.containers;
    if let (Some(Ok(_)), Some(t)) = (&v.conn, v.confirmed) {
        let age = (app.now.as_millisecond() - t.as_millisecond()) as f64 / 1000.0;
        let left = v.stale_after.as_secs_f64() - age;
        if left >= 0.0 {
            waits.push(left + 0.001);
        }
    }
    waits
}

/// Mark, state words and style of one container (see the module docs).
fn judge(app: &App, c: &ContainerInfo) -> (&'static str, Style) {
    let t = &app.theme;
    let canary = c.track == "canary";
    if c.stopped() || c.health.as_deref() == Some("unhealthy") {
        ("✗", if canary { t.crit } else { t.warn })
    } else if c.starting() {
        ("…", t.warn)
    } else if c.state == "running" {
        ("✓", if c.restarts > 0 { t.warn } else { t.ok })
    } else {
        ("▲", t.warn)
    }
}

/// Draws the pane in `area`.
pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let v = &app.containers;
    let list = &v.containers;
    let shown_logs = match app.logs_mut().source() {
        Some(crate::tui::logs::LogSource::Container(n)) => Some(n.clone()),
        _ => None,
    };
    let mut extra = String::new();
    if matches!(v.conn, Some(Ok(_))) {
        let running = list.iter().filter(|c| c.state == "running").count();
        extra.push_str(&format!(" — {running}/{} running", list.len()));
        if v.over_cap > 0 {
            extra.push_str(&format!(", {} more not read (max_containers)", v.over_cap));
        }
    } else if matches!(v.conn, Some(Err(_))) {
        extra.push_str(" — DOWN");
    }
    if let Some(n) = &shown_logs {
        extra.push_str(&format!(" · logs: {n}"));
    }
    let b = block(app, Pane::Containers, extra);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let status = status_line(app);
    let [line, table] = Layout::vertical([
        Constraint::Length(u16::from(status.is_some())),
        Constraint::Min(0),
    ])
    .areas(inner);
    if let Some((text, style)) = &status {
        f.render_widget(
            Paragraph::new(Line::styled(fit(text, line.width as usize), *style)),
            line,
        );
    }
    if list.is_empty() {
        if matches!(v.conn, Some(Ok(_))) {
            f.render_widget(
                Paragraph::new(Line::styled(
                    "no container matches the baseline or canary selector of [sources.docker]",
                    t.muted,
                )),
                table,
            );
        }
        return;
    }
    let narrow = table.width < 110;
    let widths = [
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Fill(3),
        Constraint::Fill(if narrow { 2 } else { 3 }),
        Constraint::Length(if narrow { 10 } else { 14 }),
        Constraint::Length(if narrow { 13 } else { 20 }),
        Constraint::Length(if narrow { 3 } else { 8 }),
        Constraint::Length(6),
    ];
    // The columns' widths as the table will lay them out (after the
    // selection bar), so that a cut name or image ends in `…`, never
    // silently (`checkout:2.4` for `checkout:2.4.1`).
    let cols = Layout::horizontal(widths).spacing(1).split(Rect {
        width: table.width.saturating_sub(2),
        ..table
    });
    let (name_w, image_w) = (cols[2].width as usize, cols[3].width as usize);
    let tags = tag_styles(app);
    let down = !matches!(v.conn, Some(Ok(_))) || stale(app);
    let rows: Vec<Row> = list
        .iter()
        .map(|c| {
            let (mark, style) = judge(app, c);
            let style = if down { t.muted } else { style };
            let state = match c.exit_code {
                Some(code) if c.stopped() => format!("{} {code}", c.state),
                _ => c.state.clone(),
            };
            let health = match c.health.as_deref() {
                None => "—".to_string(),
                Some(h) if c.failing_streak > 0 && narrow => format!("{h} ({})", c.failing_streak),
                Some(h) if c.failing_streak > 0 => format!("{h}, {} failed", c.failing_streak),
                Some(h) => h.to_string(),
            };
            let name_style = if down {
                t.muted
            } else {
                tags.get(&c.name).copied().unwrap_or(t.text)
            };
            let name = if shown_logs.as_deref() == Some(c.name.as_str()) {
                format!("{} ≡", fit_tail(&c.name, name_w.saturating_sub(2)))
            } else {
                fit_tail(&c.name, name_w)
            };
            Row::new(vec![
                Cell::from(Span::styled(mark, style)),
                Cell::from(Span::styled(
                    c.track.clone(),
                    if c.track == "canary" {
                        t.canary
                    } else {
                        t.baseline
                    },
                )),
                Cell::from(Span::styled(name, name_style)),
                Cell::from(Span::styled(fit_tail(&c.image, image_w), t.muted)),
                Cell::from(Span::styled(state, style)),
                Cell::from(Span::styled(
                    health,
                    if c.health.is_none() { t.muted } else { style },
                )),
                Cell::from(Span::styled(
                    c.restarts.to_string(),
                    if c.restarts > 0 { t.warn } else { t.muted },
                )),
                Cell::from(Span::styled(
                    uptime(app, c).map_or_else(|| "—".into(), clock::running),
                    t.muted,
                )),
            ])
        })
        .collect();
    let head = |s: &'static str| Cell::from(Span::styled(s, t.header));
    let header = Row::new(vec![
        head(""),
        head("track"),
        head("name"),
        head("image:tag"),
        head("state"),
        head("health"),
        head(if narrow { "rst" } else { "restarts" }),
        head("uptime"),
    ]);
    let selected = app.selected_container.min(list.len() - 1);
    let mut state =
        TableState::default().with_selected((app.focus == Pane::Containers).then_some(selected));
    f.render_stateful_widget(
        selectable(
            app,
            Table::new(rows, widths).header(header).column_spacing(1),
        ),
        table,
        &mut state,
    );
}

/// `text` in `width` columns: whole when it fits, else `…` and its end
/// (names and images differ at the end: `…-green-2`, `…:2.4.1`).
fn fit_tail(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for ch in text.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        tail.push(ch);
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}
