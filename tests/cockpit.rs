//! The cockpit drawn from fixture state into ratatui's `TestBackend`:
//! insta snapshots of the whole screen and of every pane at 160x48 and
//! 80x24, colours that carry meaning asserted on cells, keys that act.

mod screen;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use screen::*;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rolldeck::exec::ActionSpec;
use rolldeck::redact::Redactor;
use rolldeck::release::analysis::{CheckDef, Measurement, Reading};
use rolldeck::release::engine::{Command, Event, Issued, Release};
use rolldeck::release::plan::{Plan, Step, StepAction};
use rolldeck::runtime::{DriverEvent, Holder};
use rolldeck::sources::SourceStatus;
use rolldeck::tui::app::{App, Intent, Msg, Out, Pane, Popup, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::logs::{Level, LogLine, LogSource};
use rolldeck::tui::theme::Theme;
use std::collections::BTreeMap;
use std::time::Duration;

fn check(name: &str, max: f64) -> CheckDef {
    CheckDef {
        name: name.into(),
        max: Some(max),
        min: None,
        max_increase: None,
        max_ratio: None,
        min_baseline: None,
        unit: None,
        interval: Duration::from_secs(10),
        for_: Duration::from_secs(30),
        min_samples: 1,
        min_requests: Some(10.0),
        inconclusive_limit: 5,
    }
}

fn analysis() -> Step {
    step(
        "analysis 2m",
        StepAction::Analysis {
            checks: vec![],
            duration: Duration::from_secs(120),
        },
    )
}

/// A measurement answering a request made in `epoch`.
fn m(check: &str, c: Result<f64, &str>, b: f64, epoch: u64) -> Event {
    Event::Measured {
        epoch: Some(epoch),
        measurement: Measurement {
            check: check.into(),
            query: format!("sum(rate({check}{{track=\"canary\"}}[1m]))"),
            canary: c
                .map(|v| Reading {
                    value: v,
                    requests: Some(240.0),
                })
                .map_err(str::to_string),
            baseline: Ok(Reading {
                value: b,
                requests: Some(4800.0),
            }),
        },
    }
}

/// A release at 25 %, analysing: one check passing, one pending a
/// violation, one inconclusive.
fn release() -> Release {
    let mut analysis_checks = analysis();
    if let StepAction::Analysis { checks, .. } = &mut analysis_checks.action {
        *checks = vec![
            "error-rate".into(),
            "latency-p95".into(),
            "saturation".into(),
        ];
    }
    let plan = Plan {
        name: "canary".into(),
        steps: vec![
            traffic(5),
            analysis_checks.clone(),
            traffic(25),
            analysis_checks,
            traffic(100),
        ],
        rollback: vec![traffic(0)],
        checks: [
            ("error-rate".to_string(), check("error-rate", 0.05)),
            ("latency-p95".to_string(), check("latency-p95", 0.3)),
            ("saturation".to_string(), check("saturation", 0.8)),
        ]
        .into(),
        triggers: vec![],
        health_intervals: BTreeMap::new(),
        windows: BTreeMap::new(),
    };
    let start = Event::Start {
        id: "checkout-20300317-0800".into(),
        service: "checkout".into(),
        environment: "production".into(),
        version: Some("2.4.1".into()),
        plan: Box::new(plan),
    };
    let (mut r, _) = Release::start(&start, t(0)).unwrap();
    let done = |run| Event::ActionFinished {
        run,
        ok: true,
        detail: "exit 0".into(),
        unaudited: false,
    };
    r.apply(&done(1), t(1));
    r.apply(
        &Event::Command(Issued {
            command: Command::Promote,
            operator: "alice".into(),
            reason: None,
        }),
        t(2),
    );
    r.apply(&done(2), t(3));
    for (i, at) in [13, 23, 33].into_iter().enumerate() {
        r.apply(&Event::Tick, t(at));
        r.apply(
            &m("error-rate", Ok(0.004 + i as f64 * 0.001), 0.003, r.epoch),
            t(at),
        );
        r.apply(
            &m("latency-p95", Ok(0.2 + i as f64 * 0.08), 0.21, r.epoch),
            t(at),
        );
        r.apply(
            &m(
                "saturation",
                Err("no data: the query returned an empty vector"),
                0.4,
                r.epoch,
            ),
            t(at),
        );
    }
    r
}

fn app_with(role: Role, protected: bool) -> App {
    let mut actions = BTreeMap::new();
    actions.insert(
        "traffic".to_string(),
        ActionSpec {
            argv: Some(vec![
                "kubectl".into(),
                "set-weight".into(),
                "checkout".into(),
                "{weight}".into(),
            ]),
            ..Default::default()
        },
    );
    let mut app = App::new(
        "checkout".into(),
        "production".into(),
        protected,
        role,
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        actions,
        Redactor::default(),
        "alice@bastion".into(),
        t(40),
    );
    // Times read the same on every machine.
    app.time_zone = jiff::tz::TimeZone::UTC;
    let r = release();
    // Feed the history of states so the charts have points.
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    app.update(Msg::Sources(
        vec![
            SourceStatus {
                source: "prometheus".into(),
                ok: true,
                detail: "ok".into(),
                latency_ms: Some(12.0),
            },
            SourceStatus {
                source: "health:canary".into(),
                ok: false,
                detail: "HTTP 503 (expected 200)".into(),
                latency_ms: Some(3.0),
            },
        ],
        t(38),
    ));
    for (i, text) in [
        "release started",
        "traffic weight now 25% canary",
        "[latency-p95] pending: canary 0.36 is above the limit 0.3",
    ]
    .iter()
    .enumerate()
    {
        app.update(Msg::Log(LogLine {
            ts: t(30 + i as i64),
            source: LogSource::Rolldeck,
            level: if i == 2 { Level::Warn } else { Level::Info },
            text: text.to_string(),
        }));
    }
    app.logs_mut().toggle_timestamps();
    let op = rolldeck::exec::Operator {
        user: "alice".into(),
        host: "bastion".into(),
        ssh_client: Some("10.0.0.5".into()),
        tty: Some("/dev/pts/3".into()),
    };
    let rec =
        |at: i64, action: &str, step: &str, ok: bool, detail: &str| rolldeck::exec::AuditRecord {
            ts: t(at).to_string(),
            operator: op.clone(),
            action: action.into(),
            release: Some("checkout-20300317-0800".into()),
            step: Some(step.into()),
            rendered: "kubectl set-weight checkout 5".into(),
            exit_code: Some(if ok { 0 } else { 1 }),
            http_status: None,
            ok,
            duration_s: 0.4,
            detail: detail.into(),
            reason: None,
            run_id: None,
        };
    app.update(Msg::Audit(vec![
        rec(1, "traffic", "traffic 5%", true, "exit 0"),
        rec(3, "traffic", "traffic 25%", false, "exit 1"),
    ]));
    app
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

#[test]
fn whole_screen_160x48_shows_all_five_panes() {
    let mut app = app_with(Role::Driver, true);
    app.migrations_configured = true;
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    for title in [
        "1 Pipeline",
        "2 Canary",
        "3 Migrations",
        "4 Logs",
        "5 Actions",
    ] {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    assert!(text.contains("PRODUCTION"));
    insta::assert_snapshot!("screen_160x48", text);
}

#[test]
fn unconfigured_migrations_are_not_drawn_and_their_room_goes_to_actions() {
    let app = app_with(Role::Driver, true);
    assert!(!app.migrations_configured);
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    assert!(!text.contains("Migrations"), "{text}");
    // Header, pipeline + canary, logs, actions: the actions pane runs from
    // the logs' top border to the footer.
    let rows: Vec<&str> = text.lines().collect();
    let top = rows.iter().position(|l| l.contains("4 Logs")).unwrap();
    assert!(rows[top].contains("5 Actions"), "{}", rows[top]);
    assert!(rows[rows.len() - 2].contains('┘'), "{text}");
    insta::assert_snapshot!("screen_unconfigured_160x48", text);
    // At 120x30 too.
    let text = screen_text(&render(&app, 120, 30));
    assert!(!text.contains("Migrations"), "{text}");
    assert!(
        text.contains("5 Actions") && text.contains("2 Canary"),
        "{text}"
    );
}

#[test]
fn unconfigured_tab_says_what_would_configure_it() {
    let mut app = app_with(Role::Driver, true);
    let text = screen_text(&render(&app, 80, 24));
    let tabs = text.lines().nth(2).unwrap();
    assert!(tabs.contains("add [[sources.migrations]]"), "{tabs}");
    insta::assert_snapshot!("screen_unconfigured_80x24", text);
    // Digit 3 does not focus a pane that is not drawn: it says why.
    app.update(key('2'));
    app.update(key('3'));
    assert_eq!(app.focus, Pane::Canary);
    assert!(
        app.flash
            .as_deref()
            .unwrap_or("")
            .contains("[[sources.migrations]]"),
        "{:?}",
        app.flash
    );
    // Tab skips it.
    app.update(code(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Logs);
    app.update(code(KeyCode::BackTab));
    assert_eq!(app.focus, Pane::Canary);
    // Configured, it is a tab like the others.
    app.migrations_configured = true;
    app.update(key('3'));
    assert_eq!(app.focus, Pane::Migrations);
}

#[test]
fn tab_view_at_80x24_one_pane_per_tab() {
    let mut app = app_with(Role::Driver, true);
    app.migrations_configured = true;
    // Containers (6) has its own snapshots: tests/containers_pane.rs.
    for (i, pane) in Pane::ALL.iter().enumerate().take(5) {
        app.update(key(char::from(b'1' + i as u8)));
        assert_eq!(app.focus, *pane);
        let text = screen_text(&render(&app, 80, 24));
        assert!(
            text.contains("1 Pipeline") && text.contains("5 Actions"),
            "tab bar:\n{text}"
        );
        insta::assert_snapshot!(format!("pane_{}_80x24", i + 1), text);
    }
}

#[test]
fn zoomed_panes_at_160x48() {
    let mut app = app_with(Role::Driver, false);
    app.migrations_configured = true;
    app.update(key('z'));
    for (i, _) in Pane::ALL.iter().enumerate().take(5) {
        app.update(key(char::from(b'1' + i as u8)));
        insta::assert_snapshot!(
            format!("pane_{}_zoom_160x48", i + 1),
            screen_text(&render(&app, 160, 48))
        );
    }
}

#[test]
fn verdict_colours_and_symbols_carry_meaning() {
    let app = app_with(Role::Driver, false);
    let term = render(&app, 160, 48);
    let buf = term.backend().buffer();
    let find = |needle: &str| {
        for y in 0..buf.area.height {
            let row: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            if let Some(pos) = row.find(needle) {
                let x = row[..pos].chars().count() as u16;
                return (x, y);
            }
        }
        panic!("{needle} not on screen:\n{}", screen_text(&term));
    };
    let theme = Theme::builtin("dark").unwrap();
    let (x, y) = find("✓ pass");
    assert_eq!(buf[(x, y)].fg, theme.ok.fg.unwrap());
    let (x, y) = find("… pending");
    assert_eq!(buf[(x, y)].fg, theme.warn.fg.unwrap());
    let (x, y) = find("? inconclusive");
    assert_eq!(buf[(x, y)].fg, theme.warn.fg.unwrap());
    // The failing health source's dot is in the crit colour.
    let (x, y) = find("health:canary down");
    assert_eq!(buf[(x - 1, y)].fg, theme.crit.fg.unwrap());
}

#[test]
fn a_failed_verdict_cell_has_the_crit_colour() {
    let mut app = app_with(Role::Driver, false);
    let mut r = app.release.clone().unwrap();
    r.apply(&Event::Tick, t(63));
    r.apply(&m("latency-p95", Ok(0.5), 0.21, r.epoch), t(63));
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    assert!(text.contains("ROLLING BACK"), "{text}");
    let buf = term.backend().buffer();
    let theme = Theme::builtin("dark").unwrap();
    let mut found = false;
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(pos) = row.find("✗ fail") {
            let x = row[..pos].chars().count() as u16;
            assert_eq!(buf[(x, y)].fg, theme.crit.fg.unwrap());
            found = true;
        }
    }
    assert!(found, "{text}");
}

#[test]
fn any_size_draws_without_panic_and_tiny_says_too_small() {
    let app = app_with(Role::Driver, true);
    for w in [1u16, 10, 20, 39, 40, 41, 60, 79, 80, 100, 119, 120, 200] {
        for h in [1u16, 5, 9, 10, 12, 24, 29, 30, 48] {
            let _ = render(&app, w, h);
        }
    }
    let text = screen_text(&render(&app, 20, 5));
    assert!(text.starts_with("terminal too small"), "{text}");
    assert!(text.contains("(20x5)"), "{text}");
    let text = screen_text(&render(&app, 39, 9));
    assert!(text.starts_with("terminal too small (39x9)"), "{text}");
}

#[test]
fn rollback_key_confirms_with_the_exact_command_without_the_env_name() {
    let mut app = app_with(Role::Driver, true);
    app.update(key('R'));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("no confirmation: {:?}", app.popup)
    };
    assert_eq!(c.intent, Intent::Command(Command::Rollback));
    assert_eq!(
        c.will_run,
        vec!["traffic: kubectl set-weight checkout 0".to_string()]
    );
    // The safe direction never waits for typing, even in production.
    assert_eq!(c.type_to_confirm, None);
    let text = screen_text(&render(&app, 160, 48));
    assert!(
        text.contains("$ traffic: kubectl set-weight checkout 0"),
        "{text}"
    );
    assert!(!text.contains("type `production` to confirm"), "{text}");
    for ch in "p99 spike".chars() {
        app.update(key(ch));
    }
    let out = app.update(code(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Out::Issue(Issued {
            command: Command::Rollback,
            operator: "alice@bastion".into(),
            reason: Some("p99 spike".into()),
        })]
    );
    assert!(app.popup.is_none());
}

#[test]
fn observer_refuses_actions_and_says_who_drives() {
    let holder = Holder {
        user: "bob".into(),
        host: "bastion".into(),
        pid: 4242,
        since: t(0),
    };
    let mut app = app_with(Role::Observer(Some(holder)), false);
    let out = app.update(key('R'));
    assert!(out.is_empty());
    assert!(app.popup.is_none());
    let flash = app.flash.clone().unwrap();
    assert!(flash.contains("refused: observer"), "{flash}");
    assert!(flash.contains("bob@bastion (pid 4242)"), "{flash}");
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("OBSERVER — driven by bob@bastion"), "{text}");
}

#[test]
fn command_mode_weight_and_quit_asks_while_running() {
    let mut app = app_with(Role::Driver, false);
    app.update(key(':'));
    for ch in "weight 150".chars() {
        app.update(key(ch));
    }
    app.update(code(KeyCode::Enter));
    let flash = app.flash.clone().unwrap_or_default();
    assert!(flash.contains("100") && flash.contains("150"), "{flash}");
    assert!(app.popup.is_none(), "no confirmation for a bad weight");
    app.update(key('q'));
    assert_eq!(app.popup, Some(Popup::Quit));
    assert_eq!(app.update(key('y')), vec![Out::Quit]);
}

#[test]
fn help_is_generated_from_the_keymap() {
    let mut app = app_with(Role::Driver, false);
    app.update(key('?'));
    assert_eq!(app.popup, Some(Popup::Help));
    // The help scrolls: what is not on its first page is on its last.
    let mut text = screen_text(&render(&app, 160, 48));
    app.update(key('G'));
    text.push_str(&screen_text(&render(&app, 160, 48)));
    for (_, binds) in Keymap::default_map().help() {
        for (_, desc) in binds.iter().take(3) {
            assert!(text.contains(desc.as_str()), "help lacks {desc}:\n{text}");
        }
    }
}

#[test]
fn mono_theme_reads_without_colour() {
    let mut app = app_with(Role::Driver, false);
    app.theme = Theme::builtin("mono").unwrap();
    let term = render(&app, 160, 48);
    let buf = term.backend().buffer();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            assert_eq!(
                buf[(x, y)].fg,
                ratatui::style::Color::Reset,
                "colour at {x},{y}"
            );
        }
    }
    let text = screen_text(&term);
    assert!(text.contains("✓ pass") && text.contains("? inconclusive"));
}

