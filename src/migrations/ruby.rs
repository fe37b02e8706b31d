//! Rails (ActiveRecord) migrations, Ruby: the schema calls of `change`,
//! `up` and `down`, linted with the rules of [`super::lint`].
//!
//! A small Ruby tokenizer — comments (`#`, `=begin`/`=end`), strings in
//! every quoting Rails migrations use (`'…'`, `"…"` with `#{…}`
//! interpolation, `%q(…)`/`%Q[…]`/`%(…)`, `%w[…]`/`%i[…]`, heredocs
//! `<<~SQL`, `<<-SQL`, `<<SQL`, quoted or not), symbols (`:users`,
//! `:"odd name"`), keyword arguments (`null: false`, `:algorithm =>
//! :concurrently`), line continuations — then statements (a newline ends
//! one unless inside brackets or after `,`, an operator or `\`) and the
//! `def`/`do`/`class`/`if`… … `end` nesting. No code is run.
//!
//! Recognised in `change` and `up` (also `def self.up`), with the table's
//! `change_table :t do |t|` block form (`t.remove`, `t.rename`, `t.change`,
//! `t.index`):
//!
//! * `remove_column`, `remove_columns`, `t.remove` → `drop-column` (error);
//! * `drop_table` → `drop-table` (error);
//! * `rename_column`, `rename_table`, `t.rename` → `rename` (warning);
//! * `change_column`, `t.change` → `type-change` (error when the new type
//!   is bounded: `:integer`, `:boolean`, `:date`, or a `limit:` /
//!   `precision:` option; else warning);
//! * `change_column_null :t, :c, false` without the fourth (backfill
//!   default) argument, and `add_column … null: false` without `default:`
//!   → `set-not-null` (warning);
//! * `add_index` / `t.index` without `algorithm: :concurrently` on a table
//!   not created earlier in the method → `index-not-concurrent` (warning);
//! * `execute "SQL"` (also a heredoc) → the SQL is linted at the string's
//!   lines; SQL built with `#{…}` or from a variable → `unparsed` (error).
//!
//! And the way back (`missing-downgrade` / `empty-downgrade`, warning):
//! `up` without `down`; a `down` with no statement; a `down` that raises
//! `ActiveRecord::IrreversibleMigration`; in `change`, a call Rails cannot
//! reverse (`change_column`, `execute`, `remove_column` without a type,
//! `remove_columns` without `type:`, `drop_table` without its block,
//! `change_column_default` without `from:`/`to:`) outside `reversible` /
//! `up_only`: `rails db:rollback` raises `IrreversibleMigration` there.
//!
//! Text the tokenizer cannot read (an unterminated string or heredoc, an
//! `end` too many or too few) is an `unparsed` error: never a pass.

use super::lint::{self, Context};
use super::{Finding, Severity};

/// A Ruby token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier or keyword (`remove_column`, `do`, `end`).
    Ident(String),
    /// A constant (`ActiveRecord`).
    Const(String),
    /// `:name` or `:"name"`.
    Sym(String),
    /// A string's value, and whether it interpolates (`#{…}`).
    Str(String, bool),
    /// `name:` (a keyword argument).
    Label(String),
    Num(String),
    Op(String),
    /// End of a line (statements end here unless continued).
    Nl,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based line where it starts (a heredoc: its body's first line).
    line: u32,
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The closing delimiter of a `%` literal opened with `open`.
fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        c => c,
    }
}

