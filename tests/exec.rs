//! `rolldeck::exec` against real processes and a real (tiny) HTTP server.

mod common;
use common::Tmpfs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use rolldeck::exec::{
    ActionOutcome, ActionRequest, ActionSpec, AuditLog, AuditRecord, AuditStage, Executor,
    Operator, OutputLine, Stream,
};
use rolldeck::redact::Redactor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

struct Fixture {
    dir: tempfile::TempDir,
    audit: PathBuf,
    ex: Executor,
}

fn fixture(secrets: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("state/audit.jsonl");
    let operator = Operator {
        user: "alice".into(),
        host: "bastion".into(),
        ssh_client: Some("10.0.0.5".into()),
        tty: None,
    };
    let ex = Executor::new(
        AuditLog::open(&audit).unwrap(),
        operator,
        Redactor::new(secrets.iter().map(|s| s.to_string())),
    );
    Fixture { dir, audit, ex }
}

fn argv(args: &[&str]) -> ActionSpec {
    ActionSpec {
        argv: Some(args.iter().map(|s| s.to_string()).collect()),
        ..ActionSpec::default()
    }
}

fn shell(cmd: &str) -> ActionSpec {
    ActionSpec {
        shell: true,
        command: Some(cmd.to_string()),
        ..ActionSpec::default()
    }
}

fn request(name: &str, spec: ActionSpec, vars: &[(&str, &str)]) -> ActionRequest {
    ActionRequest {
        name: name.into(),
        spec,
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        reason: None,
        release: None,
        step: None,
    }
}

/// Runs and returns the outcome and every output line.
async fn run(ex: &Executor, req: ActionRequest) -> (ActionOutcome, Vec<OutputLine>) {
    let (tx, mut rx) = mpsc::channel(4096);
    let o = ex.run(req, tx).await;
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    (o, lines)
}

fn text(lines: &[OutputLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

fn audit(f: &Fixture) -> Vec<AuditRecord> {
    AuditLog::read_all(&f.audit).unwrap()
}

/// True once `pid` is gone (or a zombie nobody reaps, which is dead too).
fn dead(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => true,
        _ => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true),
    }
}

async fn wait_dead(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dead(pid)
}

async fn read_pid(path: &Path) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn placeholder_value_stays_one_argument() {
    let f = fixture(&[]);
    let spec = argv(&[
        "sh",
        "-c",
        r#"printf '%s|' "$@"; echo"#,
        "x",
        "{reason}",
        "w={weight}",
        "{{weight}",
    ]);
    let mut req = request("args", spec, &[("weight", "25")]);
    req.reason = Some("two  words; echo pwned $(id) 'q' \"d\"".into());
    let (o, lines) = run(&f.ex, req).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(o.exit_code, Some(0));
    assert_eq!(o.detail, "exit 0");
    assert_eq!(
        text(&lines, Stream::Stdout),
        vec!["two  words; echo pwned $(id) 'q' \"d\"|w=25|{weight}|"]
    );
    assert!(lines.iter().all(|l| l.action == "args"));
}