#[test]
fn keys_that_do_not_apply_now_say_why_instead_of_confirming() {
    let mut app = app_with(Role::Driver, false);
    app.update(key('w'));
    assert!(app.popup.is_none());
    assert!(
        app.flash.as_deref().unwrap_or("").contains("pause first"),
        "{:?}",
        app.flash
    );
    app.update(key('a'));
    assert!(app.popup.is_none());
    assert_eq!(app.flash.as_deref(), Some("nothing waits for approval"));
    // Pause is offered, and once paused the weight dialog opens.
    app.update(key('p'));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?}", app.popup)
    };
    assert_eq!(c.intent, Intent::Command(Command::Pause));
    let mut r = app.release.clone().unwrap();
    r.apply(
        &Event::Command(Issued {
            command: Command::Pause,
            operator: "alice".into(),
            reason: None,
        }),
        t(41),
    );
    app.popup = None;
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    app.update(key('w'));
    assert_eq!(app.popup, Some(Popup::Weight(String::new())));
    for ch in "50".chars() {
        app.update(key(ch));
    }
    app.update(code(KeyCode::Enter));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?}", app.popup)
    };
    assert_eq!(c.intent, Intent::Command(Command::SetWeight { weight: 50 }));
    assert_eq!(
        c.will_run,
        vec!["traffic: kubectl set-weight checkout 50".to_string()]
    );
}

