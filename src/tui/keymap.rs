//! Key bindings as data, k9s-style.
//!
//! The default keymap is `src/tui/keymap.toml`, embedded into the binary; it
//! is a list of `[[keymap]]` entries (yazi's format):
//!
//! ```toml
//! [[keymap]]
//! on = ["R"]
//! run = "rollback"
//! context = "global"
//! desc = "roll back the release"
//! footer = true
//! label = "rollback"
//! ```
//!
//! Users rebind actions from their config with a `[keys]` table (action name
//! → keys), applied by [`Keymap::with_overrides`]. The help screen
//! ([`Keymap::help`]) and the footer hints ([`Keymap::footer`]) are generated
//! from the bindings, so they always show the keys actually in force.
//!
//! Lookup ([`Keymap::action`]) tries the focused [`Context`] first, then
//! [`Context::Global`], so a context binding shadows a global one (in a popup
//! `q` closes the popup instead of quitting).
//!
//! The `:` command line is parsed by [`parse_command`] (in
//! [`super::command`], re-exported here).

use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::command::{COMMANDS, CommandLine, parse_command};

/// The default keymap, embedded.
const DEFAULT_KEYMAP: &str = include_str!("keymap.toml");

/// What a key does. Serde names in snake_case (used in keymap.toml and config
/// overrides): `quit`, `command_mode`, `focus_pane_1` … `focus_pane_6`,
/// `promote_full`, `log_timestamps`, … (see [`Action::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave the cockpit (the release keeps running).
    Quit,
    /// Show the help (every binding).
    Help,
    /// Open the `:` command line.
    CommandMode,
    /// Filter the focused pane.
    Filter,
    /// Close the popup, clear the filter, leave zoom.
    Back,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PrevPane,
    /// Focus pane N (1..=5).
    FocusPane(u8),
    /// Zoom the focused pane to the full screen, or back.
    Zoom,
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// Move a page up.
    PageUp,
    /// Move a page down.
    PageDown,
    /// Go to the top.
    Top,
    /// Go to the bottom.
    Bottom,
    /// Open or act on the selected item.
    Select,
    /// Approve the waiting gate. Changes the world.
    Approve,
    /// Pause or resume the release. Changes the world.
    PauseResume,
    /// Promote to the next step. Changes the world.
    Promote,
    /// Promote straight to full traffic. Changes the world.
    PromoteFull,
    /// Set the canary weight. Changes the world.
    SetWeight,
    /// Retry the failed step. Changes the world.
    Retry,
    /// Roll the release back. Changes the world.
    Rollback,
    /// Abort the release where it stands. Changes the world.
    Abort,
    /// Follow the log tail (toggle).
    LogFollow,
    /// Wrap long log lines (toggle).
    LogWrap,
    /// Show log timestamps (toggle).
    LogTimestamps,
    /// Save the log to a file.
    LogSave,
    /// Refresh now.
    Refresh,
    /// Runbook pane: run the focused block (asks first when it is marked
    /// `confirm` or the environment is protected); without a runbook open,
    /// open the selected alert's runbook or show the selected action.
    RunbookRun,
    /// Runbook pane: tick (or untick) the focused check.
    RunbookTick,
    /// Runbook pane: the next step (block or check).
    RunbookNext,
    /// Runbook pane: the previous step.
    RunbookPrev,
    /// Export the incident timeline (Markdown) to a file.
    TimelineExport,
}

