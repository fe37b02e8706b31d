//! Engine transitions with a fake clock.

use super::*;
use crate::release::analysis::{CheckDef, Reading};
use crate::release::journal::{Record, replay};
use crate::release::plan::{Plan, Step, StepAction, Trigger};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_900_000_000 + secs).unwrap()
}

fn check(name: &str) -> CheckDef {
    CheckDef {
        name: name.into(),
        max: Some(0.05),
        min: None,
        max_increase: None,
        max_ratio: None,
        min_baseline: None,
        unit: None,
        interval: Duration::from_secs(10),
        for_: Duration::from_secs(20),
        min_samples: 2,
        min_requests: Some(50.0),
        inconclusive_limit: 3,
    }
}

fn step(name: &str, action: StepAction) -> Step {
    let idempotent = !matches!(action, StepAction::Action { .. });
    Step {
        name: name.into(),
        action,
        on_failure: OnFailure::Rollback,
        idempotent,
    }
}

fn plan() -> Plan {
    Plan {
        name: "canary".into(),
        steps: vec![
            step(
                "migrate",
                StepAction::Action {
                    action: "migrate".into(),
                },
            ),
            step(
                "traffic 5%",
                StepAction::Traffic {
                    action: "traffic".into(),
                    weight: 5,
                },
            ),
            step(
                "analysis",
                StepAction::Analysis {
                    checks: vec!["error-rate".into()],
                    duration: Duration::from_secs(60),
                },
            ),
            step(
                "approval",
                StepAction::Approval {
                    message: "go to 100%?".into(),
                },
            ),
            step(
                "traffic 100%",
                StepAction::Traffic {
                    action: "traffic".into(),
                    weight: 100,
                },
            ),
        ],
        rollback: vec![step(
            "traffic 0%",
            StepAction::Traffic {
                action: "traffic".into(),
                weight: 0,
            },
        )],
        checks: [("error-rate".to_string(), check("error-rate"))].into(),
        triggers: vec![],
        health_intervals: Default::default(),
        windows: Default::default(),
    }
}

fn start(p: Plan) -> (Release, Effects, Vec<Record>) {
    let ev = Event::Start {
        id: "r1".into(),
        service: "checkout".into(),
        environment: "prod".into(),
        version: Some("2.0".into()),
        plan: Box::new(p),
    };
    let (r, fx) = Release::start(&ev, t(0)).unwrap();
    let rec = Record {
        ts: t(0),
        release: "r1".into(),
        event: ev,
    };
    (r, fx, vec![rec])
}

/// A measurement as the runtime answers it; `step_at` tags it with the
/// epoch of the outstanding request, as the runtime echoes it.
fn measured(m: Measurement) -> Event {
    Event::Measured {
        measurement: m,
        epoch: None,
    }
}

/// Applies and journals an event, like the runtime does. An untagged
/// measurement answers the outstanding request of its check (tagged with
/// that request's epoch, else the current one).
fn step_at(r: &mut Release, j: &mut Vec<Record>, ev: Event, at: i64) -> Effects {
    let ev = match ev {
        Event::Measured {
            measurement,
            epoch: None,
        } => {
            let epoch = r
                .requested
                .get(&format!("check:{}", measurement.check))
                .map_or(r.epoch, |(e, _)| *e);
            Event::Measured {
                measurement,
                epoch: Some(epoch),
            }
        }
        ev => ev,
    };
    step_raw(r, j, ev, at)
}

/// Applies and journals an event exactly as given.
fn step_raw(r: &mut Release, j: &mut Vec<Record>, ev: Event, at: i64) -> Effects {
    let fx = r.apply(&ev, t(at));
    j.push(Record {
        ts: t(at),
        release: r.id.clone(),
        event: ev,
    });
    fx
}

fn run_ids(fx: &Effects) -> Vec<(u64, String, BTreeMap<String, String>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::RunAction {
                run, action, vars, ..
            } => Some((*run, action.clone(), vars.clone())),
            _ => None,
        })
        .collect()
}

fn measures(fx: &Effects) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Measure { check, .. } => Some(check.clone()),
            _ => None,
        })
        .collect()
}

fn good(check: &str) -> Event {
    measured(Measurement {
        check: check.into(),
        query: "q".into(),
        canary: Ok(Reading {
            value: 0.01,
            requests: Some(500.0),
        }),
        baseline: Ok(Reading {
            value: 0.01,
            requests: Some(5000.0),
        }),
    })
}

fn bad(check: &str) -> Event {
    measured(Measurement {
        check: check.into(),
        query: "q".into(),
        canary: Ok(Reading {
            value: 0.12,
            requests: Some(500.0),
        }),
        baseline: Ok(Reading {
            value: 0.01,
            requests: Some(5000.0),
        }),
    })
}

fn no_data(check: &str) -> Event {
    measured(Measurement {
        check: check.into(),
        query: "q".into(),
        canary: Err("no data: the query returned an empty vector".into()),
        baseline: Err("no data: the query returned an empty vector".into()),
    })
}

fn done(run: u64, ok: bool) -> Event {
    Event::ActionFinished {
        run,
        ok,
        detail: if ok { "exit 0".into() } else { "exit 1".into() },
        unaudited: false,
    }
}

fn approve() -> Event {
    Event::Command(Issued {
        command: Command::Approve,
        operator: "alice".into(),
        reason: None,
    })
}

/// Drives the plan up to a running analysis step at t=2.
fn to_analysis() -> (Release, Vec<Record>) {
    let (mut r, fx, mut j) = start(plan());
    let runs = run_ids(&fx);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, "migrate");
    let fx = step_at(&mut r, &mut j, done(runs[0].0, true), 1);
    let runs = run_ids(&fx);
    assert_eq!(runs[0].1, "traffic");
    assert_eq!(runs[0].2["weight"], "5");
    step_at(&mut r, &mut j, done(runs[0].0, true), 2);
    assert_eq!(r.weight, 5);
    assert_eq!(r.current, 2);
    assert_eq!(r.steps[2].status, StepStatus::Running);
    (r, j)
}

#[test]
fn happy_path_promotes_after_enough_passes_and_approval() {
    let (mut r, mut j) = to_analysis();
    // Nothing due before the first interval.
    assert!(measures(&step_at(&mut r, &mut j, Event::Tick, 5)).is_empty());
    assert_eq!(
        measures(&step_at(&mut r, &mut j, Event::Tick, 12)),
        vec!["error-rate"]
    );
    // Not measured twice while in flight.
    assert!(measures(&step_at(&mut r, &mut j, Event::Tick, 23)).is_empty());
    step_at(&mut r, &mut j, good("error-rate"), 13);
    assert_eq!(
        measures(&step_at(&mut r, &mut j, Event::Tick, 23)),
        vec!["error-rate"]
    );
    step_at(&mut r, &mut j, good("error-rate"), 24);
    assert_eq!(r.steps[2].status, StepStatus::Running, "window not over");
    step_at(&mut r, &mut j, Event::Tick, 62);
    assert_eq!(r.steps[2].status, StepStatus::Passed);
    assert!(matches!(r.phase, Phase::WaitingApproval { .. }));
    assert!(r.waits_for_human());
    let fx = step_at(&mut r, &mut j, approve(), 70);
    let runs = run_ids(&fx);
    assert_eq!(runs[0].2["weight"], "100");
    let fx = step_at(&mut r, &mut j, done(runs[0].0, true), 71);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Promoted,
            ..
        }
    ));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Notify(Notice::ReleaseFinished {
            outcome: Outcome::Promoted,
            ..
        })
    )));
    // Replaying the journal rebuilds the same state.
    let replayed = replay(&j);
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0], r);
}

