//! Placeholder substitution and the [`Rendered`] form of an action.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::{ActionSpec, ExecError, KNOWN_PLACEHOLDERS, known_list, strip_control};
use crate::redact::{MASK, Redactor};

/// What will run, with placeholders filled in; shown in confirmations before
/// running and written to the audit log (redacted, via [`Rendered::display`]).
///
/// The fields hold secret values in clear (they are what runs): show or log a
/// `Rendered` only through [`Rendered::display`], never its `Debug` or
/// serialized form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rendered {
    /// A program to start. For a shell action `argv` is `["sh", "-c", CMD]`.
    Command {
        /// Program and arguments, exactly as passed to the program.
        argv: Vec<String>,
        /// Whether this came from a `shell = true` action.
        shell: bool,
        /// Extra environment variables.
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<PathBuf>,
    },
    /// An HTTP request.
    Http {
        /// Upper-case method.
        method: String,
        /// The URL (placeholder values percent-encoded).
        url: String,
        /// Request headers.
        headers: BTreeMap<String, String>,
        /// Request body.
        body: Option<String>,
    },
    /// A container operation, placeholders filled.
    Docker(crate::docker::action::DockerActionSpec),
}

/// Header names whose values are always shown as `***`.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
];

/// Environment variable names containing one of these are shown as `***`.
const SENSITIVE_ENV_PARTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "CREDENTIAL",
];

/// Longest request body shown by [`Rendered::display`], in characters.
const MAX_DISPLAY_BODY: usize = 1024;

impl Rendered {
    /// One line describing what runs, secrets redacted: e.g.
    /// `kubectl set weight 25` (arguments that need it shell-quoted, so the
    /// line can be pasted into a shell), `FOO=1 cd /dir && …` when env / cwd
    /// are set, or `POST http://host/x -H 'Content-Type: …' -d '…'` for
    /// HTTP. Values of `Authorization`, `Cookie`, `X-Api-Key` (and similar)
    /// headers, of secret-looking environment variables, and URL passwords
    /// are always `***`; the body is cut after 1024 characters.
    pub fn display(&self, redactor: &Redactor) -> String {
        let r = |s: &str| redactor.redact(s);
        let mut out = String::new();
        match self {
            Rendered::Command { argv, env, cwd, .. } => {
                let mut parts: Vec<String> = Vec::new();
                if let Some(dir) = cwd {
                    parts.push(format!("cd {} &&", quote(&r(&dir.to_string_lossy()))));
                }
                for (k, v) in env {
                    let upper = k.to_ascii_uppercase();
                    let v = if SENSITIVE_ENV_PARTS.iter().any(|p| upper.contains(p)) {
                        MASK.to_string()
                    } else {
                        r(v)
                    };
                    parts.push(format!("{}={}", quote(k), quote(&v)));
                }
                parts.extend(argv.iter().map(|a| quote(&r(a)).into_owned()));
                out.push_str(&parts.join(" "));
            }
            Rendered::Http {
                method,
                url,
                headers,
                body,
            } => {
                let _ = write!(out, "{method} {}", quote(&mask_url_password(&r(url))));
                for (k, v) in headers {
                    let v = if SENSITIVE_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                        MASK.to_string()
                    } else {
                        r(v)
                    };
                    let _ = write!(out, " -H {}", quote(&format!("{k}: {v}")));
                }
                if let Some(b) = body {
                    let b = r(b);
                    let shown: String = if b.chars().count() > MAX_DISPLAY_BODY {
                        let mut s: String = b.chars().take(MAX_DISPLAY_BODY).collect();
                        let _ = write!(s, "…({} bytes)", b.len());
                        s
                    } else {
                        b
                    };
                    let _ = write!(out, " -d {}", quote(&shown));
                }
            }
            Rendered::Docker(d) => out.push_str(&d.display(|k, v| {
                let upper = k.to_ascii_uppercase();
                if SENSITIVE_ENV_PARTS.iter().any(|p| upper.contains(p)) {
                    MASK.to_string()
                } else {
                    r(v)
                }
            })),
        }
        one_line(&redactor.redact(&out))
    }
}

