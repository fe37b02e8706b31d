//! Colour themes for the cockpit.
//!
//! A [`Theme`] is a set of named style slots (`ok`, `warn`, `crit`, `muted`,
//! `selection`, …). Themes are data: the built-in ones are the TOML files in
//! `themes/` embedded into the binary, and a user can copy one of them, edit
//! it and pass its path to `--theme`. Slots a file leaves out fall back to the
//! built-in `dark` theme (or to the theme named by a top-level `extends`).
//!
//! The format of a theme file:
//!
//! ```toml
//! # optional: which built-in theme fills the slots left out (default "dark")
//! extends = "light"
//! # optional: forbid colours; left-out slots then fall back to "mono"
//! monochrome = false
//!
//! ok = { fg = "green" }
//! crit = { fg = "#ff5f5f", bold = true }
//! muted = { fg = "indexed:245" }
//! selection = { reverse = true }
//! ```
//!
//! A slot is a table of `fg` and `bg` (a colour: `"reset"`, one of the 16 ANSI
//! names such as `"red"` or `"lightred"`, `"indexed:N"` or `"#rrggbb"`) and the
//! flags `bold`, `reverse`, `underline` and `dim`. Unknown slots, keys and
//! colour names are errors that give the line and suggest the nearest valid
//! name.
//!
//! [`Theme::select`] implements the selection rule: `NO_COLOR`
//! (<https://no-color.org>) forces the colourless `mono` theme, otherwise the
//! requested theme (a built-in name or a path), otherwise `dark`.

use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use toml::de::{DeTable, DeValue};

use super::keymap::nearest;

