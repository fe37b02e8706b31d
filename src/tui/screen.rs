//! A ratatui backend that writes fewer bytes than `CrosstermBackend` for
//! the same frames.
//!
//! ratatui diffs each frame against the last and hands the backend the
//! cells that changed. `CrosstermBackend` then writes an absolute cursor
//! move (`ESC[row;colH`, up to 9 bytes) before every run of changed cells,
//! the colours before each colour change (as `38;5;N`), and four resets
//! and a cursor hide after every frame, even an empty one. When a log pane
//! scrolls by a line, the old and new lines share many cells, so the
//! changes come in short runs and the moves cost more than the text.
//! [`LeanBackend`] writes the same screen with:
//!
//! * nothing at all for a frame without changes;
//! * the unchanged cells between two changed ones re-written when that is
//!   shorter than moving over them (it keeps its own copy of what the
//!   terminal shows), else a relative move (`ESC[nC`) on the same row;
//! * one SGR sequence per style change, holding only what changed, with
//!   ANSI's short colour codes (`31`, `94`) for the 16 named colours;
//! * the style kept across frames (reset when the terminal is cleared and
//!   when the backend is dropped), the cursor hidden once.
//!
//! Checked by a property test: random frames written by [`LeanBackend`]
//! and read back by a terminal emulator (`vt100`) show every cell as
//! ratatui's buffer has it.

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell, CellDiffOption};
use ratatui::layout::{Position, Rect, Size};
use ratatui::style::{Color, Modifier};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// The terminal's graphic rendition (what SGR set last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

impl Default for Pen {
    fn default() -> Self {
        Self {
            fg: Color::Reset,
            bg: Color::Reset,
            underline: Color::Reset,
            modifier: Modifier::empty(),
        }
    }
}

impl Pen {
    fn of(cell: &Cell) -> Self {
        Self {
            fg: cell.fg,
            bg: cell.bg,
            underline: cell.underline_color,
            modifier: cell.modifier,
        }
    }
}

/// The longest run of unchanged cells that is re-written rather than moved
/// over (a move costs at most 9 bytes; no run longer than that can win).
const MAX_FILL: u16 = 9;

/// What the terminal shows and where its cursor and pen are, as far as
/// this backend wrote them.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The cells the terminal shows.
    pub cells: Buffer,
    /// Whether `cells` is known to match the terminal (after a full clear
    /// or a full frame); unchanged cells are re-written only when it is.
    pub trusted: bool,
    /// The cursor, when known.
    pub cursor: Option<Position>,
    /// The pen.
    pub pen: Pen,
}

impl Shown {
    /// A cleared terminal of `area`, default pen, cursor unknown.
    pub fn cleared(area: Rect) -> Self {
        Self {
            cells: Buffer::empty(area),
            trusted: true,
            cursor: None,
            pen: Pen::default(),
        }
    }

    /// Appends to `out` the bytes that make the terminal show `updates`
    /// (ratatui's diff: row-major, each cell at most once) and records them.
    pub fn write(&mut self, updates: Vec<(u16, u16, Cell)>, out: &mut Vec<u8>) {
        for (x, y, cell) in &updates {
            let pos = Position::new(*x, *y);
            if !self.cells.area.contains(pos) {
                // Outside what we know (the terminal grew without a clear).
                let area = self.cells.area.union(Rect::new(*x, *y, 1, 1));
                self.cells.resize(area);
                self.trusted = false;
            }
            self.cells[pos] = cell.clone();
        }
        for (x, y, cell) in &updates {
            self.reach(*x, *y, out);
            self.sgr(Pen::of(cell), out);
            out.extend_from_slice(cell.symbol().as_bytes());
            self.cursor = match cell.symbol().width() {
                1 if x + 1 < self.cells.area.right() => Some(Position::new(x + 1, *y)),
                // Wide, zero-width, or in the last column (pending wrap):
                // place the cursor explicitly next time.
                _ => None,
            };
        }
    }

