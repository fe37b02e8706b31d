//! A release that outlives the terminal: the background driver
//! (`run --detach`), its control socket, `ps`/`status`, attach, hang-up
//! hand-off. Real processes; every process started is killed at the end.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A config whose traffic action leaves `traffic-<weight>` in `dir`, with a
/// 10-minute pause step (the release stays unfinished while the test runs).
fn pause_config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"service = "svc"
state_dir = "{state}"
[environment]
name = "staging"
[actions.traffic]
argv = ["touch", "{dir}/traffic-{{weight}}"]
[plans.p]
[[plans.p.steps]]
kind = "traffic"
weight = 5
[[plans.p.steps]]
kind = "pause"
name = "bake"
duration = "10m"
[[rollback]]
kind = "traffic"
weight = 0
"#,
        state = dir.join("state").display(),
        dir = dir.display(),
    );
    write_config(dir, &text)
}

/// Kills the background driver `pid` on drop (SIGKILL; it may be gone).
struct Reap(i32);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn status_json(cfg: &Path) -> Value {
    let st = run(
        &["status", "--json", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(st.code, 0, "{st:?}");
    serde_json::from_str(st.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {st:?}"))
}

/// A line-oriented client of the control socket.
struct Sock {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Sock {
    fn connect(path: &Path) -> std::io::Result<Sock> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Sock {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }
    fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }
    fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.send_raw(line.as_bytes());
    }
    fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))),
            Err(e) => panic!("no reply: {e}"),
        }
    }
    /// The reply to request `id` (other lines skipped).
    fn call(&mut self, mut v: Value, id: u64) -> Value {
        v["id"] = id.into();
        self.send(v);
        loop {
            let r = self.recv().expect("connection closed");
            if r["id"] == id {
                return r;
            }
        }
    }
}

