//! The Canary pane's numbers and chart, and the pipeline's progress words,
//! drawn from a release with history into ratatui's `TestBackend`: values
//! in their unit (`11.9 %`, `45 ms`, `36 / 759 req`), the selected check's
//! time-series chart at 160x48 and 80x24 (insta snapshots), markers that
//! tell canary from baseline without colour, `step 3/5` instead of a
//! percentage, a paused step shown paused and no text with an internal
//! name or a clause said twice.

mod screen;
use screen::*;

use rolldeck::redact::Redactor;
use rolldeck::release::analysis::{CheckDef, Measurement, Reading, Unit};
use rolldeck::release::engine::{Command, Event, Issued, Phase, Release};
use rolldeck::release::plan::{Plan, Step, StepAction};
use rolldeck::runtime::DriverEvent;
use rolldeck::tui::app::{App, Msg, Pane, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::theme::Theme;
use std::collections::BTreeMap;
use std::time::Duration;

fn analysis() -> Step {
    step(
        "analysis 5m",
        StepAction::Analysis {
            checks: vec!["error-rate".into(), "latency-p95".into()],
            duration: Duration::from_secs(300),
        },
    )
}

fn checks() -> BTreeMap<String, CheckDef> {
    let error_rate = CheckDef {
        name: "error-rate".into(),
        max: Some(0.05),
        min: None,
        max_increase: Some(0.01),
        max_ratio: None,
        min_baseline: None,
        unit: Some(Unit::Ratio),
        interval: Duration::from_secs(10),
        for_: Duration::from_secs(30),
        min_samples: 1,
        min_requests: Some(10.0),
        inconclusive_limit: 5,
    };
    let latency = CheckDef {
        name: "latency-p95".into(),
        max: Some(0.3),
        max_increase: None,
        unit: Some(Unit::Seconds),
        ..error_rate.clone()
    };
    [
        ("error-rate".to_string(), error_rate),
        ("latency-p95".to_string(), latency),
    ]
    .into()
}

fn measured(check: &str, c: f64, b: f64, epoch: u64) -> Event {
    Event::Measured {
        epoch: Some(epoch),
        measurement: Measurement {
            check: check.into(),
            query: format!("sum(rate({check}{{track=\"canary\"}}[1m]))"),
            canary: Ok(Reading {
                value: c,
                requests: Some(35.726),
            }),
            baseline: Ok(Reading {
                value: b,
                requests: Some(758.75),
            }),
        },
    }
}

/// A release analysed at 5 % and then at 25 %, where the error ratio climbs
/// past its limit; every state is handed to the cockpit, as the driver does,
/// so the chart has its history. Returns the app at t = `end`.
fn cockpit(end: i64) -> (App, Release) {
    let plan = Plan {
        name: "canary".into(),
        steps: vec![
            traffic(5),
            analysis(),
            traffic(25),
            analysis(),
            traffic(100),
        ],
        rollback: vec![traffic(0)],
        checks: checks(),
        triggers: vec![],
        health_intervals: BTreeMap::new(),
        // The chart spans a check's window: a minute.
        windows: [
            ("error-rate".to_string(), Duration::from_secs(60)),
            ("latency-p95".to_string(), Duration::from_secs(60)),
        ]
        .into(),
    };
    let start = Event::Start {
        id: "checkout-20300317-0800".into(),
        service: "checkout".into(),
        environment: "production".into(),
        version: Some("2.4.1".into()),
        plan: Box::new(plan),
    };
    let (mut r, _) = Release::start(&start, t(0)).unwrap();
    let mut app = App::new(
        "checkout".into(),
        "production".into(),
        false,
        Role::Driver,
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        BTreeMap::new(),
        Redactor::default(),
        "alice@bastion".into(),
        t(0),
    );
    let done = |run| Event::ActionFinished {
        run,
        ok: true,
        detail: "exit 0".into(),
        unaudited: false,
    };
    // The engine asks for a check one window after its analysis step
    // starts; here it is asked every 10 s from the start (the chart draws
    // every evaluation, counted or not).
    let ask = |r: &mut Release, at: i64| {
        for c in ["error-rate", "latency-p95"] {
            r.due.insert(format!("check:{c}"), t(at));
        }
    };
    let feed = |r: &Release, app: &mut App| {
        app.update(Msg::Driver(DriverEvent::State(Box::new(r.clone()))));
    };
    r.apply(&done(1), t(1));
    feed(&r, &mut app);
    // At 5 %: healthy.
    for at in (11..=61).step_by(10) {
        ask(&mut r, at);
        r.apply(&Event::Tick, t(at));
        let wobble = (at % 20) as f64 / 20_000.0;
        r.apply(
            &measured("error-rate", 0.004 + wobble, 0.003, r.epoch),
            t(at),
        );
        r.apply(
            &measured("latency-p95", 0.045 + wobble, 0.04, r.epoch),
            t(at),
        );
        feed(&r, &mut app);
    }
    r.apply(
        &Event::Command(Issued {
            command: Command::Promote,
            operator: "alice".into(),
            reason: None,
        }),
        t(62),
    );
    r.apply(&done(2), t(63));
    feed(&r, &mut app);
    // At 25 %: the error ratio climbs past 5 %.
    for (i, at) in (73..=end).step_by(10).enumerate() {
        ask(&mut r, at);
        r.apply(&Event::Tick, t(at));
        r.apply(
            &measured("error-rate", 0.01 + i as f64 * 0.0218, 0.011, r.epoch),
            t(at),
        );
        r.apply(&measured("latency-p95", 0.05, 0.042, r.epoch), t(at));
        feed(&r, &mut app);
    }
    app.update(Msg::Tick(t(end + 1)));
    (app, r)
}

/// Rows of the screen holding braille cells (the chart's canary line).
fn braille_rows(text: &str) -> usize {
    text.lines()
        .filter(|l| l.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)))
        .count()
}

