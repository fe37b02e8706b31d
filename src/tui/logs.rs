//! The Logs pane: a bounded, filterable ring buffer of log lines
//! ([`LogBuffer`]), its ratatui widget ([`LogsView`]) and the tracing glue
//! that feeds rolldeck's own events into it ([`tracing_layer`],
//! [`init_tracing`]).
//!
//! Lines come from rolldeck itself (tracing events), from command and HTTP
//! actions, and later from containers. Every line is sanitised on the way in
//! ([`LogBuffer::push`]): terminal control sequences are removed, embedded
//! newlines split the text into several lines, and each line is capped at
//! [`MAX_LINE_CHARS`] characters, so that neither a hostile nor a noisy
//! producer can drive the operator's terminal or exhaust memory.
//!
//! # Scrolling model
//!
//! The buffer is either *following* (tailing: the newest matching lines are
//! shown) or *paused*. Scrolling up pauses; [`LogBuffer::bottom`] (End / `G`)
//! or [`LogBuffer::toggle_follow`] resumes. While paused the view is anchored
//! to its top line, so lines pushed meanwhile do not move what is on screen
//! (until that line itself is evicted from the ring).
//!
//! # Filter syntax (k9s style)
//!
//! * `text` — case-insensitive substring;
//! * `~regex` — regular expression (case-insensitive unless it says `(?-i)`);
//! * `!text`, `!~regex` — inverted: lines that do *not* match;
//! * `\!text`, `\~text` — a leading backslash makes the rest plain text.
//!
//! A filter is tested against the line's text, its source name (`rolldeck`,
//! the action or container name) and, for error and warning lines, the
//! level label shown on screen (`ERROR`, `WARN`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use regex::{Regex, RegexBuilder};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::exec::strip_control;

/// Default number of lines a [`LogBuffer`] keeps.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Longest line (in characters) the buffer stores; longer lines are cut and
/// end with `…`.
pub const MAX_LINE_CHARS: usize = 2000;

/// Longest source name (action or container) kept, in characters.
const MAX_SOURCE_CHARS: usize = 64;

/// Raw input looked at per line before stripping (bytes); bounds the work a
/// single enormous line can cause.
const MAX_RAW_LINE_BYTES: usize = 64 * 1024;

/// Containers whose dropped lines are counted one by one
/// ([`LogBuffer::dropped_of`]); lines of later ones count in the total only.
pub const MAX_DROPPED_SOURCES: usize = 256;

/// Lines the tracing layer queues while the buffer is locked elsewhere.
const PENDING_CAP: usize = 1024;

/// Tab stops used when drawing text containing tabs.
const TAB_WIDTH: usize = 8;

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// rolldeck's own events (tracing).
    Rolldeck,
    /// Output of a command or HTTP action, with the action's name.
    Action(String),
    /// Output of a container, with the container's name.
    Container(String),
}

impl LogSource {
    /// The short name shown in the source column: `rolldeck`, the action
    /// name or the container name.
    pub fn name(&self) -> &str {
        match self {
            LogSource::Rolldeck => "rolldeck",
            LogSource::Action(name) | LogSource::Container(name) => name,
        }
    }

    /// The qualified name written by [`LogBuffer::save`]: `rolldeck`,
    /// `action:NAME` or `container:NAME`.
    pub fn qualified(&self) -> String {
        match self {
            LogSource::Rolldeck => "rolldeck".to_owned(),
            LogSource::Action(name) => format!("action:{name}"),
            LogSource::Container(name) => format!("container:{name}"),
        }
    }

    /// The same source with its name sanitised and capped.
    fn sanitized(self) -> Self {
        let clean = |name: String| {
            let name = strip_control(&name);
            cap_chars(name, MAX_SOURCE_CHARS)
        };
        match self {
            LogSource::Rolldeck => LogSource::Rolldeck,
            LogSource::Action(name) => LogSource::Action(clean(name)),
            LogSource::Container(name) => LogSource::Container(clean(name)),
        }
    }
}

/// Severity of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Something failed; drawn in the `crit` style with an `ERROR` label.
    Error,
    /// Something looks wrong; drawn in the `warn` style with a `WARN` label.
    Warn,
    /// Normal output; drawn in the `text` style.
    Info,
    /// Detail; drawn in the `muted` style.
    Debug,
}

impl Level {
    /// Upper-case name: `ERROR`, `WARN`, `INFO`, `DEBUG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    /// The label drawn before the text (and matched by filters): only
    /// errors and warnings carry one.
    fn label(self) -> Option<&'static str> {
        match self {
            Level::Error => Some("ERROR"),
            Level::Warn => Some("WARN"),
            Level::Info | Level::Debug => None,
        }
    }
}

