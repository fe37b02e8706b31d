//! The release engine: a pure state machine, `(state, event, now) -> (state, effects)`.
//!
//! No I/O and no clock: the runtime passes `now` and performs the
//! [`Effect`]s, feeding results back as [`Event`]s. Every event is written
//! to the journal before its effects run; replaying the journal's events
//! through [`Release::apply`] rebuilds the state exactly (event sourcing).

use super::analysis::{CheckDef, CheckRun, Measurement, Verdict, VerdictKind, judge};
use super::plan::{Plan, Step, StepAction, Trigger};
use crate::config::OnFailure;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step passed.
    Promoted,
    /// The rollback steps ran and all succeeded.
    RolledBack,
    /// Stopped without rollback (`on_failure = "abort"` or an operator abort).
    Aborted,
    /// The rollback itself failed: a human must act.
    Failed,
}

impl Outcome {
    /// `promoted`, `rolled_back`, `aborted`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled_back",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome for people: `promoted`, `rolled back`, `aborted`,
    /// `rollback failed` (JSON keeps [`Outcome::as_str`]).
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled back",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "rollback failed",
        }
    }
}

/// Where the release stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Steps are running.
    Running,
    /// Waiting for a human; `reason` says why.
    Paused {
        /// Why.
        reason: String,
        /// Something went wrong that a human must look at before anything
        /// else runs (an action ran but could not be audited); the cockpit
        /// shows it in the danger colour. Absent (false) for ordinary pauses.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        danger: bool,
    },
    /// An approval step waits.
    WaitingApproval {
        /// What is asked.
        message: String,
    },
    /// The rollback steps run.
    RollingBack {
        /// Why the rollback started.
        reason: String,
    },
    /// Done.
    Finished {
        /// How it ended.
        outcome: Outcome,
        /// Why.
        reason: String,
    },
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// In progress.
    Running,
    /// Waiting for approval.
    WaitingApproval,
    /// Done, successfully.
    Passed,
    /// Done, unsuccessfully.
    Failed,
    /// Skipped by a promotion.
    Skipped,
    /// Started, then rolldeck was killed before it finished.
    Interrupted,
}

/// The live state of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRun {
    /// State.
    pub status: StepStatus,
    /// When it started (latest attempt).
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// What it waits for / how it ended, in words.
    pub detail: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Analysis/pause: when the window ends; health: the deadline. None
    /// while the release is paused: the clock stops (see [`Frozen`]).
    pub deadline: Option<Timestamp>,
    /// While the release is paused: the time the step had left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<Frozen>,
}

/// A running step's clock, stopped by a pause: while the release is
/// paused the step has no deadline, only the time it had left; a resume
/// in the same evidence epoch sets the deadline to `now + left_ms`.
/// Time spent paused never counts toward an analysis window, a bake or a
/// health timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    /// Milliseconds the step had left when the release paused (> 0; a step
    /// whose time had run out is started again on resume instead).
    pub left_ms: u64,
    /// The evidence epoch when it paused. A resume in a later epoch (the
    /// weight was changed while paused, or rolldeck restarted) starts the
    /// step again: the evidence gathered before is not for this weight.
    pub epoch: u64,
}

impl StepRun {
    fn new() -> Self {
        Self {
            status: StepStatus::Pending,
            started_at: None,
            finished_at: None,
            detail: String::new(),
            attempts: 0,
            deadline: None,
            frozen: None,
        }
    }
}

/// Which step list a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    /// True for a `[[rollback]]` step.
    pub rollback: bool,
    /// Index in its list.
    pub index: usize,
}

/// What a probe that did not pass means for health steps and rollback
/// triggers (`ok: false`; a passing probe is always [`ProbeKind::Plain`]).
///
/// * `Plain` — an ordinary failure (an HTTP error, an unhealthy
///   container, state unknown or stale): not a pass for a `health` step,
///   and one more failure in a row for a `rollback_when` health trigger
///   (which fires after `consecutive_failures` of them).
/// * `Starting` — the target is still in its normal start period (a
///   container whose Docker health check says `starting`: Docker keeps
///   it there until its first passing check, or turns it `unhealthy`
///   after the start period plus `retries` failures, so the wait is
///   bounded by the container's own health-check settings). Never a pass
///   for a `health` step (its passes in a row start again), and no
///   evidence either way for a trigger: the failure count stays as it is.
/// * `Stopped` — the target is gone for good (a container that exited or
///   is dead): a failure for both, and a trigger on that target fires at
///   once, whatever its `consecutive_failures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An ordinary probe.
    #[default]
    Plain,
    /// Still starting: neither pass nor failure for a trigger.
    Starting,
    /// Stopped for good: a trigger fires at once.
    Stopped,
}

impl ProbeKind {
    /// True for [`ProbeKind::Plain`] (left out of the journal).
    pub fn is_plain(&self) -> bool {
        *self == ProbeKind::Plain
    }
}

/// Per-target health state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthRun {
    /// Passing probes in a row.
    pub consecutive_ok: u32,
    /// Failing probes in a row.
    pub consecutive_fail: u32,
    /// The last probe: ok and detail.
    pub last: Option<(bool, String)>,
    /// When the last probe answered.
    pub last_at: Option<Timestamp>,
}

/// An operator command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Pass the waiting approval step.
    Approve,
    /// Pause progression (checks and triggers keep running; the current
    /// step's clock stops, see [`Frozen`]).
    Pause,
    /// Continue after a pause: a running analysis/health/pause step goes
    /// on with the time it had left (counting only evidence asked for
    /// after the resume); one whose time had run out, or whose weight
    /// changed while paused, starts again.
    Resume,
    /// Skip the current step.
    Promote,
    /// Skip every remaining gate (analysis, pause, approval, health); actions
    /// and traffic steps still run, so the plan ends at its final weight.
    PromoteFull,
    /// Run a failed or interrupted step again.
    Retry,
    /// Start the rollback steps.
    Rollback,
    /// Stop without running the rollback steps.
    Abort,
    /// Set the canary weight by hand (percent 0–100) with the plan's traffic
    /// action; only while paused or waiting for approval, so no analysis
    /// window mixes two weights.
    SetWeight {
        /// Percent 0–100.
        weight: u8,
    },
}

/// Why a command may not run now: one sentence for the operator, e.g.
/// `nothing waits for approval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why(pub String);

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Why {}

/// Who issued a command, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    /// The command.
    #[serde(flatten)]
    pub command: Command,
    /// Operator, e.g. `alice@bastion (ssh 10.0.0.5)`.
    pub operator: String,
    /// Optional reason (recorded in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything that can happen to a release. Journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new release.
    Start {
        /// Release id.
        id: String,
        /// Service.
        service: String,
        /// Environment name.
        environment: String,
        /// Version being released.
        version: Option<String>,
        /// The resolved plan.
        plan: Box<Plan>,
    },
    /// Time passed (journaled only when it changed something).
    Tick,
    /// An action finished (`run` matches [`Effect::RunAction::run`]).
    ActionFinished {
        /// Run id.
        run: u64,
        /// Success.
        ok: bool,
        /// In words.
        detail: String,
        /// The action ran but its result is not in the audit log: the
        /// release pauses for a human (never acts on an unaudited result).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unaudited: bool,
    },
    /// A check was measured. `epoch` echoes [`Effect::Measure::epoch`]: a
    /// measurement requested in an earlier epoch (before a traffic change or
    /// step start) never counts as evidence for the current step; one
    /// without it (journals of older versions) counts for nothing either.
    Measured {
        /// The measurement (its fields sit at the top level of the journal line).
        #[serde(flatten)]
        measurement: Measurement,
        /// The evidence epoch the measurement was requested in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
    },
    /// A health target was probed.
    Probed {
        /// Target.
        target: String,
        /// Success.
        ok: bool,
        /// In words (status, latency, error).
        detail: String,
        /// What a failed probe means ([`ProbeKind`]); absent in the
        /// journal for an ordinary probe (and in journals of older
        /// versions).
        #[serde(default, skip_serializing_if = "ProbeKind::is_plain")]
        kind: ProbeKind,
    },
    /// An operator command.
    Command(Issued),
    /// rolldeck restarted and resumes this release from the journal.
    Resumed,
}

