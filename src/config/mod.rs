//! The TOML configuration: schema, discovery, references, secrets and
//! validation.
//!
//! Every error names `file:line:col`, says what was expected and, for an
//! unknown key or name, suggests the nearest valid one; values echoed in
//! errors have their control characters escaped. See `config.example.toml`
//! at the top of the repository for every key.
//!
//! # Bounds checked at load
//!
//! Every duration is at most [`MAX_DURATION`] (30 days), so no deadline can
//! overflow (`"8000y"` is an error, never "elapsed"). Every `interval` is at
//! least [`MIN_INTERVAL`] (1 s), every `timeout` and `window` more than 0 s.
//! Every PromQL `query` must parse (`promql-parser`, with `{track}` replaced
//! by each track's value); header values carry no CR/LF; `version` is a
//! version ([`check_version`]).
//!
//! # References and secrets
//!
//! Strings in URLs, `bearer_token`, `basic_auth`, health `headers`, migration
//! `database_url`, `[sources.docker]`'s `host` and selectors, and every
//! action field (`docker = { … }` included: `container`, `image`, `cmd`,
//! `env`, `labels`, `ports`, `host`, `health.cmd`) may hold references,
//! resolved at load:
//!
//! * `${env:VAR}` — the environment variable's value;
//! * `${file:PATH}` — the file's contents, trailing newline removed;
//! * `${secret:env:VAR}`, `${secret:file:PATH}` — the same, marked secret.
//!
//! Anything else (`${vault:x}`, `${env:}`, an unclosed `${env:X`) is an
//! error, and so is a `${` in any other key. In an action, `${{NAME}` is a
//! literal `${NAME}` (a shell variable).
//!
//! A **secret** is redacted wherever rolldeck writes text (screen, journal,
//! audit log, output; [`crate::redact::Redactor`] over [`Config::secrets`]).
//! Plain `${env:…}`/`${file:…}` values are NOT secrets (`NAMESPACE=default`
//! must not turn every "default" into `***`), except values that are secret
//! by nature, which are secrets whatever the syntax — written inline,
//! through a reference or through `${secret:…}`:
//!
//! * `bearer_token` and `basic_auth.password`;
//! * header values of credential headers (`Authorization`,
//!   `Proxy-Authorization`, `Cookie`, `X-Api-Key`, and any header named like
//!   token/key/secret/password, see [`is_secret_name`]), whole and without
//!   the scheme (`Bearer abc` → `abc` too);
//! * action `env` values whose name is secret-like (`PGPASSWORD`);
//! * URL credentials: the userinfo password (or a lone user, as in
//!   `https://TOKEN@host`) and query parameters named like
//!   token/key/password/secret/signature (`?token=…`), as written and
//!   percent-decoded;
//! * a referenced variable or file whose own name is secret-like
//!   (`${env:CHAT_TOKEN}`, `${file:/run/secrets/db}`).
mod locate;
mod refs;
mod schema;

pub use locate::{Pos, Seg};
pub use refs::{
    Field, MAX_VERSION_LEN, check_header_value, check_version, clean, is_secret_name, resolve,
    url_secrets,
};
pub use schema::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration error at a position in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// A suggestion ("did you mean `timeout`?"), if one fits.
    pub help: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            clean(&self.path.display().to_string()),
            self.line,
            self.col,
            clean(&self.message)
        )?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {}", clean(h))?;
        }
        Ok(())
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No config file was found; lists where rolldeck looked.
    #[error("no config file found; looked for: {}", .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The named file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config; one entry per problem.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// The project directories (`directories` crate): `None` without a home
/// directory, e.g. in containers — then only `--config`, `$ROLLDECK_CONFIG`,
/// `./rolldeck.toml` and `--state-dir` work.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "rolldeck", "rolldeck")
}