#[test]
fn the_canary_pane_explains_the_most_severe_check_until_the_operator_moves() {
    let mut app = app_with(Role::Driver, false);
    // error-rate (pass), latency-p95 (pending), saturation (inconclusive): pending first.
    assert_eq!(app.shown_check(), 1);
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("latency-p95: pending"), "{text}");
    app.update(key('2'));
    app.update(code(KeyCode::Down));
    assert_eq!(app.shown_check(), 2, "moved from the shown row");
    assert!(app.check_pinned);
}

#[test]
fn idle_cockpit_starts_a_release_only_after_start_and_confirmation() {
    let mut app = app_with(Role::Idle, true);
    app.plans = vec![(
        "canary".into(),
        vec!["traffic 5%".into(), "analysis 2m".into()],
    )];
    // Release keys are refused while idle.
    app.update(key('R'));
    assert!(app.popup.is_none());
    assert_eq!(
        app.flash.as_deref(),
        Some("no release is running: :start begins one")
    );
    app.update(key(':'));
    for ch in "start".chars() {
        app.update(key(ch));
    }
    app.update(code(KeyCode::Enter));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?} {:?}", app.popup, app.flash)
    };
    assert_eq!(c.intent, Intent::Start(Some("canary".into())));
    assert_eq!(
        c.will_run,
        vec![
            "step 1: traffic 5%".to_string(),
            "step 2: analysis 2m".to_string()
        ]
    );
    assert!(
        app.update(code(KeyCode::Enter)).is_empty(),
        "protected: the name is required"
    );
    for ch in "production".chars() {
        app.update(key(ch));
    }
    assert_eq!(
        app.update(code(KeyCode::Enter)),
        vec![Out::Start(Some("canary".into()))]
    );
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("IDLE"), "{text}");
}

