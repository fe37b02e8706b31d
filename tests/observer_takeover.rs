//! An observer cockpit notices within seconds that its driver was killed
//! (lock probe) and `:takeover` makes it the driver, resuming from the
//! journal.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session on a private socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(shell_cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("rolldeck-test-{}-takeover", std::process::id()),
        };
        let st = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "o",
                "-x",
                "160",
                "-y",
                "48",
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
            .args(["capture-pane", "-p", "-t", "o"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut c = self.cmd();
        c.args(["send-keys", "-t", "o"]);
        c.args(keys);
        assert!(c.status().unwrap().success());
    }

    fn wait_for(&self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < deadline,
                "screen never showed {what} within {deadline:?}; last screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn observer_notices_a_killed_driver_and_takes_over() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(!required("tmux"), "tmux is required but not found");
        eprintln!("skipped observer_notices_a_killed_driver: tmux not found");
        return;
    }
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
duration = "10m"
"#,
            dir.path().join("state").display()
        ),
    );
    let cfg_s = cfg.to_str().unwrap();
    let mut driver = Live::spawn(&["run", "--headless", "--config", cfg_s]);
    driver.wait_for(Duration::from_secs(20), |e| e["event"] == "step_started");
    let driver_pid = driver.child.id();

    let t = Tmux::start(&format!("{} --config {cfg_s}; sleep 60", bin().display()));
    t.wait_for("observer", Duration::from_secs(20), |s| {
        s.contains("OBSERVER — driven by") && s.contains(&format!("pid {driver_pid}"))
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = driver.child.wait();
    // Within seconds, not minutes.
    let s = t.wait_for("driver gone", Duration::from_secs(8), |s| {
        s.contains("DRIVER GONE")
    });
    assert!(s.contains(":takeover"), "{s}");
    assert!(s.contains(&format!("pid {driver_pid}")), "{s}");

    t.keys(&[":"]);
    t.keys(&["takeover"]);
    t.keys(&["Enter"]);
    t.wait_for("driving", Duration::from_secs(15), |s| {
        s.contains("took over") || (s.contains("driver") && !s.contains("OBSERVER"))
    });
    // The lock is held again, by the cockpit, and the release resumed.
    let start = Instant::now();
    loop {
        let st = run(
            &["status", "--json", "--config", cfg_s],
            &[],
            Duration::from_secs(20),
        );
        let v: serde_json::Value =
            serde_json::from_str(st.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {st:?}"));
        if let Some(pid) = v["driver"]["pid"].as_u64() {
            assert_ne!(pid, u64::from(driver_pid));
            assert_eq!(v["phase"], "running", "{v}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nobody drives: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