impl Action {
    /// Every action, each pane of [`Action::FocusPane`] included.
    pub const ALL: &'static [Action] = &[
        Action::Quit,
        Action::Help,
        Action::CommandMode,
        Action::Filter,
        Action::Back,
        Action::NextPane,
        Action::PrevPane,
        Action::FocusPane(1),
        Action::FocusPane(2),
        Action::FocusPane(3),
        Action::FocusPane(4),
        Action::FocusPane(5),
        Action::FocusPane(6),
        Action::Zoom,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Select,
        Action::Approve,
        Action::PauseResume,
        Action::Promote,
        Action::PromoteFull,
        Action::SetWeight,
        Action::Retry,
        Action::Rollback,
        Action::Abort,
        Action::LogFollow,
        Action::LogWrap,
        Action::LogTimestamps,
        Action::LogSave,
        Action::Refresh,
        Action::RunbookRun,
        Action::RunbookTick,
        Action::RunbookNext,
        Action::RunbookPrev,
        Action::TimelineExport,
    ];

    /// The action's snake_case name, as keymap.toml and config overrides
    /// write it. `FocusPane(n)` is `focus_pane_n`; a pane outside 1..=6 has
    /// the name `focus_pane`, which does not parse back.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::CommandMode => "command_mode",
            Action::Filter => "filter",
            Action::Back => "back",
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::FocusPane(1) => "focus_pane_1",
            Action::FocusPane(2) => "focus_pane_2",
            Action::FocusPane(3) => "focus_pane_3",
            Action::FocusPane(4) => "focus_pane_4",
            Action::FocusPane(5) => "focus_pane_5",
            Action::FocusPane(6) => "focus_pane_6",
            Action::FocusPane(_) => "focus_pane",
            Action::Zoom => "zoom",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Select => "select",
            Action::Approve => "approve",
            Action::PauseResume => "pause_resume",
            Action::Promote => "promote",
            Action::PromoteFull => "promote_full",
            Action::SetWeight => "set_weight",
            Action::Retry => "retry",
            Action::Rollback => "rollback",
            Action::Abort => "abort",
            Action::LogFollow => "log_follow",
            Action::LogWrap => "log_wrap",
            Action::LogTimestamps => "log_timestamps",
            Action::LogSave => "log_save",
            Action::Refresh => "refresh",
            Action::RunbookRun => "runbook_run",
            Action::RunbookTick => "runbook_tick",
            Action::RunbookNext => "runbook_next",
            Action::RunbookPrev => "runbook_prev",
            Action::TimelineExport => "timeline_export",
        }
    }

    /// The action called `name` (see [`Action::name`]), if any.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// True for the actions that change the release (approve, pause/resume,
    /// promote, promote full, set weight, retry, rollback, abort): the cockpit
    /// must confirm them before acting.
    pub fn changes_world(self) -> bool {
        matches!(
            self,
            Action::Approve
                | Action::PauseResume
                | Action::Promote
                | Action::PromoteFull
                | Action::SetWeight
                | Action::Retry
                | Action::Rollback
                | Action::Abort
        )
    }

    /// The error for an unknown action name, suggesting the nearest.
    fn unknown(name: &str) -> KeymapError {
        KeymapError::UnknownAction {
            name: name.to_string(),
            suggestion: nearest(name, Action::ALL.iter().map(|a| a.name())).map(str::to_string),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = KeymapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::from_name(s).ok_or_else(|| Action::unknown(s))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a binding applies: the focused pane, a popup, or everywhere.
/// Serde names in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    /// Everywhere, unless the focused context binds the key itself.
    #[default]
    Global,
    /// The pipeline pane.
    Pipeline,
    /// The canary analysis pane.
    Canary,
    /// The migrations pane.
    Migrations,
    /// The logs pane.
    Logs,
    /// The runbook pane.
    Runbook,
    /// The containers pane.
    Containers,
    /// A popup (confirmation, help).
    Popup,
}

impl Context {
    /// Every context, in help order.
    pub const ALL: [Context; 8] = [
        Context::Global,
        Context::Pipeline,
        Context::Canary,
        Context::Migrations,
        Context::Logs,
        Context::Runbook,
        Context::Containers,
        Context::Popup,
    ];

    /// The snake_case name, as keymap.toml writes it.
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Pipeline => "pipeline",
            Context::Canary => "canary",
            Context::Migrations => "migrations",
            Context::Logs => "logs",
            Context::Runbook => "runbook",
            Context::Containers => "containers",
            Context::Popup => "popup",
        }
    }

    /// The title of the context's group in the help.
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Global",
            Context::Pipeline => "Pipeline",
            Context::Canary => "Canary",
            Context::Migrations => "Migrations",
            Context::Logs => "Logs",
            Context::Runbook => "Runbook",
            Context::Containers => "Containers",
            Context::Popup => "Popup",
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A section of the help screen ([`Keymap::help`]), in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelpGroup {
    /// The keys that matter in an incident: every
    /// [`Action::changes_world`] action, then quit.
    Incident,
    /// Moving around, panes, popups opened from anywhere: the other global
    /// bindings and those of the pipeline, canary, migrations and runbook
    /// panes.
    Panes,
    /// The logs pane's own keys.
    Logs,
    /// The runbook pane's own keys (pane 5: the open runbook, alerts).
    Runbook,
    /// Keys inside a popup.
    Popups,
}