/// Splits Ruby source into tokens. Errors: an unterminated string,
/// heredoc or `=begin` comment.
fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    let mut at_line_start = true;
    // Heredocs opened on this line: (token index, terminator, squiggly/dash).
    let mut heredocs: Vec<(usize, String, bool)> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if at_line_start {
            let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
            if rest.starts_with("=begin") {
                let start = line;
                loop {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(format!("unterminated =begin comment at line {start}"));
                    }
                    i += 1;
                    line += 1;
                    let next: String = chars[i..chars.len().min(i + 4)].iter().collect();
                    if next == "=end" {
                        while i < chars.len() && chars[i] != '\n' {
                            i += 1;
                        }
                        break;
                    }
                }
                continue;
            }
            if rest.starts_with("__END__") {
                break;
            }
        }
        at_line_start = false;
        if c == '\n' {
            out.push(Token { tok: Tok::Nl, line });
            line += 1;
            i += 1;
            at_line_start = true;
            // Heredoc bodies follow the line that opened them.
            for (idx, term, indented) in std::mem::take(&mut heredocs) {
                let start = line;
                let mut body = String::new();
                loop {
                    if i >= chars.len() {
                        return Err(format!(
                            "unterminated heredoc <<{term} (body from line {start})"
                        ));
                    }
                    let mut j = i;
                    while j < chars.len() && chars[j] != '\n' {
                        j += 1;
                    }
                    let text: String = chars[i..j].iter().collect();
                    i = (j + 1).min(chars.len());
                    line += 1;
                    let done = if indented {
                        text.trim() == term
                    } else {
                        text == term
                    };
                    if done {
                        break;
                    }
                    body.push_str(&text);
                    body.push('\n');
                }
                // A `<<~'ID'` heredoc does not interpolate.
                let quoted_single = matches!(&out[idx].tok, Tok::Str(s, _) if s == "'");
                let interp = !quoted_single && body.contains("#{");
                out[idx] = Token {
                    tok: Tok::Str(body, interp),
                    line: start,
                };
            }
            continue;
        }
        if c == ' ' || c == '\t' || c == '\r' {
            i += 1;
            continue;
        }
        if c == '\\' && chars.get(i + 1) == Some(&'\n') {
            i += 2;
            line += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start_line = line;
        // Heredoc opener: <<~ID, <<-ID, <<ID (upper case), quoted forms.
        if c == '<' && chars.get(i + 1) == Some(&'<') {
            let mut j = i + 2;
            let indented = matches!(chars.get(j), Some('~') | Some('-'));
            if indented {
                j += 1;
            }
            let quote = chars.get(j).copied().filter(|q| *q == '\'' || *q == '"');
            if quote.is_some() {
                j += 1;
            }
            let id_start = j;
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            let id: String = chars[id_start..j].iter().collect();
            let plain_ok = indented
                || quote.is_some()
                || id.chars().next().is_some_and(|c| c.is_ascii_uppercase());
            if !id.is_empty() && plain_ok {
                if let Some(q) = quote {
                    if chars.get(j) != Some(&q) {
                        return Err(format!("malformed heredoc opener at line {line}"));
                    }
                    j += 1;
                }
                // The body is filled in at the end of the line; a single
                // quote marks "no interpolation" until then.
                let mark = if quote == Some('\'') { "'" } else { "" };
                heredocs.push((out.len(), id, indented));
                out.push(Token {
                    tok: Tok::Str(mark.into(), false),
                    line,
                });
                i = j;
                continue;
            }
        }
        // Strings.
        if c == '"' || c == '\'' || c == '`' {
            let (value, interp, next, lines) = read_string(&chars, i + 1, c, c, c != '\'')
                .ok_or_else(|| format!("unterminated string at line {start_line}"))?;
            out.push(Token {
                tok: Tok::Str(value, interp),
                line: start_line,
            });
            line += lines;
            i = next;
            continue;
        }
        if c == '%' {
            let kind = chars.get(i + 1).copied();
            let (open_at, interp, words) = match kind {
                Some('q') | Some('w') | Some('i') | Some('s') => {
                    (i + 2, false, kind != Some('q') && kind != Some('s'))
                }
                Some('Q') | Some('W') | Some('I') => (i + 2, true, kind != Some('Q')),
                Some(d) if "([{<|!/".contains(d) => (i + 1, true, false),
                _ => (usize::MAX, false, false),
            };
            if let Some(&open) = chars.get(open_at)
                && "([{<|!/".contains(open)
            {
                let (value, has_interp, next, lines) =
                    read_string(&chars, open_at + 1, open, closing(open), interp)
                        .ok_or_else(|| format!("unterminated %-literal at line {start_line}"))?;
                out.push(Token {
                    tok: if words {
                        Tok::Op("%w".into())
                    } else {
                        Tok::Str(value, has_interp)
                    },
                    line: start_line,
                });
                line += lines;
                i = next;
                continue;
            }
        }
        // Symbols.
        if c == ':' {
            if chars.get(i + 1) == Some(&':') {
                out.push(Token {
                    tok: Tok::Op("::".into()),
                    line,
                });
                i += 2;
                continue;
            }
            if let Some(&q) = chars.get(i + 1)
                && (q == '"' || q == '\'')
            {
                let (value, _, next, lines) = read_string(&chars, i + 2, q, q, q == '"')
                    .ok_or_else(|| format!("unterminated symbol at line {start_line}"))?;
                out.push(Token {
                    tok: Tok::Sym(value),
                    line: start_line,
                });
                line += lines;
                i = next;
                continue;
            }
            if chars
                .get(i + 1)
                .is_some_and(|n| n.is_alphabetic() || *n == '_')
            {
                let mut j = i + 1;
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                if matches!(chars.get(j), Some('?') | Some('!') | Some('='))
                    && chars.get(j + 1) != Some(&'>')
                {
                    j += 1;
                }
                out.push(Token {
                    tok: Tok::Sym(chars[i + 1..j].iter().collect()),
                    line,
                });
                i = j;
                continue;
            }
        }
        if c.is_alphabetic() || c == '_' || c == '@' || c == '$' {
            let mut j = i + 1;
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            if matches!(chars.get(j), Some('?') | Some('!')) && chars.get(j + 1) != Some(&'=') {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            // `name:` (not `name::`) is a keyword argument.
            if chars.get(j) == Some(&':') && chars.get(j + 1) != Some(&':') {
                out.push(Token {
                    tok: Tok::Label(word),
                    line,
                });
                i = j + 1;
                continue;
            }
            let tok = if c.is_uppercase() {
                Tok::Const(word)
            } else {
                Tok::Ident(word)
            };
            out.push(Token { tok, line });
            i = j;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric()
                    || chars[j] == '_'
                    || (chars[j] == '.' && chars.get(j + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Num(chars[i..j].iter().collect()),
                line,
            });
            i = j;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = if [
            "=>", "==", "->", "&.", "||", "&&", "<<", "!=", "<=", ">=", "**",
        ]
        .contains(&two.as_str())
        {
            two
        } else {
            c.to_string()
        };
        i += op.chars().count();
        out.push(Token {
            tok: Tok::Op(op),
            line,
        });
    }
    if let Some((_, term, _)) = heredocs.first() {
        return Err(format!("unterminated heredoc <<{term}"));
    }
    Ok(out)
}

/// Reads a string body from `i` up to `close` (nesting `open` when it
/// differs); returns (value, interpolates, index after, newlines seen).
/// `None` when unterminated. Escapes: `\\`, `\n`, `\t` and escaped
/// delimiters; `#{…}` (when `interp`) is kept as written and marks the
/// string as interpolated.
fn read_string(
    chars: &[char],
    mut i: usize,
    open: char,
    close: char,
    interp: bool,
) -> Option<(String, bool, usize, u32)> {
    let mut value = String::new();
    let mut lines = 0;
    let mut depth = 0usize;
    let mut has_interp = false;
    loop {
        let c = *chars.get(i)?;
        if c == '\\' {
            let n = *chars.get(i + 1)?;
            match n {
                'n' if interp => value.push('\n'),
                't' if interp => value.push('\t'),
                '\n' => lines += 1,
                n if n == close || n == open || n == '\\' => value.push(n),
                n => {
                    value.push('\\');
                    value.push(n);
                }
            }
            i += 2;
            continue;
        }
        if interp && c == '#' && chars.get(i + 1) == Some(&'{') {
            has_interp = true;
            // Keep it; skip to the matching brace.
            let mut d = 0;
            while let Some(&ch) = chars.get(i) {
                value.push(ch);
                if ch == '\n' {
                    lines += 1;
                }
                i += 1;
                if ch == '{' {
                    d += 1;
                } else if ch == '}' {
                    d -= 1;
                    if d == 0 {
                        break;
                    }
                }
            }
            continue;
        }
        if open != close && c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                return Some((value, has_interp, i + 1, lines));
            }
            depth -= 1;
        }
        if c == '\n' {
            lines += 1;
        }
        value.push(c);
        i += 1;
    }
}