    /// Moves the cursor to (x, y): not at all when it is there, by
    /// re-writing the unchanged cells before it on the same row when that
    /// is shorter, else by the shorter of a relative and an absolute move.
    fn reach(&mut self, x: u16, y: u16, out: &mut Vec<u8>) {
        let absolute = format!("\x1b[{};{}H", y + 1, x + 1);
        let Some(at) = self.cursor.filter(|c| c.y == y && c.x <= x) else {
            out.extend_from_slice(absolute.as_bytes());
            return;
        };
        let gap = x - at.x;
        if gap == 0 {
            return;
        }
        let relative = if gap == 1 {
            "\x1b[C".to_string()
        } else {
            format!("\x1b[{gap}C")
        };
        let mv = if relative.len() <= absolute.len() {
            relative
        } else {
            absolute
        };
        if self.trusted && gap <= MAX_FILL {
            let mut fill = Vec::new();
            let mut pen = self.pen;
            let fillable = (at.x..x).all(|cx| {
                let c = &self.cells[(cx, y)];
                c.diff_option == CellDiffOption::None && c.symbol().width() == 1
            });
            if fillable {
                for cx in at.x..x {
                    let c = &self.cells[(cx, y)];
                    sgr(&mut pen, Pen::of(c), &mut fill);
                    fill.extend_from_slice(c.symbol().as_bytes());
                }
                // The pen the next cell needs may cost more from here.
                let next = Pen::of(&self.cells[(x, y)]);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                sgr(&mut pen.clone(), next, &mut a);
                sgr(&mut self.pen.clone(), next, &mut b);
                if fill.len() + a.len() <= mv.len() + b.len() {
                    out.extend_from_slice(&fill);
                    self.pen = pen;
                    return;
                }
            }
        }
        out.extend_from_slice(mv.as_bytes());
    }

    fn sgr(&mut self, to: Pen, out: &mut Vec<u8>) {
        sgr(&mut self.pen, to, out);
    }
}

/// Appends the one SGR sequence that turns `pen` into `to` (nothing when
/// they are equal) and updates `pen`.
fn sgr(pen: &mut Pen, to: Pen, out: &mut Vec<u8>) {
    if *pen == to {
        return;
    }
    let mut codes: Vec<String> = Vec::new();
    let mut from = *pen;
    let removed = from.modifier - to.modifier;
    if !removed.is_empty() {
        // Targeted "off" codes, or a full reset when that is shorter.
        let mut off = Vec::new();
        if removed.intersects(Modifier::BOLD | Modifier::DIM) {
            off.push("22");
            from.modifier -= Modifier::BOLD | Modifier::DIM;
        }
        for (m, code) in [
            (Modifier::ITALIC, "23"),
            (Modifier::UNDERLINED, "24"),
            (Modifier::SLOW_BLINK | Modifier::RAPID_BLINK, "25"),
            (Modifier::REVERSED, "27"),
            (Modifier::HIDDEN, "28"),
            (Modifier::CROSSED_OUT, "29"),
        ] {
            if removed.intersects(m) {
                off.push(code);
                from.modifier -= m;
            }
        }
        if off.len() > 1 {
            codes.push("0".into());
            from = Pen::default();
        } else {
            codes.extend(off.into_iter().map(String::from));
        }
    }
    for (m, code) in [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::SLOW_BLINK, "5"),
        (Modifier::RAPID_BLINK, "6"),
        (Modifier::REVERSED, "7"),
        (Modifier::HIDDEN, "8"),
        (Modifier::CROSSED_OUT, "9"),
    ] {
        if to.modifier.contains(m) && !from.modifier.contains(m) {
            codes.push(code.into());
        }
    }
    if to.fg != from.fg {
        codes.push(colour(to.fg, 30, 90, 38, 39));
    }
    if to.bg != from.bg {
        codes.push(colour(to.bg, 40, 100, 48, 49));
    }
    if to.underline != from.underline {
        codes.push(colour_extended(to.underline, 58, 59));
    }
    out.extend_from_slice(b"\x1b[");
    out.extend_from_slice(codes.join(";").as_bytes());
    out.push(b'm');
    *pen = to;
}

/// The SGR code of a colour: `base + n` for the eight dark named colours,
/// `bright + n` for the eight light ones, `ext;5;n` / `ext;2;r;g;b`
/// otherwise, `reset` for the terminal's default (ECMA-48 / xterm).
fn colour(c: Color, base: u8, bright: u8, ext: u8, reset: u8) -> String {
    let named = |n: u8| {
        if n < 8 {
            (base + n).to_string()
        } else {
            (bright + n - 8).to_string()
        }
    };
    match c {
        Color::Reset => reset.to_string(),
        Color::Indexed(n) if n < 16 => named(n),
        Color::Indexed(_) | Color::Rgb(..) => colour_extended(c, ext, reset),
        named_colour => named(index_of(named_colour)),
    }
}

fn colour_extended(c: Color, ext: u8, reset: u8) -> String {
    match c {
        Color::Reset => reset.to_string(),
        Color::Rgb(r, g, b) => format!("{ext};2;{r};{g};{b}"),
        Color::Indexed(n) => format!("{ext};5;{n}"),
        named => format!("{ext};5;{}", index_of(named)),
    }
}

/// The 16 named colours in palette order (index 0–15), as crossterm maps
/// them.
pub const NAMED_COLOURS: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