#[test]
fn failing_check_after_for_rolls_back_with_reason() {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 12);
    step_at(&mut r, &mut j, bad("error-rate"), 12);
    assert_eq!(
        r.steps[2].status,
        StepStatus::Running,
        "pending within `for`"
    );
    step_at(&mut r, &mut j, Event::Tick, 22);
    step_at(&mut r, &mut j, bad("error-rate"), 22);
    assert_eq!(r.steps[2].status, StepStatus::Running);
    step_at(&mut r, &mut j, Event::Tick, 32);
    let fx = step_at(&mut r, &mut j, bad("error-rate"), 32);
    assert_eq!(r.steps[2].status, StepStatus::Failed);
    let Phase::RollingBack { reason } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("error-rate"), "{reason}");
    assert!(
        reason.contains("canary 0.12 is above the limit 0.05"),
        "{reason}"
    );
    let runs = run_ids(&fx);
    assert_eq!(runs[0].2["weight"], "0");
    step_at(&mut r, &mut j, done(runs[0].0, true), 33);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::RolledBack,
            ..
        }
    ));
    assert_eq!(r.weight, 0);
}

#[test]
fn silence_never_promotes_it_pauses() {
    let (mut r, mut j) = to_analysis();
    for at in [12, 22, 32] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, no_data("error-rate"), at);
    }
    let Phase::Paused { reason, .. } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("was inconclusive 3 times"), "{reason}");
    assert!(reason.contains("empty vector"), "{reason}");
    assert_ne!(r.steps[2].status, StepStatus::Passed);
    // Even after the window ends, nothing advances while paused.
    step_at(&mut r, &mut j, Event::Tick, 200);
    assert_eq!(r.current, 2);
    assert!(r.waits_for_human());
}

#[test]
fn window_ending_without_enough_passes_pauses() {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 12);
    step_at(&mut r, &mut j, good("error-rate"), 12);
    step_at(&mut r, &mut j, Event::Tick, 22);
    step_at(&mut r, &mut j, no_data("error-rate"), 22);
    step_at(&mut r, &mut j, Event::Tick, 62);
    let Phase::Paused { reason, .. } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("1 of 2 passing"), "{reason}");
}

#[test]
fn pending_violation_holds_the_step_open_past_its_window() {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 12);
    step_at(&mut r, &mut j, good("error-rate"), 12);
    step_at(&mut r, &mut j, Event::Tick, 22);
    step_at(&mut r, &mut j, good("error-rate"), 22);
    step_at(&mut r, &mut j, Event::Tick, 52);
    step_at(&mut r, &mut j, bad("error-rate"), 52);
    step_at(&mut r, &mut j, Event::Tick, 63);
    assert_eq!(
        r.steps[2].status,
        StepStatus::Running,
        "violation pending: no pass"
    );
    step_at(&mut r, &mut j, bad("error-rate"), 63);
    step_at(&mut r, &mut j, Event::Tick, 73);
    step_at(&mut r, &mut j, bad("error-rate"), 73);
    assert!(matches!(r.phase, Phase::RollingBack { .. }));
}

#[test]
fn interrupted_non_idempotent_action_pauses_and_idempotent_reruns() {
    // Crash while `migrate` (not idempotent) runs.
    let (r, _fx, j) = start(plan());
    let mut resumed = replay(&j).pop().unwrap();
    assert_eq!(resumed, r);
    let fx = resumed.apply(&Event::Resumed, t(100));
    assert!(
        run_ids(&fx).is_empty(),
        "a non-idempotent step is never re-run"
    );
    assert_eq!(resumed.steps[0].status, StepStatus::Interrupted);
    assert!(matches!(resumed.phase, Phase::Paused { .. }));
    // The operator retries on purpose.
    let fx = resumed.apply(
        &Event::Command(Issued {
            command: Command::Retry,
            operator: "bob".into(),
            reason: Some("checked: migration not applied".into()),
        }),
        t(110),
    );
    assert_eq!(run_ids(&fx)[0].1, "migrate");

    // Crash while the traffic step (idempotent) runs: re-run on resume.
    let (mut r, fx, mut j) = start(plan());
    let runs = run_ids(&fx);
    step_at(&mut r, &mut j, done(runs[0].0, true), 1);
    let mut resumed = replay(&j).pop().unwrap();
    let fx = resumed.apply(&Event::Resumed, t(50));
    let runs = run_ids(&fx);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].2["weight"], "5");
}

#[test]
fn resume_restarts_an_analysis_window() {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 12);
    step_at(&mut r, &mut j, good("error-rate"), 12);
    let mut resumed = replay(&j).pop().unwrap();
    resumed.apply(&Event::Resumed, t(500));
    assert_eq!(resumed.current, 2);
    assert_eq!(resumed.steps[2].status, StepStatus::Running);
    assert_eq!(resumed.steps[2].deadline, Some(t(560)));
    assert_eq!(resumed.checks["error-rate"].passes, 0);
}

#[test]
fn trigger_rolls_back_even_while_waiting_for_approval() {
    let mut p = plan();
    p.triggers.push(Trigger::Check {
        name: "errors".into(),
        check: "hard-errors".into(),
    });
    let mut hard = check("hard-errors");
    hard.for_ = Duration::ZERO;
    hard.min_requests = None;
    p.checks.insert("hard-errors".into(), hard);
    p.steps.swap(0, 3); // approval first
    let (mut r, fx, mut j) = start(p);
    assert!(matches!(r.phase, Phase::WaitingApproval { .. }));
    assert!(run_ids(&fx).is_empty());
    let fx = step_at(&mut r, &mut j, Event::Tick, 10);
    assert_eq!(measures(&fx), vec!["hard-errors"]);
    let fx = step_at(&mut r, &mut j, bad("hard-errors"), 10);
    let Phase::RollingBack { reason } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("trigger `errors`"), "{reason}");
    assert_eq!(run_ids(&fx)[0].2["weight"], "0");
}

#[test]
fn rollback_waits_for_a_running_plan_action_to_be_cancelled() {
    let (mut r, fx, mut j) = start(plan());
    let migrate = run_ids(&fx)[0].0;
    let fx = step_at(
        &mut r,
        &mut j,
        Event::Command(Issued {
            command: Command::Rollback,
            operator: "alice".into(),
            reason: Some("customer reports".into()),
        }),
        3,
    );
    assert!(fx.contains(&Effect::CancelAction { run: migrate }));
    assert!(
        run_ids(&fx).is_empty(),
        "no rollback action races the running one"
    );
    let fx = step_at(&mut r, &mut j, done(migrate, false), 4);
    let runs = run_ids(&fx);
    assert_eq!(runs[0].2["weight"], "0");
    assert_eq!(runs[0].2["reason"], "rollback by alice: customer reports");
}

#[test]
fn failing_rollback_step_still_runs_the_rest_and_reports_failed() {
    let mut p = plan();
    p.rollback.push(step(
        "notify",
        StepAction::Action {
            action: "notify".into(),
        },
    ));
    let (mut r, fx, mut j) = start(p);
    let fx2 = step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, false), 1);
    let first = run_ids(&fx2)[0].0;
    let fx3 = step_at(&mut r, &mut j, done(first, false), 2);
    let second = run_ids(&fx3);
    assert_eq!(second[0].1, "notify");
    step_at(&mut r, &mut j, done(second[0].0, true), 3);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Failed,
            ..
        }
    ));
}

#[test]
fn on_failure_pause_and_abort() {
    let mut p = plan();
    p.steps[0].on_failure = OnFailure::Pause;
    let (mut r, fx, mut j) = start(p.clone());
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, false), 1);
    assert!(matches!(r.phase, Phase::Paused { .. }));
    p.steps[0].on_failure = OnFailure::Abort;
    let (mut r, fx, mut j) = start(p);
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, false), 1);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Aborted,
            ..
        }
    ));
}

#[test]
fn promote_full_skips_gates_but_runs_traffic() {
    let (mut r, mut j) = to_analysis();
    let fx = step_at(
        &mut r,
        &mut j,
        Event::Command(Issued {
            command: Command::PromoteFull,
            operator: "alice".into(),
            reason: None,
        }),
        5,
    );
    assert_eq!(r.steps[2].status, StepStatus::Skipped);
    assert_eq!(r.steps[3].status, StepStatus::Skipped);
    let runs = run_ids(&fx);
    assert_eq!(runs[0].2["weight"], "100");
    step_at(&mut r, &mut j, done(runs[0].0, true), 6);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Promoted,
            ..
        }
    ));
}

