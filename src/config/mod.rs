//! The TOML configuration: schema, discovery, secrets and validation.
//!
//! Every error names `file:line:col`, says what was expected and, for an
//! unknown key or name, suggests the nearest valid one. See
//! `config.example.toml` at the top of the repository for every key.
//!
//! Secrets: any string value may contain `${env:VAR}` (the environment
//! variable's value) or `${file:PATH}` (the file's contents, trailing newline
//! removed). The resolved values are collected in [`Config::secrets`] and are
//! redacted wherever rolldeck writes text ([`crate::redact::Redactor`]).

mod locate;
mod schema;

pub use locate::{Pos, Seg};
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
            self.path.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
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
pub fn parse(text: &str, path: &Path) -> Result<Config, LoadError> {
    let positions = locate::Locator::new(text);
    // Syntax first: toml_edit gives precise spans for syntax errors.
    if let Err(e) = text.parse::<toml_edit::Document<String>>() {
        let (line, col) = e
            .span()
            .map(|s| positions.line_col(s.start))
            .unwrap_or((1, 1));
        return Err(LoadError::Invalid(vec![ConfigError {
            path: path.to_path_buf(),
            line,
            col,
            message: format!("TOML syntax error: {}", e.message().trim()),
            help: None,
        }]));
    }
    let mut cfg: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let (line, col) = e
                .span()
                .map(|s| positions.line_col(s.start))
                .unwrap_or((1, 1));
            let (message, help) = explain_serde_error(e.message());
            return Err(LoadError::Invalid(vec![ConfigError {
                path: path.to_path_buf(),
                line,
                col,
                message,
                help,
            }]));
        }
    };
    let problems = schema::validate(&mut cfg);
    if problems.is_empty() {
        cfg.source_path = Some(path.to_path_buf());
        return Ok(cfg);
    }
    let errors = problems
        .into_iter()
        .map(|p| {
            let Pos { line, col } = positions.find(&p.at);
            ConfigError {
                path: path.to_path_buf(),
                line,
                col,
                message: format!("{}: {}", locate::display_path(&p.at), p.message),
                help: p.help,
            }
        })
        .collect();
    Err(LoadError::Invalid(errors))
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

/// Resolves `${env:VAR}` and `${file:PATH}` references inside `value`,
/// pushing each resolved value onto `secrets`.
///
/// Errors: an unset variable, an unreadable file, an unknown reference kind
/// or an unterminated `${`.
pub fn resolve_secrets(value: &str, secrets: &mut Vec<String>) -> Result<String, String> {
    resolve_secrets_escaped(value, secrets, false)
}

/// Like [`resolve_secrets`]; with `escape_braces`, a `{` in a resolved value
/// is written as `{{` so an action template never reads a secret's text as a
/// placeholder.
pub fn resolve_secrets_escaped(
    value: &str,
    secrets: &mut Vec<String>,
    escape_braces: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated `${{` in {value:?}"));
        };
        let reference = &after[..end];
        let resolved = if let Some(var) = reference.strip_prefix("env:") {
            std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))?
        } else if let Some(file) = reference.strip_prefix("file:") {
            let s = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read secret file `{file}`: {e}"))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        } else {
            return Err(format!(
                "unknown reference `${{{reference}}}`: use `${{env:VAR}}` or `${{file:PATH}}`"
            ));
        };
        secrets.push(resolved.clone());
        if escape_braces {
            out.push_str(&resolved.replace('{', "{{"));
        } else {
            out.push_str(&resolved);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
