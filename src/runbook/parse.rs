//! Markdown → [`Runbook`] with `pulldown-cmark` (CommonMark, tables, task
//! lists, strikethrough).

use std::collections::BTreeSet;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::attrs::{self, Attributes};
use super::{Block, BlockKind, Check, Item, Problem, Runbook, Section, Severity, vars};

/// Fence languages run by a shell, and the program that runs them.
pub const SHELL_LANGUAGES: &[(&str, &str)] = &[
    ("sh", "sh"),
    ("shell", "sh"),
    ("bash", "bash"),
    ("zsh", "zsh"),
];

/// The program for a shell language (`sh`, `bash`, `zsh`), `None` when the
/// language is not run by a shell.
pub fn shell_program(language: &str) -> Option<&'static str> {
    SHELL_LANGUAGES
        .iter()
        .find(|(l, _)| *l == language)
        .map(|(_, p)| *p)
}

/// Byte offsets of line starts, for 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut v = vec![0];
        v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self(v)
    }
    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct OpenBlock {
    start: usize,
    fenced: bool,
    info: String,
    code: String,
}

struct OpenCheck {
    start: usize,
    text: String,
    /// Where the check's own text ends so far.
    end: usize,
    /// Still collecting its text (until a nested block starts).
    collecting: bool,
    /// The list-item depth it belongs to.
    depth: usize,
    /// Its index in [`Runbook::checks`] (taken at the marker, so nested
    /// checks keep document order).
    index: usize,
}

/// Parses Markdown. Never panics; every problem is in
/// [`Runbook::problems`].
pub fn parse(text: &str) -> Runbook {
    let lines = Lines::new(text);
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_TASKLISTS);
    opts.insert(Options::ENABLE_STRIKETHROUGH);

    let mut rb = Runbook {
        path: None,
        title: None,
        sections: Vec::new(),
        blocks: Vec::new(),
        checks: Vec::new(),
        items: Vec::new(),
        problems: Vec::new(),
    };
    // (byte range consumed, item) for every structural element.
    let mut spans: Vec<(usize, usize, Item)> = Vec::new();
    let mut heading: Option<(usize, u8, String)> = None;
    let mut block: Option<OpenBlock> = None;
    let mut checks: Vec<OpenCheck> = Vec::new();
    let mut item_depth = 0usize;
    // Start offset of each open list item, innermost last.
    let mut item_starts: Vec<usize> = Vec::new();

    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((range.start, level as u8, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((start, level, title)) = heading.take() {
                    let title = title.trim().to_string();
                    let parent = rb.sections.iter().rposition(|s| s.level < level);
                    if level == 1 && rb.title.is_none() && !title.is_empty() {
                        rb.title = Some(title.clone());
                    }
                    rb.sections.push(Section {
                        level,
                        title,
                        line: lines.line(start),
                        parent,
                    });
                    spans.push((
                        start,
                        range.end,
                        Item::Section {
                            index: rb.sections.len() - 1,
                        },
                    ));
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                for c in checks.iter_mut() {
                    c.collecting = false;
                }
                let (fenced, info) = match kind {
                    CodeBlockKind::Fenced(info) => (true, info.to_string()),
                    CodeBlockKind::Indented => (false, String::new()),
                };
                block = Some(OpenBlock {
                    start: range.start,
                    fenced,
                    info,
                    code: String::new(),
                });
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(b) = block.take() {
                    let index = rb.blocks.len();
                    let line = if b.fenced {
                        lines.line(b.start)
                    } else {
                        // An indented block's range may start at the
                        // indentation of its first line.
                        lines.line(
                            b.start
                                + text[b.start..range.end]
                                    .find(|c: char| !c.is_whitespace())
                                    .unwrap_or(0),
                        )
                    };
                    let section = rb.sections.len().checked_sub(1);
                    let (blk, problems) = make_block(b, line, section, index);
                    rb.blocks.push(blk);
                    rb.problems.extend(problems);
                    spans.push((range.start, range.end, Item::Block { index }));
                }
            }
            Event::Start(Tag::Item) => {
                item_depth += 1;
                item_starts.push(range.start);
            }
            Event::TaskListMarker(checked) => {
                let start = item_starts.last().copied().unwrap_or(range.start);
                rb.checks.push(Check {
                    key: String::new(),
                    text: String::new(),
                    line: lines.line(start),
                    section: rb.sections.len().checked_sub(1),
                    checked_in_file: checked,
                });
                checks.push(OpenCheck {
                    start,
                    text: String::new(),
                    end: range.end,
                    collecting: true,
                    depth: item_depth,
                    index: rb.checks.len() - 1,
                });
            }
            Event::Start(Tag::List(_)) => {
                // A nested list ends the text of the check it sits in.
                for c in checks.iter_mut() {
                    c.collecting = false;
                }
            }
            Event::End(TagEnd::Paragraph) => {
                for c in checks.iter_mut().filter(|c| c.depth == item_depth) {
                    c.collecting = false;
                }
            }
            Event::End(TagEnd::Item) => {
                if let Some(pos) = checks.iter().rposition(|c| c.depth == item_depth) {
                    let c = checks.remove(pos);
                    if let Some(check) = rb.checks.get_mut(c.index) {
                        check.text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    }
                    spans.push((c.start, c.end, Item::Check { index: c.index }));
                }
                item_depth = item_depth.saturating_sub(1);
                item_starts.pop();
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(b) = block.as_mut() {
                    b.code.push_str(&t);
                } else {
                    if let Some((_, _, title)) = heading.as_mut() {
                        title.push_str(&t);
                    }
                    if let Some(c) = checks.iter_mut().rev().find(|c| c.collecting) {
                        c.text.push_str(&t);
                        c.end = c.end.max(range.end);
                    }
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = heading.as_mut() {
                    title.push(' ');
                }
                if let Some(c) = checks.iter_mut().rev().find(|c| c.collecting) {
                    c.text.push(' ');
                    c.end = c.end.max(range.end);
                }
            }
            Event::End(TagEnd::Strikethrough | TagEnd::Emphasis | TagEnd::Strong)
            | Event::End(TagEnd::Link) => {
                if let Some(c) = checks.iter_mut().rev().find(|c| c.collecting) {
                    c.end = c.end.max(range.end);
                }
            }
            _ => {}
        }
    }

    name_blocks(&mut rb);
    key_checks(&mut rb);
    rb.items = items(text, &lines, spans);
    rb.problems.sort_by_key(|p| p.line);
    rb
}

