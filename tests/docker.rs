//! The Docker source against the real Docker Engine: containers per track
//! with state and health, a wrong DOCKER_HOST, and a killed canary that
//! rolls the release back through the `docker:canary` health trigger.
//! Every container is named with a per-test prefix and removed on drop.

mod common;
#[path = "docker_env/mod.rs"]
mod docker_env;

use common::{Live, run, write_config};
use docker_env::Env;
use std::time::{Duration, Instant};

fn snapshot(cfg: &std::path::Path, env: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let r = run(
        &["snapshot", "--json", "--config", cfg.to_str().unwrap()],
        env,
        Duration::from_secs(60),
    );
    let v = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("snapshot is not JSON ({e}):\n{}\n{}", r.stdout, r.stderr));
    (r.code, v, r.stderr)
}

fn base_config(dir: &std::path::Path, docker: &str) -> String {
    format!(
        r#"service = "dk"
state_dir = "{state}"

[environment]
name = "test"

{docker}

[actions.noop]
argv = ["true"]

[plans.default]
[[plans.default.steps]]
kind = "action"
action = "noop"
"#,
        state = dir.join("state").display()
    )
}

#[test]
fn source_lists_containers_per_track_with_state_and_health() {
    let Some(env) = Env::new("source_lists_containers_per_track_with_state_and_health") else {
        return;
    };
    let (stable, _) = env.run_service("stable", "stable", "good");
    let (canary, _) = env.run_service("canary-1", "canary", "good");
    // Not selected by either track.
    let other = env.run_cmd("other", &["lines", "1"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &base_config(
            dir.path(),
            &format!(
                "[sources.docker]\nbaseline = {{ label = \"rolldeck.test={p}-stable\" }}\ncanary = {{ name = \"{p}-canary*\" }}\n",
                p = env.prefix
            ),
        ),
    );
    // Health checks run every second: wait until both report healthy.
    let start = Instant::now();
    let (code, v) = loop {
        let (code, v, err) = snapshot(&cfg, &[]);
        let list = v["containers"].as_array().cloned().unwrap_or_default();
        if list.len() == 2 && list.iter().all(|c| c["health"] == "healthy") {
            break (code, v);
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "containers never both healthy: {v:#}\n{err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(code, 0, "{v:#}");
    let docker = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "docker")
        .expect("a docker source line");
    assert_eq!(docker["ok"], true, "{docker}");
    let list = v["containers"].as_array().unwrap();
    let by_name = |n: &str| {
        list.iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {v:#}"))
            .clone()
    };
    let s = by_name(&stable);
    let c = by_name(&canary);
    assert!(!list.iter().any(|c| c["name"] == other.as_str()), "{v:#}");
    assert_eq!(s["track"], "baseline");
    assert_eq!(c["track"], "canary");
    for x in [&s, &c] {
        assert_eq!(x["image"], env.tag(), "{x}");
        assert_eq!(x["state"], "running", "{x}");
        assert_eq!(x["health"], "healthy", "{x}");
        assert_eq!(x["restarts"], 0, "{x}");
        assert!(
            x["started_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("20")),
            "{x}"
        );
        assert!(x["exit_code"].is_null(), "{x}");
    }

    // A stopped container: exited with its code, never healthy.
    env.rt
        .block_on(rolldeck::docker::run::stop(
            &env.docker,
            &canary,
            Duration::from_secs(5),
        ))
        .unwrap();
    let (code, v, _) = snapshot(&cfg, &[]);
    let list = v["containers"].as_array().unwrap();
    let c = list.iter().find(|c| c["name"] == canary.as_str()).unwrap();
    assert_eq!(c["state"], "exited", "{v:#}");
    assert!(c["exit_code"].is_i64(), "{c}");
    assert_eq!(
        code, 0,
        "the engine is up; a stopped container is state, not a down source"
    );
}

#[test]
fn wrong_docker_host_is_a_down_source_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-docker.sock");
    let cfg = write_config(
        dir.path(),
        &base_config(
            dir.path(),
            "[sources.docker]\ncanary = { label = \"app.track=canary\" }\ntimeout = \"2s\"\n\n[[sources.health]]\nname = \"api\"\nurl = \"http://127.0.0.1:9/health\"\ntimeout = \"1s\"",
        ),
    );
    for (host, want) in [
        (
            format!("unix://{}", missing.display()),
            missing.display().to_string(),
        ),
        // Nothing listens on port 9 (discard): refused.
        ("tcp://127.0.0.1:9".to_string(), "127.0.0.1:9".to_string()),
    ] {
        let (code, v, err) = snapshot(&cfg, &[("DOCKER_HOST", &host)]);
        assert_eq!(code, 1, "{v:#}\n{err}");
        let sources = v["sources"].as_array().unwrap();
        let d = sources
            .iter()
            .find(|s| s["source"] == "docker")
            .unwrap_or_else(|| panic!("no docker line: {v:#}"));
        assert_eq!(d["ok"], false, "{d}");
        let detail = d["detail"].as_str().unwrap();
        assert!(detail.contains(&want), "reason names the host: {detail}");
        assert!(v["containers"].is_null(), "{v:#}");
        // The other sources are still probed and reported.
        assert!(sources.iter().any(|s| s["source"] == "health:api"), "{v:#}");
    }
}

#[test]
fn killed_canary_shows_exited_and_rolls_back() {
    let Some(env) = Env::new("killed_canary_shows_exited_and_rolls_back") else {
        return;
    };
    let _heavy = common::heavy();
    let (_, stable_port) = env.run_service("stable", "stable", "good");
    let (canary, canary_port) = env.run_service("canary", "canary", "good");
    // Deployed before the release starts: a health check still `starting`
    // is no pass for the health step (nor a failure for the trigger).
    env.wait_healthy(&canary);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"service = "dk"
state_dir = "{state}"

[environment]
name = "test"

[sources.docker]
baseline = {{ label = "rolldeck.test={p}-stable" }}
canary = {{ label = "rolldeck.test={p}-canary" }}
probe_interval = "1s"
# The list is read once at start: the kill must arrive by the event stream.
interval = "60s"

[[sources.scrape]]
name = "stable"
url = "http://127.0.0.1:{stable_port}/metrics"
interval = "1s"

[[sources.scrape]]
name = "canary"
url = "http://127.0.0.1:{canary_port}/metrics"
interval = "1s"

[tracks]
baseline_target = "stable"
canary_target = "canary"

[[checks]]
name = "errors"
kind = "error_rate"
metric = "http_requests_total"
error_matcher = 'code=~"5.."'
max = 0.05
interval = "1s"
window = "2s"

[actions.noop]
argv = ["true"]

[plans.default]
[[plans.default.steps]]
kind = "health"
targets = ["docker:canary"]
passes = 2
[[plans.default.steps]]
kind = "analysis"
checks = ["errors"]
duration = "120s"

[[rollback]]
kind = "action"
action = "noop"

[[rollback_when]]
health = "docker:canary"
consecutive_failures = 1
"#,
        state = dir.path().join("state").display(),
        p = env.prefix
    );
    let cfg = write_config(dir.path(), &text);
    let mut live = Live::spawn(&["run", "--headless", "--config", cfg.to_str().unwrap()]);
    live.wait_for(Duration::from_secs(60), |e| {
        e["event"] == "step_started" && e["name"].as_str().is_some_and(|n| n.contains("analysis"))
    });
    env.rt
        .block_on(env.docker.kill_container(
            &canary,
            None::<bollard::query_parameters::KillContainerOptions>,
        ))
        .unwrap();
    let rb = live.wait_for(Duration::from_secs(30), |e| {
        e["event"] == "rollback_started"
    });
    let reason = rb["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("docker:canary") && reason.contains("exited"),
        "the trigger names the target and the exit: {rb}"
    );
    let code = live.wait_exit(Duration::from_secs(30));
    assert_eq!(code, 3, "rolled back: {}", live.seen.join("\n"));
    let fin = live
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|e| e["event"] == "release_finished")
        .expect("release_finished");
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
}

#[test]
fn docker_config_errors_name_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    for (section, want_line, want) in [
        (
            "[sources.docker]\ncanary = { label = \"app.track=canary\", name = \"x*\" }",
            8,
            "exactly one of `label`",
        ),
        (
            "[sources.docker]\ncanery = { label = \"a=b\" }",
            8,
            "canary",
        ),
        (
            "[sources.docker]\ncanary = { name = \"[x\" }",
            8,
            "not a name pattern",
        ),
        (
            "[sources.docker]\nhost = \"ftp://x\"\ncanary = { label = \"a\" }",
            8,
            "not a Docker host",
        ),
        (
            "[sources.docker]\ncanary = { label = \"a\" }\ninterval = \"0s\"",
            9,
            "minimum interval",
        ),
    ] {
        let path = write_config(dir.path(), &base_config(dir.path(), section));
        let e = rolldeck::config::load(&path)
            .expect_err(section)
            .to_string();
        let at = format!("{}:{want_line}:", path.display());
        assert!(e.contains(&at), "{section}: wanted {at} in: {e}");
        assert!(e.contains(want), "{section}: wanted {want:?} in: {e}");
    }
    // The health targets it offers are known names for triggers.
    let path = write_config(
        dir.path(),
        &(base_config(dir.path(), "[sources.docker]\ncanary = { label = \"a=b\" }")
            + "\n[[rollback_when]]\nhealth = \"docker:baseline\"\n"),
    );
    let e = rolldeck::config::load(&path)
        .expect_err("no baseline selector")
        .to_string();
    assert!(e.contains("docker:canary"), "{e}");
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

fn blue_green_config(env: &Env, dir: &std::path::Path, green_image: &str) -> String {
    format!(
        r#"service = "dk"
state_dir = "{state}"

[environment]
name = "test"

[sources.docker]
baseline = {{ label = "rolldeck.test={p}-stable" }}
canary = {{ label = "rolldeck.test={p}-canary" }}
probe_interval = "1s"

[actions.run_green]
timeout = "30s"
docker = {{ op = "run", container = "{p}-green", image = "{green_image}", replace = true, cmd = ["service", "canary", "good", "8080"], env = {{ RELEASE = "{{release}}" }}, labels = {{ "rolldeck.test" = "{p}-canary" }}, ports = ["127.0.0.1:0:8080"], health = {{ cmd = ["/rolldeck", "__container", "probe", "http://127.0.0.1:8080/health"], interval = "1s", retries = 2 }} }}

[actions.stop_blue]
docker = {{ op = "stop", container = "{p}-blue", grace = "2s" }}

[actions.remove_green]
docker = {{ op = "remove", container = "{p}-green" }}

[plans.default]
[[plans.default.steps]]
kind = "action"
action = "run_green"
[[plans.default.steps]]
kind = "health"
targets = ["docker:canary"]
passes = 2
timeout = "60s"
[[plans.default.steps]]
kind = "action"
action = "stop_blue"

[[rollback]]
kind = "action"
action = "remove_green"
"#,
        state = dir.join("state").display(),
        p = env.prefix
    )
}

#[test]
fn docker_actions_run_green_wait_healthy_stop_blue_audited() {
    let Some(env) = Env::new("docker_actions_run_green_wait_healthy_stop_blue_audited") else {
        return;
    };
    let (blue, _) = env.run_service("blue", "stable", "good");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &blue_green_config(&env, dir.path(), &env.tag()));
    let r = run(
        &["run", "--headless", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 0, "promoted:\n{}\n{}", r.stdout, r.stderr);
    let state = |name: &str| {
        env.rt.block_on(async {
            let i = env.docker.inspect_container(name, None).await.unwrap();
            let s = i.state.unwrap();
            (
                s.status.unwrap().to_string(),
                s.health.and_then(|h| h.status).map(|h| h.to_string()),
            )
        })
    };
    assert_eq!(state(&blue).0, "exited", "blue stopped");
    assert_eq!(
        state(&env.name("green")),
        ("running".to_string(), Some("healthy".to_string())),
        "green runs healthy"
    );
    // Same audit path as every action: one record per docker action, with
    // what ran.
    let audit = find_file(dir.path(), "audit.jsonl").expect("audit log");
    let text = std::fs::read_to_string(audit).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("ok").is_some())
        .collect();
    let rec = |a: &str| {
        records
            .iter()
            .find(|v| v["action"] == a)
            .unwrap_or_else(|| panic!("no audit record for {a}:\n{text}"))
            .clone()
    };
    let g = rec("run_green");
    assert_eq!(g["ok"], true, "{g}");
    let shown = g["rendered"].as_str().unwrap();
    assert!(
        shown.starts_with("docker run")
            && shown.contains(&env.name("green"))
            && shown.contains("RELEASE=dk-"),
        "the rendered action names the container and its filled env: {shown}"
    );
    assert_eq!(rec("stop_blue")["ok"], true);
}

#[test]
fn docker_action_failure_fails_the_step_with_the_engines_message() {
    let Some(env) = Env::new("docker_action_failure_fails_the_step_with_the_engines_message")
    else {
        return;
    };
    let (blue, _) = env.run_service("blue", "stable", "good");
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("{}-no-such-image:1", env.prefix);
    let cfg = write_config(dir.path(), &blue_green_config(&env, dir.path(), &missing));
    let r = run(
        &["run", "--headless", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let failed = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "step_finished" && e["name"] == "run_green")
        .unwrap_or_else(|| panic!("no run_green step:\n{}", r.stdout));
    assert_eq!(failed["status"], "failed", "{failed}");
    let detail = failed["detail"].as_str().unwrap();
    assert!(
        detail.contains("No such image") || detail.contains("no such image"),
        "the engine's message: {detail}"
    );
    // Nothing ran: blue still serves.
    let s = env.rt.block_on(async {
        env.docker
            .inspect_container(&blue, None)
            .await
            .unwrap()
            .state
            .unwrap()
            .status
            .unwrap()
            .to_string()
    });
    assert_eq!(s, "running");
}

#[test]
fn hundred_thousand_log_lines_arrive_in_a_bounded_ring() {
    use rolldeck::docker::logs::{LogRequest, stream};
    use rolldeck::tui::logs::{LogBuffer, LogSource};
    let Some(env) = Env::new("hundred_thousand_log_lines_arrive_in_a_bounded_ring") else {
        return;
    };
    let name = env.run_cmd("noisy", &["lines", "100000"], &[]);
    let buf = std::sync::Arc::new(std::sync::Mutex::new(LogBuffer::new(1000)));
    let req = LogRequest {
        follow: true,
        since: None,
        tail: None,
    };
    // Follows until the container has printed everything and exited.
    let totals = env
        .rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                stream(&env.docker, &name, req, &buf),
            )
            .await
        })
        .expect("the stream ends when the container exits")
        .unwrap();
    assert_eq!(totals.lines, 100_000);
    let mut b = buf.lock().unwrap();
    assert_eq!(b.len(), 1000, "memory bounded by the ring");
    assert_eq!(b.total(), 100_000);
    assert_eq!(b.dropped(), 99_000, "evicted lines are counted");
    assert_eq!(
        b.dropped_of(&name),
        99_000,
        "… and counted for the container"
    );
    assert_eq!(b.dropped_of("another"), 0);
    // The Logs pane showing only this container says how many it lost.
    b.set_source(Some(LogSource::Container(name.clone())));
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 6)).unwrap();
    term.draw(|f| f.render_widget(rolldeck::tui::logs::LogsView::new(&b), f.area()))
        .unwrap();
    let title: String = (0..120)
        .map(|x| term.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    assert!(
        title.contains("1000/1000 lines, 99000 dropped (99000 of its lines)"),
        "{title}"
    );
    let last = b.in_view();
    let last = last.last().expect("lines in view");
    assert_eq!(last.source, LogSource::Container(name.clone()));
    assert_eq!(last.text, "line 100000 of 100000 red", "colour stripped");
    drop(b);

    // tail: only the last lines already written.
    let small = std::sync::Arc::new(std::sync::Mutex::new(LogBuffer::new(1000)));
    let totals = env
        .rt
        .block_on(stream(
            &env.docker,
            &name,
            LogRequest {
                follow: false,
                since: None,
                tail: Some(5),
            },
            &small,
        ))
        .unwrap();
    assert_eq!(totals.lines, 5);
    assert_eq!(small.lock().unwrap().len(), 5);
}

