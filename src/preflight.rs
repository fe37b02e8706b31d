//! Preflight: before a release changes any traffic, probe every source its
//! plan needs (Prometheus or the direct-scrape targets behind its checks and
//! query triggers, the health targets of its health steps and triggers).
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
            for t in [&cfg.tracks.canary_target, &cfg.tracks.baseline_target]
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