fn make_block(
    b: OpenBlock,
    line: usize,
    section: Option<usize>,
    index: usize,
) -> (Block, Vec<Problem>) {
    let mut problems = Vec::new();
    let info = if b.fenced {
        attrs::parse_info(&b.info)
    } else {
        attrs::Info::default()
    };
    let language = info.language.clone();
    let kind = match language.as_deref() {
        _ if !b.fenced => BlockKind::Other,
        Some(l) if shell_program(l).is_some() => BlockKind::Shell,
        Some("promql") => BlockKind::Promql,
        _ => BlockKind::Other,
    };
    for e in &info.errors {
        problems.push(Problem {
            line,
            severity: Severity::Error,
            message: e.clone(),
            block: Some(index),
        });
    }
    for w in &info.warnings {
        problems.push(Problem {
            line,
            severity: Severity::Warning,
            message: w.clone(),
            block: Some(index),
        });
    }
    let not_runnable = if !b.fenced {
        Some("an indented code block is shown, not run (use a fenced ```sh block)".to_string())
    } else if !info.errors.is_empty() {
        Some(format!(
            "line {line}: {} — fix the attributes to run it",
            info.errors.join("; ")
        ))
    } else {
        match kind {
            BlockKind::Other => Some(match language.as_deref() {
                None => "a code block without a language is shown, not run".to_string(),
                Some(l) => format!(
                    "`{l}` blocks are shown, not run (runnable: sh, bash, shell, zsh, promql)"
                ),
            }),
            _ if info.attributes.interactive => Some(
                "marked interactive: it needs a terminal for input, which rolldeck does not give; run it yourself"
                    .to_string(),
            ),
            _ => None,
        }
    };
    let attributes = if info.errors.is_empty() {
        info.attributes
    } else {
        Attributes::default()
    };
    let variables = vars::references(&b.code, kind);
    (
        Block {
            name: String::new(),
            named: false,
            language,
            kind,
            fenced: b.fenced,
            code: b.code,
            attributes,
            raw_attributes: info.raw,
            not_runnable,
            line,
            section,
            variables,
        },
        problems,
    )
}

/// Names every block: its `name` attribute (a repeat gets `-2`, … and a
/// problem), else derived from its first command line, unique in the file.
fn name_blocks(rb: &mut Runbook) {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    // Attribute names first, so that a derived name never takes one.
    for i in 0..rb.blocks.len() {
        if let Some(n) = rb.blocks[i].attributes.name.clone() {
            let name = unique(&n, &taken);
            if name != n {
                rb.problems.push(Problem {
                    line: rb.blocks[i].line,
                    severity: Severity::Warning,
                    message: format!(
                        "block name `{n}` is used by an earlier block; this one is `{name}`"
                    ),
                    block: Some(i),
                });
            }
            taken.insert(name.clone());
            rb.blocks[i].name = name;
            rb.blocks[i].named = true;
        }
    }
    for i in 0..rb.blocks.len() {
        if rb.blocks[i].named {
            continue;
        }
        let base = derive_name(&rb.blocks[i]);
        let name = unique(&base, &taken);
        taken.insert(name.clone());
        rb.blocks[i].name = name;
    }
}

