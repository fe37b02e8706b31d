//! Mapping config key paths and byte offsets to `line:col` positions.

use toml_edit::{Document, Item, Value};

/// One segment of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key in a table.
    Key(String),
    /// An index in an array or array of tables (0-based).
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// `plans.canary.steps[2].weight`
pub fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Finds positions in one config text.
pub(crate) struct Locator<'a> {
    text: &'a str,
    doc: Option<Document<String>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            doc: text.parse::<Document<String>>().ok(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }

    /// The position of the value at `path`, or of its nearest existing
    /// ancestor; `1:1` when nothing matches.
    pub(crate) fn find(&self, path: &[Seg]) -> Pos {
        match &self.doc {
            Some(doc) => self.find_in_table(doc.as_table(), path, None),
            None => Pos { line: 1, col: 1 },
        }
    }

    fn find_in_table(
        &self,
        table: &toml_edit::Table,
        rest: &[Seg],
        mut best: Option<std::ops::Range<usize>>,
    ) -> Pos {
        let Some((first, tail)) = rest.split_first() else {
            return self.pos(best);
        };
        let Seg::Key(k) = first else {
            return self.pos(best);
        };
        let Some((key, it)) = table.get_key_value(k) else {
            return self.pos(best);
        };
        best = it.span().or_else(|| key.span()).or(best);
        match it {
            Item::Table(t) => self.find_in_table(t, tail, best),
            Item::ArrayOfTables(a) => match tail.split_first() {
                Some((Seg::Index(i), tail2)) => match a.get(*i) {
                    Some(t) => self.find_in_table(t, tail2, t.span().or(best)),
                    None => self.pos(best),
                },
                _ => self.pos(best),
            },
            Item::Value(v) => self.find_in_value(v, tail, best),
            Item::None => self.pos(best),
        }
    }

    fn find_in_value(
        &self,
        v: &Value,
        rest: &[Seg],
        mut best: Option<std::ops::Range<usize>>,
    ) -> Pos {
        let Some((first, tail)) = rest.split_first() else {
            return self.pos(best);
        };
        let next = match (v, first) {
            (Value::InlineTable(t), Seg::Key(k)) => t.get(k),
            (Value::Array(a), Seg::Index(i)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(n) => {
                best = n.span().or(best);
                self.find_in_value(n, tail, best)
            }
            None => self.pos(best),
        }
    }

    fn pos(&self, span: Option<std::ops::Range<usize>>) -> Pos {
        match span {
            Some(s) => {
                let (line, col) = self.line_col(s.start);
                Pos { line, col }
            }
            None => Pos { line: 1, col: 1 },
        }
    }
}