/// The palette index (0–15) of a named colour; `n` of `Indexed(n)`.
fn index_of(c: Color) -> u8 {
    match c {
        Color::Indexed(n) => n,
        named => NAMED_COLOURS
            .iter()
            .position(|n| *n == named)
            .map_or(0, |i| i as u8),
    }
}

/// The cockpit's backend: [`Shown::write`] for frames, crossterm for the
/// rest (size, clearing, the cursor).
pub struct LeanBackend<W: Write> {
    inner: CrosstermBackend<W>,
    shown: Shown,
    cursor_hidden: Option<bool>,
    out: Vec<u8>,
}

impl<W: Write> LeanBackend<W> {
    /// A backend writing to `writer` (the terminal), which is assumed to
    /// show anything until the first clear.
    pub fn new(writer: W) -> Self {
        let mut shown = Shown::cleared(Rect::default());
        shown.trusted = false;
        Self {
            inner: CrosstermBackend::new(writer),
            shown,
            cursor_hidden: None,
            out: Vec::new(),
        }
    }

    /// Writes the default pen when it is not in effect.
    fn reset_pen(&mut self) -> io::Result<()> {
        if self.shown.pen != Pen::default() {
            self.inner.write_all(b"\x1b[0m")?;
            self.shown.pen = Pen::default();
        }
        Ok(())
    }
}

impl<W: Write> Drop for LeanBackend<W> {
    fn drop(&mut self) {
        let _ = self.reset_pen();
        let _ = Write::flush(&mut self.inner);
    }
}

