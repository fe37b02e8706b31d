//! Alembic revision files (Python): the revision identifiers and the
//! `op.*` calls of `upgrade()`.
//!
//! A small Python tokenizer (strings of every quoting and prefix, comments,
//! brackets, line continuations, logical lines with their indentation) —
//! enough for what Alembic generates and people write by hand; no code is
//! run.
//!
//! Recognised identifier assignments, at module level (indentation 0):
//!
//! * `revision = "ae1027a6acf"` (either quote, any string prefix but `f`);
//! * `down_revision = None`, `= "x"`, `= ("a", "b")` or `= ["a", "b"]`
//!   (a merge revision), also with a trailing comma;
//! * each with a type annotation: `revision: str = "x"`,
//!   `down_revision: Union[str, Sequence[str], None] = "y"`.
//!
//! Anything else for these names (a variable, a call, an f-string) is an
//! error: the graph would be a guess. `revision` is required; a missing
//! `down_revision` means a root (`None`). `branch_labels` and `depends_on`
//! are not used.
//!
//! Recognised calls in `upgrade()` (receiver `op`, or a name bound by
//! `with op.batch_alter_table("t") as NAME:`), with the rules of
//! [`super::lint`]:
//!
//! * `drop_table` → `drop-table` (error); `drop_column` → `drop-column` (error);
//! * `alter_column(…, type_=T)` → `type-change` (error when `T` has a
//!   length/precision argument such as `sa.String(20)`, or is
//!   `SmallInteger`/`Integer`/`Boolean`/`Date`/`Float`; else warning);
//! * `alter_column(…, nullable=False)` without `server_default=` and with no
//!   earlier `UPDATE` of the table in this `upgrade()` → `set-not-null`;
//! * `alter_column(…, new_column_name=…)`, `rename_table` → `rename`;
//! * `add_column(…, sa.Column(…, nullable=False))` without
//!   `server_default` → `set-not-null`;
//! * `create_index` without `postgresql_concurrently=True` on a table not
//!   created in this `upgrade()` → `index-not-concurrent`;
//! * `execute("SQL")` (also `sa.text("SQL")` and adjacent string literals)
//!   → the SQL is parsed and linted at the string's lines; a non-literal
//!   argument → `unparsed` (error).
//!
//! And `downgrade()`: missing, or a body of only `pass` / `...` / a
//! docstring → `missing-downgrade` / `empty-downgrade` (warning).

use super::lint::{self, Context};
use super::{Finding, Severity};

/// A Python token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    /// A string literal's value (escapes decoded for `\n \t \\ \' \"`),
    /// and whether it is an f-string.
    Str(String, bool),
    Num(String),
    Op(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based line where it starts.
    line: u32,
}

/// A logical line: its indentation (columns) and tokens.
#[derive(Debug, Clone)]
struct Line {
    indent: usize,
    tokens: Vec<Token>,
}