/// Finds the config file: `explicit` (from `--config`), then
/// `$ROLLDECK_CONFIG`, then `./rolldeck.toml`, then `rolldeck.toml` in the
/// user config dir. An explicit path is returned even if it does not exist
/// (loading it then reports the missing file by name).
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ROLLDECK_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut tried = vec![PathBuf::from("./rolldeck.toml")];
    if let Some(d) = project_dirs() {
        tried.push(d.config_dir().join("rolldeck.toml"));
    }
    for p in &tried {
        if p.is_file() {
            return Ok(p.clone());
        }
    }
    Err(LoadError::NotFound { tried })
}

/// Reads and validates the config file at `path`.
///
/// Errors: [`LoadError::Io`] when the file cannot be read (missing file
/// included, naming the path), [`LoadError::Invalid`] with every problem
/// found (syntax, unknown keys, wrong types, bad values, unresolvable
/// secrets), each with its `file:line:col`.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `path` is used in error messages.
///
/// Never panics, whatever the text; every error carries the position of
/// what it is about (`1:1` only for what concerns the whole file, e.g. "no
/// plan defined").
pub fn parse(text: &str, path: &Path) -> Result<Config, LoadError> {
    let positions = locate::Locator::new(text);
    let error = |(line, col): (usize, usize), message: String, help: Option<String>| ConfigError {
        path: path.to_path_buf(),
        line,
        col,
        message: clean(&message),
        help: help.map(|h| clean(&h)),
    };
    // Syntax first: toml_edit gives precise spans for syntax errors.
    let doc = match text.parse::<toml_edit::Document<String>>() {
        Ok(d) => d,
        Err(e) => {
            let at = e
                .span()
                .map(|s| positions.line_col(s.start))
                .unwrap_or((1, 1));
            let msg = e.message().trim().replace('\n', "; ");
            return Err(LoadError::Invalid(vec![error(
                at,
                format!("TOML syntax error: {msg}"),
                None,
            )]));
        }
    };
    let mut errors: Vec<ConfigError> = Vec::new();
    let (cfg, shape_errors) = deserialize_all(text);
    let mut cfg = match cfg {
        Some(c) if shape_errors.iter().all(|e| e.unknown) => {
            errors.extend(
                shape_errors
                    .into_iter()
                    .map(|e| error(positions.line_col(e.at), e.message, e.help)),
            );
            c
        }
        // A value of the wrong shape was set aside: the rest cannot be
        // validated as written, so only the shape errors are reported.
        _ => {
            let mut all: Vec<ConfigError> = shape_errors
                .into_iter()
                .map(|e| error(positions.line_col(e.at), e.message, e.help))
                .collect();
            all.sort_by_key(|e| (e.line, e.col));
            return Err(LoadError::Invalid(all));
        }
    };
    stray_references(doc.as_table(), &mut Vec::new(), &mut |at, span| {
        errors.push(error(
            span.map(|s| positions.line_col(s.start)).unwrap_or((1, 1)),
            format!(
                "{}: `${{…}}` references are only resolved in URLs, bearer_token, basic_auth, health headers and action fields; here the text would be used as written",
                locate::display_path(at)
            ),
            Some("remove the `${`, or move the value to a key that resolves references".into()),
        ));
    });
    // Migration directories are relative to the config file.
    let base = path.parent().unwrap_or(Path::new(""));
    for m in &mut cfg.sources.migrations {
        if m.directory.is_relative() {
            m.directory = base.join(&m.directory);
        }
    }
    // Runbook directories and checklists too.
    for d in &mut cfg.runbooks.dirs {
        if d.is_relative() {
            *d = base.join(&*d);
        }
    }
    let plan_steps = cfg.plans.values_mut().flat_map(|p| p.steps.iter_mut());
    for st in plan_steps.chain(cfg.rollback.iter_mut()) {
        if let Some(c) = st.checklist.as_mut()
            && c.is_relative()
        {
            *c = base.join(&*c);
        }
    }
    let problems = schema::validate(&mut cfg);
    errors.extend(problems.into_iter().map(|p| {
        let Pos { line, col } = positions.find(&p.at);
        error(
            (line, col),
            format!("{}: {}", locate::display_path(&p.at), p.message),
            p.help,
        )
    }));
    if errors.is_empty() {
        cfg.source_path = Some(path.to_path_buf());
        return Ok(cfg);
    }
    // All at once, in the order of the file.
    errors.sort_by_key(|e| (e.line, e.col));
    Err(LoadError::Invalid(errors))
}