/// Shell-quotes `s` when needed, for display only (like Python's
/// `shlex.quote`: words of `A-Za-z0-9@%+=:,./_-` stay bare).
fn quote(s: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!(
            "'{}'",
            s.replace('\0', "\\0").replace('\'', r#"'"'"'"#)
        ))
    }
}

/// Makes a display string one line: newlines become the two characters `\n`,
/// other control characters are removed.
fn one_line(s: &str) -> String {
    strip_control(&s.replace("\r\n", "\\n").replace(['\n', '\r'], "\\n"))
}

/// `https://user:pw@host/…` → `https://user:***@host/…`.
pub(crate) fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:{}{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            MASK,
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// A piece of a template: literal text or a `{name}` placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Lit(&'a str),
    Var(&'a str),
}

/// Splits a template into literal text and placeholders.
///
/// `{name}` (name = ASCII letter or `_`, then letters, digits, `_`) is a
/// placeholder; `{{` is a literal `{`; any other `{` or `}` is literal, so
/// JSON like `{"w": {weight}}` needs no escaping.
pub(crate) fn parse(s: &str) -> Vec<Piece<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            if b.get(i + 1) == Some(&b'{') {
                // Keep the first `{`, drop the second.
                out.push(Piece::Lit(&s[lit_start..=i]));
                i += 2;
                lit_start = i;
                continue;
            }
            let len = ident_len(&b[i + 1..]);
            if len > 0 && b.get(i + 1 + len) == Some(&b'}') {
                if lit_start < i {
                    out.push(Piece::Lit(&s[lit_start..i]));
                }
                out.push(Piece::Var(&s[i + 1..i + 1 + len]));
                i += len + 2;
                lit_start = i;
                continue;
            }
        }
        i += 1;
    }
    if lit_start < s.len() {
        out.push(Piece::Lit(&s[lit_start..]));
    }
    out
}

fn ident_len(b: &[u8]) -> usize {
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return 0,
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

/// Placeholder names in a template, in order, with repeats.
pub(crate) fn names(s: &str) -> Vec<&str> {
    parse(s)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(n) => Some(n),
            Piece::Lit(_) => None,
        })
        .collect()
}

/// How a value is encoded where it is substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// As is (argv elements, env and header values, plain bodies).
    Raw,
    /// `shlex::try_quote` (shell commands).
    Shell,
    /// Percent-encoded, everything but unreserved characters (URLs, form
    /// bodies).
    Percent,
    /// JSON string contents, without the quotes (JSON bodies).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Quote {
    #[default]
    None,
    Single,
    Double,
    /// `$'…'`, where a backslash escapes the closing quote.
    AnsiC,
}

/// Tracks enough shell syntax to tell whether a quoted value substituted at
/// the current point stays one inert word.
#[derive(Debug, Default)]
struct ShellScan {
    quote: Quote,
    escape: bool,
    comment: bool,
    heredoc: bool,
    /// The last byte seen starts a new word (for `#` comments).
    word_start: bool,
    prev: u8,
}

impl ShellScan {
    fn new() -> Self {
        Self {
            word_start: true,
            ..Self::default()
        }
    }