#[test]
fn start_confirmation_lists_down_sources_in_the_danger_colour() {
    let mut app = app_with(Role::Idle, false);
    app.plans = vec![("canary".into(), vec!["traffic 5%".into()])];
    app.plan_sources = BTreeMap::from([(
        "canary".to_string(),
        ["health:canary".to_string(), "prometheus".to_string()].into(),
    )]);
    app.confirm_start(Some("canary".into()));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?} {:?}", app.popup, app.flash)
    };
    // prometheus is up in the fixture; the canary's health target is not.
    assert_eq!(c.down, vec!["health:canary: HTTP 503 (expected 200)"]);
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    let buf = term.backend().buffer();
    let (y, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("✗ health:canary: HTTP 503"))
        .unwrap_or_else(|| panic!("{text}"));
    let x = line.chars().position(|c| c == '✗').unwrap() as u16;
    let crit = app.theme.crit.fg;
    assert!(crit.is_some());
    assert_eq!(buf[(x, y as u16)].fg, crit.unwrap(), "{text}");
    // A newer probe round refreshes the list while the confirmation is open.
    app.update(Msg::Sources(
        vec![SourceStatus {
            source: "health:canary".into(),
            ok: true,
            detail: "ok".into(),
            latency_ms: Some(1.0),
        }],
        t(41),
    ));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!()
    };
    assert!(c.down.is_empty(), "{:?}", c.down);
}

#[test]
fn quit_confirmation_says_what_stays_behind_with_the_numbers() {
    let mut app = app_with(Role::Driver, false);
    app.update(key('q'));
    assert_eq!(app.popup, Some(Popup::Quit));
    let text = screen_text(&render(&app, 160, 48));
    let weight = app.release.as_ref().unwrap().weight;
    assert!(
        text.contains(&format!("canary stays at {weight} % with nobody watching")),
        "{text}"
    );
    assert!(text.contains("`rolldeck run`"), "{text}");
    assert_eq!(app.update(key('y')), vec![Out::Quit]);
}

#[test]
fn protected_confirmations_ask_the_env_name_only_for_the_risky_direction() {
    let mut app = app_with(Role::Driver, true);
    let typed = |app: &mut App, c: Command| {
        app.popup = None;
        app.flash = None;
        app.confirm(c.clone());
        match &app.popup {
            Some(Popup::Confirm(k)) => k.type_to_confirm.clone(),
            other => panic!("{c:?}: {other:?} {:?}", app.flash),
        }
    };
    let env = Some("production".to_string());
    assert_eq!(typed(&mut app, Command::Promote), env);
    assert_eq!(typed(&mut app, Command::PromoteFull), env);
    assert_eq!(typed(&mut app, Command::Pause), None);
    assert_eq!(typed(&mut app, Command::Abort), None);
    assert_eq!(typed(&mut app, Command::Rollback), None);
    // Paused at 25 %: a lower weight is safe, a higher one is not.
    let mut r = app.release.clone().unwrap();
    assert_eq!(r.weight, 25);
    r.apply(
        &Event::Command(Issued {
            command: Command::Pause,
            operator: "alice".into(),
            reason: None,
        }),
        t(41),
    );
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    assert_eq!(typed(&mut app, Command::Resume), env);
    assert_eq!(typed(&mut app, Command::SetWeight { weight: 10 }), None);
    assert_eq!(typed(&mut app, Command::SetWeight { weight: 50 }), env);
}