/// The built-in themes, in the order [`Theme::builtin_names`] lists them:
/// (name, TOML source).
const BUILTINS: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("ansi16", include_str!("../../themes/ansi16.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// The names of the built-in themes.
const BUILTIN_NAMES: &[&str] = &["dark", "light", "high-contrast", "ansi16", "mono"];

/// Top-level keys of a theme file that are not slots.
const META_KEYS: &[&str] = &["extends", "monochrome"];

/// The keys allowed inside a slot table.
const SLOT_KEYS: &[&str] = &["fg", "bg", "bold", "reverse", "underline", "dim"];

/// The colour names a theme file may use, with the colour each stands for.
/// Aliases (`grey`, `bright-red`, `default`, …) are handled in
/// [`parse_colour`].
const COLOUR_NAMES: &[(&str, Color)] = &[
    ("reset", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("lightred", Color::LightRed),
    ("lightgreen", Color::LightGreen),
    ("lightyellow", Color::LightYellow),
    ("lightblue", Color::LightBlue),
    ("lightmagenta", Color::LightMagenta),
    ("lightcyan", Color::LightCyan),
    ("white", Color::White),
];

/// A colour theme: named style slots. Loaded from TOML (see `themes/*.toml`):
/// each slot is a table `{ fg = "red" | "#rrggbb" | "indexed:208" | "reset",
/// bg = …, bold = bool, reverse = bool, underline = bool, dim = bool }`.
///
/// Widgets should take every style from a slot, never from a literal colour,
/// so that `mono` (NO_COLOR) and user themes apply everywhere. Verdicts use
/// `ok` (pass), `warn` (inconclusive), `crit` (fail) and `muted` (pending or
/// stale); colour alone must not carry the meaning — show the verdict word
/// too, as `mono` has only bold/reverse/underline/dim to work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// The theme's name: the built-in name, or the file stem of a theme file.
    pub name: String,
    /// Verdict pass; healthy values.
    pub ok: Style,
    /// Verdict inconclusive; warnings.
    pub warn: Style,
    /// Verdict fail; errors.
    pub crit: Style,
    /// Secondary text; pending and stale values.
    pub muted: Style,
    /// Ordinary text.
    pub text: Style,
    /// Pane titles.
    pub title: Style,
    /// Pane borders.
    pub border: Style,
    /// The border of the focused pane.
    pub border_focus: Style,
    /// The selected row, laid over the row's own style.
    pub selection: Style,
    /// The environment badge of production-like environments.
    pub danger_env: Style,
    /// The environment badge of other environments.
    pub env: Style,
    /// The canary series in tables and charts.
    pub canary: Style,
    /// The baseline series in tables and charts.
    pub baseline: Style,
    /// Table header rows.
    pub header: Style,
    /// Keys in the footer hints.
    pub footer_key: Style,
    /// Labels in the footer hints.
    pub footer_text: Style,
    /// The current tab.
    pub tab_active: Style,
    /// The other tabs.
    pub tab: Style,
    /// Dialogs and the help popup.
    pub popup: Style,
    /// True when the theme has no colours at all (`mono`, or a file with
    /// `monochrome = true`): widgets must then make every distinction with
    /// text or modifiers.
    pub monochrome: bool,
}

/// Why a theme could not be loaded. Every variant names the theme (or file)
/// and, where it helps, the line and the nearest valid name.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// `--theme NAME` where NAME is neither a built-in theme nor a file.
    #[error(
        "unknown theme `{name}`: not a built-in theme ({}) and no such file{}",
        BUILTIN_NAMES.join(", "),
        did_you_mean(.suggestion)
    )]
    UnknownTheme {
        /// What was asked for.
        name: String,
        /// The nearest built-in name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// The theme file exists (or looks like a path) but cannot be read.
    #[error("cannot read theme file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin}: invalid TOML: {message}")]
    Syntax {
        /// The theme name or file path.
        origin: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// A top-level key that is neither a slot nor `extends`/`monochrome`.
    #[error(
        "{origin}:{line}: unknown theme slot `{slot}`{}",
        did_you_mean(.suggestion)
    )]
    UnknownSlot {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the key.
        line: usize,
        /// The unknown key.
        slot: String,
        /// The nearest slot name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A key inside a slot table other than fg/bg/bold/reverse/underline/dim.
    #[error(
        "{origin}:{line}: unknown key `{key}` in slot `{slot}` (valid: {}){}",
        SLOT_KEYS.join(", "),
        did_you_mean(.suggestion)
    )]
    UnknownKey {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the key.
        line: usize,
        /// The slot the key is in.
        slot: &'static str,
        /// The unknown key.
        key: String,
        /// The nearest valid key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// An `fg`/`bg` value that is not a colour.
    #[error("{origin}:{line}: slot `{slot}`: {key} = \"{value}\": {problem}")]
    BadColour {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the value.
        line: usize,
        /// The slot.
        slot: &'static str,
        /// `fg` or `bg`.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong, with a suggestion when one fits.
        problem: String,
    },
    /// A value of the wrong TOML type (e.g. `bold = "yes"`, `ok = "green"`).
    #[error("{origin}:{line}: `{key}` must be {expected}, not {found}")]
    BadType {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the value.
        line: usize,
        /// The key (`slot` or `slot.key`).
        key: String,
        /// What was expected.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// `fg` or `bg` in a theme with `monochrome = true`.
    #[error(
        "{origin}:{line}: slot `{slot}` sets `{key}`, but this theme is monochrome \
         (use bold, reverse, underline or dim instead)"
    )]
    ColourInMonochrome {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the key.
        line: usize,
        /// The slot.
        slot: &'static str,
        /// `fg` or `bg`.
        key: &'static str,
    },
    /// `extends` names no built-in theme, or a colour theme from a
    /// monochrome one.
    #[error("{origin}:{line}: extends = \"{value}\": {problem}")]
    BadExtends {
        /// The theme name or file path.
        origin: String,
        /// 1-based line of the value.
        line: usize,
        /// The value as written.
        value: String,
        /// What is wrong.
        problem: String,
    },
}