#[test]
fn health_step_and_health_trigger() {
    let mut p = plan();
    p.steps = vec![step(
        "health",
        StepAction::Health {
            targets: vec!["canary".into()],
            passes: 2,
            timeout: Duration::from_secs(30),
        },
    )];
    p.health_intervals
        .insert("canary".into(), Duration::from_secs(5));
    let (mut r, fx, mut j) = start(p.clone());
    assert!(fx.contains(&Effect::Probe {
        target: "canary".into()
    }));
    let probe = |ok| Event::Probed {
        target: "canary".into(),
        ok,
        detail: "HTTP 200".into(),
        kind: ProbeKind::Plain,
    };
    step_at(&mut r, &mut j, probe(true), 1);
    step_at(&mut r, &mut j, probe(false), 6);
    step_at(&mut r, &mut j, probe(true), 11);
    assert_eq!(r.steps[0].status, StepStatus::Running);
    step_at(&mut r, &mut j, probe(true), 16);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Promoted,
            ..
        }
    ));

    // Timeout fails the step.
    let (mut r, _fx, mut j) = start(p.clone());
    step_at(&mut r, &mut j, probe(false), 1);
    step_at(&mut r, &mut j, Event::Tick, 31);
    assert!(matches!(r.phase, Phase::RollingBack { .. }));

    // Trigger: 3 failures in a row start the rollback.
    p.triggers.push(Trigger::Health {
        name: "canary down".into(),
        target: "canary".into(),
        consecutive_failures: 3,
    });
    p.steps = vec![step("wait", StepAction::Pause { duration: None })];
    let (mut r, _fx, mut j) = start(p);
    for at in [1, 6, 11] {
        step_at(&mut r, &mut j, probe(false), at);
    }
    let Phase::RollingBack { reason } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("failed 3 probes in a row"), "{reason}");
}

/// A container still in its health check's start period (`starting`) is
/// never a pass for a health step, and no failure for a trigger; an
/// exited one fires a trigger at once, whatever `consecutive_failures`.
#[test]
fn starting_is_not_a_pass_nor_a_trigger_failure_and_stopped_fires_at_once() {
    let probe = |ok, kind| Event::Probed {
        target: "docker:canary".into(),
        ok,
        detail: "container c health is starting".into(),
        kind,
    };
    let mut p = plan();
    p.steps = vec![step(
        "health",
        StepAction::Health {
            targets: vec!["docker:canary".into()],
            passes: 2,
            timeout: Duration::from_secs(30),
        },
    )];
    let (mut r, _fx, mut j) = start(p.clone());
    // starting, ok, starting, ok: never two passes in a row.
    for (at, ok) in [(1, false), (2, true), (3, false), (4, true)] {
        let kind = if ok {
            ProbeKind::Plain
        } else {
            ProbeKind::Starting
        };
        step_at(&mut r, &mut j, probe(ok, kind), at);
        assert_eq!(r.steps[0].status, StepStatus::Running, "at {at}");
    }
    step_at(&mut r, &mut j, probe(true, ProbeKind::Plain), 5);
    assert_eq!(r.steps[0].status, StepStatus::Passed);

    // A trigger with consecutive_failures = 1: starting never fires it …
    p.triggers.push(Trigger::Health {
        name: "canary container".into(),
        target: "docker:canary".into(),
        consecutive_failures: 1,
    });
    p.steps = vec![step("wait", StepAction::Pause { duration: None })];
    let (mut r, _fx, mut j) = start(p.clone());
    for at in 1..=20 {
        step_at(&mut r, &mut j, probe(false, ProbeKind::Starting), at);
    }
    assert!(
        !matches!(r.phase, Phase::RollingBack { .. }),
        "{:?}",
        r.phase
    );
    // … an ordinary failure (unhealthy) does.
    step_at(&mut r, &mut j, probe(false, ProbeKind::Plain), 21);
    assert!(
        matches!(r.phase, Phase::RollingBack { .. }),
        "{:?}",
        r.phase
    );

    // With consecutive_failures = 3: starting neither counts nor resets …
    p.triggers = vec![Trigger::Health {
        name: "canary container".into(),
        target: "docker:canary".into(),
        consecutive_failures: 3,
    }];
    let (mut r, _fx, mut j) = start(p.clone());
    step_at(&mut r, &mut j, probe(false, ProbeKind::Plain), 1);
    step_at(&mut r, &mut j, probe(false, ProbeKind::Starting), 2);
    step_at(&mut r, &mut j, probe(false, ProbeKind::Plain), 3);
    assert!(
        !matches!(r.phase, Phase::RollingBack { .. }),
        "{:?}",
        r.phase
    );
    step_at(&mut r, &mut j, probe(false, ProbeKind::Plain), 4);
    assert!(
        matches!(r.phase, Phase::RollingBack { .. }),
        "{:?}",
        r.phase
    );
    // … and an exited container fires at the first probe.
    let (mut r, _fx, mut j) = start(p);
    let mut exited = probe(false, ProbeKind::Stopped);
    if let Event::Probed { detail, .. } = &mut exited {
        *detail = "container c exited (exit code 137)".into();
    }
    step_at(&mut r, &mut j, exited, 1);
    let Phase::RollingBack { reason } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(reason.contains("exit code 137"), "{reason}");
}

#[test]
fn stale_action_results_are_ignored() {
    let (mut r, _fx, mut j) = start(plan());
    let before = r.clone();
    step_at(&mut r, &mut j, done(999, true), 1);
    assert_eq!(r, before);
}

#[test]
fn manual_weight_only_while_paused_and_confirmations_list_the_actions() {
    let (mut r, mut j) = to_analysis();
    let set = |w| {
        Event::Command(Issued {
            command: Command::SetWeight { weight: w },
            operator: "alice".into(),
            reason: None,
        })
    };
    assert!(
        run_ids(&step_at(&mut r, &mut j, set(25), 5)).is_empty(),
        "not while analysing"
    );
    step_at(
        &mut r,
        &mut j,
        Event::Command(Issued {
            command: Command::Pause,
            operator: "alice".into(),
            reason: None,
        }),
        6,
    );
    let planned = r.planned_actions(&Command::SetWeight { weight: 25 }, "alice", None);
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].0, "traffic");
    assert_eq!(planned[0].1["weight"], "25");
    let fx = step_at(&mut r, &mut j, set(25), 7);
    let runs = run_ids(&fx);
    assert_eq!(runs[0].2["weight"], "25");
    step_at(&mut r, &mut j, done(runs[0].0, true), 8);
    assert_eq!(r.weight, 25);
    assert!(matches!(r.phase, Phase::Paused { .. }), "still paused");
    let rb = r.planned_actions(&Command::Rollback, "alice", Some("p99 spike"));
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0].1["weight"], "0");
    assert_eq!(rb[0].1["reason"], "rollback by alice: p99 spike");
    assert_eq!(replay(&j).pop().unwrap(), r);
}

fn cmd(command: Command) -> Event {
    Event::Command(Issued {
        command,
        operator: "alice".into(),
        reason: None,
    })
}

fn weights(fx: &Effects) -> Vec<u8> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::Traffic { weight }) => Some(*weight),
            _ => None,
        })
        .collect()
}

