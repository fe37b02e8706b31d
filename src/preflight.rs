//! Preflight: before a release changes any traffic, probe every source its
//! plan needs (Prometheus or the direct-scrape targets behind its checks and
//! query triggers, the health targets of its health steps and triggers).
//!
//! A plan that starts the canary itself (a `docker` run action before its
//! first traffic or analysis step) does not need the canary's direct-scrape
//! target up front: nothing answers there until the plan has run it.
//!
//! `rolldeck run` refuses to start while one of them is down (headless:
//! exit 1 with the list; the cockpit lists them in the start confirmation)
//! unless `--force`. `rolldeck check` probes every configured source with
//! the same code ([`probe`] with no plan).

use crate::config::Config;
use crate::exec::strip_control;
use crate::release::plan::{Plan, StepAction, Trigger};
use crate::sources::{SourceStatus, Sources};
use std::collections::BTreeSet;

/// The source names a plan needs, as [`SourceStatus::source`] spells them:
/// `prometheus`, `scrape:NAME`, `health:NAME`, `docker`.
pub fn needs(cfg: &Config, plan: &Plan) -> BTreeSet<String> {
    let mut checks = BTreeSet::new();
    let mut health = BTreeSet::new();
    for s in plan.steps.iter().chain(&plan.rollback) {
        match &s.action {
            StepAction::Analysis { checks: c, .. } => checks.extend(c.iter().cloned()),
            StepAction::Health { targets, .. } => health.extend(targets.iter().cloned()),
            _ => {}
        }
    }
    for t in &plan.triggers {
        match t {
            Trigger::Check { check, .. } => {
                checks.insert(check.clone());
            }
            Trigger::Health { target, .. } => {
                health.insert(target.clone());
            }
        }
    }
    // A `docker:TRACK` target needs the engine; its containers may be the
    // plan's own to start (blue-green runs green first).
    let mut out: BTreeSet<String> = health
        .into_iter()
        .map(|h| {
            if h.starts_with("docker:") {
                "docker".to_string()
            } else {
                format!("health:{h}")
            }
        })
        .collect();
    if !checks.is_empty() {
        if cfg.sources.prometheus.is_some() {
            out.insert("prometheus".into());
        } else {
            // The canary's own /metrics cannot answer before the plan
            // starts it: a `docker` run action before the first traffic or
            // analysis step (blue-green runs green first).
            let starts_canary = plan
                .steps
                .iter()
                .take_while(|s| {
                    !matches!(
                        s.action,
                        StepAction::Traffic { .. } | StepAction::Analysis { .. }
                    )
                })
                .any(|s| match &s.action {
                    StepAction::Action { action } => cfg.actions.get(action).is_some_and(|a| {
                        a.docker
                            .as_ref()
                            .is_some_and(|d| d.op == crate::docker::action::DockerOp::Run)
                    }),
                    _ => false,
                });
            let canary = cfg.tracks.canary_target.as_ref().filter(|_| !starts_canary);
            for t in [canary, cfg.tracks.baseline_target.as_ref()]
                .into_iter()
                .flatten()
            {
                out.insert(format!("scrape:{t}"));
            }
        }
    }
    out
}

/// Probes the sources `plan` needs ([`needs`]), or every configured source
/// when `plan` is `None` (`rolldeck check`). Each probe has its source's own
/// timeout; a source that does not answer is `ok: false` with the reason.
/// A needed source that is not configured at all is reported down too.
///
/// A source's text (an error page, a lying server) is stripped of control
/// sequences: it is printed and shown on screen.
pub async fn probe(cfg: &Config, plan: Option<&Plan>) -> Vec<SourceStatus> {
    let sources = Sources::new(cfg);
    let wanted = plan.map(|p| needs(cfg, p));
    let mut out = sources
        .status_where(|name| wanted.as_ref().is_none_or(|w| w.contains(name)))
        .await;
    for s in &mut out {
        s.detail = strip_control(&s.detail);
    }
    let Some(wanted) = wanted else {
        return out;
    };
    for w in &wanted {
        if !out.iter().any(|s| &s.source == w) {
            out.push(SourceStatus {
                source: w.clone(),
                ok: false,
                detail: "needed by the plan but not configured".into(),
                latency_ms: None,
            });
        }
    }
    out
}

/// The sources that are down, one line each: `prometheus: <reason>`.
pub fn down_lines(statuses: &[SourceStatus]) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| !s.ok)
        .map(|s| format!("{}: {}", s.source, s.detail))
        .collect()
}