/// Splits Python source into logical lines. Errors: an unterminated string.
fn logical_lines(src: &str) -> Result<Vec<Line>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut line: u32 = 1;
    let mut depth: i32 = 0;
    let mut out: Vec<Line> = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut indent = 0usize;
    let mut at_line_start = true;
    let mut col = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            col = 0;
            if depth <= 0 {
                if !cur.is_empty() {
                    out.push(Line {
                        indent,
                        tokens: std::mem::take(&mut cur),
                    });
                }
                at_line_start = true;
            }
            continue;
        }
        if c == ' ' || c == '\t' || c == '\r' || c == '\x0c' {
            col += if c == '\t' { 8 - col % 8 } else { 1 };
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '\\' && chars.get(i + 1) == Some(&'\n') {
            line += 1;
            i += 2;
            continue;
        }
        if at_line_start && depth <= 0 {
            indent = col;
            at_line_start = false;
        }
        let start_line = line;
        // String, possibly with a prefix.
        let mut j = i;
        while j < chars.len() && j - i < 2 && "rRbBuUfF".contains(chars[j]) {
            j += 1;
        }
        if j < chars.len() && (chars[j] == '"' || chars[j] == '\'') {
            let prefix: String = chars[i..j].iter().collect::<String>().to_lowercase();
            let raw = prefix.contains('r');
            let fstr = prefix.contains('f');
            let q = chars[j];
            let triple = chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q);
            let mut k = j + if triple { 3 } else { 1 };
            let mut value = String::new();
            loop {
                let Some(&ch) = chars.get(k) else {
                    return Err(format!("unterminated string starting at line {start_line}"));
                };
                if triple {
                    if ch == q && chars.get(k + 1) == Some(&q) && chars.get(k + 2) == Some(&q) {
                        k += 3;
                        break;
                    }
                } else if ch == q {
                    k += 1;
                    break;
                } else if ch == '\n' {
                    return Err(format!("unterminated string at line {start_line}"));
                }
                if ch == '\\' && !raw {
                    let next = chars.get(k + 1).copied();
                    match next {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('\n') => line += 1,
                        Some(n @ ('\\' | '\'' | '"')) => value.push(n),
                        Some(n) => {
                            value.push('\\');
                            value.push(n);
                        }
                        None => {}
                    }
                    k += 2;
                    continue;
                }
                if ch == '\n' {
                    line += 1;
                }
                value.push(ch);
                k += 1;
            }
            col += k - i;
            i = k;
            cur.push(Token {
                tok: Tok::Str(value, fstr),
                line: start_line,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut k = i;
            while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                k += 1;
            }
            cur.push(Token {
                tok: Tok::Name(chars[i..k].iter().collect()),
                line,
            });
            col += k - i;
            i = k;
            continue;
        }
        if c.is_ascii_digit() {
            let mut k = i;
            while k < chars.len()
                && (chars[k].is_ascii_alphanumeric() || chars[k] == '.' || chars[k] == '_')
            {
                k += 1;
            }
            cur.push(Token {
                tok: Tok::Num(chars[i..k].iter().collect()),
                line,
            });
            col += k - i;
            i = k;
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        // Two-character operators that matter: `==`, `->`, `**`, `!=`, `<=`, `>=`.
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = if ["==", "->", "**", "!=", "<=", ">=", ":="].contains(&two.as_str()) {
            two
        } else {
            c.to_string()
        };
        i += op.chars().count();
        col += op.chars().count();
        cur.push(Token {
            tok: Tok::Op(op),
            line,
        });
    }
    if !cur.is_empty() {
        out.push(Line {
            indent,
            tokens: cur,
        });
    }
    Ok(out)
}

fn is_op(t: Option<&Token>, s: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Op(o), .. }) if o == s)
}

fn name_of(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token {
            tok: Tok::Name(n), ..
        }) => Some(n),
        _ => None,
    }
}

/// What a revision file says about its place in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// `revision`.
    pub revision: String,
    /// `down_revision`: empty for a root, several for a merge.
    pub down_revision: Vec<String>,
}

/// Reads `revision` and `down_revision` (the forms in the module
/// documentation). Errors say what was found instead.
pub fn parse_revision(src: &str) -> Result<Revision, String> {
    let lines = logical_lines(src)?;
    let mut revision = None;
    let mut down = None;
    for l in lines.iter().filter(|l| l.indent == 0) {
        let Some(name) = name_of(l.tokens.first()) else {
            continue;
        };
        if name != "revision" && name != "down_revision" {
            continue;
        }
        // `=` at bracket depth 0 (skipping an annotation).
        let mut d = 0;
        let mut eq = None;
        for (k, t) in l.tokens.iter().enumerate().skip(1) {
            if let Tok::Op(o) = &t.tok {
                match o.as_str() {
                    "(" | "[" | "{" => d += 1,
                    ")" | "]" | "}" => d -= 1,
                    "=" if d == 0 => {
                        eq = Some(k);
                        break;
                    }
                    _ => {}
                }
            }
        }
        let Some(eq) = eq else { continue };
        if k_is_annotation_only(&l.tokens[1..eq]) {
            let value = parse_ids(&l.tokens[eq + 1..])
                .map_err(|e| format!("line {}: `{name}` {e}", l.tokens[0].line))?;
            if name == "revision" {
                match value.as_slice() {
                    [one] => revision = Some(one.clone()),
                    _ => {
                        return Err(format!(
                            "line {}: `revision` must be one string",
                            l.tokens[0].line
                        ));
                    }
                }
            } else {
                down = Some(value);
            }
        }
    }
    let revision = revision.ok_or("no `revision = \"…\"` assignment at module level")?;
    if revision.is_empty() {
        return Err("`revision` is empty".into());
    }
    Ok(Revision {
        revision,
        down_revision: down.unwrap_or_default(),
    })
}