impl HelpGroup {
    /// Every group, in help order.
    pub const ALL: [HelpGroup; 5] = [
        HelpGroup::Incident,
        HelpGroup::Panes,
        HelpGroup::Logs,
        HelpGroup::Runbook,
        HelpGroup::Popups,
    ];

    /// The group's title in the help.
    pub fn title(self) -> &'static str {
        match self {
            HelpGroup::Incident => "The release (these ask first) and quitting",
            HelpGroup::Panes => "Panes and moving around",
            HelpGroup::Logs => "Logs pane",
            HelpGroup::Runbook => "Runbook pane (pane 5)",
            HelpGroup::Popups => "In a popup",
        }
    }
}

/// One key with its modifiers, as written in keymap files: `"q"`, `"?"`,
/// `"esc"`, `"shift-tab"`, `"ctrl-r"`, `"R"`, `"space"`, `"pgdn"`, `"f5"`, ….
///
/// Combos are kept normalised the way terminals report keys: a character is
/// matched case-sensitively and never carries SHIFT (`"R"` is
/// `Char('R')`; `"shift-r"` parses to the same), `shift-tab` is
/// `BackTab`, and `ctrl-` letters are lower case (terminals cannot tell
/// ctrl-r from ctrl-R). [`Display`](fmt::Display) gives the canonical text,
/// which parses back to the same combo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    /// The key.
    pub code: KeyCode,
    /// CONTROL, ALT and (for keys other than characters) SHIFT.
    pub modifiers: KeyModifiers,
}