#[test]
fn values_read_in_their_unit_and_the_chart_fills_the_pane_at_160x48() {
    let (mut app, _) = cockpit(103);
    app.update(Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('2'),
        crossterm::event::KeyModifiers::NONE,
    )));
    let text = screen_text(&render(&app, 160, 48));
    // error-rate: 0.01 + 3 × 0.0218 = 0.0754 → 7.54 %, baseline 1.1 %,
    // pending (violating since t = 83).
    for want in [
        "7.54 %",
        "1.1 %",
        "50 ms",
        "42 ms",
        "canary ≤ 5 % and ≤ baseline + 1 %",
        "fails in 9s",
        "36 / 759 req",
        "⣿ canary",
        "• baseline",
        "▀ limit",
        "traffic 5% → 25%",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    for unwanted in ["0.0754", "35.726", "758.75", "<=", "max_increase", "%, ETA"] {
        assert!(!text.contains(unwanted), "{unwanted:?} shown:\n{text}");
    }
    assert!(
        braille_rows(&text) >= 8,
        "the chart uses the pane's height:\n{text}"
    );
    insta::assert_snapshot!("canary_chart_160x48", text);
}

#[test]
fn the_chart_still_shows_at_80x24() {
    let (mut app, _) = cockpit(103);
    app.update(Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('2'),
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(app.focus, Pane::Canary);
    let text = screen_text(&render(&app, 80, 24));
    assert!(braille_rows(&text) >= 3, "a chart at 80x24:\n{text}");
    assert!(text.contains("7.54 %"), "{text}");
    insta::assert_snapshot!("canary_chart_80x24", text);
}

#[test]
fn mono_tells_canary_from_baseline_by_marker() {
    let (mut app, _) = cockpit(103);
    app.theme = Theme::builtin("mono").unwrap();
    let text = screen_text(&render(&app, 160, 48));
    // Without colour: the canary's braille line and the baseline's dots.
    assert!(braille_rows(&text) >= 4, "{text}");
    assert!(
        text.lines().filter(|l| l.contains('•')).count() >= 2,
        "{text}"
    );
}

#[test]
fn progress_is_steps_and_time_never_a_percentage() {
    let (app, r) = cockpit(103);
    let text = screen_text(&render(&app, 160, 48));
    // The fourth step (analysis at 25 %) of five, 5 minutes of analysis less
    // the 51 s it has run.
    assert!(text.contains("canary · step 4/5, 4m left"), "{text}");
    assert_eq!(r.position_words(t(114)), "step 4/5, 4m left");
    // Below a minute the time left moves in 5 s steps (src/tui/clock.rs).
    assert_eq!(r.position_words(t(320)), "step 4/5, 40s left");
    // Paused: the running step says so, and the time left stands still
    // (300 s − 52 s run: 4m; the step's clock stops, see `Frozen`).
    let mut paused = r.clone();
    paused.apply(
        &Event::Command(Issued {
            command: Command::Pause,
            operator: "alice".into(),
            reason: Some("looking at the logs".into()),
        }),
        t(115),
    );
    assert!(matches!(paused.phase, Phase::Paused { .. }));
    assert_eq!(paused.position_words(t(200)), "step 4/5, paused, 4m left");
    assert_eq!(paused.position_words(t(9000)), "step 4/5, paused, 4m left");
    assert_eq!(paused.eta_s(t(9000)), 248.0);
    let mut app = app;
    app.update(Msg::Driver(DriverEvent::State(Box::new(paused.clone()))));
    let text = screen_text(&render(&app, 160, 48));
    assert!(
        text.contains("canary · step 4/5, paused, 4m left"),
        "{text}"
    );
    assert!(text.contains("⏸ analysis 5m"), "{text}");
    // Resumed: the clock runs again from the time the step had left.
    let mut resumed = paused.clone();
    resumed.apply(
        &Event::Command(Issued {
            command: Command::Resume,
            operator: "alice".into(),
            reason: None,
        }),
        t(1000),
    );
    assert_eq!(resumed.eta_s(t(1000)), 248.0);
    assert_eq!(resumed.position_words(t(1100)), "step 4/5, 2m left");
    // Finished: the outcome, no time left.
    let mut done = paused;
    done.apply(
        &Event::Command(Issued {
            command: Command::Abort,
            operator: "alice".into(),
            reason: None,
        }),
        t(120),
    );
    assert_eq!(done.position_words(t(121)), "aborted");
}

#[test]
fn text_for_people_names_no_internal_key_and_says_each_thing_once() {
    // Past the `for` window the error-rate check fails and the step fails:
    // every text a person reads about it keeps the rules.
    let (app, r) = cockpit(193);
    let mut texts: Vec<String> = r.steps.iter().map(|s| s.detail.clone()).collect();
    texts.extend(
        r.checks
            .values()
            .filter_map(|c| c.last.as_ref())
            .flat_map(|v| [v.reason.clone(), v.condition.clone()]),
    );
    match &r.phase {
        Phase::Paused { reason, .. }
        | Phase::RollingBack { reason }
        | Phase::Finished { reason, .. } => texts.push(reason.clone()),
        _ => {}
    }
    assert!(
        texts.iter().any(|s| s.contains("fail")),
        "the check failed: {texts:#?}"
    );
    for s in &texts {
        assert_eq!(rolldeck::units::text_flaw(s), None);
    }
    let screen = screen_text(&render(&app, 160, 48));
    for line in screen.lines() {
        assert_eq!(rolldeck::units::text_flaw(line), None, "{screen}");
    }
}

/// The x axis labels under the selected check's chart, as drawn.
fn x_labels(app: &App) -> Vec<String> {
    let text = screen_text(&render(app, 160, 48));
    let line = text
        .lines()
        .find(|l| l.contains("now") && l.contains('−'))
        .unwrap_or_else(|| panic!("no x axis:\n{text}"));
    line.split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| w.starts_with('−') || *w == "now")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_chart_spans_exactly_the_checks_analysis_window() {
    let (mut app, _) = cockpit(103);
    // The window is 60 s: −1m … now, whatever the number of points kept.
    assert_eq!(x_labels(&app), ["−1m", "−30s", "now"]);
    // A 20 s window: −20s … now.
    let rel = app.release.as_mut().unwrap();
    rel.plan
        .windows
        .insert("error-rate".into(), Duration::from_secs(20));
    assert_eq!(x_labels(&app), ["−20s", "−10s", "now"]);
    // Evaluations older than the window are not drawn: 70 s after the last
    // one, a 60 s window holds none, so no line.
    app.release
        .as_mut()
        .unwrap()
        .plan
        .windows
        .insert("error-rate".into(), Duration::from_secs(60));
    assert!(braille_rows(&screen_text(&render(&app, 160, 48))) >= 8);
    app.update(Msg::Tick(t(173)));
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("⣿ canary"), "the legend stays:\n{text}");
    assert_eq!(braille_rows(&text), 1, "only the legend's ⣿:\n{text}");
}