/// The tokens between the name and `=` are empty or `: annotation`.
fn k_is_annotation_only(between: &[Token]) -> bool {
    between.is_empty() || is_op(between.first(), ":")
}

/// `None` → [], `"a"` → [a], `("a", "b")` / `["a", "b"]` → [a, b].
fn parse_ids(value: &[Token]) -> Result<Vec<String>, String> {
    let s = |t: &Token| match &t.tok {
        Tok::Str(v, false) => Some(v.clone()),
        _ => None,
    };
    match value {
        [
            Token {
                tok: Tok::Name(n), ..
            },
        ] if n == "None" => Ok(Vec::new()),
        [one] => s(one)
            .map(|v| vec![v])
            .ok_or_else(|| "is not a string literal or None".to_string()),
        [open, inner @ .., close]
            if (is_op(Some(open), "(") && is_op(Some(close), ")"))
                || (is_op(Some(open), "[") && is_op(Some(close), "]")) =>
        {
            let mut out = Vec::new();
            for (k, t) in inner.iter().enumerate() {
                if k % 2 == 1 {
                    if !is_op(Some(t), ",") {
                        return Err("is not a tuple/list of string literals".into());
                    }
                } else {
                    out.push(
                        s(t).ok_or_else(|| "is not a tuple/list of string literals".to_string())?,
                    );
                }
            }
            Ok(out)
        }
        _ => Err("is not a string literal, None, or a tuple/list of strings".into()),
    }
}

/// One argument of a call: `name=` for keywords, and its tokens.
struct Arg<'a> {
    keyword: Option<&'a str>,
    tokens: &'a [Token],
}

/// Splits the tokens inside a call's parentheses at top-level commas.
fn args<'a>(inner: &'a [Token]) -> Vec<Arg<'a>> {
    let mut out = Vec::new();
    let mut d = 0;
    let mut start = 0;
    let push = |from: usize, to: usize, out: &mut Vec<Arg<'a>>| {
        let toks = &inner[from..to];
        if toks.is_empty() {
            return;
        }
        if let (Some(k), true) = (name_of(toks.first()), is_op(toks.get(1), "=")) {
            out.push(Arg {
                keyword: Some(k),
                tokens: &toks[2..],
            });
        } else {
            out.push(Arg {
                keyword: None,
                tokens: toks,
            });
        }
    };
    for (k, t) in inner.iter().enumerate() {
        if let Tok::Op(o) = &t.tok {
            match o.as_str() {
                "(" | "[" | "{" => d += 1,
                ")" | "]" | "}" => d -= 1,
                "," if d == 0 => {
                    push(start, k, &mut out);
                    start = k + 1;
                }
                _ => {}
            }
        }
    }
    push(start, inner.len(), &mut out);
    out
}

/// The index of the `)` closing the `(` at `open`.
fn closing(tokens: &[Token], open: usize) -> usize {
    let mut d = 0;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if let Tok::Op(o) = &t.tok {
            match o.as_str() {
                "(" | "[" | "{" => d += 1,
                ")" | "]" | "}" => {
                    d -= 1;
                    if d == 0 {
                        return k;
                    }
                }
                _ => {}
            }
        }
    }
    tokens.len()
}