    fn feed(&mut self, s: &str) {
        let b = s.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            let at_word_start = self.word_start;
            self.word_start = false;
            if self.comment {
                if c == b'\n' {
                    self.comment = false;
                    self.word_start = true;
                }
                continue;
            }
            if self.escape {
                self.escape = false;
                continue;
            }
            match self.quote {
                Quote::Single => {
                    if c == b'\'' {
                        self.quote = Quote::None;
                    }
                }
                Quote::Double => match c {
                    b'\\' => self.escape = true,
                    b'"' => self.quote = Quote::None,
                    _ => {}
                },
                Quote::AnsiC => match c {
                    b'\\' => self.escape = true,
                    b'\'' => self.quote = Quote::None,
                    _ => {}
                },
                Quote::None => match c {
                    b'\\' => self.escape = true,
                    b'\'' if self.prev == b'$' => self.quote = Quote::AnsiC,
                    b'\'' => self.quote = Quote::Single,
                    b'"' => self.quote = Quote::Double,
                    b'#' if at_word_start => self.comment = true,
                    // `<<` (not `<<<`) starts a here-document.
                    b'<' if self.prev != b'<'
                        && b.get(i + 1) == Some(&b'<')
                        && b.get(i + 2) != Some(&b'<') =>
                    {
                        self.heredoc = true;
                    }
                    c if c.is_ascii_whitespace() || b";&|()<>".contains(&c) => {
                        self.word_start = true
                    }
                    _ => {}
                },
            }
            if c == b'<' && self.quote == Quote::None {
                self.word_start = true;
            }
            self.prev = c;
        }
    }

    /// Checks a placeholder may appear here; afterwards it is part of a word.
    fn var(&mut self, name: &str) -> Result<(), ExecError> {
        let err = |place, hint| ExecError::UnsafeShellPlaceholder {
            name: name.to_string(),
            place,
            hint,
        };
        if self.comment {
            return Err(err("inside a comment", "move it out of the comment"));
        }
        if self.heredoc {
            return Err(err(
                "in or after a here-document (<<)",
                "here-documents expand $(…) in values; pass the value as an argument or through `env`",
            ));
        }
        if self.escape {
            return Err(err("right after a backslash", "remove the backslash"));
        }
        match self.quote {
            Quote::None => {}
            Quote::Single | Quote::Double | Quote::AnsiC => {
                return Err(err(
                    "inside quotes",
                    "remove the quotes around it: values are shell-quoted automatically",
                ));
            }
        }
        if self.prev == b'$' {
            return Err(err(
                "right after `$`",
                "write the placeholder without `$` (for a shell variable write ${{NAME})",
            ));
        }
        self.word_start = false;
        self.prev = b'}';
        Ok(())
    }
}