/// A key string that does not parse (see [`KeyCombo`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad key `{key}`: {reason}")]
pub struct KeyParseError {
    /// The key string as written.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Named keys and their aliases; the first name of each key is the one
/// [`KeyCombo`]'s Display uses.
const NAMED_KEYS: &[(&str, KeyCode)] = &[
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("enter", KeyCode::Enter),
    ("return", KeyCode::Enter),
    ("space", KeyCode::Char(' ')),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("del", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("ins", KeyCode::Insert),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pgup", KeyCode::PageUp),
    ("pageup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
];

/// The modifiers a combo can carry; others (SUPER, HYPER, META) are ignored.
const MODIFIER_MASK: KeyModifiers = KeyModifiers::CONTROL
    .union(KeyModifiers::ALT)
    .union(KeyModifiers::SHIFT);

impl KeyCombo {
    /// The combo a key event stands for, normalised like parsed combos:
    /// SHIFT dropped from characters (a lower-case letter with SHIFT becomes
    /// upper case), shift-tab as `BackTab`, ctrl-letters lower case, and
    /// modifiers other than CONTROL/ALT/SHIFT ignored.
    pub fn from_event(event: &KeyEvent) -> KeyCombo {
        let mut modifiers = event.modifiers & MODIFIER_MASK;
        let shift = modifiers.contains(KeyModifiers::SHIFT);
        let code = match event.code {
            KeyCode::Char(c) => {
                modifiers.remove(KeyModifiers::SHIFT);
                if modifiers.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else if shift {
                    KeyCode::Char(c.to_ascii_uppercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if shift => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        KeyCombo { code, modifiers }
    }

    /// Whether `event` is this key (see [`KeyCombo::from_event`]).
    pub fn matches(&self, event: &KeyEvent) -> bool {
        KeyCombo::from_event(event) == *self
    }
}

impl FromStr for KeyCombo {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| KeyParseError {
            key: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(err("empty key".to_string()));
        }
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        'prefixes: loop {
            for (prefix, modifier) in [
                ("ctrl-", KeyModifiers::CONTROL),
                ("alt-", KeyModifiers::ALT),
                ("shift-", KeyModifiers::SHIFT),
            ] {
                if rest.len() > prefix.len()
                    && rest.is_char_boundary(prefix.len())
                    && rest[..prefix.len()].eq_ignore_ascii_case(prefix)
                {
                    modifiers |= modifier;
                    rest = &rest[prefix.len()..];
                    continue 'prefixes;
                }
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, code)) = NAMED_KEYS.iter().find(|(n, _)| *n == lower) {
                    *code
                } else if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    if !(1..=24).contains(&n) {
                        return Err(err("function keys go from f1 to f24".to_string()));
                    }
                    KeyCode::F(n)
                } else if let Some((modifier, _)) = rest.split_once('-')
                    && !modifier.is_empty()
                {
                    let hint = nearest(modifier, ["ctrl", "alt", "shift"])
                        .map(|s| format!("; did you mean `{s}-`?"))
                        .unwrap_or_default();
                    return Err(err(format!(
                        "unknown modifier `{modifier}-` (use ctrl-, alt- or shift-){hint}"
                    )));
                } else {
                    let hint = nearest(rest, NAMED_KEYS.iter().map(|(n, _)| *n))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(err(format!(
                        "unknown key name `{rest}` (use a single character or one of: esc tab \
                         enter space backspace delete insert up down left right pgup pgdn home \
                         end f1..f24){hint}"
                    )));
                }
            }
        };
        let code = match code {
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::SHIFT) => {
                if !c.is_ascii_alphabetic() {
                    return Err(err(format!(
                        "write the shifted character itself instead of shift-{c} \
                         (e.g. \"?\", not \"shift-/\")"
                    )));
                }
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c.to_ascii_uppercase())
            }
            KeyCode::Tab | KeyCode::BackTab if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        let code = match code {
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Ok(KeyCombo { code, modifiers })
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (modifier, prefix) in [
            (KeyModifiers::CONTROL, "ctrl-"),
            (KeyModifiers::ALT, "alt-"),
            (KeyModifiers::SHIFT, "shift-"),
        ] {
            if self.modifiers.contains(modifier) {
                f.write_str(prefix)?;
            }
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::F(n) => write!(f, "f{n}"),
            code => match NAMED_KEYS.iter().find(|(_, c)| *c == code) {
                Some((name, _)) => f.write_str(name),
                None => write!(f, "{}", format!("{code:?}").to_lowercase()),
            },
        }
    }
}

impl Serialize for KeyCombo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyCombo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One entry of the keymap: keys that run an action in a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The keys (any of them runs the action). Empty when unbound by an
    /// override.
    pub keys: Vec<KeyCombo>,
    /// What the keys do.
    pub action: Action,
    /// Where the binding applies.
    pub context: Context,
    /// The help text.
    pub desc: String,
    /// Whether the action changes the release ([`Action::changes_world`]):
    /// the cockpit confirms it first. Derived from the action, never
    /// configurable.
    pub changes_world: bool,
    /// Whether the binding is shown in the footer hints.
    pub footer: bool,
    /// The short footer label ("rollback", "help", …).
    pub label: String,
}

impl Binding {
    /// The help section this binding is listed in: world-changing actions
    /// and quit first, then by context (logs, popup, the rest).
    pub fn help_group(&self) -> HelpGroup {
        match self.context {
            _ if self.changes_world => HelpGroup::Incident,
            Context::Popup => HelpGroup::Popups,
            Context::Logs => HelpGroup::Logs,
            Context::Runbook => HelpGroup::Runbook,
            _ if self.action == Action::Quit => HelpGroup::Incident,
            _ => HelpGroup::Panes,
        }
    }
}

/// Why a keymap or a keymap override could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    /// The keymap file is not valid TOML or has unknown fields, actions,
    /// contexts or keys (the message has the line and column).
    #[error("keymap: {message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// An override names no action.
    #[error(
        "unknown action `{name}`{}",
        .suggestion.as_deref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    UnknownAction {
        /// The name as written.
        name: String,
        /// The nearest action name, if one is close.
        suggestion: Option<String>,
    },
    /// An override's key string does not parse.
    #[error("[keys] {action}: {error}")]
    BadKey {
        /// The action being rebound.
        action: Action,
        /// The key and what is wrong with it.
        error: KeyParseError,
    },
    /// An override's value is not a key string or a list of them.
    #[error("[keys] {action} must be a list of keys like [\"ctrl-x\", \"X\"], not {found}")]
    BadValue {
        /// The action being rebound.
        action: Action,
        /// The TOML type found.
        found: &'static str,
    },
    /// One key bound to two actions in the same context.
    #[error(
        "key `{key}` is bound to both `{first}` and `{second}` in the {context} context; \
         give one of them other keys"
    )]
    Conflict {
        /// The key.
        key: KeyCombo,
        /// The context of both bindings.
        context: Context,
        /// The first action bound to it.
        first: Action,
        /// The second action bound to it.
        second: Action,
    },
}