#[test]
fn the_cockpit_asks_the_engine_what_applies() {
    let mut app = app_with(Role::Driver, false);
    let issue = |r: &mut Release, c: Command, at: i64| {
        r.apply(
            &Event::Command(Issued {
                command: c,
                operator: "alice".into(),
                reason: None,
            }),
            t(at),
        )
    };
    // Abort still stops a running rollback (the engine allows it).
    let mut r = app.release.clone().unwrap();
    issue(&mut r, Command::Rollback, 41);
    assert!(matches!(
        r.phase,
        rolldeck::release::Phase::RollingBack { .. }
    ));
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    app.confirm(Command::Abort);
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?} {:?}", app.popup, app.flash)
    };
    assert_eq!(c.intent, Intent::Command(Command::Abort));

    // While a manual weight change runs, resume is refused with the reason.
    let mut app = app_with(Role::Driver, false);
    let mut r = app.release.clone().unwrap();
    issue(&mut r, Command::Pause, 41);
    issue(&mut r, Command::SetWeight { weight: 50 }, 42);
    assert!(r.manual_weight.is_some());
    app.update(Msg::Driver(DriverEvent::State(Box::new(r.clone()))));
    app.confirm(Command::Resume);
    assert!(app.popup.is_none());
    assert_eq!(
        app.flash.as_deref(),
        Some("a manual weight change is running; wait for it")
    );
    // The footer offers no resume then, nor a second weight.
    app.flash = None;
    let text = screen_text(&render(&app, 200, 48));
    let footer = text.lines().last().unwrap_or("");
    assert!(!footer.contains("resume"), "{footer}");
    assert!(!footer.contains("weight"), "{footer}");
    assert!(r.can(&Command::Resume).is_err());
}

#[test]
fn an_unreadable_journal_is_shown_in_the_danger_colour_not_as_idle() {
    let mut app = app_with(Role::Idle, false);
    app.release = None;
    app.update(Msg::JournalError(Some(
        "journal /s/releases/r.jsonl:4: not a journal record".into(),
    )));
    for (w, h) in [(80, 24), (160, 48)] {
        let term = render(&app, w, h);
        let text = screen_text(&term);
        assert!(text.contains("JOURNAL UNREADABLE"), "{text}");
        assert!(!text.contains("IDLE"), "{text}");
        let buf = term.backend().buffer();
        let theme = Theme::builtin("dark").unwrap();
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, 0)].symbol().to_string())
            .collect();
        let x = row[..row.find("JOURNAL").unwrap()].chars().count() as u16;
        assert_eq!(buf[(x, 0)].fg, theme.crit.fg.unwrap());
    }
    // Readable again: the error goes away.
    app.update(Msg::JournalError(None));
    let text = screen_text(&render(&app, 160, 48));
    assert!(!text.contains("JOURNAL UNREADABLE"), "{text}");
}

#[test]
fn an_unaudited_action_pauses_in_the_danger_colour() {
    let mut app = app_with(Role::Driver, false);
    let shown = app.release.clone().unwrap();
    // The same plan from its start: its first traffic step runs an action.
    let start = Event::Start {
        id: shown.id.clone(),
        service: shown.service.clone(),
        environment: shown.environment.clone(),
        version: shown.version.clone(),
        plan: Box::new(shown.plan.clone()),
    };
    let (mut r, _) = Release::start(&start, t(0)).unwrap();
    let Some((run, _)) = r.running_action else {
        panic!("the test release has no running action: {:?}", r.phase)
    };
    r.apply(
        &Event::ActionFinished {
            run,
            ok: false,
            detail: "exit 0; audit log write failed: No space left on device".into(),
            unaudited: true,
        },
        t(2),
    );
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    let buf = term.backend().buffer();
    let theme = Theme::builtin("dark").unwrap();
    let mut found = false;
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(pos) = row.find("paused: ") {
            let x = row[..pos].chars().count() as u16;
            assert_eq!(buf[(x, y)].fg, theme.crit.fg.unwrap(), "{text}");
            found = true;
        }
    }
    assert!(found, "no pause reason on screen: {text}");
}

/// The screen position of the first occurrence of `needle`.
fn find_on(term: &Terminal<TestBackend>, needle: &str) -> (u16, u16) {
    let buf = term.backend().buffer();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(pos) = row.find(needle) {
            return (row[..pos].chars().count() as u16, y);
        }
    }
    panic!("{needle} not on screen:\n{}", screen_text(term));
}

#[test]
fn the_selected_row_is_marked_across_the_row_in_every_theme() {
    for name in Theme::builtin_names() {
        let mut app = app_with(Role::Driver, false);
        app.theme = Theme::builtin(name).unwrap();
        let sel = app.theme.selection;
        app.update(key('1'));
        app.update(key('j'));
        let term = render(&app, 160, 48);
        let buf = term.backend().buffer();
        // The second step (the first `analysis 2m`) is selected: a bar in
        // the gutter, and the selection style over the whole row, not one
        // cell.
        let (x, y) = find_on(&term, "analysis 2m");
        let bar = x - 3;
        assert_eq!(buf[(bar, y)].symbol(), "▌", "{name}: no bar");
        let (end, _) = find_on(&term, "2 Canary");
        let marked = |x: u16| {
            let c = &buf[(x, y)];
            if sel
                .add_modifier
                .contains(ratatui::style::Modifier::REVERSED)
            {
                c.modifier.contains(ratatui::style::Modifier::REVERSED)
            } else {
                Some(c.bg) == sel.bg
            }
        };
        for cx in bar..end.saturating_sub(4) {
            assert!(
                marked(cx),
                "{name}: cell {cx},{y} not in the selection style"
            );
        }
        // The rows around it are not marked.
        let (_, y0) = find_on(&term, "traffic 5%");
        assert_eq!(buf[(bar, y0)].symbol(), " ", "{name}");
        assert!(
            !buf[(bar + 10, y0)]
                .modifier
                .contains(ratatui::style::Modifier::REVERSED)
                || app.theme.monochrome,
            "{name}: unselected row reversed"
        );
        if *name == "dark" {
            insta::assert_snapshot!("selection_row_dark", {
                let row: String = (0..end)
                    .map(|cx| buf[(cx, y)].symbol().to_string())
                    .collect();
                format!("{row}\nreversed: {}", marked(bar + 1))
            });
        }
    }
    // The canary and actions panes mark their rows the same way.
    let mut app = app_with(Role::Driver, false);
    app.update(key('2'));
    let term = render(&app, 160, 48);
    let (x, y) = find_on(&term, "latency-p95");
    assert_eq!(term.backend().buffer()[(x - 1, y)].symbol(), "▌");
    app.update(key('5'));
    let term = render(&app, 160, 48);
    let (x, y) = find_on(&term, "✗ traffic 25%");
    let buf = term.backend().buffer();
    // "▌" + "17:46:43 UTC " (local time with the zone) + "✗".
    assert_eq!(buf[(x - 14, y)].symbol(), "▌", "{}", screen_text(&term));
    assert!(
        buf[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
}

#[test]
fn enter_opens_the_selected_row_whole_and_esc_closes_it() {
    let mut app = app_with(Role::Driver, false);
    app.update(key('2'));
    app.update(code(KeyCode::Enter));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("{:?}", app.popup)
    };
    assert_eq!(d.title, "check latency-p95");
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("check latency-p95 — Esc closes"), "{text}");
    assert!(text.contains("query:"), "{text}");
    insta::assert_snapshot!("detail_check_80x24", text);
    app.update(code(KeyCode::Esc));
    assert!(app.popup.is_none());
}