fn did_you_mean(suggestion: &Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

impl Theme {
    /// The names of the slots, in declaration order (as [`Theme::slots`]
    /// returns them).
    pub const SLOT_NAMES: &'static [&'static str] = &[
        "ok",
        "warn",
        "crit",
        "muted",
        "text",
        "title",
        "border",
        "border_focus",
        "selection",
        "danger_env",
        "env",
        "canary",
        "baseline",
        "header",
        "footer_key",
        "footer_text",
        "tab_active",
        "tab",
        "popup",
    ];

    /// A built-in theme by name: `"dark"` (the default), `"light"`,
    /// `"high-contrast"`, `"ansi16"` (only the 16 named ANSI colours) or
    /// `"mono"` (no colours). `None` for any other name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        let parsed = parse(name, &format!("built-in theme `{name}`"), text, Base::Blank);
        // The embedded files are tested; a failure here is a build defect.
        Some(parsed.unwrap_or_else(|e| panic!("{e}")).0)
    }

    /// The names of the built-in themes, the default (`dark`) first.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// Parses a theme file's text. `name` becomes [`Theme::name`] and
    /// prefixes error messages.
    ///
    /// Slots the text leaves out are taken from the built-in `dark` theme —
    /// or from `mono` when the text says `monochrome = true`, or from the
    /// built-in theme named by `extends`.
    ///
    /// # Errors
    ///
    /// Invalid TOML, an unknown slot or slot key (with the nearest valid name
    /// suggested), a value that is not a colour, a value of the wrong type,
    /// a colour in a monochrome theme, or a bad `extends`.
    pub fn from_toml(name: &str, text: &str) -> Result<Theme, ThemeError> {
        parse(name, name, text, Base::Builtin).map(|(theme, _)| theme)
    }

    /// Loads a theme: a built-in name, else a path to a TOML file (a leading
    /// `~/` is the home directory; relative paths are relative to the
    /// current directory). A file's theme is named after its file stem.
    ///
    /// # Errors
    ///
    /// [`ThemeError::UnknownTheme`] for a name that is neither built in nor
    /// an existing file (suggesting the nearest built-in name),
    /// [`ThemeError::Read`] for an unreadable file, and the errors of
    /// [`Theme::from_toml`] for a bad file (prefixed by the path).
    pub fn load(spec: &str) -> Result<Theme, ThemeError> {
        if let Some(theme) = Theme::builtin(spec) {
            return Ok(theme);
        }
        let path = expand_home(spec);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !looks_like_path(spec) => {
                return Err(ThemeError::UnknownTheme {
                    name: spec.to_string(),
                    suggestion: nearest(spec, BUILTIN_NAMES.iter().copied()),
                });
            }
            Err(error) => return Err(ThemeError::Read { path, error }),
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string());
        parse(&name, &path.display().to_string(), &text, Base::Builtin).map(|(theme, _)| theme)
    }

    /// The theme to use: NO_COLOR set (non-empty, per no-color.org) →
    /// "mono"; else `requested` (from --theme or config) or "dark".
    ///
    /// `no_color` is normally [`no_color_from_env`]`()`. With it set, the
    /// requested theme is not even loaded, so a broken theme file cannot
    /// keep a NO_COLOR user out.
    ///
    /// # Errors
    ///
    /// Those of [`Theme::load`] for the requested theme.
    pub fn select(requested: Option<&str>, no_color: bool) -> Result<Theme, ThemeError> {
        if no_color {
            return Ok(Theme::builtin("mono").expect("mono is built in"));
        }
        Theme::load(requested.unwrap_or("dark"))
    }

    /// Every slot as (name, style), in [`Theme::SLOT_NAMES`] order.
    pub fn slots(&self) -> Vec<(&'static str, Style)> {
        Theme::SLOT_NAMES
            .iter()
            .map(|&name| (name, self.slot(name).expect("every slot name has a field")))
            .collect()
    }

    /// The style of the slot called `name` (as in the TOML), or `None` for
    /// an unknown name.
    pub fn slot(&self, name: &str) -> Option<Style> {
        Some(match name {
            "ok" => self.ok,
            "warn" => self.warn,
            "crit" => self.crit,
            "muted" => self.muted,
            "text" => self.text,
            "title" => self.title,
            "border" => self.border,
            "border_focus" => self.border_focus,
            "selection" => self.selection,
            "danger_env" => self.danger_env,
            "env" => self.env,
            "canary" => self.canary,
            "baseline" => self.baseline,
            "header" => self.header,
            "footer_key" => self.footer_key,
            "footer_text" => self.footer_text,
            "tab_active" => self.tab_active,
            "tab" => self.tab,
            "popup" => self.popup,
            _ => return None,
        })
    }

    fn slot_mut(&mut self, name: &str) -> Option<&mut Style> {
        Some(match name {
            "ok" => &mut self.ok,
            "warn" => &mut self.warn,
            "crit" => &mut self.crit,
            "muted" => &mut self.muted,
            "text" => &mut self.text,
            "title" => &mut self.title,
            "border" => &mut self.border,
            "border_focus" => &mut self.border_focus,
            "selection" => &mut self.selection,
            "danger_env" => &mut self.danger_env,
            "env" => &mut self.env,
            "canary" => &mut self.canary,
            "baseline" => &mut self.baseline,
            "header" => &mut self.header,
            "footer_key" => &mut self.footer_key,
            "footer_text" => &mut self.footer_text,
            "tab_active" => &mut self.tab_active,
            "tab" => &mut self.tab,
            "popup" => &mut self.popup,
            _ => return None,
        })
    }

    /// A theme with every slot plain: the base the built-in files are parsed
    /// onto (they define every slot).
    fn blank(name: &str, monochrome: bool) -> Theme {
        let plain = Style::new();
        Theme {
            name: name.to_string(),
            ok: plain,
            warn: plain,
            crit: plain,
            muted: plain,
            text: plain,
            title: plain,
            border: plain,
            border_focus: plain,
            selection: plain,
            danger_env: plain,
            env: plain,
            canary: plain,
            baseline: plain,
            header: plain,
            footer_key: plain,
            footer_text: plain,
            tab_active: plain,
            tab: plain,
            popup: plain,
            monochrome,
        }
    }
}

