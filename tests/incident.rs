//! Incidents: the timeline the cockpit writes (start, actions, verdicts,
//! alerts, notes, resolve) exported in order by `rolldeck timeline`, and
//! an alert from a real alerting rule on a real Prometheus (the demo's)
//! naming its runbook.

mod common;
#[allow(dead_code)]
mod screen;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rolldeck::incident::timeline::{Timeline, path_in};
use rolldeck::redact::Redactor;
use rolldeck::sources::alerts::{AlertSource, FiringAlert};
use rolldeck::tui::app::{App, Msg, Out, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::theme::Theme;
use screen::t;
use std::collections::BTreeMap;
use std::time::Duration;

fn app(role: Role) -> App {
    let mut app = App::new(
        "checkout".into(),
        "staging".into(),
        false,
        role.clone(),
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        BTreeMap::new(),
        Redactor::new(["s3cret-token".to_string()]),
        "alice@bastion".into(),
        t(0),
    );
    app.time_zone = jiff::tz::TimeZone::UTC;
    app.desk.writes = role != Role::ReadOnly;
    app
}

/// Types `:LINE` and Enter.
fn command(app: &mut App, line: &str) -> Vec<Out> {
    let mut outs = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(':'),
        KeyModifiers::NONE,
    )));
    for c in line.chars() {
        outs.extend(app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        ))));
    }
    outs.extend(app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))));
    outs
}

/// Appends what the cockpit asked to write, as the event loop does, and
/// feeds the file back as the follower does.
fn write(app: &mut App, file: &mut Timeline, outs: Vec<Out>) -> usize {
    let mut n = 0;
    for o in outs {
        if let Out::Timeline(e) = o {
            file.append(&e).unwrap();
            n += 1;
        }
    }
    let back = rolldeck::incident::timeline::read(file.path()).map_err(|e| e.to_string());
    app.update(Msg::Timeline(back));
    n
}

fn alert(since: i64) -> FiringAlert {
    FiringAlert {
        name: "CanaryErrorRateHigh".into(),
        severity: Some("page".into()),
        since: t(since),
        summary: Some("canary 5xx share at 10%".into()),
        runbook_url: Some("runbooks/manual-rollback.md".into()),
        labels: [
            ("severity".to_string(), "page".to_string()),
            ("track".to_string(), "canary".to_string()),
        ]
        .into(),
        value: 0.1,
    }
}

fn audit(at: i64, action: &str, ok: bool) -> rolldeck::exec::AuditRecord {
    rolldeck::exec::AuditRecord {
        ts: t(at).to_string(),
        operator: rolldeck::exec::Operator {
            user: "alice".into(),
            host: "bastion".into(),
            ssh_client: None,
            tty: None,
        },
        action: action.into(),
        release: None,
        step: None,
        rendered: "kubectl rollout undo".into(),
        exit_code: Some(if ok { 0 } else { 1 }),
        http_status: None,
        ok,
        duration_s: 0.2,
        detail: "exit 0".into(),
        reason: Some("error rate".into()),
        run_id: Some(format!("run-{at}")),
    }
}