#[test]
fn a_long_action_result_reads_whole_in_the_popup_and_scrolls() {
    let mut app = app_with(Role::Driver, false);
    let words: Vec<String> = (1..=120).map(|i| format!("word{i}")).collect();
    let long = words.join(" ");
    app.actions.push_back(rolldeck::tui::app::ActionRecord {
        at: t(39),
        who: "alice".into(),
        what: "traffic 50%".into(),
        ok: false,
        detail: long.clone(),
    });
    app.update(key('5'));
    // The pane cuts it…
    let text = screen_text(&render(&app, 80, 24));
    assert!(!text.contains("word120"), "{text}");
    // … the popup has it whole, scrolled to the end with G.
    app.update(code(KeyCode::Enter));
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("word1 word2"), "{text}");
    assert!(
        text.contains("j/k scroll") || text.contains("word120"),
        "{text}"
    );
    app.update(key('G'));
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("word120"), "{text}");
    // Scrolling stops at the end: one k shows the line before again.
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("{:?}", app.popup)
    };
    let max = d.scroll;
    app.update(key('j'));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("{:?}", app.popup)
    };
    assert_eq!(d.scroll, max, "j past the end does not move");
    app.update(code(KeyCode::Esc));
    assert!(app.popup.is_none());
}

#[test]
fn enter_on_logs_shows_the_lines_in_view_whole() {
    let mut app = app_with(Role::Driver, false);
    let long = format!("start of a long line {} end-of-the-line", "x ".repeat(100));
    app.update(Msg::Log(LogLine {
        ts: t(39),
        source: LogSource::Action("traffic".into()),
        level: Level::Error,
        text: long,
    }));
    app.update(key('4'));
    let text = screen_text(&render(&app, 80, 24));
    assert!(
        !text.contains("end-of-the-line"),
        "cut in the pane:\n{text}"
    );
    app.update(code(KeyCode::Enter));
    app.update(key('G'));
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("end-of-the-line"), "{text}");
    assert!(text.contains("ERROR action:traffic"), "{text}");
}

#[test]
fn a_long_pause_reason_wraps_whole_in_the_pipeline() {
    let mut app = app_with(Role::Driver, false);
    let mut r = app.release.clone().unwrap();
    let reason = format!(
        "{} and that is the end of the reason",
        "the canary's error ratio stayed above its limit while ".repeat(3)
    );
    r.apply(
        &Event::Command(Issued {
            command: Command::Pause,
            operator: "alice".into(),
            reason: Some(reason),
        }),
        t(41),
    );
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    for (w, h) in [(160, 48), (80, 24)] {
        let text = screen_text(&render(&app, w, h));
        assert!(text.contains("PAUSED"), "{text}");
        assert!(
            text.contains("end of the reason"),
            "{w}x{h}: the reason is cut:\n{text}"
        );
    }
}

#[test]
fn debug_command_shows_tui_loggers_view_and_esc_leaves_it() {
    let mut app = app_with(Role::Driver, false);
    run_command(&mut app, "debug");
    assert!(app.debug_view);
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("debug: rolldeck's own tracing"), "{text}");
    assert!(text.contains("←/→ level shown"), "{text}");
    // The view's keys go to tui-logger, not to the release.
    app.update(code(KeyCode::Down));
    assert_eq!(app.selected_step, 0);
    let _ = render(&app, 80, 24);
    app.update(code(KeyCode::Esc));
    assert!(!app.debug_view);
}

/// Types `:line` and Enter.
fn run_command(app: &mut App, line: &str) {
    app.update(key(':'));
    for ch in line.chars() {
        app.update(key(ch));
    }
    app.update(code(KeyCode::Enter));
}

/// Applies an operator's command to `r` at `t(at)`.
fn issue(r: &mut Release, command: Command, at: i64) {
    r.apply(
        &Event::Command(Issued {
            command,
            operator: "alice".into(),
            reason: None,
        }),
        t(at),
    );
}

