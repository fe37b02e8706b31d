//! `$VAR` / `${VAR}` in runbook blocks.
//!
//! A shell block's variables reach it as environment variables (the code
//! is never rewritten, so quoting stays the shell's business); a PromQL
//! block's are substituted into the query text. Where a value comes from,
//! first match wins:
//!
//! 1. the config's `[runbooks] vars` table;
//! 2. a value the operator gave (recorded in the runbook's progress file,
//!    except names that look secret — [`crate::config::is_secret_name`] —
//!    which live only in memory for the session);
//! 3. rolldeck's own environment (non-empty values only; shell blocks
//!    inherit it).
//!
//! A variable with none of these is *unresolved*: the block is refused with
//! the names, never run with an empty value. Not counted as needing a
//! value: variables the block sets itself (`NAME=…`, `export NAME=…`,
//! `for NAME in`, `read NAME`, `local`/`declare NAME`), expansions with a
//! default or a test (`${NAME:-x}`, `${NAME-x}`, `${NAME:=x}`,
//! `${NAME:+x}`, `${#NAME}`), special and positional parameters (`$1`,
//! `$?`, `$@`), shell-maintained names (`RANDOM`, `UID`, …), and anything
//! inside single quotes or after a backslash.

use std::collections::{BTreeMap, BTreeSet};

use super::BlockKind;

/// Names the shell sets itself.
const SHELL_NAMES: &[&str] = &[
    "RANDOM",
    "LINENO",
    "SECONDS",
    "UID",
    "EUID",
    "PPID",
    "BASHPID",
    "REPLY",
    "OPTARG",
    "OPTIND",
    "PIPESTATUS",
    "FUNCNAME",
    "BASH_SOURCE",
    "BASH_VERSION",
    "IFS",
    "PWD",
    "OLDPWD",
    "HOSTNAME",
    "SHLVL",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
];

/// A reference found in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    name: String,
    /// Has a default / is a test: no value needed.
    optional: bool,
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