fn first_str(tokens: &[Token]) -> Option<String> {
    tokens.iter().find_map(|t| match &t.tok {
        Tok::Str(s, false) => Some(s.clone()),
        _ => None,
    })
}

fn text_of(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match &t.tok {
            Tok::Name(n) | Tok::Num(n) | Tok::Op(n) => n.clone(),
            Tok::Str(s, _) => format!("{s:?}"),
        })
        .collect::<Vec<_>>()
        .join("")
}

fn is_false(tokens: &[Token]) -> bool {
    matches!(tokens, [Token { tok: Tok::Name(n), .. }] if n == "False")
}

fn is_true(tokens: &[Token]) -> bool {
    matches!(tokens, [Token { tok: Tok::Name(n), .. }] if n == "True")
}

/// `sa.String(20)`, `sa.Numeric(5, 2)`, `Integer()`: bounded (may truncate).
fn bounded_python_type(tokens: &[Token]) -> bool {
    let has_number_arg = tokens.iter().any(|t| matches!(t.tok, Tok::Num(_)));
    let names: Vec<&str> = tokens.iter().filter_map(|t| name_of(Some(t))).collect();
    has_number_arg
        || names.iter().any(|n| {
            matches!(
                n.to_ascii_lowercase().as_str(),
                "smallinteger"
                    | "integer"
                    | "boolean"
                    | "date"
                    | "float"
                    | "real"
                    | "smallint"
                    | "int"
            )
        })
}

fn warn(rule: &str, line: u32, message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        rule: rule.into(),
        line: Some(line),
        message,
    }
}

fn error(rule: &str, line: u32, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        rule: rule.into(),
        line: Some(line),
        message,
    }
}

/// Lints an Alembic revision file: `upgrade()`'s `op.*` calls and whether
/// `downgrade()` does anything (see the module documentation). A file that
/// does not tokenize gives one `unparsed` error.
pub fn lint(src: &str) -> Vec<Finding> {
    let lines = match logical_lines(src) {
        Ok(l) => l,
        Err(e) => return vec![error("unparsed", 1, format!("not linted: {e}"))],
    };
    let mut out = Vec::new();
    // Functions at module level: name → (def line, body lines).
    let mut current: Option<(String, u32)> = None;
    let mut bodies: Vec<(String, u32, Vec<&Line>)> = Vec::new();
    for l in &lines {
        if l.indent == 0 {
            current = None;
            if name_of(l.tokens.first()) == Some("def")
                && let Some(n) = name_of(l.tokens.get(1))
            {
                current = Some((n.to_string(), l.tokens[0].line));
                bodies.push((n.to_string(), l.tokens[0].line, Vec::new()));
                // `def f(): stmt` on one line: the rest after the `:` closing the signature.
                if let Some(b) = bodies.last_mut() {
                    b.2.push(l);
                }
            }
            continue;
        }
        if current.is_some()
            && let Some(b) = bodies.last_mut()
        {
            b.2.push(l);
        }
    }
    if let Some((_, _, body)) = bodies.iter().find(|(n, _, _)| n == "upgrade") {
        lint_upgrade(body, &mut out);
    }
    match bodies.iter().find(|(n, _, _)| n == "downgrade") {
        None => out.push(warn(
            "missing-downgrade",
            1,
            "no downgrade(): this revision has no way back".into(),
        )),
        Some((_, line, body)) => {
            if body_is_empty(body) {
                out.push(warn(
                    "empty-downgrade",
                    *line,
                    "downgrade() only passes: this revision has no way back".into(),
                ));
            }
        }
    }
    out
}