/// One statement: its tokens (no `Nl`).
type Stmt = Vec<Token>;

fn is_op(t: Option<&Token>, s: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Op(o), .. }) if o == s)
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token {
            tok: Tok::Ident(n), ..
        }) => Some(n),
        _ => None,
    }
}

/// Splits tokens into statements: a newline (or `;`) at bracket depth 0
/// ends one unless the statement so far ends with `,`, `\`, an operator or
/// `|` of an unclosed block parameter list, or the next line starts with
/// `.` / `&.` (a method chain).
fn statements(tokens: &[Token]) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut cur: Stmt = Vec::new();
    let mut depth: i32 = 0;
    let mut pipes = 0usize;
    for (k, t) in tokens.iter().enumerate() {
        match &t.tok {
            Tok::Nl => {
                let continued = depth > 0
                    || pipes % 2 == 1
                    || matches!(cur.last(), Some(Token { tok: Tok::Op(o), .. })
                        if [",", "=>", "=", "&&", "||", "+", "\\", ".", "&.", "::"].contains(&o.as_str()))
                    || tokens[k + 1..]
                        .iter()
                        .find(|n| n.tok != Tok::Nl)
                        .is_some_and(|n| is_op(Some(n), ".") || is_op(Some(n), "&."));
                if !continued && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    pipes = 0;
                }
            }
            Tok::Op(o) if o == ";" && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    pipes = 0;
                }
            }
            Tok::Op(o) => {
                match o.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    "|" if depth == 0 => pipes += 1,
                    _ => {}
                }
                cur.push(t.clone());
            }
            _ => cur.push(t.clone()),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// An argument of a call: positional tokens, or `key: value`.
#[derive(Debug, Clone)]
struct Arg {
    key: Option<String>,
    value: Vec<Token>,
}