#[test]
fn logs_of_selected_containers_are_followed_and_tagged() {
    use rolldeck::tui::logs::{LogBuffer, LogSource};
    let Some(env) = Env::new("logs_of_selected_containers_are_followed_and_tagged") else {
        return;
    };
    let (canary, port) = env.run_service("canary", "canary", "good");
    let cfg = rolldeck::config::DockerSource {
        host: None,
        baseline: None,
        canary: Some(rolldeck::config::ContainerSelector {
            label: Some(format!("rolldeck.test={}-canary", env.prefix)),
            name: None,
        }),
        interval: Duration::from_secs(60),
        probe_interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        max_containers: 10,
    };
    let buf = std::sync::Arc::new(std::sync::Mutex::new(LogBuffer::new(100)));
    let watch = rolldeck::docker::DockerWatch::new(&cfg);
    let (w, f) = env.rt.block_on(async {
        (
            watch.spawn(),
            tokio::spawn(rolldeck::docker::logs::follow_selected(
                watch.clone(),
                None,
                Duration::from_secs(5),
                10,
                buf.clone(),
            )),
        )
    });
    let seen = |want: &str| {
        let start = Instant::now();
        loop {
            let found = {
                let b = buf.lock().unwrap();
                b.visible(100).iter().any(|l| {
                    l.source == LogSource::Container(canary.clone()) && l.text.contains(want)
                })
            };
            if found {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {want:?} line"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Written before the follower started (tail) …
    seen("listening on 0.0.0.0:8080");
    // … and after: the service logs its stop on SIGTERM.
    let _ = port;
    env.rt
        .block_on(rolldeck::docker::run::stop(
            &env.docker,
            &canary,
            Duration::from_secs(5),
        ))
        .unwrap();
    seen("stopping");
    w.abort();
    f.abort();
}

/// `docker kill` of a container the cockpit watches: the Containers pane
/// shows it exited at once. The watcher's periodic list runs every 60 s,
/// so only the event stream can bring the change; the view goes through
/// the same path as in the cockpit ([`rolldeck::docker::forward_views`] →
/// `Msg::Containers` → the drawn screen).
#[test]
fn killed_container_shows_exited_in_the_pane_at_once() {
    use rolldeck::tui::app::{App, Msg, Role};
    let Some(env) = Env::new("killed_container_shows_exited_in_the_pane_at_once") else {
        return;
    };
    let (stable, _) = env.run_service("stable", "stable", "good");
    let (canary, _) = env.run_service("canary", "canary", "good");
    let cfg = rolldeck::config::DockerSource {
        host: None,
        baseline: Some(rolldeck::config::ContainerSelector {
            label: Some(format!("rolldeck.test={}-stable", env.prefix)),
            name: None,
        }),
        canary: Some(rolldeck::config::ContainerSelector {
            label: None,
            name: Some(format!("{}-canary*", env.prefix)),
        }),
        interval: Duration::from_secs(60),
        probe_interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        max_containers: 10,
    };
    let watch = rolldeck::docker::DockerWatch::new(&cfg);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(64);
    let (w, fwd) = env.rt.block_on(async {
        (
            watch.spawn(),
            tokio::spawn(rolldeck::docker::forward_views(
                watch.clone(),
                tx,
                Msg::Containers,
            )),
        )
    });
    let mut app = App::new(
        "dk".into(),
        "test".into(),
        false,
        Role::Idle,
        rolldeck::tui::keymap::Keymap::default_map(),
        rolldeck::tui::theme::Theme::builtin("dark").unwrap(),
        Default::default(),
        Default::default(),
        "tester".into(),
        jiff::Timestamp::now(),
    );
    app.docker_configured = true;
    // Feeds the app until `done` holds for its screen, at most `limit`.
    let mut until = |app: &mut App, limit: Duration, done: &dyn Fn(&str) -> bool| -> String {
        let start = Instant::now();
        loop {
            while let Ok(m) = rx.try_recv() {
                app.update(m);
            }
            app.update(Msg::Tick(jiff::Timestamp::now()));
            let mut term =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
            term.draw(|f| rolldeck::tui::ui::draw(f, app)).unwrap();
            let text: String = {
                let buf = term.backend().buffer();
                (0..buf.area.height)
                    .map(|y| {
                        (0..buf.area.width)
                            .map(|x| buf[(x, y)].symbol().to_string())
                            .collect::<String>()
                            + "\n"
                    })
                    .collect()
            };
            if done(&text) {
                return text;
            }
            assert!(start.elapsed() < limit, "not in time:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let row = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or("")
            .to_string()
    };
    let text = until(&mut app, Duration::from_secs(40), &|s| {
        row(s, &canary).contains("healthy") && row(s, &stable).contains("healthy")
    });
    assert!(row(&text, &canary).contains("canary"), "{text}");
    assert!(row(&text, &stable).contains("baseline"), "{text}");
    assert!(row(&text, &canary).contains(&env.tag()), "{text}");
    assert!(text.contains("2/2 running"), "{text}");

    env.rt
        .block_on(env.docker.kill_container(
            &canary,
            None::<bollard::query_parameters::KillContainerOptions>,
        ))
        .unwrap();
    // Well within the 60 s list interval: the event stream brought it.
    let text = until(&mut app, Duration::from_secs(10), &|s| {
        row(s, &canary).contains("exited 137")
    });
    assert!(text.contains("1/2 running"), "{text}");
    let canary_view = app
        .containers
        .containers
        .iter()
        .find(|c| c.name == canary)
        .unwrap()
        .clone();
    assert_eq!(canary_view.exit_code, Some(137));
    // And the health target the rollback trigger reads: stopped, fires at once.
    let judged = rolldeck::docker::judge_track("canary", &app.containers.containers);
    assert_eq!(
        judged.map_err(|(k, _)| k),
        Err(rolldeck::release::ProbeKind::Stopped)
    );
    w.abort();
    fwd.abort();
}
