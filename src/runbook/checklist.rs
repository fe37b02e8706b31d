//! A runbook as a release gate: the plan step
//! `{ kind = "checklist", checklist = "runbooks/pre-deploy.md" }`.
//!
//! The step passes when every check of the file is ticked and every
//! runnable block (not marked `excludeFromRunAll`) has passed — as
//! recorded in the checklist's progress *for this release*
//! ([`ProgressStore::for_release`]; [`store_for`] picks it), so ticks from
//! an earlier release or from everyday use never count. A `[x]` written in
//! the file does not count either.
//!
//! To the engine it is an action step (action name `checklist:PATH`, see
//! [`step_action`], like a migration step): it "runs" until the checklist
//! is done ([`wait`] polls the progress file every second) and then
//! passes. It is never failed by a failing block (run it again) or an
//! unreadable file (fix it): it waits, and says why in the Logs pane and
//! headless output. Abort and rollback stop it, like any running action.
//!
//! Skipping is never silent: [`skip`] needs an operator and a reason,
//! writes both into the progress file and an audit record, and the step
//! then passes with `skipped by OPERATOR: REASON` as its detail. The
//! cockpit asks first; headless, `rolldeck runbook FILE --skip-checklist
//! --reason TEXT --yes`.
//!
//! Headless (`rolldeck run --headless`): the step waits like an approval,
//! but `--yes` does **not** pass it — `--yes` approves, it never ticks a
//! check nor claims a block ran. Someone ticks the checks and runs the
//! blocks (in a cockpit on the same state directory, or with `rolldeck
//! runbook FILE --tick KEY` / `--run NAME`); with `--exit-on-pause` the run
//! exits 4 while the checklist waits.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::progress::{BlockState, Progress, ProgressStore, SkipRecord};
use super::{Block, Runbook, Severity};
use crate::exec::{AuditLog, AuditRecord, Operator, OutputLine, Stream};

/// Prefix of a checklist step's action name.
pub const STEP_PREFIX: &str = "checklist:";

/// How often [`wait`] reads the progress file.
pub const POLL: Duration = Duration::from_secs(1);

/// The file as the plan stores it: canonical when it exists, else
/// absolute.
pub fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// The action name of a checklist step: `checklist:/abs/path.md`.
pub fn step_action(path: &Path) -> String {
    format!("{STEP_PREFIX}{}", canonical(path).display())
}

/// The file of a [`step_action`] name.
pub fn parse_step_action(action: &str) -> Option<&str> {
    action.strip_prefix(STEP_PREFIX)
}

/// A step's default name: `checklist pre-deploy.md`.
pub fn step_name(file: &str) -> String {
    let name = Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    format!("checklist {name}")
}

/// Checks a checklist file at config load: it can be read, its blocks'
/// attributes are sound (an error would leave a block that can never pass
/// or a check that was meant to be a block), and it has at least one check
/// or runnable block.
///
/// # Errors
///
/// One sentence naming the file (and the line of the first problem).
pub fn validate_file(path: &Path) -> Result<(), String> {
    let rb = Runbook::load(path).map_err(|e| e.to_string())?;
    if let Some(p) = rb.problems.iter().find(|p| p.severity == Severity::Error) {
        return Err(format!("checklist {}: {p}", path.display()));
    }
    if rb.checks.is_empty() && !rb.blocks.iter().any(counts) {
        return Err(format!(
            "checklist {} has no `- [ ]` checks and no runnable blocks: nothing to wait for",
            path.display()
        ));
    }
    Ok(())
}

/// Whether a block must pass for the checklist to pass.
pub fn counts(b: &Block) -> bool {
    b.runnable() && !b.attributes.exclude_from_run_all
}

/// Where a checklist stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Checks in the file.
    pub checks: usize,
    /// Of which ticked.
    pub ticked: usize,
    /// Blocks that must pass ([`counts`]).
    pub blocks: usize,
    /// Of which passed.
    pub passed: usize,
    /// What is left: `check "Backups verified" (line 12)`, `block
    /// db-migrate-dry-run (line 20): failed (exit 1)`.
    pub left: Vec<String>,
    /// Skipped on purpose.
    pub skipped: Option<SkipRecord>,
}

