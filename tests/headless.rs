//! End to end: the built binary, headless, against real servers (the demo
//! services and a real Prometheus started by the harness).

mod common;

use common::*;
use rolldeck::demo::{DemoEnv, Scenario};
use std::time::Duration;

const DEMO_DEADLINE: Duration = Duration::from_secs(150);

fn demo(scenario: &str, extra: &[&str]) -> Run {
    let mut args = vec!["demo", "--fast", "--headless", "--scenario", scenario];
    args.extend_from_slice(extra);
    run(&args, &[], DEMO_DEADLINE)
}

fn verdicts<'a>(events: &'a [serde_json::Value], check: &str) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == "verdict" && e["check"] == check)
        .collect()
}

#[test]
fn demo_good_promotes_with_prometheus() {
    let _g = heavy();
    let Some(prom) = prometheus_or_skip("demo_good_promotes_with_prometheus") else {
        return;
    };
    let r = demo("good", &["--prometheus", prom.to_str().unwrap()]);
    let events = r.events();
    let fin = r.finished();
    assert_eq!(fin["outcome"], "promoted", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0);
    // The checks really ran as PromQL against Prometheus and passed.
    let v = verdicts(&events, "error-rate");
    assert!(
        v.iter().any(|v| v["verdict"] == "pass"
            && v["query"]
                .as_str()
                .unwrap()
                .contains("rate(http_requests_total")),
        "{}",
        r.stdout
    );
    let weights: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "traffic")
        .map(|e| e["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, vec![5, 25, 50, 100]);
    assert!(fin["duration_s"].as_f64().unwrap() <= 90.0, "{fin}");
    for e in &events {
        assert!(
            e["ts"].as_str().unwrap().ends_with('Z'),
            "RFC 3339 UTC: {e}"
        );
    }
}

#[test]
fn demo_bad_rolls_back_naming_the_check_and_values() {
    let _g = heavy();
    let Some(prom) = prometheus_or_skip("demo_bad_rolls_back_naming_the_check_and_values") else {
        return;
    };
    let r = demo("bad", &["--prometheus", prom.to_str().unwrap()]);
    let fin = r.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 3);
    let reason = fin["reason"].as_str().unwrap();
    assert!(reason.contains("error-rate"), "{reason}");
    assert!(
        reason.contains("canary") && reason.contains("baseline"),
        "{reason}"
    );
    let events = r.events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "traffic" && e["weight"] == 0),
        "the rollback set the weight back to 0"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "traffic" && e["weight"] == 100)
    );
}

#[test]
fn demo_slow_rolls_back_naming_latency() {
    let _g = heavy();
    let Some(prom) = prometheus_or_skip("demo_slow_rolls_back_naming_latency") else {
        return;
    };
    let r = demo("slow", &["--prometheus", prom.to_str().unwrap()]);
    let fin = r.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 3);
    assert!(
        fin["reason"].as_str().unwrap().contains("latency-p95"),
        "{fin}"
    );
}

#[test]
fn demo_no_traffic_pauses_and_never_promotes() {
    let _g = heavy();
    let Some(prom) = prometheus_or_skip("demo_no_traffic_pauses_and_never_promotes") else {
        return;
    };
    // CI's way: exit 4 when the release waits for a human.
    let r = demo(
        "no-traffic",
        &["--prometheus", prom.to_str().unwrap(), "--exit-on-pause"],
    );
    let fin = r.finished();
    assert_eq!(fin["outcome"], "paused", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 4);
    let events = r.events();
    assert!(
        !events.iter().any(|e| e["verdict"] == "pass"),
        "no pass without traffic"
    );
    assert!(
        fin["reason"].as_str().unwrap().contains("inconclusive"),
        "{fin}"
    );
}

/// The demo's migration step as the headless run reported it, if any.
fn migration_step(events: &[serde_json::Value]) -> Option<serde_json::Value> {
    events
        .iter()
        .find(|e| {
            e["event"] == "step_finished"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("migration "))
        })
        .cloned()
}