/// A config key or value that does not fit the schema (serde's error).
struct ShapeError {
    /// Byte offset in the text.
    at: usize,
    message: String,
    help: Option<String>,
    /// An unknown key: setting it aside changes nothing else.
    unknown: bool,
}

/// At most this many shape errors are collected from one file.
const MAX_SHAPE_ERRORS: usize = 50;

/// Deserializes the config, collecting every shape error instead of the
/// first: after each error the entry it is about (the innermost key whose
/// key or value holds the error's position) is set aside and the rest is
/// read again. Returns the config when what is left deserializes, and the
/// errors in the order found. A `missing field` that only a set-aside entry
/// caused is not reported (the entry's own error is).
fn deserialize_all(text: &str) -> (Option<Config>, Vec<ShapeError>) {
    use serde::Deserialize as _;
    let mut errors = Vec::new();
    let Ok(mut root) = toml::de::DeTable::parse(text) else {
        // toml_edit accepted the syntax; if toml does not, report toml's
        // error as the only one.
        return match toml::from_str::<Config>(text) {
            Ok(c) => (Some(c), errors),
            Err(e) => {
                let (message, help) = explain_serde_error(e.message());
                let at = e.span().map_or(0, |s| s.start);
                errors.push(ShapeError {
                    at,
                    message,
                    help,
                    unknown: false,
                });
                (None, errors)
            }
        };
    };
    let mut set_aside: Vec<String> = Vec::new();
    loop {
        let e = match Config::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(c) => return (Some(c), errors),
            Err(e) => e,
        };
        let message = e.message().trim().to_string();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            && set_aside.iter().any(|k| k == field)
        {
            return (None, errors);
        }
        let at = e.span().map_or(0, |s| s.start);
        let unknown = message.starts_with("unknown field `");
        let (message, help) = explain_serde_error(&message);
        errors.push(ShapeError {
            at,
            message,
            help,
            unknown,
        });
        if errors.len() >= MAX_SHAPE_ERRORS {
            return (None, errors);
        }
        match e
            .span()
            .and_then(|span| set_aside_at(root.get_mut(), span.start))
        {
            Some(key) => set_aside.push(key),
            None => return (None, errors),
        }
    }
}

/// Removes the innermost table entry of `table` whose key or value holds
/// byte `at` (searched at every depth: a table opened by a `[header]` has
/// no span covering its body); returns its key. Arrays are searched for
/// tables but their elements are never removed (the key holding the array
/// is, when the position is in the array itself).
fn set_aside_at(table: &mut toml::de::DeTable<'_>, at: usize) -> Option<String> {
    let holds = |span: std::ops::Range<usize>| span.contains(&at) || span.start == at;
    let keys: Vec<String> = table.keys().map(|k| k.get_ref().to_string()).collect();
    // Deeper entries first: they are more precise.
    for key in &keys {
        let value = table.get_mut(key.as_str())?;
        let inner = match value.get_mut() {
            toml::de::DeValue::Table(t) => set_aside_at(t, at),
            toml::de::DeValue::Array(items) => {
                items.iter_mut().find_map(|item| match item.get_mut() {
                    toml::de::DeValue::Table(t) => set_aside_at(t, at),
                    _ => None,
                })
            }
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
    }
    let key = table
        .iter()
        .find(|(k, v)| holds(k.span()) || holds(v.span()))
        .map(|(k, _)| k.get_ref().to_string())?;
    table.remove(key.as_str());
    Some(key)
}

/// Called with the key path and span of a string holding a stray `${`.
type Found<'a> = dyn FnMut(&[Seg], Option<std::ops::Range<usize>>) + 'a;

/// Whether the string at `path` has its `${…}` references resolved (see the
/// module documentation).
fn resolves_references(path: &[Seg]) -> bool {
    let keys: Vec<&str> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.as_str(),
            Seg::Index(_) => "[]",
        })
        .collect();
    matches!(
        keys.as_slice(),
        ["sources", "prometheus", "url" | "bearer_token"]
            | [
                "sources",
                "prometheus",
                "basic_auth",
                "username" | "password"
            ]
            | ["sources", "scrape", "[]", "url"]
            | ["sources", "health", "[]", "url"]
            | ["sources", "health", "[]", "headers", _]
            | ["sources", "migrations", "[]", "database_url"]
            | ["sources", "docker", "host"]
            | ["sources", "docker", "baseline" | "canary", "label" | "name"]
            | ["actions", _, "argv", "[]"]
            | ["actions", _, "command" | "url" | "body"]
            | ["actions", _, "headers" | "env", _]
            | ["runbooks", "vars", _]
            | ["actions", _, "docker", "container" | "image" | "host"]
            | ["actions", _, "docker", "cmd" | "ports", "[]"]
            | ["actions", _, "docker", "env" | "labels", _]
            | ["actions", _, "docker", "health", "cmd", "[]"]
    )
}