impl Status {
    /// Every check ticked and every block passed, or skipped on purpose.
    pub fn done(&self) -> bool {
        self.skipped.is_some() || self.left.is_empty()
    }

    /// One line: `3/5 checks ticked, 1/2 blocks passed; left: …`.
    pub fn summary(&self) -> String {
        if let Some(s) = &self.skipped {
            return format!("skipped by {}: {}", s.operator, s.reason);
        }
        let mut out = format!(
            "{}/{} checks ticked, {}/{} blocks passed",
            self.ticked, self.checks, self.passed, self.blocks
        );
        if !self.left.is_empty() {
            out.push_str("; left: ");
            let shown: Vec<&str> = self.left.iter().take(5).map(String::as_str).collect();
            out.push_str(&shown.join(", "));
            if self.left.len() > 5 {
                out.push_str(&format!(" and {} more", self.left.len() - 5));
            }
        }
        out
    }
}

/// Where the checklist `rb` stands in `progress`.
pub fn status(rb: &Runbook, progress: &Progress) -> Status {
    let mut left = Vec::new();
    let mut ticked = 0;
    for c in &rb.checks {
        if progress.ticked(c) {
            ticked += 1;
        } else {
            left.push(format!("check {:?} (line {})", c.text, c.line));
        }
    }
    let mut blocks = 0;
    let mut passed = 0;
    for b in rb.blocks.iter().filter(|b| counts(b)) {
        blocks += 1;
        match progress.state(b) {
            BlockState::Ok => passed += 1,
            s => left.push(format!("block {} (line {}): {}", b.name, b.line, s.label())),
        }
    }
    Status {
        checks: rb.checks.len(),
        ticked,
        blocks,
        passed,
        left,
        skipped: progress.skipped.clone(),
    }
}

/// The progress store an operator's ticks and runs of `runbook` go to:
/// the checklist progress of the current release when that release is
/// unfinished and has a checklist step on this file, else the runbook's
/// everyday progress. The cockpit and `rolldeck runbook` both use this, so
/// a tick always lands where the waiting step reads.
///
/// # Errors
///
/// The journal cannot be read (never guessed past: a tick in the wrong
/// file would leave the release waiting).
pub fn store_for(
    paths: &crate::runtime::StatePaths,
    runbook: &Path,
) -> Result<ProgressStore, crate::store::JournalError> {
    let action = step_action(runbook);
    if let Some(r) = paths.store.latest()?
        && !r.is_finished()
        && r.plan.steps.iter().any(|s| {
            matches!(&s.action, crate::release::StepAction::Action { action: a } if *a == action)
        })
    {
        return Ok(ProgressStore::for_release(&paths.dir, runbook, &r.id));
    }
    Ok(ProgressStore::in_state(&paths.dir, runbook))
}

/// Skips a checklist on purpose: records `operator` and `reason` in its
/// progress and appends an audit record (action `checklist-skip`, fsynced)
/// — the audit record first: a skip that cannot be audited does not
/// happen.
///
/// # Errors
///
/// An empty reason, the audit log or the progress file cannot be written.
pub fn skip(
    store: &ProgressStore,
    audit: &AuditLog,
    operator: &Operator,
    release: Option<&str>,
    reason: &str,
) -> Result<(), String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("skipping a checklist needs a reason".into());
    }
    audit
        .append(&AuditRecord {
            ts: jiff::Timestamp::now().to_string(),
            operator: operator.clone(),
            action: "checklist-skip".into(),
            release: release.map(str::to_string),
            step: Some(step_name(&store.runbook().to_string_lossy())),
            rendered: format!("skip checklist {}", store.runbook().display()),
            exit_code: None,
            http_status: None,
            ok: true,
            duration_s: 0.0,
            detail: "checklist skipped on purpose".into(),
            reason: Some(reason.to_string()),
            run_id: None,
        })
        .map_err(|e| {
            format!(
                "not skipped: the audit log {} cannot be written: {e}",
                audit.path().display()
            )
        })?;
    let op = operator.to_string();
    store
        .update(|p| {
            p.skipped = Some(SkipRecord {
                at: jiff::Timestamp::now().to_string(),
                operator: op,
                reason: reason.to_string(),
            })
        })
        .map_err(|e| format!("the skip is audited but not recorded: {e}"))?;
    Ok(())
}