impl From<&tracing::Level> for Level {
    fn from(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// One line of the Logs pane.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When the line was produced.
    pub ts: jiff::Timestamp,
    /// Who produced it.
    pub source: LogSource,
    /// Its severity.
    pub level: Level,
    /// The text. Lines stored in a [`LogBuffer`] hold a single line without
    /// control sequences (see [`LogBuffer::push`]).
    pub text: String,
}

impl LogLine {
    /// A line stamped with the current time.
    pub fn new(source: LogSource, level: Level, text: impl Into<String>) -> Self {
        LogLine {
            ts: jiff::Timestamp::now(),
            source,
            level,
            text: text.into(),
        }
    }
}

/// A stored line with its sequence number and its filter verdict.
#[derive(Debug)]
struct Entry {
    /// Position in the stream of all lines ever pushed; contiguous in the
    /// ring, so `index = seq - front seq`.
    seq: u64,
    /// Whether the line passes the current filter.
    matches: bool,
    line: LogLine,
}

/// A parsed filter.
#[derive(Debug)]
struct Filter {
    /// What the user typed.
    source: String,
    regex: Regex,
    invert: bool,
}

impl Filter {
    /// Parses the k9s-style syntax described in the module docs; `Ok(None)`
    /// for a blank filter.
    fn parse(input: &str) -> Result<Option<Filter>, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let (invert, rest) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if invert && rest.is_empty() {
            return Err("nothing to invert after `!`".to_owned());
        }
        let pattern = if let Some(literal) = rest.strip_prefix('\\') {
            regex::escape(literal)
        } else if let Some(re) = rest.strip_prefix('~') {
            if re.is_empty() {
                return Err("empty regex after `~`".to_owned());
            }
            re.to_owned()
        } else {
            regex::escape(rest)
        };
        let regex = RegexBuilder::new(&pattern)
            .case_insensitive(true)
            .build()
            .map_err(|e| {
                // The syntax error's last line says what is wrong; the
                // lines before it draw a caret, useless in a status line.
                let msg = e.to_string();
                let detail = msg.lines().last().unwrap_or_default().trim();
                let detail = detail.strip_prefix("error: ").unwrap_or(detail);
                format!("invalid regex: {detail}")
            })?;
        Ok(Some(Filter {
            source: trimmed.to_owned(),
            regex,
            invert,
        }))
    }

    fn matches(&self, line: &LogLine) -> bool {
        let hit = self.regex.is_match(&line.text)
            || self.regex.is_match(line.source.name())
            || line.level.label().is_some_and(|l| self.regex.is_match(l));
        hit != self.invert
    }
}

/// Lines the tracing layer could not hand over because the buffer was locked
/// elsewhere; shared between a [`LogBuffer`] and its layers.
#[derive(Debug, Default)]
struct Pending {
    queue: Mutex<VecDeque<LogLine>>,
    /// `queue.len()`, readable without the lock.
    queued: AtomicUsize,
    /// Lines lost because the queue was full.
    lost: AtomicU64,
}

impl Pending {
    /// Queues `line`, or counts it as lost when the queue is full. Holds the
    /// queue's lock only for an O(1) push.
    fn enqueue(&self, line: LogLine) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= PENDING_CAP {
            self.lost.fetch_add(1, Ordering::Relaxed);
        } else {
            queue.push_back(line);
            self.queued.store(queue.len(), Ordering::Release);
        }
    }
}

/// A bounded ring buffer of log lines with view state (filter, follow/pause,
/// scroll position, wrap and timestamp toggles).
///
/// Memory is bounded: at most `capacity` lines (default
/// [`DEFAULT_CAPACITY`]) of at most [`MAX_LINE_CHARS`] characters each are
/// kept; older lines are dropped and counted ([`LogBuffer::dropped`]).
#[derive(Debug)]
pub struct LogBuffer {
    lines: VecDeque<Entry>,
    capacity: usize,
    /// Sequence number of the next line pushed (= lines ever stored).
    next_seq: u64,
    dropped: u64,
    /// Of `dropped`, the lines of each container (at most
    /// [`MAX_DROPPED_SOURCES`] names; later names count only in the total).
    dropped_by: std::collections::BTreeMap<String, u64>,
    /// Show only the lines of this source (the Containers pane's choice).
    source: Option<LogSource>,
    /// Lines in `lines` passing the filter.
    matching: usize,
    filter: Option<Filter>,
    follow: bool,
    /// While paused: the view starts at the first matching line whose
    /// sequence number is at least this.
    top: u64,
    wrap: bool,
    timestamps: bool,
    /// How many lines fit the viewport last drawn (used to turn "scroll up
    /// from the tail" into a top line). Atomic so that drawing, which only
    /// has `&self`, can record it.
    viewport: AtomicUsize,
    pending: Arc<Pending>,
}

impl Default for LogBuffer {
    fn default() -> Self {
        LogBuffer::new(DEFAULT_CAPACITY)
    }
}

impl LogBuffer {
    /// An empty buffer keeping at most `capacity` lines (at least one),
    /// following, with timestamps on and wrapping off.
    pub fn new(capacity: usize) -> Self {
        LogBuffer {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 0,
            dropped: 0,
            dropped_by: std::collections::BTreeMap::new(),
            source: None,
            matching: 0,
            filter: None,
            follow: true,
            top: 0,
            wrap: false,
            timestamps: true,
            viewport: AtomicUsize::new(0),
            pending: Arc::default(),
        }
    }

    /// Adds `line`, sanitised: control sequences are stripped
    /// ([`crate::exec::strip_control`]) from the text and the source name,
    /// embedded newlines split it into several lines (a trailing newline
    /// does not add an empty one), and each line is capped at
    /// [`MAX_LINE_CHARS`] characters. When the buffer is full the oldest
    /// line is evicted and counted in [`LogBuffer::dropped`]. While paused
    /// the view stays where it is.
    ///
    /// Lines queued by a [`tracing_layer`] are moved in first, keeping
    /// arrival order.
    pub fn push(&mut self, line: LogLine) {
        self.drain_pending();
        self.push_sanitized(line);
    }

    fn push_sanitized(&mut self, line: LogLine) {
        let LogLine {
            ts,
            source,
            level,
            text,
        } = line;
        let source = source.sanitized();
        let mut pieces: Vec<&str> = text.split('\n').collect();
        if pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
        for piece in pieces {
            let raw = truncate_bytes(piece, MAX_RAW_LINE_BYTES);
            let text = cap_chars(strip_control(raw), MAX_LINE_CHARS);
            self.push_one(LogLine {
                ts,
                source: source.clone(),
                level,
                text,
            });
        }
    }