/// What the engine asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Run a named action with these placeholder values; answer with
    /// [`Event::ActionFinished`] carrying `run`.
    RunAction {
        /// Run id.
        run: u64,
        /// The step it belongs to.
        step: StepRef,
        /// Step name.
        step_name: String,
        /// Action name.
        action: String,
        /// Placeholder values (`weight`, `version`, …).
        vars: BTreeMap<String, String>,
        /// Why (for the audit log).
        reason: Option<String>,
    },
    /// Kill a running action; it still answers with `ActionFinished`.
    CancelAction {
        /// Run id.
        run: u64,
    },
    /// Measure a check for both tracks; answer with [`Event::Measured`]
    /// carrying the same `epoch`.
    Measure {
        /// Check name.
        check: String,
        /// The release's evidence epoch when asked ([`Release::epoch`]).
        epoch: u64,
    },
    /// Probe a health target; answer with [`Event::Probed`].
    Probe {
        /// Target name.
        target: String,
    },
    /// Report something (headless JSON line, log, screen).
    Notify(Notice),
}

/// Something worth reporting. Serialized as the headless JSON lines' payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// A release started.
    ReleaseStarted {
        /// Release id.
        release: String,
        /// Plan name.
        plan: String,
        /// Version.
        version: Option<String>,
        /// Step count.
        steps: usize,
    },
    /// A step started.
    StepStarted {
        /// Step index (rollback steps are counted separately).
        step: usize,
        /// Name.
        name: String,
        /// Kind.
        kind: String,
        /// A rollback step?
        rollback: bool,
    },
    /// A step ended.
    StepFinished {
        /// Step index.
        step: usize,
        /// Name.
        name: String,
        /// Final status.
        status: StepStatus,
        /// Details.
        detail: String,
        /// A rollback step?
        rollback: bool,
    },
    /// A verdict.
    Verdict(Verdict),
    /// An operator's manual action finished (e.g. a weight set by hand).
    ManualAction {
        /// Action name.
        action: String,
        /// Success.
        ok: bool,
        /// Details.
        detail: String,
    },
    /// A health probe result that changed the target's state.
    Health {
        /// Target.
        target: String,
        /// Success.
        ok: bool,
        /// Details.
        detail: String,
    },
    /// The traffic weight changed.
    Traffic {
        /// Canary percent 0–100.
        weight: u8,
    },
    /// An approval is needed.
    ApprovalRequired {
        /// The question.
        message: String,
    },
    /// The release paused.
    Paused {
        /// Why.
        reason: String,
    },
    /// The release continues.
    Resumed {
        /// Who or what.
        by: String,
    },
    /// The rollback started.
    RollbackStarted {
        /// Why.
        reason: String,
    },
    /// The release ended.
    ReleaseFinished {
        /// How.
        outcome: Outcome,
        /// Why.
        reason: String,
        /// Seconds since the start.
        #[serde(with = "super::nonfinite::f64")]
        duration_s: f64,
    },
}

/// The state of one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Release id.
    pub id: String,
    /// Service.
    pub service: String,
    /// Environment.
    pub environment: String,
    /// Version.
    pub version: Option<String>,
    /// The plan.
    pub plan: Plan,
    /// Start time.
    pub started_at: Timestamp,
    /// Where it stands.
    pub phase: Phase,
    /// Index of the current plan step (== steps.len() when all done).
    pub current: usize,
    /// Per plan step.
    pub steps: Vec<StepRun>,
    /// Index of the current rollback step.
    pub rollback_current: usize,
    /// Per rollback step.
    pub rollback_steps: Vec<StepRun>,
    /// Whether a rollback step failed.
    pub rollback_failed: bool,
    /// Current canary weight, percent 0–100 (as last set successfully).
    pub weight: u8,
    /// Per check.
    pub checks: BTreeMap<String, CheckRun>,
    /// Per health target.
    pub health: BTreeMap<String, HealthRun>,
    /// Next time each check / target is due (`check:NAME`, `health:NAME`).
    pub due: BTreeMap<String, Timestamp>,
    /// Measurements / probes asked for and not yet answered.
    pub inflight: Vec<String>,
    /// The running action: (run id, step).
    pub running_action: Option<(u64, StepRef)>,
    /// Rollback waiting for a cancelled action to answer.
    pub rollback_pending: Option<String>,
    /// A manual weight change in flight: (run id, weight).
    #[serde(default)]
    pub manual_weight: Option<(u64, u8)>,
    /// Evidence epoch: bumped on every step start, traffic change and
    /// restart. Measurements are tagged with the epoch they were requested
    /// in; only those of the current epoch count as evidence for the step.
    #[serde(default)]
    pub epoch: u64,
    /// Per `check:NAME` / `health:NAME`: the epoch and time of the last
    /// measurement or probe asked for.
    #[serde(default)]
    pub requested: BTreeMap<String, (u64, Timestamp)>,
    /// Per `check:NAME` / `health:NAME`: the epoch of the last conclusive
    /// evaluation (a check's pass or fail, a probe's answer).
    #[serde(default)]
    pub conclusive: BTreeMap<String, u64>,
    /// Next run id.
    pub next_run: u64,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

/// `t + d` for deadlines; an overflow means "never" (the far future), so it
/// can never read as already elapsed.
fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The inconclusive streak after which a blind trigger pauses the release
/// (plans journaled by older versions had no limit for `query` triggers).
fn blind_limit(def: &CheckDef) -> u32 {
    if def.inconclusive_limit == u32::MAX {
        super::plan::TRIGGER_INCONCLUSIVE_LIMIT
    } else {
        def.inconclusive_limit.max(1)
    }
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
}

/// The outcome of applying one event.
pub type Effects = Vec<Effect>;

impl Release {
    /// Starts a release from an [`Event::Start`]; any other event → `None`.
    pub fn start(event: &Event, now: Timestamp) -> Option<(Release, Effects)> {
        let Event::Start {
            id,
            service,
            environment,
            version,
            plan,
        } = event
        else {
            return None;
        };
        let mut r = Release {
            id: id.clone(),
            service: service.clone(),
            environment: environment.clone(),
            version: version.clone(),
            plan: (**plan).clone(),
            started_at: now,
            phase: Phase::Running,
            current: 0,
            steps: plan.steps.iter().map(|_| StepRun::new()).collect(),
            rollback_current: 0,
            rollback_steps: plan.rollback.iter().map(|_| StepRun::new()).collect(),
            rollback_failed: false,
            weight: 0,
            checks: plan
                .checks
                .keys()
                .map(|k| (k.clone(), CheckRun::default()))
                .collect(),
            health: BTreeMap::new(),
            due: BTreeMap::new(),
            inflight: Vec::new(),
            running_action: None,
            rollback_pending: None,
            manual_weight: None,
            epoch: 0,
            requested: BTreeMap::new(),
            conclusive: BTreeMap::new(),
            next_run: 1,
            finished_at: None,
        };
        let mut fx = vec![Effect::Notify(Notice::ReleaseStarted {
            release: id.clone(),
            plan: plan.name.clone(),
            version: version.clone(),
            steps: plan.steps.len(),
        })];
        r.begin_step(now, &mut fx);
        r.schedule(now, &mut fx);
        Some((r, fx))
    }

    /// Whether the release has ended.
    /// Whether two states are the same for the purpose of "did this event
    /// change anything" (journal a tick, redraw the screen). Unlike `==`, a
    /// NaN value (a 0/0 rate in a stored verdict) equals itself here, so a
    /// verdict holding NaN does not make every tick look like a change.
    /// Compares the states' JSON forms (non-finite numbers are written as
    /// words, see `release::nonfinite`).
    pub fn same_state(&self, other: &Release) -> bool {
        if self == other {
            return true;
        }
        match (serde_json::to_value(self), serde_json::to_value(other)) {
            (Ok(a), Ok(b)) => a == b,
            // A state that cannot be serialized is never called unchanged.
            _ => false,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished { .. })
    }

    /// Whether it waits for a human (paused or approval) with nothing running.
    pub fn waits_for_human(&self) -> bool {
        matches!(
            self.phase,
            Phase::Paused { .. } | Phase::WaitingApproval { .. }
        ) && self.running_action.is_none()
    }

    /// The current plan step, if any.
    pub fn current_step(&self) -> Option<&Step> {
        self.plan.steps.get(self.current)
    }

