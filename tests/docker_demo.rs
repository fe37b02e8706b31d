//! `rolldeck demo --docker` against the real Docker Engine: stable and
//! canary run as containers of the locally built demo image, the headless
//! good/bad scenarios exit 0/3 like the plain demo, the image is reused by
//! the next run, and no container or network of the run is left behind —
//! after a normal end, SIGINT, SIGTERM, SIGHUP, and a signal while the
//! containers are still starting. Without an engine it fails at once with
//! the reason. And a `docker` action whose fields are `${env:…}` references:
//! the engine gets the values, no text rolldeck writes holds the secret ones.
//!
//! Each run's containers are found by its own label
//! (`io.rolldeck.demo.run=PID-…`, the run id starts with the process id).
//! The tests use a demo image tag of their own (`ROLLDECK_DEMO_IMAGE`),
//! removed when the last test using it ends.

mod common;
#[path = "docker_env/mod.rs"]
mod docker_env;

use bollard::Docker;
use rolldeck::demo::docker::RUN_LABEL;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Users of the test image; the last one removes it.
static IMAGE_USERS: Mutex<usize> = Mutex::new(0);

fn image_tag() -> String {
    format!("rolldeck-test-demo-{}:t", std::process::id())
}

struct World {
    docker: Docker,
    rt: tokio::runtime::Runtime,
}

impl World {
    fn new(test: &str) -> Option<World> {
        let rt = docker_env::rt();
        let docker = docker_env::engine_or_skip(test, &rt)?;
        *IMAGE_USERS.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Some(World { docker, rt })
    }