#[test]
fn a_measurement_asked_for_before_a_traffic_change_never_counts() {
    let (mut r, mut j) = to_analysis();
    let fx = step_at(&mut r, &mut j, Event::Tick, 12);
    let asked = fx
        .iter()
        .find_map(|e| match e {
            Effect::Measure { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .expect("measured");
    // While it is in flight the operator pauses, sets 25 % and resumes.
    step_at(&mut r, &mut j, cmd(Command::Pause), 13);
    let run = run_ids(&step_at(
        &mut r,
        &mut j,
        cmd(Command::SetWeight { weight: 25 }),
        14,
    ))[0]
        .0;
    step_at(&mut r, &mut j, done(run, true), 15);
    step_at(&mut r, &mut j, cmd(Command::Resume), 16);
    assert_eq!(r.weight, 25);
    assert_eq!(r.steps[2].status, StepStatus::Running);
    // The answer (taken at 5 %) arrives: it counts for nothing.
    let m = match good("error-rate") {
        Event::Measured { measurement, .. } => measurement,
        _ => unreachable!(),
    };
    step_raw(
        &mut r,
        &mut j,
        Event::Measured {
            measurement: m.clone(),
            epoch: Some(asked),
        },
        17,
    );
    assert_eq!(r.checks["error-rate"].passes, 0, "stale evidence counted");
    assert!(r.checks["error-rate"].last.is_none());
    // Nor does an untagged one (journals of older versions).
    step_raw(
        &mut r,
        &mut j,
        Event::Measured {
            measurement: m,
            epoch: None,
        },
        18,
    );
    assert_eq!(r.checks["error-rate"].passes, 0);
    assert_eq!(replay(&j).pop().unwrap(), r);
}

#[test]
fn old_journal_lines_without_an_epoch_still_parse() {
    let line = r#"{"type":"measured","check":"error-rate","query":"q","canary":{"Ok":{"value":0.01,"requests":500.0}},"baseline":{"Err":"down"}}"#;
    let ev: Event = serde_json::from_str(line).unwrap();
    let Event::Measured { measurement, epoch } = &ev else {
        panic!("{ev:?}")
    };
    assert_eq!(measurement.check, "error-rate");
    assert_eq!(*epoch, None);
    let tagged = Event::Measured {
        measurement: measurement.clone(),
        epoch: Some(7),
    };
    let text = serde_json::to_string(&tagged).unwrap();
    assert!(text.contains(r#""epoch":7"#), "{text}");
    assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), tagged);
}

#[test]
fn the_first_counted_evaluation_comes_one_window_after_the_step_starts() {
    let mut p = plan();
    p.windows
        .insert("error-rate".into(), Duration::from_secs(60));
    if let StepAction::Analysis { duration, .. } = &mut p.steps[2].action {
        *duration = Duration::from_secs(120);
    }
    // The same check also guards as a trigger elsewhere: it keeps its cadence.
    let (mut r, fx, mut j) = start(p.clone());
    let fx = step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 1);
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 2);
    assert_eq!(r.current, 2);
    for at in [12, 30, 50, 61] {
        assert!(
            measures(&step_at(&mut r, &mut j, Event::Tick, at)).is_empty(),
            "measured at {at}s, inside the first window"
        );
    }
    assert_eq!(
        measures(&step_at(&mut r, &mut j, Event::Tick, 62)),
        vec!["error-rate"]
    );

    // A check that is also a rollback trigger is measured on its cadence,
    // but evaluations before the window is full do not count as passes.
    p.triggers.push(Trigger::Check {
        name: "errors".into(),
        check: "error-rate".into(),
    });
    let (mut r, fx, mut j) = start(p);
    let fx = step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 1);
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 2);
    for at in [12, 22, 32, 42, 52] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, good("error-rate"), at);
    }
    assert_eq!(r.checks["error-rate"].passes, 0);
    for at in [62, 72] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, good("error-rate"), at);
    }
    assert_eq!(r.checks["error-rate"].passes, 2);
    step_at(&mut r, &mut j, Event::Tick, 122);
    assert_eq!(r.steps[2].status, StepStatus::Passed);
}

#[test]
fn an_analysis_step_waits_for_a_counted_evaluation_in_flight_at_its_end() {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 12);
    step_at(&mut r, &mut j, good("error-rate"), 12);
    step_at(&mut r, &mut j, Event::Tick, 61);
    assert_eq!(measures(&step_at(&mut r, &mut j, Event::Tick, 22)).len(), 0);
    // Asked at 61, answered after the window's end at 62.
    let (mut r2, mut j2) = to_analysis();
    step_at(&mut r2, &mut j2, Event::Tick, 12);
    step_at(&mut r2, &mut j2, good("error-rate"), 12);
    assert_eq!(
        measures(&step_at(&mut r2, &mut j2, Event::Tick, 61)),
        vec!["error-rate"]
    );
    step_at(&mut r2, &mut j2, Event::Tick, 62);
    assert_eq!(
        r2.steps[2].status,
        StepStatus::Running,
        "waits for the answer"
    );
    assert!(matches!(r2.phase, Phase::Running));
    step_at(&mut r2, &mut j2, good("error-rate"), 63);
    step_at(&mut r2, &mut j2, Event::Tick, 63);
    assert_eq!(r2.steps[2].status, StepStatus::Passed);
    let _ = (r, j);
}

/// A plan whose only gate is a 30 s bake guarded by a `query` trigger.
fn bake_plan() -> Plan {
    let mut p = plan();
    let mut trig = check("rollback_when[0]");
    trig.min_requests = None;
    trig.min_samples = 1;
    trig.for_ = Duration::ZERO;
    trig.inconclusive_limit = crate::release::plan::TRIGGER_INCONCLUSIVE_LIMIT;
    p.checks.insert("rollback_when[0]".into(), trig);
    p.triggers.push(Trigger::Check {
        name: "errors > 5%".into(),
        check: "rollback_when[0]".into(),
    });
    p.steps = vec![
        step(
            "traffic 5%",
            StepAction::Traffic {
                action: "traffic".into(),
                weight: 5,
            },
        ),
        step(
            "bake",
            StepAction::Pause {
                duration: Some(Duration::from_secs(30)),
            },
        ),
    ];
    p
}

#[test]
fn a_bake_with_blind_triggers_never_passes_and_pauses_for_a_human() {
    let (mut r, fx, mut j) = start(bake_plan());
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 1);
    assert_eq!(r.current, 1);
    // The trigger's source answers nothing usable.
    for at in [11, 21] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, no_data("rollback_when[0]"), at);
    }
    step_at(&mut r, &mut j, Event::Tick, 31);
    assert_eq!(
        r.steps[1].status,
        StepStatus::Running,
        "the bake passed on time alone"
    );
    assert!(!r.is_finished());
    assert!(
        r.steps[1].detail.contains("errors > 5%"),
        "{}",
        r.steps[1].detail
    );
    step_at(&mut r, &mut j, no_data("rollback_when[0]"), 31);
    let Phase::Paused { reason, .. } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert!(
        reason.contains(
            "rollback trigger `errors > 5%` is blind: its query was inconclusive 3 times"
        ),
        "{reason}"
    );
    assert!(reason.contains("empty vector"), "{reason}");

    // With data, the bake passes once its time is up.
    let (mut r, fx, mut j) = start(bake_plan());
    step_at(&mut r, &mut j, done(run_ids(&fx)[0].0, true), 1);
    step_at(&mut r, &mut j, Event::Tick, 11);
    step_at(&mut r, &mut j, good("rollback_when[0]"), 11);
    step_at(&mut r, &mut j, Event::Tick, 31);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::Promoted,
            ..
        }
    ));
}

#[test]
fn query_triggers_have_a_finite_inconclusive_limit() {
    let text = r#"
service = "checkout"
[environment]
name = "staging"
[sources.prometheus]
url = "http://127.0.0.1:9"
[actions.traffic]
argv = ["true", "{weight}"]
[[checks]]
name = "error-rate"
query = 'sum(rate(errors{track="{track}"}[5m]))'
window = "5m"
interval = "30s"
min_samples = 2
max = 0.05
[plans.canary]
[[plans.canary.steps]]
kind = "traffic"
weight = 5
[[plans.canary.steps]]
kind = "analysis"
duration = "6m"
[[plans.canary.steps]]
kind = "analysis"
duration = "2m"
[[rollback]]
kind = "traffic"
weight = 0
[[rollback_when]]
query = 'sum(rate(errors{track="{track}"}[1m]))'
max = 0.2
"#;
    let cfg = crate::config::parse(text, std::path::Path::new("rolldeck.toml")).unwrap();
    let p = Plan::from_config(&cfg, None).unwrap();
    let trig = &p.checks[&crate::release::plan::trigger_check_name(0)];
    assert_eq!(
        trig.inconclusive_limit,
        crate::release::plan::TRIGGER_INCONCLUSIVE_LIMIT
    );
    assert_eq!(p.window("error-rate"), Duration::from_secs(300));
    // `rolldeck check` warns about the 2 m one, not the 6 m one.
    let w = p.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("step 3"), "{}", w[0]);
    assert!(
        w[0].contains("window 5m + 2 × interval 30s = 6m"),
        "{}",
        w[0]
    );
}