#[tokio::test]
async fn unknown_placeholder_fails_without_running() {
    let f = fixture(&[]);
    let marker = f.dir.path().join("ran");
    let spec = argv(&["touch", &format!("{}{{wieght}}", marker.display())]);
    let (o, _) = run(&f.ex, request("typo", spec, &[("weight", "1")])).await;
    assert!(!o.ok);
    assert!(
        o.detail.contains("unknown placeholder {wieght}"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("{weight}"),
        "lists the known ones: {}",
        o.detail
    );
    assert!(!marker.exists());
    let recs = audit(&f);
    assert_eq!(recs.len(), 1);
    assert!(!recs[0].ok);
    assert_eq!(recs[0].detail, o.detail);
}

#[tokio::test]
async fn shell_values_are_quoted_not_executed() {
    let f = fixture(&[]);
    let marker = f.dir.path().join("pwned");
    let reason = format!(
        "a; touch {} && echo `touch {}` $(touch {})",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let mut req = request("sh", shell("echo {reason}"), &[]);
    req.reason = Some(reason.clone());
    let (o, lines) = run(&f.ex, req).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(text(&lines, Stream::Stdout), vec![reason]);
    assert!(!marker.exists(), "the value was executed");
}

#[tokio::test]
async fn secrets_are_redacted_in_output_detail_and_audit() {
    let secret = "s3cr3t-t0ken";
    let f = fixture(&[secret]);
    let spec = argv(&[
        "sh",
        "-c",
        "echo token=$1; echo \"err $1\" >&2; exit 4",
        "x",
        secret,
    ]);
    let mut req = request("leak", spec, &[]);
    req.reason = Some(format!("rotating {secret}"));
    let (o, lines) = run(&f.ex, req).await;
    assert!(!o.ok);
    assert_eq!(o.exit_code, Some(4));
    // The last stderr line says why, redacted like the output.
    assert_eq!(o.detail, "exit 4: err ***");
    assert_eq!(text(&lines, Stream::Stdout), vec!["token=***"]);
    assert_eq!(text(&lines, Stream::Stderr), vec!["err ***"]);
    let raw = std::fs::read_to_string(&f.audit).unwrap();
    assert!(!raw.contains(secret), "{raw}");
    let recs = audit(&f);
    assert!(recs[0].rendered.contains("***"), "{}", recs[0].rendered);
    assert_eq!(recs[0].reason.as_deref(), Some("rotating ***"));
}

#[tokio::test]
async fn control_sequences_are_stripped() {
    let f = fixture(&[]);
    let spec =
        shell(r"printf '\033]0;pwned\007\033[2Jhello\n\033[31mred\033[0m\tx\r\n10%%\r100%%\n'");
    let (o, lines) = run(&f.ex, request("ansi", spec, &[])).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(
        text(&lines, Stream::Stdout),
        vec!["hello", "red\tx", "100%"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_whole_process_group() {
    let f = fixture(&[]);
    let pidfile = f.dir.path().join("pid");
    let mut spec = shell(&format!(
        "sleep 300 & echo $! > {}; wait",
        pidfile.display()
    ));
    spec.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let (o, _) = run(&f.ex, request("slow", spec, &[])).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(!o.ok);
    assert!(o.timed_out);
    assert_eq!(o.exit_code, None);
    assert_eq!(o.detail, "timed out after 1s; process group killed");
    let pid = read_pid(&pidfile).await;
    assert!(
        wait_dead(pid).await,
        "grandchild {pid} survived the timeout"
    );
    let recs = audit(&f);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].detail, o.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_kills_the_group_and_audits_it() {
    let f = fixture(&[]);
    let pidfile = f.dir.path().join("pid");
    let mut spec = shell(&format!(
        "sleep 300 & echo $! > {}; wait",
        pidfile.display()
    ));
    spec.timeout = Duration::from_secs(120);
    let (tx, _rx) = mpsc::channel(16);
    let ex = f.ex.clone();
    let task = tokio::spawn(async move { ex.run(request("dropped", spec, &[]), tx).await });
    let pid = read_pid(&pidfile).await;
    assert!(!dead(pid));
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        wait_dead(pid).await,
        "grandchild {pid} survived the cancelled run"
    );
    let recs = audit(&f);
    assert_eq!(recs.len(), 1);
    assert!(!recs[0].ok);
    assert!(
        recs[0].detail.starts_with("cancelled"),
        "{}",
        recs[0].detail
    );
}

#[tokio::test]
async fn leftover_background_processes_are_killed_on_exit() {
    let f = fixture(&[]);
    let pidfile = f.dir.path().join("pid");
    let spec = shell(&format!(
        "sleep 300 >/dev/null 2>&1 & echo $! > {}; echo done",
        pidfile.display()
    ));
    let (o, lines) = run(&f.ex, request("bg", spec, &[])).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(text(&lines, Stream::Stdout), vec!["done"]);
    assert!(o.detail.starts_with("exit 0"), "{}", o.detail);
    let pid = read_pid(&pidfile).await;
    assert!(
        wait_dead(pid).await,
        "background process {pid} outlived the action"
    );
}

#[tokio::test]
async fn missing_program_is_reported() {
    let f = fixture(&[]);
    let (o, _) = run(
        &f.ex,
        request("nope", argv(&["rolldeck-no-such-program-xyz", "a"]), &[]),
    )
    .await;
    assert!(!o.ok);
    assert_eq!(o.detail, "command not found: rolldeck-no-such-program-xyz");
    assert_eq!(audit(&f)[0].detail, o.detail);

    let (o, _) = run(
        &f.ex,
        request("nope-sh", shell("rolldeck-no-such-program-xyz"), &[]),
    )
    .await;
    assert!(!o.ok);
    assert_eq!(o.exit_code, Some(127));
    assert!(
        o.detail.starts_with("exit 127 (command not found): ")
            && o.detail.contains("rolldeck-no-such-program-xyz"),
        "{}",
        o.detail
    );

    let mut spec = argv(&["true"]);
    spec.cwd = Some(f.dir.path().join("missing"));
    let (o, _) = run(&f.ex, request("cwd", spec, &[])).await;
    assert!(!o.ok);
    assert!(
        o.detail.starts_with("working directory not found"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn nonzero_exit_is_not_ok_and_streams_are_labelled() {
    let f = fixture(&[]);
    let (o, lines) = run(
        &f.ex,
        request("fail", shell("echo out; echo err >&2; exit 3"), &[]),
    )
    .await;
    assert!(!o.ok);
    assert_eq!(o.exit_code, Some(3));
    assert_eq!(o.detail, "exit 3: err", "the last stderr line says why");
    assert!(!o.timed_out);
    assert_eq!(text(&lines, Stream::Stdout), vec!["out"]);
    assert_eq!(text(&lines, Stream::Stderr), vec!["err"]);
}

#[tokio::test]
async fn env_and_cwd_are_applied() {
    let f = fixture(&[]);
    let mut spec = argv(&["sh", "-c", "echo \"$ROLLDECK_W\"; pwd"]);
    spec.env.insert("ROLLDECK_W".into(), "w={weight} x".into());
    spec.cwd = Some(f.dir.path().to_path_buf());
    let (o, lines) = run(&f.ex, request("env", spec, &[("weight", "7")])).await;
    assert!(o.ok, "{o:?}");
    let cwd = std::fs::canonicalize(f.dir.path()).unwrap();
    assert_eq!(
        text(&lines, Stream::Stdout),
        vec!["w=7 x".to_string(), cwd.display().to_string()]
    );
}

#[tokio::test]
async fn long_lines_are_cut_and_a_gone_receiver_does_not_block() {
    let f = fixture(&[]);
    let (o, lines) = run(
        &f.ex,
        request(
            "long",
            shell("head -c 10000 /dev/zero | tr '\\0' a; echo; echo next"),
            &[],
        ),
    )
    .await;
    assert!(o.ok, "{o:?}");
    let out = text(&lines, Stream::Stdout);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], format!("{}…", "a".repeat(4096)));
    assert_eq!(out[1], "next");

    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let started = Instant::now();
    let o =
        f.ex.run(request("flood", shell("seq 1 200000"), &[]), tx)
            .await;
    assert!(o.ok, "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // A receiver that never reads: lines are dropped, the run still ends.
    let (tx, _rx) = mpsc::channel(1);
    let started = Instant::now();
    let o =
        f.ex.run(request("stuck", shell("seq 1 200000"), &[]), tx)
            .await;
    assert!(o.ok, "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn audit_record_is_on_disk_when_run_returns() {
    let f = fixture(&[]);
    let mut req = request(
        "traffic",
        argv(&["echo", "weight={weight}"]),
        &[("weight", "25")],
    );
    req.reason = Some("canary looks fine".into());
    req.release = Some("rel-42".into());
    req.step = Some("canary-25".into());
    let (o, _) = run(&f.ex, req).await;
    // Read the file directly, right after `run` returned.
    // Lines: started, spawned, then the result.
    let raw = std::fs::read_to_string(&f.audit).unwrap();
    assert_eq!(raw.lines().count(), 3);
    let rec: AuditRecord = serde_json::from_str(raw.lines().nth(2).unwrap()).unwrap();
    assert_eq!(rec.operator, *f.ex.operator());
    assert_eq!(rec.operator.to_string(), "alice@bastion (ssh 10.0.0.5)");
    assert_eq!(rec.action, "traffic");
    assert_eq!(rec.release.as_deref(), Some("rel-42"));
    assert_eq!(rec.step.as_deref(), Some("canary-25"));
    assert_eq!(rec.reason.as_deref(), Some("canary looks fine"));
    assert_eq!(rec.rendered, "echo weight=25");
    assert_eq!(rec.exit_code, Some(0));
    assert!(rec.ok && o.ok);
    assert_eq!(rec.duration_s, o.duration_s);
    assert_eq!(rec.detail, "exit 0");
    let ts: jiff::Timestamp = rec.ts.parse().unwrap();
    assert!((jiff::Timestamp::now() - ts).get_seconds().abs() < 60);
    assert!(rec.ts.ends_with('Z'));
}

#[tokio::test]
async fn placeholders_from_the_request_fill_in() {
    let f = fixture(&[]);
    let mut req = request(
        "who",
        argv(&["echo", "{operator}", "{release}", "{step}"]),
        &[],
    );
    req.release = Some("r1".into());
    req.step = Some("s1".into());
    let (o, lines) = run(&f.ex, req).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(
        text(&lines, Stream::Stdout),
        vec!["alice@bastion (ssh 10.0.0.5) r1 s1"]
    );
    let (o, _) = run(
        &f.ex,
        request("reasonless", argv(&["echo", "{reason}"]), &[]),
    )
    .await;
    assert!(!o.ok);
    assert!(
        o.detail.contains("no value for placeholder {reason}"),
        "{}",
        o.detail
    );
}

// ---- HTTP ------------------------------------------------------------------

struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

/// A one-trick HTTP/1.1 server: answers every request with `status` and
/// `body` (or never answers when `status` is 0) and records the requests.
async fn server(status: u16, body: &'static str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                if status == 0 {
                    tokio::time::sleep(Duration::from_secs(300)).await;
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { base, requests }
}

fn http(url: &str) -> ActionSpec {
    ActionSpec {
        url: Some(url.to_string()),
        ..ActionSpec::default()
    }
}

#[tokio::test]
async fn http_action_sends_rendered_request_and_checks_status() {
    let secret = "Bearer sup3r-secret";
    let f = fixture(&[secret]);
    let srv = server(200, "accepted\nweight set\n").await;
    let mut spec = http(&format!("{}/weights/{{service}}?w={{weight}}", srv.base));
    spec.method = "put".into();
    spec.headers.insert("Authorization".into(), secret.into());
    spec.headers
        .insert("Content-Type".into(), "application/json".into());
    spec.body = Some(r#"{"weight": {weight}, "reason": "{reason}"}"#.into());
    let mut req = request(
        "set-weight",
        spec,
        &[("service", "web api"), ("weight", "25")],
    );
    req.reason = Some("say \"hi\"".into());
    let (o, lines) = run(&f.ex, req).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(o.http_status, Some(200));
    assert_eq!(o.exit_code, None);
    assert_eq!(o.detail, "HTTP 200");
    assert_eq!(text(&lines, Stream::Http), vec!["accepted", "weight set"]);

    let reqs = srv.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(
        r.starts_with("PUT /weights/web%20api?w=25 HTTP/1.1\r\n"),
        "{r}"
    );
    assert!(
        r.to_ascii_lowercase()
            .contains("authorization: bearer sup3r-secret"),
        "{r}"
    );
    assert!(
        r.ends_with(r#"{"weight": 25, "reason": "say \"hi\""}"#),
        "{r}"
    );

    let rec = &audit(&f)[0];
    assert_eq!(rec.http_status, Some(200));
    assert!(
        rec.rendered
            .starts_with(&format!("PUT '{}/weights/web%20api?w=25'", srv.base)),
        "{}",
        rec.rendered
    );
    assert!(
        rec.rendered.contains("Authorization: ***"),
        "{}",
        rec.rendered
    );
    assert!(!std::fs::read_to_string(&f.audit).unwrap().contains("sup3r"));
}

#[tokio::test]
async fn http_unexpected_status_fails_and_expect_status_overrides() {
    let f = fixture(&[]);
    let srv = server(503, "overloaded").await;
    let (o, lines) = run(&f.ex, request("h", http(&format!("{}/x", srv.base)), &[])).await;
    assert!(!o.ok);
    assert_eq!(o.http_status, Some(503));
    assert_eq!(o.detail, "HTTP 503 (expected 2xx)");
    assert_eq!(text(&lines, Stream::Http), vec!["overloaded"]);

    let mut spec = http(&format!("{}/x", srv.base));
    spec.expect_status = Some(vec![503]);
    spec.method = "GET".into();
    let (o, _) = run(&f.ex, request("h", spec, &[])).await;
    assert!(o.ok, "{o:?}");
    assert!(srv.requests.lock().unwrap()[1].starts_with("GET /x "));

    let srv = server(200, "fine").await;
    let mut spec = http(&format!("{}/x", srv.base));
    spec.expect_status = Some(vec![201, 204]);
    let (o, _) = run(&f.ex, request("h", spec, &[])).await;
    assert!(!o.ok);
    assert_eq!(o.detail, "HTTP 200 (expected 201 or 204)");
}

#[tokio::test]
async fn http_connection_refused_and_timeout() {
    let f = fixture(&[]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/x");
    let (o, _) = run(&f.ex, request("refused", http(&url), &[])).await;
    assert!(!o.ok);
    assert_eq!(o.http_status, None);
    assert_eq!(o.detail, format!("connection refused: {url}"));

    let srv = server(0, "").await;
    let mut spec = http(&format!("{}/slow", srv.base));
    spec.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let (o, _) = run(&f.ex, request("slow", spec, &[])).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!o.ok);
    assert!(o.timed_out);
    assert_eq!(o.detail, "timed out after 500ms");
    assert_eq!(audit(&f).len(), 2);
}

#[tokio::test]
async fn http_body_output_is_capped() {
    let f = fixture(&[]);
    let body: &'static str = Box::leak(
        (1..=100)
            .map(|i| format!("line {i}\n"))
            .collect::<String>()
            .into_boxed_str(),
    );
    let srv = server(200, body).await;
    let (o, lines) = run(&f.ex, request("big", http(&srv.base), &[])).await;
    assert!(o.ok, "{o:?}");
    let out = text(&lines, Stream::Http);
    assert_eq!(out.len(), 20);
    assert_eq!(out[0], "line 1");
    assert_eq!(out[19], "line 20…");
}

#[test]
fn config_shaped_toml_parses() {
    let actions: BTreeMap<String, ActionSpec> = toml::from_str(
        r#"
        [traffic]
        description = "shift canary traffic"
        argv = ["kubectl", "annotate", "svc/web", "weight={weight}"]
        timeout = "2m"
        idempotent = true

        [notify]
        url = "https://hooks.example.com/x"
        headers = { "Content-Type" = "application/json" }
        body = '{"text": "{service} at {weight}%"}'
        "#,
    )
    .unwrap();
    for (name, a) in &actions {
        a.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(actions["traffic"].program(), Some("kubectl"));
    assert_eq!(actions["notify"].placeholders(), vec!["service", "weight"]);
}

// ----- audit or nothing, process groups across restarts, cancellation -----

fn fixture_at(audit: &Path) -> Executor {
    Executor::new(
        AuditLog::open(audit).unwrap(),
        Operator {
            user: "alice".into(),
            host: "bastion".into(),
            ssh_client: None,
            tty: None,
        },
        Redactor::new(Vec::<String>::new()),
    )
}

#[tokio::test]
async fn an_action_that_cannot_be_audited_does_not_run() {
    // Writes to /dev/full fail with ENOSPC: a full disk without mounting one.
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::os::unix::fs::symlink("/dev/full", &audit).unwrap();
    let ex = fixture_at(&audit);
    let marker = dir.path().join("ran");
    let (o, _) = run(
        &ex,
        request(
            "deploy",
            shell(&format!("echo ran > {}", marker.display())),
            &[],
        ),
    )
    .await;
    assert!(!o.ok, "{o:?}");
    assert!(
        o.detail
            .starts_with("not run: the audit log cannot be written"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("No space left"), "{}", o.detail);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "the unaudited action ran");
}

#[tokio::test]
async fn disk_full_mid_run_fails_the_action_and_freed_space_audits_again() {
    let Some(fs) = Tmpfs::mount("disk_full_mid_run", "64k") else {
        return;
    };
    let audit = fs.path().join("state/audit.jsonl");
    let ex = fixture_at(&audit);
    let fill = fs.path().join("fill");
    // The action itself fills the disk: its start is audited, its result
    // cannot be (a long reason makes the record need a fresh page).
    let mut req = request(
        "deploy",
        shell(&format!(
            "head -c 1048576 /dev/zero > {} ; true",
            fill.display()
        )),
        &[],
    );
    req.reason = Some("r".repeat(5000));
    let (o, _) = run(&ex, req).await;
    assert!(!o.ok, "ran but not audited must not be ok: {o:?}");
    assert!(o.detail.contains("audit log write failed"), "{}", o.detail);
    assert!(
        o.detail
            .contains("the action ran but its result is not in the audit log"),
        "{}",
        o.detail
    );
    // Full: the next action does not run.
    let marker = fs.path().join("second");
    let mut req = request(
        "second",
        shell(&format!("echo x > {}", marker.display())),
        &[],
    );
    req.reason = Some("r".repeat(5000));
    let (o, _) = run(&ex, req).await;
    assert!(o.detail.starts_with("not run:"), "{}", o.detail);
    assert!(!marker.exists());
    // Space freed: actions run and are audited again; the log reads back
    // (no torn line glued in the middle).
    std::fs::remove_file(&fill).unwrap();
    let (o, _) = run(&ex, request("third", argv(&["true"]), &[])).await;
    assert!(o.ok, "{o:?}");
    let entries = AuditLog::read_entries(&audit).unwrap();
    let started: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            rolldeck::exec::AuditEntry::Mark(m) if m.event == AuditStage::Started => {
                Some(m.action.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(started, ["deploy", "third"], "{entries:#?}");
    let done = AuditLog::read_all(&audit).unwrap();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0].action, "third");
    // The deploy run is left unfinished in the log (its group is gone).
    let open = AuditLog::unfinished(&audit).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].started.action, "deploy");
    assert!(!open[0].alive());
}

#[tokio::test]
async fn every_run_is_started_spawned_and_finished_in_the_audit_log() {
    let f = fixture(&[]);
    let (o, _) = run(&f.ex, request("one", argv(&["true"]), &[])).await;
    assert!(o.ok);
    let entries = AuditLog::read_entries(&f.audit).unwrap();
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let (rolldeck::exec::AuditEntry::Mark(s), rolldeck::exec::AuditEntry::Mark(p)) =
        (&entries[0], &entries[1])
    else {
        panic!("{entries:#?}")
    };
    let rolldeck::exec::AuditEntry::Finished(r) = &entries[2] else {
        panic!("{entries:#?}")
    };
    assert_eq!(s.event, AuditStage::Started);
    assert_eq!(p.event, AuditStage::Spawned);
    assert!(s.pgid.is_none() && p.pgid.is_some() && p.leader_start.is_some());
    assert_eq!(s.run_id, p.run_id);
    assert_eq!(r.run_id.as_deref(), Some(s.run_id.as_str()));
    assert_eq!(s.driver_pid, std::process::id());
    assert!(AuditLog::unfinished(&f.audit).unwrap().is_empty());
}

/// Writes `started` + `spawned` lines as a killed driver would have left them.
fn orphan_marks(audit: &Path, pgid: i32, leader_start: Option<u64>) {
    let mark = |event: &str| {
        let mut v = serde_json::json!({
            "event": event, "ts": "2026-01-01T00:00:00Z", "run_id": "999999-1-0",
            "operator": {"user": "bob", "host": "bastion", "ssh_client": null, "tty": null},
            "action": "deploy", "release": "r1", "step": "deploy", "rendered": "deploy.sh",
            "reason": null, "driver_pid": 999999
        });
        if event == "spawned" {
            v["pgid"] = pgid.into();
            if let Some(s) = leader_start {
                v["leader_start"] = s.into();
            }
        }
        format!("{v}\n")
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(audit)
        .unwrap();
    std::io::Write::write_all(&mut f, (mark("started") + &mark("spawned")).as_bytes()).unwrap();
}

fn start_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn an_orphaned_action_blocks_until_its_process_group_is_gone() {
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    // The "action" a killed driver left behind: its own process group.
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    orphan_marks(&audit, pgid, Some(start_ticks(pgid)));
    let log = AuditLog::open(&audit).unwrap();
    let live = log.settle_unfinished().unwrap().unwrap_err();
    assert_eq!(live.pgid, pgid);
    let msg = live.to_string();
    assert!(msg.contains(&format!("pid {pgid}")), "{msg}");
    assert!(
        msg.contains("still running") && msg.contains("check what it changed"),
        "{msg}"
    );
    // Refusing wrote nothing.
    assert_eq!(AuditLog::unfinished(&audit).unwrap().len(), 1);

    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(log.settle_unfinished().unwrap().unwrap(), 1);
    assert!(AuditLog::unfinished(&audit).unwrap().is_empty());
    let done = AuditLog::read_all(&audit).unwrap();
    assert_eq!(done.len(), 1);
    assert!(!done[0].ok);
    assert!(
        done[0].detail.starts_with("outcome unknown"),
        "{}",
        done[0].detail
    );
    assert_eq!(log.settle_unfinished().unwrap().unwrap(), 0);
}

#[test]
fn a_reused_pid_is_not_the_orphaned_action() {
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    // Same pid, another start time: someone else's process now.
    orphan_marks(&audit, pgid, Some(start_ticks(pgid) + 1));
    let log = AuditLog::open(&audit).unwrap();
    assert_eq!(log.settle_unfinished().unwrap().unwrap(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_torn_audit_tail_is_moved_aside_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&audit, "{\"ts\":\"2026-01-").unwrap();
    let log = AuditLog::open(&audit).unwrap();
    let rec = AuditRecord {
        ts: "2026-01-02T00:00:00Z".into(),
        operator: Operator {
            user: "u".into(),
            host: "h".into(),
            ssh_client: None,
            tty: None,
        },
        action: "a".into(),
        release: None,
        step: None,
        rendered: "true".into(),
        exit_code: Some(0),
        http_status: None,
        ok: true,
        duration_s: 0.0,
        detail: "exit 0".into(),
        reason: None,
        run_id: None,
    };
    log.append(&rec).unwrap();
    log.append(&rec).unwrap();
    assert_eq!(AuditLog::read_all(&audit).unwrap().len(), 2);
    let torn: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(torn.len(), 1);
    assert_eq!(
        std::fs::read_to_string(torn[0].path()).unwrap(),
        "{\"ts\":\"2026-01-"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_returns_only_once_the_process_group_is_gone() {
    let f = fixture(&[]);
    let pidfile = f.dir.path().join("pid");
    let cleaned = f.dir.path().join("cleaned");
    // Cleans up for a second on SIGTERM; its background child dies at once.
    let mut spec = shell(&format!(
        "trap 'sleep 1; echo yes > {c}; exit 1' TERM; sleep 300 & echo $! > {p}; wait",
        c = cleaned.display(),
        p = pidfile.display()
    ));
    spec.timeout = Duration::from_secs(120);
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, _rx) = mpsc::channel(16);
    let ex = f.ex.clone();
    let task = tokio::spawn(async move {
        ex.run_until(request("slow", spec, &[]), tx, async {
            let _ = cancel_rx.await;
        })
        .await
    });
    let pid = read_pid(&pidfile).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel_tx.send(()).unwrap();
    let o = task.await.unwrap();
    assert!(!o.ok);
    assert!(o.detail.starts_with("cancelled"), "{}", o.detail);
    assert!(
        cleaned.exists(),
        "returned before the group finished its cleanup"
    );
    assert!(
        dead(pid),
        "background child {pid} outlived the cancelled run"
    );
    let recs = audit(&f);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].detail, o.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_kills_a_group_that_ignores_sigterm() {
    let f = fixture(&[]);
    let pidfile = f.dir.path().join("pid");
    let mut spec = shell(&format!(
        "trap '' TERM; sleep 300 & echo $! > {p}; while :; do sleep 1; done",
        p = pidfile.display()
    ));
    spec.timeout = Duration::from_secs(120);
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, _rx) = mpsc::channel(16);
    let ex = f.ex.clone();
    let task = tokio::spawn(async move {
        ex.run_until(request("stubborn", spec, &[]), tx, async {
            let _ = cancel_rx.await;
        })
        .await
    });
    let pid = read_pid(&pidfile).await;
    cancel_tx.send(()).unwrap();
    let o = task.await.unwrap();
    assert!(
        o.detail
            .starts_with("cancelled: process group killed (SIGKILL after"),
        "{}",
        o.detail
    );
    // `sleep 300` ignores SIGTERM too (inherited); it is gone when run returns.
    assert!(dead(pid), "{pid} outlived the cancelled run");
}
