//! The resolved plan: what the engine runs, built from the config once at
//! release start and stored in the journal (so a resumed release runs the
//! plan it started with, even if the config file changed since).

use super::analysis::CheckDef;
use crate::config::{CheckSpec, Config, OnFailure, StepKind, StepSpec, kind_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepAction {
    /// Run the named action.
    Action {
        /// Action name (`[actions.NAME]`).
        action: String,
    },
    /// Set the canary weight via the named traffic action.
    Traffic {
        /// Action name.
        action: String,
        /// Percent 0–100.
        weight: u8,
    },
    /// N consecutive passes of each target, within `timeout`.
    Health {
        /// Health target names.
        targets: Vec<String>,
        /// Consecutive passes needed per target.
        passes: u32,
        /// Give up after this long.
        #[serde(with = "humantime_serde")]
        timeout: Duration,
    },
    /// Evaluate checks for `duration`.
    Analysis {
        /// Check names.
        checks: Vec<String>,
        /// How long.
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
    /// Wait for a human.
    Approval {
        /// What to ask.
        message: String,
    },
    /// Wait `duration`, or until resumed when `None`.
    Pause {
        /// How long.
        #[serde(with = "humantime_serde")]
        duration: Option<Duration>,
    },
}

/// One resolved step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Display name, e.g. `traffic 25%`.
    pub name: String,
    /// What it does.
    pub action: StepAction,
    /// What happens on failure.
    pub on_failure: OnFailure,
    /// Whether it may run again after an interruption.
    pub idempotent: bool,
}

impl Step {
    /// The config word for the step's kind.
    pub fn kind(&self) -> &'static str {
        match self.action {
            StepAction::Action { .. } => "action",
            StepAction::Traffic { .. } => "traffic",
            StepAction::Health { .. } => "health",
            StepAction::Analysis { .. } => "analysis",
            StepAction::Approval { .. } => "approval",
            StepAction::Pause { .. } => "pause",
        }
    }

    /// Whether the step runs an action (a side effect in the world).
    pub fn runs_action(&self) -> bool {
        matches!(
            self.action,
            StepAction::Action { .. } | StepAction::Traffic { .. }
        )
    }
}

/// A rollback trigger as the engine uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// The named check failing (its `for` applies).
    Check {
        /// Display name.
        name: String,
        /// Check name (for `query` triggers a synthetic check).
        check: String,
    },
    /// `consecutive_failures` failed probes of a health target in a row.
    Health {
        /// Display name.
        name: String,
        /// Target name.
        target: String,
        /// Failures in a row that trigger.
        consecutive_failures: u32,
    },
}

/// Everything the engine needs to run one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Plan name.
    pub name: String,
    /// The steps.
    pub steps: Vec<Step>,
    /// The rollback steps.
    pub rollback: Vec<Step>,
    /// Every check the release may evaluate (config checks and synthetic
    /// checks of `query` triggers), by name.
    pub checks: BTreeMap<String, CheckDef>,
    /// Rollback triggers.
    pub triggers: Vec<Trigger>,
    /// Probe interval of each health target.
    #[serde(with = "duration_map")]
    pub health_intervals: BTreeMap<String, Duration>,
    /// The data window of each check (the `window` its query looks back
    /// over). An analysis step counts a check's evaluations only from one
    /// window after the step started, so every counted evaluation holds
    /// data from the step's traffic weight only. Absent in plans journaled
    /// by older versions (then the check's `interval` applies).
    #[serde(default, with = "duration_map")]
    pub windows: BTreeMap<String, Duration>,
}

mod duration_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let ms: BTreeMap<&String, u64> = m.iter().map(|(k, v)| (k, v.as_millis() as u64)).collect();
        ms.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        let ms = BTreeMap::<String, u64>::deserialize(d)?;
        Ok(ms
            .into_iter()
            .map(|(k, v)| (k, Duration::from_millis(v)))
            .collect())
    }
}

/// Consecutive inconclusive evaluations after which a blind `query`
/// trigger pauses the release (a `check` trigger uses its check's
/// `inconclusive_limit`).
pub const TRIGGER_INCONCLUSIVE_LIMIT: u32 = 3;

/// The synthetic check name of the `i`th `query` trigger (a key in the
/// journal's plan, so it stays as it is; text for people names the
/// trigger instead, see [`is_trigger_check`]).
pub fn trigger_check_name(i: usize) -> String {
    format!("rollback_when[{i}]")
}

