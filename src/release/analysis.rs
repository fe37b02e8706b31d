//! Canary analysis: turning one measurement of canary and baseline into a
//! verdict, with Prometheus alerting-rule `for` semantics.
//!
//! Safety rule: **missing data is never a pass.** An error, no sample, NaN or
//! ±Inf, a value outside the check's [`Unit`] (a negative or > 1 error
//! ratio, a negative latency or request count), or too little traffic gives
//! `inconclusive` with the reason. A condition that cannot be evaluated is
//! never a pass: `max_ratio` against a baseline of 0 fails for any canary
//! above 0 unless `min_baseline` gives the baseline a floor.

use crate::units;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::units::Unit;

/// One track's reading at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The value (unit of the check: ratio 0–1 for error rates, seconds for latencies).
    #[serde(with = "super::nonfinite::f64")]
    pub value: f64,
    /// Requests in the window, when known (compared with `min_requests`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::nonfinite::opt_f64"
    )]
    pub requests: Option<f64>,
}

/// One track's result: a reading or the reason there is none (query error,
/// empty vector, source down, answer not from the Prometheus API …).
pub type TrackResult = Result<Reading, String>;

/// One evaluation of a check for both tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The check's name.
    pub check: String,
    /// What was asked (the canary's PromQL, or a description of the direct scrape).
    pub query: String,
    /// The canary's result.
    pub canary: TrackResult,
    /// The baseline's result.
    pub baseline: TrackResult,
}

/// `pass`, `fail` or `inconclusive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// The conditions hold.
    Pass,
    /// A condition was violated for the check's `for` duration.
    Fail,
    /// No judgement possible (no data, NaN, error, too little traffic), or a
    /// violation still within its `for` window (`pending`).
    Inconclusive,
}

impl VerdictKind {
    /// `pass` / `fail` / `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Pass => "pass",
            VerdictKind::Fail => "fail",
            VerdictKind::Inconclusive => "inconclusive",
        }
    }
}

/// A verdict with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The check's name.
    pub check: String,
    /// The verdict.
    pub verdict: VerdictKind,
    /// One sentence: why.
    pub reason: String,
    /// What was asked.
    pub query: String,
    /// The canary's value, if any.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub canary: Option<f64>,
    /// The baseline's value, if any.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub baseline: Option<f64>,
    /// The check's conditions for people, values in the check's unit, e.g.
    /// `canary ≤ 5 % and ≤ baseline + 1 %` ([`CheckDef::condition_text`]).
    pub condition: String,
    /// Requests in the window: (canary, baseline), when known.
    #[serde(with = "super::nonfinite::opt_f64_pair")]
    pub requests: (Option<f64>, Option<f64>),
    /// Error text when a track had no reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True when a condition is violated but not yet for the `for` duration.
    #[serde(default)]
    pub pending: bool,
    /// When the current violation began (Prometheus `activeAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violated_since: Option<Timestamp>,
    /// When the evaluation happened.
    pub at: Timestamp,
}

impl Verdict {
    /// The reason without its leading verdict word (`pass: `, `fail: `,
    /// `pending: `, `inconclusive: `): what a sentence that already says
    /// the verdict quotes, so that no reason says it twice.
    pub fn why(&self) -> &str {
        for word in ["pass: ", "fail: ", "pending: ", "inconclusive: "] {
            if let Some(rest) = self.reason.strip_prefix(word) {
                return rest;
            }
        }
        &self.reason
    }
}