    /// Progress through the plan, ratio 0–1 (passed or skipped steps / all).
    pub fn progress(&self) -> f64 {
        if self.steps.is_empty() {
            return 1.0;
        }
        let done = self
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Passed | StepStatus::Skipped))
            .count();
        done as f64 / self.steps.len() as f64
    }

    /// Seconds of plan left if every step takes its configured time
    /// (analysis and pause durations; other steps count 0), from `now`.
    pub fn eta_s(&self, now: Timestamp) -> f64 {
        let mut s = 0.0;
        for (i, step) in self.plan.steps.iter().enumerate().skip(self.current) {
            let d = match &step.action {
                StepAction::Analysis { duration, .. } => duration.as_secs_f64(),
                StepAction::Pause { duration: Some(d) } => d.as_secs_f64(),
                _ => 0.0,
            };
            if i == self.current {
                if let Some(deadline) = self.steps[i].deadline {
                    s += secs_between(now, deadline).max(0.0);
                    continue;
                }
                if let Some(f) = self.steps[i].frozen.filter(|f| f.epoch == self.epoch) {
                    s += f.left_ms as f64 / 1000.0;
                    continue;
                }
            }
            s += d;
        }
        s
    }

    /// Where the release stands in its plan, for people: `step 3/8, 2m
    /// left` while it runs (time left as [`Release::eta_s`] counts it),
    /// `step 3/8, paused, 2m left` while paused (the figure stands still:
    /// the step's clock stops, see [`Frozen`]), `step 3/8 waiting for approval`,
    /// `rollback step 1/2` while rolling back, and the outcome once
    /// finished (`promoted`, `rolled back`, …). Never a percentage: the
    /// traffic weight is the only percentage on the screen.
    pub fn position_words(&self, now: Timestamp) -> String {
        let n = self.plan.steps.len();
        let at = (self.current + 1).min(n);
        match &self.phase {
            Phase::Running => {
                let left = self.eta_s(now);
                // In the cockpit's clock steps (5 s below a minute, see
                // `tui::clock`): it redraws only when the words change.
                if left >= 5.0 {
                    format!("step {at}/{n}, {} left", crate::tui::clock::running(left))
                } else {
                    format!("step {at}/{n}")
                }
            }
            Phase::Paused { .. } => {
                let left = self.eta_s(now);
                if left >= 5.0 {
                    format!(
                        "step {at}/{n}, paused, {} left",
                        crate::tui::clock::running(left)
                    )
                } else {
                    format!("step {at}/{n}, paused")
                }
            }
            Phase::WaitingApproval { .. } => format!("step {at}/{n} waiting for approval"),
            Phase::RollingBack { .. } => format!(
                "rollback step {}/{}",
                (self.rollback_current + 1).min(self.plan.rollback.len()),
                self.plan.rollback.len()
            ),
            Phase::Finished { outcome, .. } => outcome.words().to_string(),
        }
    }

    /// Applies one event at `now`: mutates the state and returns the effects.
    pub fn apply(&mut self, event: &Event, now: Timestamp) -> Effects {
        let mut fx = Vec::new();
        if self.is_finished() {
            return fx;
        }
        match event {
            Event::Start { .. } => {}
            Event::Tick => {}
            Event::ActionFinished {
                run,
                ok,
                detail,
                unaudited,
            } => {
                if !(*unaudited && self.on_unaudited(*run, detail, now, &mut fx)) {
                    self.on_action_finished(*run, *ok, detail, now, &mut fx)
                }
            }
            Event::Measured { measurement, epoch } => {
                self.on_measured(measurement, *epoch, now, &mut fx)
            }
            Event::Probed {
                target,
                ok,
                detail,
                kind,
            } => self.on_probed(target, *ok, *kind, detail, now, &mut fx),
            Event::Command(c) => self.on_command(c, now, &mut fx),
            Event::Resumed => self.on_resumed(now, &mut fx),
        }
        if !self.is_finished() {
            self.on_time(now, &mut fx);
            self.schedule(now, &mut fx);
        }
        self.freeze_if_paused(now);
        fx
    }

    /// While paused, the current step's clock stops: its deadline becomes
    /// the time it had left ([`Frozen`]). Run after every event, so the
    /// pause's own `now` is used, and replay freezes at the same instant.
    fn freeze_if_paused(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::Paused { .. }) {
            return;
        }
        let epoch = self.epoch;
        if let Some(run) = self.steps.get_mut(self.current)
            && run.status == StepStatus::Running
            && let Some(deadline) = run.deadline.take()
        {
            let left = deadline.as_millisecond() - now.as_millisecond();
            run.frozen = u64::try_from(left)
                .ok()
                .filter(|l| *l > 0)
                .map(|left_ms| Frozen { left_ms, epoch });
        }
    }

    /// Resume of a step frozen by [`Release::freeze_if_paused`]: it goes
    /// on with the time it had left. Answers to requests made before now
    /// count for nothing (new evidence epoch), and the step's checks get a
    /// fresh inconclusive count (the human has seen why it paused).
    fn thaw(&mut self, left_ms: u64, now: Timestamp) {
        self.epoch += 1;
        let run = &mut self.steps[self.current];
        run.frozen = None;
        run.deadline = Some(add(now, Duration::from_millis(left_ms)));
        if let Some(StepAction::Analysis { checks, .. }) =
            self.plan.steps.get(self.current).map(|s| &s.action)
        {
            for c in checks {
                if let Some(run) = self.checks.get_mut(c) {
                    run.consecutive_inconclusive = 0;
                }
            }
        }
    }

    // ----- scheduling -------------------------------------------------

    /// Checks and health targets that must be evaluated now.
    fn active(&self) -> (Vec<String>, Vec<String>) {
        let mut checks = Vec::new();
        let mut targets = Vec::new();
        let live = matches!(
            self.phase,
            Phase::Running | Phase::Paused { .. } | Phase::WaitingApproval { .. }
        );
        if live {
            for t in &self.plan.triggers {
                match t {
                    Trigger::Check { check, .. } => checks.push(check.clone()),
                    Trigger::Health { target, .. } => targets.push(target.clone()),
                }
            }
        }
        let current = match &self.phase {
            Phase::RollingBack { .. } => self
                .plan
                .rollback
                .get(self.rollback_current)
                .zip(self.rollback_steps.get(self.rollback_current)),
            Phase::Finished { .. } => None,
            _ => self
                .plan
                .steps
                .get(self.current)
                .zip(self.steps.get(self.current)),
        };
        if let Some((step, run)) = current
            && run.status == StepStatus::Running
        {
            match &step.action {
                StepAction::Analysis { checks: c, .. } => checks.extend(c.iter().cloned()),
                StepAction::Health { targets: t, .. } => targets.extend(t.iter().cloned()),
                _ => {}
            }
        }
        checks.sort();
        checks.dedup();
        targets.sort();
        targets.dedup();
        (checks, targets)
    }

    fn schedule(&mut self, now: Timestamp, fx: &mut Effects) {
        let (checks, targets) = self.active();
        for c in checks {
            let Some(def) = self.plan.checks.get(&c) else {
                continue;
            };
            let key = format!("check:{c}");
            let interval = def.interval;
            if self.inflight.contains(&key) {
                continue;
            }
            let due = *self
                .due
                .entry(key.clone())
                .or_insert_with(|| add(now, interval));
            if due <= now {
                self.due.insert(key.clone(), add(now, interval));
                self.requested.insert(key.clone(), (self.epoch, now));
                self.inflight.push(key);
                fx.push(Effect::Measure {
                    check: c,
                    epoch: self.epoch,
                });
            }
        }
        for t in targets {
            let key = format!("health:{t}");
            let interval = self
                .plan
                .health_intervals
                .get(&t)
                .copied()
                .unwrap_or(Duration::from_secs(5));
            if self.inflight.contains(&key) {
                continue;
            }
            let due = *self.due.entry(key.clone()).or_insert(now);
            if due <= now {
                self.due.insert(key.clone(), add(now, interval));
                self.requested.insert(key.clone(), (self.epoch, now));
                self.inflight.push(key);
                fx.push(Effect::Probe { target: t });
            }
        }
    }

    /// The earliest time something is due (for the runtime's sleep).
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
        let (checks, targets) = self.active();
        for c in checks {
            if let Some(t) = self.due.get(&format!("check:{c}")) {
                consider(*t);
            }
        }
        for t in targets {
            if let Some(t) = self.due.get(&format!("health:{t}")) {
                consider(*t);
            }
        }
        if let Some(run) = self.current_run()
            && run.status == StepStatus::Running
            && let Some(d) = run.deadline
        {
            consider(d);
        }
        next
    }

    fn current_run(&self) -> Option<&StepRun> {
        match self.phase {
            Phase::RollingBack { .. } => self.rollback_steps.get(self.rollback_current),
            Phase::Finished { .. } => None,
            _ => self.steps.get(self.current),
        }
    }

    // ----- steps ------------------------------------------------------

    /// Placeholder values for an action run in this release.
    pub fn action_vars(
        &self,
        step_name: &str,
        weight: Option<u8>,
        reason: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert("service".into(), self.service.clone());
        v.insert("environment".into(), self.environment.clone());
        v.insert("release".into(), self.id.clone());
        v.insert("version".into(), self.version.clone().unwrap_or_default());
        v.insert("step".into(), step_name.to_string());
        v.insert("weight".into(), weight.unwrap_or(self.weight).to_string());
        v.insert("reason".into(), reason.unwrap_or_default().to_string());
        v
    }

    /// Starts the step at the current index of the current list; finishes
    /// the release when the list is done.
    fn begin_step(&mut self, now: Timestamp, fx: &mut Effects) {
        let rollback = matches!(self.phase, Phase::RollingBack { .. });
        if !rollback {
            while self
                .steps
                .get(self.current)
                .is_some_and(|r| r.status == StepStatus::Skipped)
            {
                self.current += 1;
            }
        }
        let index = if rollback {
            self.rollback_current
        } else {
            self.current
        };
        let list = if rollback {
            &self.plan.rollback
        } else {
            &self.plan.steps
        };
        let Some(step) = list.get(index).cloned() else {
            if rollback {
                let reason = match &self.phase {
                    Phase::RollingBack { reason } => reason.clone(),
                    _ => String::new(),
                };
                let outcome = if self.rollback_failed {
                    Outcome::Failed
                } else {
                    Outcome::RolledBack
                };
                let reason = if self.rollback_failed {
                    format!("{reason}; a rollback step failed")
                } else {
                    reason
                };
                self.finish(outcome, reason, now, fx);
            } else {
                self.finish(Outcome::Promoted, "every step passed".into(), now, fx);
            }
            return;
        };
        let sref = StepRef { rollback, index };
        // Evidence asked for before this step started counts for nothing in it.
        self.epoch += 1;
        {
            let run = self.run_mut(sref);
            run.status = StepStatus::Running;
            run.started_at = Some(now);
            run.finished_at = None;
            run.attempts += 1;
            run.deadline = None;
            run.frozen = None;
            run.detail.clear();
        }
        fx.push(Effect::Notify(Notice::StepStarted {
            step: index,
            name: step.name.clone(),
            kind: step.kind().into(),
            rollback,
        }));
        let reason = match &self.phase {
            Phase::RollingBack { reason } => Some(reason.clone()),
            _ => None,
        };
        match &step.action {
            StepAction::Action { action } => {
                let run = self.next_run;
                self.next_run += 1;
                self.running_action = Some((run, sref));
                self.run_mut(sref).detail =
                    match crate::runbook::checklist::parse_step_action(action) {
                        Some(_) => "waiting for its checks and blocks".into(),
                        None => format!("running action {action}"),
                    };
                fx.push(Effect::RunAction {
                    run,
                    step: sref,
                    step_name: step.name.clone(),
                    action: action.clone(),
                    vars: self.action_vars(&step.name, None, reason.as_deref()),
                    reason,
                });
            }
            StepAction::Traffic { action, weight } => {
                let run = self.next_run;
                self.next_run += 1;
                self.running_action = Some((run, sref));
                self.run_mut(sref).detail = format!("setting canary weight {weight}%");
                fx.push(Effect::RunAction {
                    run,
                    step: sref,
                    step_name: step.name.clone(),
                    action: action.clone(),
                    vars: self.action_vars(&step.name, Some(*weight), reason.as_deref()),
                    reason,
                });
            }
            StepAction::Health {
                targets,
                passes,
                timeout,
            } => {
                for t in targets {
                    let h = self.health.entry(t.clone()).or_default();
                    h.consecutive_ok = 0;
                    self.due.insert(format!("health:{t}"), now);
                }
                let run = self.run_mut(sref);
                run.deadline = Some(add(now, *timeout));
                run.detail = format!("waiting for {passes} passes of {}", targets.join(", "));
            }
            StepAction::Analysis { checks, duration } => {
                for c in checks {
                    let cr = self.checks.entry(c.clone()).or_default();
                    cr.passes = 0;
                    cr.consecutive_inconclusive = 0;
                    // Evaluations count from one window after the step
                    // starts, so the window holds data from this weight only.
                    // A check that is also a rollback trigger keeps its
                    // cadence (its early evaluations guard, but do not count).
                    if self.plan.checks.contains_key(c) && self.trigger_of_check(c).is_none() {
                        let window = self.plan.window(c);
                        self.due.insert(format!("check:{c}"), add(now, window));
                    }
                }
                let run = self.run_mut(sref);
                run.deadline = Some(add(now, *duration));
                run.detail = format!("analysing {}", checks.join(", "));
            }
            StepAction::Approval { message } => {
                let run = self.run_mut(sref);
                run.status = StepStatus::WaitingApproval;
                run.detail = format!("waiting for approval: {message}");
                self.phase = Phase::WaitingApproval {
                    message: message.clone(),
                };
                fx.push(Effect::Notify(Notice::ApprovalRequired {
                    message: message.clone(),
                }));
            }
            StepAction::Pause { duration } => match duration {
                Some(d) => {
                    let run = self.run_mut(sref);
                    run.deadline = Some(add(now, *d));
                    run.detail = format!("pausing {}", humantime::format_duration(*d));
                }
                None => {
                    self.run_mut(sref).detail = "waiting for resume".into();
                    self.pause(format!("plan step `{}`: resume to continue", step.name), fx);
                }
            },
        }
    }

    fn run_mut(&mut self, s: StepRef) -> &mut StepRun {
        if s.rollback {
            &mut self.rollback_steps[s.index]
        } else {
            &mut self.steps[s.index]
        }
    }

    fn step_def(&self, s: StepRef) -> &Step {
        if s.rollback {
            &self.plan.rollback[s.index]
        } else {
            &self.plan.steps[s.index]
        }
    }

    fn end_step(
        &mut self,
        s: StepRef,
        status: StepStatus,
        detail: String,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let name = self.step_def(s).name.clone();
        let run = self.run_mut(s);
        run.status = status;
        run.finished_at = Some(now);
        run.deadline = None;
        run.frozen = None;
        run.detail = detail.clone();
        fx.push(Effect::Notify(Notice::StepFinished {
            step: s.index,
            name,
            status,
            detail,
            rollback: s.rollback,
        }));
    }

    /// The current step passed: move on (unless paused).
    fn pass_step(&mut self, s: StepRef, detail: String, now: Timestamp, fx: &mut Effects) {
        self.end_step(s, StepStatus::Passed, detail, now, fx);
        self.advance(now, fx);
    }

    fn advance(&mut self, now: Timestamp, fx: &mut Effects) {
        match self.phase {
            Phase::RollingBack { .. } => {
                self.rollback_current += 1;
                self.begin_step(now, fx);
            }
            Phase::Running => {
                self.current += 1;
                self.begin_step(now, fx);
            }
            _ => {}
        }
    }

    fn fail_step(&mut self, s: StepRef, detail: String, now: Timestamp, fx: &mut Effects) {
        self.end_step(s, StepStatus::Failed, detail.clone(), now, fx);
        if s.rollback {
            // Keep restoring the baseline: the remaining rollback steps still run.
            self.rollback_failed = true;
            self.advance(now, fx);
            return;
        }
        let step = self.step_def(s).clone();
        let reason = format!("step `{}` failed: {detail}", step.name);
        match step.on_failure {
            OnFailure::Rollback => self.start_rollback(reason, now, fx),
            OnFailure::Pause => self.pause(reason, fx),
            OnFailure::Abort => self.finish(Outcome::Aborted, reason, now, fx),
        }
    }

    fn pause(&mut self, reason: String, fx: &mut Effects) {
        self.pause_as(reason, false, fx);
    }

    /// Pauses; `danger` marks a pause a human must look at first (see
    /// [`Phase::Paused`]).
    fn pause_as(&mut self, reason: String, danger: bool, fx: &mut Effects) {
        if matches!(self.phase, Phase::Paused { .. }) {
            return;
        }
        self.phase = Phase::Paused {
            reason: reason.clone(),
            danger,
        };
        fx.push(Effect::Notify(Notice::Paused { reason }));
    }

    fn start_rollback(&mut self, reason: String, now: Timestamp, fx: &mut Effects) {
        if matches!(
            self.phase,
            Phase::RollingBack { .. } | Phase::Finished { .. }
        ) || self.rollback_pending.is_some()
        {
            return;
        }
        // A plan step's action or a manual weight change still running must
        // end first: two traffic commands racing would leave the weight
        // undefined (and a late manual weight would undo the rollback's).
        let mut wait = false;
        if let Some((run, s)) = self.running_action
            && !s.rollback
        {
            fx.push(Effect::CancelAction { run });
            wait = true;
        }
        if let Some((run, _)) = self.manual_weight {
            fx.push(Effect::CancelAction { run });
            wait = true;
        }
        if wait {
            self.rollback_pending = Some(reason);
            return;
        }
        self.begin_rollback(reason, now, fx);
    }

    /// A pending rollback begins once nothing it waited for still runs.
    fn begin_pending_rollback(&mut self, now: Timestamp, fx: &mut Effects) {
        if self.running_action.is_none()
            && self.manual_weight.is_none()
            && let Some(reason) = self.rollback_pending.take()
        {
            self.begin_rollback(reason, now, fx);
        }
    }

    fn begin_rollback(&mut self, reason: String, now: Timestamp, fx: &mut Effects) {
        // Close the plan step in progress.
        if let Some(run) = self.steps.get(self.current)
            && matches!(
                run.status,
                StepStatus::Running | StepStatus::WaitingApproval
            )
        {
            let s = StepRef {
                rollback: false,
                index: self.current,
            };
            self.end_step(
                s,
                StepStatus::Failed,
                format!("stopped: rollback ({reason})"),
                now,
                fx,
            );
        }
        self.phase = Phase::RollingBack {
            reason: reason.clone(),
        };
        fx.push(Effect::Notify(Notice::RollbackStarted { reason }));
        self.rollback_current = 0;
        self.begin_step(now, fx);
    }

    fn finish(&mut self, outcome: Outcome, reason: String, now: Timestamp, fx: &mut Effects) {
        if let Some((run, _)) = self.running_action.take() {
            fx.push(Effect::CancelAction { run });
        }
        if let Some((run, _)) = self.manual_weight.take() {
            fx.push(Effect::CancelAction { run });
        }
        self.rollback_pending = None;
        self.phase = Phase::Finished {
            outcome,
            reason: reason.clone(),
        };
        self.finished_at = Some(now);
        self.inflight.clear();
        fx.push(Effect::Notify(Notice::ReleaseFinished {
            outcome,
            reason,
            duration_s: secs_between(self.started_at, now),
        }));
    }

    // ----- events -----------------------------------------------------

    /// A plan step's action ran but its result could not be written to the
    /// audit log: the step fails and the release pauses for a human (its
    /// `on_failure` is not applied: nothing more runs unaudited). Returns
    /// false when `run` is not the running plan step's action (a rollback
    /// step or a manual weight change), which is then handled as an
    /// ordinary failure.
    fn on_unaudited(&mut self, run: u64, detail: &str, now: Timestamp, fx: &mut Effects) -> bool {
        let Some((expected, s)) = self.running_action else {
            return false;
        };
        if expected != run || s.rollback || self.rollback_pending.is_some() {
            return false;
        }
        self.running_action = None;
        self.end_step(s, StepStatus::Failed, detail.to_string(), now, fx);
        self.pause_as(
            format!(
                "step `{}` ran but the audit log could not be written: {detail}; free the disk, check what it did, then retry, promote or roll back",
                self.step_def(s).name
            ),
            true,
            fx,
        );
        true
    }

    fn on_action_finished(
        &mut self,
        run: u64,
        ok: bool,
        detail: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        if let Some((r, weight)) = self.manual_weight
            && r == run
        {
            self.manual_weight = None;
            // A rollback waits for this answer (it never begins before), so
            // the weight set here can never land after the rollback's.
            if ok
                && matches!(
                    self.phase,
                    Phase::Running | Phase::Paused { .. } | Phase::WaitingApproval { .. }
                )
            {
                self.weight = weight;
                self.epoch += 1;
                fx.push(Effect::Notify(Notice::Traffic { weight }));
            }
            fx.push(Effect::Notify(Notice::ManualAction {
                action: self.traffic_action(),
                ok,
                detail: detail.to_string(),
            }));
            self.begin_pending_rollback(now, fx);
            return;
        }
        let Some((expected, s)) = self.running_action else {
            return;
        };
        if expected != run {
            return;
        }
        self.running_action = None;
        if self.rollback_pending.is_some() {
            let status = if ok {
                StepStatus::Passed
            } else {
                StepStatus::Failed
            };
            if ok && let StepAction::Traffic { weight, .. } = self.step_def(s).action {
                // The world's weight changed before the rollback begins.
                self.weight = weight;
                self.epoch += 1;
                fx.push(Effect::Notify(Notice::Traffic { weight }));
            }
            self.end_step(s, status, format!("{detail} (then rollback)"), now, fx);
            self.begin_pending_rollback(now, fx);
            return;
        }
        let step = self.step_def(s).clone();
        if ok {
            if let StepAction::Traffic { weight, .. } = step.action {
                self.weight = weight;
                self.epoch += 1;
                fx.push(Effect::Notify(Notice::Traffic { weight }));
            }
            if matches!(self.phase, Phase::Paused { .. }) {
                // Paused while the action ran: record, advance on resume.
                self.end_step(s, StepStatus::Passed, detail.to_string(), now, fx);
            } else {
                self.pass_step(s, detail.to_string(), now, fx);
            }
        } else {
            self.fail_step(s, detail.to_string(), now, fx);
        }
    }

    /// The display name of the rollback trigger watching `check`, if any.
    /// How text for people names `check`: `check `error-rate``, or for
    /// the synthetic check of a `query` trigger, `its query`.
    fn check_words(check: &str) -> String {
        if crate::release::plan::is_trigger_check(check) {
            "its query".to_string()
        } else {
            format!("check `{check}`")
        }
    }

    /// The name for people of a check: its own, or for the synthetic
    /// check of a `query` trigger, the trigger's (`rollback_when[0]` →
    /// `errors > 5%`).
    pub fn check_label<'a>(&'a self, check: &'a str) -> &'a str {
        if crate::release::plan::is_trigger_check(check) {
            self.trigger_of_check(check).unwrap_or(check)
        } else {
            check
        }
    }

    fn trigger_of_check(&self, check: &str) -> Option<&str> {
        self.plan.triggers.iter().find_map(|t| match t {
            Trigger::Check { name, check: c } if c == check => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the triggers' blindness holds the release: the canary gets
    /// traffic, or the current step is one the triggers guard (pause,
    /// analysis). Before any traffic a blind trigger has nothing to see.
    fn triggers_guard_now(&self) -> bool {
        self.weight > 0
            || self
                .steps
                .get(self.current)
                .is_some_and(|r| r.status == StepStatus::Running)
                && self.plan.steps.get(self.current).is_some_and(|s| {
                    matches!(
                        s.action,
                        StepAction::Pause { .. } | StepAction::Analysis { .. }
                    )
                })
    }

    /// The rollback triggers without a conclusive evaluation in the current
    /// evidence epoch (or with a violation pending), in words; empty when
    /// every trigger has seen data since the current step started.
    fn blind_triggers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.plan.triggers {
            match t {
                Trigger::Check { name, check } => {
                    let key = format!("check:{check}");
                    let last = self.checks.get(check).and_then(|r| r.last.as_ref());
                    if self.conclusive.get(&key) != Some(&self.epoch) {
                        out.push(match last {
                            Some(v) if v.verdict == VerdictKind::Inconclusive && !v.pending => {
                                format!("rollback trigger `{name}` has no data ({})", v.why())
                            }
                            _ => format!(
                                "rollback trigger `{name}` has no conclusive evaluation in this step yet"
                            ),
                        });
                    } else if let Some(v) = last
                        && v.pending
                    {
                        out.push(format!("rollback trigger `{name}` is {}", v.reason));
                    }
                }
                Trigger::Health { name, target, .. } => {
                    if self.conclusive.get(&format!("health:{target}")) != Some(&self.epoch) {
                        out.push(format!(
                            "rollback trigger `{name}` has no probe of {target} in this step yet"
                        ));
                    }
                }
            }
        }
        out
    }

    fn on_measured(&mut self, m: &Measurement, tag: Option<u64>, now: Timestamp, fx: &mut Effects) {
        let key = format!("check:{}", m.check);
        let asked = self.requested.get(&key).copied();
        let outstanding = self.inflight.contains(&key);
        // The answer to the outstanding request (or, untagged, from an older
        // version) frees the check for the next one.
        if tag.is_none() || asked.is_some_and(|(e, _)| Some(e) == tag) {
            self.inflight.retain(|k| k != &key);
        }
        let Some(def) = self.plan.checks.get(&m.check).cloned() else {
            return;
        };
        let live = matches!(
            self.phase,
            Phase::Running | Phase::Paused { .. } | Phase::WaitingApproval { .. }
        );
        let prev = self.checks.get(&m.check).cloned().unwrap_or_default();
        if tag.is_none() || tag != Some(self.epoch) || !outstanding {
            // Asked for before a traffic change or step start (or not asked
            // for at all): no evidence for this step, whatever it says, except that a rollback
            // trigger failing still rolls back (the safe direction).
            let (verdict, _) = judge(&def, m, &prev, now);
            if verdict.verdict == VerdictKind::Fail
                && live
                && let Some(name) = self.trigger_of_check(&m.check).map(str::to_string)
            {
                self.start_rollback(
                    format!(
                        "trigger `{name}`: {} failed: {} (measured before the last step start)",
                        Self::check_words(&m.check),
                        verdict.why()
                    ),
                    now,
                    fx,
                );
            }
            return;
        }
        let asked_at = asked.map_or(now, |(_, at)| at);
        let (verdict, mut run) = judge(&def, m, &prev, now);
        // Only evaluations asked for one window after the analysis step
        // started, and answered while it runs (not paused), count toward
        // its `min_samples`.
        let analysed = self.plan.steps.get(self.current).is_some_and(|s| {
            matches!(&s.action, StepAction::Analysis { checks, .. } if checks.contains(&m.check))
        }) && self.steps.get(self.current).is_some_and(|r| {
            r.status == StepStatus::Running
                && r.started_at
                    .is_some_and(|s| asked_at >= add(s, self.plan.window(&m.check)))
        }) && matches!(self.phase, Phase::Running);
        if !analysed {
            run.passes = prev.passes;
        }
        if matches!(verdict.verdict, VerdictKind::Pass | VerdictKind::Fail) {
            self.conclusive.insert(key, self.epoch);
        }
        self.checks.insert(m.check.clone(), run.clone());
        fx.push(Effect::Notify(Notice::Verdict(verdict.clone())));

        let trigger = self.trigger_of_check(&m.check).map(str::to_string);
        // Rollback triggers apply in every live phase.
        if verdict.verdict == VerdictKind::Fail
            && live
            && let Some(name) = &trigger
        {
            self.start_rollback(
                format!(
                    "trigger `{name}`: {} failed: {}",
                    Self::check_words(&m.check),
                    verdict.why()
                ),
                now,
                fx,
            );
            return;
        }
        self.analysis_verdict(&def, &verdict, &run, now, fx);

        // A blind trigger guards nothing: past its inconclusive_limit the
        // release waits for a human.
        if let Some(name) = trigger
            && verdict.verdict == VerdictKind::Inconclusive
            && !verdict.pending
            && matches!(self.phase, Phase::Running)
            && run.consecutive_inconclusive >= blind_limit(&def)
            && self.triggers_guard_now()
        {
            self.pause(
                format!(
                    "rollback trigger `{name}` is blind: {} was inconclusive {} times in a row (limit {}): {}",
                    Self::check_words(&m.check),
                    run.consecutive_inconclusive,
                    blind_limit(&def),
                    verdict.why()
                ),
                fx,
            );
        }
    }

    /// Analysis step bookkeeping for a counted verdict.
    fn analysis_verdict(
        &mut self,
        def: &CheckDef,
        verdict: &Verdict,
        run: &CheckRun,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let Some(step) = self.plan.steps.get(self.current).cloned() else {
            return;
        };
        let StepAction::Analysis { checks, .. } = &step.action else {
            return;
        };
        if !checks.contains(&def.name) || self.steps[self.current].status != StepStatus::Running {
            return;
        }
        let s = StepRef {
            rollback: false,
            index: self.current,
        };
        match verdict.verdict {
            VerdictKind::Fail if matches!(self.phase, Phase::Running | Phase::Paused { .. }) => {
                self.fail_step(
                    s,
                    format!("check `{}`: {}", def.name, verdict.why()),
                    now,
                    fx,
                );
            }
            VerdictKind::Inconclusive
                if !verdict.pending
                    && run.consecutive_inconclusive >= def.inconclusive_limit
                    && matches!(self.phase, Phase::Running) =>
            {
                self.steps[self.current].detail = verdict.reason.clone();
                self.pause(
                    format!(
                        "check `{}` was inconclusive {} times in a row (limit {}): {}",
                        def.name,
                        run.consecutive_inconclusive,
                        def.inconclusive_limit,
                        verdict.why()
                    ),
                    fx,
                );
            }
            _ => {}
        }
    }

    fn on_probed(
        &mut self,
        target: &str,
        ok: bool,
        kind: ProbeKind,
        detail: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let key = format!("health:{target}");
        // A probe asked for in this epoch is evidence for the current step.
        if self.inflight.contains(&key)
            && self
                .requested
                .get(&key)
                .is_some_and(|(e, _)| *e == self.epoch)
        {
            self.conclusive.insert(key.clone(), self.epoch);
        }
        self.inflight.retain(|k| k != &key);
        let h = self.health.entry(target.to_string()).or_default();
        let changed = h.last.as_ref().map(|(o, _)| *o) != Some(ok);
        if ok {
            h.consecutive_ok += 1;
            h.consecutive_fail = 0;
        } else {
            h.consecutive_ok = 0;
            // Still starting: no evidence either way for a trigger.
            if kind != ProbeKind::Starting {
                h.consecutive_fail += 1;
            }
        }
        h.last = Some((ok, detail.to_string()));
        h.last_at = Some(now);
        let fails = h.consecutive_fail;
        if changed {
            fx.push(Effect::Notify(Notice::Health {
                target: target.to_string(),
                ok,
                detail: detail.to_string(),
            }));
        }
        if !ok
            && matches!(
                self.phase,
                Phase::Running | Phase::Paused { .. } | Phase::WaitingApproval { .. }
            )
            && let Some(name) = self.plan.triggers.iter().find_map(|t| match t {
                Trigger::Health {
                    name,
                    target: t,
                    consecutive_failures,
                } if t == target
                    && kind != ProbeKind::Starting
                    && (fails >= *consecutive_failures || kind == ProbeKind::Stopped) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
        {
            self.start_rollback(
                format!("trigger `{name}`: health target {target} failed {fails} probes in a row: {detail}"),
                now,
                fx,
            );
            return;
        }
        self.check_health_step(now, fx);
    }

    fn check_health_step(&mut self, now: Timestamp, fx: &mut Effects) {
        let rollback = matches!(self.phase, Phase::RollingBack { .. });
        if !(rollback || matches!(self.phase, Phase::Running)) {
            return;
        }
        let index = if rollback {
            self.rollback_current
        } else {
            self.current
        };
        let s = StepRef { rollback, index };
        let list = if rollback {
            &self.plan.rollback
        } else {
            &self.plan.steps
        };
        let Some(StepAction::Health {
            targets, passes, ..
        }) = list.get(index).map(|s| s.action.clone())
        else {
            return;
        };
        if self.run_mut(s).status != StepStatus::Running {
            return;
        }
        let counts: Vec<String> = targets
            .iter()
            .map(|t| {
                let n = self.health.get(t).map_or(0, |h| h.consecutive_ok);
                format!("{t} {}/{passes}", n.min(passes))
            })
            .collect();
        let all = targets.iter().all(|t| {
            self.health
                .get(t)
                .is_some_and(|h| h.consecutive_ok >= passes)
        });
        if all {
            self.pass_step(s, format!("healthy: {}", counts.join(", ")), now, fx);
        } else {
            self.run_mut(s).detail = format!("waiting for passes: {}", counts.join(", "));
        }
    }

    /// Step deadlines: analysis windows, pauses and health timeouts.
    fn on_time(&mut self, now: Timestamp, fx: &mut Effects) {
        let rollback = matches!(self.phase, Phase::RollingBack { .. });
        if !(rollback || matches!(self.phase, Phase::Running)) {
            return;
        }
        let index = if rollback {
            self.rollback_current
        } else {
            self.current
        };
        let s = StepRef { rollback, index };
        let list = if rollback {
            &self.plan.rollback
        } else {
            &self.plan.steps
        };
        let Some(step) = list.get(index).cloned() else {
            return;
        };
        let run = self.run_mut(s);
        if run.status != StepStatus::Running {
            return;
        }
        let Some(deadline) = run.deadline else { return };
        if now < deadline {
            return;
        }
        match &step.action {
            StepAction::Pause { .. } => {
                // A bake guarded by blind triggers proved nothing: wait for
                // their data (past their inconclusive_limit, a human decides).
                let blind = if s.rollback {
                    Vec::new()
                } else {
                    self.blind_triggers()
                };
                if blind.is_empty() {
                    self.pass_step(s, "pause elapsed".into(), now, fx)
                } else {
                    self.run_mut(s).detail =
                        format!("pause elapsed; waiting for data: {}", blind.join("; "));
                }
            }
            StepAction::Health { targets, .. } => {
                let last: Vec<String> = targets
                    .iter()
                    .map(|t| match self.health.get(t).and_then(|h| h.last.clone()) {
                        Some((ok, d)) => {
                            format!("{t}: {} ({d})", if ok { "ok" } else { "failing" })
                        }
                        None => format!("{t}: no answer"),
                    })
                    .collect();
                self.fail_step(s, format!("health timed out: {}", last.join("; ")), now, fx);
            }
            StepAction::Analysis { checks, .. } => {
                let mut short = Vec::new();
                let started = self.run_mut(s).started_at;
                for c in checks {
                    let need = self.plan.checks.get(c).map_or(1, |d| d.min_samples);
                    let run = self.checks.get(c).cloned().unwrap_or_default();
                    let key = format!("check:{c}");
                    // An evaluation asked for in this window is on its way.
                    let counted_inflight = self.inflight.contains(&key)
                        && self.requested.get(&key).is_some_and(|(e, at)| {
                            *e == self.epoch
                                && started.is_some_and(|s| *at >= add(s, self.plan.window(c)))
                        });
                    match &run.last {
                        Some(v) if v.pending => {
                            // A violation in its `for` window: wait for it to
                            // resolve one way or the other.
                            return;
                        }
                        Some(v) if v.verdict == VerdictKind::Pass && run.passes >= need => {}
                        _ if counted_inflight => return,
                        Some(v) => short.push(format!(
                            "`{c}` has {} of {need} passing evaluations (last: {})",
                            run.passes, v.reason
                        )),
                        None => short.push(format!("`{c}` was never evaluated")),
                    }
                }
                let blind = self.blind_triggers();
                if short.is_empty() && !blind.is_empty() {
                    self.run_mut(s).detail = format!(
                        "analysis window over; waiting for data: {}",
                        blind.join("; ")
                    );
                } else if short.is_empty() {
                    let detail = checks
                        .iter()
                        .map(|c| {
                            let p = self.checks.get(c).map_or(0, |r| r.passes);
                            format!("{c}: {p} pass")
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.pass_step(s, format!("analysis passed ({detail})"), now, fx);
                } else {
                    let reason =
                        format!("analysis ended without enough data: {}", short.join("; "));
                    self.run_mut(s).detail = reason.clone();
                    self.pause(reason, fx);
                }
            }
            _ => {}
        }
    }

    /// Whether `command` may run now; else why not, as one sentence for the
    /// operator. The single source of truth: [`Release::apply`] ignores a
    /// command this refuses, and the cockpit's keys, `:` commands and footer
    /// ask it before offering or confirming anything.
    pub fn can(&self, command: &Command) -> Result<(), Why> {
        let no = |s: &str| Err(Why(s.to_string()));
        if let Phase::Finished { outcome, .. } = &self.phase {
            return Err(Why(format!(
                "the release has finished ({})",
                outcome.as_str()
            )));
        }
        let paused = matches!(self.phase, Phase::Paused { .. });
        let waiting = matches!(self.phase, Phase::WaitingApproval { .. });
        let running = matches!(self.phase, Phase::Running);
        let rolling = matches!(self.phase, Phase::RollingBack { .. });
        let busy = self.running_action.is_some();
        // Commands that move the release forward wait for what runs by hand
        // or for a rollback that is about to begin.
        let settled = || {
            if self.rollback_pending.is_some() {
                no("a rollback begins as soon as the running action stops")
            } else if self.manual_weight.is_some() {
                no("a manual weight change is running; wait for it")
            } else {
                Ok(())
            }
        };
        match command {
            Command::Abort => Ok(()),
            Command::Rollback => {
                if rolling {
                    no("the rollback is already running")
                } else if self.rollback_pending.is_some() {
                    no("the rollback begins as soon as the running action stops")
                } else {
                    Ok(())
                }
            }
            Command::Pause => {
                if running {
                    Ok(())
                } else if rolling {
                    no("the rollback is running and cannot be paused (abort stops it)")
                } else if paused {
                    no("the release is already paused")
                } else {
                    no("the release waits for approval: nothing advances until it is approved")
                }
            }
            Command::Resume => {
                if !paused {
                    return no("the release is not paused");
                }
                settled()
            }
            Command::Approve => {
                if !waiting {
                    return no("nothing waits for approval");
                }
                settled()
            }
            Command::Retry => {
                let failed = self.steps.get(self.current).is_some_and(|s| {
                    matches!(s.status, StepStatus::Failed | StepStatus::Interrupted)
                });
                if !(running || paused) || !failed {
                    return no("no failed or interrupted step to retry");
                }
                settled()
            }
            Command::Promote | Command::PromoteFull => {
                if rolling {
                    return no("the rollback is running: nothing to promote");
                }
                if busy {
                    return no("an action is running; wait for it");
                }
                settled()?;
                if self.current >= self.steps.len() {
                    return no("no step left to promote");
                }
                Ok(())
            }
            Command::SetWeight { weight } => {
                if *weight > 100 {
                    return Err(Why(format!("weight {weight} is not a percentage 0–100")));
                }
                if !(paused || waiting) {
                    return no(
                        "pause first: the weight is set by hand only while paused or waiting for approval, so no analysis window mixes two weights",
                    );
                }
                if busy {
                    return no("an action is running; wait for it");
                }
                settled()
            }
        }
    }

    /// Whether `command` moves the release in the safe direction (rollback,
    /// pause, abort, a lower or equal canary weight): such commands never
    /// need the environment name typed to confirm; promote, approve, resume,
    /// retry and a higher weight do in a protected environment.
    pub fn is_safe_direction(&self, command: &Command) -> bool {
        match command {
            Command::Rollback | Command::Pause | Command::Abort => true,
            Command::SetWeight { weight } => *weight <= self.weight,
            Command::Approve
            | Command::Resume
            | Command::Promote
            | Command::PromoteFull
            | Command::Retry => false,
        }
    }

    fn on_command(&mut self, c: &Issued, now: Timestamp, fx: &mut Effects) {
        if self.can(&c.command).is_err() {
            return;
        }
        let by = &c.operator;
        let why = c
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        match c.command {
            Command::Approve => {
                self.phase = Phase::Running;
                let s = StepRef {
                    rollback: false,
                    index: self.current,
                };
                self.pass_step(s, format!("approved by {by}{why}"), now, fx);
            }
            Command::Pause => self.pause(format!("paused by {by}{why}"), fx),
            Command::Resume => {
                self.phase = Phase::Running;
                // The human has seen why: blind triggers get a fresh count.
                for t in &self.plan.triggers {
                    if let Trigger::Check { check, .. } = t
                        && let Some(run) = self.checks.get_mut(check)
                    {
                        run.consecutive_inconclusive = 0;
                    }
                }
                fx.push(Effect::Notify(Notice::Resumed { by: by.clone() }));
                // A pause step "until resumed" is what this resume answers:
                // it passes, else it would begin again and pause forever.
                let s = StepRef {
                    rollback: false,
                    index: self.current,
                };
                if matches!(
                    self.plan.steps.get(self.current).map(|st| &st.action),
                    Some(StepAction::Pause { duration: None })
                ) && self
                    .steps
                    .get(self.current)
                    .is_some_and(|r| r.status == StepStatus::Running)
                {
                    self.pass_step(s, format!("resumed by {by}{why}"), now, fx);
                } else {
                    self.continue_current(now, fx);
                }
            }
            Command::Retry => {
                self.phase = Phase::Running;
                fx.push(Effect::Notify(Notice::Resumed { by: by.clone() }));
                self.begin_step(now, fx);
            }
            Command::Promote => {
                self.phase = Phase::Running;
                let s = StepRef {
                    rollback: false,
                    index: self.current,
                };
                self.end_step(
                    s,
                    StepStatus::Skipped,
                    format!("promoted by {by}{why}"),
                    now,
                    fx,
                );
                self.advance(now, fx);
            }
            Command::PromoteFull => {
                self.phase = Phase::Running;
                for i in self.current..self.steps.len() {
                    if !self.plan.steps[i].runs_action()
                        && self.steps[i].status != StepStatus::Passed
                    {
                        self.steps[i].status = StepStatus::Skipped;
                        self.steps[i].detail = format!("skipped: full promotion by {by}{why}");
                    }
                }
                if let Some(run) = self.steps.get(self.current)
                    && run.status == StepStatus::Passed
                {
                    self.advance(now, fx);
                } else {
                    self.begin_step(now, fx);
                }
            }
            Command::Rollback => {
                self.start_rollback(format!("rollback by {by}{why}"), now, fx);
            }
            Command::Abort => {
                self.finish(Outcome::Aborted, format!("aborted by {by}{why}"), now, fx);
            }
            Command::SetWeight { weight } => {
                let run = self.next_run;
                self.next_run += 1;
                self.manual_weight = Some((run, weight));
                // The weight is in flux from now on.
                self.epoch += 1;
                let name = format!("manual weight {weight}%");
                let reason = Some(format!("set by {by}{why}"));
                fx.push(Effect::RunAction {
                    run,
                    step: StepRef {
                        rollback: false,
                        index: self.current.min(self.steps.len().saturating_sub(1)),
                    },
                    vars: self.action_vars(&name, Some(weight), reason.as_deref()),
                    step_name: name,
                    action: self.traffic_action(),
                    reason,
                });
            }
        }
    }

    /// The traffic action of the plan: the first traffic step's, else `traffic`.
    pub fn traffic_action(&self) -> String {
        self.plan
            .steps
            .iter()
            .chain(&self.plan.rollback)
            .find_map(|s| match &s.action {
                StepAction::Traffic { action, .. } => Some(action.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "traffic".into())
    }

    /// What a command would run now, for a confirmation: (action name,
    /// placeholder values) of each action, in order. Rollback: every
    /// rollback step's action; promote / approve / retry: the action of the
    /// step that would start; set weight: the traffic action. Empty when the
    /// command runs nothing by itself.
    pub fn planned_actions(
        &self,
        command: &Command,
        operator: &str,
        reason: Option<&str>,
    ) -> Vec<(String, BTreeMap<String, String>)> {
        let step_action = |s: &Step, why: Option<&str>| match &s.action {
            StepAction::Action { action } => {
                Some((action.clone(), self.action_vars(&s.name, None, why)))
            }
            StepAction::Traffic { action, weight } => Some((
                action.clone(),
                self.action_vars(&s.name, Some(*weight), why),
            )),
            _ => None,
        };
        let by = format!(
            "{command:?} by {operator}{}",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        match command {
            Command::Rollback => {
                let why = format!(
                    "rollback by {operator}{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
                self.plan
                    .rollback
                    .iter()
                    .filter_map(|s| step_action(s, Some(&why)))
                    .collect()
            }
            Command::SetWeight { weight } => {
                let name = format!("manual weight {weight}%");
                vec![(
                    self.traffic_action(),
                    self.action_vars(&name, Some(*weight), Some(&by)),
                )]
            }
            Command::Retry => self
                .current_step()
                .and_then(|s| step_action(s, None))
                .into_iter()
                .collect(),
            Command::Approve | Command::Promote => self
                .plan
                .steps
                .get(self.current + 1)
                .and_then(|s| step_action(s, None))
                .into_iter()
                .collect(),
            Command::PromoteFull => self
                .plan
                .steps
                .iter()
                .skip(self.current + 1)
                .filter_map(|s| step_action(s, None))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// After a pause: advance past a finished step, or restart a waiting one.
    fn continue_current(&mut self, now: Timestamp, fx: &mut Effects) {
        let Some(run) = self.steps.get(self.current).cloned() else {
            self.begin_step(now, fx);
            return;
        };
        match run.status {
            StepStatus::Passed | StepStatus::Skipped => self.advance(now, fx),
            StepStatus::Running if self.running_action.is_some() => {}
            StepStatus::Running if run.frozen.is_some_and(|f| f.epoch == self.epoch) => {
                self.thaw(run.frozen.map_or(0, |f| f.left_ms), now)
            }
            StepStatus::Failed | StepStatus::Interrupted => {
                // Resume of a failed or interrupted step means: run it again.
                self.begin_step(now, fx);
            }
            _ => self.begin_step(now, fx),
        }
    }

    fn on_resumed(&mut self, now: Timestamp, fx: &mut Effects) {
        self.inflight.clear();
        // Answers to the old process's requests never count.
        self.epoch += 1;
        for v in self.due.values_mut() {
            *v = now;
        }
        fx.push(Effect::Notify(Notice::Resumed {
            by: "restart from journal".into(),
        }));
        // The manual weight change died with the old process: its answer
        // will never come, and the weight may or may not have been set.
        if let Some((_, w)) = self.manual_weight.take() {
            fx.push(Effect::Notify(Notice::ManualAction {
                action: self.traffic_action(),
                ok: false,
                detail: format!(
                    "interrupted by a restart: the canary weight may be {w}% or still {}%",
                    self.weight
                ),
            }));
        }
        if let Some(reason) = self.rollback_pending.take() {
            // The cancelled action's answer was lost with the old process.
            if let Some((_, s)) = self.running_action.take() {
                self.end_step(
                    s,
                    StepStatus::Interrupted,
                    "interrupted by a restart".into(),
                    now,
                    fx,
                );
            }
            self.begin_rollback(reason, now, fx);
            return;
        }
        if let Some((_, s)) = self.running_action.take() {
            let step = self.step_def(s).clone();
            if step.idempotent {
                self.run_mut(s).detail = "re-running after a restart (idempotent)".into();
                self.restart_in_place(s, now, fx);
            } else if s.rollback {
                self.end_step(
                    s,
                    StepStatus::Interrupted,
                    "interrupted by a restart; not idempotent, not re-run".into(),
                    now,
                    fx,
                );
                self.rollback_failed = true;
                self.advance(now, fx);
            } else {
                self.end_step(
                    s,
                    StepStatus::Interrupted,
                    "interrupted by a restart; not idempotent, not re-run".into(),
                    now,
                    fx,
                );
                self.pause(
                    format!(
                        "step `{}` was interrupted and is not idempotent: check what it did, then retry, promote or roll back",
                        step.name
                    ),
                    fx,
                );
            }
            return;
        }
        // Time-based steps restart their window: the old one saw a gap.
        let rollback = matches!(self.phase, Phase::RollingBack { .. });
        let index = if rollback {
            self.rollback_current
        } else {
            self.current
        };
        let s = StepRef { rollback, index };
        let list = if rollback {
            &self.plan.rollback
        } else {
            &self.plan.steps
        };
        if list.get(index).is_some() && self.run_mut(s).status == StepStatus::Running {
            self.restart_in_place(s, now, fx);
        }
    }

    fn restart_in_place(&mut self, s: StepRef, now: Timestamp, fx: &mut Effects) {
        let rollback_phase = matches!(self.phase, Phase::RollingBack { .. });
        if s.rollback == rollback_phase {
            if s.rollback {
                self.rollback_current = s.index;
            } else {
                self.current = s.index;
            }
            self.begin_step(now, fx);
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