impl<W: Write> Backend for LeanBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let updates: Vec<(u16, u16, Cell)> = content.map(|(x, y, c)| (x, y, c.clone())).collect();
        if updates.is_empty() {
            return Ok(());
        }
        self.out.clear();
        self.shown.write(updates, &mut self.out);
        self.inner.write_all(&self.out)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_hidden != Some(true) {
            self.inner.hide_cursor()?;
            self.cursor_hidden = Some(true);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.cursor_hidden != Some(false) {
            self.inner.show_cursor()?;
            self.cursor_hidden = Some(false);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let p = position.into();
        self.inner.set_cursor_position(p)?;
        self.shown.cursor = Some(p);
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        // The terminal clears with the current background: reset first.
        self.reset_pen()?;
        self.inner.clear()?;
        let size = self.inner.size()?;
        self.shown = Shown::cleared(Rect::new(0, 0, size.width, size.height));
        Ok(())
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        if clear_type == ClearType::All {
            return self.clear();
        }
        self.reset_pen()?;
        self.inner.clear_region(clear_type)?;
        // Part of the screen is blank now; which part is the terminal's
        // business: stop re-writing unchanged cells until a full clear.
        self.shown.trusted = false;
        self.shown.cursor = None;
        Ok(())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.inner.append_lines(n)?;
        self.shown.trusted = false;
        self.shown.cursor = None;
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ratatui::style::Style;

    const W: u16 = 24;
    const H: u16 = 4;

    /// What a terminal emulator shows after `bytes`, as ratatui cells
    /// (symbol, fg, bg, bold/italic/underline/reverse).
    fn emulate(parser: &mut vt100::Parser, bytes: &[u8]) {
        parser.process(bytes);
    }

    fn vt_colour(c: Color) -> vt100::Color {
        match c {
            Color::Reset => vt100::Color::Default,
            Color::Rgb(r, g, b) => vt100::Color::Rgb(r, g, b),
            other => vt100::Color::Idx(index_of(other)),
        }
    }

    fn assert_shows(parser: &vt100::Parser, want: &Buffer) {
        let screen = parser.screen();
        for y in 0..H {
            for x in 0..W {
                let c = &want[(x, y)];
                let got = screen.cell(y, x).expect("cell");
                // vt100 reads a never-written cell as "".
                let sym = match got.contents() {
                    "" => " ".to_string(),
                    s => s.to_string(),
                };
                assert_eq!(sym, c.symbol(), "symbol at {x},{y}");
                assert_eq!(got.fgcolor(), vt_colour(c.fg), "fg at {x},{y}");
                assert_eq!(got.bgcolor(), vt_colour(c.bg), "bg at {x},{y}");
                for (name, on, m) in [
                    ("bold", got.bold(), Modifier::BOLD),
                    ("italic", got.italic(), Modifier::ITALIC),
                    ("underline", got.underline(), Modifier::UNDERLINED),
                    ("reverse", got.inverse(), Modifier::REVERSED),
                ] {
                    assert_eq!(on, c.modifier.contains(m), "{name} at {x},{y}");
                }
            }
        }
    }

    fn colour_strategy() -> impl Strategy<Value = Color> {
        prop_oneof![
            Just(Color::Reset),
            (0usize..16).prop_map(|n| NAMED_COLOURS[n]),
            any::<u8>().prop_map(Color::Indexed),
            any::<(u8, u8, u8)>().prop_map(|(r, g, b)| Color::Rgb(r, g, b)),
        ]
    }

    fn style_strategy() -> impl Strategy<Value = Style> {
        (
            colour_strategy(),
            colour_strategy(),
            prop::sample::subsequence(
                vec![
                    Modifier::BOLD,
                    Modifier::ITALIC,
                    Modifier::UNDERLINED,
                    Modifier::REVERSED,
                ],
                0..=4,
            ),
        )
            .prop_map(|(fg, bg, mods)| {
                let m = mods.into_iter().fold(Modifier::empty(), |a, b| a | b);
                Style::default().fg(fg).bg(bg).add_modifier(m)
            })
    }

    /// A frame: a few styles, mostly similar text (like a scrolled log),
    /// now and then a box-drawing or block character.
    fn frame_strategy() -> impl Strategy<Value = Buffer> {
        let cell = (
            prop::sample::select(vec!["a", "b", " ", "│", "█", "1", "x"]),
            0usize..3,
        );
        (
            prop::collection::vec(style_strategy(), 3),
            prop::collection::vec(cell, (W * H) as usize),
        )
            .prop_map(|(styles, cells)| {
                let mut buf = Buffer::empty(Rect::new(0, 0, W, H));
                for (i, (sym, style)) in cells.into_iter().enumerate() {
                    let (x, y) = (i as u16 % W, i as u16 / W);
                    buf[(x, y)].set_symbol(sym).set_style(styles[style]);
                }
                buf
            })
    }

    proptest! {
        /// Any sequence of frames, written as diffs by the backend, leaves
        /// the terminal showing exactly the last frame.
        #[test]
        fn the_terminal_shows_every_frame(frames in prop::collection::vec(frame_strategy(), 1..6)) {
            let mut parser = vt100::Parser::new(H, W, 0);
            let mut shown = Shown::cleared(Rect::new(0, 0, W, H));
            let mut prev = Buffer::empty(Rect::new(0, 0, W, H));
            for frame in frames {
                let updates: Vec<(u16, u16, Cell)> =
                    prev.diff(&frame).into_iter().map(|(x, y, c)| (x, y, c.clone())).collect();
                let mut out = Vec::new();
                shown.write(updates, &mut out);
                emulate(&mut parser, &out);
                assert_shows(&parser, &frame);
                prev = frame;
            }
        }
    }

    /// A writer whose bytes the test can count.
    #[derive(Clone, Default)]
    struct Tape(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Tape {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_unchanged_frame_writes_nothing_and_the_cursor_is_hidden_once() {
        let tape = Tape::default();
        let len = || tape.0.lock().unwrap().len();
        let mut backend = LeanBackend::new(tape.clone());
        backend.shown = Shown::cleared(Rect::new(0, 0, W, H));
        backend.draw(std::iter::empty()).unwrap();
        backend.hide_cursor().unwrap();
        Backend::flush(&mut backend).unwrap();
        let first = len();
        assert!(first > 0);
        backend.hide_cursor().unwrap();
        backend.draw(std::iter::empty()).unwrap();
        Backend::flush(&mut backend).unwrap();
        assert_eq!(len(), first);
    }

    #[test]
    fn a_scrolled_line_rewrites_short_gaps_instead_of_moving() {
        let mut shown = Shown::cleared(Rect::new(0, 0, 40, 1));
        let line = |s: &str| {
            let mut b = Buffer::empty(Rect::new(0, 0, 40, 1));
            b.set_string(0, 0, s, Style::default());
            b
        };
        let a = line("15:06:26 rolldeck [error-rate] pass");
        let b = line("15:06:31 rolldeck [latency-p95] pass");
        let mut out = Vec::new();
        let ups = |p: &Buffer, n: &Buffer| -> Vec<(u16, u16, Cell)> {
            p.diff(n)
                .into_iter()
                .map(|(x, y, c)| (x, y, c.clone()))
                .collect()
        };
        shown.write(ups(&Buffer::empty(a.area), &a), &mut out);
        out.clear();
        shown.write(ups(&a, &b), &mut out);
        // ratatui's diff: `31` at 6, `latency-p95] pa` at 19, `s` at 35
        // (the `s` of `pass` at 34 is unchanged). One absolute move, a
        // relative one over ` rolldeck [`, the one-cell gap re-written.
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\x1b[1;7H31\x1b[11Clatency-p95] pass");
    }
}
