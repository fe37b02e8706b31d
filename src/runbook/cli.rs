//! `rolldeck runbook FILE …`: list a runbook, run one block, tick checks,
//! skip a checklist — headless, with the cockpit's rules.
//!
//! Exit codes: `--list` 0 (problems are printed, not fatal); `--run` the
//! block's own exit code — 0 only when it exited 0 *and* its result is in
//! the audit log and the progress file; 124 when it timed out; 1 when it
//! was refused (read-only, not runnable, unresolved variables, needs
//! `--yes`), did not exit normally, or a query failed; 130 when
//! interrupted (its process group is stopped first). `--tick`,
//! `--skip-checklist`: 0 or 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::sync::mpsc;

use super::progress::{BlockState, ProgressStore};
use super::run::{Refusal, RunPolicy, prepare, query_table, run_recorded};
use super::vars::VarSources;
use super::{BlockKind, Item, Runbook, checklist, discover, find};
use crate::config::Config;
use crate::exec::{AuditLog, Executor, Operator, OutputLine, Stream};
use crate::redact::Redactor;
use crate::runtime::StatePaths;

/// Exit code of a block that timed out (as `timeout(1)`).
pub const EXIT_TIMED_OUT: i32 = 124;
/// Exit code when interrupted by a signal.
pub const EXIT_INTERRUPTED: i32 = 130;

/// What `rolldeck runbook` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A file, or a runbook name found in `[runbooks] dirs`.
    pub file: String,
    /// `--json` (with `--list`).
    pub json: bool,
    /// `--run NAME`.
    pub run: Option<String>,
    /// `--yes`: confirms `confirm` blocks, protected environments and a
    /// checklist skip.
    pub yes: bool,
    /// `--var NAME=VALUE`, recorded in the progress (secret-looking names
    /// only for this run).
    pub vars: Vec<String>,
    /// `--tick KEY` (a check's text, or a unique part of it).
    pub tick: Vec<String>,
    /// `--untick KEY`.
    pub untick: Vec<String>,
    /// `--skip-checklist` (needs `--reason` and `--yes`).
    pub skip_checklist: bool,
    /// `--reason TEXT`.
    pub reason: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
}

