//! The footer: the keys that work *now*, in an order that never changes.
//!
//! Without a popup the hints always come in this order, each only when it
//! applies: the keymap's general hints (`? help`, `: command`, `tab pane`),
//! the focused pane's own hints (`f follow` in the logs), the release keys
//! the engine allows right now (approve, pause or resume, weight, promote,
//! retry, rollback — only for the driver), then `q quit`. When they do not
//! all fit, the least needed go first (pane, command, the pane's hints,
//! retry, weight, promote, …); `q quit`, rollback and help stay longest.
//!
//! A popup shows only its own keys: a confirmation `enter confirm`, `tab
//! next field` (when the environment name must be typed) and `esc cancel`;
//! the help and the detail popup their scrolling keys; the `:` prompt `tab
//! complete`.

use super::app::{App, Popup};
use super::keymap::{Action, Context, KeyCombo};
use crate::release::Command;
use crate::release::engine::Phase;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// One footer hint: the key text, what it does, and how long it stays
/// when space runs out (lower stays longer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The key as the keymap writes it (`R`, `ctrl-r`, `esc`).
    pub key: String,
    /// What it does, one or two words.
    pub label: String,
    /// Drop order when the footer is too narrow: the highest goes first.
    pub drop: u8,
}

fn hint(key: impl Into<String>, label: impl Into<String>, drop: u8) -> Hint {
    Hint {
        key: key.into(),
        label: label.into(),
        drop,
    }
}

/// The release keys in footer order, with their drop rank.
const RELEASE_KEYS: [(Action, u8); 6] = [
    (Action::Approve, 3),
    (Action::PauseResume, 4),
    (Action::SetWeight, 6),
    (Action::Promote, 5),
    (Action::Retry, 7),
    (Action::Rollback, 1),
];

/// The first key of `action` that reaches it in `context` (a key shadowed
/// by the context is not offered).
fn key_for(app: &App, context: Context, action: Action) -> Option<KeyCombo> {
    app.keymap.keys_for(action).into_iter().find(|k| {
        app.keymap
            .action(context, &KeyEvent::new(k.code, k.modifiers))
            == Some(action)
    })
}

/// The shortest key of `action` (`k` rather than `up`), for compact hints.
fn short_key(app: &App, action: Action) -> String {
    app.keymap
        .keys_for(action)
        .iter()
        .map(ToString::to_string)
        .min_by_key(|k| k.chars().count())
        .unwrap_or_default()
}

/// Two actions' shortest keys as one hint key: `j/k`.
fn pair(app: &App, a: Action, b: Action) -> String {
    format!("{}/{}", short_key(app, a), short_key(app, b))
}

/// Every hint that applies now, in display order, before fitting.
pub fn hints(app: &App) -> Vec<Hint> {
    match &app.popup {
        Some(Popup::Confirm(c)) => {
            let mut out = vec![hint("enter", "confirm", 0)];
            if c.type_to_confirm.is_some() {
                out.push(hint("tab", "next field", 1));
            }
            out.push(hint("esc", "cancel", 0));
            out
        }
        Some(Popup::Help | Popup::Detail(_)) => vec![
            hint(pair(app, Action::Down, Action::Up), "scroll", 1),
            hint(pair(app, Action::PageDown, Action::PageUp), "page", 2),
            hint(pair(app, Action::Top, Action::Bottom), "top/end", 3),
            hint("esc", "close", 0),
        ],
        Some(Popup::Command(_)) => vec![
            hint("tab", "complete", 1),
            hint("enter", "run", 0),
            hint("esc", "cancel", 0),
        ],
        Some(Popup::Filter(_) | Popup::Weight(_)) => {
            vec![hint("enter", "apply", 0), hint("esc", "cancel", 0)]
        }
        Some(Popup::Quit) => vec![hint("y", "quit", 0), hint("other keys", "stay", 0)],
        None => pane_hints(app),
    }
}