/// keymap.toml as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    keymap: Vec<Entry>,
}

/// One `[[keymap]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: Vec<KeyCombo>,
    run: Action,
    #[serde(default)]
    context: Context,
    desc: String,
    #[serde(default)]
    footer: bool,
    label: Option<String>,
}

/// The bindings in force: the default keymap plus the user's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Keymap {
    /// The default keymap, from the embedded `keymap.toml`.
    pub fn default_map() -> Keymap {
        // The embedded file is tested; a failure here is a build defect.
        Keymap::from_toml(DEFAULT_KEYMAP).unwrap_or_else(|e| panic!("default {e}"))
    }

    /// Parses a whole keymap in the keymap.toml format (`[[keymap]]` entries
    /// with `on`, `run`, `context`, `desc`, `footer`, `label`).
    ///
    /// # Errors
    ///
    /// [`KeymapError::Syntax`] for bad TOML, unknown fields, actions,
    /// contexts or keys; [`KeymapError::Conflict`] when a key is bound to
    /// two actions in one context.
    pub fn from_toml(text: &str) -> Result<Keymap, KeymapError> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| KeymapError::Syntax {
            message: e.to_string().trim().to_string(),
        })?;
        let bindings = file
            .keymap
            .into_iter()
            .map(|e| Binding {
                keys: e.on,
                action: e.run,
                context: e.context,
                label: e.label.unwrap_or_else(|| default_label(e.run)),
                desc: e.desc,
                changes_world: e.run.changes_world(),
                footer: e.footer,
            })
            .collect();
        let map = Keymap { bindings };
        map.check_conflicts()?;
        Ok(map)
    }

    /// Overrides from config: a TOML table like `[keys]\nrollback =
    /// ["ctrl-b"]\napprove = ["a"]` — action name → keys, replacing that
    /// action's keys. Unknown action names → error with the nearest valid
    /// name suggested; unparseable keys → error naming the key string.
    ///
    /// `overrides` may be the document holding the `[keys]` table (its other
    /// keys are then ignored) or the `[keys]` table itself. A value may be a
    /// list of key strings or a single one; an empty list unbinds the action.
    /// The new keys replace the action's keys in every context it is bound
    /// in; an action the map does not bind gets a global binding.
    ///
    /// # Errors
    ///
    /// [`KeymapError::UnknownAction`], [`KeymapError::BadKey`],
    /// [`KeymapError::BadValue`], and [`KeymapError::Conflict`] when the
    /// result binds one key to two actions in one context (e.g. `rollback =
    /// ["q"]` without moving `quit`).
    pub fn with_overrides(mut self, overrides: &toml::Table) -> Result<Keymap, KeymapError> {
        let table = match overrides.get("keys") {
            Some(toml::Value::Table(keys)) => keys,
            _ => overrides,
        };
        for (name, value) in table {
            let action: Action = name.parse()?;
            let strings: Vec<&str> = match value {
                toml::Value::String(s) => vec![s.as_str()],
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str().ok_or(KeymapError::BadValue {
                            action,
                            found: item.type_str(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(KeymapError::BadValue {
                        action,
                        found: other.type_str(),
                    });
                }
            };
            let mut keys: Vec<KeyCombo> = Vec::with_capacity(strings.len());
            for s in strings {
                let key = s
                    .parse()
                    .map_err(|error| KeymapError::BadKey { action, error })?;
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let mut found = false;
            for binding in self.bindings.iter_mut().filter(|b| b.action == action) {
                binding.keys.clone_from(&keys);
                found = true;
            }
            if !found {
                self.bindings.push(Binding {
                    keys,
                    action,
                    context: Context::Global,
                    desc: default_label(action),
                    changes_world: action.changes_world(),
                    footer: false,
                    label: default_label(action),
                });
            }
        }
        self.check_conflicts()?;
        Ok(self)
    }

    /// Resolve a key event: bindings of `context` first, then Global. None if
    /// unbound, and None for key-release events (terminals with the kitty
    /// keyboard protocol report those too).
    pub fn action(&self, context: Context, key: &crossterm::event::KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.resolve(context, KeyCombo::from_event(key))
            .map(|i| self.bindings[i].action)
    }

    /// Every key bound to `action`, in any context, in keymap order.
    pub fn keys_for(&self, action: Action) -> Vec<KeyCombo> {
        let mut keys = Vec::new();
        for binding in self.bindings.iter().filter(|b| b.action == action) {
            for key in &binding.keys {
                if !keys.contains(key) {
                    keys.push(*key);
                }
            }
        }
        keys
    }

    /// Help: every binding, grouped by [`HelpGroup`], as (group title,
    /// Vec<(keys text like "up, k", description)>). Generated from the
    /// data, never hard-coded.
    ///
    /// Groups come in [`HelpGroup::ALL`] order — the keys that matter in an
    /// incident first (approve, pause, promote, weight, rollback, abort,
    /// quit), then moving around and the panes, then the logs pane, then
    /// popups — and bindings in keymap order within a group; several keys
    /// are joined with ", " ("up, k"). Groups without bindings and bindings
    /// without keys are left out.
    pub fn help(&self) -> Vec<(String, Vec<(String, String)>)> {
        HelpGroup::ALL
            .iter()
            .filter_map(|&group| {
                let rows: Vec<(String, String)> = self
                    .bindings
                    .iter()
                    .filter(|b| b.help_group() == group && !b.keys.is_empty())
                    .map(|b| (keys_text(&b.keys), b.desc.clone()))
                    .collect();
                (!rows.is_empty()).then(|| (group.title().to_string(), rows))
            })
            .collect()
    }

    /// Footer hints for a context: short (keys, label) pairs of the most
    /// useful bindings (e.g. "?" help, ":" command, "tab" pane, "R" rollback,
    /// "q" quit), in keymap order, limited to the ones with `footer = true`
    /// in keymap.toml.
    ///
    /// Only bindings of `context` and Global count, each shown with its first
    /// key that actually reaches it in `context` (a shadowed global key is
    /// not advertised); a binding with no such key is left out.
    pub fn footer(&self, context: Context) -> Vec<(String, String)> {
        self.footer_bindings(context)
            .into_iter()
            .map(|(key, b)| (key.to_string(), b.label.clone()))
            .collect()
    }

    /// The bindings behind [`Keymap::footer`], each with the key shown for
    /// it: for callers that need more than the text, e.g. to hide the hints
    /// of [`Binding::changes_world`] actions in a read-only session.
    pub fn footer_bindings(&self, context: Context) -> Vec<(KeyCombo, &Binding)> {
        self.bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.footer && (b.context == context || b.context == Context::Global))
            .filter_map(|(i, b)| {
                let key = b
                    .keys
                    .iter()
                    .find(|k| self.resolve(context, **k) == Some(i))?;
                Some((*key, b))
            })
            .collect()
    }

    /// All bindings, in keymap order.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The index of the binding `key` reaches in `context`.
    fn resolve(&self, context: Context, key: KeyCombo) -> Option<usize> {
        let find = |ctx: Context| {
            self.bindings
                .iter()
                .position(|b| b.context == ctx && b.keys.contains(&key))
        };
        find(context).or_else(|| find(Context::Global))
    }

    /// Errors if one key runs two different actions in one context.
    fn check_conflicts(&self) -> Result<(), KeymapError> {
        for (i, a) in self.bindings.iter().enumerate() {
            for b in &self.bindings[i + 1..] {
                if a.context != b.context || a.action == b.action {
                    continue;
                }
                if let Some(key) = a.keys.iter().find(|k| b.keys.contains(k)) {
                    return Err(KeymapError::Conflict {
                        key: *key,
                        context: a.context,
                        first: a.action,
                        second: b.action,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Default for Keymap {
    /// [`Keymap::default_map`].
    fn default() -> Self {
        Keymap::default_map()
    }
}

/// The candidate nearest to `bad`, for "did you mean" hints: the one
/// suggestion rule of the project ([`crate::config::suggest`]).
pub(crate) fn nearest<'a>(
    bad: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    crate::config::suggest(bad, candidates)
}

/// "page_up" → "page up".
fn default_label(action: Action) -> String {
    action.name().replace('_', " ")
}

/// The keys of a binding as the help shows them: "up, k".
fn keys_text(keys: &[KeyCombo]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn combo(text: &str) -> KeyCombo {
        text.parse().unwrap()
    }

    #[test]
    fn default_keymap_parses_without_conflicts() {
        let map = Keymap::default_map();
        assert!(map.bindings().len() > 30);
        // Every action has a key.
        for action in Action::ALL {
            assert!(!map.keys_for(*action).is_empty(), "{action} is unbound");
        }
    }

    #[test]
    fn key_strings_round_trip() {
        for text in [
            "q",
            "?",
            ":",
            "/",
            "esc",
            "tab",
            "shift-tab",
            "enter",
            "up",
            "down",
            "pgup",
            "pgdn",
            "home",
            "end",
            "g",
            "G",
            "ctrl-r",
            "1",
            "5",
            "space",
            "R",
            "-",
            "ctrl--",
            "alt-x",
            "f5",
            "backspace",
            "delete",
            "shift-up",
            "ctrl-alt-d",
        ] {
            assert_eq!(combo(text).to_string(), text, "{text}");
        }
        assert_eq!(
            combo("R"),
            KeyCombo {
                code: KeyCode::Char('R'),
                modifiers: KeyModifiers::NONE
            }
        );
        assert_eq!(combo("shift-tab").code, KeyCode::BackTab);
        assert_eq!(combo("shift-tab").modifiers, KeyModifiers::NONE);
        assert_eq!(combo("shift-r"), combo("R"));
        assert_eq!(combo("ctrl-R"), combo("ctrl-r"));
        assert_eq!(combo("Esc"), combo("esc"));
        assert_eq!(combo("escape").to_string(), "esc");
        assert_eq!(combo(" ").to_string(), "space");
        assert_eq!(combo("PageDown").to_string(), "pgdn");
    }

    #[test]
    fn bad_key_strings() {
        assert!("".parse::<KeyCombo>().is_err());
        let e = "escp".parse::<KeyCombo>().unwrap_err();
        assert_eq!(e.key, "escp");
        assert!(e.reason.contains("did you mean `esc`"), "{e}");
        assert!(
            "shift-/"
                .parse::<KeyCombo>()
                .unwrap_err()
                .reason
                .contains("shifted")
        );
        assert!("f99".parse::<KeyCombo>().is_err());
        assert!("ctrl-".parse::<KeyCombo>().is_err());
        let e = "ctlr-x".parse::<KeyCombo>().unwrap_err();
        assert!(e.reason.contains("did you mean `ctrl-`"), "{e}");
    }

    #[test]
    fn events_normalise_like_terminals_report_them() {
        let r = combo("R");
        assert!(r.matches(&key(KeyCode::Char('R'), KeyModifiers::SHIFT)));
        assert!(r.matches(&key(KeyCode::Char('R'), KeyModifiers::NONE)));
        // kitty protocol style: base key plus SHIFT.
        assert!(r.matches(&key(KeyCode::Char('r'), KeyModifiers::SHIFT)));
        assert!(!r.matches(&key(KeyCode::Char('r'), KeyModifiers::NONE)));
        let q = combo("?");
        assert!(q.matches(&key(KeyCode::Char('?'), KeyModifiers::SHIFT)));
        let back = combo("shift-tab");
        assert!(back.matches(&key(KeyCode::BackTab, KeyModifiers::SHIFT)));
        assert!(back.matches(&key(KeyCode::Tab, KeyModifiers::SHIFT)));
        assert!(!back.matches(&key(KeyCode::Tab, KeyModifiers::NONE)));
        let ctrl_r = combo("ctrl-r");
        assert!(ctrl_r.matches(&key(KeyCode::Char('r'), KeyModifiers::CONTROL)));
        assert!(!ctrl_r.matches(&key(KeyCode::Char('r'), KeyModifiers::NONE)));
    }

    #[test]
    fn lookup_prefers_the_context_then_global() {
        let map = Keymap::default_map();
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(map.action(Context::Popup, &q), Some(Action::Back));
        assert_eq!(map.action(Context::Logs, &q), Some(Action::Quit));
        let f = key(KeyCode::Char('f'), KeyModifiers::NONE);
        assert_eq!(map.action(Context::Logs, &f), Some(Action::LogFollow));
        assert_eq!(map.action(Context::Canary, &f), None);
        let mut release = key(KeyCode::Char('R'), KeyModifiers::SHIFT);
        release.kind = KeyEventKind::Release;
        assert_eq!(map.action(Context::Global, &release), None);
    }

    #[test]
    fn footer_hides_shadowed_keys() {
        let map = Keymap::default_map();
        let global = map.footer(Context::Global);
        let keys: Vec<&str> = global.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["?", ":", "tab", "R", "q"]);
        assert!(global.contains(&("R".to_string(), "rollback".to_string())));
        let popup = map.footer(Context::Popup);
        assert!(
            popup.contains(&("ctrl-c".to_string(), "quit".to_string())),
            "{popup:?}"
        );
        assert!(
            popup.contains(&("esc".to_string(), "close".to_string())),
            "{popup:?}"
        );
        let logs = map.footer(Context::Logs);
        assert!(logs.contains(&("f".to_string(), "follow".to_string())));
        // Fits an 80-column footer with two spaces between hints.
        for context in Context::ALL {
            let width: usize = map
                .footer(context)
                .iter()
                .map(|(k, l)| k.chars().count() + 1 + l.chars().count() + 2)
                .sum();
            assert!(width <= 80, "{context}: {width}");
        }
    }

    #[test]
    fn overrides_accept_the_keys_table_or_its_contents() {
        let doc: toml::Table =
            toml::from_str("[keys]\nrollback = [\"X\"]\n[other]\nx = 1\n").unwrap();
        let map = Keymap::default_map().with_overrides(&doc).unwrap();
        assert_eq!(map.keys_for(Action::Rollback), vec![combo("X")]);
        let inner: toml::Table = toml::from_str("rollback = \"ctrl-x\"\napprove = []\n").unwrap();
        let map = Keymap::default_map().with_overrides(&inner).unwrap();
        assert_eq!(map.keys_for(Action::Rollback), vec![combo("ctrl-x")]);
        assert!(map.keys_for(Action::Approve).is_empty());
        let a = key(KeyCode::Char('a'), KeyModifiers::NONE);
        assert_eq!(map.action(Context::Global, &a), None);
    }

    #[test]
    fn override_errors() {
        let t: toml::Table = toml::from_str("[keys]\nrollback = [\"q\"]\n").unwrap();
        let e = Keymap::default_map().with_overrides(&t).unwrap_err();
        assert!(
            matches!(
                e,
                KeymapError::Conflict {
                    context: Context::Global,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("`q`"), "{e}");
        let t: toml::Table = toml::from_str("rollback = 3\n").unwrap();
        let e = Keymap::default_map().with_overrides(&t).unwrap_err();
        assert!(matches!(
            e,
            KeymapError::BadValue {
                action: Action::Rollback,
                found: "integer"
            }
        ));
        let t: toml::Table = toml::from_str("rollback = [\"ctlr-b\"]\n").unwrap();
        let e = Keymap::default_map().with_overrides(&t).unwrap_err();
        assert!(e.to_string().contains("`ctlr-b`"), "{e}");
    }

    #[test]
    fn keymap_file_errors() {
        let e = Keymap::from_toml("[[keymap]]\non = [\"x\"]\nrun = \"rolback\"\ndesc = \"\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `rollback`"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Keymap::from_toml("[[keymap]]\non = [\"escp\"]\nrun = \"back\"\ndesc = \"\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("`escp`"), "{e}");
        let e = Keymap::from_toml(
            "[[keymap]]\non = [\"x\"]\nrun = \"back\"\ndesc = \"\"\ncontext = \"logz\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("logz"), "{e}");
        let e = Keymap::from_toml("[[keymap]]\non = [\"x\"]\nrun = \"back\"\ndesk = \"\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("desk"), "{e}");
    }

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(*action));
        }
        assert_eq!(Action::FocusPane(9).name(), "focus_pane");
        assert_eq!(Action::from_name("focus_pane"), None);
        let e = "rolback".parse::<Action>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown action `rolback`; did you mean `rollback`?"
        );
    }
}