/// Calls `found` for every string holding `${` at a key that does not
/// resolve references (it would be used as written: a silent mistake).
fn stray_references(table: &toml_edit::Table, path: &mut Vec<Seg>, found: &mut Found<'_>) {
    for (k, item) in table.iter() {
        path.push(Seg::Key(k.to_string()));
        stray_in_item(item, path, found);
        path.pop();
    }
}

fn stray_in_item(item: &toml_edit::Item, path: &mut Vec<Seg>, found: &mut Found<'_>) {
    match item {
        toml_edit::Item::Table(t) => stray_references(t, path, found),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                stray_references(t, path, found);
                path.pop();
            }
        }
        toml_edit::Item::Value(v) => stray_in_value(v, path, found),
        toml_edit::Item::None => {}
    }
}

fn stray_in_value(v: &toml_edit::Value, path: &mut Vec<Seg>, found: &mut Found<'_>) {
    match v {
        toml_edit::Value::String(s) if s.value().contains("${") && !resolves_references(path) => {
            found(path, s.span());
        }
        toml_edit::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                stray_in_value(x, path, found);
                path.pop();
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (k, x) in t.iter() {
                path.push(Seg::Key(k.to_string()));
                stray_in_value(x, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Turns serde's messages into ours, adding a "did you mean" for unknown
/// fields and variants.
fn explain_serde_error(msg: &str) -> (String, Option<String>) {
    let msg = msg.trim().to_string();
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            let bad = &rest[..end];
            let expected: Vec<String> = rest[end + 1..]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.to_string())
                .collect();
            let help = suggest(bad, expected.iter().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| {
                    (!expected.is_empty())
                        .then(|| format!("valid {what}s: {}", expected.join(", ")))
                });
            let message = if expected.is_empty() {
                format!("unknown {what} `{bad}`: no {what}s are allowed here")
            } else {
                format!(
                    "unknown {what} `{bad}`, expected one of: {}",
                    expected.join(", ")
                )
            };
            return (message, help);
        }
    }
    (msg, None)
}

/// The candidate closest to `bad` for "did you mean" hints, if any: a
/// case-insensitive match first, else the highest Jaro-Winkler similarity
/// (typos: `rolback` → `rollback`, not `back`), where a candidate contained
/// in `bad` or containing it scores at least 0.75 + 0.2 × the length ratio
/// (`canary-analysis` → `analysis`). Below 0.8, no suggestion. Used for
/// config keys and names, keymap actions and keys, and theme slots.
pub fn suggest<'a>(bad: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = bad.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_lowercase();
            let mut score = if cl == lower {
                2.0
            } else {
                strsim::jaro_winkler(&lower, &cl)
            };
            let (short, long) = if cl.len() <= lower.len() {
                (&cl, &lower)
            } else {
                (&lower, &cl)
            };
            if short.len() >= 3 && long.contains(short.as_str()) && cl != lower {
                score = score.max(0.75 + 0.2 * short.len() as f64 / long.len() as f64);
            }
            (c, score)
        })
        .filter(|(_, s)| *s >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests;