/// A check as the engine uses it (resolved from the config's `CheckSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Unique name.
    pub name: String,
    /// Healthy when canary ≤ max.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub max: Option<f64>,
    /// Healthy when canary ≥ min.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub min: Option<f64>,
    /// Healthy when canary − baseline ≤ max_increase.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub max_increase: Option<f64>,
    /// Healthy when canary / max(baseline, min_baseline) ≤ max_ratio. With
    /// a baseline of 0 and no floor, a canary above 0 violates it and a
    /// canary of 0 satisfies it.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub max_ratio: Option<f64>,
    /// Floor of the baseline in `max_ratio` (same unit as the value, > 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::nonfinite::opt_f64"
    )]
    pub min_baseline: Option<f64>,
    /// The value's unit; values outside its domain are inconclusive. `None`:
    /// unbounded (custom `promql` checks without `unit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Evaluation interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Violation duration before `fail`.
    #[serde(with = "humantime_serde")]
    pub for_: Duration,
    /// Passing evaluations an analysis step needs.
    pub min_samples: u32,
    /// Requests per track below which an evaluation is inconclusive.
    #[serde(default, with = "super::nonfinite::opt_f64")]
    pub min_requests: Option<f64>,
    /// Consecutive inconclusive evaluations before the release pauses.
    pub inconclusive_limit: u32,
}

impl CheckDef {
    /// Whether any condition compares with the baseline.
    pub fn needs_baseline(&self) -> bool {
        self.max_increase.is_some() || self.max_ratio.is_some()
    }

    /// `v` in this check's unit, for people (`11.9 %`, `45 ms`; see
    /// [`crate::units`]).
    pub fn show(&self, v: f64) -> String {
        crate::units::value(v, self.unit)
    }

    /// The conditions as text for people, values in the check's unit:
    /// `canary ≤ 5 % and ≤ baseline + 1 %`, `canary ≤ 1.5× baseline`,
    /// `canary ≤ 2× max(baseline, 0.1 %)`, `canary ≥ 100`.
    pub fn condition_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.max {
            parts.push(format!("≤ {}", self.show(v)));
        }
        if let Some(v) = self.min {
            parts.push(format!("≥ {}", self.show(v)));
        }
        if let Some(v) = self.max_increase {
            parts.push(format!("≤ baseline + {}", self.show(v)));
        }
        if let Some(v) = self.max_ratio {
            match self.min_baseline {
                Some(f) => parts.push(format!(
                    "≤ {} max(baseline, {})",
                    crate::units::factor(v),
                    self.show(f)
                )),
                None => parts.push(format!("≤ {} baseline", crate::units::factor(v))),
            }
        }
        if parts.is_empty() {
            return String::new();
        }
        format!("canary {}", parts.join(" and "))
    }
}

/// Per-check evaluation state carried between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    /// When the current violation began, if one is ongoing.
    pub violated_since: Option<Timestamp>,
    /// Inconclusive evaluations in a row (pending ones not counted).
    pub consecutive_inconclusive: u32,
    /// Passing evaluations since the current analysis step began.
    pub passes: u32,
    /// The last verdict.
    pub last: Option<Verdict>,
}

/// Formats a plain number compactly (three significant digits: `0.0512`,
/// `1.23e-5`, `250`); values with a unit go through [`crate::units::value`].
pub fn fmt_num(v: f64) -> String {
    crate::units::plain(v)
}

fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    let ms = now.as_millisecond() - since.as_millisecond();
    Duration::from_millis(ms.max(0) as u64)
}

/// The track's value when it is evidence: a reading, finite, inside the
/// check's unit, with a request count (when known) that is a possible one.
fn usable(r: &TrackResult, track: &str, unit: Option<Unit>) -> Result<f64, String> {
    match r {
        Err(e) => Err(format!("{track}: {e}")),
        Ok(r) if r.value.is_nan() => Err(format!(
            "{track}: value is NaN (no requests in the window?)"
        )),
        Ok(r) if !r.value.is_finite() => Err(format!("{track}: value is {}", r.value)),
        Ok(r) => {
            if let Some(u) = unit {
                u.admits(r.value).map_err(|e| format!("{track}: {e}"))?;
            }
            if let Some(n) = r.requests
                && (n.is_nan() || n < 0.0)
            {
                return Err(format!(
                    "{track}: request count {} is impossible (negative or NaN)",
                    fmt_num(n)
                ));
            }
            Ok(r.value)
        }
    }
}