/// A call as written: `recv.name args` or `name(args)`, with a `do` block.
#[derive(Debug, Clone)]
struct Call {
    recv: Option<String>,
    name: String,
    args: Vec<Arg>,
    line: u32,
    /// `do |x|` ends the statement: (block parameter).
    block: Option<Option<String>>,
}

impl Call {
    fn positional(&self) -> Vec<&Arg> {
        self.args.iter().filter(|a| a.key.is_none()).collect()
    }

    fn key(&self, k: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.key.as_deref() == Some(k))
    }

    /// The `n`th positional argument as a name (symbol, string or word).
    fn name_arg(&self, n: usize) -> Option<String> {
        self.positional().get(n).and_then(|a| name_of(&a.value))
    }
}

fn name_of(v: &[Token]) -> Option<String> {
    match v {
        [
            Token {
                tok: Tok::Sym(s) | Tok::Str(s, false) | Tok::Ident(s) | Tok::Num(s) | Tok::Const(s),
                ..
            },
        ] => Some(s.clone()),
        _ => None,
    }
}

/// Parses a statement as a call; `None` for anything else (assignments,
/// keywords, expressions).
fn call_of(s: &[Token]) -> Option<Call> {
    let line = s.first()?.line;
    let (recv, name, mut rest) = match s {
        [
            Token {
                tok: Tok::Ident(r), ..
            },
            Token {
                tok: Tok::Op(dot), ..
            },
            Token {
                tok: Tok::Ident(n), ..
            },
            rest @ ..,
        ] if dot == "." || dot == "&." => (Some(r.clone()), n.clone(), rest),
        [
            Token {
                tok: Tok::Ident(n), ..
            },
            rest @ ..,
        ] => (None, n.clone(), rest),
        _ => return None,
    };
    if is_op(rest.first(), "=") || is_op(rest.first(), ".") {
        return None;
    }
    // A trailing `do` / `do |x|` block.
    let mut block = None;
    if let Some(p) = rest.iter().rposition(|t| ident(Some(t)) == Some("do")) {
        let params = &rest[p + 1..];
        let param = match params {
            [] => None,
            [a, b, c] if is_op(Some(a), "|") && is_op(Some(c), "|") => {
                ident(Some(b)).map(String::from)
            }
            _ => None,
        };
        block = Some(param);
        rest = &rest[..p];
    }
    // Parenthesised arguments: `name(a, b)`.
    if is_op(rest.first(), "(") && is_op(rest.last(), ")") {
        rest = &rest[1..rest.len() - 1];
    }
    let mut args = Vec::new();
    let mut depth = 0;
    let mut cur: Vec<Token> = Vec::new();
    let mut push = |cur: &mut Vec<Token>| {
        if cur.is_empty() {
            return;
        }
        let arg = match cur.as_slice() {
            [
                Token {
                    tok: Tok::Label(k), ..
                },
                v @ ..,
            ] => Arg {
                key: Some(k.clone()),
                value: v.to_vec(),
            },
            [
                Token {
                    tok: Tok::Sym(k), ..
                },
                arrow,
                v @ ..,
            ] if is_op(Some(arrow), "=>") => Arg {
                key: Some(k.clone()),
                value: v.to_vec(),
            },
            v => Arg {
                key: None,
                value: v.to_vec(),
            },
        };
        args.push(arg);
        cur.clear();
    };
    for t in rest {
        match &t.tok {
            // A modifier (`… if cond`) ends the arguments.
            Tok::Ident(k)
                if depth == 0
                    && ["if", "unless", "while", "until", "rescue"].contains(&k.as_str()) =>
            {
                break;
            }
            Tok::Op(o) if o == "," && depth == 0 => push(&mut cur),
            Tok::Op(o) => {
                match o.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    _ => {}
                }
                cur.push(t.clone());
            }
            _ => cur.push(t.clone()),
        }
    }
    push(&mut cur);
    Some(Call {
        recv,
        name,
        args,
        line,
        block,
    })
}

/// A block on the nesting stack.
#[derive(Debug, Clone)]
enum Block {
    /// `def NAME` (`self.up` → `up`).
    Def(String),
    /// `change_table :t do |x|`: the table, the block parameter.
    ChangeTable(String, Option<String>),
    /// `create_table … do`: calls inside build the new table.
    CreateTable,
    /// `reversible do`, `up_only do`: explicit directions.
    Explicit,
    /// Any other `… end`.
    Other,
}

/// What a method's body holds.
#[derive(Debug, Default)]
struct Method {
    line: u32,
    statements: usize,
    calls: Vec<(Call, Option<String>, bool)>,
    raises_irreversible: Option<u32>,
}

