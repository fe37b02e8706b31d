//! `rolldeck demo` leaves nothing behind: a dropped terminal (SIGHUP) stops
//! Prometheus and PostgreSQL and removes the temp dirs; `kill -9` of
//! rolldeck takes them with it (parent-death signal through `rolldeck
//! __supervise`, kept by `setpriv --pdeathsig=keep` when PostgreSQL runs
//! as nobody).

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Live processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

fn wait_until(deadline: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Kills the test's own tmux server when the test ends (pass or fail).
struct TmuxServer(String);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn demo_in_a_terminal_that_drops_stops_prometheus_and_cleans_up() {
    let _g = heavy();
    if prometheus_or_skip("demo_in_a_terminal_that_drops").is_none() {
        return;
    }
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(!required("tmux"), "tmux is required but not found");
        eprintln!("skipped demo_in_a_terminal_that_drops: tmux not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let socket = format!("rolldeck-test-{}", std::process::id());
    let cmd = format!(
        "TMPDIR={} {} demo --fast",
        tmp.path().display(),
        bin().display()
    );
    let st = std::process::Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let _server = TmuxServer(socket.clone());
    let needle = tmp.path().to_string_lossy().into_owned();
    wait_until(Duration::from_secs(40), "the demo's Prometheus", || {
        !processes_with(&format!("--config.file={needle}")).is_empty()
    });
    let prom = processes_with(&format!("--config.file={needle}"));
    // Prometheus's and the demo's, and PostgreSQL's when it is installed.
    let dirs = if rolldeck::demo::migrations::find_postgres().is_some() {
        3
    } else {
        2
    };
    wait_until(Duration::from_secs(40), "the demo's temp dirs", || {
        entries(tmp.path()).len() == dirs
    });
    // The cockpit is up and the release under way.
    std::thread::sleep(Duration::from_secs(4));
    // Every child living in the temp dirs (Prometheus, PostgreSQL).
    let children = processes_with(&needle);
    // Drop the terminal: the pty goes away, rolldeck gets SIGHUP.
    let _ = std::process::Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
    wait_until(Duration::from_secs(40), "Prometheus stopped", || {
        prom.iter().all(|p| !alive(*p))
    });
    wait_until(Duration::from_secs(40), "PostgreSQL stopped", || {
        children.iter().all(|p| !alive(*p))
    });
    wait_until(Duration::from_secs(45), "temp dirs removed", || {
        entries(tmp.path()).is_empty()
    });
}

#[test]
fn demo_killed_with_sigkill_takes_prometheus_with_it() {
    let _g = heavy();
    if prometheus_or_skip("demo_killed_with_sigkill").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["demo", "--fast", "--headless"])
        .env("TMPDIR", tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = format!("--config.file={}", tmp.path().display());
    wait_until(Duration::from_secs(40), "the demo's Prometheus", || {
        !processes_with(&needle).is_empty()
    });
    let mut prom = processes_with(&needle);
    // PostgreSQL too, once it runs (its postmaster keeps its command line).
    if rolldeck::demo::migrations::find_postgres().is_some() {
        let pg = format!("{}/rolldeck-demo-pg-", tmp.path().display());
        let server = || -> Vec<i32> {
            processes_with(&pg)
                .into_iter()
                .filter(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&cmd).contains("listen_addresses")
                })
                .collect()
        };
        wait_until(Duration::from_secs(60), "the demo's PostgreSQL", || {
            !server().is_empty()
        });
        prom.extend(server());
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    wait_until(
        Duration::from_secs(10),
        "Prometheus and PostgreSQL killed with rolldeck",
        || prom.iter().all(|p| !alive(*p)),
    );
}