/// What the canary's value violates, as predicates of the canary (`is
/// above the limit 5 %`, `is 3× baseline 40 ms (limit 1.5×)`), and notes
/// on how the conditions were evaluated; values in the check's unit.
fn violations(def: &CheckDef, canary: f64, baseline: Option<f64>) -> (Vec<String>, Vec<String>) {
    let show = |x: f64| def.show(x);
    let mut violations = Vec::new();
    let mut notes = Vec::new();
    if let Some(max) = def.max
        && canary > max
    {
        violations.push(format!("is above the limit {}", show(max)));
    }
    if let Some(min) = def.min
        && canary < min
    {
        violations.push(format!("is below the minimum {}", show(min)));
    }
    if let (Some(inc), Some(b)) = (def.max_increase, baseline)
        && canary - b > inc
    {
        violations.push(format!(
            "is {} above baseline {} (limit +{})",
            show(canary - b),
            show(b),
            show(inc)
        ));
    }
    if let (Some(ratio), Some(b)) = (def.max_ratio, baseline) {
        // The denominator: the baseline, raised to its floor when set.
        let floor = def.min_baseline.filter(|f| *f > 0.0 && b < *f);
        let denom = floor.unwrap_or(b);
        if denom > 0.0 {
            if canary / denom > ratio {
                violations.push(match floor {
                    Some(f) => format!(
                        "is {} the baseline floor {} (baseline {}; limit {})",
                        units::factor(canary / denom),
                        show(f),
                        show(b),
                        units::factor(ratio)
                    ),
                    None => format!(
                        "is {} baseline {} (limit {})",
                        units::factor(canary / denom),
                        show(b),
                        units::factor(ratio)
                    ),
                });
            } else if floor.is_some() {
                notes.push(format!("compared with the baseline floor {}", show(denom)));
            }
        } else if canary > 0.0 {
            violations.push(format!(
                "is above 0 against baseline {}, more than any ratio (limit {}; a baseline floor in the check's config would allow some)",
                show(0.0),
                units::factor(ratio)
            ));
        } else {
            notes.push("the ratio holds with both at 0".to_string());
        }
    }
    (violations, notes)
}