/// Lints a Rails migration (see the module docs). Findings in line order.
pub fn lint(src: &str) -> Vec<Finding> {
    let unparsed = |line: Option<u32>, message: String| {
        vec![Finding {
            severity: Severity::Error,
            rule: "unparsed".into(),
            line,
            message: format!("not linted: {message}"),
        }]
    };
    let tokens = match tokenize(src) {
        Ok(t) => t,
        Err(e) => return unparsed(None, e),
    };
    let mut stack: Vec<Block> = Vec::new();
    let mut methods: Vec<(String, Method)> = Vec::new();
    for s in statements(&tokens) {
        let first = ident(s.first());
        let line = s[0].line;
        // The innermost method, its table block, and whether explicit.
        let def = stack.iter().rev().find_map(|b| match b {
            Block::Def(n) => Some(n.clone()),
            _ => None,
        });
        if let Some(d) = &def
            && let Some((_, m)) = methods.iter_mut().rev().find(|(n, _)| n == d)
            && first != Some("end")
        {
            m.statements += 1;
            if s.iter()
                .any(|t| t.tok == Tok::Const("IrreversibleMigration".into()))
                && first == Some("raise")
            {
                m.raises_irreversible.get_or_insert(line);
            }
        }
        match first {
            Some("end") => {
                if stack.pop().is_none() {
                    return unparsed(Some(line), "`end` without a block to close".into());
                }
                continue;
            }
            Some("def") => {
                let name = match (ident(s.get(1)), is_op(s.get(2), "."), ident(s.get(3))) {
                    (Some("self"), true, Some(n)) => n.to_string(),
                    (Some(n), _, _) => n.to_string(),
                    _ => String::new(),
                };
                // `def x = expr` / `def x(a) = expr` (endless) opens
                // nothing; `def x(a = 1)` does.
                let mut d = 0;
                let endless = s.iter().any(|t| match &t.tok {
                    Tok::Op(o) if o == "(" => {
                        d += 1;
                        false
                    }
                    Tok::Op(o) if o == ")" => {
                        d -= 1;
                        false
                    }
                    Tok::Op(o) => o == "=" && d == 0,
                    _ => false,
                });
                if !endless {
                    stack.push(Block::Def(name.clone()));
                }
                methods.push((
                    name,
                    Method {
                        line,
                        ..Method::default()
                    },
                ));
                continue;
            }
            Some(
                "class" | "module" | "if" | "unless" | "while" | "until" | "case" | "begin" | "for",
            ) => {
                stack.push(Block::Other);
                continue;
            }
            _ => {}
        }
        if matches!(
            s.first(),
            Some(Token {
                tok: Tok::Const(_),
                ..
            })
        ) {
            // `Foo.bar do … end` etc.
            if s.iter().any(|t| ident(Some(t)) == Some("do")) {
                stack.push(Block::Other);
            }
            continue;
        }
        let Some(call) = call_of(&s) else {
            if s.iter().any(|t| ident(Some(t)) == Some("do")) {
                stack.push(Block::Other);
            }
            continue;
        };
        let table_block = stack.iter().rev().find_map(|b| match b {
            Block::ChangeTable(t, p) => Some((t.clone(), p.clone())),
            _ => None,
        });
        let in_create = stack.iter().any(|b| matches!(b, Block::CreateTable));
        let explicit = stack.iter().any(|b| matches!(b, Block::Explicit));
        if let Some(d) = &def
            && !in_create
            && let Some((_, m)) = methods.iter_mut().rev().find(|(n, _)| n == d)
        {
            // A call on the change_table block's parameter names its table.
            let table = match (&call.recv, &table_block) {
                (Some(r), Some((t, Some(p)))) if r == p => Some(t.clone()),
                _ => None,
            };
            if call.recv.is_none() || table.is_some() {
                m.calls.push((call.clone(), table, explicit));
            }
        }
        if let Some(param) = call.block.clone() {
            stack.push(match call.name.as_str() {
                "change_table" => Block::ChangeTable(call.name_arg(0).unwrap_or_default(), param),
                "create_table" | "create_join_table" => Block::CreateTable,
                "reversible" | "up_only" => Block::Explicit,
                _ => Block::Other,
            });
        }
    }
    if !stack.is_empty() {
        return unparsed(None, "a block is not closed (`end` missing)".into());
    }
    let mut out = Vec::new();
    let has = |n: &str| methods.iter().any(|(m, _)| m == n);
    for (name, m) in &methods {
        match name.as_str() {
            "change" | "up" => lint_method(name == "change" && !has("down"), m, &mut out),
            "down" => {
                if m.statements == 0 {
                    out.push(Finding {
                        severity: Severity::Warning,
                        rule: "empty-downgrade".into(),
                        line: Some(m.line),
                        message: "`down` does nothing: this migration has no way back".into(),
                    });
                } else if let Some(l) = m.raises_irreversible {
                    out.push(Finding {
                        severity: Severity::Warning,
                        rule: "missing-downgrade".into(),
                        line: Some(l),
                        message:
                            "`down` raises IrreversibleMigration: this migration has no way back"
                                .into(),
                    });
                }
            }
            _ => {}
        }
    }
    if has("up") && !has("down") {
        out.push(Finding {
            severity: Severity::Warning,
            rule: "missing-downgrade".into(),
            line: None,
            message: "`up` without `down`: this migration has no way back".into(),
        });
    }
    out.sort_by_key(|f| f.line.unwrap_or(0));
    out
}