/// The statements of a function after its signature: only `pass`, `...`
/// or string literals (docstrings)?
fn body_is_empty(body: &[&Line]) -> bool {
    let mut stmts: Vec<&[Token]> = Vec::new();
    for (k, l) in body.iter().enumerate() {
        if k == 0 {
            // The `def` line: what follows the signature's `:` (one-liner).
            let open = l.tokens.iter().position(|t| is_op(Some(t), "("));
            let after = open.map(|o| closing(&l.tokens, o) + 1).unwrap_or(0);
            let colon = (after..l.tokens.len()).find(|&i| is_op(l.tokens.get(i), ":"));
            if let Some(c) = colon
                && c + 1 < l.tokens.len()
            {
                stmts.push(&l.tokens[c + 1..]);
            }
        } else {
            stmts.push(&l.tokens);
        }
    }
    stmts.iter().all(|s| {
        s.iter().all(|t| {
            matches!(&t.tok, Tok::Name(n) if n == "pass")
                || matches!(&t.tok, Tok::Str(..))
                || matches!(&t.tok, Tok::Op(o) if o == "." || o == ";")
        })
    })
}

fn lint_upgrade(body: &[&Line], out: &mut Vec<Finding>) {
    let mut ctx = Context::default();
    // Receivers: `op` and batch aliases → their table.
    let mut batch: Vec<(String, String)> = Vec::new();
    for l in body {
        let t = &l.tokens;
        // `with op.batch_alter_table("t") as NAME:`
        if name_of(t.first()) == Some("with") {
            for k in 0..t.len() {
                if name_of(t.get(k)) == Some("batch_alter_table") && is_op(t.get(k + 1), "(") {
                    let close = closing(t, k + 1);
                    let table = first_str(&t[k + 2..close.min(t.len())]).unwrap_or_default();
                    if name_of(t.get(close + 1)) == Some("as")
                        && let Some(alias) = name_of(t.get(close + 2))
                    {
                        batch.push((alias.to_string(), table));
                    }
                }
            }
        }
        let mut k = 0;
        while k + 3 < t.len() + 1 {
            let recv = name_of(t.get(k));
            let table_of_recv = match recv {
                Some("op") => Some(None),
                Some(r) => batch
                    .iter()
                    .find(|(a, _)| a == r)
                    .map(|(_, tb)| Some(tb.clone())),
                None => None,
            };
            if let (Some(batch_table), true, Some(func), true) = (
                table_of_recv,
                is_op(t.get(k + 1), "."),
                name_of(t.get(k + 2)),
                is_op(t.get(k + 3), "("),
            ) {
                let close = closing(t, k + 3);
                let inner = &t[k + 4..close.min(t.len())];
                op_call(func, &args(inner), batch_table, t[k].line, &mut ctx, out);
                k = close;
            }
            k += 1;
        }
    }
}

