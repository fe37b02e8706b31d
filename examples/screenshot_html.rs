//! Terminal screen → HTML for the README's screenshots
//! (`screenshots/make.sh`).
//!
//! Reads what `tmux capture-pane -e -p` prints (text with SGR escapes,
//! one line per screen row) on stdin, emulates it on a `COLS`×`ROWS`
//! screen with the `vt100` crate (which parses the escapes), and writes
//! an HTML page on stdout in which every cell is a box of fixed size:
//! a glyph the font lacks (Braille Patterns in DejaVu Sans Mono) or
//! draws wider can never shift a column or push a border out.
//!
//! Colours are resolved here, not by CSS filters: the 16 ANSI colours
//! and the 256-colour palette as xterm defines them (xterm's
//! `256colres.h`: a 6×6×6 cube of levels 0, 95, 135, 175, 215, 255, then
//! 24 greys from 8 in steps of 10), reverse video as swapped foreground
//! and background, dim as the foreground halfway to the background, bold
//! as a bold face (not a brighter colour). The default colours are light
//! grey on black.
//!
//! The full block elements (`█ ▀ ▄ ▌ ▐`) are drawn as backgrounds of their
//! cell, so half-block rows meet without a seam.
//!
//! Usage: `tmux capture-pane -e -p -t PANE | cargo run --example
//! screenshot_html -- COLS ROWS > screen.html`. The page is
//! `COLS × 9 + 8` by `ROWS × 17 + 8` CSS pixels (9×17 cells, 4 px margin).
//!
//! Errors: a missing or non-numeric size, or a size outside 1–1000, is
//! reported on stderr with exit code 2; a read or write failure with 1.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Cell width and height in CSS pixels: DejaVu Sans Mono at 15 px has an
/// advance of 9.03 px and a line of 17.46 px, so box-drawing lines fill
/// (and slightly overfill, clipped) the cell and meet their neighbours.
const CELL_W: u32 = 9;
const CELL_H: u32 = 17;
const FONT_PX: u32 = 15;
/// Margin around the screen, CSS pixels.
const MARGIN: u32 = 4;
/// The default foreground and background (light grey on black).
const DEFAULT_FG: Rgb = (0xe5, 0xe5, 0xe5);
const DEFAULT_BG: Rgb = (0, 0, 0);

type Rgb = (u8, u8, u8);

/// xterm's 16 ANSI colours (its default resources).
const ANSI: [Rgb; 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x00, 0x00),
    (0x00, 0xcd, 0x00),
    (0xcd, 0xcd, 0x00),
    (0x00, 0x00, 0xee),
    (0xcd, 0x00, 0xcd),
    (0x00, 0xcd, 0xcd),
    (0xe5, 0xe5, 0xe5),
    (0x7f, 0x7f, 0x7f),
    (0xff, 0x00, 0x00),
    (0x00, 0xff, 0x00),
    (0xff, 0xff, 0x00),
    (0x5c, 0x5c, 0xff),
    (0xff, 0x00, 0xff),
    (0x00, 0xff, 0xff),
    (0xff, 0xff, 0xff),
];

/// Palette entry `i` of xterm's 256 colours.
fn palette(i: u8) -> Rgb {
    match i {
        0..=15 => ANSI[usize::from(i)],
        16..=231 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            let i = i - 16;
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        232..=255 => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
    }
}

fn resolve(c: vt100::Color, default: Rgb) -> Rgb {
    match c {
        vt100::Color::Default => default,
        vt100::Color::Idx(i) => palette(i),
        vt100::Color::Rgb(r, g, b) => (r, g, b),
    }
}

fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn mix(a: Rgb, b: Rgb) -> Rgb {
    let m = |x: u8, y: u8| ((u16::from(x) + u16::from(y)) / 2) as u8;
    (m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// One cell's look, resolved to colours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Look {
    fg: Rgb,
    bg: Rgb,
    bold: bool,
    italic: bool,
    underline: bool,
}

impl Look {
    fn of(cell: &vt100::Cell) -> Look {
        let mut fg = resolve(cell.fgcolor(), DEFAULT_FG);
        let mut bg = resolve(cell.bgcolor(), DEFAULT_BG);
        if cell.inverse() {
            std::mem::swap(&mut fg, &mut bg);
        }
        if cell.dim() {
            fg = mix(fg, bg);
        }
        Look {
            fg,
            bg,
            bold: cell.bold(),
            italic: cell.italic(),
            underline: cell.underline(),
        }
    }

    fn css(&self) -> String {
        let mut s = format!("color:{};background:{}", hex(self.fg), hex(self.bg));
        if self.bold {
            s.push_str(";font-weight:bold");
        }
        if self.italic {
            s.push_str(";font-style:italic");
        }
        if self.underline {
            s.push_str(";text-decoration:underline");
        }
        s
    }
}

/// The part of the cell a block element fills, as a CSS background over
/// the cell's own background; `None` for any other character.
fn block_fill(c: &str, fg: &str, bg: &str) -> Option<String> {
    let half = |dir: &str| format!("background:linear-gradient({dir},{fg} 50%,{bg} 50%)");
    Some(match c {
        "█" => format!("background:{fg}"),
        "▀" => half("to bottom"),
        "▄" => half("to top"),
        "▌" => half("to right"),
        "▐" => half("to left"),
        _ => return None,
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `capture-pane -p` prints each row followed by a newline: as terminal
/// input each row starts at column 0 (`\r\n`), and the last newline is
/// dropped so the screen does not scroll.
fn as_terminal_input(capture: &[u8]) -> Vec<u8> {
    let mut rows: Vec<&[u8]> = capture.split(|b| *b == b'\n').collect();
    if rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows.join(&b"\r\n"[..])
}

/// The HTML page for `screen`.
fn html(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    let mut classes: BTreeMap<Look, usize> = BTreeMap::new();
    let mut body = String::new();
    for row in 0..rows {
        body.push_str("<div class=r>");
        for col in 0..cols {
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let look = Look::of(cell);
            let n = classes.len();
            let class = *classes.entry(look.clone()).or_insert(n);
            let wide = if cell.is_wide() { " w" } else { "" };
            let text = cell.contents();
            match block_fill(text, &hex(look.fg), &hex(look.bg)) {
                Some(fill) => {
                    let _ = write!(body, "<i class=\"c{class}{wide}\" style=\"{fill}\"></i>");
                }
                None => {
                    let _ = write!(body, "<i class=\"c{class}{wide}\">{}</i>", escape(text));
                }
            }
        }
        body.push_str("</div>\n");
    }
    let mut css = String::new();
    for (look, n) in &classes {
        let _ = writeln!(css, ".c{n}{{{}}}", look.css());
    }
    let width = u32::from(cols) * CELL_W;
    let height = u32::from(rows) * CELL_H;
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rolldeck</title>
<style>
html,body{{margin:0;background:{bg}}}
#s{{position:absolute;left:{MARGIN}px;top:{MARGIN}px;width:{width}px;height:{height}px;overflow:hidden;
 font-family:"DejaVu Sans Mono","DejaVu Sans",monospace;font-size:{FONT_PX}px;line-height:{CELL_H}px;
 -webkit-font-smoothing:antialiased}}
.r{{display:flex;height:{CELL_H}px}}
.r i{{display:block;flex:0 0 {CELL_W}px;height:{CELL_H}px;overflow:hidden;text-align:center;
 white-space:pre;font-style:normal}}
.r i.w{{flex-basis:{wide}px}}
{css}</style></head>
<body><div id=s>
{body}</div></body></html>
"#,
        bg = hex(DEFAULT_BG),
        wide = 2 * CELL_W,
    )
}

fn size_arg(arg: Option<String>, what: &str) -> Result<u16, String> {
    let arg = arg.ok_or_else(|| format!("missing {what}"))?;
    match arg.parse::<u16>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("{what} must be a whole number 1–1000, not `{arg}`")),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let size = size_arg(args.next(), "COLS").and_then(|c| Ok((c, size_arg(args.next(), "ROWS")?)));
    let (cols, rows) = match size {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "screenshot_html: {e}\nusage: screenshot_html COLS ROWS < capture > page.html"
            );
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("screenshot_html: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(&as_terminal_input(&input));
    let page = html(parser.screen());
    if let Err(e) = std::io::stdout().write_all(page.as_bytes()) {
        eprintln!("screenshot_html: writing stdout: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, rows: u16, input: &[u8]) -> vt100::Parser {
        let mut p = vt100::Parser::new(rows, cols, 0);
        p.process(&as_terminal_input(input));
        p
    }

    #[test]
    fn palette_matches_xterm() {
        assert_eq!(palette(1), (0xcd, 0, 0));
        assert_eq!(palette(9), (0xff, 0, 0));
        assert_eq!(palette(16), (0, 0, 0));
        assert_eq!(palette(196), (0xff, 0, 0));
        assert_eq!(palette(110), (0x87, 0xaf, 0xd7));
        assert_eq!(palette(231), (0xff, 0xff, 0xff));
        assert_eq!(palette(232), (8, 8, 8));
        assert_eq!(palette(255), (0xee, 0xee, 0xee));
    }

    #[test]
    fn every_row_has_one_box_per_column_and_the_screen_does_not_scroll() {
        // A full-width last row followed by the capture's newline.
        let input = "ab⣿⠁\n\x1b[7mxy\x1b[0m\n1234\n".as_bytes();
        let p = screen(4, 3, input);
        assert_eq!(p.screen().contents(), "ab⣿⠁\nxy\n1234");
        let page = html(p.screen());
        for row in page.lines().filter(|l| l.starts_with("<div class=r>")) {
            assert_eq!(row.matches("<i ").count(), 4, "{row}");
        }
        assert_eq!(
            page.lines()
                .filter(|l| l.starts_with("<div class=r>"))
                .count(),
            3
        );
    }

    #[test]
    fn reverse_video_swaps_resolved_colours() {
        let p = screen(2, 1, b"\x1b[7;31mx\x1b[0m\n");
        let look = Look::of(p.screen().cell(0, 0).unwrap());
        assert_eq!(look.fg, DEFAULT_BG);
        assert_eq!(look.bg, palette(1));
        let p = screen(2, 1, b"\x1b[7mx\x1b[0m\n");
        let look = Look::of(p.screen().cell(0, 0).unwrap());
        assert_eq!((look.fg, look.bg), (DEFAULT_BG, DEFAULT_FG));
    }

    #[test]
    fn bold_bright_keeps_its_colour_and_background() {
        let p = screen(2, 1, b"\x1b[1;91;48;5;236mx\x1b[0m\n");
        let look = Look::of(p.screen().cell(0, 0).unwrap());
        assert!(look.bold);
        assert_eq!(look.fg, (0xff, 0, 0));
        assert_eq!(look.bg, palette(236));
        assert!(!html(p.screen()).contains("filter"));
    }

    #[test]
    fn markup_in_cells_is_escaped() {
        let page = html(screen(3, 1, b"<&>\n").screen());
        assert!(page.contains("&lt;</i>") && page.contains("&amp;</i>"));
    }
}