    /// Names of the containers (any state) whose name starts with
    /// `rolldeck-demo-PID-` or that carry the run label of process `pid`.
    fn containers_of(&self, pid: u32) -> Vec<String> {
        let prefix = format!("rolldeck-demo-{pid}-");
        let all = self
            .rt
            .block_on(self.docker.list_containers(Some(
                bollard::query_parameters::ListContainersOptions {
                    all: true,
                    ..Default::default()
                },
            )))
            .expect("list containers");
        all.into_iter()
            .filter(|c| {
                let name = c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .is_some_and(|n| n.trim_start_matches('/').starts_with(&prefix));
                let label = c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(RUN_LABEL))
                    .is_some_and(|r| r.starts_with(&format!("{pid}-")));
                name || label
            })
            .filter_map(|c| c.names?.first().cloned())
            .collect()
    }

    /// Networks labelled with a run of process `pid`.
    fn networks_of(&self, pid: u32) -> Vec<String> {
        let nets = self
            .rt
            .block_on(
                self.docker
                    .list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
            )
            .expect("list networks");
        nets.into_iter()
            .filter(|n| {
                n.labels
                    .as_ref()
                    .and_then(|l| l.get(RUN_LABEL))
                    .is_some_and(|r| r.starts_with(&format!("{pid}-")))
            })
            .filter_map(|n| n.name)
            .collect()
    }

    /// Removes what a failed test may have left (by process id).
    fn sweep(&self, pid: u32) {
        for n in self.containers_of(pid) {
            let _ = self.rt.block_on(rolldeck::docker::run::remove(
                &self.docker,
                n.trim_start_matches('/'),
            ));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let mut users = IMAGE_USERS.lock().unwrap_or_else(|p| p.into_inner());
        *users -= 1;
        if *users == 0
            && let Err(e) = self
                .rt
                .block_on(rolldeck::docker::image::remove(&self.docker, &image_tag()))
        {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A running `rolldeck demo --docker --headless --fast`, stdout and stderr
/// read line by line.
struct Demo {
    child: Child,
    lines: Receiver<(bool, String)>,
    seen: Vec<String>,
}

impl Demo {
    fn spawn(scenario: &str, env: &[(&str, &str)]) -> Demo {
        let image = image_tag();
        let mut cmd = Command::new(common::bin());
        cmd.args([
            "demo",
            "--docker",
            "--headless",
            "--fast",
            "--scenario",
            scenario,
        ])
        .env("ROLLDECK_DEMO_IMAGE", &image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rolldeck demo");
        let (tx, rx) = channel();
        for (is_err, pipe) in [
            (
                false,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((is_err, l)).is_err() {
                        break;
                    }
                }
            });
        }
        Demo {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line (stderr or stdout) containing `needle`.
    fn wait_line(&mut self, needle: &str, deadline: Duration) -> String {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok((_, l)) = self.lines.recv_timeout(Duration::from_millis(200)) {
                self.seen.push(l.clone());
                if l.contains(needle) {
                    return l;
                }
            }
        }
        panic!(
            "no line with {needle:?} within {deadline:?}:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the exit code, keeping every line.
    fn wait_exit(&mut self, deadline: Duration) -> i32 {
        let start = Instant::now();
        loop {
            while let Ok((_, l)) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                while let Ok((_, l)) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                panic!(
                    "demo still running after {deadline:?}:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    fn json(&self) -> Vec<serde_json::Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one headless scenario to its end; returns (exit code, the
/// `containers:` line, JSON events).
fn scenario(w: &World, name: &str) -> (i32, String, Vec<serde_json::Value>) {
    let mut d = Demo::spawn(name, &[]);
    let pid = d.pid();
    let line = d.wait_line("containers:", Duration::from_secs(120));
    // Both containers run, labelled with this run, while the release goes.
    let names = w.containers_of(pid);
    assert_eq!(names.len(), 2, "{names:?}");
    let code = d.wait_exit(Duration::from_secs(150));
    assert!(
        w.containers_of(pid).is_empty(),
        "containers left after a {name} run: {:?}",
        w.containers_of(pid)
    );
    assert!(w.networks_of(pid).is_empty());
    w.sweep(pid);
    let json = d.json();
    (code, line, json)
}

#[test]
fn docker_demo_good_promotes_bad_rolls_back_image_reused_nothing_left() {
    let Some(w) = World::new("docker_demo_good_promotes_bad_rolls_back_image_reused_nothing_left")
    else {
        return;
    };
    let _heavy = common::heavy();
    let (code, line, events) = scenario(&w, "good");
    assert_eq!(code, 0, "good promotes: {events:#?}");
    let run_id = line
        .split(&format!("{RUN_LABEL}="))
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("run label in {line}"));
    assert!(
        line.contains(&format!("rolldeck-demo-{run_id}-stable"))
            && line.contains(&format!("rolldeck-demo-{run_id}-canary")),
        "{line}"
    );
    assert!(line.contains(&image_tag()), "{line}");
    // The Docker source is live: the canary container's health target is
    // probed (the rollback trigger on it) and passes.
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "health" && e["target"] == "docker:canary" && e["ok"] == true),
        "docker:canary probed healthy: {events:#?}"
    );
    let fin = events
        .iter()
        .rfind(|e| e["event"] == "release_finished")
        .expect("release_finished");
    assert_eq!(fin["outcome"], "promoted", "{fin}");

    let (code, line, events) = scenario(&w, "bad");
    assert_eq!(code, 3, "bad rolls back: {events:#?}");
    assert!(
        line.contains("(reused)"),
        "the second run reuses the image: {line}"
    );
    let fin = events
        .iter()
        .rfind(|e| e["event"] == "release_finished")
        .expect("release_finished");
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
}

#[test]
fn docker_demo_leaves_nothing_behind_on_sigint_sigterm_sighup() {
    use nix::sys::signal::Signal;
    let Some(w) = World::new("docker_demo_leaves_nothing_behind_on_sigint_sigterm_sighup") else {
        return;
    };
    let _heavy = common::heavy();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let mut d = Demo::spawn("good", &[]);
        let pid = d.pid();
        d.wait_line("containers:", Duration::from_secs(120));
        d.wait_line("release_started", Duration::from_secs(30));
        assert_eq!(w.containers_of(pid).len(), 2);
        d.signal(sig);
        let code = d.wait_exit(Duration::from_secs(60));
        let left = w.containers_of(pid);
        w.sweep(pid);
        assert!(left.is_empty(), "{sig}: containers left: {left:?}");
        assert_ne!(code, 0, "{sig}: an interrupted demo does not claim success");
    }
    // A signal while the containers are still starting: what was created is
    // removed too.
    let mut d = Demo::spawn("good", &[]);
    let pid = d.pid();
    let start = Instant::now();
    while w.containers_of(pid).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no container created:\n{}",
            d.seen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.signal(Signal::SIGTERM);
    let code = d.wait_exit(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let left = w.containers_of(pid);
    w.sweep(pid);
    assert!(
        left.is_empty(),
        "containers left after SIGTERM while starting: {left:?}\n{}",
        d.seen.join("\n")
    );
    assert_ne!(code, 0);
}

#[test]
fn docker_demo_without_an_engine_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("no-docker.sock");
    let host = format!("unix://{}", sock.display());
    let env: HashMap<&str, &str> = HashMap::from([("DOCKER_HOST", host.as_str())]);
    let env: Vec<(&str, &str)> = env.into_iter().collect();
    let r = common::run(
        &[
            "demo",
            "--docker",
            "--headless",
            "--fast",
            "--no-prometheus",
        ],
        &env,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("needs a Docker Engine")
            && r.stderr.contains(&sock.display().to_string()),
        "the reason names the engine: {}",
        r.stderr
    );
}

#[test]
fn docker_action_env_references_resolve_and_secrets_stay_out_of_audit_and_journal() {
    let Some(env) = docker_env::Env::new(
        "docker_action_env_references_resolve_and_secrets_stay_out_of_audit_and_journal",
    ) else {
        return;
    };
    let secret = format!("s3cr3t-{}-value", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let text = r#"service = "dk"

[environment]
name = "test"

[actions.run_green]
timeout = "30s"
docker = { op = "run", container = "${env:RD_APP}-green", image = "${env:RD_IMAGE}", cmd = ["service", "${env:RD_TRACK}", "good", "8080"], env = { DB_PASSWORD = "${env:RD_PW}", NOTE = "${secret:env:RD_NOTE}", MODE = "${env:RD_TRACK}" }, labels = { "rolldeck.test" = "${env:RD_APP}-canary" } }

[plans.default]
[[plans.default.steps]]
kind = "action"
action = "run_green"
"#;
    let cfg = common::write_config(dir.path(), text);
    let state = dir.path().join("state");
    let r = common::run(
        &[
            "run",
            "--headless",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &[
            ("RD_APP", env.prefix.as_str()),
            ("RD_IMAGE", env.tag().as_str()),
            ("RD_TRACK", "green"),
            ("RD_PW", secret.as_str()),
            ("RD_NOTE", "note-value-xyz"),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // The engine got the resolved values …
    let ins = env
        .rt
        .block_on(env.docker.inspect_container(&env.name("green"), None))
        .expect("green was created under the resolved name");
    let c = ins.config.unwrap();
    assert_eq!(c.image.as_deref(), Some(env.tag().as_str()));
    let vars = c.env.unwrap_or_default();
    assert!(vars.contains(&format!("DB_PASSWORD={secret}")), "{vars:?}");
    assert!(vars.contains(&"MODE=green".to_string()), "{vars:?}");
    assert_eq!(
        c.labels.unwrap_or_default().get("rolldeck.test"),
        Some(&format!("{}-canary", env.prefix))
    );
    // … and no text rolldeck wrote holds the secrets.
    let mut written = r.stdout.clone() + &r.stderr;
    for e in walk(&state) {
        written.push_str(&String::from_utf8_lossy(&std::fs::read(&e).unwrap()));
    }
    assert!(
        written.contains("run_green"),
        "the audit and journal were read"
    );
    assert!(written.contains("DB_PASSWORD=***"), "{written}");
    assert!(
        !written.contains(&secret),
        "the password leaked:\n{written}"
    );
    assert!(
        !written.contains("note-value-xyz"),
        "the secret note leaked:\n{written}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