    fn push_one(&mut self, line: LogLine) {
        if self.lines.len() >= self.capacity
            && let Some(old) = self.lines.pop_front()
        {
            if old.matches {
                self.matching -= 1;
            }
            self.dropped += 1;
            if let LogSource::Container(name) = &old.line.source {
                if let Some(n) = self.dropped_by.get_mut(name) {
                    *n += 1;
                } else if self.dropped_by.len() < MAX_DROPPED_SOURCES {
                    self.dropped_by.insert(name.clone(), 1);
                }
            }
        }
        let matches = self.passes(&line);
        if matches {
            self.matching += 1;
        }
        self.lines.push_back(Entry {
            seq: self.next_seq,
            matches,
            line,
        });
        self.next_seq += 1;
    }

    /// Moves the lines a [`tracing_layer`] queued while this buffer was
    /// locked elsewhere into the buffer, and adds the lines it had to drop
    /// to [`LogBuffer::dropped`]; returns how many lines were moved. The
    /// layer does this itself on its next event; call it before drawing so
    /// that the last events of a burst show up promptly. Cheap when nothing
    /// is queued.
    pub fn drain_pending(&mut self) -> usize {
        let lost = self.pending.lost.swap(0, Ordering::Relaxed);
        self.dropped += lost;
        if self.pending.queued.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let queued = {
            let mut queue = self
                .pending
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.pending.queued.store(0, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        let n = queued.len();
        for line in queued {
            self.push_sanitized(line);
        }
        n
    }

    /// Number of lines held (whether or not they pass the filter).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines lost so far: evicted from the full ring, or dropped by the
    /// tracing layer under contention.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Lines ever stored (including those evicted since). Grows by one per
    /// stored line.
    pub fn total(&self) -> u64 {
        self.next_seq
    }

    /// Sets (`Some`) or clears (`None`, or blank text) the filter; see the
    /// module docs for the syntax. On error (an invalid regex, `!` or `~`
    /// with nothing after it) the previous filter stays and the message is
    /// returned. While paused the view stays near where it was.
    ///
    /// # Errors
    ///
    /// A one-line message when the filter is invalid.
    pub fn set_filter(&mut self, f: Option<&str>) -> Result<(), String> {
        let filter = match f {
            Some(text) => Filter::parse(text)?,
            None => None,
        };
        self.filter = filter;
        let mut matching = 0;
        for entry in &mut self.lines {
            entry.matches = self.filter.as_ref().is_none_or(|f| f.matches(&entry.line))
                && self.source.as_ref().is_none_or(|s| *s == entry.line.source);
            matching += usize::from(entry.matches);
        }
        self.matching = matching;
        if !self.follow {
            let current = self.paused_top_index();
            let max_top = self.tail_top_index(self.fit());
            self.top = self.seq_at(current.min(max_top));
        }
        Ok(())
    }

    /// Whether `line` passes the text filter and the source filter.
    fn passes(&self, line: &LogLine) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(line))
            && self.source.as_ref().is_none_or(|s| *s == line.source)
    }

    /// Shows only the lines of `source` (`None`: every source), on top of
    /// the text filter. The Containers pane sets it to a container.
    pub fn set_source(&mut self, source: Option<LogSource>) {
        let text = self.filter.as_ref().map(|f| f.source.clone());
        self.source = source.map(LogSource::sanitized);
        // Re-marks every line, keeping the text filter (valid: it parsed).
        let _ = self.set_filter(text.as_deref());
    }

    /// The source filter ([`LogBuffer::set_source`]), if any.
    pub fn source(&self) -> Option<&LogSource> {
        self.source.as_ref()
    }

    /// Lines of container `name` evicted from the full ring (part of
    /// [`LogBuffer::dropped`]; 0 for a container past the first
    /// [`MAX_DROPPED_SOURCES`] names that lost lines).
    pub fn dropped_of(&self, name: &str) -> u64 {
        self.dropped_by.get(name).copied().unwrap_or(0)
    }

    /// The current filter as typed (trimmed), if any.
    pub fn filter(&self) -> Option<&str> {
        self.filter.as_ref().map(|f| f.source.as_str())
    }

    /// Number of held lines passing the filter (all lines without one).
    pub fn matching(&self) -> usize {
        self.matching
    }

    /// Whether the view follows the tail (`false` = paused).
    pub fn follow(&self) -> bool {
        self.follow
    }

    /// Pauses (keeping the lines currently shown) or resumes following.
    pub fn toggle_follow(&mut self) {
        if self.follow {
            let top = self.tail_top_index(self.fit());
            self.top = self.seq_at(top);
            self.follow = false;
        } else {
            self.follow = true;
        }
    }

    /// Whether long lines wrap (otherwise they are cut, ending in `…`).
    pub fn wrap(&self) -> bool {
        self.wrap
    }