impl Default for Theme {
    /// The built-in `dark` theme.
    fn default() -> Self {
        Theme::builtin("dark").expect("dark is built in")
    }
}

/// True when the `NO_COLOR` environment variable is set to a non-empty
/// value (<https://no-color.org>): pass it to [`Theme::select`].
pub fn no_color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Parses a colour as theme files write it: `"reset"`, an ANSI name
/// (`"red"`, `"lightred"`, `"darkgray"`, …; case, `-`, `_` and spaces are
/// ignored, `grey` = `gray`, `bright-X` = `lightX`), `"indexed:N"` (0–255)
/// or `"#rrggbb"`.
///
/// # Errors
///
/// A message saying what is wrong, suggesting the nearest colour name for an
/// unknown one.
pub fn parse_colour(text: &str) -> Result<Color, String> {
    let trimmed = text.trim();
    if let Some(hex) = trimmed.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("expected #rrggbb with six hex digits".to_string());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex digits");
        return Ok(Color::Rgb(byte(0), byte(2), byte(4)));
    }
    let lower = trimmed.to_ascii_lowercase();
    if let Some(index) = lower.strip_prefix("indexed:") {
        return match index.trim().parse::<u8>() {
            Ok(n) => Ok(Color::Indexed(n)),
            Err(_) => Err("expected indexed:N with N from 0 to 255".to_string()),
        };
    }
    let mut key: String = lower
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect::<String>()
        .replace("grey", "gray");
    if let Some(rest) = key.strip_prefix("bright") {
        key = if rest == "black" {
            "darkgray".to_string()
        } else if rest == "white" {
            "white".to_string()
        } else {
            format!("light{rest}")
        };
    }
    if key == "default" {
        key = "reset".to_string();
    }
    COLOUR_NAMES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, colour)| *colour)
        .ok_or_else(|| {
            let names = || COLOUR_NAMES.iter().map(|(n, _)| *n);
            match nearest(trimmed, names()) {
                Some(s) => format!("unknown colour; did you mean `{s}`?"),
                None => format!(
                    "unknown colour (use one of {}, \"indexed:N\" or \"#rrggbb\")",
                    names().collect::<Vec<_>>().join(", ")
                ),
            }
        })
}

/// Where the slots a theme text leaves out come from.
#[derive(Clone, Copy)]
enum Base {
    /// Plain styles (for the built-in files themselves).
    Blank,
    /// `dark`, `mono` for monochrome themes, or `extends`.
    Builtin,
}