/// The hints without a popup, in the fixed order (module documentation).
fn pane_hints(app: &App) -> Vec<Hint> {
    let context = app.context();
    let bindings = app.keymap.footer_bindings(context);
    let general = |b: &&super::keymap::Binding| {
        b.context == Context::Global && !b.changes_world && b.action != Action::Quit
    };
    let mut out: Vec<Hint> = bindings
        .iter()
        .filter(|(_, b)| general(b))
        .map(|(k, b)| {
            let drop = match b.action {
                Action::Help => 2,
                Action::CommandMode => 9,
                _ => 10,
            };
            hint(k.to_string(), b.label.clone(), drop)
        })
        .collect();
    // Pane 5 without a runbook open: its runbook keys do nothing, and `p`
    // pauses as everywhere else ([`super::desk`]).
    let no_runbook = context == Context::Runbook && app.desk.runbook.is_none();
    out.extend(
        bindings
            .iter()
            .filter(|(_, b)| b.context == context && context != Context::Global && !no_runbook)
            .map(|(k, b)| hint(k.to_string(), b.label.clone(), 8)),
    );
    let context = if no_runbook { Context::Global } else { context };
    if let (true, Some(r)) = (app.can_act(), &app.release) {
        let paused = matches!(r.phase, Phase::Paused { .. });
        for (action, drop) in RELEASE_KEYS {
            let (command, label) = match action {
                Action::Approve => (Command::Approve, "approve"),
                Action::PauseResume if paused => (Command::Resume, "resume"),
                Action::PauseResume => (Command::Pause, "pause"),
                Action::SetWeight => (Command::SetWeight { weight: 0 }, "weight"),
                Action::Promote => (Command::Promote, "promote"),
                Action::Retry => (Command::Retry, "retry"),
                _ => (Command::Rollback, "rollback"),
            };
            if r.can(&command).is_ok()
                && let Some(k) = key_for(app, context, action)
            {
                out.push(hint(k.to_string(), label, drop));
            }
        }
    }
    if let Some(k) = key_for(app, context, Action::Quit) {
        let label = app
            .keymap
            .bindings()
            .iter()
            .find(|b| b.action == Action::Quit)
            .map_or("quit".to_string(), |b| b.label.clone());
        out.push(hint(k.to_string(), label, 0));
    }
    out
}

/// The hints that fit in `width` columns after `used` are taken, in display
/// order: the highest drop ranks are left out first, whole hints only.
pub fn fit(hints: Vec<Hint>, width: usize) -> Vec<Hint> {
    let cost = |h: &Hint| h.key.chars().count() + h.label.chars().count() + 3;
    let mut keep: Vec<bool> = vec![true; hints.len()];
    let mut total: usize = hints.iter().map(cost).sum();
    let mut order: Vec<usize> = (0..hints.len()).collect();
    // Highest rank first; among equals the rightmost goes first.
    order.sort_by_key(|&i| (std::cmp::Reverse(hints[i].drop), std::cmp::Reverse(i)));
    for i in order {
        if total <= width {
            break;
        }
        keep[i] = false;
        total -= cost(&hints[i]);
    }
    hints
        .into_iter()
        .zip(keep)
        .filter_map(|(h, k)| k.then_some(h))
        .collect()
}

/// Draws the footer: the flash message, if any, then the hints.
pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut spans = Vec::new();
    if let Some(msg) = &app.flash {
        spans.push(Span::styled(
            format!(" {msg} "),
            t.warn.add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" "));
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    for h in fit(hints(app), (area.width as usize).saturating_sub(used)) {
        spans.push(Span::styled(format!(" {} ", h.key), t.footer_key));
        spans.push(Span::styled(format!("{} ", h.label), t.footer_text));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_drops_the_highest_rank_first_and_keeps_the_order() {
        let hs = vec![
            hint("?", "help", 2),
            hint("tab", "pane", 10),
            hint("R", "rollback", 1),
            hint("q", "quit", 0),
        ];
        let all: usize = 8 + 10 + 12 + 8;
        assert_eq!(fit(hs.clone(), all), hs);
        let kept: Vec<String> = fit(hs.clone(), all - 1)
            .into_iter()
            .map(|h| h.label)
            .collect();
        assert_eq!(kept, ["help", "rollback", "quit"]);
        let kept: Vec<String> = fit(hs, 8).into_iter().map(|h| h.label).collect();
        assert_eq!(kept, ["quit"]);
    }
}