    /// Switches wrapping of long lines on or off.
    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
    }

    /// Whether lines are drawn with their `HH:MM:SS` (UTC) timestamp.
    pub fn timestamps(&self) -> bool {
        self.timestamps
    }

    /// Switches the timestamp column on or off.
    pub fn toggle_timestamps(&mut self) {
        self.timestamps = !self.timestamps;
    }

    /// Scrolls `n` matching lines towards older lines; pauses following
    /// (even when everything already fits). `n == 0` does nothing.
    pub fn scroll_up(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let current = if self.follow {
            self.tail_top_index(self.fit())
        } else {
            self.paused_top_index()
        };
        let mut new = current;
        let mut moved = 0;
        for i in (0..current.min(self.lines.len())).rev() {
            if self.lines[i].matches {
                new = i;
                moved += 1;
                if moved == n {
                    break;
                }
            }
        }
        if moved == 0 {
            new = self.first_matching_index();
        }
        self.top = self.seq_at(new);
        self.follow = false;
    }

    /// Scrolls `n` matching lines towards newer lines, stopping when the
    /// newest line reaches the bottom of the last drawn viewport. Stays
    /// paused; use [`LogBuffer::bottom`] to follow again. Does nothing while
    /// following.
    pub fn scroll_down(&mut self, n: usize) {
        if self.follow || n == 0 {
            return;
        }
        let current = self.paused_top_index();
        let mut new = current;
        let mut moved = 0;
        for i in current.saturating_add(1)..self.lines.len() {
            if self.lines[i].matches {
                new = i;
                moved += 1;
                if moved == n {
                    break;
                }
            }
        }
        let max_top = self.tail_top_index(self.fit()).max(current);
        self.top = self.seq_at(new.min(max_top));
    }

    /// Jumps to the oldest line and pauses (Home / `g`).
    pub fn top(&mut self) {
        self.top = self.seq_at(0);
        self.follow = false;
    }

    /// Jumps to the newest line and follows again (End / `G`).
    pub fn bottom(&mut self) {
        self.follow = true;
    }

    /// Writes the lines passing the filter to `path`, one per line as
    /// `TIMESTAMP LEVEL SOURCE TEXT` (RFC 3339 UTC timestamp with
    /// milliseconds; source `rolldeck`, `action:NAME` or `container:NAME`),
    /// and returns how many were written. The file is created or truncated
    /// (mode 0600 on Unix when created: logs may hold sensitive output).
    ///
    /// # Errors
    ///
    /// Any I/O error creating or writing the file.
    pub fn save(&self, path: &Path) -> std::io::Result<usize> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut out = std::io::BufWriter::new(options.open(path)?);
        let mut written = 0;
        for entry in self.lines.iter().filter(|e| e.matches) {
            let line = &entry.line;
            writeln!(
                out,
                "{:.3} {:<5} {} {}",
                line.ts,
                line.level.as_str(),
                line.source.qualified(),
                line.text
            )?;
            written += 1;
        }
        out.flush()?;
        Ok(written)
    }

    /// The lines to show in a viewport of `height` rows (after the filter,
    /// honouring follow/scroll), oldest first: while following the newest
    /// `height` matching lines; while paused up to `height` matching lines
    /// from the anchored top line. Also records `height` as the viewport
    /// size used by later scrolling.
    pub fn visible(&self, height: usize) -> Vec<&LogLine> {
        self.viewport.store(height, Ordering::Relaxed);
        self.window(height).into_iter().map(|e| &e.line).collect()
    }

    /// The lines last in view: what [`LogBuffer::visible`] returned for the
    /// viewport last drawn (whole lines that fit), oldest first, without
    /// recording a viewport size. For the detail popup (`Enter`).
    pub fn in_view(&self) -> Vec<&LogLine> {
        self.window(self.fit())
            .into_iter()
            .map(|e| &e.line)
            .collect()
    }

    /// The entries [`LogBuffer::visible`] returns.
    fn window(&self, height: usize) -> Vec<&Entry> {
        if height == 0 {
            return Vec::new();
        }
        if self.follow {
            let mut out: Vec<&Entry> = self
                .lines
                .iter()
                .rev()
                .filter(|e| e.matches)
                .take(height)
                .collect();
            out.reverse();
            out
        } else {
            self.lines
                .iter()
                .skip(self.paused_top_index())
                .filter(|e| e.matches)
                .take(height)
                .collect()
        }
    }

    /// Matching lines after the entry with sequence number `seq`.
    fn matching_after(&self, seq: u64) -> usize {
        let start = self.index_of_seq(seq).saturating_add(1);
        self.lines.iter().skip(start).filter(|e| e.matches).count()
    }

    /// Lines that fit the last drawn viewport (at least one).
    fn fit(&self) -> usize {
        self.viewport.load(Ordering::Relaxed).max(1)
    }

    fn front_seq(&self) -> u64 {
        self.lines.front().map_or(self.next_seq, |e| e.seq)
    }

    /// Index of the line with sequence number `seq` (clamped to the ring).
    fn index_of_seq(&self, seq: u64) -> usize {
        let offset = seq.saturating_sub(self.front_seq());
        usize::try_from(offset).map_or(self.lines.len(), |o| o.min(self.lines.len()))
    }

    /// Sequence number at `index` (the next one when past the end).
    fn seq_at(&self, index: usize) -> u64 {
        self.lines.get(index).map_or(self.next_seq, |e| e.seq)
    }

    fn first_matching_index(&self) -> usize {
        self.lines
            .iter()
            .position(|e| e.matches)
            .unwrap_or(self.lines.len())
    }

    /// Index of the first line shown while paused.
    fn paused_top_index(&self) -> usize {
        let start = self.index_of_seq(self.top);
        self.lines
            .iter()
            .skip(start)
            .position(|e| e.matches)
            .map_or(self.lines.len(), |p| start + p)
    }

    /// Index of the top line when the newest `fit` matching lines are shown.
    fn tail_top_index(&self, fit: usize) -> usize {
        let mut top = self.lines.len();
        let mut seen = 0;
        for (i, entry) in self.lines.iter().enumerate().rev() {
            if entry.matches {
                top = i;
                seen += 1;
                if seen >= fit {
                    break;
                }
            }
        }
        top
    }

    /// Records how many lines fitted when drawing.
    fn note_fit(&self, lines: usize) {
        self.viewport.store(lines, Ordering::Relaxed);
    }
}