#[test]
fn demo_direct_scrape_good_and_bad() {
    let _g = heavy();
    let r = demo("good", &["--no-prometheus"]);
    assert_eq!(
        r.finished()["outcome"],
        "promoted",
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    // With PostgreSQL the plan applies the bundled migrations first (a
    // round trip); without it there is no migration step at all.
    match rolldeck::demo::migrations::find_postgres() {
        Some(_) => {
            let step = migration_step(&r.events()).expect("a migration step");
            assert_eq!(step["name"], "migration checkout-db (round trip)");
            assert_eq!(step["status"], "passed", "{step}");
            assert!(
                step["detail"]
                    .as_str()
                    .unwrap()
                    .ends_with("`checkout-db` at head"),
                "{step}"
            );
            let first_traffic = r
                .events()
                .iter()
                .position(|e| e["event"] == "traffic")
                .unwrap();
            let step_at = r.events().iter().position(|e| *e == step).unwrap();
            assert!(step_at < first_traffic, "migrations before any traffic");
        }
        None => {
            assert!(!required("postgres"), "postgres is required but not found");
            assert!(migration_step(&r.events()).is_none());
        }
    }
    let r = demo("good", &["--no-prometheus", "--no-postgres"]);
    assert_eq!(r.finished()["outcome"], "promoted", "{}", r.stderr);
    assert!(
        migration_step(&r.events()).is_none(),
        "--no-postgres: no step"
    );
    assert!(r.events().iter().any(|e| {
        e["event"] == "verdict"
            && e["query"]
                .as_str()
                .unwrap_or("")
                .starts_with("direct scrape")
    }));
    let r = demo("bad", &["--no-prometheus"]);
    assert_eq!(
        r.finished()["outcome"],
        "rolled_back",
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.code, 3);
}

/// A demo environment run by the harness, with a config file the test may edit.
fn env_with_config(
    scenario: Scenario,
    prom: Option<std::path::PathBuf>,
) -> (
    tokio::runtime::Runtime,
    DemoEnv,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt
        .block_on(DemoEnv::start(scenario, prom))
        .expect("demo env");
    let dir = tempfile::tempdir().unwrap();
    let text = rolldeck::demo::scenario_config::demo_config(
        &env,
        &dir.path().join("state"),
        rolldeck::demo::scenario_config::Pace::Fast,
    );
    let path = write_config(dir.path(), &text);
    (rt, env, dir, path)
}

#[test]
fn prometheus_killed_mid_analysis_is_inconclusive_never_promoted() {
    let _g = heavy();
    let Some(prom) = prometheus_or_skip("prometheus_killed_mid_analysis") else {
        return;
    };
    let (rt, mut env, _dir, cfg) = env_with_config(Scenario::Good, Some(prom));
    let mut live = Live::spawn(&[
        "run",
        "--headless",
        "--exit-on-pause",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    live.wait_for(Duration::from_secs(60), |e| {
        e["event"] == "verdict" && e["verdict"] == "pass"
    });
    env.prometheus.as_mut().unwrap().kill_now();
    let code = live.wait_exit(Duration::from_secs(90));
    let all = live.seen.join("\n");
    assert_eq!(code, 4, "{all}");
    assert!(!all.contains("\"promoted\""), "{all}");
    assert!(
        all.contains("Prometheus unreachable") || all.contains("did not answer"),
        "{all}"
    );
    rt.block_on(env.stop());
}

/// Lines of a file the test's actions append to (empty if missing).
fn lines_of(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn started_in_audit(dir: &std::path::Path, action: &str) -> usize {
    let audit_path = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("audit.jsonl");
    rolldeck::exec::AuditLog::read_entries(&audit_path)
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(e, rolldeck::exec::AuditEntry::Mark(m)
                if m.event == rolldeck::exec::AuditStage::Started && m.action == action)
        })
        .count()
}

#[test]
fn kill_9_during_the_non_idempotent_step_then_resume_never_runs_it_twice_at_once() {
    let _g = heavy();
    let prom = rolldeck::demo::find_prometheus(None);
    let (rt, env, dir, cfg) = env_with_config(Scenario::Good, prom);
    // The preflight action is not idempotent here and takes a while: the
    // driver is killed while it runs.
    let runs = dir.path().join("preflight.runs");
    let pidfile = dir.path().join("preflight.pid");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let old = text
        .lines()
        .skip_while(|l| *l != "[actions.preflight]")
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(old.contains("argv"), "{text}");
    let text = text.replacen(
        &old,
        &format!(
            "[actions.preflight]\nargv = [\"sh\", \"-c\", \"echo $$ > {pid}; echo start >> {runs}; sleep 6; echo end >> {runs}\"]\nidempotent = false\ntimeout = \"60s\"",
            pid = pidfile.display(),
            runs = runs.display()
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let args = [
        "run",
        "--headless",
        "--exit-on-pause",
        "--config",
        cfg.to_str().unwrap(),
    ];
    let resume = [
        "run",
        "--headless",
        "--exit-on-pause",
        "--resume",
        "--config",
        cfg.to_str().unwrap(),
    ];
    let mut first = Live::spawn(&args);
    first.wait_for(Duration::from_secs(60), |e| {
        e["event"] == "step_started" && e["kind"] == "action"
    });
    let start = std::time::Instant::now();
    while lines_of(&runs).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "preflight never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = first.child.wait();
    let pgid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pgid), "the preflight should outlive its driver");

    // What the pause message says to type: refused while the first still runs.
    let second = run(&resume, &[], Duration::from_secs(30));
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stderr.contains("still running") && second.stderr.contains(&format!("pid {pgid}")),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("check what it changed"),
        "{}",
        second.stderr
    );
    assert_eq!(lines_of(&runs), ["start"], "started again while it ran");
    assert_eq!(started_in_audit(dir.path(), "preflight"), 1);

    // Once it has ended: `run` resumes and pauses on the interrupted
    // non-idempotent step without running it again.
    let start = std::time::Instant::now();
    while alive(pgid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "preflight never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let third = run(&args, &[], DEMO_DEADLINE);
    assert_eq!(third.code, 4, "{}\n{}", third.stdout, third.stderr);
    let reason = third.finished()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("interrupted") && reason.contains("not idempotent"),
        "{reason}"
    );
    assert_eq!(lines_of(&runs), ["start", "end"]);
    assert_eq!(started_in_audit(dir.path(), "preflight"), 1);

    // The operator checked and resumes: the step runs again and the release
    // reaches the outcome it would have.
    let fourth = run(&resume, &[], DEMO_DEADLINE);
    let fin = fourth.finished();
    assert_eq!(
        fin["outcome"], "promoted",
        "{}\n{}",
        fourth.stdout, fourth.stderr
    );
    assert_eq!(fourth.code, 0);
    assert_eq!(lines_of(&runs), ["start", "end", "start", "end"]);
    assert_eq!(started_in_audit(dir.path(), "preflight"), 2);

    let audit_path = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("audit.jsonl");
    let audit = rolldeck::exec::AuditLog::read_all(&audit_path).unwrap();
    let preflights: Vec<_> = audit.iter().filter(|a| a.action == "preflight").collect();
    assert_eq!(preflights.len(), 2, "{audit:#?}");
    assert!(
        preflights[0].detail.starts_with("outcome unknown"),
        "{audit:#?}"
    );
    assert!(preflights[1].ok, "{audit:#?}");
    assert!(audit.iter().all(|a| !a.operator.user.is_empty()));
    // The status API reads the same journal.
    let st = run(
        &["status", "--json", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    let v: serde_json::Value =
        serde_json::from_str(st.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {st:?}"));
    assert_eq!(v["phase"], "promoted");
    assert_eq!(v["weight"], 100);
    assert_eq!(v["progress"], 1.0);
    let hist = run(
        &["history", "--json", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    let h: serde_json::Value = serde_json::from_str(hist.stdout.trim()).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["outcome"], "promoted");
    rt.block_on(env.stop());
}

#[test]
fn a_cancelled_action_has_ended_before_the_rollback_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("order.log");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "svc"
state_dir = "{state}"
[environment]
name = "staging"
[[sources.health]]
name = "dead"
url = "http://127.0.0.1:{closed_port}/health"
interval = "1s"
timeout = "1s"
[actions.slow]
argv = ["sh", "-c", "trap 'sleep 1; echo cleaned >> {log}; exit 1' TERM; echo started >> {log}; sleep 300 & wait"]
timeout = "120s"
[actions.undo]
argv = ["sh", "-c", "echo rollback >> {log}"]
[plans.p]
[[plans.p.steps]]
kind = "action"
action = "slow"
[[rollback]]
kind = "action"
action = "undo"
[[rollback_when]]
name = "dead target"
health = "dead"
consecutive_failures = 3
"#,
            state = dir.path().join("state").display(),
            log = log.display()
        ),
    );
    // --force: the dead target is the point (it triggers the rollback).
    let r = run(
        &[
            "run",
            "--headless",
            "--force",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 3, "{r:?}");
    // The cancelled action cleaned up (SIGTERM, then its group gone)
    // before the engine heard it finished and ran the rollback.
    assert_eq!(lines_of(&log), ["started", "cleaned", "rollback"], "{r:?}");
}

#[test]
fn second_driver_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "svc"
state_dir = "{}"
[environment]
name = "staging"
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "pause"
duration = "30s"
"#,
            dir.path().join("state").display()
        ),
    );
    let args = ["run", "--headless", "--config", cfg.to_str().unwrap()];
    let mut first = Live::spawn(&args);
    first.wait_for(Duration::from_secs(20), |e| e["event"] == "step_started");
    let second = run(&args, &[], Duration::from_secs(20));
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second
            .stderr
            .contains("another rolldeck drives this release"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.child.id())),
        "{}",
        second.stderr
    );
    // SIGTERM: exit 130, journal intact.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(first.wait_exit(Duration::from_secs(20)), 130);
}