fn unique(base: &str, taken: &BTreeSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| base.to_string())
}

/// `kubectl get pods -n x` → `kubectl-get-pods-n`: the first
/// non-comment line's first four words, lower-case letters, digits and
/// dashes, at most 32 characters; `LANG-block` when nothing is left.
pub fn derive_name(b: &Block) -> String {
    let first = b
        .code
        .lines()
        .map(|l| l.trim().trim_start_matches("$ "))
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"))
        .unwrap_or("");
    let mut slug = String::new();
    for w in first.split_whitespace().take(4) {
        let part: String = w
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let part = part.trim_matches('-');
        if part.is_empty() {
            continue;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(part);
    }
    let mut slug: String = slug
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if slug.len() > 32 {
        slug.truncate(32);
        slug = slug.trim_end_matches('-').to_string();
    }
    if slug.is_empty() {
        format!("{}-block", b.language.as_deref().unwrap_or("code"))
    } else {
        slug
    }
}

fn key_checks(rb: &mut Runbook) {
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for c in &mut rb.checks {
        let n = seen.entry(c.text.clone()).or_insert(0);
        *n += 1;
        c.key = if *n == 1 {
            c.text.clone()
        } else {
            format!("{} #{n}", c.text)
        };
    }
}

/// Orders the structural elements and fills the gaps with the Markdown
/// between them.
fn items(text: &str, lines: &Lines, mut spans: Vec<(usize, usize, Item)>) -> Vec<Item> {
    spans.sort_by_key(|(s, e, _)| (*s, *e));
    let mut out = Vec::new();
    let mut pos = 0usize;
    let gap = |from: usize, to: usize, out: &mut Vec<Item>| {
        if to <= from {
            return;
        }
        let Some(raw) = text.get(from..to) else {
            return;
        };
        // A gap holding only list markers, quote markers or blank space
        // (what is left around a block inside a list item) is not shown.
        if raw.chars().all(|c| {
            c.is_whitespace()
                || matches!(c, '-' | '*' | '+' | '>' | '.' | ')')
                || c.is_ascii_digit()
        }) {
            return;
        }
        let lead = raw.len() - raw.trim_start_matches(['\n', '\r']).len();
        out.push(Item::Text {
            line: lines.line(from + lead),
            text: raw.trim_matches(['\n', '\r']).trim_end().to_string(),
        });
    };
    for (start, end, item) in spans {
        if start < pos {
            // Nested inside an element already placed (a block inside a
            // check's item): order by start, no gap.
            out.push(item);
            pos = pos.max(end);
            continue;
        }
        gap(pos, start, &mut out);
        out.push(item);
        pos = end;
    }
    gap(pos, text.len(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_blocks_checks_in_order() {
        let md = "# DB pool\n\nIntro.\n\n## Diagnose\n\n```sh {\"name\":\"pool\"}\necho hi\n```\n\n- [ ] told the team\n- [x] paged DBA\n\n### Deeper\n\n~~~promql\nsum(up)\n~~~\n";
        let rb = parse(md);
        assert_eq!(rb.title.as_deref(), Some("DB pool"));
        assert_eq!(rb.sections.len(), 3);
        assert_eq!(rb.sections[2].parent, Some(1));
        assert_eq!(rb.sections[1].parent, Some(0));
        assert_eq!(rb.blocks.len(), 2);
        assert_eq!(rb.blocks[0].name, "pool");
        assert_eq!(rb.blocks[0].line, 7);
        assert_eq!(rb.blocks[0].kind, BlockKind::Shell);
        assert_eq!(rb.blocks[1].kind, BlockKind::Promql);
        assert_eq!(rb.blocks[1].name, "sum-up");
        assert_eq!(rb.blocks[1].line, 16);
        assert_eq!(rb.checks.len(), 2);
        assert_eq!(rb.checks[0].text, "told the team");
        assert_eq!(rb.checks[0].line, 11);
        assert!(rb.checks[1].checked_in_file);
        assert_eq!(rb.section_path(2), ["DB pool", "Diagnose", "Deeper"]);
        let kinds: Vec<&str> = rb
            .items
            .iter()
            .map(|i| match i {
                Item::Section { .. } => "s",
                Item::Block { .. } => "b",
                Item::Check { .. } => "c",
                Item::Text { .. } => "t",
            })
            .collect();
        assert_eq!(kinds.join(""), "stsbccsb");
    }

    #[test]
    fn derived_names_are_unique() {
        let md = "```sh\nkubectl get pods\n```\n```sh\nkubectl get pods\n```\n```sh {\"name\":\"kubectl-get-pods-2\"}\nx\n```\n";
        let rb = parse(md);
        let names: Vec<&str> = rb.blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kubectl-get-pods",
                "kubectl-get-pods-3",
                "kubectl-get-pods-2"
            ]
        );
    }
}