#[test]
fn a_detached_release_runs_without_a_terminal_and_is_controlled_over_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = pause_config(dir.path());
    let c = cfg.to_str().unwrap();
    let t0 = Instant::now();
    let r = run(
        &["run", "--detach", "--headless", "--config", c],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 7, "detached = started, not finished: {r:?}");
    let detached = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "detached")
        .unwrap_or_else(|| panic!("no detached line: {r:?}"));
    let pid = detached["pid"].as_i64().unwrap() as i32;
    let _reap = Reap(pid);
    let release = detached["release"].as_str().unwrap().to_string();
    assert!(release.starts_with("svc-"), "{detached}");
    assert!(
        t0.elapsed() < Duration::from_secs(55),
        "returned before the 10-minute release ends"
    );
    assert!(alive(pid), "the background driver runs");

    // status --json: running, under the background driver.
    let st = status_json(&cfg);
    assert_eq!(st["release"], release.as_str(), "{st}");
    assert_eq!(st["background"]["state"], "running", "{st}");
    assert_eq!(st["background"]["driver"]["pid"], pid, "{st}");
    assert_eq!(
        st["driver"]["pid"], pid,
        "the lock holder is the driver: {st}"
    );
    // It has no terminal: a session of its own.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "session leader (setsid): {stat}"
    );
    assert_eq!(fields[4], "0", "no controlling terminal: {stat}");
    // A hang-up sent by hand does not stop it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();

    let sock_path = PathBuf::from(detached["socket"].as_str().unwrap());
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&sock_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660, "owner and group only");
    }
    // Client A follows the events; client B issues a command.
    let mut a = Sock::connect(&sock_path).unwrap();
    let hello = a.call(json!({"op": "hello", "operator": {"user": "alice"}}), 1);
    assert_eq!(hello["ok"], true, "{hello}");
    a.send(json!({"op": "events", "from": 0, "id": 2}));
    let ack = a.recv().unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["release"], release.as_str());
    let first = a.recv().unwrap();
    assert_eq!(first["offset"], 0);
    assert_eq!(first["record"]["event"]["type"], "start", "{first}");

    let mut b = Sock::connect(&sock_path).unwrap();
    // A bad request gets an error reply, never a crash.
    b.send_raw(b"this is not json\n");
    let bad = b.recv().unwrap();
    assert_eq!(bad["ok"], false, "{bad}");
    let bad = b.call(json!({"op": "format_disk"}), 9);
    assert_eq!(bad["ok"], false, "{bad}");
    let bad = b.call(
        json!({"op": "command", "command": "set_weight", "weight": 900}),
        10,
    );
    assert_eq!(bad["ok"], false, "{bad}");
    // What the engine refuses now is refused, with its reason.
    let no = b.call(json!({"op": "command", "command": "approve"}), 11);
    assert_eq!(no["ok"], false, "{no}");
    assert!(no["error"].as_str().unwrap().contains("approval"), "{no}");
    // A read-only connection cannot act.
    let mut ro = Sock::connect(&sock_path).unwrap();
    assert_eq!(
        ro.call(json!({"op": "hello", "read_only": true}), 1)["ok"],
        true
    );
    let no = ro.call(json!({"op": "command", "command": "pause"}), 2);
    assert_eq!(no["ok"], false, "{no}");
    assert!(no["error"].as_str().unwrap().contains("read-only"), "{no}");
    // The command from B …
    b.call(json!({"op": "hello", "operator": {"user": "bob"}}), 12);
    let ok = b.call(
        json!({"op": "command", "command": "pause", "reason": "look at the graphs"}),
        13,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    // … appears in A's event stream, naming B's operator.
    let deadline = Instant::now() + Duration::from_secs(20);
    let paused = loop {
        assert!(Instant::now() < deadline, "the command never reached A");
        let e = a.recv().expect("stream open");
        if e["record"]["event"]["type"] == "command" {
            break e;
        }
    };
    assert_eq!(paused["record"]["event"]["command"], "pause", "{paused}");
    let who = paused["record"]["event"]["operator"].as_str().unwrap();
    assert!(who.contains("bob"), "the issuing operator: {who}");
    // The audit log names the operator of every command, refused ones too.
    let audit =
        rolldeck::exec::AuditLog::read_all(&dir.path().join("state/svc@staging/audit.jsonl"))
            .unwrap();
    let cmd = audit
        .iter()
        .find(|r| r.action == "command pause" && r.ok)
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert!(cmd.operator.user.contains("bob"), "{cmd:?}");
    assert_eq!(cmd.reason.as_deref(), Some("look at the graphs"));
    assert!(
        audit.iter().any(|r| r.action == "command approve" && !r.ok),
        "{audit:?}"
    );
    // status (socket) and `ps` name the attached operators.
    let s = b.call(json!({"op": "status"}), 14);
    assert_eq!(s["release"]["id"], release.as_str(), "{s}");
    let ps = run(
        &["ps", "--json", "--config", c],
        &[],
        Duration::from_secs(20),
    );
    let rows: Value = serde_json::from_str(ps.stdout.trim()).unwrap();
    assert_eq!(rows[0]["driver"]["pid"], pid, "{rows}");
    assert_eq!(rows[0]["step"], "bake", "{rows}");
    let attached = rows[0]["attached"].to_string();
    assert!(
        attached.contains("alice") && attached.contains("bob"),
        "{rows}"
    );
    // A line over the cap: an error, the connection closed, the driver fine.
    let mut big = Sock::connect(&sock_path).unwrap();
    let mut huge = vec![b'x'; 70 * 1024];
    huge.push(b'\n');
    big.send_raw(&huge);
    let e = big.recv().unwrap();
    assert_eq!(e["ok"], false, "{e}");
    assert!(big.recv().is_none(), "closed after an over-long line");
    assert_eq!(b.call(json!({"op": "history"}), 15)["ok"], true);
    assert!(alive(pid));
    drop((a, b, ro, big));

    // kill -9: status and ps say the driver is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = status_json(&cfg);
    assert_eq!(st["background"]["state"], "gone", "{st}");
    assert_eq!(st["phase"], "paused", "{st}");
    let text = run(&["status", "--config", c], &[], Duration::from_secs(20));
    assert!(text.stdout.contains("is GONE"), "{text:?}");

    // `run --detach` again resumes it from the journal with a new driver.
    let r = run(
        &["run", "--detach", "--headless", "--resume", "--config", c],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 7, "{r:?}");
    let again = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "detached")
        .unwrap();
    let pid2 = again["pid"].as_i64().unwrap() as i32;
    let _reap2 = Reap(pid2);
    assert_eq!(again["release"], release.as_str(), "the same release");
    let st = status_json(&cfg);
    assert_eq!(st["background"]["state"], "running", "{st}");
    assert_eq!(st["phase"], "running", "--resume resumed it: {st}");
    // SIGTERM stops it as it stops a headless run; the socket goes.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid2),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(pid2), "SIGTERM stops the background driver");
    assert!(!sock_path.exists(), "its socket is removed");
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn a_user_outside_the_sockets_group_cannot_connect() {
    if !is_root() {
        eprintln!(
            "skipped a_user_outside_the_sockets_group_cannot_connect: needs root for setpriv"
        );
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped a_user_outside_the_sockets_group_cannot_connect: no setpriv");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = pause_config(dir.path());
    let c = cfg.to_str().unwrap();
    let r = run(
        &["run", "--detach", "--headless", "--config", c],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 7, "{r:?}");
    let d = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "detached")
        .unwrap();
    let _reap = Reap(d["pid"].as_i64().unwrap() as i32);
    // `ps` as nobody: in the socket's group (root) it connects; outside it
    // the kernel refuses (mode 0660).
    let ps_as = |group: &str| {
        let o = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                &format!("--regid={group}"),
                "--clear-groups",
            ])
            .arg(bin())
            .args(["ps", "--json", "--config", c])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rows: Value = serde_json::from_str(out.trim()).unwrap();
        rows[0].clone()
    };
    let inside = ps_as("root");
    assert!(
        inside["error"].is_null(),
        "a group member connects: {inside}"
    );
    let outside = ps_as("nogroup");
    let err = outside["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("Permission denied"),
        "a user outside the group is refused: {outside}"
    );
}

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
        assert!(
            !required("tmux"),
            "{test}: tmux is required (ROLLDECK_TEST_REQUIRE) but not installed"
        );
        eprintln!("skipped {test}: tmux not installed");
    }
    ok
}