/// Paused at 5 % in the analysis step with a manual weight change of 50 %
/// in flight; returns its run id.
fn manual_weight_in_flight() -> (Release, Vec<Record>, u64) {
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, cmd(Command::Pause), 5);
    let fx = step_at(&mut r, &mut j, cmd(Command::SetWeight { weight: 50 }), 6);
    let run = run_ids(&fx)[0].0;
    (r, j, run)
}

#[test]
fn a_rollback_waits_for_a_manual_weight_change_and_no_weight_lands_after_it() {
    let (mut r, mut j, manual) = manual_weight_in_flight();
    let fx = step_at(&mut r, &mut j, cmd(Command::Rollback), 7);
    assert!(fx.contains(&Effect::CancelAction { run: manual }), "{fx:?}");
    assert!(
        run_ids(&fx).is_empty(),
        "the rollback's traffic action races the manual one"
    );
    // The manual change ends (killed, or it got through first).
    let fx = step_at(&mut r, &mut j, done(manual, true), 8);
    let Phase::RollingBack { .. } = r.phase else {
        panic!("{:?}", r.phase)
    };
    let rb = run_ids(&fx);
    assert_eq!(rb[0].2["weight"], "0");
    let fx = step_at(&mut r, &mut j, done(rb[0].0, true), 9);
    assert_eq!(weights(&fx), vec![0]);
    assert_eq!(r.weight, 0);
    assert!(matches!(
        r.phase,
        Phase::Finished {
            outcome: Outcome::RolledBack,
            ..
        }
    ));
    assert_eq!(replay(&j).pop().unwrap(), r);

    // A trigger's rollback waits the same way.
    let (mut r, mut j, manual) = manual_weight_in_flight();
    let fx = step_at(&mut r, &mut j, cmd(Command::Abort), 7);
    assert!(fx.contains(&Effect::CancelAction { run: manual }));
    let fx = step_at(&mut r, &mut j, done(manual, true), 8);
    assert!(weights(&fx).is_empty(), "a weight landed after the abort");
}

#[test]
fn after_a_restart_manual_weight_works_again() {
    let (r, j, _manual) = manual_weight_in_flight();
    let mut resumed = replay(&j).pop().unwrap();
    assert_eq!(resumed, r);
    let fx = resumed.apply(&Event::Resumed, t(100));
    assert!(resumed.manual_weight.is_none());
    assert!(
        fx.iter().any(|e| matches!(e,
            Effect::Notify(Notice::ManualAction { ok: false, detail, .. }) if detail.contains("may be 50%"))),
        "{fx:?}"
    );
    assert!(resumed.can(&Command::SetWeight { weight: 30 }).is_ok());
    let fx = resumed.apply(&cmd(Command::SetWeight { weight: 30 }), t(101));
    assert_eq!(run_ids(&fx)[0].2["weight"], "30");
}

#[test]
fn can_is_what_apply_does() {
    // Every command in a few states: refused ⇔ the state does not change.
    let mut states = Vec::new();
    let (r, _) = to_analysis();
    states.push(r.clone());
    let (r2, _, _) = manual_weight_in_flight();
    states.push(r2);
    let mut paused = r.clone();
    paused.apply(&cmd(Command::Pause), t(5));
    states.push(paused);
    let mut rolling = r.clone();
    rolling.apply(&cmd(Command::Rollback), t(5));
    states.push(rolling);
    let (waiting, _, _) = start({
        let mut p = plan();
        p.steps.swap(0, 3);
        p
    });
    states.push(waiting);
    let all = [
        Command::Approve,
        Command::Pause,
        Command::Resume,
        Command::Promote,
        Command::PromoteFull,
        Command::Retry,
        Command::Rollback,
        Command::Abort,
        Command::SetWeight { weight: 20 },
        Command::SetWeight { weight: 101 },
    ];
    for s in &states {
        for c in &all {
            let mut after = s.clone();
            after.apply(&cmd(c.clone()), t(6));
            let mut ticked = s.clone();
            ticked.apply(&Event::Tick, t(6));
            assert_eq!(
                s.can(c).is_ok(),
                after != ticked,
                "{c:?} in {:?}: can = {:?}",
                s.phase,
                s.can(c)
            );
        }
    }
    // Abort stops a running rollback; a second rollback is refused with why.
    let mut rolling = r.clone();
    rolling.apply(&cmd(Command::Rollback), t(5));
    assert!(rolling.can(&Command::Abort).is_ok());
    assert_eq!(
        rolling.can(&Command::Rollback).unwrap_err().to_string(),
        "the rollback is already running"
    );
    // While a manual weight change runs, nothing moves the release forward.
    let (m, _, _) = manual_weight_in_flight();
    assert!(
        m.can(&Command::Resume)
            .unwrap_err()
            .0
            .contains("manual weight change is running")
    );
}

#[test]
fn the_safe_direction_is_rollback_pause_abort_and_lower_weights() {
    let (r, _) = to_analysis();
    assert_eq!(r.weight, 5);
    for c in [Command::Rollback, Command::Pause, Command::Abort] {
        assert!(r.is_safe_direction(&c), "{c:?}");
    }
    assert!(r.is_safe_direction(&Command::SetWeight { weight: 0 }));
    assert!(r.is_safe_direction(&Command::SetWeight { weight: 5 }));
    assert!(!r.is_safe_direction(&Command::SetWeight { weight: 6 }));
    for c in [
        Command::Promote,
        Command::PromoteFull,
        Command::Resume,
        Command::Approve,
        Command::Retry,
    ] {
        assert!(!r.is_safe_direction(&c), "{c:?}");
    }
}

/// Property tests: arbitrary, realistic interleavings of what the runtime
/// and operators do (answers to the engine's own requests, late answers,
/// hostile values, commands, restarts), checked against an independent
/// oracle of the safety rules.
mod props {
    use super::*;
    use crate::release::analysis::Unit;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const WINDOW: u64 = 20;
    const TRIGGER: &str = "rollback_when[0]";

    fn prop_plan() -> Plan {
        let mut p = plan();
        let mut c = check("error-rate");
        c.unit = Some(Unit::Ratio);
        c.for_ = Duration::from_secs(10);
        let mut trig = check(TRIGGER);
        trig.unit = Some(Unit::Ratio);
        trig.max = Some(0.2);
        trig.min_requests = None;
        trig.min_samples = 1;
        trig.for_ = Duration::ZERO;
        trig.inconclusive_limit = crate::release::plan::TRIGGER_INCONCLUSIVE_LIMIT;
        p.checks = [("error-rate".to_string(), c), (TRIGGER.to_string(), trig)].into();
        p.windows = [
            ("error-rate".to_string(), Duration::from_secs(WINDOW)),
            (TRIGGER.to_string(), Duration::from_secs(WINDOW)),
        ]
        .into();
        // `error-rate` also guards as a trigger, so it is measured on its
        // cadence from the step's start (early samples must not count).
        p.triggers = vec![
            Trigger::Check {
                name: "errors".into(),
                check: TRIGGER.into(),
            },
            Trigger::Check {
                name: "error rate".into(),
                check: "error-rate".into(),
            },
        ];
        let analysis = |w: u64| {
            step(
                &format!("analysis {w}"),
                StepAction::Analysis {
                    checks: vec!["error-rate".into()],
                    duration: Duration::from_secs(45),
                },
            )
        };
        let traffic = |w: u8| {
            step(
                &format!("traffic {w}%"),
                StepAction::Traffic {
                    action: "traffic".into(),
                    weight: w,
                },
            )
        };
        p.steps = vec![
            traffic(5),
            analysis(5),
            step(
                "bake",
                StepAction::Pause {
                    duration: Some(Duration::from_secs(20)),
                },
            ),
            traffic(50),
            analysis(50),
            step(
                "approval",
                StepAction::Approval {
                    message: "100%?".into(),
                },
            ),
            traffic(100),
        ];
        p
    }