/// The table of an `op.*` call: the batch's table, else the first
/// positional string (or `table_name=`).
fn table_arg(a: &[Arg<'_>], batch: &Option<String>, positional: usize) -> String {
    if let Some(t) = batch {
        return t.clone();
    }
    a.iter()
        .find(|x| x.keyword == Some("table_name"))
        .or_else(|| a.iter().filter(|x| x.keyword.is_none()).nth(positional))
        .and_then(|x| first_str(x.tokens))
        .unwrap_or_else(|| "?".into())
}

fn positional_str(a: &[Arg<'_>], n: usize) -> String {
    a.iter()
        .filter(|x| x.keyword.is_none())
        .nth(n)
        .and_then(|x| first_str(x.tokens))
        .unwrap_or_else(|| "?".into())
}

fn kw<'a>(a: &'a [Arg<'a>], k: &str) -> Option<&'a [Token]> {
    a.iter().find(|x| x.keyword == Some(k)).map(|x| x.tokens)
}

fn op_call(
    func: &str,
    a: &[Arg<'_>],
    batch: Option<String>,
    line: u32,
    ctx: &mut Context,
    out: &mut Vec<Finding>,
) {
    // In a batch, the column is the first positional argument.
    let col_pos = if batch.is_some() { 0 } else { 1 };
    match func {
        "drop_table" => out.push(error(
            "drop-table",
            line,
            format!(
                "op.drop_table({}): the table and its data are gone",
                positional_str(a, 0)
            ),
        )),
        "drop_column" => out.push(error(
            "drop-column",
            line,
            format!(
                "op.drop_column({}.{}): the column's data is gone",
                table_arg(a, &batch, 0),
                positional_str(a, col_pos)
            ),
        )),
        "rename_table" => out.push(warn(
            "rename",
            line,
            format!(
                "op.rename_table({} → {}): the running baseline still uses the old name",
                positional_str(a, 0),
                positional_str(a, 1)
            ),
        )),
        "create_table" => {
            ctx.created.insert(lint::table_key(&positional_str(a, 0)));
        }
        "create_index" => {
            let table = if batch.is_some() {
                batch.clone().unwrap_or_default()
            } else {
                positional_str(a, 1)
            };
            let concurrent = kw(a, "postgresql_concurrently").is_some_and(is_true);
            if !concurrent && !ctx.created.contains(&lint::table_key(&table)) {
                out.push(warn(
                    "index-not-concurrent",
                    line,
                    format!(
                        "op.create_index({}) on {table} without postgresql_concurrently=True blocks writes while it builds",
                        positional_str(a, 0)
                    ),
                ));
            }
        }
        "add_column" => {
            let col = a.iter().find(|x| {
                x.keyword.is_none() && x.tokens.iter().any(|t| name_of(Some(t)) == Some("Column"))
            });
            if let Some(c) = col {
                let open = c.tokens.iter().position(|t| is_op(Some(t), "("));
                if let Some(o) = open {
                    let close = closing(c.tokens, o);
                    let inner = args(&c.tokens[o + 1..close.min(c.tokens.len())]);
                    let not_null = kw(&inner, "nullable").is_some_and(is_false);
                    if not_null && kw(&inner, "server_default").is_none() {
                        out.push(warn(
                            "set-not-null",
                            line,
                            format!(
                                "op.add_column({}.{}) nullable=False without server_default fails on a table with rows",
                                table_arg(a, &batch, 0),
                                positional_str(&inner, 0)
                            ),
                        ));
                    }
                }
            }
        }
        "alter_column" => {
            let table = table_arg(a, &batch, 0);
            let column = format!("{table}.{}", positional_str(a, col_pos));
            if let Some(ty) = kw(a, "type_") {
                out.push(lint::type_change(&column, &text_of(ty), line));
                if !bounded_python_type(ty)
                    && let Some(last) = out.last_mut()
                {
                    last.severity = Severity::Warning;
                } else if let Some(last) = out.last_mut() {
                    last.severity = Severity::Error;
                }
            }
            if kw(a, "new_column_name").is_some() {
                out.push(warn(
                    "rename",
                    line,
                    format!("op.alter_column({column}) renames it: the running baseline still uses the old name"),
                ));
            }
            let not_null = kw(a, "nullable").is_some_and(is_false);
            if not_null
                && kw(a, "server_default").is_none()
                && !ctx.updated.contains(&lint::table_key(&table))
            {
                out.push(warn(
                    "set-not-null",
                    line,
                    format!("op.alter_column({column}, nullable=False) without a default or a backfill: fails if a row holds NULL"),
                ));
            }
        }
        "execute" => {
            let first = a.iter().find(|x| x.keyword.is_none());
            // The string literal(s) of the first argument, adjacent ones joined.
            let lit: Option<(String, u32)> = first.and_then(|x| {
                let strs: Vec<&Token> = x
                    .tokens
                    .iter()
                    .filter(|t| matches!(t.tok, Tok::Str(_, false)))
                    .collect();
                let only_strings = x.tokens.iter().all(|t| {
                    matches!(t.tok, Tok::Str(_, false))
                        || matches!(&t.tok, Tok::Name(n) if n == "sa" || n == "text" || n == "sqlalchemy")
                        || matches!(&t.tok, Tok::Op(o) if o == "." || o == "(" || o == ")")
                });
                (only_strings && !strs.is_empty()).then(|| {
                    let s: String = strs
                        .iter()
                        .map(|t| match &t.tok {
                            Tok::Str(s, _) => s.as_str(),
                            _ => "",
                        })
                        .collect();
                    (s, strs[0].line)
                })
            });
            match lit {
                Some((sql, at)) => out.extend(lint::lint_sql_with(&sql, at, ctx)),
                None => out.push(error(
                    "unparsed",
                    line,
                    "op.execute() with an argument that is not a string literal: not linted".into(),
                )),
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_forms() {
        let r = parse_revision("\"\"\"doc\n\nRevision ID: zzz\n\"\"\"\nfrom alembic import op\nrevision = 'abc'\ndown_revision = None\n").unwrap();
        assert_eq!(r.revision, "abc");
        assert!(r.down_revision.is_empty());
        let r = parse_revision("revision: str = \"m1\"\ndown_revision: Union[str, Sequence[str], None] = (\n    'a',\n    \"b\",\n)\n").unwrap();
        assert_eq!(r.revision, "m1");
        assert_eq!(r.down_revision, vec!["a".to_string(), "b".to_string()]);
        let r = parse_revision(
            "revision = 'x'\ndown_revision = ['y']\ndef f():\n    revision = 'no'\n",
        )
        .unwrap();
        assert_eq!(r.revision, "x");
        assert_eq!(r.down_revision, vec!["y".to_string()]);
        assert!(parse_revision("revision = make()\n").is_err());
        assert!(parse_revision("revision = f'x'\n").is_err());
        assert!(parse_revision("down_revision = None\n").is_err());
        assert!(parse_revision("revision = 'x\n").is_err());
    }

    #[test]
    fn op_calls_are_linted_at_their_lines() {
        let src = "revision = 'a'\ndown_revision = None\n\ndef upgrade():\n    op.add_column('projects', sa.Column('status', sa.String(20), nullable=True))\n    op.execute(\"\"\"\n        UPDATE projects SET status = 'active' WHERE status IS NULL\n    \"\"\")\n    op.alter_column('projects', 'status', nullable=False)\n    op.create_index('idx', 'projects', ['status'])\n    op.drop_column('users', 'email')\n    op.execute('DROP TABLE legacy')\n    with op.batch_alter_table('t') as b:\n        b.drop_column('c')\n    op.alter_column('t', 'n', type_=sa.String(10))\n\ndef downgrade():\n    pass\n";
        let f: Vec<(String, Severity, Option<u32>)> = lint(src)
            .into_iter()
            .map(|f| (f.rule, f.severity, f.line))
            .collect();
        assert_eq!(
            f,
            vec![
                ("index-not-concurrent".into(), Severity::Warning, Some(10)),
                ("drop-column".into(), Severity::Error, Some(11)),
                ("drop-table".into(), Severity::Error, Some(12)),
                ("drop-column".into(), Severity::Error, Some(14)),
                ("type-change".into(), Severity::Error, Some(15)),
                ("empty-downgrade".into(), Severity::Warning, Some(17)),
            ]
        );
    }

    #[test]
    fn downgrade_forms() {
        let has = |src: &str, rule: &str| lint(src).iter().any(|f| f.rule == rule);
        assert!(has("def upgrade():\n    pass\n", "missing-downgrade"));
        assert!(has(
            "def downgrade():\n    \"\"\"nothing\"\"\"\n    pass\n",
            "empty-downgrade"
        ));
        assert!(has("def downgrade(): pass\n", "empty-downgrade"));
        assert!(!has(
            "def downgrade() -> None:\n    op.drop_table('x')\n",
            "empty-downgrade"
        ));
        assert!(!has(
            "def downgrade(): op.drop_table('x')\n",
            "empty-downgrade"
        ));
    }

    #[test]
    fn non_literal_execute_is_not_a_pass() {
        let f =
            lint("def upgrade():\n    op.execute(SQL)\ndef downgrade():\n    op.execute('x')\n");
        assert_eq!(f[0].rule, "unparsed");
        assert_eq!(f[0].severity, Severity::Error);
    }
}