/// Styles of the Logs pane. Plain ratatui styles, filled in by the theme;
/// [`Default`] uses modifiers only (no colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStyles {
    /// Normal text (info lines, action output).
    pub text: Style,
    /// Secondary text: timestamps, source tags, debug lines.
    pub muted: Style,
    /// Warning lines and the `[paused]` marker.
    pub warn: Style,
    /// Error lines.
    pub crit: Style,
    /// The border when the pane is not focused.
    pub border: Style,
    /// The border when the pane is focused.
    pub border_focus: Style,
    /// The title.
    pub title: Style,
}

impl Default for LogStyles {
    fn default() -> Self {
        LogStyles {
            text: Style::new(),
            muted: Style::new().add_modifier(Modifier::DIM),
            warn: Style::new().add_modifier(Modifier::BOLD),
            crit: Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            border: Style::new().add_modifier(Modifier::DIM),
            border_focus: Style::new().add_modifier(Modifier::BOLD),
            title: Style::new().add_modifier(Modifier::BOLD),
        }
    }
}

/// The Logs pane widget: a bordered block whose title shows the state
/// (` Logs  [follow] [wrap] filter: 5xx  12/1234 lines, 17 dropped `) and
/// whose body shows [`LogBuffer::visible`] lines as `HH:MM:SS ` (in
/// [`LogsView::time_zone`], named in the title, when timestamps are on) + source tag + `ERROR`/`WARN` label + text.
///
/// Errors use the `crit` style, warnings `warn`, other output `text`, debug
/// lines, timestamps and source tags `muted`. Long lines wrap (with a
/// hanging indent) or are cut with `…`. Drawing never panics, whatever the
/// area (including zero width or height).
#[derive(Debug, Clone, Copy)]
pub struct LogsView<'a> {
    /// The lines and view state to draw.
    pub buffer: &'a LogBuffer,
    /// Whether the pane has keyboard focus (border style).
    pub focused: bool,
    /// Styles to draw with.
    pub styles: LogStyles,
    /// The zone timestamps are shown in (the cockpit passes the local one;
    /// `None`: UTC). The title names the zone once instead of every line.
    pub time_zone: Option<&'a jiff::tz::TimeZone>,
    /// The source tag's style per container name (one colour per
    /// container); other tags are `muted`.
    pub container_tags: Option<&'a std::collections::BTreeMap<String, Style>>,
}

impl<'a> LogsView<'a> {
    /// An unfocused view of `buffer` with default styles.
    pub fn new(buffer: &'a LogBuffer) -> Self {
        LogsView {
            buffer,
            focused: false,
            styles: LogStyles::default(),
            time_zone: None,
            container_tags: None,
        }
    }

    /// The zone times are shown in.
    fn zone(&self) -> jiff::tz::TimeZone {
        self.time_zone.cloned().unwrap_or(jiff::tz::TimeZone::UTC)
    }

    fn title(&self, below: usize) -> Line<'static> {
        let b = self.buffer;
        let s = &self.styles;
        let mut spans = vec![Span::styled(" 4 Logs  ", s.title)];
        if b.follow {
            spans.push(Span::styled("[follow]", s.title));
        } else if below > 0 {
            spans.push(Span::styled(format!("[paused, {below} below]"), s.warn));
        } else {
            spans.push(Span::styled("[paused]", s.warn));
        }
        if b.wrap {
            spans.push(Span::styled(" [wrap]", s.title));
        }
        if b.timestamps
            && let Some(newest) = b.lines.back()
        {
            let zone = newest.line.ts.to_zoned(self.zone());
            spans.push(Span::styled(
                format!(" [times {}]", zone.strftime("%Z")),
                s.title,
            ));
        }
        if let Some(src) = &b.source {
            let shown = fit_width_tail(src.name(), 24).trim_end().to_string();
            spans.push(Span::styled(format!(" only {shown}"), s.warn));
        }
        if let Some(filter) = b.filter() {
            let shown = cap_chars(strip_control(filter), 24);
            spans.push(Span::styled(format!(" filter: {shown}"), s.title));
        }
        let mut counts = if b.filter.is_some() || b.source.is_some() {
            format!("  {}/{} lines", b.matching, b.len())
        } else {
            format!("  {} lines", b.len())
        };
        if b.dropped > 0 {
            let _ = write!(counts, ", {} dropped", b.dropped);
            if let Some(LogSource::Container(name)) = &b.source {
                let _ = write!(counts, " ({} of its lines)", b.dropped_of(name));
            }
        }
        counts.push(' ');
        spans.push(Span::styled(counts, s.title));
        Line::from(spans)
    }

    /// The spans of one line: timestamp, padded source tag, level label,
    /// text (tabs expanded).
    fn spans(&self, line: &LogLine, tag_width: usize) -> Vec<Span<'static>> {
        let s = &self.styles;
        let mut spans = Vec::with_capacity(4);
        if self.buffer.timestamps {
            spans.push(Span::styled(
                line.ts
                    .to_zoned(self.zone())
                    .strftime("%H:%M:%S ")
                    .to_string(),
                s.muted,
            ));
        }
        // Container names share a prefix (`app-1a2b-stable`, `app-1a2b-canary`)
        // and differ at the end: a cut one keeps its end.
        let tag = match &line.source {
            LogSource::Container(name) => fit_width_tail(name, tag_width),
            other => fit_width(other.name(), tag_width),
        };
        let tag_style = match (&line.source, self.container_tags) {
            (LogSource::Container(name), Some(tags)) => tags.get(name).copied().unwrap_or(s.muted),
            _ => s.muted,
        };
        spans.push(Span::styled(format!("{tag} "), tag_style));
        let style = match line.level {
            Level::Error => s.crit,
            Level::Warn => s.warn,
            Level::Info => s.text,
            Level::Debug => s.muted,
        };
        if let Some(label) = line.level.label() {
            spans.push(Span::styled(format!("{label} "), style));
        }
        spans.push(Span::styled(expand_tabs(&line.text), style));
        spans
    }
}

