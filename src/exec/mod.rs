//! Command and HTTP actions: rendering, timeouts, process groups, output
//! streaming, secret redaction and the audit log.
//!
//! An action is a named `[actions.NAME]` table in the config ([`ActionSpec`]).
//! Running one goes through these stages:
//!
//! 1. [`render`] fills `{placeholder}`s with values (a value never splits an
//!    argument, is shell-quoted for `shell = true`, percent-encoded in URLs and
//!    JSON-escaped in JSON bodies) and yields a [`Rendered`] — the exact thing
//!    that will run, shown to the operator before confirming.
//! 2. [`Executor::run`] spawns the command in its own process group (or sends
//!    the HTTP request), streams its output as [`OutputLine`]s with terminal
//!    control sequences removed and secrets redacted, enforces the timeout by
//!    killing the whole process group, and
//! 3. appends an [`AuditRecord`] to the [`AuditLog`] (fsynced) before
//!    returning the [`ActionOutcome`].
//!
//! Audit or nothing: a `started` line is fsynced to the audit log before
//! anything runs, and an action whose `started` line cannot be written does
//! not run. One that ran but whose result cannot be written comes back
//! unsuccessful, its `detail` saying the audit log failed.
//!
//! Nothing here panics on bad input: a render error, a missing program or a
//! refused connection all come back as an unsuccessful [`ActionOutcome`] and
//! are audited like any other run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod audit;
mod executor;
mod operator;
mod template;
#[cfg(test)]
mod tests;

pub use audit::{
    AuditEntry, AuditLog, AuditMark, AuditRecord, AuditStage, StillRunning, UnfinishedRun,
};
pub use executor::{CANCEL_GRACE, Executor};
pub use operator::Operator;
pub use template::{Rendered, TemplateKey, literal_text, render, template_problems};

/// Placeholder names that may appear as `{name}` in an action.
///
/// * `weight` — the canary traffic weight in percent (e.g. `25`),
/// * `version` — the version being released,
/// * `service`, `environment` — from the config,
/// * `release` — the release id,
/// * `step` — the name of the plan step running the action,
/// * `reason` — the operator's free-text reason (may contain anything),
/// * `operator` — who is running it (see [`Operator`]).
pub const KNOWN_PLACEHOLDERS: &[&str] = &[
    "weight",
    "version",
    "service",
    "environment",
    "release",
    "step",
    "reason",
    "operator",
];

/// HTTP methods an HTTP action may use (case-insensitive in the config).
pub const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Longest line of command output passed on, in bytes; the rest of a longer
/// line is dropped and the line ends with `…`.
pub const MAX_LINE_BYTES: usize = 4096;

/// At most this many lines of an HTTP response body are passed on.
pub const MAX_HTTP_BODY_LINES: usize = 20;

/// At most this many bytes of an HTTP response body are read.
pub const MAX_HTTP_BODY_BYTES: usize = 4096;

fn default_method() -> String {
    "POST".to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// One named action from the config (`[actions.NAME]` table). Exactly one of
/// `argv`, `command` (requires `shell = true`), or `url` must be set; see
/// [`ActionSpec::validate`].
///
/// Placeholders (`{weight}`, … see [`KNOWN_PLACEHOLDERS`]) may appear in
/// `argv` elements (except the program), `command`, `env` values, `url`,
/// header values and `body`; `{{` is a literal `{`. See [`render`].
///
/// ```toml
/// [actions.traffic]
/// argv = ["kubectl", "annotate", "svc/web", "canary-weight={weight}"]
/// timeout = "2m"
///
/// [actions.notify]
/// url = "https://hooks.example.com/x"
/// headers = { "Content-Type" = "application/json" }
/// body = '{"text": "{service} at {weight}%: {reason}"}'
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Shown in the UI and in `rolldeck check`.
    #[serde(default)]
    pub description: Option<String>,
    /// Program and arguments, run directly without a shell. Each element stays
    /// exactly one argument after placeholder substitution.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// When true, `command` is run by `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// A shell command line (needs `shell = true`). Placeholder values are
    /// shell-quoted, so a placeholder must appear as (part of) a plain word:
    /// not inside quotes, after a backslash, in a comment or a here-document.
    #[serde(default)]
    pub command: Option<String>,
    /// Extra environment variables for a command (added to rolldeck's own).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of a command (default: rolldeck's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// URL of an HTTP action (`http://` or `https://`).
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP method (default `POST`); one of [`HTTP_METHODS`].
    #[serde(default = "default_method")]
    pub method: String,
    /// HTTP request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP request body.
    #[serde(default)]
    pub body: Option<String>,
    /// HTTP statuses that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    /// Time limit for the whole action (default 30 s; TOML like `"30s"`,
    /// `"5m"`). A command still running then has its process group killed.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Whether running the action twice is harmless (unset: unknown). Used by
    /// callers to decide whether to retry automatically.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// A container operation through the Docker Engine API
    /// (`docker = { op = "run", … }`, see [`crate::docker::action`]).
    #[serde(default)]
    pub docker: Option<crate::docker::action::DockerActionSpec>,
}