/// Judges one measurement against `def`, given the state of previous
/// evaluations; returns the verdict and the updated state.
///
/// Order of judgement: a canary without a usable value, too little traffic,
/// or (for relative conditions) a baseline without a usable value →
/// `inconclusive`. Otherwise the conditions are evaluated; a violation that
/// has lasted `for` (measured from the first violating evaluation, as a
/// Prometheus alert goes from pending to firing) → `fail`; a shorter one →
/// `inconclusive` with `pending = true`; none → `pass`.
pub fn judge(
    def: &CheckDef,
    m: &Measurement,
    prev: &CheckRun,
    now: Timestamp,
) -> (Verdict, CheckRun) {
    let canary_req = m.canary.as_ref().ok().and_then(|r| r.requests);
    let baseline_req = m.baseline.as_ref().ok().and_then(|r| r.requests);
    let mut v = Verdict {
        check: def.name.clone(),
        verdict: VerdictKind::Inconclusive,
        reason: String::new(),
        query: m.query.clone(),
        canary: m.canary.as_ref().ok().map(|r| r.value),
        baseline: m.baseline.as_ref().ok().map(|r| r.value),
        condition: def.condition_text(),
        requests: (canary_req, baseline_req),
        error: None,
        pending: false,
        violated_since: None,
        at: now,
    };
    let mut run = prev.clone();

    let inconclusive = |mut v: Verdict, mut run: CheckRun, why: String| {
        v.verdict = VerdictKind::Inconclusive;
        v.reason = format!("inconclusive: {why}");
        v.error = Some(why);
        run.consecutive_inconclusive += 1;
        // Missing data neither confirms nor clears a violation.
        v.violated_since = run.violated_since;
        run.last = Some(v.clone());
        (v, run)
    };

    let canary = match usable(&m.canary, "canary", def.unit) {
        Ok(c) => c,
        Err(e) => return inconclusive(v, run, e),
    };
    if let Some(min) = def.min_requests {
        let check_track = |req: Option<f64>, track: &str| match req {
            None => Err(format!(
                "{track}: request count unknown, so the minimum of {} req in the window cannot be checked",
                units::count(min)
            )),
            Some(r) if !r.is_finite() || r < min => Err(format!(
                "too little traffic: {track} had {} req in the window, need at least {}",
                if r.is_finite() {
                    units::count(r)
                } else {
                    "no".into()
                },
                units::count(min)
            )),
            Some(_) => Ok(()),
        };
        if let Err(e) = check_track(canary_req, "canary") {
            return inconclusive(v, run, e);
        }
        if def.needs_baseline()
            && let Err(e) = check_track(baseline_req, "baseline")
        {
            return inconclusive(v, run, e);
        }
    }
    let baseline = if def.needs_baseline() {
        match usable(&m.baseline, "baseline", def.unit) {
            Ok(b) => Some(b),
            Err(e) => return inconclusive(v, run, e),
        }
    } else {
        usable(&m.baseline, "baseline", def.unit).ok()
    };
    if def.max_ratio.is_some()
        && let Some(b) = baseline
        && b < 0.0
    {
        return inconclusive(
            v,
            run,
            format!(
                "baseline {} is negative: a canary-to-baseline ratio has no meaning",
                def.show(b)
            ),
        );
    }

    let (violations, notes) = violations(def, canary, baseline);
    let counts = match (canary_req, baseline_req) {
        (Some(_), _) => format!("; {}", units::requests(canary_req, baseline_req)),
        _ => String::new(),
    };
    run.consecutive_inconclusive = 0;
    if violations.is_empty() {
        run.violated_since = None;
        run.passes += 1;
        v.verdict = VerdictKind::Pass;
        v.reason = format!(
            "pass: canary {}{}{}{}",
            def.show(canary),
            baseline
                .map(|b| format!(", baseline {}", def.show(b)))
                .unwrap_or_default(),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            },
            counts,
        );
    } else {
        let since = *run.violated_since.get_or_insert(now);
        v.violated_since = Some(since);
        let lasted = elapsed(now, since);
        // Whole seconds read better in reasons: `for 4s`, not `for 4s 4ms`.
        let lasted_s = Duration::from_secs(lasted.as_secs());
        if lasted >= def.for_ {
            v.verdict = VerdictKind::Fail;
            v.reason = format!(
                "fail: canary {} {}{}{}",
                def.show(canary),
                violations.join(" and "),
                if def.for_.is_zero() {
                    String::new()
                } else {
                    format!(
                        " for {} (limit {})",
                        humantime::format_duration(lasted_s),
                        humantime::format_duration(def.for_)
                    )
                },
                counts
            );
        } else {
            v.pending = true;
            v.verdict = VerdictKind::Inconclusive;
            v.reason = format!(
                "pending: canary {} {} for {} of the {} allowed{}",
                def.show(canary),
                violations.join(" and "),
                humantime::format_duration(lasted_s),
                humantime::format_duration(def.for_),
                counts
            );
        }
    }
    run.last = Some(v.clone());
    (v, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::judge`] with the no-break spaces between numbers and units
    /// written as spaces, so that expected texts read plainly.
    fn judge(
        def: &CheckDef,
        m: &Measurement,
        prev: &CheckRun,
        now: Timestamp,
    ) -> (Verdict, CheckRun) {
        let (mut v, run) = super::judge(def, m, prev, now);
        v.reason = v.reason.replace('\u{a0}', " ");
        v.condition = v.condition.replace('\u{a0}', " ");
        (v, run)
    }

    fn def() -> CheckDef {
        CheckDef {
            name: "error-rate".into(),
            max: Some(0.05),
            min: None,
            max_increase: Some(0.01),
            max_ratio: None,
            min_baseline: None,
            unit: None,
            interval: Duration::from_secs(10),
            for_: Duration::from_secs(30),
            min_samples: 1,
            min_requests: Some(100.0),
            inconclusive_limit: 3,
        }
    }

    fn ok(value: f64, requests: f64) -> TrackResult {
        Ok(Reading {
            value,
            requests: Some(requests),
        })
    }

    fn m(canary: TrackResult, baseline: TrackResult) -> Measurement {
        Measurement {
            check: "error-rate".into(),
            query: "q{track=\"canary\"}".into(),
            canary,
            baseline,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn nan_is_inconclusive_not_pass() {
        let (v, run) = judge(
            &def(),
            &m(ok(f64::NAN, 500.0), ok(0.0, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive);
        assert!(v.reason.contains("NaN"), "{}", v.reason);
        assert_eq!(run.consecutive_inconclusive, 1);
        assert_eq!(run.passes, 0);
    }

    #[test]
    fn query_error_and_empty_vector_are_inconclusive_with_the_error() {
        for err in [
            "empty vector: no series matched",
            "bad_data: parse error at char 5",
        ] {
            let (v, _) = judge(
                &def(),
                &m(Err(err.into()), ok(0.0, 500.0)),
                &CheckRun::default(),
                t(0),
            );
            assert_eq!(v.verdict, VerdictKind::Inconclusive);
            assert!(v.reason.contains(err), "{}", v.reason);
            assert_eq!(v.error.as_deref(), Some(format!("canary: {err}").as_str()));
        }
    }

    #[test]
    fn baseline_missing_is_inconclusive_for_relative_conditions_only() {
        let (v, _) = judge(
            &def(),
            &m(ok(0.0, 500.0), Err("down".into())),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive);
        let mut absolute = def();
        absolute.max_increase = None;
        absolute.min_requests = None;
        let (v, _) = judge(
            &absolute,
            &m(ok(0.0, 500.0), Err("down".into())),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Pass, "{}", v.reason);
    }

    #[test]
    fn low_traffic_is_inconclusive() {
        let (v, _) = judge(
            &def(),
            &m(ok(0.0, 12.0), ok(0.0, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive);
        assert!(
            v.reason
                .contains("too little traffic: canary had 12 req in the window, need at least 100"),
            "{}",
            v.reason
        );
        let mut no_count = def();
        no_count.max_increase = None;
        let (v, _) = judge(
            &no_count,
            &m(
                Ok(Reading {
                    value: 0.0,
                    requests: None,
                }),
                ok(0.0, 1.0),
            ),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive);
    }

    #[test]
    fn violation_fails_only_after_for_duration() {
        let d = def();
        let bad = m(ok(0.10, 500.0), ok(0.001, 500.0));
        let (v1, r1) = judge(&d, &bad, &CheckRun::default(), t(0));
        assert_eq!(v1.verdict, VerdictKind::Inconclusive);
        assert!(v1.pending);
        assert_eq!(
            r1.consecutive_inconclusive, 0,
            "pending does not count as inconclusive"
        );
        let (v2, r2) = judge(&d, &bad, &r1, t(20));
        assert!(v2.pending);
        let (v3, _) = judge(&d, &bad, &r2, t(30));
        assert_eq!(v3.verdict, VerdictKind::Fail);
        assert!(
            v3.reason
                .starts_with("fail: canary 0.1 is above the limit 0.05 and "),
            "{}",
            v3.reason
        );
        assert!(
            v3.reason
                .contains("is 0.099 above baseline 0.001 (limit +0.01) for 30s (limit 30s)"),
            "{}",
            v3.reason
        );
        assert_eq!(v3.violated_since, Some(t(0)));
    }

    #[test]
    fn recovery_resets_the_for_window() {
        let d = def();
        let bad = m(ok(0.10, 500.0), ok(0.0, 500.0));
        let good = m(ok(0.0, 500.0), ok(0.0, 500.0));
        let (_, r1) = judge(&d, &bad, &CheckRun::default(), t(0));
        let (v2, r2) = judge(&d, &good, &r1, t(10));
        assert_eq!(v2.verdict, VerdictKind::Pass);
        assert_eq!(r2.violated_since, None);
        let (v3, r3) = judge(&d, &bad, &r2, t(20));
        assert!(v3.pending);
        let (v4, _) = judge(&d, &bad, &r3, t(45));
        assert!(v4.pending, "only 25 s of violation since the recovery");
    }

    #[test]
    fn for_zero_fails_at_once_and_ratio_is_checked() {
        let d = CheckDef {
            name: "p95".into(),
            max: None,
            min: None,
            max_increase: None,
            max_ratio: Some(1.5),
            min_baseline: None,
            unit: None,
            interval: Duration::from_secs(5),
            for_: Duration::ZERO,
            min_samples: 1,
            min_requests: None,
            inconclusive_limit: 3,
        };
        let (v, _) = judge(
            &d,
            &m(ok(0.6, 1.0), ok(0.2, 1.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Fail);
        assert!(
            v.reason
                .contains("canary 0.6 is 3× baseline 0.2 (limit 1.5×)"),
            "{}",
            v.reason
        );
        let (v, _) = judge(
            &d,
            &m(ok(0.25, 1.0), ok(0.2, 1.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Pass);
    }

    #[test]
    fn inconclusive_streak_counts_and_pass_resets_it() {
        let d = def();
        let mut run = CheckRun::default();
        for i in 0..3 {
            run = judge(&d, &m(Err("no data".into()), ok(0.0, 500.0)), &run, t(i)).1;
        }
        assert_eq!(run.consecutive_inconclusive, 3);
        run = judge(&d, &m(ok(0.0, 500.0), ok(0.0, 500.0)), &run, t(5)).1;
        assert_eq!(run.consecutive_inconclusive, 0);
        assert_eq!(run.passes, 1);
    }

    fn ratio_only(min_baseline: Option<f64>) -> CheckDef {
        CheckDef {
            name: "errors-ratio".into(),
            max: None,
            min: None,
            max_increase: None,
            max_ratio: Some(2.0),
            min_baseline,
            unit: Some(Unit::Ratio),
            interval: Duration::from_secs(5),
            for_: Duration::ZERO,
            min_samples: 1,
            min_requests: None,
            inconclusive_limit: 3,
        }
    }

    #[test]
    fn ratio_against_a_zero_baseline_fails_a_canary_with_errors() {
        let (v, run) = judge(
            &ratio_only(None),
            &m(ok(0.5, 1000.0), ok(0.0, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Fail, "{}", v.reason);
        assert!(v.reason.contains("against baseline 0 %"), "{}", v.reason);
        assert!(v.reason.contains("a baseline floor"), "{}", v.reason);
        assert_eq!(run.passes, 0);
    }

    #[test]
    fn ratio_with_both_tracks_at_zero_holds_and_says_so() {
        let (v, _) = judge(
            &ratio_only(None),
            &m(ok(0.0, 1000.0), ok(0.0, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Pass, "{}", v.reason);
        assert!(
            v.reason.contains("the ratio holds with both at 0"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn min_baseline_is_the_floor_of_the_ratio() {
        let d = ratio_only(Some(0.01));
        // 0.015 / max(0, 0.01) = 1.5 <= 2: pass, and the reason says the floor was used.
        let (v, _) = judge(
            &d,
            &m(ok(0.015, 1000.0), ok(0.0, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Pass, "{}", v.reason);
        assert!(
            v.reason.contains("compared with the baseline floor 1 %"),
            "{}",
            v.reason
        );
        // 0.5 / max(0, 0.01) = 50 > 2: fail.
        let (v, _) = judge(
            &d,
            &m(ok(0.5, 1000.0), ok(0.0, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Fail, "{}", v.reason);
        assert!(
            v.reason
                .contains("canary 50 % is 50× the baseline floor 1 % (baseline 0 %; limit 2×)"),
            "{}",
            v.reason
        );
        // A baseline above the floor is used as is.
        let (v, _) = judge(
            &d,
            &m(ok(0.5, 1000.0), ok(0.2, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Fail, "{}", v.reason);
        assert!(v.reason.contains("is 2.5× baseline 20 %"), "{}", v.reason);
        assert_eq!(
            d.condition_text().replace('\u{a0}', " "),
            "canary ≤ 2× max(baseline, 1 %)"
        );
    }

    #[test]
    fn values_outside_the_unit_are_inconclusive_with_the_reason() {
        let mut d = def();
        d.unit = Some(Unit::Ratio);
        for (canary, baseline, why) in [
            (
                -5.0,
                0.0,
                "canary: value -5 is outside the domain of a ratio (0–1)",
            ),
            (
                1.5,
                0.0,
                "canary: value 1.5 is outside the domain of a ratio (0–1)",
            ),
            (
                0.0,
                -0.2,
                "baseline: value -0.2 is outside the domain of a ratio (0–1)",
            ),
        ] {
            let (v, run) = judge(
                &d,
                &m(ok(canary, 500.0), ok(baseline, 500.0)),
                &CheckRun::default(),
                t(0),
            );
            assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
            assert!(v.reason.contains(why), "{}", v.reason);
            assert_eq!(run.consecutive_inconclusive, 1);
        }
        let mut lat = def();
        lat.unit = Some(Unit::Seconds);
        lat.max = Some(0.5);
        let (v, _) = judge(
            &lat,
            &m(ok(-0.1, 500.0), ok(0.1, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("negative"), "{}", v.reason);
        // Negative request counts are impossible whatever the unit.
        let mut custom = def();
        custom.unit = None;
        let (v, _) = judge(
            &custom,
            &m(ok(0.0, -100.0), ok(0.0, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("request count -100"), "{}", v.reason);
        // A custom check without a unit is unbounded: -5 is a value.
        custom.max_increase = None;
        custom.min_requests = None;
        let (v, _) = judge(
            &custom,
            &m(ok(-5.0, 500.0), ok(0.0, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Pass, "{}", v.reason);
    }

    #[test]
    fn a_negative_baseline_makes_the_ratio_inconclusive() {
        let mut d = ratio_only(None);
        d.unit = None;
        let (v, _) = judge(
            &d,
            &m(ok(0.5, 1000.0), ok(-1.0, 1000.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("baseline -1 is negative"), "{}", v.reason);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                Just(0.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                -1e12f64..1e12,
                0.0f64..=1.0,
                any::<f64>(),
            ]
        }

        proptest! {
            /// With `max_ratio` and no floor, a canary above 0 against a
            /// baseline of 0 is never a pass.
            #[test]
            fn zero_baseline_never_passes_a_canary_above_zero(
                canary in 1e-12f64..=1.0,
                ratio in 0.0f64..1e6,
                unit in prop_oneof![Just(None), Just(Some(Unit::Ratio))],
            ) {
                let mut d = ratio_only(None);
                d.max_ratio = Some(ratio);
                d.unit = unit;
                let (v, run) = judge(&d, &m(ok(canary, 100.0), ok(0.0, 100.0)), &CheckRun::default(), t(0));
                prop_assert_eq!(v.verdict, VerdictKind::Fail, "{}", v.reason);
                prop_assert_eq!(run.passes, 0);
            }

            /// Every reason, whatever the check and the values, says each
            /// thing once and names no config key (`max_increase`,
            /// `min_baseline`, …): it is read by people, in the cockpit,
            /// in `status` and in headless text lines.
            #[test]
            fn reasons_say_each_thing_once_in_words(
                c in value(), b in value(), creq in value(), breq in value(),
                max in prop::option::of(0.0f64..2.0),
                min in prop::option::of(0.0f64..1.0),
                inc in prop::option::of(0.0f64..0.5),
                ratio in prop::option::of(0.5f64..4.0),
                floor in prop::option::of(0.001f64..0.1),
                unit in prop::option::of(proptest::sample::select(Unit::ALL.to_vec())),
                for_s in 0u64..60,
                min_req in prop::option::of(0.0f64..200.0),
                later in 0i64..120,
                err in prop::option::of(proptest::sample::select(vec![
                    "no data: the query returned an empty vector",
                    "Prometheus unreachable: connection refused (127.0.0.1:1)",
                ])),
            ) {
                let d = CheckDef {
                    name: "error-rate".into(),
                    max, min, max_increase: inc, max_ratio: ratio,
                    min_baseline: ratio.and(floor),
                    unit,
                    interval: Duration::from_secs(5),
                    for_: Duration::from_secs(for_s),
                    min_samples: 1,
                    min_requests: min_req,
                    inconclusive_limit: 3,
                };
                let canary = match err {
                    Some(e) => Err(e.to_string()),
                    None => Ok(Reading { value: c, requests: Some(creq) }),
                };
                let meas = m(canary, Ok(Reading { value: b, requests: Some(breq) }));
                let (v1, r1) = judge(&d, &meas, &CheckRun::default(), t(0));
                let (v2, _) = judge(&d, &meas, &r1, t(later));
                for v in [v1, v2] {
                    prop_assert_eq!(crate::units::text_flaw(&v.reason), None);
                    prop_assert_eq!(crate::units::text_flaw(&v.condition), None);
                    prop_assert!(!v.why().starts_with(v.verdict.as_str()), "{}", v.reason);
                }
            }

            /// A ratio check never passes on a value outside 0–1, NaN or ±Inf,
            /// for either track it compares.
            #[test]
            fn out_of_domain_values_never_pass(c in value(), b in value(), req in value()) {
                let mut d = def();
                d.unit = Some(Unit::Ratio);
                d.max_ratio = Some(2.0);
                let (v, _) = judge(&d, &m(ok(c, req), ok(b, req)), &CheckRun::default(), t(0));
                if v.verdict == VerdictKind::Pass {
                    // (1e-9 above 1 is float noise of a division, still a ratio.)
                    prop_assert!((0.0..=1.0 + 1e-9).contains(&c), "pass with canary {c}: {}", v.reason);
                    prop_assert!((0.0..=1.0 + 1e-9).contains(&b), "pass with baseline {b}: {}", v.reason);
                    prop_assert!(req >= 100.0 && req.is_finite(), "pass with {req} requests");
                }
            }
        }
    }

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(250.0), "250");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.23456e-6), "1.23e-6");
    }

    #[test]
    fn reasons_and_conditions_are_in_the_unit_of_the_check() {
        let mut d = def();
        d.unit = Some(Unit::Ratio);
        assert_eq!(
            d.condition_text().replace('\u{a0}', " "),
            "canary ≤ 5 % and ≤ baseline + 1 %"
        );
        let bad = m(ok(0.1189, 35.726), ok(0.011, 758.75));
        d.min_requests = Some(10.0);
        let (v1, r1) = judge(&d, &bad, &CheckRun::default(), t(0));
        assert_eq!(
            v1.reason,
            "pending: canary 11.9 % is above the limit 5 % and is 10.8 % above baseline 1.1 % \
             (limit +1 %) for 0s of the 30s allowed; 36 / 759 req"
        );
        let (v2, _) = judge(&d, &bad, &r1, t(34));
        assert_eq!(v2.verdict, VerdictKind::Fail);
        assert!(
            v2.reason.ends_with("for 34s (limit 30s); 36 / 759 req"),
            "{}",
            v2.reason
        );
        assert_eq!(v2.why(), v2.reason.trim_start_matches("fail: "));
        let mut lat = def();
        lat.unit = Some(Unit::Seconds);
        lat.max = Some(0.3);
        lat.max_increase = None;
        lat.max_ratio = Some(1.5);
        assert_eq!(
            lat.condition_text().replace('\u{a0}', " "),
            "canary ≤ 300 ms and ≤ 1.5× baseline"
        );
        let (v, _) = judge(
            &lat,
            &m(ok(0.045, 500.0), ok(0.04, 500.0)),
            &CheckRun::default(),
            t(0),
        );
        assert_eq!(
            v.reason,
            "pass: canary 45 ms, baseline 40 ms; 500 / 500 req"
        );
    }
}