    /// What a source answers.
    #[derive(Debug, Clone, Copy)]
    enum V {
        Good,
        Zero,
        Bad,
        NaN,
        PosInf,
        NegInf,
        Negative,
        Huge,
        Missing,
        LowTraffic,
    }

    impl V {
        fn track(self) -> crate::release::analysis::TrackResult {
            let (value, requests) = match self {
                V::Good => (0.01, 500.0),
                V::Zero => (0.0, 500.0),
                V::Bad => (0.5, 500.0),
                V::NaN => (f64::NAN, 500.0),
                V::PosInf => (f64::INFINITY, 500.0),
                V::NegInf => (f64::NEG_INFINITY, 500.0),
                V::Negative => (-5.0, 500.0),
                V::Huge => (1e300, 1e300),
                V::Missing => return Err("no data: empty vector".into()),
                V::LowTraffic => (0.01, 3.0),
            };
            Ok(Reading {
                value,
                requests: Some(requests),
            })
        }
        /// The oracle's own judgement: a passing sample of `error-rate`.
        fn passes(self) -> bool {
            matches!(self, V::Good | V::Zero)
        }
        /// The oracle's own judgement: data the trigger (no `min_requests`)
        /// can judge.
        fn conclusive(self) -> bool {
            matches!(self, V::Good | V::Zero | V::Bad | V::LowTraffic)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u8),
        Answer(usize, V),
        Finish(usize, bool),
        Late(usize, V, bool),
        Command(Command),
        Restart,
    }