/// Parses a theme text. Returns the theme and the slots the text defined.
/// `origin` names the source in errors (a theme name or a path).
fn parse(
    name: &str,
    origin: &str,
    text: &str,
    base: Base,
) -> Result<(Theme, Vec<&'static str>), ThemeError> {
    let doc = DeTable::parse(text).map_err(|e| ThemeError::Syntax {
        origin: origin.to_string(),
        message: e.to_string().trim().to_string(),
    })?;
    let line = |offset: usize| {
        text.as_bytes()[..offset.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    let bad_type =
        |key: String, value: &toml::Spanned<DeValue<'_>>, expected| ThemeError::BadType {
            origin: origin.to_string(),
            line: line(value.span().start),
            key,
            expected,
            found: value.get_ref().type_str(),
        };

    // Entries in file order, so the first error reported is the first in
    // the file.
    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);

    let mut monochrome = false;
    let mut extends: Option<(&str, usize)> = None;
    for (key, value) in &entries {
        match key.get_ref().as_ref() {
            "monochrome" => {
                monochrome = value
                    .get_ref()
                    .as_bool()
                    .ok_or_else(|| bad_type("monochrome".into(), value, "true or false"))?;
            }
            "extends" => {
                let v = value
                    .get_ref()
                    .as_str()
                    .ok_or_else(|| bad_type("extends".into(), value, "a built-in theme name"))?;
                extends = Some((v, line(value.span().start)));
            }
            _ => {}
        }
    }

    let mut theme = match (base, extends) {
        (_, Some((value, at))) => {
            let bad = |problem: String| ThemeError::BadExtends {
                origin: origin.to_string(),
                line: at,
                value: value.to_string(),
                problem,
            };
            let parent = Theme::builtin(value).ok_or_else(|| {
                bad(format!(
                    "not a built-in theme (one of {}){}",
                    BUILTIN_NAMES.join(", "),
                    did_you_mean(&nearest(value, BUILTIN_NAMES.iter().copied()))
                ))
            })?;
            if monochrome && !parent.monochrome {
                return Err(bad("a monochrome theme can only extend `mono`".to_string()));
            }
            parent
        }
        (Base::Blank, None) => Theme::blank(name, monochrome),
        (Base::Builtin, None) if monochrome => Theme::builtin("mono").expect("mono is built in"),
        (Base::Builtin, None) => Theme::builtin("dark").expect("dark is built in"),
    };
    theme.name = name.to_string();
    theme.monochrome = monochrome;

    let mut defined = Vec::new();
    for (key, value) in entries {
        let slot_name: &str = key.get_ref();
        if META_KEYS.contains(&slot_name) {
            continue;
        }
        let Some(&slot) = Theme::SLOT_NAMES.iter().find(|s| **s == slot_name) else {
            let candidates = Theme::SLOT_NAMES.iter().chain(META_KEYS).copied();
            return Err(ThemeError::UnknownSlot {
                origin: origin.to_string(),
                line: line(key.span().start),
                slot: slot_name.to_string(),
                suggestion: nearest(slot_name, candidates),
            });
        };
        let table = value
            .get_ref()
            .as_table()
            .ok_or_else(|| bad_type(slot.to_string(), value, "a table like { fg = \"green\" }"))?;
        let mut keys: Vec<_> = table.iter().collect();
        keys.sort_by_key(|(k, _)| k.span().start);
        let mut style = Style::new();
        for (k, v) in keys {
            let k_name: &str = k.get_ref();
            match k_name {
                "fg" | "bg" => {
                    let k_name = if k_name == "fg" { "fg" } else { "bg" };
                    let text = v.get_ref().as_str().ok_or_else(|| {
                        bad_type(format!("{slot}.{k_name}"), v, "a colour string")
                    })?;
                    if monochrome {
                        return Err(ThemeError::ColourInMonochrome {
                            origin: origin.to_string(),
                            line: line(k.span().start),
                            slot,
                            key: k_name,
                        });
                    }
                    let colour = parse_colour(text).map_err(|problem| ThemeError::BadColour {
                        origin: origin.to_string(),
                        line: line(v.span().start),
                        slot,
                        key: k_name,
                        value: text.to_string(),
                        problem,
                    })?;
                    style = if k_name == "fg" {
                        style.fg(colour)
                    } else {
                        style.bg(colour)
                    };
                }
                "bold" | "reverse" | "underline" | "dim" => {
                    let on = v
                        .get_ref()
                        .as_bool()
                        .ok_or_else(|| bad_type(format!("{slot}.{k_name}"), v, "true or false"))?;
                    let modifier = match k_name {
                        "bold" => Modifier::BOLD,
                        "reverse" => Modifier::REVERSED,
                        "underline" => Modifier::UNDERLINED,
                        _ => Modifier::DIM,
                    };
                    if on {
                        style = style.add_modifier(modifier);
                    }
                }
                other => {
                    return Err(ThemeError::UnknownKey {
                        origin: origin.to_string(),
                        line: line(k.span().start),
                        slot,
                        key: other.to_string(),
                        suggestion: nearest(other, SLOT_KEYS.iter().copied()),
                    });
                }
            }
        }
        *theme.slot_mut(slot).expect("slot names have fields") = style;
        defined.push(slot);
    }
    Ok((theme, defined))
}