#[test]
fn hung_action_is_killed_at_its_timeout_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "svc"
state_dir = "{state}"
[environment]
name = "staging"
[actions.hang]
argv = ["sh", "-c", "sleep 300 & echo $! > {pid}; echo started; wait"]
timeout = "1s"
[plans.p]
[[plans.p.steps]]
kind = "action"
action = "hang"
on_failure = "abort"
"#,
            state = dir.path().join("state").display(),
            pid = pidfile.display()
        ),
    );
    let r = run(
        &["run", "--headless", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 5, "{r:?}");
    let fin = r.finished();
    assert_eq!(fin["outcome"], "aborted");
    assert!(
        fin["reason"].as_str().unwrap().contains("timed out"),
        "{fin}"
    );
    assert!(
        r.events()
            .iter()
            .any(|e| e["event"] == "action_output" && e["line"] == "started")
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut gone = false;
    for _ in 0..50 {
        if !alive(pid) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "grandchild {pid} survived the timeout");
}

/// A health endpoint on a free port: `200 ok` while the flag is true, `500`
/// after it is cleared.
fn flip_health() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let h = healthy.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = if h.load(std::sync::atomic::Ordering::SeqCst) {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            } else {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfail"
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    (format!("http://{addr}/health"), healthy)
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A config whose traffic action leaves a marker file `traffic-<weight>`
/// in `dir`; `extra` goes before the plan, `steps` is the plan's steps.
fn marker_config(dir: &std::path::Path, protected: bool, extra: &str, steps: &str) -> String {
    let text = format!(
        r#"service = "svc"
state_dir = "{state}"
[environment]
name = "production"
protected = {protected}
[actions.traffic]
argv = ["touch", "{dir}/traffic-{{weight}}"]
{extra}
[plans.p]
{steps}
[[rollback]]
kind = "traffic"
weight = 0
"#,
        state = dir.join("state").display(),
        dir = dir.display(),
    );
    write_config(dir, &text).to_str().unwrap().to_string()
}

const TRAFFIC_5: &str = "[[plans.p.steps]]\nkind = \"traffic\"\nweight = 5\n";

#[test]
fn preflight_refuses_to_start_while_prometheus_is_down_and_force_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let extra = format!(
        r#"[sources.prometheus]
url = "http://127.0.0.1:{port}"
[[checks]]
name = "errors"
query = 'sum(x{{track="{{track}}"}})'
max = 0.1
interval = "1s"
inconclusive_limit = 2
"#
    );
    let steps = format!("{TRAFFIC_5}[[plans.p.steps]]\nkind = \"analysis\"\nduration = \"30s\"\n");
    let cfg = marker_config(dir.path(), false, &extra, &steps);
    let r = run(
        &["run", "--headless", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refusing to start"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "prometheus: Prometheus unreachable: connection refused (127.0.0.1:{port}); url http://127.0.0.1:{port}"
        )),
        "the down source and its reason: {}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let pre = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "preflight")
        .expect("a preflight event");
    assert_eq!(pre["ok"], false, "{pre}");
    assert_eq!(pre["sources"][0]["source"], "prometheus", "{pre}");
    assert!(
        !dir.path().join("traffic-5").exists(),
        "no traffic changed before the preflight passed"
    );
    assert!(
        !r.events().iter().any(|e| e["event"] == "release_started"),
        "{}",
        r.stdout
    );

    // --force starts anyway (and the blind analysis pauses: exit 4 with the flag).
    let r = run(
        &[
            "run",
            "--headless",
            "--force",
            "--exit-on-pause",
            "--config",
            &cfg,
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(dir.path().join("traffic-5").exists(), "{r:?}");
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("--force: starting"), "{}", r.stderr);
}

#[test]
fn protected_environment_without_yes_and_without_a_terminal_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let steps = format!("{TRAFFIC_5}[[plans.p.steps]]\nkind = \"pause\"\nduration = \"1s\"\n");
    let cfg = marker_config(dir.path(), true, "", &steps);
    // The harness runs it with stdin from /dev/null: no terminal to ask on.
    let r = run(
        &["run", "--headless", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("refusing to start a release in protected environment `production`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(!dir.path().join("traffic-5").exists());
    // --yes confirms for CI.
    let r = run(
        &["run", "--headless", "--yes", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(dir.path().join("traffic-5").exists());
}

/// A release waiting for approval with a health trigger on the canary.
fn approval_with_health_trigger(dir: &std::path::Path, health: &str) -> String {
    let extra = format!(
        r#"[[sources.health]]
name = "canary"
url = "{health}"
interval = "1s"
timeout = "1s"
[[rollback_when]]
name = "canary health failing"
health = "canary"
consecutive_failures = 2
"#
    );
    let steps =
        format!("{TRAFFIC_5}[[plans.p.steps]]\nkind = \"approval\"\nmessage = \"go on?\"\n");
    marker_config(dir, false, &extra, &steps)
}

#[test]
fn headless_keeps_watching_while_waiting_and_a_trigger_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (health, healthy) = flip_health();
    let cfg = approval_with_health_trigger(dir.path(), &health);
    let mut live = Live::spawn(&["run", "--headless", "--config", &cfg]);
    let w = live.wait_for(Duration::from_secs(30), |e| e["event"] == "waiting");
    assert_eq!(w["weight"], 5, "{w}");
    assert_eq!(w["watching"][0], "canary health failing", "{w}");
    // Still there, still watching: the canary goes bad while it waits.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        live.child.try_wait().unwrap().is_none(),
        "it left: {:?}",
        live.seen
    );
    healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let code = live.wait_exit(Duration::from_secs(30));
    let all = live.seen.join("\n");
    assert_eq!(code, 3, "rolled back: {all}");
    assert!(all.contains("canary health failing"), "{all}");
    assert!(dir.path().join("traffic-0").exists(), "{all}");
}

#[test]
fn exit_on_pause_exits_4_saying_what_is_left_unwatched() {
    let dir = tempfile::tempdir().unwrap();
    let (health, _healthy) = flip_health();
    let cfg = approval_with_health_trigger(dir.path(), &health);
    let r = run(
        &["run", "--headless", "--exit-on-pause", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 4, "{r:?}");
    let fin = r.finished();
    assert_eq!(fin["outcome"], "paused");
    let reason = fin["reason"].as_str().unwrap();
    assert!(reason.contains("waiting for approval: go on?"), "{reason}");
    assert!(
        reason.contains("left unwatched: canary stays at 5 % with nobody watching"),
        "{reason}"
    );
    assert!(reason.contains("canary health failing"), "{reason}");
}

#[test]
fn resuming_a_paused_release_in_a_protected_environment_asks_too() {
    let dir = tempfile::tempdir().unwrap();
    let steps = format!("{TRAFFIC_5}[[plans.p.steps]]\nkind = \"pause\"\n");
    let cfg = marker_config(dir.path(), true, "", &steps);
    let r = run(
        &[
            "run",
            "--headless",
            "--yes",
            "--exit-on-pause",
            "--config",
            &cfg,
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 4, "{r:?}");
    let r = run(
        &["run", "--headless", "--resume", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "refusing to resume the paused release in protected environment `production`"
        ),
        "{}",
        r.stderr
    );
    assert!(
        !r.events().iter().any(|e| e["event"] == "resumed"),
        "{}",
        r.stdout
    );
    // --yes confirms: the operator's resume goes in.
    let r = run(
        &[
            "run",
            "--headless",
            "--resume",
            "--yes",
            "--exit-on-pause",
            "--config",
            &cfg,
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_ne!(r.code, 1, "{r:?}");
    assert!(
        r.events()
            .iter()
            .any(|e| e["event"] == "resumed" && e["by"] != "restart from journal"),
        "{}",
        r.stdout
    );
}

/// What the audit log of the one release under `state` holds.
fn audit_records(state: &std::path::Path) -> Vec<rolldeck::exec::AuditRecord> {
    let sub = std::fs::read_dir(state)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    rolldeck::exec::AuditLog::read_all(&sub.join("audit.jsonl")).unwrap()
}

#[test]
fn demo_migration_round_trip_is_journaled_audited_and_ends_at_head() {
    let _g = heavy();
    let Some(bin) = rolldeck::demo::migrations::find_postgres() else {
        assert!(!required("postgres"), "postgres is required but not found");
        eprintln!("skipped: PostgreSQL not installed (Debian package `postgresql`)");
        return;
    };
    let (rt, env, dir, cfg) = env_with_config(Scenario::Good, None);
    let history = dir.path().join("migrations");
    rolldeck::demo::migrations::write_history(&history).unwrap();
    let db = rt
        .block_on(rolldeck::demo::migrations::DemoDatabase::start(
            &bin, &history,
        ))
        .expect("demo PostgreSQL");
    let text = rolldeck::demo::migrations::add_to_config(
        &std::fs::read_to_string(&cfg).unwrap(),
        &history,
        Some(&db.url),
        &common::bin(),
    )
    .unwrap();
    std::fs::write(&cfg, text).unwrap();
    let password = db
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    // Before: production at version 3, two pending, the destructive one
    // flagged at its line.
    let st = common::run(
        &["--config", cfg.to_str().unwrap(), "migrations", "--json"],
        &[],
        Duration::from_secs(60),
    );
    let s = &serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()[0];
    assert_eq!(s["current"], serde_json::json!(["3"]), "{s}");
    assert_eq!(s["pending"][1]["findings"][0]["rule"], "drop-column", "{s}");
    assert_eq!(s["pending"][1]["findings"][0]["line"], 3, "{s}");
    assert_eq!(st.code, 1, "an error finding is pending");

    let r = run(
        &[
            "run",
            "--headless",
            "--yes",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
        DEMO_DEADLINE,
    );
    assert_eq!(
        r.finished()["outcome"],
        "promoted",
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    let step = migration_step(&r.events()).expect("a migration step");
    assert_eq!(step["status"], "passed", "{step}");
    // Journaled part by part: each part's result, then the check.
    let detail = step["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        "migration checkout-db upgrade: exit 0; migration checkout-db downgrade: exit 0; \
         migration checkout-db upgrade: exit 0; `checkout-db` at head"
    );
    let outputs: Vec<String> = r
        .events()
        .iter()
        .filter(|e| e["event"] == "action_output")
        .filter_map(|e| e["line"].as_str())
        .filter(|l| l.contains("/u ") || l.contains("/d "))
        .map(|l| l.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(
        outputs,
        vec![
            "4/u index_orders_created_at",
            "5/u drop_orders_legacy_note",
            "5/d drop_orders_legacy_note",
            "5/u drop_orders_legacy_note"
        ]
    );
    // Audited part by part, the URL masked, never the password.
    let audit: Vec<(String, bool)> = audit_records(&dir.path().join("state"))
        .into_iter()
        .filter(|a| a.action.starts_with("migration "))
        .map(|a| {
            assert!(
                a.rendered.starts_with("DATABASE_URL='***' "),
                "{}",
                a.rendered
            );
            assert!(!a.rendered.contains(&password) && !a.detail.contains(&password));
            (a.action, a.ok)
        })
        .collect();
    assert_eq!(
        audit,
        vec![
            ("migration checkout-db upgrade".to_string(), true),
            ("migration checkout-db downgrade".to_string(), true),
            ("migration checkout-db upgrade".to_string(), true),
        ]
    );
    assert!(!r.stdout.contains(&password) && !r.stderr.contains(&password));
    // The database ends at head: version 5, clean, the column gone.
    let v = common::run(
        &["__migrate", "--dir", history.to_str().unwrap(), "version"],
        &[("DATABASE_URL", &db.url)],
        Duration::from_secs(30),
    );
    assert_eq!((v.code, v.stdout.trim()), (0, "5"), "{}", v.stderr);
    let st = common::run(
        &["--config", cfg.to_str().unwrap(), "migrations", "--json"],
        &[],
        Duration::from_secs(60),
    );
    let s = &serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()[0];
    assert_eq!(
        (s["current"].clone(), s["dirty"].clone()),
        (serde_json::json!(["5"]), false.into())
    );
    // The dropped column stays in view after the release applied it.
    assert_eq!(s["applied_destructive"][0]["revision"], "5", "{s}");
    assert_eq!(st.code, 0, "{s}");
    rt.block_on(async {
        db.stop().await;
        env.stop().await;
    });
}