    fn value() -> impl Strategy<Value = V> {
        prop_oneof![
            12 => Just(V::Good),
            2 => Just(V::Zero),
            1 => Just(V::Bad),
            1 => Just(V::NaN),
            1 => Just(V::PosInf),
            1 => Just(V::NegInf),
            1 => Just(V::Negative),
            1 => Just(V::Huge),
            1 => Just(V::Missing),
            1 => Just(V::LowTraffic),
        ]
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            6 => Just(Command::Approve),
            4 => Just(Command::Resume),
            3 => Just(Command::Pause),
            1 => Just(Command::Promote),
            1 => Just(Command::Retry),
            2 => Just(Command::Rollback),
            1 => Just(Command::PromoteFull),
            1 => Just(Command::Abort),
            5 => (0u8..=110).prop_map(|weight| Command::SetWeight { weight }),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (1u8..15).prop_map(Op::Advance),
            10 => (any::<usize>(), value()).prop_map(|(i, v)| Op::Answer(i, v)),
            6 => (any::<usize>(), prop_oneof![9 => Just(true), 1 => Just(false)])
                .prop_map(|(i, ok)| Op::Finish(i, ok)),
            1 => (any::<usize>(), value(), any::<bool>()).prop_map(|(i, v, t)| Op::Late(i, v, t)),
            3 => command().prop_map(Op::Command),
            1 => Just(Op::Restart),
        ]
    }

    /// The runtime and the oracle.
    struct Sim {
        r: Release,
        now: i64,
        /// Outstanding actions: run id.
        actions: Vec<u64>,
        /// Outstanding measurements: (check, epoch, asked at).
        measures: Vec<(String, u64, i64)>,
        /// Requests whose answers died with a restart (delivered late by `Late`).
        lost: Vec<(String, u64, i64)>,
        lost_actions: Vec<u64>,
        /// Run id → the rollback step's weight, for rollback traffic actions.
        rollback_runs: BTreeMap<u64, Option<u8>>,
        rollback_started: bool,
        /// Plan step → (start time of the latest attempt).
        started: BTreeMap<usize, i64>,
        /// Latest weight change.
        weight_changed_at: i64,
        /// Plan step → counted passing samples of `error-rate` in its latest attempt.
        evidence: BTreeMap<usize, u32>,
        /// Plan step → conclusive trigger answers in its latest attempt.
        trigger_seen: BTreeMap<usize, u32>,
        /// Plan step → seconds it ran (release running, not paused) in its
        /// latest attempt.
        ran: BTreeMap<usize, i64>,
        /// The latest resume by a command or a restart.
        resumed_at: i64,
        promoted: bool,
    }

    impl Sim {
        fn new() -> Sim {
            let ev = Event::Start {
                id: "p".into(),
                service: "s".into(),
                environment: "prod".into(),
                version: None,
                plan: Box::new(prop_plan()),
            };
            let (r, fx) = Release::start(&ev, t(0)).unwrap();
            let mut s = Sim {
                r,
                now: 0,
                actions: vec![],
                measures: vec![],
                lost: vec![],
                lost_actions: vec![],
                rollback_runs: BTreeMap::new(),
                rollback_started: false,
                started: BTreeMap::new(),
                weight_changed_at: 0,
                evidence: BTreeMap::new(),
                trigger_seen: BTreeMap::new(),
                ran: BTreeMap::new(),
                resumed_at: 0,
                promoted: false,
            };
            s.effects(&fx, None).unwrap();
            s
        }

        fn current_running(&self, kind: fn(&StepAction) -> bool) -> Option<usize> {
            let i = self.r.current;
            (!matches!(
                self.r.phase,
                Phase::RollingBack { .. } | Phase::Finished { .. }
            ) && self.r.steps.get(i)?.status == StepStatus::Running
                && kind(&self.r.plan.steps[i].action))
            .then_some(i)
        }

        /// Applies an event and checks its effects; `finished_run` is the
        /// action run the event answers, if any.
        fn apply(&mut self, ev: Event, finished_run: Option<u64>) -> Result<(), TestCaseError> {
            let fx = self.r.apply(&ev, t(self.now));
            self.effects(&fx, finished_run)
        }

        fn effects(&mut self, fx: &Effects, finished: Option<u64>) -> Result<(), TestCaseError> {
            for e in fx {
                match e {
                    Effect::RunAction { run, step, .. } => {
                        self.actions.push(*run);
                        if step.rollback {
                            let w = match &self.r.plan.rollback[step.index].action {
                                StepAction::Traffic { weight, .. } => Some(*weight),
                                _ => None,
                            };
                            self.rollback_runs.insert(*run, w);
                        }
                    }
                    Effect::Measure { check, epoch } => {
                        self.measures.push((check.clone(), *epoch, self.now))
                    }
                    Effect::Notify(Notice::RollbackStarted { .. }) => self.rollback_started = true,
                    Effect::Notify(Notice::Traffic { weight }) => {
                        self.weight_changed_at = self.now;
                        if self.rollback_started {
                            let by_rollback = finished
                                .and_then(|r| self.rollback_runs.get(&r))
                                .is_some_and(|w| *w == Some(*weight));
                            prop_assert!(
                                by_rollback,
                                "weight {weight}% set after the rollback started"
                            );
                        }
                    }
                    Effect::Notify(Notice::StepStarted {
                        step,
                        rollback: false,
                        ..
                    }) => {
                        self.started.insert(*step, self.now);
                        self.evidence.insert(*step, 0);
                        self.trigger_seen.insert(*step, 0);
                        self.ran.insert(*step, 0);
                    }
                    Effect::Notify(Notice::StepFinished {
                        step,
                        status: StepStatus::Passed,
                        rollback: false,
                        ..
                    }) => {
                        let def = &self.r.plan.steps[*step];
                        // Time spent paused never counts toward a window.
                        let need = match &def.action {
                            StepAction::Analysis { duration, .. }
                            | StepAction::Pause {
                                duration: Some(duration),
                            } => duration.as_secs() as i64,
                            _ => 0,
                        };
                        let ran = self.ran.get(step).copied().unwrap_or(0);
                        prop_assert!(
                            ran >= need,
                            "step {step} passed after running {ran}s of {need}s"
                        );
                        match &def.action {
                            StepAction::Analysis { .. } => {
                                let n = self.evidence.get(step).copied().unwrap_or(0);
                                prop_assert!(
                                    n >= 2,
                                    "analysis step {step} passed with {n} counted passes"
                                );
                                prop_assert!(
                                    self.trigger_seen.get(step).copied().unwrap_or(0) > 0,
                                    "analysis step {step} passed with a blind trigger"
                                );
                            }
                            StepAction::Pause { .. } => prop_assert!(
                                self.trigger_seen.get(step).copied().unwrap_or(0) > 0,
                                "bake step {step} passed with a blind trigger"
                            ),
                            _ => {}
                        }
                    }
                    Effect::Notify(Notice::ReleaseFinished {
                        outcome: Outcome::Promoted,
                        ..
                    }) => {
                        prop_assert!(!self.rollback_started, "promoted after a rollback");
                        self.promoted = true;
                    }
                    _ => {}
                }
            }
            Ok(())
        }

        fn measurement(check: &str, v: V) -> Measurement {
            Measurement {
                check: check.into(),
                query: "q".into(),
                canary: v.track(),
                baseline: Ok(Reading {
                    value: 0.01,
                    requests: Some(5000.0),
                }),
            }
        }

        fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
            match op {
                Op::Advance(s) => {
                    if matches!(self.r.phase, Phase::Running)
                        && let Some(i) = self.current_running(|a| {
                            matches!(a, StepAction::Analysis { .. } | StepAction::Pause { .. })
                        })
                    {
                        *self.ran.entry(i).or_default() += i64::from(s);
                    }
                    self.now += i64::from(s);
                    self.apply(Event::Tick, None)
                }
                Op::Answer(i, v) => {
                    if self.measures.is_empty() {
                        return Ok(());
                    }
                    let (check, epoch, asked) = self.measures.remove(i % self.measures.len());
                    // The oracle's count: a passing sample asked for one
                    // window after the analysis step started, with no
                    // traffic change since it was asked.
                    if let Some(i) =
                        self.current_running(|a| matches!(a, StepAction::Analysis { .. }))
                        && check == "error-rate"
                        && v.passes()
                        && asked >= self.started[&i] + WINDOW as i64
                        && self.weight_changed_at <= asked
                        && asked >= self.resumed_at
                        && matches!(self.r.phase, Phase::Running)
                    {
                        *self.evidence.entry(i).or_default() += 1;
                    }
                    if let Some(i) = self.current_running(|a| {
                        matches!(a, StepAction::Analysis { .. } | StepAction::Pause { .. })
                    }) && check == TRIGGER
                        && v.conclusive()
                        && asked >= self.started[&i]
                    {
                        *self.trigger_seen.entry(i).or_default() += 1;
                    }
                    self.apply(
                        Event::Measured {
                            measurement: Self::measurement(&check, v),
                            epoch: Some(epoch),
                        },
                        None,
                    )
                }
                Op::Finish(i, ok) => {
                    if self.actions.is_empty() {
                        return Ok(());
                    }
                    let run = self.actions.remove(i % self.actions.len());
                    self.apply(
                        Event::ActionFinished {
                            run,
                            ok,
                            detail: "done".into(),
                            unaudited: false,
                        },
                        Some(run),
                    )
                }
                Op::Late(i, v, tagged) => {
                    if !self.lost_actions.is_empty() && i % 2 == 0 {
                        let run = self.lost_actions.remove(i % self.lost_actions.len());
                        return self.apply(
                            Event::ActionFinished {
                                run,
                                ok: tagged,
                                detail: "late".into(),
                                unaudited: false,
                            },
                            Some(run),
                        );
                    }
                    if self.lost.is_empty() {
                        return Ok(());
                    }
                    let (check, epoch, _) = self.lost.remove(i % self.lost.len());
                    self.apply(
                        Event::Measured {
                            measurement: Self::measurement(&check, v),
                            epoch: tagged.then_some(epoch),
                        },
                        None,
                    )
                }
                Op::Command(command) => {
                    // `can` is what the engine does: refused ⇔ no effect.
                    let allowed = self.r.can(&command).is_ok();
                    if allowed && command == Command::Resume {
                        self.resumed_at = self.now;
                    }
                    let mut ticked = self.r.clone();
                    ticked.apply(&Event::Tick, t(self.now));
                    self.apply(
                        Event::Command(Issued {
                            command: command.clone(),
                            operator: "op".into(),
                            reason: None,
                        }),
                        None,
                    )?;
                    // (Compared as text: a NaN in a verdict is never == itself.)
                    prop_assert_eq!(
                        allowed,
                        format!("{:?}", self.r) != format!("{ticked:?}"),
                        "{:?}: can = {:?}",
                        command,
                        allowed
                    );
                    Ok(())
                }
                Op::Restart => {
                    // The old process's requests never answer (until `Late`).
                    self.lost.append(&mut self.measures);
                    self.lost_actions.append(&mut self.actions);
                    self.resumed_at = self.now;
                    self.apply(Event::Resumed, None)
                }
            }
        }
    }

    static PROMOTED: AtomicUsize = AtomicUsize::new(0);
    static CASES: AtomicUsize = AtomicUsize::new(0);

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut sim = Sim::new();
        for op in ops {
            if sim.r.is_finished() {
                break;
            }
            let before_weight = sim.r.weight;
            let rolling = sim.rollback_started;
            sim.step(op)?;
            if rolling && sim.r.weight != before_weight {
                let w = sim.r.weight;
                prop_assert!(
                    sim.r.plan.rollback.iter().any(|s| matches!(
                        s.action,
                        StepAction::Traffic { weight, .. } if weight == w
                    )),
                    "weight {w}% after the rollback started"
                );
            }
        }
        CASES.fetch_add(1, Ordering::Relaxed);
        if sim.promoted {
            PROMOTED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    #[test]
    fn no_promotion_without_evidence_no_weight_after_rollback_no_blind_bake() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 400,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&proptest::collection::vec(op(), 50..400), run);
        if let Err(e) = result {
            panic!("{e}");
        }
        let (p, n) = (
            PROMOTED.load(Ordering::Relaxed),
            CASES.load(Ordering::Relaxed),
        );
        eprintln!("{p} of {n} runs promoted");
        assert!(
            p * 20 >= n,
            "only {p} of {n} runs promoted: the property is vacuous"
        );
    }
}

#[test]
fn resume_passes_a_pause_step_that_waits_for_resume() {
    let mut p = plan();
    p.steps
        .insert(1, step("hold", StepAction::Pause { duration: None }));
    let (mut r, fx, mut j) = start(p);
    let (run, _, _) = run_ids(&fx)[0].clone();
    step_at(&mut r, &mut j, done(run, true), 1);
    assert!(matches!(r.phase, Phase::Paused { .. }), "{:?}", r.phase);
    assert_eq!(r.current, 1);
    step_at(&mut r, &mut j, cmd(Command::Resume), 2);
    assert_eq!(r.steps[1].status, StepStatus::Passed, "{:?}", r.steps[1]);
    assert!(
        r.steps[1].detail.contains("resumed by"),
        "{}",
        r.steps[1].detail
    );
    assert!(matches!(r.phase, Phase::Running), "{:?}", r.phase);
    assert_eq!(r.current, 2, "the plan goes on to the next step");
    // Replaying the journal gives the same state.
    let replayed = replay(&j).pop().unwrap();
    assert!(replayed.same_state(&r));
}