/// Whether `check` is the synthetic check of a `query` trigger, whose name
/// people never need to read (they read the trigger's name).
pub fn is_trigger_check(check: &str) -> bool {
    check.starts_with("rollback_when[") && check.ends_with(']')
}

/// Resolves a check spec to the engine's definition.
pub fn check_def(c: &CheckSpec) -> CheckDef {
    CheckDef {
        name: c.name.clone(),
        max: c.max,
        min: c.min,
        max_increase: c.max_increase,
        max_ratio: c.max_ratio,
        min_baseline: c.min_baseline,
        unit: c.unit.or(crate::release::analysis::Unit::of_kind(c.kind)),
        interval: c.interval,
        for_: c.for_,
        min_samples: c.min_samples.max(1),
        min_requests: c.min_requests,
        inconclusive_limit: c.inconclusive_limit.max(1),
    }
}

/// The shortest analysis step in which a check with this `window`,
/// `interval` and `min_samples` can collect its passes: the first counted
/// evaluation comes one window after the step starts, then one per
/// interval (saturating: durations are bounded at load).
pub fn analysis_needs(window: Duration, interval: Duration, min_samples: u32) -> Duration {
    window.saturating_add(interval.saturating_mul(min_samples))
}

fn step(cfg: &Config, s: &StepSpec, all_checks: &[String]) -> Step {
    let action = match s.kind {
        StepKind::Action => StepAction::Action {
            action: s.action.clone().unwrap_or_default(),
        },
        StepKind::Traffic => {
            let action = s.action.clone().unwrap_or_else(|| "traffic".into());
            StepAction::Traffic {
                action: if s.require_migrations {
                    crate::migrations::gate_action(&action)
                } else {
                    action
                },
                weight: s.weight.unwrap_or(0).min(100),
            }
        }
        // The engine runs it as an action step; the runtime knows the
        // name (`crate::migrations::step_action`).
        StepKind::Migration => {
            let source = s
                .source
                .clone()
                .or_else(|| cfg.sources.migrations.first().map(|m| m.name.clone()))
                .unwrap_or_default();
            StepAction::Action {
                action: crate::migrations::step_action(&source, s.round_trip),
            }
        }
        // Also an action step to the engine: it "runs" until the checklist
        // is done (`crate::runbook::checklist`).
        StepKind::Checklist => StepAction::Action {
            action: crate::runbook::checklist::step_action(
                s.checklist.as_deref().unwrap_or(std::path::Path::new("")),
            ),
        },
        StepKind::Health => StepAction::Health {
            targets: s.targets.clone(),
            passes: s.passes.unwrap_or(3).max(1),
            timeout: s.timeout.unwrap_or(Duration::from_secs(60)),
        },
        StepKind::Analysis => StepAction::Analysis {
            checks: if s.checks.is_empty() {
                all_checks.to_vec()
            } else {
                s.checks.clone()
            },
            duration: s.duration.unwrap_or(Duration::from_secs(60)),
        },
        StepKind::Approval => StepAction::Approval {
            message: s
                .message
                .clone()
                .unwrap_or_else(|| "approve to continue".into()),
        },
        StepKind::Pause => StepAction::Pause {
            duration: s.duration,
        },
    };
    let name = s.name.clone().unwrap_or_else(|| match &action {
        StepAction::Action { action } => match crate::migrations::parse_step_action(action) {
            Some((src, true)) => format!("migration {src} (round trip)"),
            Some((src, false)) => format!("migration {src}"),
            None => match crate::runbook::checklist::parse_step_action(action) {
                Some(file) => crate::runbook::checklist::step_name(file),
                None => action.clone(),
            },
        },
        StepAction::Traffic { weight, .. } => format!("traffic {weight}%"),
        StepAction::Health { targets, .. } => format!("health {}", targets.join(",")),
        StepAction::Analysis { duration, .. } => {
            format!("analysis {}", humantime::format_duration(*duration))
        }
        StepAction::Approval { .. } => "approval".into(),
        StepAction::Pause { duration: Some(d) } => {
            format!("pause {}", humantime::format_duration(*d))
        }
        StepAction::Pause { duration: None } => "pause".into(),
    });
    let idempotent = s.idempotent.unwrap_or(match &action {
        // Waiting for a checklist again is harmless.
        StepAction::Action { action }
            if crate::runbook::checklist::parse_step_action(action).is_some() =>
        {
            true
        }
        StepAction::Action { action } => cfg
            .actions
            .get(action)
            .and_then(|a| a.idempotent)
            .unwrap_or(false),
        _ => true,
    });
    let _ = kind_name(s.kind);
    Step {
        name,
        action,
        on_failure: s.on_failure,
        idempotent,
    }
}