impl Default for ActionSpec {
    fn default() -> Self {
        Self {
            description: None,
            argv: None,
            shell: false,
            command: None,
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            expect_status: None,
            timeout: default_timeout(),
            idempotent: None,
            docker: None,
        }
    }
}

impl ActionSpec {
    /// True for an HTTP action (`url` set and neither `argv` nor `command`).
    pub fn is_http(&self) -> bool {
        self.url.is_some() && self.argv.is_none() && self.command.is_none()
    }

    /// Checks the action is well-formed, independent of placeholder values.
    ///
    /// # Errors
    ///
    /// A human-readable message (several problems joined by `; `) when:
    /// not exactly one of `argv` / `command` / `url` is set; `command` is set
    /// without `shell = true` or `shell = true` without `command`; `argv` or
    /// its program is empty, or the program is a placeholder; the method is
    /// not one of [`HTTP_METHODS`]; the URL is not `http(s)://`; HTTP-only
    /// fields are set on a command or command-only fields on an HTTP action;
    /// `expect_status` is empty or out of `100..=599`; the timeout is zero; a
    /// placeholder is not in [`KNOWN_PLACEHOLDERS`] (the message lists the
    /// known ones); or a placeholder sits where shell quoting cannot protect
    /// it (inside quotes, after a backslash, in a comment or here-document).
    pub fn validate(&self) -> Result<(), String> {
        let mut problems: Vec<String> = Vec::new();
        let set: Vec<&str> = [
            ("argv", self.argv.is_some()),
            ("command", self.command.is_some()),
            ("url", self.url.is_some()),
            ("docker", self.docker.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, s)| s.then_some(n))
        .collect();
        match set.len() {
            0 => problems.push(
                "set one of `argv` (run a program), `command` (with shell = true), `url` (HTTP request) or `docker` (a container operation)".into(),
            ),
            1 => {}
            _ => problems.push(format!(
                "set only one of `argv`, `command`, `url` and `docker` (found {})",
                set.join(" and ")
            )),
        }
        if self.command.is_some() && !self.shell {
            problems.push(
                "`command` runs through a shell: set `shell = true`, or use `argv` to run the program without a shell"
                    .into(),
            );
        }
        if self.shell && self.command.is_none() {
            problems.push("`shell = true` needs `command` (a shell command line)".into());
        }
        if let Some(argv) = &self.argv {
            match argv.first() {
                None => problems.push("`argv` must not be empty".into()),
                Some(p) if p.trim().is_empty() => problems.push("`argv[0]` (the program) must not be empty".into()),
                Some(p) if !template::names(p).is_empty() => problems.push(
                    "`argv[0]` (the program) cannot contain placeholders; pass the value as an argument".into(),
                ),
                Some(_) => {}
            }
            if argv.iter().any(|a| a.contains('\0')) {
                problems.push("`argv` must not contain NUL bytes".into());
            }
        }
        if let Some(c) = &self.command {
            if c.trim().is_empty() {
                problems.push("`command` must not be empty".into());
            } else if let Err(e) = template::check_shell_template(c) {
                problems.push(e.to_string());
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                problems.push(format!("invalid environment variable name {k:?}"));
            }
        }

        if self.is_http() {
            let url = self.url.as_deref().unwrap_or_default();
            let lower = url.trim_start().to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                problems.push(format!(
                    "`url` must start with http:// or https:// (got {:?})",
                    url.chars().take(40).collect::<String>()
                ));
            }
            if !HTTP_METHODS.contains(&self.method.to_ascii_uppercase().as_str()) {
                problems.push(format!(
                    "unknown HTTP method {:?}; use one of {}",
                    self.method,
                    HTTP_METHODS.join(", ")
                ));
            }
            for k in self.headers.keys() {
                if k.is_empty() || !k.bytes().all(is_token_byte) {
                    problems.push(format!("invalid HTTP header name {k:?}"));
                }
            }
            if let Some(list) = &self.expect_status {
                if list.is_empty() {
                    problems.push(
                        "`expect_status` must not be empty (leave it out to accept any 2xx)".into(),
                    );
                }
                if let Some(bad) = list.iter().find(|s| !(100..=599).contains(*s)) {
                    problems.push(format!(
                        "`expect_status` has {bad}, which is not an HTTP status (100-599)"
                    ));
                }
            }
            let mut command_only = Vec::new();
            if !self.env.is_empty() {
                command_only.push("`env`");
            }
            if self.cwd.is_some() {
                command_only.push("`cwd`");
            }
            if !command_only.is_empty() {
                problems.push(format!(
                    "{} only apply to commands, not to HTTP actions",
                    command_only.join(" and ")
                ));
            }
        } else if set.len() == 1 {
            if let Some(d) = &self.docker {
                problems.extend(d.problems());
                let mut command_only = Vec::new();
                if !self.env.is_empty() {
                    command_only.push("`env` (use `docker.env`)");
                }
                if self.cwd.is_some() {
                    command_only.push("`cwd`");
                }
                if !command_only.is_empty() {
                    problems.push(format!(
                        "{} only apply to commands, not to docker actions",
                        command_only.join(" and ")
                    ));
                }
            }
            let mut http_only = Vec::new();
            if !self.headers.is_empty() {
                http_only.push("`headers`");
            }
            if self.body.is_some() {
                http_only.push("`body`");
            }
            if self.expect_status.is_some() {
                http_only.push("`expect_status`");
            }
            if !self.method.eq_ignore_ascii_case("POST") {
                http_only.push("`method`");
            }
            if !http_only.is_empty() {
                problems.push(format!(
                    "{} only apply to HTTP actions (`url`), not to commands",
                    http_only.join(", ")
                ));
            }
        }
        if self.timeout.is_zero() {
            problems.push("`timeout` must be longer than zero".into());
        }
        problems.extend(
            template::template_problems(self)
                .into_iter()
                .map(|(_, m)| m),
        );