#[test]
fn a_nan_in_a_stored_verdict_is_not_a_change() {
    let (mut r, _fx, _j) = start(plan());
    let mut v = crate::release::analysis::Verdict {
        check: "error-rate".into(),
        verdict: crate::release::analysis::VerdictKind::Inconclusive,
        reason: "inconclusive: NaN".into(),
        query: "q".into(),
        canary: Some(f64::NAN),
        baseline: Some(f64::NAN),
        condition: "<= 5 %".into(),
        requests: (Some(0.0), Some(0.0)),
        error: None,
        pending: false,
        violated_since: None,
        at: t(1),
    };
    r.checks.get_mut("error-rate").unwrap().last = Some(v.clone());
    let before = r.clone();
    assert!(before != r, "NaN != NaN: `==` alone calls this a change");
    assert!(before.same_state(&r));
    v.canary = Some(0.5);
    r.checks.get_mut("error-rate").unwrap().last = Some(v);
    assert!(!before.same_state(&r), "a real change is still a change");
}

#[test]
fn an_action_that_ran_but_was_not_audited_pauses_the_release() {
    let (mut r, fx, mut j) = start(plan());
    let (run, _, _) = run_ids(&fx)[0].clone();
    let fx = step_at(
        &mut r,
        &mut j,
        Event::ActionFinished {
            run,
            ok: false,
            detail: "exit 0; audit log write failed (audit.jsonl): No space left on device".into(),
            unaudited: true,
        },
        1,
    );
    let Phase::Paused { reason, danger } = &r.phase else {
        panic!("an unaudited action must pause, got {:?}", r.phase)
    };
    assert!(*danger, "an unaudited action is a danger, not a wait");
    assert!(
        reason.contains("audit log could not be written"),
        "{reason}"
    );
    assert_eq!(r.steps[0].status, StepStatus::Failed);
    assert!(
        run_ids(&fx).is_empty(),
        "nothing else runs (no rollback) before a human looked: {fx:?}"
    );
    assert_eq!(r.weight, 0);
    // The same answer without the flag is an ordinary failure: rollback.
    let (mut r2, fx2, mut j2) = start(plan());
    let (run2, _, _) = run_ids(&fx2)[0].clone();
    step_at(&mut r2, &mut j2, done(run2, false), 1);
    assert!(
        matches!(r2.phase, Phase::RollingBack { .. }),
        "{:?}",
        r2.phase
    );
}

/// Drives `to_analysis` to two counted passes (asked at 12 and 22), then
/// pauses at 30: 32 s of the 60 s window are left.
fn paused_with_32s_left() -> (Release, Vec<Record>) {
    let (mut r, mut j) = to_analysis();
    for at in [12, 22] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, good("error-rate"), at);
    }
    assert_eq!(r.checks["error-rate"].passes, 2);
    assert_eq!(r.steps[2].deadline, Some(t(62)));
    step_at(&mut r, &mut j, cmd(Command::Pause), 30);
    (r, j)
}

#[test]
fn a_pause_stops_the_steps_clock_and_a_resume_goes_on_with_the_time_left() {
    let (mut r, mut j) = paused_with_32s_left();
    assert_eq!(r.steps[2].deadline, None);
    assert_eq!(
        r.steps[2].frozen.map(|f| f.left_ms),
        Some(32_000),
        "{:?}",
        r.steps[2]
    );
    assert_eq!(r.eta_s(t(30)), 32.0);
    assert_eq!(r.position_words(t(30)), "step 3/5, paused, 30s left");
    // An hour paused, with passing evaluations: nothing passes, the time
    // left stands still, and what was measured while paused is not counted.
    for at in [40, 1000, 3630] {
        step_at(&mut r, &mut j, Event::Tick, at);
        step_at(&mut r, &mut j, good("error-rate"), at);
    }
    assert_eq!(r.steps[2].status, StepStatus::Running);
    assert!(matches!(r.phase, Phase::Paused { .. }));
    assert_eq!(r.checks["error-rate"].passes, 2, "counted while paused");
    assert_eq!(r.eta_s(t(3630)), 32.0);
    // Resume at 3700: the window ends 32 s later, not at once.
    let epoch = r.epoch;
    step_at(&mut r, &mut j, cmd(Command::Resume), 3700);
    assert_eq!(r.steps[2].deadline, Some(t(3732)));
    assert_eq!(r.steps[2].frozen, None);
    assert_eq!(r.steps[2].attempts, 1, "not started again");
    assert_eq!(r.epoch, epoch + 1, "a new evidence epoch");
    assert_eq!(r.eta_s(t(3700)), 32.0);
    step_at(&mut r, &mut j, Event::Tick, 3731);
    assert_eq!(r.steps[2].status, StepStatus::Running);
    step_at(&mut r, &mut j, good("error-rate"), 3731);
    step_at(&mut r, &mut j, Event::Tick, 3732);
    assert_eq!(r.steps[2].status, StepStatus::Passed);
    assert_eq!(replay(&j).pop().unwrap(), r, "replay gives the same state");
}

#[test]
fn after_a_resume_only_evidence_asked_for_after_it_counts() {
    let (mut r, mut j) = paused_with_32s_left();
    // Asked while paused, answered after the resume: counts for nothing,
    // even as the answer to the outstanding request.
    let fx = step_at(&mut r, &mut j, Event::Tick, 40);
    assert_eq!(measures(&fx), vec!["error-rate"]);
    step_at(&mut r, &mut j, cmd(Command::Resume), 45);
    let last = r.checks["error-rate"].last.clone();
    step_at(&mut r, &mut j, bad("error-rate"), 46);
    assert_eq!(r.checks["error-rate"].last, last, "stale answer used");
    assert_eq!(r.steps[2].status, StepStatus::Running);
    // The window's end waits for a counted evaluation asked after the
    // resume; a failing one fails the step.
    let fx = step_at(&mut r, &mut j, Event::Tick, 56);
    assert_eq!(measures(&fx), vec!["error-rate"]);
    step_at(&mut r, &mut j, bad("error-rate"), 56);
    assert!(
        r.checks["error-rate"]
            .last
            .as_ref()
            .is_some_and(|v| v.pending)
    );
    step_at(&mut r, &mut j, Event::Tick, 77);
    assert_eq!(
        r.steps[2].status,
        StepStatus::Running,
        "pending holds it open"
    );
    assert_eq!(replay(&j).pop().unwrap(), r);
}

#[test]
fn a_step_whose_time_ran_out_or_whose_weight_changed_while_paused_starts_again() {
    // The window ended without enough passes: paused with no time left.
    let (mut r, mut j) = to_analysis();
    step_at(&mut r, &mut j, Event::Tick, 62);
    assert!(matches!(r.phase, Phase::Paused { .. }));
    assert_eq!(r.steps[2].frozen, None);
    // What the step will take once resumed: its whole window.
    assert_eq!(r.position_words(t(100)), "step 3/5, paused, 1m left");
    step_at(&mut r, &mut j, cmd(Command::Resume), 100);
    assert_eq!(r.steps[2].attempts, 2);
    assert_eq!(r.steps[2].deadline, Some(t(160)));

    // The weight was set by hand while paused: the evidence before is for
    // another weight, so the step starts again.
    let (mut r, mut j) = paused_with_32s_left();
    let run = run_ids(&step_at(
        &mut r,
        &mut j,
        cmd(Command::SetWeight { weight: 25 }),
        31,
    ))[0]
        .0;
    step_at(&mut r, &mut j, done(run, true), 32);
    assert_eq!(r.position_words(t(40)), "step 3/5, paused, 1m left");
    step_at(&mut r, &mut j, cmd(Command::Resume), 40);
    assert_eq!(r.steps[2].attempts, 2);
    assert_eq!(r.steps[2].deadline, Some(t(100)));
    assert_eq!(r.checks["error-rate"].passes, 0);
    assert_eq!(replay(&j).pop().unwrap(), r);
}

#[test]
fn a_journal_without_frozen_clocks_still_loads() {
    let (r, _) = paused_with_32s_left();
    let mut v = serde_json::to_value(&r).unwrap();
    let steps = v["steps"].as_array_mut().unwrap();
    assert!(steps[2].get("frozen").is_some());
    steps[2].as_object_mut().unwrap().remove("frozen");
    let back: Release = serde_json::from_value(v).unwrap();
    assert_eq!(back.steps[2].frozen, None);
    assert!(
        serde_json::to_value(&r.steps[0])
            .unwrap()
            .get("frozen")
            .is_none()
    );
}