/// The footer's text (the last row).
fn footer_text(term: &Terminal<TestBackend>) -> String {
    screen_text(term)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn help_fits_80x24_scrolls_and_puts_incident_keys_first() {
    let mut app = app_with(Role::Driver, false);
    app.update(key('?'));
    let top = screen_text(&render(&app, 80, 24));
    insta::assert_snapshot!("help_80x24_top", top);
    // The keys that matter in an incident come first, in this order.
    let at = |text: &str, what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what} not in\n{text}"))
    };
    let order = [
        "approve the waiting gate",
        "pause or resume",
        "promote to the next step",
        "set the canary weight",
        "roll back the release",
        "abort the release",
        "quit rolldeck",
        "Panes and moving around",
    ];
    for pair in order.windows(2) {
        assert!(at(&top, pair[0]) < at(&top, pair[1]), "{pair:?}\n{top}");
    }
    let view = app.help_view.get();
    assert!(view.max_scroll > 0, "the help is taller than 80x24");
    assert_eq!(view.page, 20, "22 rows of popup, 20 inside");
    // j scrolls one line, G to the end, g back, PgDn a page.
    app.update(key('j'));
    assert_eq!(app.help_scroll, 1);
    app.update(key('G'));
    assert_eq!(app.help_scroll, view.max_scroll);
    app.update(key('j'));
    assert_eq!(app.help_scroll, view.max_scroll, "never past the end");
    let bottom = screen_text(&render(&app, 80, 24));
    insta::assert_snapshot!("help_80x24_bottom", bottom);
    assert!(bottom.contains("Logs pane"), "{bottom}");
    assert!(bottom.contains("close the popup"), "{bottom}");
    app.update(key('g'));
    assert_eq!(app.help_scroll, 0);
    app.update(code(KeyCode::PageDown));
    assert_eq!(app.help_scroll, 20.min(view.max_scroll));
    app.update(code(KeyCode::PageUp));
    assert_eq!(app.help_scroll, 0);
    // Every row: keys, at least two blanks, the description (never touching).
    let desc_col = top
        .lines()
        .find_map(|l| l.find("approve the waiting gate"))
        .unwrap();
    for line in top
        .lines()
        .filter(|l| l.starts_with("│ ") || l.contains("│  "))
    {
        let chars: Vec<char> = line.chars().collect();
        let col = line[..desc_col.min(line.len())].chars().count();
        if col >= 2 && col < chars.len() && chars[col] != ' ' {
            assert_eq!(chars[col - 1], ' ', "keys run into the description: {line}");
            assert_eq!(chars[col - 2], ' ', "keys run into the description: {line}");
        }
    }
    // Esc closes; the footer shows the help's own keys while it is open.
    app.update(code(KeyCode::Esc));
    assert!(app.popup.is_none());
    app.update(key('?'));
    assert_eq!(app.help_scroll, 0, "opens at the top");
    assert!(
        footer_text(&render(&app, 80, 24)).starts_with("j/k scroll"),
        "{}",
        footer_text(&render(&app, 80, 24))
    );
}

#[test]
fn footer_keeps_its_order_and_shows_only_the_confirmation_keys() {
    let mut app = app_with(Role::Driver, true);
    let running = footer_text(&render(&app, 160, 48));
    assert_eq!(
        running,
        "? help  : command  tab pane  p pause  P promote  R rollback  q quit"
    );
    // Paused: resume and weight appear in their places, nothing moves.
    let mut r = app.release.clone().unwrap();
    issue(&mut r, Command::Pause, 41);
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    assert_eq!(
        footer_text(&render(&app, 160, 48)),
        "? help  : command  tab pane  p resume  w weight  P promote  R rollback  q quit"
    );
    // 80 columns: whole hints only; pane and command go first, quit and
    // rollback stay, the order holds.
    let narrow = footer_text(&render(&app, 60, 24));
    assert_eq!(
        narrow,
        "? help  p resume  w weight  P promote  R rollback  q quit"
    );
    // A confirmation: only its keys (protected: the name field too).
    app.update(key('P'));
    assert!(matches!(app.popup, Some(Popup::Confirm(_))));
    assert_eq!(
        footer_text(&render(&app, 160, 48)),
        "enter confirm  tab next field  esc cancel"
    );
    app.update(code(KeyCode::Esc));
    app.update(key('R'));
    assert_eq!(
        footer_text(&render(&app, 80, 24)),
        "enter confirm  esc cancel"
    );
}

#[test]
fn command_line_completes_commands_and_plan_names_with_tab() {
    let mut app = app_with(Role::Idle, false);
    app.plans = vec![
        ("canary".into(), vec!["traffic 5%".into()]),
        ("canary-fast".into(), vec!["traffic 50%".into()]),
    ];
    app.update(key(':'));
    for ch in "sta".chars() {
        app.update(key(ch));
    }
    app.update(code(KeyCode::Tab));
    assert_eq!(app.popup, Some(Popup::Command("start ".into())));
    // Candidates are shown under the line.
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("Tab: canary  canary-fast"), "{text}");
    app.update(key('c'));
    app.update(code(KeyCode::Tab));
    assert_eq!(app.popup, Some(Popup::Command("start canary".into())));
    app.update(key('-'));
    app.update(code(KeyCode::Tab));
    assert_eq!(app.popup, Some(Popup::Command("start canary-fast".into())));
    app.update(code(KeyCode::Enter));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?} {:?}", app.popup, app.flash)
    };
    assert_eq!(c.intent, Intent::Start(Some("canary-fast".into())));
    // Several commands share a prefix: all shown, the line unchanged.
    app.popup = None;
    app.update(key(':'));
    app.update(key('r'));
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains("Tab: rollback  resume  retry"), "{text}");
    app.update(code(KeyCode::Tab));
    assert_eq!(app.popup, Some(Popup::Command("r".into())));
}

#[test]
fn start_after_a_finished_release_starts_a_new_one_with_confirmation() {
    let mut app = app_with(Role::Driver, false);
    app.plans = vec![("canary".into(), vec!["traffic 5%".into()])];
    let mut r = app.release.clone().unwrap();
    issue(&mut r, Command::Abort, 41);
    assert!(r.is_finished());
    app.update(Msg::Driver(DriverEvent::State(Box::new(r))));
    assert!(!app.series.is_empty());
    run_command(&mut app, "start");
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("{:?} {:?}", app.popup, app.flash)
    };
    assert_eq!(c.intent, Intent::Start(Some("canary".into())));
    assert_eq!(
        app.update(code(KeyCode::Enter)),
        vec![Out::Start(Some("canary".into()))]
    );
    // The new release's first state: nothing of the last one's view stays.
    app.selected_step = 3;
    let mut next = release();
    next.id = "checkout-next".into();
    next.checks.clear();
    app.update(Msg::Driver(DriverEvent::State(Box::new(next))));
    assert!(app.series.is_empty());
    assert_eq!(app.selected_step, 0);
    // While a release runs here, `:start` still refuses.
    run_command(&mut app, "start");
    assert!(app.popup.is_none());
    assert_eq!(
        app.flash.as_deref(),
        Some("a release is already driven here")
    );
}