/// `~/x` → `$HOME/x`; anything else unchanged.
fn expand_home(spec: &str) -> PathBuf {
    if let Some(rest) = spec.strip_prefix("~/")
        && let Some(dirs) = directories::BaseDirs::new()
    {
        return dirs.home_dir().join(rest);
    }
    PathBuf::from(spec)
}

/// Whether `spec` was meant as a path rather than a built-in name.
fn looks_like_path(spec: &str) -> bool {
    spec.contains(['/', '\\']) || Path::new(spec).extension().is_some_and(|e| e == "toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tui::screen::NAMED_COLOURS as NAMED_16;

    #[test]
    fn builtin_files_parse_and_define_every_slot() {
        for (name, text) in BUILTINS {
            let (theme, defined) = parse(name, name, text, Base::Blank).unwrap();
            assert_eq!(theme.name, *name);
            for slot in Theme::SLOT_NAMES {
                assert!(defined.contains(slot), "{name} leaves out `{slot}`");
            }
            assert_eq!(defined.len(), Theme::SLOT_NAMES.len(), "{name}");
        }
        assert_eq!(
            BUILTINS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            Theme::builtin_names()
        );
    }

    #[test]
    fn builtin_through_from_toml_is_the_same_theme() {
        // A builtin copied to a file and loaded gives the same styles.
        for (name, text) in BUILTINS {
            assert_eq!(
                Theme::from_toml(name, text).unwrap(),
                Theme::builtin(name).unwrap()
            );
        }
    }

    #[test]
    fn ansi16_and_high_contrast_use_named_colours_only() {
        for name in ["ansi16", "high-contrast"] {
            for (slot, style) in Theme::builtin(name).unwrap().slots() {
                for colour in [style.fg, style.bg].into_iter().flatten() {
                    assert!(
                        colour == Color::Reset || NAMED_16.contains(&colour),
                        "{name}.{slot} uses {colour:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn mono_has_no_colours_and_distinguishes_verdicts() {
        let mono = Theme::builtin("mono").unwrap();
        assert!(mono.monochrome);
        for (slot, style) in mono.slots() {
            assert_eq!((style.fg, style.bg), (None, None), "mono.{slot}");
        }
        assert_eq!(mono.ok, Style::new());
        assert_eq!(mono.warn, Style::new().bold());
        assert_eq!(mono.crit, Style::new().bold().reversed());
        assert_eq!(mono.selection, Style::new().reversed());
        assert_eq!(mono.danger_env, Style::new().bold().reversed().underlined());
        let verdicts = [mono.ok, mono.warn, mono.crit, mono.muted];
        for (i, a) in verdicts.iter().enumerate() {
            for b in &verdicts[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn colour_themes_are_not_monochrome_and_distinguish_verdicts() {
        for name in ["dark", "light", "high-contrast", "ansi16"] {
            let t = Theme::builtin(name).unwrap();
            assert!(!t.monochrome, "{name}");
            let fgs = [t.ok.fg, t.warn.fg, t.crit.fg, t.crit.bg];
            assert!(t.ok.fg.is_some() && t.warn.fg.is_some(), "{name}");
            assert_ne!(fgs[0], fgs[1], "{name}");
            assert_ne!(t.warn, t.crit, "{name}");
        }
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_colour("red"), Ok(Color::Red));
        assert_eq!(parse_colour("Light-Red"), Ok(Color::LightRed));
        assert_eq!(parse_colour("bright_black"), Ok(Color::DarkGray));
        assert_eq!(parse_colour("grey"), Ok(Color::Gray));
        assert_eq!(parse_colour("reset"), Ok(Color::Reset));
        assert_eq!(parse_colour("indexed:208"), Ok(Color::Indexed(208)));
        assert_eq!(parse_colour("#ff8000"), Ok(Color::Rgb(255, 128, 0)));
        assert!(
            parse_colour("indexed:256")
                .unwrap_err()
                .contains("0 to 255")
        );
        assert!(parse_colour("#ff80").unwrap_err().contains("#rrggbb"));
        assert!(parse_colour("gren").unwrap_err().contains("`green`"));
    }

    #[test]
    fn missing_slots_fall_back_to_dark() {
        let t = Theme::from_toml("mine", "ok = { fg = \"#00ff00\" }\n").unwrap();
        let dark = Theme::builtin("dark").unwrap();
        assert_eq!(t.name, "mine");
        assert_eq!(t.ok, Style::new().fg(Color::Rgb(0, 255, 0)));
        assert_eq!(t.crit, dark.crit);
        assert_eq!(t.selection, dark.selection);
    }

    #[test]
    fn extends_and_monochrome() {
        let t = Theme::from_toml("x", "extends = \"light\"\nok = { bold = true }\n").unwrap();
        assert_eq!(t.crit, Theme::builtin("light").unwrap().crit);
        assert_eq!(t.ok, Style::new().bold());

        let m = Theme::from_toml("m", "monochrome = true\nok = { underline = true }\n").unwrap();
        assert!(m.monochrome);
        assert_eq!(m.crit, Theme::builtin("mono").unwrap().crit);

        let e = Theme::from_toml("m", "monochrome = true\n\nok = { fg = \"red\" }\n").unwrap_err();
        assert!(
            matches!(e, ThemeError::ColourInMonochrome { line: 3, .. }),
            "{e}"
        );
        let e = Theme::from_toml("m", "monochrome = true\nextends = \"dark\"\n").unwrap_err();
        assert!(e.to_string().contains("only extend `mono`"), "{e}");
        let e = Theme::from_toml("x", "extends = \"drak\"\n").unwrap_err();
        assert!(e.to_string().contains("did you mean `dark`"), "{e}");
    }

    #[test]
    fn errors_name_the_line_and_suggest() {
        let e = Theme::from_toml("mine", "ok = {}\n\nwran = { fg = \"yellow\" }\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mine:3: unknown theme slot `wran`; did you mean `warn`?"
        );
        let e = Theme::from_toml("mine", "[crit]\nfg = \"red\"\nbolt = true\n").unwrap_err();
        assert!(
            matches!(&e, ThemeError::UnknownKey { line: 3, key, suggestion: Some(s), .. }
                if key == "bolt" && *s == "bold"),
            "{e}"
        );
        let e = Theme::from_toml("mine", "ok = { bold = \"yes\" }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mine:1: `ok.bold` must be true or false, not string"
        );
        let e = Theme::from_toml("mine", "ok = \"green\"").unwrap_err();
        assert!(e.to_string().contains("must be a table"), "{e}");
        let e = Theme::from_toml("mine", "ok = { fg = ").unwrap_err();
        assert!(matches!(e, ThemeError::Syntax { .. }), "{e}");
    }

    #[test]
    fn select_honours_no_color_first() {
        assert_eq!(Theme::select(Some("light"), true).unwrap().name, "mono");
        // NO_COLOR wins even over a broken request.
        assert_eq!(Theme::select(Some("nope"), true).unwrap().name, "mono");
        assert_eq!(Theme::select(None, false).unwrap().name, "dark");
        assert_eq!(Theme::select(Some("ansi16"), false).unwrap().name, "ansi16");
        assert_eq!(Theme::default().name, "dark");
    }

    #[test]
    fn load_unknown_name_suggests_a_builtin() {
        let e = Theme::load("hi-contrast").unwrap_err();
        assert!(
            matches!(&e, ThemeError::UnknownTheme { suggestion: Some(s), .. } if *s == "high-contrast"),
            "{e}"
        );
        let e = Theme::load("/nonexistent/theme.toml").unwrap_err();
        assert!(matches!(e, ThemeError::Read { .. }), "{e}");
    }

    #[test]
    fn slot_lookup() {
        let dark = Theme::builtin("dark").unwrap();
        assert_eq!(dark.slot("crit"), Some(dark.crit));
        assert_eq!(dark.slot("nope"), None);
        assert_eq!(dark.slots().len(), Theme::SLOT_NAMES.len());
    }
}