/// Every `$NAME` / `${NAME…}` outside single quotes and not escaped.
fn scan(code: &str, shell: bool) -> Vec<Ref> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut single = false;
    let mut double = false;
    let mut comment = false;
    while i < b.len() {
        let c = b[i];
        if comment {
            if c == b'\n' {
                comment = false;
            }
            i += 1;
            continue;
        }
        if single {
            if c == b'\'' {
                single = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' if shell => {
                i += 2;
                continue;
            }
            b'\'' if shell && !double => single = true,
            b'"' if shell => double = !double,
            b'#' if shell
                && !double
                && (i == 0 || b[i - 1].is_ascii_whitespace() || b[i - 1] == b';') =>
            {
                comment = true
            }
            b'$' => {
                let rest = &b[i + 1..];
                if rest.first() == Some(&b'{') {
                    let inner = &rest[1..];
                    if inner.first() == Some(&b'#') || inner.first() == Some(&b'!') {
                        // ${#NAME} (length), ${!NAME} (indirection).
                        i += 2;
                        continue;
                    }
                    let n = ident_len(inner);
                    if n > 0 {
                        let name = String::from_utf8_lossy(&inner[..n]).into_owned();
                        let after = inner.get(n).copied();
                        let optional = match after {
                            Some(b'}') => false,
                            Some(b':') => !matches!(inner.get(n + 1), Some(b'?')),
                            Some(b'-' | b'=' | b'+') => true,
                            // ${NAME?msg}, ${NAME%…}, ${NAME/…}, ${NAME[…]}: needs it.
                            _ => false,
                        };
                        out.push(Ref { name, optional });
                        i += 2 + n;
                        continue;
                    }
                } else {
                    let n = ident_len(rest);
                    if n > 0 {
                        out.push(Ref {
                            name: String::from_utf8_lossy(&rest[..n]).into_owned(),
                            optional: false,
                        });
                        i += 1 + n;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Names a shell block assigns itself.
fn assigned(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|' || c == '(')
            .filter(|w| !w.is_empty())
            .collect();
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            if let Some((name, _)) = w.split_once('=')
                && ident_len(name.as_bytes()) == name.len()
                && !name.is_empty()
            {
                out.insert(name.to_string());
            }
            match w {
                "for" | "select" => {
                    if let Some(n) = words.get(k + 1)
                        && ident_len(n.as_bytes()) == n.len()
                    {
                        out.insert((*n).to_string());
                    }
                }
                "read" | "local" | "declare" | "typeset" | "export" | "readonly" => {
                    for n in words[k + 1..].iter().take_while(|n| {
                        !matches!(**n, "<" | "<<<" | ">" | "&&" | "||") && !n.starts_with('<')
                    }) {
                        let name = n.split('=').next().unwrap_or(n);
                        if !name.starts_with('-') && ident_len(name.as_bytes()) == name.len() {
                            out.insert(name.to_string());
                        }
                    }
                }
                _ => {}
            }
            k += 1;
        }
    }
    out
}

/// The variables `code` needs a value for, each once, in order of first
/// use. For [`BlockKind::Other`] blocks (never run): none.
pub fn references(code: &str, kind: BlockKind) -> Vec<String> {
    let shell = match kind {
        BlockKind::Shell => true,
        BlockKind::Promql => false,
        BlockKind::Other => return Vec::new(),
    };
    let own = if shell {
        assigned(code)
    } else {
        BTreeSet::new()
    };
    let mut out: Vec<String> = Vec::new();
    let mut optional_only: BTreeSet<String> = BTreeSet::new();
    for r in scan(code, shell) {
        if r.optional {
            optional_only.insert(r.name);
            continue;
        }
        if own.contains(&r.name)
            || (shell && SHELL_NAMES.contains(&r.name.as_str()))
            || out.contains(&r.name)
        {
            continue;
        }
        out.push(r.name);
    }
    out
}

/// Where a variable's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `[runbooks] vars` in the config.
    Config,
    /// Given by the operator (progress file or session).
    Given,
    /// rolldeck's environment.
    Environment,
}

/// The values known for a run.
#[derive(Debug, Clone, Default)]
pub struct VarSources {
    /// `[runbooks] vars`.
    pub config: BTreeMap<String, String>,
    /// Values the operator gave: the progress file's plus this session's
    /// secret ones.
    pub given: BTreeMap<String, String>,
    /// Read rolldeck's environment for names not found above.
    pub use_environment: bool,
}

/// The outcome of [`VarSources::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Values to pass (config and given ones; environment values are
    /// inherited, not repeated).
    pub values: BTreeMap<String, String>,
    /// Where each needed name's value came from.
    pub origins: BTreeMap<String, Origin>,
    /// Names with no value (or an empty one), in order.
    pub missing: Vec<String>,
}

impl VarSources {
    /// The config's `[runbooks] vars`, the values recorded in `progress`
    /// plus `session` (secret values given this session), and the
    /// environment.
    pub fn new(
        cfg: Option<&crate::config::Config>,
        progress: &super::Progress,
        session: &BTreeMap<String, String>,
    ) -> Self {
        let mut given = progress.vars.clone();
        given.extend(session.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            config: cfg.map_or_else(BTreeMap::new, |c| c.runbooks.vars.clone()),
            given,
            use_environment: true,
        }
    }

    /// Resolves `names` (see the module documentation for the order). An
    /// empty value counts as missing wherever it comes from.
    pub fn resolve(&self, names: &[String]) -> Resolved {
        let mut r = Resolved::default();
        for n in names {
            if let Some(v) = self.config.get(n).filter(|v| !v.is_empty()) {
                r.values.insert(n.clone(), v.clone());
                r.origins.insert(n.clone(), Origin::Config);
            } else if let Some(v) = self.given.get(n).filter(|v| !v.is_empty()) {
                r.values.insert(n.clone(), v.clone());
                r.origins.insert(n.clone(), Origin::Given);
            } else if self.use_environment && std::env::var_os(n).is_some_and(|v| !v.is_empty()) {
                r.origins.insert(n.clone(), Origin::Environment);
            } else {
                r.missing.push(n.clone());
            }
        }
        r
    }
}

/// A PromQL query with `$NAME` / `${NAME}` replaced by `values` (names
/// not in `values` stay as written).
pub fn substitute_promql(query: &str, values: &BTreeMap<String, String>) -> String {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let n = ident_len(&b[start.min(b.len())..]);
            let end = start + n;
            let close = !braced || b.get(end) == Some(&b'}');
            if n > 0 && close {
                let name = &query[start..end];
                if let Some(v) = values.get(name) {
                    out.push_str(&query[last..i]);
                    out.push_str(v);
                    i = end + usize::from(braced);
                    last = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&query[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(code: &str) -> Vec<String> {
        references(code, BlockKind::Shell)
    }

    #[test]
    fn finds_what_needs_a_value() {
        assert_eq!(
            refs("psql \"$DATABASE_URL\" -c 'select $1'\necho ${NAMESPACE} $? $1\n"),
            ["DATABASE_URL", "NAMESPACE"]
        );
        assert_eq!(refs("echo ${A:-x} ${B:=y} ${#C} ${D:?set D}"), ["D"]);
        assert_eq!(
            refs("echo \\$HOME '$USER' # $COMMENT"),
            Vec::<String>::new()
        );
        assert_eq!(
            refs(
                "X=1; echo $X\nfor f in *; do echo $f; done\nread -r ANSWER\necho $ANSWER $RANDOM"
            ),
            Vec::<String>::new()
        );
        assert_eq!(refs("export POD=web-1\necho $POD $NS"), ["NS"]);
        assert!(references("echo $X", BlockKind::Other).is_empty());
        assert_eq!(
            references("rate(x{job=\"$JOB\"}[5m])", BlockKind::Promql),
            ["JOB"]
        );
    }

    #[test]
    fn resolution_order_and_empty_values() {
        let mut s = VarSources::default();
        s.config.insert("A".into(), "from-config".into());
        s.given.insert("A".into(), "given".into());
        s.given.insert("B".into(), "given".into());
        s.given.insert("E".into(), String::new());
        let r = s.resolve(&["A".into(), "B".into(), "E".into(), "C".into()]);
        assert_eq!(r.values["A"], "from-config");
        assert_eq!(r.values["B"], "given");
        assert_eq!(r.missing, ["E", "C"]);
    }

    #[test]
    fn promql_substitution() {
        let mut v = BTreeMap::new();
        v.insert("SVC".to_string(), "checkout".to_string());
        assert_eq!(
            substitute_promql("up{job=\"$SVC\"} + ${SVC}x + $OTHER", &v),
            "up{job=\"checkout\"} + checkoutx + $OTHER"
        );
    }
}
