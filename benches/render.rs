//! Rendering the full cockpit at 160x48 with full data: 12 plan steps, 10
//! checks with 120-point charts, 10 000 log lines, 200 actions.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rolldeck::config::OnFailure;
use rolldeck::redact::Redactor;
use rolldeck::release::analysis::{CheckDef, Measurement, Reading};
use rolldeck::release::engine::{Event, Release};
use rolldeck::release::plan::{Plan, Step, StepAction};
use rolldeck::runtime::DriverEvent;
use rolldeck::tui::app::{App, Msg, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::logs::{Level, LogLine, LogSource};
use rolldeck::tui::theme::Theme;
use std::collections::BTreeMap;
use std::time::Duration;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_900_000_000 + s).unwrap()
}

fn app() -> App {
    let names: Vec<String> = (0..10).map(|i| format!("check-{i}")).collect();
    let mut steps = Vec::new();
    for w in [1u8, 5, 10, 25, 50, 75] {
        steps.push(Step {
            name: format!("traffic {w}%"),
            action: StepAction::Traffic {
                action: "traffic".into(),
                weight: w,
            },
            on_failure: OnFailure::Rollback,
            idempotent: true,
        });
        steps.push(Step {
            name: "analysis 10m".into(),
            action: StepAction::Analysis {
                checks: names.clone(),
                duration: Duration::from_secs(600),
            },
            on_failure: OnFailure::Rollback,
            idempotent: true,
        });
    }
    let checks = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                CheckDef {
                    name: n.clone(),
                    max: Some(0.05),
                    min: None,
                    max_increase: Some(0.01),
                    max_ratio: None,
                    min_baseline: None,
                    unit: None,
                    interval: Duration::from_secs(5),
                    for_: Duration::from_secs(60),
                    min_samples: 3,
                    min_requests: None,
                    inconclusive_limit: 5,
                },
            )
        })
        .collect();
    let plan = Plan {
        name: "canary".into(),
        steps,
        rollback: vec![],
        checks,
        triggers: vec![],
        health_intervals: BTreeMap::new(),
        windows: BTreeMap::new(),
    };
    let start = Event::Start {
        id: "bench".into(),
        service: "checkout".into(),
        environment: "production".into(),
        version: Some("1".into()),
        plan: Box::new(plan),
    };
    let (mut r, _) = Release::start(&start, t(0)).unwrap();
    r.apply(
        &Event::ActionFinished {
            run: 1,
            ok: true,
            detail: "ok".into(),
            unaudited: false,
        },
        t(1),
    );
    let mut app = App::new(
        "checkout".into(),
        "production".into(),
        true,
        Role::Driver,
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        BTreeMap::new(),
        Redactor::default(),
        "bench".into(),
        t(700),
    );
    for i in 0..120i64 {
        let at = t(6 + i * 5);
        r.apply(&Event::Tick, at);
        for n in &names {
            r.apply(
                &Event::Measured {
                    epoch: Some(r.epoch),
                    measurement: Measurement {
                        check: n.clone(),
                        query: format!("sum(rate(x{{track=\"canary\",check=\"{n}\"}}[1m]))"),
                        canary: Ok(Reading {
                            value: 0.01 + (i % 7) as f64 * 0.001,
                            requests: Some(500.0),
                        }),
                        baseline: Ok(Reading {
                            value: 0.01,
                            requests: Some(5000.0),
                        }),
                    },
                },
                at,
            );
        }
        app.update(Msg::Driver(DriverEvent::State(Box::new(r.clone()))));
    }
    for i in 0..10_000 {
        app.update(Msg::Log(LogLine {
            ts: t(i / 10),
            source: LogSource::Action("traffic".into()),
            level: if i % 50 == 0 {
                Level::Warn
            } else {
                Level::Info
            },
            text: format!("line {i}: kubectl output with some words in it"),
        }));
    }
    let records = (0..200)
        .map(|i| rolldeck::exec::AuditRecord {
            ts: t(i).to_string(),
            operator: rolldeck::exec::Operator {
                user: "alice".into(),
                host: "bastion".into(),
                ssh_client: Some("10.0.0.5".into()),
                tty: Some("/dev/pts/3".into()),
            },
            action: format!("action-{i}"),
            release: Some("bench".into()),
            step: Some(format!("step {i}")),
            rendered: "kubectl set-weight checkout 5".into(),
            exit_code: Some(0),
            http_status: None,
            ok: i % 9 != 0,
            duration_s: 0.5,
            detail: "exit 0".into(),
            reason: None,
            run_id: None,
        })
        .collect();
    app.update(Msg::Audit(records));
    app
}

fn render(c: &mut Criterion) {
    let app = app();
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    c.bench_function("render full cockpit 160x48", |b| {
        b.iter(|| {
            term.draw(|f| rolldeck::tui::ui::draw(f, &app)).unwrap();
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
