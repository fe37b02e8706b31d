//! The `?` help popup, generated from the keymap ([`Keymap::help`]): the
//! keys that matter in an incident first, then panes, then logs, then
//! popups. It fits any screen from 40x10 up and scrolls (the keymap's
//! moving keys: j/k, PgUp/PgDn, g/G).
//!
//! Each binding is one row: the keys in a column as wide as the widest
//! keys (at most a third of the popup), two blanks, then the description
//! wrapped under itself, so keys and descriptions never run into each
//! other. Keys wider than their column get a line of their own.
//!
//! [`Keymap::help`]: super::keymap::Keymap::help

use super::app::{App, HelpView};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

/// The widest the popup gets, in columns (the help reads best narrow).
const MAX_WIDTH: u16 = 78;
/// Blanks between the keys column and the descriptions.
const GAP: usize = 2;
/// Indent of a row under its group title.
const INDENT: usize = 2;

/// The help's lines for a popup whose inside is `width` columns wide.
pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let help = app.keymap.help();
    let widest = help
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(keys, _)| keys.chars().count()))
        .max()
        .unwrap_or(0);
    let keys_w = widest.min(width / 3).max(1);
    let desc_w = width.saturating_sub(INDENT + keys_w + GAP).max(10);
    let pad = " ".repeat(INDENT + keys_w + GAP);
    let mut out = Vec::new();
    for (i, (title, rows)) in help.into_iter().enumerate() {
        if i > 0 {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(title, t.title));
        for (keys, desc) in rows {
            let mut wrapped = wrap(&desc, desc_w).into_iter();
            let first = wrapped.next().unwrap_or_default();
            if keys.chars().count() > keys_w {
                out.push(Line::from(Span::styled(
                    format!("{:INDENT$}{keys}", ""),
                    t.footer_key,
                )));
                out.push(Line::raw(format!("{pad}{first}")));
            } else {
                out.push(Line::from(vec![
                    Span::styled(format!("{:INDENT$}{keys:<keys_w$}", ""), t.footer_key),
                    Span::raw(format!("{:GAP$}{first}", "")),
                ]));
            }
            for more in wrapped {
                out.push(Line::raw(format!("{pad}{more}")));
            }
        }
    }
    out
}

/// Greedy word wrap of `text` to `width` columns (characters); a word
/// longer than the width is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let cur_w = cur.chars().count();
            let word_w = word.chars().count();
            let need = if cur.is_empty() {
                word_w
            } else {
                cur_w + 1 + word_w
            };
            if need <= width {
                if !cur.is_empty() {
                    cur.push(' ');
                }
                cur.push_str(&word);
                break;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
                continue;
            }
            // A word wider than the line: cut it.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Draws the help over `area` (the whole screen) and records how far it
/// can scroll ([`App::help_view`]).
pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let w = MAX_WIDTH.min(area.width.saturating_sub(2)).max(1);
    let h = area.height.saturating_sub(2).max(1);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let inner_w = w.saturating_sub(2) as usize;
    let visible = h.saturating_sub(2) as usize;
    let all = lines(app, inner_w);
    let max_scroll = all.len().saturating_sub(visible);
    app.help_view.set(HelpView {
        max_scroll,
        page: visible,
    });
    let scroll = app.help_scroll.min(max_scroll);
    let shown: Vec<Line> = all.iter().skip(scroll).take(visible).cloned().collect();
    let position = if max_scroll == 0 {
        " all shown ".to_string()
    } else {
        format!(
            " {}–{} of {} · j/k PgUp/PgDn g/G ",
            scroll + 1,
            (scroll + visible).min(all.len()),
            all.len()
        )
    };
    f.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border_focus)
        .title(Span::styled(" help — Esc closes ", t.title))
        .title_bottom(Line::styled(position, t.muted).right_aligned())
        .style(t.popup);
    f.render_widget(Paragraph::new(shown).block(block), rect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_and_width() {
        assert_eq!(wrap("a bc def", 4), ["a bc", "def"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
        for line in wrap("promote straight to 100% (asks first)", 12) {
            assert!(line.chars().count() <= 12, "{line}");
        }
    }
}