impl Widget for LogsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let b = self.buffer;
        let height = usize::from(area.height.saturating_sub(2));
        let width = usize::from(area.width.saturating_sub(2));
        let window = b.window(height);
        let below = if b.follow {
            0
        } else {
            window.last().map_or(0, |e| b.matching_after(e.seq))
        };
        let border = if self.focused {
            self.styles.border_focus
        } else {
            self.styles.border
        };
        let block = Block::bordered()
            .border_style(border)
            .title(self.title(below));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() || height == 0 || width == 0 {
            return;
        }
        if window.is_empty() {
            b.note_fit(height);
            let msg = if b.is_empty() {
                "no log lines yet"
            } else {
                "no lines match the filter"
            };
            Paragraph::new(Span::styled(msg, self.styles.muted)).render(inner, buf);
            return;
        }

        let tag_cap = (width / 5).clamp(4, 16);
        let tag_width = window
            .iter()
            .map(|e| Span::raw(e.line.source.name()).width())
            .max()
            .unwrap_or(0)
            .min(tag_cap);
        let ellipsis = self.styles.muted;
        let mut rows: Vec<Line<'static>> = Vec::new();
        let mut rows_per_line: Vec<usize> = Vec::with_capacity(window.len());
        for entry in &window {
            let spans = self.spans(&entry.line, tag_width);
            let before = rows.len();
            if b.wrap {
                let prefix: usize = spans
                    .iter()
                    .take(spans.len().saturating_sub(1))
                    .map(Span::width)
                    .sum();
                let indent = if prefix <= width / 2 { prefix } else { 0 };
                wrap_into(&Line::from(spans), width, indent, &mut rows);
            } else {
                rows.push(truncate_line(Line::from(spans), width, ellipsis));
            }
            rows_per_line.push(rows.len() - before);
        }

        // Following shows the last rows, paused the first ones; record how
        // many whole lines fit for the next scroll.
        let shown = if b.follow {
            let skip = rows.len().saturating_sub(height);
            rows.split_off(skip)
        } else {
            rows.truncate(height);
            rows
        };
        let fit = if b.follow {
            whole_lines(rows_per_line.iter().rev(), height)
        } else {
            whole_lines(rows_per_line.iter(), height)
        };
        b.note_fit(fit.max(1));
        Paragraph::new(shown).render(inner, buf);
    }
}

/// How many lines, taking `rows` rows each (in drawing order), fit
/// entirely in `height` rows.
fn whole_lines<'r>(rows: impl Iterator<Item = &'r usize>, height: usize) -> usize {
    let mut used = 0;
    rows.take_while(|&&n| {
        used += n;
        used <= height
    })
    .count()
}

