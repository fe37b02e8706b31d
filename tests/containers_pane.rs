//! The Containers pane drawn from fixed watcher state into ratatui's
//! `TestBackend`: snapshots at 160x48 (the strip above the logs) and
//! 80x24 (its tab), the danger colour of a stopped canary, a down engine,
//! the pane hidden without `[sources.docker]`, and `Enter` filtering the
//! Logs pane to one container (with its own tag colour and dropped count).

mod screen;
use screen::*;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rolldeck::docker::{ContainerInfo, WatchView};
use rolldeck::redact::Redactor;
use rolldeck::release::engine::{Event, Release};
use rolldeck::release::plan::{Plan, StepAction};
use rolldeck::runtime::DriverEvent;
use rolldeck::tui::app::{App, Msg, Pane, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::logs::{Level, LogLine, LogSource};
use rolldeck::tui::theme::Theme;
use std::collections::BTreeMap;
use std::time::Duration;

fn release() -> Release {
    let plan = Plan {
        name: "canary".into(),
        steps: vec![
            traffic(10),
            step(
                "wait",
                StepAction::Pause {
                    duration: Some(Duration::from_secs(600)),
                },
            ),
            traffic(100),
        ],
        rollback: vec![traffic(0)],
        checks: BTreeMap::new(),
        triggers: vec![],
        health_intervals: BTreeMap::new(),
        windows: BTreeMap::new(),
    };
    let start = Event::Start {
        id: "checkout-20300317-0800".into(),
        service: "checkout".into(),
        environment: "staging".into(),
        version: Some("2.4.1".into()),
        plan: Box::new(plan),
    };
    let (mut r, _) = Release::start(&start, t(0)).unwrap();
    r.apply(
        &Event::ActionFinished {
            run: 1,
            ok: true,
            detail: "exit 0".into(),
            unaudited: false,
        },
        t(1),
    );
    r
}

fn container(
    name: &str,
    track: &str,
    image: &str,
    state: &str,
    health: Option<&str>,
    started: i64,
) -> ContainerInfo {
    ContainerInfo {
        id: format!("{name}-id"),
        name: name.into(),
        track: track.into(),
        image: image.into(),
        state: state.into(),
        health: health.map(String::from),
        failing_streak: 0,
        restarts: 0,
        started_at: Some(t(started).to_string()),
        exit_code: None,
    }
}

/// Blue (baseline) healthy for an hour; green-1 (canary) killed; green-2
/// (canary) still in its health check's start period, one check failed.
fn view() -> WatchView {
    let blue = container(
        "checkout-blue",
        "baseline",
        "checkout:2.4.0",
        "running",
        Some("healthy"),
        -3900,
    );
    let mut g1 = container(
        "checkout-green-1",
        "canary",
        "checkout:2.4.1",
        "exited",
        Some("unhealthy"),
        -50,
    );
    g1.exit_code = Some(137);
    g1.restarts = 1;
    g1.failing_streak = 3;
    let mut g2 = container(
        "checkout-green-2",
        "canary",
        "checkout:2.4.1",
        "running",
        Some("starting"),
        20,
    );
    g2.failing_streak = 1;
    WatchView {
        conn: Some(Ok(
            "Docker Engine 24.0.7 (API 1.43) at unix:///var/run/docker.sock".into(),
        )),
        containers: vec![blue, g1, g2],
        over_cap: 0,
        confirmed: Some(t(39)),
        stale_after: Duration::from_secs(15),
    }
}

fn app() -> App {
    let mut app = App::new(
        "checkout".into(),
        "staging".into(),
        false,
        Role::Driver,
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        BTreeMap::new(),
        Redactor::default(),
        "alice@bastion".into(),
        t(40),
    );
    app.time_zone = jiff::tz::TimeZone::UTC;
    app.update(Msg::Driver(DriverEvent::State(Box::new(release()))));
    app.docker_configured = true;
    app.update(Msg::Containers(view()));
    for (i, (src, text)) in [
        (LogSource::Rolldeck, "release started"),
        (
            LogSource::Container("checkout-blue".into()),
            "GET /checkout 200",
        ),
        (
            LogSource::Container("checkout-green-1".into()),
            "panic: out of memory",
        ),
        (
            LogSource::Container("checkout-green-2".into()),
            "listening on 0.0.0.0:8080",
        ),
        (
            LogSource::Container("checkout-blue".into()),
            "GET /cart 200",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        app.update(Msg::Log(LogLine {
            ts: t(30 + i as i64),
            source: src,
            level: Level::Info,
            text: text.into(),
        }));
    }
    app.logs_mut().toggle_timestamps();
    app
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// The cell where `needle` starts.
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
fn containers_strip_at_160x48_and_tab_at_80x24() {
    let mut app = app();
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    for want in [
        "6 Containers — 2/3 running",
        "checkout-blue",
        "checkout:2.4.0",
        "healthy",
        "1h05m",
        "exited 137",
        "unhealthy, 3 failed",
        "starting, 1 failed",
        "4 Logs",
        "5 Actions",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    insta::assert_snapshot!("containers_160x48", text);

    // The killed canary in the danger colour, the starting one in the
    // warning colour; the marks say the same without colour.
    let (x, y) = find_on(&term, "exited 137");
    let buf = term.backend().buffer();
    assert_eq!(buf[(x, y)].fg, app.theme.crit.fg.unwrap(), "{text}");
    let (x, y) = find_on(&term, "starting, 1 failed");
    assert_eq!(buf[(x, y)].fg, app.theme.warn.fg.unwrap());
    assert!(
        text.contains("✗ canary") && text.contains("… canary"),
        "{text}"
    );

    // Its own tab at 80x24, digit 6.
    app.update(key('6'));
    assert_eq!(app.focus, Pane::Containers);
    let text = screen_text(&render(&app, 80, 24));
    assert!(text.contains(" 6 Containers "), "{text}");
    assert!(text.contains("unhealthy (3)"), "narrow streak: {text}");
    insta::assert_snapshot!("containers_80x24", text);
}

#[test]
fn a_canary_that_dies_shows_on_the_next_view_not_the_next_poll() {
    let mut app = app();
    let mut v = view();
    v.containers[2].state = "exited".into();
    v.containers[2].exit_code = Some(1);
    // No clock moved: the message alone changes the screen.
    app.update(Msg::Containers(v));
    let term = render(&app, 160, 48);
    let (x, y) = find_on(&term, "exited 1 ");
    assert_eq!(
        term.backend().buffer()[(x, y)].fg,
        app.theme.crit.fg.unwrap()
    );
    assert!(screen_text(&term).contains("1/3 running"));
}

#[test]
fn a_down_engine_reads_down_with_the_reason_in_the_danger_colour() {
    let mut app = app();
    let mut v = view();
    v.conn = Some(Err(
        "Docker Engine at unix:///nope.sock: error trying to connect: No such file or directory"
            .into(),
    ));
    app.update(Msg::Containers(v));
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    assert!(text.contains("6 Containers — DOWN"), "{text}");
    let (x, y) = find_on(&term, "Docker DOWN: Docker Engine at unix:///nope.sock");
    assert_eq!(
        term.backend().buffer()[(x, y)].fg,
        app.theme.crit.fg.unwrap()
    );
    assert!(text.contains("last known state"), "{text}");
    // Last known rows are muted, not in the ok or danger colour.
    let (x, y) = find_on(&term, "exited 137");
    assert_eq!(
        term.backend().buffer()[(x, y)].fg,
        app.theme.muted.fg.unwrap()
    );

    // Not yet reached: says so.
    app.update(Msg::Containers(WatchView::default()));
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("connecting to the Docker Engine"), "{text}");

    // Stale: no periodic read confirmed the list for 3 intervals.
    app.update(Msg::Containers(view()));
    app.update(Msg::Tick(t(39 + 16)));
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("stale: the engine last confirmed"), "{text}");
}

#[test]
fn without_sources_docker_the_pane_is_hidden_and_6_says_why() {
    let mut app = app();
    app.docker_configured = false;
    let text = screen_text(&render(&app, 160, 48));
    assert!(!text.contains("Containers"), "{text}");
    app.update(key('6'));
    assert_ne!(app.focus, Pane::Containers);
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.contains("add [sources.docker]")),
        "{:?}",
        app.flash
    );
    // Tab never lands on it.
    for _ in 0..8 {
        app.update(code(KeyCode::Tab));
        assert_ne!(app.focus, Pane::Containers);
    }
}