/// Checks where placeholders sit in a shell command (see [`ShellScan`]).
pub(crate) fn check_shell_template(cmd: &str) -> Result<(), ExecError> {
    let mut scan = ShellScan::new();
    for p in parse(cmd) {
        match p {
            Piece::Lit(l) => scan.feed(l),
            Piece::Var(n) => scan.var(n)?,
        }
    }
    Ok(())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn substitute(
    tpl: &str,
    vars: &BTreeMap<String, String>,
    enc: Encoding,
) -> Result<String, ExecError> {
    let mut out = String::with_capacity(tpl.len());
    let mut scan = (enc == Encoding::Shell).then(ShellScan::new);
    for p in parse(tpl) {
        match p {
            Piece::Lit(l) => {
                if let Some(s) = scan.as_mut() {
                    s.feed(l);
                }
                out.push_str(l);
            }
            Piece::Var(name) => {
                if !KNOWN_PLACEHOLDERS.contains(&name) {
                    return Err(ExecError::UnknownPlaceholder {
                        name: name.to_string(),
                        known: known_list(),
                    });
                }
                if let Some(s) = scan.as_mut() {
                    s.var(name)?;
                }
                let value = vars
                    .get(name)
                    .ok_or_else(|| ExecError::MissingVar(name.to_string()))?;
                if value.contains('\0') {
                    return Err(ExecError::NulInValue(name.to_string()));
                }
                match enc {
                    Encoding::Raw => out.push_str(value),
                    Encoding::Shell => {
                        let q = shlex::try_quote(value)
                            .map_err(|_| ExecError::NulInValue(name.to_string()))?;
                        out.push_str(&q);
                    }
                    Encoding::Percent => out.push_str(&percent_encode(value)),
                    Encoding::Json => {
                        let j = serde_json::to_string(value).unwrap_or_default();
                        out.push_str(j.get(1..j.len().saturating_sub(1)).unwrap_or_default());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Fills in an action's placeholders.
///
/// * `{name}` is replaced inside each argument; a value NEVER splits an
///   argument into several (no shell is involved for `argv`).
/// * Except where a shell will interpret the argument: the script of a
///   POSIX shell's `-c` anywhere in `argv` (`sh -c`, `bash -lc`,
///   `sudo sh -ec`, `kubectl exec … -- sh -c`; see [`code_args`]) is treated
///   exactly like a `shell = true` command (values shell-quoted, same
///   placement rules). Placeholders in code for other interpreters
///   (`python -c`, `perl -e`, `node -e`, `fish -c`, …) are refused.
/// * For `shell = true` the substituted values are shell-quoted
///   (`shlex::try_quote`), so `a; touch /tmp/x` stays one inert word; the
///   placeholder must not sit inside quotes, after a backslash, in a comment
///   or in a here-document (an error, since quoting would not protect it).
/// * In `url` values are percent-encoded; in `body` they are JSON-escaped
///   when the `Content-Type` header mentions `json`, percent-encoded for
///   `x-www-form-urlencoded`, and inserted as is otherwise. Header and `env`
///   values are inserted as is.
/// * `{{` is a literal `{`; a `{` or `}` that is not part of `{name}` is
///   literal too.
///
/// # Errors
///
/// [`ExecError::UnknownPlaceholder`] for a name not in
/// [`KNOWN_PLACEHOLDERS`], [`ExecError::MissingVar`] when `vars` lacks a used
/// name, [`ExecError::NulInValue`], [`ExecError::UnsafeShellPlaceholder`], and
/// [`ExecError::Invalid`] when [`ActionSpec::validate`] fails.
pub fn render(spec: &ActionSpec, vars: &BTreeMap<String, String>) -> Result<Rendered, ExecError> {
    if let Some(name) = spec
        .placeholders()
        .into_iter()
        .find(|n| !KNOWN_PLACEHOLDERS.contains(&n.as_str()))
    {
        return Err(ExecError::UnknownPlaceholder {
            name,
            known: known_list(),
        });
    }
    spec.validate().map_err(ExecError::Invalid)?;

    let env = spec
        .env
        .iter()
        .map(|(k, v)| Ok((k.clone(), substitute(v, vars, Encoding::Raw)?)))
        .collect::<Result<BTreeMap<_, _>, ExecError>>()?;

    if let Some(d) = &spec.docker {
        return Ok(Rendered::Docker(
            d.map_texts(|t| substitute(t, vars, Encoding::Raw))?,
        ));
    }
    if let Some(argv) = &spec.argv {
        let scripts = code_args(argv);
        let argv = argv
            .iter()
            .enumerate()
            .map(|(i, a)| match scripts.iter().find(|(j, _)| *j == i) {
                // A script a POSIX shell runs: values shell-quoted, as for
                // `shell = true`.
                Some((_, Interpreter::PosixShell)) => substitute(a, vars, Encoding::Shell),
                // Code for another interpreter: refused by `validate` when it
                // has placeholders; render it only without them.
                Some((_, Interpreter::Other(prog))) if !names(a).is_empty() => {
                    Err(ExecError::Invalid(code_placeholder_message(prog)))
                }
                _ => substitute(a, vars, Encoding::Raw),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Rendered::Command {
            argv,
            shell: false,
            env,
            cwd: spec.cwd.clone(),
        });
    }
    if let Some(cmd) = &spec.command {
        let cmd = substitute(cmd, vars, Encoding::Shell)?;
        return Ok(Rendered::Command {
            argv: vec!["sh".to_string(), "-c".to_string(), cmd],
            shell: true,
            env,
            cwd: spec.cwd.clone(),
        });
    }
    let url = spec.url.as_deref().unwrap_or_default();
    let url = substitute(url.trim(), vars, Encoding::Percent)?;
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), substitute(v, vars, Encoding::Raw)?)))
        .collect::<Result<BTreeMap<_, _>, ExecError>>()?;
    let content_type = spec
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let body_enc = if content_type.contains("json") {
        Encoding::Json
    } else if content_type.contains("x-www-form-urlencoded") {
        Encoding::Percent
    } else {
        Encoding::Raw
    };
    let body = spec
        .body
        .as_deref()
        .map(|b| substitute(b, vars, body_enc))
        .transpose()?;
    Ok(Rendered::Http {
        method: spec.method.to_ascii_uppercase(),
        url,
        headers,
        body,
    })
}

/// Who runs a code argument found by [`code_args`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interpreter<'a> {
    /// `sh`, `bash`, `dash`, `zsh`, `ksh`, `mksh`, `ash`, `yash`, `posh`:
    /// `shlex` quoting protects a value.
    PosixShell,
    /// Another language (its program name): no quoting is known to be safe.
    Other(&'a str),
}

const POSIX_SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "yash", "posh",
];

/// Interpreters whose code is an option's argument: program name (or prefix
/// ending in `*`) and the option letters / long options taking code.
const CODE_OPTIONS: &[(&str, &str, &[&str])] = &[
    ("python*", "c", &[]),
    ("perl*", "eE", &[]),
    ("ruby*", "e", &[]),
    ("node", "ep", &["--eval", "--print"]),
    ("nodejs", "ep", &["--eval", "--print"]),
    ("deno", "", &["eval"]),
    ("php*", "r", &[]),
    ("lua*", "e", &[]),
    ("fish", "c", &["--command"]),
    ("csh", "c", &[]),
    ("tcsh", "c", &[]),
    ("pwsh", "c", &["-command", "-Command", "-EncodedCommand"]),
    ("powershell", "c", &["-command", "-Command"]),
    ("awk", "", &[]),
];

fn matches_program(base: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => base.starts_with(prefix),
        None => base == pattern,
    }
}

/// The arguments of `argv` that an interpreter runs as code: for a POSIX
/// shell anywhere in `argv` (by base name, so `/bin/sh`, `env bash`,
/// `sudo sh`, `… -- sh` count) whose options include `c` (`-c`, `-lc`,
/// `-euc`; `-o NAME`, `--rcfile FILE` skipped), its first operand; for the
/// interpreters of [`CODE_OPTIONS`] the argument after their code option
/// (`python3 -c CODE`, `perl -ne CODE`). Index 0 (the program) is never one.
pub(crate) fn code_args(argv: &[String]) -> Vec<(usize, Interpreter<'_>)> {
    let mut out = Vec::new();
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let mut i = 0;
    while i < argv.len() {
        let prog = base(&argv[i]);
        if POSIX_SHELLS.contains(&prog.as_str()) {
            let mut cmode = false;
            let mut j = i + 1;
            while j < argv.len() {
                let a = argv[j].as_str();
                if a == "--" || a == "-" {
                    j += 1;
                    break;
                }
                if let Some(long) = a.strip_prefix("--") {
                    if matches!(long, "rcfile" | "init-file") {
                        j += 1;
                    }
                    j += 1;
                    continue;
                }
                if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
                    cmode |= a[1..].contains('c');
                    if a[1..].contains(['o', 'O']) {
                        j += 1;
                    }
                    j += 1;
                    continue;
                }
                break;
            }
            if cmode && j < argv.len() && j > 0 {
                out.push((j, Interpreter::PosixShell));
                i = j + 1;
                continue;
            }
        } else if let Some((_, letters, longs)) = CODE_OPTIONS
            .iter()
            .find(|(p, _, _)| matches_program(&prog, p))
        {
            let name = argv[i].rsplit('/').next().unwrap_or(&argv[i]);
            if prog == "awk" {
                // awk's program is its first operand that is not an option.
                let mut j = i + 1;
                while j < argv.len() && argv[j].starts_with('-') && argv[j] != "--" {
                    if matches!(argv[j].as_str(), "-F" | "-v" | "-f") {
                        j += 1;
                    }
                    j += 1;
                }
                if j < argv.len() && argv[j] == "--" {
                    j += 1;
                }
                if j < argv.len() {
                    out.push((j, Interpreter::Other(name)));
                }
            } else {
                for j in i + 1..argv.len() {
                    let a = argv[j].as_str();
                    let takes_code = longs.contains(&a)
                        || (a.starts_with('-')
                            && !a.starts_with("--")
                            && a.len() > 1
                            && a.chars().last().is_some_and(|c| letters.contains(c)));
                    if takes_code && j + 1 < argv.len() {
                        out.push((j + 1, Interpreter::Other(name)));
                        break;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

fn code_placeholder_message(prog: &str) -> String {
    format!(
        "a placeholder inside code that `{prog}` runs is code injection: pass the value as a separate argument (e.g. sys.argv, $1) or through `env`"
    )
}

/// Where in an action a template problem is: the key and, for `argv`, the
/// index or, for `env`/`headers`, the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateKey {
    /// `argv[i]`.
    Argv(usize),
    /// `command`, `url` or `body`.
    Key(&'static str),
    /// `env.NAME` or `headers.NAME`.
    Entry(&'static str, String),
}

/// Problems with the templates of an action that [`render`] could not
/// report safely later, for [`ActionSpec::validate`] and the config loader
/// (which positions each at its key): an unclosed placeholder (`{weight`
/// without `}`), a placeholder in a shell script in `argv` where quoting
/// cannot protect it, or any placeholder in code for a non-POSIX
/// interpreter.
pub fn template_problems(spec: &ActionSpec) -> Vec<(TemplateKey, String)> {
    let mut out = Vec::new();
    let mut texts: Vec<(TemplateKey, &str)> = Vec::new();
    for (i, a) in spec.argv.iter().flatten().enumerate() {
        texts.push((TemplateKey::Argv(i), a));
    }
    for (k, v) in [
        ("command", &spec.command),
        ("url", &spec.url),
        ("body", &spec.body),
    ] {
        if let Some(v) = v {
            texts.push((TemplateKey::Key(k), v));
        }
    }
    for (k, v) in &spec.env {
        texts.push((TemplateKey::Entry("env", k.clone()), v));
    }
    for (k, v) in &spec.headers {
        texts.push((TemplateKey::Entry("headers", k.clone()), v));
    }
    for (k, v) in spec.docker.iter().flat_map(|d| d.texts()) {
        texts.push((TemplateKey::Entry("docker", k), v));
    }
    for (key, t) in texts {
        for n in unclosed(t) {
            out.push((
                key.clone(),
                format!("placeholder `{{{n}` is not closed: write `{{{n}}}` (or `{{{{{n}` for a literal `{{`)"),
            ));
        }
    }
    if let Some(argv) = &spec.argv {
        for (i, who) in code_args(argv) {
            match who {
                Interpreter::PosixShell => {
                    if let Err(e) = check_shell_template(&argv[i]) {
                        out.push((
                            TemplateKey::Argv(i),
                            format!("`argv[{i}]` is a shell script: {e}"),
                        ));
                    }
                }
                Interpreter::Other(prog) => {
                    if !names(&argv[i]).is_empty() {
                        out.push((
                            TemplateKey::Argv(i),
                            format!("`argv[{i}]`: {}", code_placeholder_message(prog)),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Known placeholder names opened with `{` but never closed (`{weight`,
/// `{version ` …); `{{` escapes and unknown words (`{print $1}`) are literal.
fn unclosed(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            if b.get(i + 1) == Some(&b'{') {
                i += 2;
                continue;
            }
            let len = ident_len(&b[i + 1..]);
            if len > 0 && b.get(i + 1 + len) != Some(&b'}') {
                let name = &s[i + 1..i + 1 + len];
                if KNOWN_PLACEHOLDERS.contains(&name) {
                    out.push(name);
                }
            }
            i += 1 + len;
            continue;
        }
        i += 1;
    }
    out
}

/// The text a template stands for when it has no placeholders (`{{` read
/// as `{`), else `None`.
pub fn literal_text(s: &str) -> Option<String> {
    let mut out = String::new();
    for p in parse(s) {
        match p {
            Piece::Lit(l) => out.push_str(l),
            Piece::Var(_) => return None,
        }
    }
    Some(out)
}

/// A display of the action with placeholders left unfilled, for the audit log
/// when rendering failed.
pub(crate) fn template_display(spec: &ActionSpec, redactor: &Redactor) -> String {
    let unrendered = if let Some(argv) = &spec.argv {
        Rendered::Command {
            argv: argv.clone(),
            shell: false,
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
        }
    } else if let Some(cmd) = &spec.command {
        Rendered::Command {
            argv: vec!["sh".into(), "-c".into(), cmd.clone()],
            shell: true,
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
        }
    } else {
        Rendered::Http {
            method: spec.method.to_ascii_uppercase(),
            url: spec.url.clone().unwrap_or_default(),
            headers: spec.headers.clone(),
            body: spec.body.clone(),
        }
    };
    unrendered.display(redactor)
}

#[cfg(test)]
mod shell_script_tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_the_scripts_shells_run() {
        let idx = |a: &[&str]| {
            code_args(&args(a))
                .into_iter()
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(idx(&["sh", "-c", "x"]), vec![2]);
        assert_eq!(idx(&["/bin/bash", "-lc", "x", "name", "arg"]), vec![2]);
        assert_eq!(idx(&["bash", "-o", "pipefail", "-ec", "x"]), vec![4]);
        assert_eq!(idx(&["bash", "--norc", "-c", "x"]), vec![3]);
        assert_eq!(idx(&["sudo", "-u", "app", "sh", "-c", "x"]), vec![5]);
        assert_eq!(
            idx(&["kubectl", "exec", "pod", "--", "zsh", "-c", "x"]),
            vec![6]
        );
        assert_eq!(idx(&["python3", "-c", "x"]), vec![2]);
        assert_eq!(idx(&["perl", "-ne", "x", "f"]), vec![2]);
        // A script file, not a -c script; no shell at all.
        assert!(idx(&["bash", "deploy.sh", "{version}"]).is_empty());
        assert!(idx(&["kubectl", "set", "image", "x"]).is_empty());
    }

    /// The issue's exploit: a hostile version in `sh -c` argv. The rendered
    /// command really runs here, and the marker file is not created.
    #[test]
    fn a_value_in_an_sh_c_script_stays_one_inert_word() {
        let dir = tempfile::tempdir().unwrap();
        let pwned = dir.path().join("pwned");
        let hostile = format!("1.0;touch {}", pwned.display());
        let spec = ActionSpec {
            argv: Some(args(&["sh", "-c", "echo deploying {version}"])),
            ..ActionSpec::default()
        };
        spec.validate().unwrap();
        let vars = BTreeMap::from([("version".to_string(), hostile.clone())]);
        let Rendered::Command { argv, .. } = render(&spec, &vars).unwrap() else {
            panic!("a command");
        };
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(!pwned.exists(), "the injected command ran");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            format!("deploying {hostile}")
        );
        // Positional parameters after the script are passed as is.
        let spec = ActionSpec {
            argv: Some(args(&["sh", "-c", "echo \"$1\"", "sh", "{version}"])),
            ..ActionSpec::default()
        };
        let Rendered::Command { argv, .. } = render(&spec, &vars).unwrap() else {
            panic!("a command");
        };
        assert_eq!(argv[4], hostile);
    }

    #[test]
    fn placeholders_in_other_interpreters_code_are_refused() {
        let spec = ActionSpec {
            argv: Some(args(&["python3", "-c", "print('{version}')"])),
            ..ActionSpec::default()
        };
        let e = spec.validate().unwrap_err();
        assert!(e.contains("code injection"), "{e}");
        let spec = ActionSpec {
            argv: Some(args(&[
                "python3",
                "-c",
                "import sys; print(sys.argv[1])",
                "{version}",
            ])),
            ..ActionSpec::default()
        };
        spec.validate().unwrap();
    }
}
