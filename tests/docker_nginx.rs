//! `examples/docker-nginx` for real: blue and green containers of the demo
//! image, a real nginx (a plain process, `examples/docker-nginx/nginx.sh`)
//! with weighted upstreams in front, the example's `rolldeck.toml` (only its
//! step durations shortened) driven by `rolldeck run --headless`, and a load
//! generator in the test sending requests through nginx. Each response says
//! which track answered (the demo service's `x-demo-track` header), so the
//! test measures green's share at every weight the release sets.
//!
//! Skips (reason printed) without nginx or a Docker Engine; fails instead
//! when `ROLLDECK_TEST_REQUIRE` names them. Containers are removed and
//! nginx stopped when a test ends, also when it fails.

mod common;
#[path = "docker_env/mod.rs"]
mod docker_env;

use common::{Live, required};
use docker_env::Env;
use rolldeck::docker::run::{HealthSpec, PortSpec, RunSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Analysis and bake steps in the test (the example says 30 s), at least
/// the checks' window (5 s here, 10 s in the example) + one interval.
const STEP: &str = "9s";

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/docker-nginx")
}

/// Whether nginx is installed; prints why not (skip) or panics when
/// required.
fn nginx_or_skip(test: &str) -> bool {
    match Command::new("nginx").arg("-v").output() {
        Ok(o) if o.status.success() => true,
        r if required("nginx") => {
            panic!("{test}: nginx is required (ROLLDECK_TEST_REQUIRE) but cannot run: {r:?}")
        }
        _ => {
            eprintln!("skipped {test}: nginx not found (install the Debian package `nginx-light`)");
            false
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Blue running healthy, nginx in front with all traffic on blue, and the
/// environment the example's config and scripts read.
struct Setup {
    vars: Vec<(String, String)>,
    nginx_port: u16,
    prefix: tempfile::TempDir,
    // Dropped after nginx is stopped (see Drop): removes the containers.
    env: Env,
}

impl Setup {
    fn new(test: &str, green_mode: &str) -> Option<Setup> {
        if !nginx_or_skip(test) {
            return None;
        }
        let env = Env::new(test)?;
        let (blue_port, green_port, nginx_port) = (free_port(), free_port(), free_port());
        let blue = env.name("blue");
        let spec = RunSpec {
            name: blue.clone(),
            image: env.tag(),
            cmd: ["service", "blue", "good", "8080"]
                .map(String::from)
                .to_vec(),
            ports: vec![PortSpec {
                container: 8080,
                host: blue_port,
                host_ip: "127.0.0.1".into(),
            }],
            health: Some(HealthSpec {
                cmd: [
                    "/rolldeck",
                    "__container",
                    "probe",
                    "http://127.0.0.1:8080/health",
                ]
                .map(String::from)
                .to_vec(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
                retries: 2,
                start_period: Duration::ZERO,
            }),
            ..Default::default()
        };
        env.rt
            .block_on(rolldeck::docker::run::run(&env.docker, &spec))
            .unwrap_or_else(|e| panic!("{e}"));
        env.wait_healthy(&blue);
        let prefix = tempfile::tempdir().unwrap();
        let vars: Vec<(String, String)> = [
            ("APP", env.prefix.clone()),
            ("DEMO_IMAGE", env.tag()),
            ("GREEN_MODE", green_mode.to_string()),
            ("BLUE_PORT", blue_port.to_string()),
            ("GREEN_PORT", green_port.to_string()),
            ("NGINX_PORT", nginx_port.to_string()),
            ("NGINX_PREFIX", prefix.path().display().to_string()),
            ("BLUE_ADDR", format!("127.0.0.1:{blue_port}")),
            ("GREEN_ADDR", format!("127.0.0.1:{green_port}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let s = Setup {
            vars,
            nginx_port,
            prefix,
            env,
        };
        let out = s.script("nginx.sh", &["start"]);
        assert!(
            out.status.success(),
            "nginx.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(s)
    }

    /// Runs one of the example's scripts with the setup's environment.
    fn script(&self, name: &str, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(example_dir().join(name));
        c.args(args);
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c.output().unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The example's config with `STEP` long analysis and bake steps and
    /// 5 s check windows, written to a temp dir.
    fn config(&self, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(example_dir().join("rolldeck.toml")).unwrap();
        assert!(text.contains("duration = \"30s\"") && text.contains("window = \"10s\""));
        let text = text
            .replace("duration = \"30s\"", &format!("duration = \"{STEP}\""))
            .replace("window = \"10s\"", "window = \"5s\"");
        common::write_config(dir, &text)
    }

    /// `rolldeck run --headless` of `cfg` from the example folder (its
    /// traffic action calls `./set-weight.sh`).
    fn run(&self, cfg: &Path, state: &Path) -> Live {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Live::spawn_in(
            &[
                "run",
                "--headless",
                "--config",
                cfg.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
            &vars,
            Some(&example_dir()),
        )
    }

    fn var(&self, k: &str) -> &str {
        &self
            .vars
            .iter()
            .find(|(n, _)| n == k)
            .expect("a known variable")
            .1
    }

    fn upstream(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("conf/upstream.conf")).unwrap()
    }

    fn container_state(&self, suffix: &str) -> String {
        self.env.rt.block_on(async {
            self.env
                .docker
                .inspect_container(&self.env.name(suffix), None)
                .await
                .map(|i| i.state.unwrap().status.unwrap().to_string())
                .unwrap_or_else(|e| format!("{e}"))
        })
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let out = self.script("nginx.sh", &["stop"]);
        if !out.status.success() {
            eprintln!("nginx.sh stop: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Who answered one request: `Some(true)` green, `Some(false)` blue, `None`
/// no answer or no track header.
type Sample = (Instant, Option<bool>);

/// Requests through nginx from two tasks, each answer recorded with its
/// time, until stopped (or 60 000 requests, or 5 minutes).
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(rt: &tokio::runtime::Runtime, port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let began = Instant::now();
        let tasks = (0..2)
            .map(|_| {
                let (stop, samples, client) = (stop.clone(), samples.clone(), client.clone());
                rt.spawn(async move {
                    let url = format!("http://127.0.0.1:{port}/");
                    while !stop.load(Ordering::Relaxed)
                        && samples.lock().unwrap().len() < 60_000
                        && began.elapsed() < Duration::from_secs(300)
                    {
                        let who = match client.get(&url).send().await {
                            Ok(r) => {
                                let t = r
                                    .headers()
                                    .get(rolldeck::demo::service::TRACK_HEADER)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let _ = r.bytes().await;
                                t.map(|t| t == "green")
                            }
                            Err(_) => None,
                        };
                        samples.lock().unwrap().push((Instant::now(), who));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            samples,
            tasks,
        }
    }

    /// (answers, green's share in percent) between `from` and `to`.
    fn share(&self, from: Instant, to: Instant) -> (usize, f64) {
        let s = self.samples.lock().unwrap();
        let answered: Vec<bool> = s
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .filter_map(|(_, w)| *w)
            .collect();
        let green = answered.iter().filter(|g| **g).count();
        let n = answered.len();
        (
            n,
            if n == 0 {
                0.0
            } else {
                100.0 * green as f64 / n as f64
            },
        )
    }

    fn stop(self, rt: &tokio::runtime::Runtime) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = rt.block_on(t);
        }
    }
}

/// Every JSON line of the run with when the test saw it, until
/// `release_finished`.
fn events_until_finished(live: &mut Live, deadline: Duration) -> Vec<(Instant, serde_json::Value)> {
    let start = Instant::now();
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        let v = live.wait_for(left.max(Duration::from_millis(1)), |_| true);
        let done = v["event"] == "release_finished";
        out.push((Instant::now(), v));
        if done {
            return out;
        }
    }
}

/// (time, weight) of every traffic change the release made.
fn weight_changes(events: &[(Instant, serde_json::Value)]) -> Vec<(Instant, u64)> {
    events
        .iter()
        .filter(|(_, e)| e["event"] == "traffic")
        .map(|(t, e)| (*t, e["weight"].as_u64().expect("weight")))
        .collect()
}

/// The end of the period that starts at `t`: the start of the next traffic
/// step (nginx may switch before its end is reported), of the next
/// stop_blue/stop_green step, or the end of the release.
fn period_end(events: &[(Instant, serde_json::Value)], t: Instant) -> Instant {
    events
        .iter()
        .filter(|(at, e)| {
            *at > t
                && (e["event"] == "release_finished"
                    || (e["event"] == "step_started"
                        && (e["kind"] == "traffic"
                            || e["name"].as_str().is_some_and(|n| n.contains("stop_")))))
        })
        .map(|(at, _)| *at)
        .next()
        .expect("a period end")
}

#[test]
fn canary_share_through_nginx_follows_each_weight_step() {
    let Some(s) = Setup::new(
        "canary_share_through_nginx_follows_each_weight_step",
        "good",
    ) else {
        return;
    };
    let _heavy = common::heavy();
    let dir = tempfile::tempdir().unwrap();
    let cfg = s.config(dir.path());
    let load = Load::start(&s.env.rt, s.nginx_port);
    let started = Instant::now();
    let mut live = s.run(&cfg, &dir.path().join("state"));
    let events = events_until_finished(&mut live, Duration::from_secs(120));
    let code = live.wait_exit(Duration::from_secs(30));
    // All on green once blue is stopped: measured after the end.
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    // Before the first traffic step: all on blue.
    let changes = weight_changes(&events);
    let (n0, share0) = load.share(started, period_end(&events, started));
    assert_eq!(code, 0, "promoted:\n{}", live.seen.join("\n"));
    assert_eq!(
        changes.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        [10, 50, 90, 100],
        "{}",
        live.seen.join("\n")
    );
    assert!(n0 > 20, "load before the first step: {n0} answers");
    assert_eq!(share0, 0.0, "green gets nothing before its first step");
    for (t, w) in &changes {
        // From a second after the reload to the next change.
        // 100 %: from then on (blue is stopped right after the switch).
        let to = if *w == 100 {
            end
        } else {
            period_end(&events, *t)
        };
        let (n, share) = load.share(*t + Duration::from_secs(1), to);
        assert!(n >= 100, "weight {w}: only {n} answers measured");
        assert!(
            (share - *w as f64).abs() <= 4.0,
            "weight {w}: green answered {share:.1} % of {n} requests"
        );
    }
    load.stop(&s.env.rt);
    assert!(
        s.upstream().contains("down;"),
        "blue is down in nginx at 100 %: {}",
        s.upstream()
    );
    assert_eq!(
        s.container_state("blue"),
        "exited",
        "blue stopped at the end"
    );
    assert_eq!(s.container_state("green"), "running");
}

#[test]
fn bad_green_is_rolled_back_and_its_share_returns_to_zero() {
    let Some(s) = Setup::new(
        "bad_green_is_rolled_back_and_its_share_returns_to_zero",
        "failing",
    ) else {
        return;
    };
    let _heavy = common::heavy();
    let dir = tempfile::tempdir().unwrap();
    let cfg = s.config(dir.path());
    let load = Load::start(&s.env.rt, s.nginx_port);
    let mut live = s.run(&cfg, &dir.path().join("state"));
    let events = events_until_finished(&mut live, Duration::from_secs(120));
    let code = live.wait_exit(Duration::from_secs(30));
    // Keep measuring for a while after the release ended.
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    let changes = weight_changes(&events);
    let log = live.seen.join("\n");
    assert_eq!(code, 3, "rolled back:\n{log}");
    let fin = &events.last().unwrap().1;
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
    assert!(
        events.iter().any(|(_, e)| e["event"] == "rollback_started"
            && e["reason"].as_str().is_some_and(|r| r.contains("error"))),
        "the error-rate trigger rolled it back:\n{log}"
    );
    let (t0, w0) = *changes.last().expect("traffic changes");
    assert_eq!(w0, 0, "the last change is back to 0 %: {changes:?}");
    assert!(changes.iter().any(|(_, w)| *w > 0), "{changes:?}");
    // While green had traffic it got some …
    let (t1, w1) = changes[0];
    let (n, share) = load.share(t1 + Duration::from_secs(1), period_end(&events, t1));
    assert!(
        n >= 50 && (share - w1 as f64).abs() <= 4.0,
        "weight {w1}: {share:.1} % of {n}"
    );
    // … and after the rollback none.
    let (n, share) = load.share(t0 + Duration::from_secs(1), end);
    load.stop(&s.env.rt);
    assert!(n >= 100, "only {n} answers after the rollback");
    assert_eq!(
        share, 0.0,
        "green still answered {share:.1} % after the rollback"
    );
    assert!(
        s.upstream()
            .contains(&format!("{} down;", s.var("GREEN_ADDR"))),
        "green is down in nginx: {}",
        s.upstream()
    );
    assert_eq!(
        s.container_state("green"),
        "exited",
        "green stopped by the rollback"
    );
    assert_eq!(s.container_state("blue"), "running");
}

#[test]
fn a_broken_nginx_config_fails_the_traffic_step_and_keeps_the_old_weights() {
    let Some(s) = Setup::new(
        "a_broken_nginx_config_fails_the_traffic_step_and_keeps_the_old_weights",
        "good",
    ) else {
        return;
    };
    let _heavy = common::heavy();
    // Someone broke the live config on disk after nginx started: every
    // `nginx -t` fails; the running nginx still serves the old weights.
    let main = s.prefix.path().join("conf/nginx.conf");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("\nthis_is_not_a_directive on;\n");
    std::fs::write(&main, text).unwrap();
    let before = s.upstream();
    let dir = tempfile::tempdir().unwrap();
    let cfg = s.config(dir.path());
    let load = Load::start(&s.env.rt, s.nginx_port);
    let mut live = s.run(&cfg, &dir.path().join("state"));
    let events = events_until_finished(&mut live, Duration::from_secs(120));
    let code = live.wait_exit(Duration::from_secs(30));
    let log = live.seen.join("\n");
    assert_ne!(code, 0, "{log}");
    let failed = events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e["event"] == "step_finished" && e["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed step:\n{log}"));
    let detail = failed["detail"].as_str().unwrap();
    assert!(
        failed["name"].as_str().unwrap().contains("traffic"),
        "the traffic step failed: {failed}"
    );
    assert!(
        detail.contains("nginx -t refused")
            && detail.contains("unknown directive \"this_is_not_a_directive\""),
        "the step says nginx's message: {detail}"
    );
    assert!(
        weight_changes(&events).is_empty(),
        "no weight changed:\n{log}"
    );
    assert_eq!(s.upstream(), before, "the running config is untouched");
    std::thread::sleep(Duration::from_secs(1));
    let (n, share) = load.share(events.first().unwrap().0, Instant::now());
    load.stop(&s.env.rt);
    assert!(n >= 100, "nginx kept serving: {n} answers");
    assert_eq!(share, 0.0, "the old weights (all blue) kept serving");
}