        let unknown: Vec<String> = self
            .placeholders()
            .into_iter()
            .filter(|n| !KNOWN_PLACEHOLDERS.contains(&n.as_str()))
            .collect();
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|n| format!("{{{n}}}")).collect();
            problems.push(format!(
                "unknown placeholder{} {}; known placeholders: {} (write {{{{ for a literal {{)",
                if unknown.len() > 1 { "s" } else { "" },
                list.join(", "),
                known_list()
            ));
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The placeholder names used anywhere in the action (`argv`, `command`,
    /// `env` values, `url`, header values, `body`), each once, in order of
    /// first use — e.g. `["weight"]`. Includes unknown names.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            for n in template::names(s) {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_string());
                }
            }
        };
        for a in self.argv.iter().flatten() {
            add(a);
        }
        if let Some(c) = &self.command {
            add(c);
        }
        for v in self.env.values() {
            add(v);
        }
        if let Some(u) = &self.url {
            add(u);
        }
        for v in self.headers.values() {
            add(v);
        }
        if let Some(b) = &self.body {
            add(b);
        }
        for (_, t) in self.docker.iter().flat_map(|d| d.texts()) {
            add(t);
        }
        out
    }

    /// The program this action starts: `argv[0]`, `"sh"` for a shell
    /// command, `None` for an HTTP action. `rolldeck check` probes that it
    /// exists.
    pub fn program(&self) -> Option<&str> {
        if let Some(argv) = &self.argv {
            argv.first().map(String::as_str)
        } else if self.command.is_some() {
            Some("sh")
        } else {
            None
        }
    }
}