/// `s` cut to `max` characters, the last being `…` when cut.
fn cap_chars(mut s: String, max: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(max) {
        let keep = s
            .char_indices()
            .nth(max.saturating_sub(1))
            .map_or(cut, |(i, _)| i);
        s.truncate(keep);
        if max > 0 {
            s.push('…');
        }
    }
    s
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` padded or cut (with `…`) to exactly `width` columns.
/// `s` padded or cut to exactly `width` columns, a cut keeping its end
/// after a leading `…`.
fn fit_width_tail(s: &str, width: usize) -> String {
    let total = Span::raw(s).width();
    if total <= width {
        return fit_width(s, width);
    }
    if width == 0 {
        return String::new();
    }
    let span = Span::raw(s);
    let graphemes: Vec<&str> = span
        .styled_graphemes(Style::new())
        .map(|g| g.symbol)
        .collect();
    let mut tail: Vec<&str> = Vec::new();
    let mut used = 1;
    for g in graphemes.iter().rev() {
        let w = usize::from(g.cell_width());
        if used + w > width {
            break;
        }
        used += w;
        tail.push(g);
    }
    let mut out = String::from("…");
    out.extend(tail.into_iter().rev());
    out.push_str(&" ".repeat(width - used));
    out
}

fn fit_width(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let total = Span::raw(s).width();
    for g in Span::raw(s).styled_graphemes(Style::new()) {
        let w = usize::from(g.symbol.cell_width());
        let room = if total > width {
            width.saturating_sub(1)
        } else {
            width
        };
        if used + w > room {
            break;
        }
        out.push_str(g.symbol);
        used += w;
    }
    if total > width && width > 0 {
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// Tabs replaced by spaces up to the next multiple of [`TAB_WIDTH`]
/// (ratatui would drop them).
fn expand_tabs(s: &str) -> String {
    if !s.contains('\t') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut col = 0;
    for c in s.chars() {
        if c == '\t' {
            let n = TAB_WIDTH - col % TAB_WIDTH;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += 1;
        }
    }
    out
}

/// Appends a grapheme to a row being built, merging runs of one style.
fn push_grapheme(row: &mut Vec<Span<'static>>, symbol: &str, style: Style) {
    if let Some(last) = row.last_mut()
        && last.style == style
    {
        last.content.to_mut().push_str(symbol);
        return;
    }
    row.push(Span::styled(symbol.to_owned(), style));
}

/// `line` wrapped into rows of `width` columns (character wrap); rows after
/// the first start with `indent` spaces.
fn wrap_into(line: &Line<'_>, width: usize, indent: usize, out: &mut Vec<Line<'static>>) {
    let indent = if indent >= width { 0 } else { indent };
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    let mut start = 0;
    for g in line.styled_graphemes(Style::new()) {
        let w = usize::from(g.symbol.cell_width());
        if w == 0 {
            continue;
        }
        if used + w > width && used > start {
            out.push(Line::from(std::mem::take(&mut row)));
            row.push(Span::raw(" ".repeat(indent)));
            used = indent;
            start = indent;
        }
        push_grapheme(&mut row, g.symbol, g.style);
        used += w;
    }
    out.push(Line::from(row));
}

/// `line` cut to `width` columns, ending in `…` when cut.
fn truncate_line(line: Line<'static>, width: usize, ellipsis: Style) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let room = width.saturating_sub(1);
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for g in line.styled_graphemes(Style::new()) {
        let w = usize::from(g.symbol.cell_width());
        if w == 0 {
            continue;
        }
        if used + w > room {
            break;
        }
        push_grapheme(&mut row, g.symbol, g.style);
        used += w;
    }
    if width > 0 {
        row.push(Span::styled("…", ellipsis));
    }
    Line::from(row)
}

/// Collects an event's message and fields as `message key=value …`.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn field(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={}", field.name(), value);
        }
    }

    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// The tracing layer behind [`tracing_layer`].
struct BufferLayer {
    buf: Arc<Mutex<LogBuffer>>,
    pending: Arc<Pending>,
    notify: Option<tokio::sync::watch::Sender<u64>>,
    events: AtomicU64,
}

impl<S: tracing::Subscriber> Layer<S> for BufferLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = EventText::default();
        event.record(&mut text);
        let line = LogLine {
            ts: jiff::Timestamp::now(),
            source: LogSource::Rolldeck,
            level: Level::from(event.metadata().level()),
            text: text.finish(),
        };
        match self.buf.try_lock() {
            Ok(mut buf) => buf.push(line),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().push(line),
            Err(TryLockError::WouldBlock) => self.pending.enqueue(line),
        }
        let n = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(notify) = &self.notify {
            notify.send_replace(n);
        }
    }
}

/// Which events reach the Logs pane: rolldeck's own, down to debug.
fn rolldeck_targets() -> Targets {
    Targets::new().with_target("rolldeck", tracing::Level::DEBUG)
}

/// A tracing layer forwarding rolldeck's own events (targets `rolldeck` and
/// `rolldeck::…`, debug and above) into `buf` as [`LogSource::Rolldeck`]
/// lines: level, then the message followed by the fields as `key=value`.
///
/// It never blocks on `buf`: when the buffer is locked elsewhere (the UI is
/// drawing), the line is queued (bounded; beyond that it is counted in
/// [`LogBuffer::dropped`]) and moved in by the next event or by
/// [`LogBuffer::drain_pending`]. After each event `notify`, if given,
/// receives a counter of events forwarded so far, to wake the UI.
///
/// Building the layer locks `buf` once, briefly.
pub fn tracing_layer<S>(
    buf: Arc<Mutex<LogBuffer>>,
    notify: Option<tokio::sync::watch::Sender<u64>>,
) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let pending = buf
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pending
        .clone();
    BufferLayer {
        buf,
        pending,
        notify,
        events: AtomicU64::new(0),
    }
    .with_filter(rolldeck_targets())
}

/// Why [`init_tracing`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InitTracingError {
    /// A global tracing subscriber was installed before (for example by an
    /// earlier call).
    #[error("a global tracing subscriber is already set")]
    AlreadySet,
}

/// Installs the global tracing subscriber for the cockpit: a registry with
/// [`tracing_layer`] (rolldeck's events into `buf`) and tui-logger's
/// `TuiTracingSubscriberLayer` (rolldeck's events from debug, other crates'
/// from warn) and sets tui-logger's default level.
///
/// tui-logger's own `init_logger` is not called: it starts a thread that
/// wakes every 10 ms to move events from its hot buffer (100 wake-ups a
/// second, most of an idle cockpit's CPU). The cockpit moves them itself
/// before each frame ([`tui_logger::move_events`] in `run.rs`); between
/// frames tui-logger's hot buffer keeps up to 1000 events and counts any
/// overrun in the `:debug` view.
///
/// # Errors
///
/// [`InitTracingError::AlreadySet`] (instead of a panic) when a global
/// subscriber is already set; nothing was installed then.
pub fn init_tracing(
    buf: Arc<Mutex<LogBuffer>>,
    notify: Option<tokio::sync::watch::Sender<u64>>,
) -> Result<(), InitTracingError> {
    let tui_targets = rolldeck_targets().with_default(tracing::Level::WARN);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_layer(buf, notify))
        .with(tui_logger::TuiTracingSubscriberLayer.with_filter(tui_targets));
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| InitTracingError::AlreadySet)?;
    tui_logger::set_default_level(tui_logger::LevelFilter::Debug);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine::new(LogSource::Rolldeck, Level::Info, text)
    }

    #[test]
    fn cap_chars_counts_characters() {
        assert_eq!(cap_chars("abc".into(), 3), "abc");
        assert_eq!(cap_chars("abcd".into(), 3), "ab…");
        assert_eq!(cap_chars("äöüß".into(), 2), "ä…");
        assert_eq!(cap_chars("x".into(), 0), "");
    }

    #[test]
    fn truncate_bytes_respects_boundaries() {
        assert_eq!(truncate_bytes("ééé", 3), "é");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }

    #[test]
    fn fit_width_pads_and_cuts() {
        assert_eq!(fit_width_tail("ab", 4), "ab  ");
        assert_eq!(fit_width_tail("app-stable", 7), "…stable");
        assert_eq!(fit_width_tail("app-stable", 0), "");
        assert_eq!(fit_width("ab", 4), "ab  ");
        assert_eq!(fit_width("abcdef", 4), "abc…");
        assert_eq!(fit_width("日本語", 4), "日… ");
        assert_eq!(fit_width("abc", 0), "");
    }

    #[test]
    fn tabs_expand_to_stops() {
        assert_eq!(expand_tabs("a\tb"), "a       b");
        assert_eq!(expand_tabs("abcdefgh\tx"), "abcdefgh        x");
    }

    #[test]
    fn wrap_uses_hanging_indent() {
        let mut rows = Vec::new();
        let l = Line::from(vec![Span::raw("ab "), Span::raw("cdefgh")]);
        wrap_into(&l, 5, 3, &mut rows);
        let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        assert_eq!(text, ["ab cd", "   ef", "   gh"]);
        // A grapheme wider than the row still makes progress.
        let mut rows = Vec::new();
        wrap_into(&Line::raw("日本"), 1, 0, &mut rows);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn truncate_marks_cut_lines() {
        let l = truncate_line(Line::raw("abcdef"), 4, Style::new());
        assert_eq!(l.to_string(), "abc…");
        let l = truncate_line(Line::raw("abc"), 4, Style::new());
        assert_eq!(l.to_string(), "abc");
        let l = truncate_line(Line::raw("abc"), 0, Style::new());
        assert_eq!(l.to_string(), "");
    }

    #[test]
    fn filter_syntax() {
        assert!(Filter::parse("  ").unwrap().is_none());
        assert!(Filter::parse("!").is_err());
        assert!(Filter::parse("~").is_err());
        let f = Filter::parse(r"\!bang").unwrap().unwrap();
        assert!(f.matches(&line("a !BANG here")));
        let f = Filter::parse("!~^GET").unwrap().unwrap();
        assert!(!f.matches(&line("get /")));
        assert!(f.matches(&line("POST /")));
        // Level labels and source names are matched too.
        let f = Filter::parse("error").unwrap().unwrap();
        assert!(f.matches(&LogLine::new(LogSource::Rolldeck, Level::Error, "boom")));
        assert!(!f.matches(&line("boom")));
        let f = Filter::parse("deploy").unwrap().unwrap();
        assert!(f.matches(&LogLine::new(
            LogSource::Action("deploy-api".into()),
            Level::Info,
            "ok"
        )));
    }

    #[test]
    fn save_format() {
        let mut b = LogBuffer::new(10);
        let ts: jiff::Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        b.push(LogLine {
            ts,
            source: LogSource::Action("deploy".into()),
            level: Level::Warn,
            text: "slow\tstart".into(),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        assert_eq!(b.save(&path).unwrap(), 1);
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            got,
            "2024-05-01T12:00:00.000Z WARN  action:deploy slow\tstart\n"
        );
    }

    #[test]
    fn pending_lines_are_drained_in_order_and_overflow_counted() {
        let mut b = LogBuffer::new(10_000);
        for i in 0..PENDING_CAP + 5 {
            b.pending.enqueue(line(&format!("q{i}")));
        }
        b.push(line("direct"));
        assert_eq!(b.len(), PENDING_CAP + 1);
        assert_eq!(b.dropped(), 5);
        assert_eq!(b.visible(1)[0].text, "direct");
        assert_eq!(b.drain_pending(), 0);
    }

    #[test]
    fn source_filter_shows_one_container_and_drops_are_counted_per_container() {
        let mut b = LogBuffer::new(4);
        let c = |name: &str, text: &str| {
            LogLine::new(LogSource::Container(name.into()), Level::Info, text)
        };
        for i in 0..3 {
            b.push(c("web-1", &format!("w{i}")));
        }
        b.push(line("ours"));
        b.push(c("web-2", "x0"));
        b.push(c("web-2", "x1"));
        // 6 pushed into 4: web-1's w0 and w1 evicted.
        assert_eq!(b.dropped(), 2);
        assert_eq!(b.dropped_of("web-1"), 2);
        assert_eq!(b.dropped_of("web-2"), 0);
        b.set_source(Some(LogSource::Container("web-2".into())));
        let shown: Vec<&str> = b.visible(10).iter().map(|l| l.text.as_str()).collect();
        assert_eq!(shown, ["x0", "x1"]);
        assert_eq!(b.matching(), 2);
        // Composes with the text filter; a new line of another source is
        // not shown.
        b.set_filter(Some("x1")).unwrap();
        b.push(c("web-1", "x1 too"));
        let shown: Vec<&str> = b.visible(10).iter().map(|l| l.text.as_str()).collect();
        assert_eq!(shown, ["x1"]);
        assert_eq!(b.dropped_of("web-1"), 3, "w2 evicted now");
        assert_eq!(b.dropped_of("web-2"), 0);
        b.set_source(None);
        let shown: Vec<&str> = b.visible(10).iter().map(|l| l.text.as_str()).collect();
        assert_eq!(shown, ["x1", "x1 too"]);
        assert_eq!(b.filter(), Some("x1"), "the text filter stays");
    }
}