fn finding(severity: Severity, rule: &str, line: u32, message: String) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        line: Some(line),
        message,
    }
}

/// Whether `v` is the literal `false`.
fn is_false(v: &[Token]) -> bool {
    matches!(v, [Token { tok: Tok::Ident(f), .. }] if f == "false")
}

/// The SQL-ish type a Rails type becomes, with its size options, for
/// [`lint::type_change`]'s bounded test.
fn sql_type(rails: &str, call: &Call) -> String {
    let base = match rails {
        "string" => "varchar",
        "integer" => "integer",
        "bigint" => "bigint",
        "boolean" => "boolean",
        "date" => "date",
        "datetime" | "timestamp" => "timestamp",
        "decimal" | "numeric" => "numeric",
        "float" => "double precision",
        "text" => "text",
        "json" | "jsonb" => rails,
        other => other,
    };
    let sizes: Vec<String> = ["limit", "precision", "scale"]
        .iter()
        .filter_map(|k| call.key(k).map(|a| format!("{k} {}", text(&a.value))))
        .collect();
    if sizes.is_empty() {
        base.to_string()
    } else {
        format!("{base}({})", sizes.join(", "))
    }
}

fn text(v: &[Token]) -> String {
    v.iter()
        .map(|t| match &t.tok {
            Tok::Ident(s) | Tok::Const(s) | Tok::Num(s) | Tok::Op(s) => s.clone(),
            Tok::Sym(s) => format!(":{s}"),
            Tok::Str(s, _) => format!("{s:?}"),
            Tok::Label(s) => format!("{s}:"),
            Tok::Nl => String::new(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn lint_method(in_change: bool, m: &Method, out: &mut Vec<Finding>) {
    let mut ctx = Context::default();
    for (call, table_of_block, explicit) in &m.calls {
        let line = call.line;
        // In change_table blocks the table comes from the block and the
        // column is the first argument.
        let (name, table, col) = match table_of_block {
            Some(t) => (
                match call.name.as_str() {
                    "remove" => "remove_column",
                    "rename" => "rename_column",
                    "change" => "change_column",
                    "index" => "add_index",
                    other => other,
                },
                Some(t.clone()),
                0,
            ),
            None => (call.name.as_str(), call.name_arg(0), 1),
        };
        let table = table.unwrap_or_else(|| "?".into());
        let column = |k: usize| call.name_arg(k).unwrap_or_else(|| "?".into());
        let mut irreversible = None;
        match name {
            "create_table" | "create_join_table" => {
                ctx.created.insert(lint::table_key(&table));
            }
            "remove_column" | "remove_columns" => {
                let cols: Vec<String> = call
                    .positional()
                    .iter()
                    .skip(col)
                    .filter_map(|a| name_of(&a.value))
                    .collect();
                let typed = if name == "remove_column" {
                    call.positional().len() > col + 1 || call.key("type").is_some()
                } else {
                    call.key("type").is_some()
                };
                let cols = if name == "remove_column" {
                    cols.first().cloned().unwrap_or_else(|| "?".into())
                } else {
                    cols.join(", ")
                };
                out.push(finding(
                    Severity::Error,
                    "drop-column",
                    line,
                    format!("{name} {table}.{cols}: the column's data is gone"),
                ));
                if !typed {
                    irreversible = Some(format!("{name} without the column type"));
                }
            }
            "drop_table" | "drop_join_table" => {
                out.push(finding(
                    Severity::Error,
                    "drop-table",
                    line,
                    format!("{name} {table}: the table and its data are gone"),
                ));
                if call.block.is_none() && name == "drop_table" {
                    irreversible = Some("drop_table without its column block".into());
                }
            }
            "rename_column" => out.push(finding(
                Severity::Warning,
                "rename",
                line,
                format!(
                    "rename_column {table}.{} to {}: the running baseline still uses the old name",
                    column(col),
                    column(col + 1)
                ),
            )),
            "rename_table" => out.push(finding(
                Severity::Warning,
                "rename",
                line,
                format!(
                    "rename_table {table} to {}: the running baseline still uses the old name",
                    column(1)
                ),
            )),
            "change_column" => {
                let to = call.name_arg(col + 1).unwrap_or_else(|| "?".into());
                out.push(lint::type_change(
                    &format!("{table}.{}", column(col)),
                    &sql_type(&to, call),
                    line,
                ));
                irreversible = Some("change_column".into());
            }
            "change_column_null" => {
                let pos = call.positional();
                let sets_not_null = pos.get(2).is_some_and(|a| is_false(&a.value));
                if sets_not_null && pos.len() < 4 {
                    out.push(finding(
                        Severity::Warning,
                        "set-not-null",
                        line,
                        format!(
                            "change_column_null {table}.{} false without a default to backfill: fails if a row holds NULL, and scans the table under an exclusive lock",
                            column(1)
                        ),
                    ));
                }
            }
            "add_column" => {
                let not_null = call.key("null").is_some_and(|a| is_false(&a.value));
                if not_null
                    && call.key("default").is_none()
                    && !ctx.created.contains(&lint::table_key(&table))
                {
                    out.push(finding(
                        Severity::Warning,
                        "set-not-null",
                        line,
                        format!(
                            "add_column {table}.{} null: false without default fails on a table with rows",
                            column(1)
                        ),
                    ));
                }
            }
            "add_index" => {
                let concurrent = call.key("algorithm").is_some_and(|a| {
                    matches!(a.value.as_slice(), [Token { tok: Tok::Sym(s) | Tok::Str(s, false), .. }] if s == "concurrently")
                });
                if !concurrent && !ctx.created.contains(&lint::table_key(&table)) {
                    out.push(finding(
                        Severity::Warning,
                        "index-not-concurrent",
                        line,
                        format!(
                            "add_index on {table} without algorithm: :concurrently blocks writes to the table while it builds"
                        ),
                    ));
                }
            }
            "change_column_default" if call.key("from").is_none() || call.key("to").is_none() => {
                irreversible = Some("change_column_default without from:/to:".into());
            }
            "execute" => {
                match call.positional().first().map(|a| a.value.as_slice()) {
                    Some(
                        [
                            Token {
                                tok: Tok::Str(sql, false),
                                line: at,
                            },
                        ],
                    ) => {
                        out.extend(lint::lint_sql_with(sql, *at, &mut ctx));
                    }
                    _ => out.push(finding(
                        Severity::Error,
                        "unparsed",
                        line,
                        "not linted: execute with SQL built at run time (not one literal string)"
                            .into(),
                    )),
                }
                irreversible = Some("execute".into());
            }
            _ => {}
        }
        if in_change
            && !explicit
            && let Some(what) = irreversible
        {
            out.push(finding(
                Severity::Warning,
                "missing-downgrade",
                line,
                format!(
                    "{what} in `change` cannot be reversed: `rails db:rollback` raises IrreversibleMigration (write up/down, or use reversible)"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(src: &str) -> Vec<(String, Severity, Option<u32>)> {
        lint(src)
            .into_iter()
            .map(|f| (f.rule, f.severity, f.line))
            .collect()
    }

    fn w(rule: &str, line: u32) -> (String, Severity, Option<u32>) {
        (rule.into(), Severity::Warning, Some(line))
    }

    fn e(rule: &str, line: u32) -> (String, Severity, Option<u32>) {
        (rule.into(), Severity::Error, Some(line))
    }

    #[test]
    fn destructive_calls_in_change_are_errors_at_their_line() {
        let src = r#"# frozen_string_literal: true

class RemoveLegacy < ActiveRecord::Migration[7.1]
  def change
    remove_column :users, :email, :string
    remove_column(:users, :nickname)
    drop_table :orders do |t|
      t.string :sku
    end
    drop_table :carts
  end
end
"#;
        assert_eq!(
            rules(src),
            vec![
                e("drop-column", 5),
                e("drop-column", 6),
                w("missing-downgrade", 6),
                e("drop-table", 7),
                e("drop-table", 10),
                w("missing-downgrade", 10),
            ]
        );
    }

    #[test]
    fn renames_type_changes_nulls_and_indexes() {
        let src = "class X < ActiveRecord::Migration[7.1]
  def up
    rename_column :users, :name, :full_name
    rename_table :carts, :baskets
    change_column :users, :age, :integer
    change_column :users, :bio, :text
    change_column :users, :code, :string, limit: 8
    change_column_null :users, :status, false
    change_column_null :users, :plan, false, 'free'
    change_column_null :users, :plan, true
    add_index :users, :email
    add_index :users, :email, algorithm: :concurrently
    add_index :users, :email, :algorithm => :concurrently
    add_column :users, :tier, :string, null: false
    add_column :users, :tier2, :string, null: false, default: 'x'
  end

  def down
    remove_column :users, :tier
  end
end
";
        assert_eq!(
            rules(src),
            vec![
                w("rename", 3),
                w("rename", 4),
                e("type-change", 5),
                w("type-change", 6),
                e("type-change", 7),
                w("set-not-null", 8),
                w("index-not-concurrent", 11),
                w("set-not-null", 14),
            ]
        );
    }

    #[test]
    fn change_table_blocks_and_new_tables() {
        let src = "class Y < ActiveRecord::Migration[7.0]
  def change
    create_table :items do |t|
      t.string :name, null: false
      t.index :name
    end
    add_index :items, :name
    change_table :users do |u|
      u.remove :legacy, type: :string
      u.rename :a, :b
      u.change :c, :boolean
      u.index :d
    end
  end
end";
        assert_eq!(
            rules(src),
            vec![
                e("drop-column", 9),
                w("rename", 10),
                e("type-change", 11),
                w("missing-downgrade", 11),
                w("index-not-concurrent", 12),
            ]
        );
    }

    #[test]
    fn the_way_back() {
        // `up` alone, an empty `down`, a `down` that raises.
        let up_only = "class A < ActiveRecord::Migration[7.1]\n  def up\n    add_column :u, :x, :string\n  end\nend\n";
        assert_eq!(
            rules(up_only),
            vec![("missing-downgrade".into(), Severity::Warning, None)]
        );
        let empty = "class A < ActiveRecord::Migration[7.1]\n  def self.up\n    add_column :u, :x, :string\n  end\n\n  def self.down\n    # nothing\n  end\nend\n";
        assert_eq!(rules(empty), vec![w("empty-downgrade", 6)]);
        let raises = "class A < ActiveRecord::Migration[7.1]\n  def up\n    add_column :u, :x, :string\n  end\n  def down\n    raise ActiveRecord::IrreversibleMigration\n  end\nend\n";
        assert_eq!(rules(raises), vec![w("missing-downgrade", 6)]);
        // Irreversible calls inside `reversible` are explicit: fine.
        let rev = "class A < ActiveRecord::Migration[7.1]\n  def change\n    reversible do |dir|\n      dir.up { change_column_default :u, :x, 1 }\n      change_column_default :u, :x, 1\n    end\n    change_column_default :u, :y, from: nil, to: 1\n  end\nend\n";
        assert_eq!(rules(rev), vec![]);
    }

    #[test]
    fn execute_sql_is_linted_at_its_lines() {
        let src = "class B < ActiveRecord::Migration[7.1]
  def up
    execute \"ALTER TABLE users DROP COLUMN email\"
    execute <<~SQL
      UPDATE users SET plan = 'free' WHERE plan IS NULL;
      DROP TABLE carts;
    SQL
    execute %q(TRUNCATE audit)
    execute \"DELETE FROM #{table}\"
    execute sql
  end

  def down; end
end
";
        assert_eq!(
            rules(src),
            vec![
                e("drop-column", 3),
                e("drop-table", 6),
                e("truncate", 8),
                e("unparsed", 9),
                e("unparsed", 10),
                w("empty-downgrade", 13),
            ]
        );
    }

    #[test]
    fn strings_and_comments_hide_nothing_and_fake_nothing() {
        // Calls inside strings, comments and =begin blocks are not calls.
        let src = "class C < ActiveRecord::Migration[7.1]
=begin
  remove_column :users, :a
=end
  def change
    # drop_table :users
    add_column :users, :note, :string, comment: 'remove_column :users, :b'
    add_column :users, :x, :string, comment: \"it's #{1} drop_table\"
  end
end
";
        assert_eq!(rules(src), vec![]);
    }

    #[test]
    fn what_cannot_be_read_is_never_a_pass() {
        for src in [
            "class D < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :a, :b\n",
            "class D\n  def up\n    execute \"DROP TABLE x\n  end\nend\n",
            "class D\n  def up\n    execute <<~SQL\n      DROP TABLE x;\n  end\nend\n",
            "end\n",
        ] {
            let f = lint(src);
            assert_eq!(f.len(), 1, "{src}: {f:?}");
            assert_eq!(
                (f[0].rule.as_str(), f[0].severity),
                ("unparsed", Severity::Error),
                "{src}"
            );
        }
    }

    #[test]
    fn modifiers_and_one_line_blocks_keep_the_nesting() {
        let src = "class E < ActiveRecord::Migration[7.1]
  def up
    remove_column :users, :a, :string if column_exists?(:users, :a)
    add_column :users, :t, :string, null: false unless column_exists?(:users, :t)
    [1, 2].each { |i| add_column :t, :\"c#{i}\", :string }
    unless table_exists?(:x)
      create_table :x
    end
  end

  def down
    add_column :users, :a, :string
  end
end
";
        assert_eq!(rules(src), vec![e("drop-column", 3), w("set-not-null", 4)]);
    }
}