fn known_list() -> String {
    KNOWN_PLACEHOLDERS
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Errors from [`render`] (and so from preparing an action to run).
///
/// Messages name placeholders but never contain their values.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The action is malformed (the message is [`ActionSpec::validate`]'s).
    #[error("invalid action: {0}")]
    Invalid(String),
    /// A `{name}` that is not in [`KNOWN_PLACEHOLDERS`].
    #[error(
        "unknown placeholder {{{name}}}; known placeholders: {known} (write {{{{ for a literal {{)"
    )]
    UnknownPlaceholder {
        /// The unknown name.
        name: String,
        /// The known placeholders, formatted for the message.
        known: String,
    },
    /// A known placeholder used by the action has no value.
    #[error("no value for placeholder {{{0}}}")]
    MissingVar(String),
    /// A value contains a NUL byte, which cannot be passed to a program.
    #[error("the value for {{{0}}} contains a NUL byte")]
    NulInValue(String),
    /// In a shell command, a placeholder sits where quoting its value would
    /// not protect it.
    #[error("placeholder {{{name}}} is {place} in the shell command; {hint}")]
    UnsafeShellPlaceholder {
        /// The placeholder name.
        name: String,
        /// Where it is, e.g. "inside quotes".
        place: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
    /// The body of an HTTP action's response.
    Http,
}

/// One line of action output, control sequences already removed and secrets
/// redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputLine {
    /// The action's name.
    pub action: String,
    /// Where the line came from.
    pub stream: Stream,
    /// The line, without its line ending; at most [`MAX_LINE_BYTES`] bytes of
    /// the original (plus `…` when cut). When the line contains carriage
    /// returns (progress bars), only the last non-empty part is kept.
    pub line: String,
}

/// Everything needed to run one action.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The action's name (the `NAME` in `[actions.NAME]`).
    pub name: String,
    /// The action.
    pub spec: ActionSpec,
    /// Placeholder values. `reason`, `release`, `step` and `operator` are
    /// filled from the request and the executor when not given here.
    pub vars: BTreeMap<String, String>,
    /// The operator's reason (audited; the `{reason}` placeholder).
    pub reason: Option<String>,
    /// Release id (audited; the `{release}` placeholder).
    pub release: Option<String>,
    /// Plan step name (audited; the `{step}` placeholder).
    pub step: Option<String>,
}

/// The result of running an action.
///
/// `detail` is a short human sentence: `"exit 0"`, `"exit 3"` (a failed
/// command adds its last stderr line: `"exit 1: nginx: [emerg] …"`),
/// `"HTTP 503 (expected 2xx)"`, `"timed out after 5s; process group killed"`,
/// `"command not found: foo"`, `"connection refused: …"`. It is redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// Exit code 0, or an expected HTTP status.
    pub ok: bool,
    /// The command's exit code (`None` if it did not exit normally).
    pub exit_code: Option<i32>,
    /// The HTTP response status.
    pub http_status: Option<u16>,
    /// Wall-clock duration in seconds (millisecond precision).
    pub duration_s: f64,
    /// The timeout was reached (and for a command its process group killed).
    pub timed_out: bool,
    /// What happened, in a few words.
    pub detail: String,
    /// The action ran but its result could not be written to the audit log
    /// (e.g. a full disk). `ok` is then false whatever the action did; the
    /// engine pauses the release for a human instead of acting on it.
    #[serde(default)]
    pub unaudited: bool,
}

/// Removes terminal control sequences (CSI, OSC, DCS, … via
/// `strip-ansi-escapes`) and any remaining C0/C1 control characters except
/// tab, plus Unicode bidirectional overrides, so that a line of output cannot
/// drive or spoof the terminal it is shown on. Newlines are removed too: the
/// result is meant for a single line.
pub fn strip_control(s: &str) -> String {
    // strip-ansi-escapes drops tabs; keep them by stripping each tab-free
    // piece on its own (a sequence cut in two leaves only printable text).
    let mut out = String::with_capacity(s.len());
    for (i, piece) in s.split('\t').enumerate() {
        if i > 0 {
            out.push('\t');
        }
        let fast = !piece.chars().any(|c| c.is_control() || is_bidi_control(c));
        if fast {
            out.push_str(piece);
        } else {
            let stripped = strip_ansi_escapes::strip_str(piece);
            out.extend(
                stripped
                    .chars()
                    .filter(|&c| !c.is_control() && !is_bidi_control(c)),
            );
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}