impl Tmux {
    fn start(name: &str, shell_cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("rolldeck-detach-{}-{name}", std::process::id()),
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
                "160",
                "-y",
                "48",
                shell_cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success());
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
        c.args(["send-keys", "-t", &self.name]).args(keys);
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
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    fn kill(&self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_hang_up_mid_analysis_hands_off_and_a_bad_canary_is_still_rolled_back() {
    if !tmux_or_skip("a_hang_up_mid_analysis_hands_off") {
        return;
    }
    let _g = heavy();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The fake services live in this test, not in the cockpit.
    let env = rt
        .block_on(rolldeck::demo::DemoEnv::start(
            rolldeck::demo::Scenario::Bad,
            None,
        ))
        .expect("demo env");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let text = rolldeck::demo::scenario_config::demo_config(
        &env,
        &state,
        rolldeck::demo::scenario_config::Pace::Fast,
    );
    let cfg = write_config(dir.path(), &text);
    let c = cfg.to_str().unwrap();
    let t = Tmux::start("drive", &format!("{} run --config {c}", bin().display()));
    t.wait_for("the first analysis", Duration::from_secs(90), |s| {
        s.contains("▶ analysis")
    });
    // The SSH connection drops: the terminal hangs up.
    t.kill();
    // A background driver takes over and the trigger still rolls back.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut pids = std::collections::BTreeSet::new();
    let st = loop {
        let st = status_json(&cfg);
        if let Some(p) = st["background"]["driver"]["pid"].as_i64() {
            pids.insert(p as i32);
        }
        if st["phase"] == "rolled_back" {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "never rolled back after the hang-up: {st}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _reap: Vec<Reap> = pids.iter().map(|p| Reap(*p)).collect();
    assert!(!pids.is_empty(), "a background driver drove it: {st}");
    let log = std::fs::read_to_string(state.join("svc@demo").join("driver.log"))
        .or_else(|_| {
            // The service name of the demo config.
            let sub = std::fs::read_dir(&state)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            std::fs::read_to_string(sub.join("driver.log"))
        })
        .unwrap();
    assert!(log.contains("handed to background driver"), "{log}");
    assert!(
        log.contains("rolled_back") || log.contains("rollback"),
        "{log}"
    );
    // `rolldeck attach` in a new terminal shows the outcome.
    let t2 = Tmux::start(
        "attach",
        &format!("{} attach --config {c}", bin().display()),
    );
    t2.wait_for("the outcome", Duration::from_secs(30), |s| {
        s.contains("ROLLED BACK")
    });
    t2.keys(&["q"]);
    drop(t2);
    drop(env);
}

#[test]
fn an_attached_cockpit_sends_commands_and_says_when_the_driver_is_killed() {
    if !tmux_or_skip("an_attached_cockpit_sends_commands") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = pause_config(dir.path());
    let c = cfg.to_str().unwrap();
    let r = run(
        &["run", "--detach", "--headless", "--config", c],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 7, "{r:?}");
    let d = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "detached")
        .unwrap();
    let pid = d["pid"].as_i64().unwrap() as i32;
    let _reap = Reap(pid);
    // Plain `rolldeck` attaches when a background driver exists.
    let t = Tmux::start("att", &format!("{} --config {c}", bin().display()));
    t.wait_for("attached", Duration::from_secs(30), |s| {
        s.contains("ATTACHED") && s.contains("bake")
    });
    t.keys(&[":pause", "Enter"]);
    t.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Pause the release")
    });
    t.keys(&["Enter"]);
    t.wait_for("paused by the driver", Duration::from_secs(20), |s| {
        s.contains("PAUSED") && s.contains("accepted")
    });
    let st = status_json(&cfg);
    assert_eq!(st["phase"], "paused", "{st}");
    // kill -9: the cockpit says the driver is gone and offers to resume.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    t.wait_for("driver gone", Duration::from_secs(20), |s| {
        s.contains("DRIVER GONE") && s.contains(":takeover")
    });
    t.keys(&[":takeover", "Enter"]);
    let s = t.wait_for("a new driver", Duration::from_secs(40), |s| {
        s.contains("ATTACHED") && !s.contains("DRIVER GONE")
    });
    let st = status_json(&cfg);
    assert_eq!(st["background"]["state"], "running", "{st}\n{s}");
    let pid2 = st["background"]["driver"]["pid"].as_i64().unwrap() as i32;
    let _reap2 = Reap(pid2);
    assert_ne!(pid2, pid);
    t.keys(&["q"]);
}