impl Plan {
    /// Builds the plan named `name` (see [`Config::plan`]) from a validated config.
    pub fn from_config(cfg: &Config, name: Option<&str>) -> Result<Plan, String> {
        let (pname, spec) = cfg.plan(name)?;
        let all_checks: Vec<String> = cfg.checks.iter().map(|c| c.name.clone()).collect();
        let mut checks: BTreeMap<String, CheckDef> = cfg
            .checks
            .iter()
            .map(|c| (c.name.clone(), check_def(c)))
            .collect();
        let mut triggers = Vec::new();
        for (i, t) in cfg
            .rollback_when
            .iter()
            .enumerate()
            .filter(|(_, t)| t.enabled)
        {
            let display = t.name.clone().unwrap_or_else(|| {
                if let Some(c) = &t.check {
                    format!("check {c} failing")
                } else if let Some(h) = &t.health {
                    format!("health {h} failing")
                } else {
                    format!("query trigger {}", i + 1)
                }
            });
            if let Some(c) = &t.check {
                triggers.push(Trigger::Check {
                    name: display,
                    check: c.clone(),
                });
            } else if let Some(h) = &t.health {
                triggers.push(Trigger::Health {
                    name: display,
                    target: h.clone(),
                    consecutive_failures: t.consecutive_failures.unwrap_or(3).max(1),
                });
            } else if t.query.is_some() {
                let cname = trigger_check_name(i);
                checks.insert(
                    cname.clone(),
                    CheckDef {
                        name: cname.clone(),
                        max: t.max,
                        min: t.min,
                        max_increase: None,
                        max_ratio: None,
                        min_baseline: None,
                        unit: None,
                        interval: t.interval,
                        for_: t.for_,
                        min_samples: 1,
                        min_requests: None,
                        inconclusive_limit: TRIGGER_INCONCLUSIVE_LIMIT,
                    },
                );
                triggers.push(Trigger::Check {
                    name: display,
                    check: cname,
                });
            }
        }
        Ok(Plan {
            name: pname.to_string(),
            steps: spec
                .steps
                .iter()
                .map(|s| step(cfg, s, &all_checks))
                .collect(),
            rollback: cfg
                .rollback
                .iter()
                .map(|s| step(cfg, s, &all_checks))
                .collect(),
            checks,
            triggers,
            health_intervals: (cfg.sources.health.iter())
                .map(|h| (h.name.clone(), h.interval))
                .chain(
                    crate::docker::health_targets(cfg)
                        .into_iter()
                        .zip(std::iter::repeat(
                            cfg.sources
                                .docker
                                .as_ref()
                                .map_or(Duration::from_secs(2), |d| d.probe_interval),
                        )),
                )
                .collect(),
            windows: cfg
                .checks
                .iter()
                .map(|c| (c.name.clone(), c.window))
                .collect(),
        })
    }

    /// The data window of `check`: its configured `window`, else (a plan
    /// journaled by an older version) its `interval`; zero for an unknown check.
    pub fn window(&self, check: &str) -> Duration {
        self.windows
            .get(check)
            .copied()
            .or_else(|| self.checks.get(check).map(|c| c.interval))
            .unwrap_or_default()
    }

    /// Problems that do not stop a release but make it wait or pause for a
    /// human, in words (for `rolldeck check`): an analysis step shorter than
    /// one of its checks' `window` + `min_samples` × `interval` (the first
    /// counted evaluation comes one window after the step starts, so the
    /// step ends without enough passes and pauses).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let StepAction::Analysis { checks, duration } = &s.action else {
                continue;
            };
            for c in checks {
                let Some(def) = self.checks.get(c) else {
                    continue;
                };
                let window = self.window(c);
                let needs = analysis_needs(window, def.interval, def.min_samples.max(1));
                if *duration < needs {
                    out.push(format!(
                        "plan `{}` step {} `{}`: analysis {} is shorter than check `{c}`'s window {} + {} × interval {} = {}: its first counted evaluation comes one window after the step starts, so the step ends without enough passing evaluations and pauses for a human",
                        self.name,
                        i + 1,
                        s.name,
                        humantime::format_duration(*duration),
                        humantime::format_duration(window),
                        def.min_samples.max(1),
                        humantime::format_duration(def.interval),
                        humantime::format_duration(needs),
                    ));
                }
            }
        }
        out
    }
}
