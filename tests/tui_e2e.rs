//! End to end: the built binary's cockpit in a real terminal (tmux), keys in,
//! screen out.

mod common;

use common::*;
use rolldeck::demo::{DemoEnv, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session on a private socket, killed on drop.
struct Tmux {
    socket: String,
    name: String,
}

fn tmux_or_skip(test: &str) -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if required("tmux") {
            panic!("{test}: tmux is required (ROLLDECK_TEST_REQUIRE) but not installed");
        }
        eprintln!("skipped {test}: tmux not installed");
    }
    ok
}

impl Tmux {
    fn start(name: &str, w: u16, h: u16, shell_cmd: &str) -> Tmux {
        let socket = format!("rolldeck-test-{}-{name}", std::process::id());
        let t = Tmux {
            socket,
            name: name.to_string(),
        };
        let st = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                shell_cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).env("TERM", "xterm-256color");
        c
    }

    fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut c = self.cmd();
        c.args(["send-keys", "-t", &self.name]);
        c.args(keys);
        assert!(c.status().unwrap().success());
    }

    fn resize(&self, w: u16, h: u16) {
        let st = self
            .cmd()
            .args([
                "resize-window",
                "-t",
                &self.name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn wait_for(&self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > deadline {
                panic!("screen never showed {what} within {deadline:?}; last screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A demo environment run by the test, and its config in a temp dir.
fn env(scenario: Scenario) -> (tokio::runtime::Runtime, DemoEnv, tempfile::TempDir, PathBuf) {
    let rt = rt();
    let env = rt
        .block_on(DemoEnv::start(scenario, None))
        .expect("demo env");
    let dir = tempfile::tempdir().unwrap();
    let text = rolldeck::demo::scenario_config::demo_config(
        &env,
        &dir.path().join("state"),
        rolldeck::demo::scenario_config::Pace::Fast,
    );
    let cfg = write_config(dir.path(), &text);
    (rt, env, dir, cfg)
}

fn audit(dir: &Path) -> Vec<rolldeck::exec::AuditRecord> {
    let state = dir.join("state");
    let sub = std::fs::read_dir(&state)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    rolldeck::exec::AuditLog::read_all(&sub.join("audit.jsonl")).unwrap()
}

#[test]
fn bad_canary_shows_the_failing_check_and_the_rollback() {
    if !tmux_or_skip("bad_canary_shows_the_failing_check_and_the_rollback") {
        return;
    }
    let _g = heavy();
    let bin = bin();
    let dir = tempfile::tempdir().unwrap();
    let stty = dir.path().join("stty.txt");
    let t = Tmux::start(
        "bad",
        160,
        48,
        &format!(
            "{} demo --fast --scenario bad --no-prometheus; stty -a > {}; sleep 60",
            bin.display(),
            stty.display()
        ),
    );
    let s = t.wait_for("ROLLED BACK", Duration::from_secs(120), |s| {
        s.contains("ROLLED BACK")
    });
    assert!(s.contains("error-rate"), "{s}");
    assert!(s.contains("✗ fail"), "{s}");
    assert!(
        s.contains("rollback:"),
        "pipeline shows the rollback steps:\n{s}"
    );
    assert!(s.contains("↩ traffic 0%"), "{s}");
    // Whichever condition broke first (the limit of 5 % or the increase
    // over the baseline of 3 %), the reason gives it in percent.
    let plain = s.replace('\u{a0}', " ");
    assert!(
        plain.contains("is above the limit 5 %") || plain.contains("(limit +3 %)"),
        "the reason with values in their unit:\n{s}"
    );
    // Resizes never crash it.
    t.resize(80, 24);
    let s = t.wait_for("tab bar", Duration::from_secs(10), |s| {
        s.contains("1 Pipeline") && s.contains("5 Actions")
    });
    for line in s.lines() {
        assert!(
            line.chars().count() <= 80,
            "line wider than the screen: {line}"
        );
    }
    t.resize(20, 5);
    t.wait_for("too small", Duration::from_secs(10), |s| {
        s.contains("terminal too small") && s.contains("(20x5)")
    });
    t.resize(160, 48);
    t.wait_for("full screen again", Duration::from_secs(10), |s| {
        s.contains("2 Canary") && s.contains("4 Logs")
    });
    // SIGTERM: the terminal is restored and the demo's servers stop.
    let pane_pid = String::from_utf8(
        t.cmd()
            .args(["display-message", "-p", "-t", "bad", "#{pane_pid}"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let st = Command::new("pkill")
        .args(["-TERM", "-P", pane_pid.trim(), "rolldeck"])
        .status()
        .unwrap();
    assert!(st.success(), "rolldeck not found under the pane");
    let start = Instant::now();
    while !stty.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let modes = std::fs::read_to_string(&stty).expect("rolldeck exited on SIGTERM");
    assert!(
        modes.contains(" icanon") && modes.contains(" echo"),
        "terminal left in raw mode: {modes}"
    );
}

#[test]
fn rollback_key_runs_the_rollback_with_operator_and_q_restores_the_terminal() {
    if !tmux_or_skip("rollback_key_runs_the_rollback") {
        return;
    }
    let _g = heavy();
    let (rt, env, dir, cfg) = env(Scenario::Good);
    let stty = dir.path().join("stty.txt");
    let t = Tmux::start(
        "good",
        160,
        48,
        &format!(
            "{} run --config {}; stty -a > {}; sleep 60",
            bin().display(),
            cfg.display(),
            stty.display()
        ),
    );
    t.wait_for("analysis running", Duration::from_secs(60), |s| {
        s.contains("▶ analysis")
    });

    // A second cockpit on the same release opens as observer.
    let o = Tmux::start(
        "observer",
        160,
        48,
        &format!(
            "{} run --config {}; sleep 60",
            bin().display(),
            cfg.display()
        ),
    );
    let s = o.wait_for("observer", Duration::from_secs(20), |s| {
        s.contains("OBSERVER — driven by")
    });
    assert!(s.contains("pid"), "{s}");
    o.keys(&["R"]);
    o.wait_for("refusal", Duration::from_secs(10), |s| {
        s.contains("refused: observer")
    });
    o.keys(&["q"]);
    drop(o);

    t.keys(&["R"]);
    let s = t.wait_for("confirmation", Duration::from_secs(10), |s| {
        s.contains("ROLL BACK the release")
    });
    assert!(s.contains("$ traffic: POST "), "the exact request:\n{s}");
    assert!(s.contains("$ rollback: POST http://127.0.0.1:"), "{s}");
    assert!(s.contains("weight=0"), "{s}");
    t.keys(&["b", "a", "d", " ", "d", "e", "p", "l", "o", "y"]);
    t.keys(&["Enter"]);
    t.wait_for("rolled back", Duration::from_secs(30), |s| {
        s.contains("ROLLED BACK")
    });
    let records = audit(dir.path());
    let rb: Vec<_> = records
        .iter()
        .filter(|r| r.rendered.contains("weight=0"))
        .collect();
    assert!(!rb.is_empty(), "{records:#?}");
    assert!(!rb[0].operator.user.is_empty());
    assert!(
        rb[0].reason.as_deref().unwrap_or("").contains("bad deploy"),
        "{:?}",
        rb[0].reason
    );
    // q leaves (the release has finished, so no question) and the terminal is restored.
    t.keys(&["q"]);
    let start = Instant::now();
    while !stty.exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let modes = std::fs::read_to_string(&stty).expect("rolldeck exited and stty ran");
    assert!(
        modes.contains(" icanon") && modes.contains(" echo"),
        "terminal left in raw mode: {modes}"
    );
    rt.block_on(env.stop());
}

/// Waits until `path` exists and returns its trimmed text.
fn wait_file(path: &Path, deadline: Duration) -> String {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} never written: {e}", path.display()))
        .trim()
        .to_string()
}

/// A config whose traffic action leaves `traffic-<weight>` in `dir`;
/// `extra` goes before the plan, `steps` are the plan's steps.
fn marker_config(dir: &Path, extra: &str, steps: &str) -> PathBuf {
    let text = format!(
        r#"service = "svc"
state_dir = "{state}"
[environment]
name = "staging"
[actions.traffic]
argv = ["touch", "{dir}/traffic-{{weight}}"]
{extra}
[plans.p]
[[plans.p.steps]]
kind = "traffic"
weight = 5
{steps}
[[rollback]]
kind = "traffic"
weight = 0
"#,
        state = dir.join("state").display(),
        dir = dir.display(),
    );
    write_config(dir, &text)
}

/// The rolldeck processes whose parent is the pane's shell.
fn rolldeck_under(t: &Tmux) -> Vec<i32> {
    let pane = String::from_utf8(
        t.cmd()
            .args(["display-message", "-p", "-t", &t.name, "#{pane_pid}"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let o = Command::new("pgrep")
        .args(["-P", pane.trim(), "rolldeck"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn quitting_mid_release_exits_6_and_sigterm_130_while_status_says_running() {
    if !tmux_or_skip("quitting_mid_release_exits_6") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = marker_config(
        dir.path(),
        "",
        "[[plans.p.steps]]\nkind = \"pause\"\nname = \"bake\"\nduration = \"10m\"\n",
    );
    let (first, second) = (dir.path().join("exit1"), dir.path().join("exit2"));
    let bin = bin();
    let t = Tmux::start(
        "quit",
        120,
        40,
        &format!(
            "{b} run --config {c}; echo exit=$? > {f1}; {b} run --config {c}; echo exit=$? > {f2}; sleep 60",
            b = bin.display(),
            c = cfg.display(),
            f1 = first.display(),
            f2 = second.display(),
        ),
    );
    t.wait_for("the bake step running", Duration::from_secs(30), |s| {
        s.contains("▶ bake")
    });
    assert!(dir.path().join("traffic-5").exists());
    t.keys(&["q"]);
    let s = t.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit? y/N")
    });
    assert!(
        s.contains("canary stays at 5 % with nobody watching"),
        "the numbers that stay behind:\n{s}"
    );
    t.keys(&["y"]);
    assert_eq!(
        wait_file(&first, Duration::from_secs(20)),
        "exit=6",
        "quitting an unfinished release is not success"
    );
    let st = run(
        &["status", "--json", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    let v: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(v["phase"], "running", "{v}");
    assert_eq!(v["weight"], 5, "{v}");

    // The second cockpit resumes it; SIGTERM leaves it unfinished too: 130.
    t.wait_for("resumed", Duration::from_secs(30), |s| s.contains("▶ bake"));
    let pids = rolldeck_under(&t);
    assert_eq!(pids.len(), 1, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_file(&second, Duration::from_secs(20)), "exit=130");
}

#[test]
fn cockpit_run_with_a_source_down_asks_first_and_changes_nothing() {
    if !tmux_or_skip("cockpit_run_with_a_source_down_asks_first") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let extra = format!(
        "[sources.prometheus]\nurl = \"http://127.0.0.1:{port}\"\n[[checks]]\nname = \"errors\"\nquery = 'sum(x{{track=\"{{track}}\"}})'\nmax = 0.1\n"
    );
    let cfg = marker_config(
        dir.path(),
        &extra,
        "[[plans.p.steps]]\nkind = \"analysis\"\nduration = \"1m\"\n",
    );
    let code = dir.path().join("exit");
    let t = Tmux::start(
        "preflight",
        120,
        40,
        &format!(
            "{} run --config {}; echo exit=$? > {}; sleep 60",
            bin().display(),
            cfg.display(),
            code.display()
        ),
    );
    let s = t.wait_for("the start confirmation", Duration::from_secs(30), |s| {
        s.contains("Start a release of plan `p`")
    });
    assert!(s.contains("DOWN"), "{s}");
    assert!(
        s.contains(&format!(
            "✗ prometheus: Prometheus unreachable: connection refused (127.0.0.1:{port})"
        )),
        "{s}"
    );
    assert!(!dir.path().join("traffic-5").exists(), "nothing started");
    // Cancelled: idle, nothing ran; quitting an idle cockpit is 0.
    t.keys(&["Escape"]);
    t.wait_for("idle", Duration::from_secs(10), |s| s.contains("IDLE"));
    t.keys(&["q"]);
    assert_eq!(wait_file(&code, Duration::from_secs(20)), "exit=0");
    assert!(!dir.path().join("traffic-5").exists());
}

#[test]
fn protected_run_asks_for_the_typed_environment_name_on_the_terminal() {
    if !tmux_or_skip("protected_run_asks_for_the_typed_environment_name") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = marker_config(
        dir.path(),
        "",
        "[[plans.p.steps]]\nkind = \"pause\"\nduration = \"1s\"\n",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "name = \"staging\"",
        "name = \"production\"\nprotected = true",
    );
    std::fs::write(&cfg, text).unwrap();
    let (wrong, right) = (dir.path().join("exit1"), dir.path().join("exit2"));
    // Output to a file (text lines), the question on the terminal.
    let out = dir.path().join("out.txt");
    let t = Tmux::start(
        "protected",
        120,
        40,
        &format!(
            "{b} run --config {c} > {o}; echo exit=$? > {f1}; {b} run --config {c} >> {o}; echo exit=$? > {f2}; sleep 60",
            b = bin().display(),
            c = cfg.display(),
            o = out.display(),
            f1 = wrong.display(),
            f2 = right.display(),
        ),
    );
    t.wait_for("the question", Duration::from_secs(20), |s| {
        s.contains("type `production` to confirm:")
    });
    assert!(!dir.path().join("traffic-5").exists());
    t.keys(&["staging", "Enter"]);
    assert_eq!(wait_file(&wrong, Duration::from_secs(20)), "exit=1");
    assert!(t.screen().contains("not confirmed"), "{}", t.screen());
    assert!(!dir.path().join("traffic-5").exists(), "nothing ran");
    t.wait_for("the question again", Duration::from_secs(20), |s| {
        s.matches("type `production` to confirm:").count() == 2
    });
    t.keys(&["production", "Enter"]);
    assert_eq!(wait_file(&right, Duration::from_secs(30)), "exit=0");
    assert!(dir.path().join("traffic-5").exists());
}

#[test]
fn cockpit_run_in_a_protected_environment_starts_only_after_the_typed_name() {
    if !tmux_or_skip("cockpit_run_in_a_protected_environment") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = marker_config(
        dir.path(),
        "",
        "[[plans.p.steps]]\nkind = \"pause\"\nname = \"bake\"\nduration = \"10m\"\n",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "name = \"staging\"",
        "name = \"production\"\nprotected = true",
    );
    std::fs::write(&cfg, text).unwrap();
    let t = Tmux::start(
        "protected-cockpit",
        120,
        40,
        &format!(
            "{} run --config {}; sleep 60",
            bin().display(),
            cfg.display()
        ),
    );
    let s = t.wait_for("the start confirmation", Duration::from_secs(30), |s| {
        s.contains("Start a release of plan `p`")
    });
    assert!(s.contains("type `production` to confirm"), "{s}");
    assert!(!s.contains("DOWN"), "no source is needed: {s}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !dir.path().join("traffic-5").exists(),
        "nothing before the name"
    );
    t.keys(&["production", "Enter"]);
    t.wait_for("the bake step running", Duration::from_secs(30), |s| {
        s.contains("▶ bake")
    });
    assert!(dir.path().join("traffic-5").exists());
}

#[test]
fn start_after_a_finished_release_drives_the_next_one_in_the_same_cockpit() {
    if !tmux_or_skip("start_after_a_finished_release") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = marker_config(
        dir.path(),
        "",
        "[[plans.p.steps]]\nkind = \"traffic\"\nweight = 100\n",
    );
    let done = dir.path().join("exit");
    let t = Tmux::start(
        "again",
        120,
        40,
        &format!(
            "{b} run --config {c}; echo exit=$? > {f}; sleep 60",
            b = bin().display(),
            c = cfg.display(),
            f = done.display(),
        ),
    );
    t.wait_for("the first release promoted", Duration::from_secs(30), |s| {
        s.contains("PROMOTED")
    });
    let history = || {
        let r = run(
            &["history", "--json", "--config", cfg.to_str().unwrap()],
            &[],
            Duration::from_secs(20),
        );
        serde_json::from_str::<Vec<serde_json::Value>>(r.stdout.trim()).unwrap()
    };
    assert_eq!(history().len(), 1);
    // `:start` asks first, then drives a new release from this cockpit.
    t.keys(&[":", "start", "Enter"]);
    t.wait_for("the start confirmation", Duration::from_secs(10), |s| {
        s.contains("Start a release of plan `p`")
    });
    t.keys(&["Enter"]);
    let start = Instant::now();
    let releases = loop {
        let h = history();
        if h.len() == 2 && h.iter().all(|r| r["outcome"] == "promoted") {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no second promoted release: {h:?}\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_ne!(releases[0]["release"], releases[1]["release"]);
    let s = t.wait_for(
        "the second release on screen",
        Duration::from_secs(10),
        |s| s.contains("PROMOTED") && !s.contains("already driven"),
    );
    assert!(!s.contains("already driven"), "{s}");
    // Finished: `q` leaves at once with the last release's outcome.
    t.keys(&["q"]);
    assert_eq!(wait_file(&done, Duration::from_secs(20)), "exit=0");
}