/// Every kind of entry, in the order it happened, in the Markdown and JSON
/// exports of `rolldeck timeline`; the same alert seen twice and the same
/// audit record read twice are written once; a secret in a note never
/// reaches the file.
#[test]
fn the_timeline_export_lists_every_step_in_order() {
    let base = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("rolldeck.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/first-config.toml"),
        &cfg,
    )
    .unwrap();
    let state = rolldeck::runtime::StatePaths::in_base(base.path(), "checkout", "staging");
    let (mut file, _) = Timeline::open(
        &path_in(&state.dir),
        Redactor::new(["s3cret-token".to_string()]),
    )
    .unwrap();

    let mut app = app(Role::Driver);
    // Before an incident: nothing is written.
    let outs = app.update(Msg::Alerts(Ok(vec![]), t(1)));
    assert_eq!(write(&mut app, &mut file, outs), 0);
    let outs = command(&mut app, "note too early");
    assert_eq!(write(&mut app, &mut file, outs), 0);
    assert!(app.flash.as_deref().unwrap_or("").contains("no incident"));

    app.update(Msg::Tick(t(10)));
    let outs = command(&mut app, "incident P1 \"checkout 5xx after 2.4.1\"");
    assert_eq!(write(&mut app, &mut file, outs), 1);
    assert!(app.incident().is_some(), "the incident is open");
    // A second one is refused while it is open.
    let outs = command(&mut app, "incident P2 other");
    assert_eq!(write(&mut app, &mut file, outs), 0);

    app.update(Msg::Tick(t(20)));
    let outs = app.update(Msg::Alerts(Ok(vec![alert(15)]), t(20)));
    assert_eq!(write(&mut app, &mut file, outs), 1);
    let outs = app.update(Msg::Alerts(Ok(vec![alert(15)]), t(25)));
    assert_eq!(
        write(&mut app, &mut file, outs),
        0,
        "still firing: no entry"
    );

    app.update(Msg::Tick(t(30)));
    let outs = command(
        &mut app,
        "note pool saturated, token s3cret-token in the log",
    );
    assert_eq!(write(&mut app, &mut file, outs), 1);

    // An action from before the incident is not part of it; one after is,
    // once however often the audit log is read.
    let records = vec![audit(5, "old-deploy", true), audit(40, "rollback", true)];
    let outs = app.update(Msg::Audit(records.clone()));
    assert_eq!(write(&mut app, &mut file, outs), 1);
    let outs = app.update(Msg::Audit(records));
    assert_eq!(write(&mut app, &mut file, outs), 0);

    app.update(Msg::Tick(t(50)));
    let outs = app.update(Msg::Alerts(Ok(vec![]), t(50)));
    assert_eq!(write(&mut app, &mut file, outs), 1, "resolved");

    app.update(Msg::Tick(t(60)));
    let outs = command(&mut app, "incident resolve rolled back to 2.4.0");
    assert_eq!(write(&mut app, &mut file, outs), 1);
    assert!(app.incident().is_none());

    let raw = std::fs::read_to_string(file.path()).unwrap();
    assert!(!raw.contains("s3cret-token"), "redacted: {raw}");

    let run = common::run(
        &[
            "timeline",
            "--markdown",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            base.path().to_str().unwrap(),
        ],
        &[("TZ", "UTC")],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .collect();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| r.split(" | ").nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "incident started",
            "alert firing",
            "note",
            "action",
            "alert resolved",
            "incident resolved"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("P1: checkout 5xx after 2.4.1"),
        "{}",
        run.stdout
    );
    assert!(rows[3].contains("rollback: ok"), "{}", rows[3]);
    assert!(rows[0].contains("alice@bastion"), "{}", rows[0]);
    assert!(run.stdout.contains("- Resolved:"), "{}", run.stdout);
    // Local time with the zone, to the second.
    let at = t(10).strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    assert!(
        rows[0].starts_with(&format!("| {at} |")),
        "{at}: {}",
        rows[0]
    );

    let run = common::run(
        &[
            "timeline",
            "--json",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            base.path().to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(j["severity"], "P1");
    assert_eq!(j["duration_s"], 50);
    assert_eq!(j["entries"].as_array().unwrap().len(), 6);

    // An empty state dir: no incident, exit 1 with the reason.
    let empty = tempfile::tempdir().unwrap();
    let run = common::run(
        &[
            "timeline",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            empty.path().to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no incident"), "{}", run.stderr);
}

/// Observers may add notes but not start incidents; read-only writes
/// nothing.
#[test]
fn who_may_write_the_timeline() {
    let mut obs = app(Role::Observer(None));
    assert!(command(&mut obs, "incident P1 down").is_empty());
    assert!(obs.flash.as_deref().unwrap().contains("observer"));
    let mut ro = app(Role::ReadOnly);
    assert!(command(&mut ro, "incident P1 down").is_empty());
    assert!(ro.flash.as_deref().unwrap().contains("read-only"));
    // An incident someone else started: the observer's note goes in.
    let start = rolldeck::incident::Entry {
        ts: t(0),
        incident: "INC-1".into(),
        operator: "bob@bastion".into(),
        kind: rolldeck::incident::Kind::Start,
        text: "down".into(),
        severity: Some(rolldeck::incident::Severity::P1),
        key: None,
    };
    obs.update(Msg::Timeline(Ok(vec![start.clone()])));
    let outs = command(&mut obs, "note I see 5xx too");
    assert!(matches!(outs.as_slice(), [Out::Timeline(e)] if e.operator == "alice@bastion"));
    ro.update(Msg::Timeline(Ok(vec![start])));
    assert!(command(&mut ro, "note x").is_empty());
    assert!(ro.flash.as_deref().unwrap().contains("read-only"));
}

/// The demo's Prometheus evaluates a real alerting rule on the canary's
/// error rate: with the bad canary taking traffic it fires, and the alerts
/// source reads it with its severity, summary and `runbook_url`, which
/// names the demo's manual-rollback runbook.
#[test]
fn a_real_alerting_rule_fires_and_opens_its_runbook() {
    let Some(bin) = common::prometheus_or_skip("a_real_alerting_rule_fires_and_opens_its_runbook")
    else {
        return;
    };
    // The demo's load generator loads the machine: one heavy test at a time.
    let _heavy = common::heavy();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(alert_opens_runbook(bin));
}

async fn alert_opens_runbook(bin: std::path::PathBuf) {
    let env = rolldeck::demo::DemoEnv::start(rolldeck::demo::Scenario::Bad, Some(bin))
        .await
        .unwrap();
    env.set_weight(50);
    let url = env.prometheus.as_ref().unwrap().url.clone();
    let src = AlertSource::new(&rolldeck::config::PrometheusSource {
        url,
        timeout: Duration::from_secs(2),
        bearer_token: None,
        basic_auth: None,
        ca_file: None,
        max_body_bytes: 1_000_000,
    })
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let firing = loop {
        let r = src.fetch().await;
        if let Ok(list) = &r
            && let Some(a) = list.iter().find(|a| a.name == rolldeck::demo::CANARY_ALERT)
        {
            break a.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert never fired: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    env.stop().await;
    assert_eq!(firing.severity.as_deref(), Some("page"));
    assert!(
        firing
            .summary
            .as_deref()
            .unwrap_or("")
            .contains("canary 5xx share"),
        "{firing:?}"
    );
    assert_eq!(
        firing.runbook_url.as_deref(),
        Some(rolldeck::demo::CANARY_ALERT_RUNBOOK)
    );
    // In the cockpit: listed in pane 5 with its runbook, which one key
    // (Enter on the alert) opens from the demo's runbooks.
    let books = tempfile::tempdir().unwrap();
    rolldeck::runbook::demo::write(books.path()).unwrap();
    let mut app = app(Role::Driver);
    app.desk.runbooks = rolldeck::runbook::discover(&[books.path().to_path_buf()]).unwrap();
    app.update(Msg::Alerts(Ok(vec![firing]), t(1)));
    let text = screen::screen_text(&screen::render(&app, 160, 48));
    assert!(text.contains("CanaryErrorRateHigh"), "{text}");
    assert!(text.contains("↵ runbook"), "{text}");
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('5'),
        KeyModifiers::NONE,
    )));
    let outs = app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    let [Out::Runbook(rolldeck::tui::runbook::RunbookJob::Open { name, path })] = outs.as_slice()
    else {
        panic!(
            "Enter on the alert opens its runbook: {outs:?} {:?}",
            app.flash
        )
    };
    assert_eq!(name, "manual-rollback");
    let book = rolldeck::runbook::Runbook::load(path).unwrap();
    assert_eq!(book.title.as_deref(), Some("Manual rollback"));
}