#[test]
fn enter_on_a_container_filters_the_logs_to_it_and_esc_shows_all() {
    let mut app = app();
    app.update(key('6'));
    app.update(key('j'));
    app.update(code(KeyCode::Enter));
    assert_eq!(
        app.logs_mut().source(),
        Some(&LogSource::Container("checkout-green-1".into()))
    );
    let term = render(&app, 160, 48);
    let text = screen_text(&term);
    assert!(text.contains("panic: out of memory"), "{text}");
    assert!(!text.contains("GET /checkout"), "{text}");
    assert!(text.contains("only checkout-green-1 "), "{text}");
    assert!(text.contains("1/5 lines"), "{text}");
    assert!(text.contains("logs: checkout-green-1"), "{text}");
    // The tag has the container's colour, the same as its name in the pane.
    let tags = rolldeck::tui::containers::tag_styles(&app);
    let (x, y) = find_on(&term, "checkout-green-1 panic");
    assert_eq!(
        term.backend().buffer()[(x, y)].fg,
        tags["checkout-green-1"].fg.unwrap()
    );
    assert_ne!(tags["checkout-green-1"], tags["checkout-blue"]);
    // Esc: every line again.
    app.update(code(KeyCode::Esc));
    assert_eq!(app.logs_mut().source(), None);
    let text = screen_text(&render(&app, 160, 48));
    assert!(text.contains("GET /checkout"), "{text}");
    // Enter twice on the same container toggles back too.
    app.update(code(KeyCode::Enter));
    assert!(app.logs_mut().source().is_some());
    app.update(code(KeyCode::Enter));
    assert_eq!(app.logs_mut().source(), None);
    // `l` (k9s' logs key) does the same here.
    app.update(key('l'));
    assert!(app.logs_mut().source().is_some());
}

#[test]
fn dropped_lines_of_the_shown_container_are_counted_in_the_logs_title() {
    let mut app = app();
    *app.logs_mut() = rolldeck::tui::logs::LogBuffer::new(10);
    for i in 0..25 {
        let name = if i % 5 == 0 {
            "checkout-blue"
        } else {
            "checkout-green-2"
        };
        app.update(Msg::Log(LogLine {
            ts: t(40),
            source: LogSource::Container(name.into()),
            level: Level::Info,
            text: format!("line {i}"),
        }));
    }
    app.update(key('6'));
    app.update(code(KeyCode::End));
    app.update(code(KeyCode::Enter));
    let text = screen_text(&render(&app, 160, 48));
    // 25 into 10: 15 dropped, 12 of them green-2's (lines 1–4, 6–9, 11–14).
    assert!(
        text.contains("only checkout-green-2  8/10 lines, 15 dropped (12 of its lines)"),
        "{text}"
    );
}