/// Finds FILE: an existing path, else a runbook name in the config's
/// `[runbooks] dirs`.
///
/// # Errors
///
/// Neither; the message lists what was tried.
pub fn resolve_file(file: &str, cfg: Option<&Config>) -> Result<PathBuf, String> {
    let p = Path::new(file);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let Some(cfg) = cfg else {
        return Err(format!(
            "runbook {file} not found (no config to look it up in [runbooks] dirs)"
        ));
    };
    let entries = discover(&cfg.runbooks.dirs)?;
    match find(&entries, file) {
        Some(e) => Ok(e.path.clone()),
        None => {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            let hint = crate::config::suggest(file, names.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(format!(
                "runbook {file} not found as a file or in [runbooks] dirs{hint}; runbooks: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// The `--list --json` document: `{path, title, sections, blocks, checks,
/// problems}`; every fenced or indented code block appears in `blocks`, in
/// document order, runnable or not; `attributes` is the attribute object
/// as written.
pub fn list_json(rb: &Runbook) -> serde_json::Value {
    json!({
        "path": rb.path.as_ref().map(|p| p.display().to_string()),
        "title": rb.title,
        "sections": rb.sections.iter().map(|s| json!({
            "title": s.title, "level": s.level, "line": s.line, "parent": s.parent,
        })).collect::<Vec<_>>(),
        "blocks": rb.blocks.iter().map(|b| json!({
            "name": b.name,
            "language": b.language,
            "kind": b.kind,
            "runnable": b.runnable(),
            "not_runnable": b.not_runnable,
            "attributes": b.raw_attributes,
            "line": b.line,
            "section": b.section,
            "variables": b.variables,
        })).collect::<Vec<_>>(),
        "checks": rb.checks.iter().map(|c| json!({
            "text": c.text, "key": c.key, "line": c.line, "section": c.section,
            "checked_in_file": c.checked_in_file,
        })).collect::<Vec<_>>(),
        "problems": rb.problems.iter().map(|p| json!({
            "line": p.line, "severity": p.severity, "message": p.message, "block": p.block,
        })).collect::<Vec<_>>(),
    })
}

/// The `--list` text: sections indented by level, blocks and checks under
/// them, then the problems.
pub fn list_text(rb: &Runbook) -> String {
    let mut out = String::new();
    let mut indent = 0usize;
    let clean = crate::config::clean;
    if let Some(p) = &rb.path {
        out.push_str(&format!("{}\n", clean(&p.display().to_string())));
    }
    for item in &rb.items {
        match item {
            Item::Section { index } => {
                let s = &rb.sections[*index];
                indent = usize::from(s.level.saturating_sub(1)) * 2;
                out.push_str(&format!(
                    "{:indent$}{} {}  (line {})\n",
                    "",
                    "#".repeat(usize::from(s.level)),
                    clean(&s.title),
                    s.line
                ));
            }
            Item::Block { index } => {
                let b = &rb.blocks[*index];
                let lang = b
                    .language
                    .as_deref()
                    .unwrap_or(if b.fenced { "-" } else { "indented" });
                let mut flags = Vec::new();
                if b.attributes.confirm {
                    flags.push("confirm".to_string());
                }
                if let Some(t) = b.attributes.timeout {
                    flags.push(format!("timeout {}", humantime::format_duration(t)));
                }
                if b.attributes.exclude_from_run_all {
                    flags.push("excludeFromRunAll".into());
                }
                if !b.variables.is_empty() {
                    flags.push(format!("needs ${}", b.variables.join(" $")));
                }
                let state = match &b.not_runnable {
                    None => "runnable".to_string(),
                    Some(why) => format!("shown: {why}"),
                };
                out.push_str(&format!(
                    "{:w$}[{}] {}  (line {}) {}{}\n",
                    "",
                    clean(lang),
                    clean(&b.name),
                    b.line,
                    state,
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", flags.join(", "))
                    },
                    w = indent + 2
                ));
            }
            Item::Check { index } => {
                let c = &rb.checks[*index];
                out.push_str(&format!(
                    "{:w$}- [{}] {}  (line {})\n",
                    "",
                    if c.checked_in_file { "x" } else { " " },
                    clean(&c.text),
                    c.line,
                    w = indent + 2
                ));
            }
            Item::Text { .. } => {}
        }
    }
    if !rb.problems.is_empty() {
        out.push_str("problems:\n");
        for p in &rb.problems {
            out.push_str(&format!("  {}\n", clean(&p.to_string())));
        }
    }
    out
}

fn err(msg: impl AsRef<str>) -> i32 {
    eprintln!("rolldeck: {}", crate::config::clean(msg.as_ref()));
    crate::runtime::exit::ERROR
}

/// Runs `rolldeck runbook`; returns the exit code. `cfg` is needed for
/// everything but listing a file given by path.
pub async fn main(opts: Options, cfg: Option<&Config>) -> i32 {
    let path = match resolve_file(&opts.file, cfg) {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    let rb = match Runbook::load(&path) {
        Ok(r) => r,
        Err(e) => return err(e.to_string()),
    };
    let acting = opts.run.is_some()
        || !opts.tick.is_empty()
        || !opts.untick.is_empty()
        || opts.skip_checklist;
    if !acting {
        if opts.json {
            match serde_json::to_string_pretty(&list_json(&rb)) {
                Ok(s) => println!("{s}"),
                Err(e) => return err(e.to_string()),
            }
        } else {
            print!("{}", list_text(&rb));
        }
        return 0;
    }
    let Some(cfg) = cfg else {
        return err(
            "running, ticking or skipping needs a config (its state directory keeps the progress, its audit log the runs)",
        );
    };
    if opts.read_only {
        return err(Refusal::ReadOnly.to_string());
    }
    let paths = match StatePaths::resolve(cfg, opts.state_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    let store = match checklist::store_for(&paths, &path) {
        Ok(s) => s,
        Err(e) => return err(format!("cannot read the journal: {e}")),
    };
    let operator = Operator::current();
    if let Err(e) = store.load() {
        return err(e.to_string());
    }
    if !opts.tick.is_empty() || !opts.untick.is_empty() {
        return tick(&rb, &store, &opts, &operator);
    }
    if opts.skip_checklist {
        if !opts.yes {
            return err(
                "skipping a checklist needs confirmation: pass --yes (and --reason); it is audited",
            );
        }
        let Some(reason) = opts.reason.as_deref() else {
            return err("skipping a checklist needs --reason TEXT; it is audited");
        };
        let audit = match AuditLog::open(&paths.audit) {
            Ok(a) => a,
            Err(e) => return err(format!("audit log {}: {e}", paths.audit.display())),
        };
        let release = paths.store.latest().ok().flatten().map(|r| r.id);
        return match checklist::skip(&store, &audit, &operator, release.as_deref(), reason) {
            Ok(()) => {
                eprintln!(
                    "rolldeck: checklist {} skipped by {operator} (audited)",
                    path.display()
                );
                0
            }
            Err(e) => err(e),
        };
    }
    let Some(name) = opts.run.as_deref() else {
        return err("nothing to do");
    };
    run_one(cfg, &rb, name, &store, &paths, &opts, operator).await
}

fn tick(rb: &Runbook, store: &ProgressStore, opts: &Options, operator: &Operator) -> i32 {
    let mut changes = Vec::new();
    for (keys, on) in [(&opts.tick, true), (&opts.untick, false)] {
        for k in keys {
            let exact = rb.checks.iter().find(|c| c.key == *k);
            let found = match exact {
                Some(c) => c,
                None => {
                    let low = k.to_lowercase();
                    let m: Vec<_> = rb
                        .checks
                        .iter()
                        .filter(|c| c.key.to_lowercase().contains(&low))
                        .collect();
                    match m.as_slice() {
                        [one] => *one,
                        [] => return err(format!("no check matches {k:?}")),
                        many => {
                            return err(format!(
                                "{k:?} matches {} checks ({}); give more of the text",
                                many.len(),
                                many.iter()
                                    .map(|c| format!("line {}", c.line))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                    }
                }
            };
            changes.push((found.clone(), on));
        }
    }
    let op = operator.to_string();
    match store.update(|p| {
        for (c, on) in &changes {
            p.tick(c, *on, &op);
        }
    }) {
        Ok((p, ())) => {
            for (c, on) in &changes {
                eprintln!(
                    "rolldeck: {} {:?} (line {})",
                    if *on { "ticked" } else { "un-ticked" },
                    c.text,
                    c.line
                );
            }
            eprintln!("rolldeck: {}", checklist::status(rb, &p).summary());
            0
        }
        Err(e) => err(e.to_string()),
    }
}

async fn run_one(
    cfg: &Config,
    rb: &Runbook,
    name: &str,
    store: &ProgressStore,
    paths: &StatePaths,
    opts: &Options,
    operator: Operator,
) -> i32 {
    let block = match rb.block_or_err(name) {
        Ok(b) => b,
        Err(e) => return err(e),
    };
    // --var values: recorded (once given, a runbook keeps them), except
    // secret-looking names, which only this run sees.
    let mut session = BTreeMap::new();
    let mut record = Vec::new();
    for v in &opts.vars {
        let Some((k, val)) = v.split_once('=') else {
            return err(format!("--var {v:?}: write NAME=VALUE"));
        };
        if val.is_empty() {
            return err(format!(
                "--var {k}: empty value; a block never runs with an empty variable"
            ));
        }
        if crate::config::is_secret_name(k) {
            session.insert(k.to_string(), val.to_string());
        } else {
            record.push((k.to_string(), val.to_string()));
        }
    }
    let progress = if record.is_empty() {
        store.load()
    } else {
        store
            .update(|p| {
                for (k, v) in &record {
                    p.set_var(k, v);
                }
            })
            .map(|(p, ())| p)
    };
    let progress = match progress {
        Ok(p) => p,
        Err(e) => return err(e.to_string()),
    };
    let vars = VarSources::new(Some(cfg), &progress, &session);
    let policy = RunPolicy::from_config(cfg, opts.read_only, opts.yes);
    let mut secrets = cfg.secrets.clone();
    secrets.extend(session.values().cloned());
    let redactor = Redactor::new(secrets);
    let prepared = match prepare(rb, block, &vars, &policy, &redactor) {
        Ok(p) => p,
        Err(r @ Refusal::NeedsConfirmation { .. }) => {
            return err(format!("{r}\n  pass --yes to confirm"));
        }
        Err(r) => return err(r.to_string()),
    };
    let op = operator.to_string();
    if block.kind == BlockKind::Promql {
        let Some(pcfg) = cfg.sources.prometheus.as_ref() else {
            return err("a promql block needs [sources.prometheus] in the config");
        };
        let prom = match crate::sources::prometheus::Prometheus::new(pcfg) {
            Ok(p) => p,
            Err(e) => return err(e),
        };
        let r = query_table(&prom, &prepared).await;
        let (state, detail) = match &r {
            Ok(t) => (BlockState::Ok, format!("{} series", t.rows.len())),
            Err(e) => (BlockState::Failed { exit_code: None }, e.clone()),
        };
        if let Err(e) = store.update(|p| p.set_state(block, state, &detail, 0.0, &op)) {
            return err(e.to_string());
        }
        return match r {
            Ok(t) => {
                print!("{}", table_text(&t));
                0
            }
            Err(e) => err(e),
        };
    }
    let audit = match AuditLog::open(&paths.audit) {
        Ok(a) => a,
        Err(e) => return err(format!("audit log {}: {e}", paths.audit.display())),
    };
    let executor = Executor::new(audit, operator, redactor);
    let (tx, mut rx) = mpsc::channel::<OutputLine>(256);
    let printer = tokio::spawn(async move {
        use std::io::Write as _;
        while let Some(l) = rx.recv().await {
            match l.stream {
                Stream::Stderr => {
                    let _ = writeln!(std::io::stderr(), "{}", l.line);
                }
                _ => {
                    let _ = writeln!(std::io::stdout(), "{}", l.line);
                }
            }
        }
    });
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    let cancel = async move {
        stop_signal().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let result = run_recorded(store, &executor, block, &prepared, tx, cancel).await;
    let _ = printer.await;
    let outcome = match result {
        Ok(o) => o,
        Err((None, e)) => return err(format!("not run: {e}")),
        Err((Some(o), e)) => {
            err(format!(
                "block {} ran ({}) but its result is not recorded: {e}",
                block.name, o.detail
            ));
            return if o.ok {
                crate::runtime::exit::ERROR
            } else {
                code_of(&o)
            };
        }
    };
    eprintln!(
        "rolldeck: block {}: {} ({:.2} s)",
        block.name, outcome.detail, outcome.duration_s
    );
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return EXIT_INTERRUPTED;
    }
    code_of(&outcome)
}

/// Resolves on SIGINT, SIGTERM or SIGHUP (the block's process group is in
/// its own group: a Ctrl-C reaches only rolldeck, which stops it).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut i), Ok(mut t), Ok(mut h)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
                _ = h.recv() => {}
            }
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("rolldeck: cannot watch for signals ({e}); the block still has its timeout");
            std::future::pending::<()>().await;
        }
    }
}

/// The exit code for a block's outcome: never 0 unless it succeeded and
/// was audited.
fn code_of(o: &crate::exec::ActionOutcome) -> i32 {
    if o.ok {
        return 0;
    }
    if o.timed_out {
        return EXIT_TIMED_OUT;
    }
    match o.exit_code {
        Some(c) if c != 0 => c,
        _ => crate::runtime::exit::ERROR,
    }
}

/// A query table as aligned text columns.
pub fn table_text(t: &super::QueryTable) -> String {
    if t.rows.is_empty() {
        return format!("no series: {}\n", t.query);
    }
    let width = |i: usize| {
        t.rows
            .iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([t.columns[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..t.columns.len()).map(width).collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&t.columns);
    out.push('\n');
    for r in &t.rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    if t.truncated {
        out.push_str(&format!(
            "… more than {} series\n",
            super::run::MAX_QUERY_ROWS
        ));
    }
    out
}