/// Waits until the checklist at `file` is done in `store`, reading both
/// every [`POLL`]; reports each change of where it stands (and each
/// problem reading it) as an output line named `step` on `out`. Returns
/// `(true, summary)` when done, `(false, "cancelled …")` when `cancel`
/// resolves first. A runbook or progress file that cannot be read is
/// reported and waited past, never taken as done.
pub async fn wait(
    file: PathBuf,
    store: ProgressStore,
    step: String,
    out: mpsc::Sender<OutputLine>,
    cancel: impl Future<Output = ()> + Send,
) -> (bool, String) {
    tokio::pin!(cancel);
    let mut last = String::new();
    loop {
        let now = match Runbook::load(&file) {
            Err(e) => Err(e.to_string()),
            Ok(rb) => match store.load() {
                Err(e) => Err(e.to_string()),
                Ok(p) => Ok(status(&rb, &p)),
            },
        };
        let line = match &now {
            Ok(s) => s.summary(),
            Err(e) => format!("cannot read the checklist (still waiting): {e}"),
        };
        if line != last {
            let _ = out.try_send(OutputLine {
                action: step.clone(),
                stream: Stream::Stdout,
                line: crate::exec::strip_control(&line),
            });
            last = line.clone();
        }
        if let Ok(s) = &now
            && s.done()
        {
            return (true, crate::exec::strip_control(&line));
        }
        tokio::select! {
            () = &mut cancel => {
                return (false, format!("cancelled while waiting for the checklist: {}", crate::exec::strip_control(&line)));
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Whether `release` waits on a checklist now (its current plan step is a
/// checklist step that is running): headless treats it like an approval.
pub fn waiting(release: &crate::release::Release) -> Option<String> {
    let step = release.current_step()?;
    let run = release.steps.get(release.current)?;
    match &step.action {
        crate::release::StepAction::Action { action }
            if run.status == crate::release::StepStatus::Running =>
        {
            parse_step_action(action).map(str::to_string)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_only_progress_and_runnable_blocks() {
        let rb = super::super::parse(
            "- [ ] a\n- [x] b\n```sh\necho\n```\n```sh {\"excludeFromRunAll\":true}\nx\n```\n```text\nshown\n```\n",
        );
        let mut p = Progress::new(Path::new("/c.md"));
        let s = status(&rb, &p);
        assert_eq!((s.checks, s.ticked, s.blocks, s.passed), (2, 0, 1, 0));
        assert!(!s.done());
        p.tick(&rb.checks[0], true, "ana");
        p.tick(&rb.checks[1], true, "ana");
        assert!(!status(&rb, &p).done());
        p.set_state(
            &rb.blocks[0],
            BlockState::Failed { exit_code: Some(1) },
            "exit 1",
            0.1,
            "ana",
        );
        let s = status(&rb, &p);
        assert!(s.left[0].contains("failed (exit 1)"), "{s:?}");
        p.set_state(&rb.blocks[0], BlockState::Ok, "exit 0", 0.1, "ana");
        assert!(status(&rb, &p).done());
        p.tick(&rb.checks[1], false, "ana");
        assert!(!status(&rb, &p).done());
    }

    #[test]
    fn step_action_round_trip() {
        let a = step_action(Path::new("/nonexistent/pre-deploy.md"));
        assert_eq!(parse_step_action(&a), Some("/nonexistent/pre-deploy.md"));
        assert_eq!(step_name("/x/pre-deploy.md"), "checklist pre-deploy.md");
        assert_eq!(parse_step_action("deploy"), None);
    }
}
