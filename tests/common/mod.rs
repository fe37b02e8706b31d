//! Test harness: required servers, the built binary, temporary configs.
#![allow(dead_code)]

pub mod pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests that load the machine (demo runs with load generators) take turns,
/// so their timing does not depend on how many run at once.
pub static HEAVY: Mutex<()> = Mutex::new(());

/// Serialises heavy tests; survives a poisoned lock (an earlier test failed).
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `ROLLDECK_TEST_REQUIRE` (comma list) names `what`.
pub fn required(what: &str) -> bool {
    std::env::var("ROLLDECK_TEST_REQUIRE")
        .map(|v| v.split(',').any(|s| s.trim() == what))
        .unwrap_or(false)
}

/// The prometheus binary, or `None` after printing why the test skips.
/// Panics (fails the test) when CI requires Prometheus and it is missing.
pub fn prometheus_or_skip(test: &str) -> Option<PathBuf> {
    match rolldeck::demo::find_prometheus(None) {
        Some(p) => Some(p),
        None if required("prometheus") => {
            panic!("{test}: prometheus is required (ROLLDECK_TEST_REQUIRE) but not found on PATH")
        }
        None => {
            eprintln!(
                "skipped {test}: prometheus not found on PATH (install the Debian package `prometheus`)"
            );
            None
        }
    }
}

/// The built `rolldeck` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rolldeck"))
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON lines (non-JSON lines fail the test).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The last `release_finished` event.
    pub fn finished(&self) -> serde_json::Value {
        self.events()
            .into_iter()
            .rev()
            .find(|e| e["event"] == "release_finished")
            .unwrap_or_else(|| panic!("no release_finished in:\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Runs the binary to completion with a deadline (then kills it and fails).
pub fn run(args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn rolldeck");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            return Run {
                code: status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "rolldeck {args:?} still running after {deadline:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running binary whose stdout lines are read as they come.
pub struct Live {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Live {
    pub fn spawn(args: &[&str]) -> Live {
        Live::spawn_in(args, &[], None)
    }

    /// [`Live::spawn`] with extra environment variables and a working
    /// directory.
    pub fn spawn_in(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Live {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn().expect("spawn rolldeck");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line satisfying `pred`; fails after `deadline`.
    pub fn wait_for(
        &mut self,
        deadline: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        while start.elapsed() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l)
                        && pred(&v)
                    {
                        return v;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!(
            "line not seen within {deadline:?}; seen:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for exit (reading the rest of stdout); fails after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> i32 {
        let start = Instant::now();
        loop {
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if let Some(s) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(100));
                while let Ok(l) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                panic!(
                    "no exit within {deadline:?}; seen:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` as `rolldeck.toml` in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("rolldeck.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

/// Whether a process exists and is not a zombie (an unreaped dead process,
/// which containers without an init may keep around).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// A small tmpfs mounted for the test (root only); unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"64k"`) on a new temporary dir;
    /// `None` (skip, reason printed) when mounting fails, unless
    /// `ROLLDECK_TEST_REQUIRE` names `tmpfs`, then it panics.
    pub fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs { dir });
        }
        let req = std::env::var("ROLLDECK_TEST_REQUIRE").unwrap_or_default();
        assert!(
            !req.split(',').any(|s| s.trim() == "tmpfs"),
            "{test}: mounting a tmpfs is required (ROLLDECK_TEST_REQUIRE) but failed"
        );
        eprintln!("skipped {test}: cannot mount a tmpfs here (needs root)");
        None
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