#[test]
fn no_data_before_the_first_scrape_is_a_wait_not_a_warning() {
    let mut app = app_with(Role::Driver, false);
    app.data_cadence = Some("scrape every 1 s".into());
    let v = app.release.as_ref().unwrap().checks["saturation"]
        .last
        .clone()
        .unwrap();
    let notice = || {
        Msg::Driver(DriverEvent::Notice(
            rolldeck::release::engine::Notice::Verdict(v.clone()),
        ))
    };
    // 13 s after the canary got traffic, with a 10 s window evaluated
    // every 10 s: still the normal wait.
    app.now = t(14);
    assert!(app.waiting_for_first_data("saturation", &v));
    app.update(notice());
    app.update(notice());
    let lines: Vec<(Level, String)> = app
        .logs_mut()
        .visible(100)
        .iter()
        .filter(|l| l.text.starts_with("[saturation]"))
        .map(|l| (l.level, l.text.clone()))
        .collect();
    assert_eq!(
        lines[0],
        (
            Level::Info,
            "[saturation] waiting for first data (scrape every 1 s)".to_string()
        ),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1].0, Level::Debug, "said once, then quietly");
    let term = render(&app, 160, 48);
    let (x, y) = find_on(&term, "· no data yet");
    let theme = Theme::builtin("dark").unwrap();
    assert_eq!(term.backend().buffer()[(x, y)].fg, theme.muted.fg.unwrap());
    // Past the window plus two intervals, no data is a problem again.
    app.now = t(40);
    assert!(!app.waiting_for_first_data("saturation", &v));
    app.update(notice());
    let last = app.logs_mut().visible(1)[0].clone();
    assert_eq!(last.level, Level::Warn, "{}", last.text);
    assert!(screen_text(&render(&app, 160, 48)).contains("? inconclusive"));
    // A check that has had data is never "waiting".
    let e = app.release.as_ref().unwrap().checks["error-rate"]
        .last
        .clone()
        .unwrap();
    assert!(!app.waiting_for_first_data("error-rate", &e));
    // Values on both tracks but too few canary requests for the check's
    // `min_requests` (a canary just given 5 %): still the first wait.
    let min = app.release.as_ref().unwrap().plan.checks["saturation"]
        .min_requests
        .unwrap_or(10.0);
    app.release
        .as_mut()
        .unwrap()
        .plan
        .checks
        .get_mut("saturation")
        .unwrap()
        .min_requests = Some(min);
    let mut few = v.clone();
    few.canary = Some(0.01);
    few.baseline = Some(0.01);
    few.requests = (Some(min - 1.0), Some(min * 10.0));
    app.now = t(14);
    assert!(app.waiting_for_first_data("saturation", &few));
    few.requests.0 = Some(min);
    assert!(!app.waiting_for_first_data("saturation", &few));
}

/// An idle cockpit redraws only when a drawn clock changes, and sleeps
/// until then ([`rolldeck::tui::ui::next_clock_change`]): nothing drawn
/// changes before that instant, something does at it. A pending `for`
/// countdown ticks every second; without one the running step's time
/// moves in 5 s steps below a minute, then per minute.
#[test]
fn clocks_redraw_only_at_their_granularity() {
    use rolldeck::tui::ui::next_clock_change;
    /// Walks the clock from `from` for `secs`, wake by wake; returns the
    /// wakes and the seconds (from `from`) at which they happened.
    fn walk(app: &mut App, from: jiff::Timestamp, secs: i64) -> Vec<f64> {
        app.update(Msg::Tick(from));
        let end = from + jiff::SignedDuration::from_secs(secs);
        let mut wakes = Vec::new();
        while let Some(next) = next_clock_change(app).filter(|n| *n < end) {
            // Sampled every 100 ms up to the wake (less the time within
            // which changes are drawn together): nothing to redraw.
            let together = jiff::SignedDuration::from_secs_f64(rolldeck::tui::clock::TOGETHER_S);
            let mut at = app.now + jiff::SignedDuration::from_millis(100);
            while at < next - together {
                app.dirty = false;
                app.update(Msg::Tick(at));
                assert!(!app.dirty, "redrawn at {at} before the next change {next}");
                at += jiff::SignedDuration::from_millis(100);
            }
            app.dirty = false;
            app.update(Msg::Tick(next));
            assert!(app.dirty, "nothing drawn changed at the wake {next}");
            wakes.push(next.duration_since(from).as_secs_f64());
        }
        wakes
    }

    // The pending check's `for` countdown (30 s from t(33)) is news: a
    // redraw every second until it runs out at t(63).
    let mut app = app_with(Role::Driver, false);
    let wakes = walk(&mut app, t(40), 20);
    assert!(wakes.len() >= 19, "countdown wakes: {wakes:?}");

    // No countdown: the analysis step's time (started at t(3)), the time
    // left and the source's age, in their steps.
    let mut app = app_with(Role::Driver, false);
    if let Some(r) = &mut app.release {
        for c in r.checks.values_mut() {
            if let Some(v) = &mut c.last {
                v.pending = false;
            }
        }
    }
    let wakes = walk(&mut app, t(40), 600);
    // 600 one-second ticks before; now a few dozen wakes in ten minutes.
    assert!(wakes.len() <= 40, "{} wakes: {wakes:?}", wakes.len());
    let first_minute = wakes.iter().filter(|w| **w < 20.0).count();
    assert!(first_minute <= 8, "wakes in the first 20 s: {wakes:?}");
}
