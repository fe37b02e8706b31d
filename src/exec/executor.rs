//! Running actions: processes in their own group, HTTP requests, output
//! streaming, timeouts and auditing.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::sync::mpsc::{self, error::SendTimeoutError, error::TrySendError};

use super::audit::{group_alive, start_time};
use super::template::{mask_url_password, template_display};
use super::{
    ActionOutcome, ActionRequest, AuditLog, AuditMark, AuditRecord, AuditStage,
    MAX_HTTP_BODY_BYTES, MAX_HTTP_BODY_LINES, MAX_LINE_BYTES, Operator, OutputLine, Rendered,
    Stream, render, strip_control,
};
use crate::redact::Redactor;

/// After a command's main process exits, how long to wait for its output
/// pipes to close (they stay open while a detached process holds them).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// After killing a timed-out process group, how long to wait to reap it.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// A cancelled command's process group gets `SIGTERM`, then this long to
/// exit before `SIGKILL`.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// How often a stopping process group is checked for being gone.
const GONE_POLL: Duration = Duration::from_millis(20);

/// Makes run ids unique within one process.
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How long one output line may wait for room in a full output channel
/// before lines are dropped (until the receiver catches up).
const SEND_WAIT: Duration = Duration::from_millis(250);

/// Runs actions and audits every run. Cheap to clone (an `Arc` inside); clones
/// share the audit log, operator, redactor and HTTP client.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    audit: AuditLog,
    operator: Operator,
    redactor: Redactor,
    /// The HTTP client, or why it could not be built.
    http: Result<reqwest::Client, String>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("audit", &self.inner.audit.path())
            .field("operator", &self.inner.operator)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor that audits to `audit`, records `operator` as the one
    /// running actions and masks `redactor`'s secrets in everything it emits.
    ///
    /// Builds its own HTTP client (rustls, no redirects followed — a redirect
    /// answer is judged by its status like any other). Should that fail, HTTP
    /// actions fail with the reason; commands are unaffected.
    pub fn new(audit: AuditLog, operator: Operator, redactor: Redactor) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rolldeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| error_chain(&e));
        Self {
            inner: Arc::new(Inner {
                audit,
                operator,
                redactor,
                http,
            }),
        }
    }

    /// Who runs the actions.
    pub fn operator(&self) -> &Operator {
        &self.inner.operator
    }

    /// The redactor applied to output, details and audit records.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> &Path {
        self.inner.audit.path()
    }

    /// Runs the action: renders it (see [`render`]), spawns the command or
    /// sends the request, streams output lines to `out`, enforces
    /// `spec.timeout`, appends the [`AuditRecord`] (redacted, fsynced) and
    /// returns the outcome.
    ///
    /// Placeholders `{reason}`, `{release}`, `{step}` and `{operator}` are
    /// taken from the request / executor unless `req.vars` has them.
    ///
    /// Commands run with stdin from `/dev/null`, in their own process group.
    /// When the timeout passes, the whole group is killed (`SIGKILL`) and
    /// reaped; when the main process exits, anything it left running in its
    /// group is killed too. If this future is dropped before it finishes
    /// (e.g. the task is aborted), the process group is killed and a
    /// "cancelled" record is audited.
    ///
    /// Output is streamed line by line (lossy UTF-8, lines cut at
    /// [`MAX_LINE_BYTES`]), control sequences removed and secrets redacted.
    /// If `out` is full, a line waits up to 250 ms, then lines are dropped
    /// until the receiver catches up; if the receiver is gone, output is
    /// discarded. The run never blocks on `out`.
    ///
    /// Never panics on bad input: a render error, a missing program, a
    /// refused connection are all `ActionOutcome { ok: false, detail, .. }`
    /// and are audited too.
    ///
    /// Audit or nothing: a `started` line ([`AuditMark`]) is fsynced before
    /// anything runs; if it cannot be written the action does not run and
    /// the outcome is unsuccessful with `detail` starting `not run: the
    /// audit log cannot be written`. A command's process group is recorded
    /// (`spawned`) right after the spawn; if that fails the group is killed
    /// at once. If the result cannot be written, the outcome is made
    /// unsuccessful (`ok: false`) whatever the action did, with `audit log
    /// write failed … the action ran but its result is not in the audit log`
    /// appended to `detail`.
    pub async fn run(&self, req: ActionRequest, out: mpsc::Sender<OutputLine>) -> ActionOutcome {
        self.run_until(req, out, std::future::pending()).await
    }

    /// [`Executor::run`], stopped early when `cancel` resolves: a command's
    /// process group gets `SIGTERM`, then `SIGKILL` after [`CANCEL_GRACE`];
    /// this returns only once no process of the group is left (or the kill
    /// failed, which `detail` says). An HTTP request in flight is abandoned.
    /// The outcome is unsuccessful, `detail` starting with `cancelled`, and
    /// is audited like any other.
    pub async fn run_until(
        &self,
        req: ActionRequest,
        out: mpsc::Sender<OutputLine>,
        cancel: impl Future<Output = ()> + Send,
    ) -> ActionOutcome {
        tokio::pin!(cancel);
        let cancel: Pin<&mut (dyn Future<Output = ()> + Send)> = cancel;
        let start = Instant::now();
        let inner = &self.inner;
        let redactor = &inner.redactor;

        let mut vars = req.vars.clone();
        vars.entry("operator".into())
            .or_insert_with(|| inner.operator.to_string());
        for (k, v) in [
            ("reason", &req.reason),
            ("release", &req.release),
            ("step", &req.step),
        ] {
            if let Some(v) = v {
                vars.entry(k.into()).or_insert_with(|| v.clone());
            }
        }

        let rendered = render(&req.spec, &vars);
        let shown = match &rendered {
            Ok(r) => r.display(redactor),
            Err(_) => template_display(&req.spec, redactor),
        };
        let red = |s: &Option<String>| s.as_deref().map(|s| redactor.redact(s));
        let run_id = format!(
            "{}-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mark = AuditMark {
            event: AuditStage::Started,
            ts: jiff::Timestamp::now().to_string(),
            run_id: run_id.clone(),
            operator: inner.operator.clone(),
            action: req.name.clone(),
            release: red(&req.release),
            step: red(&req.step),
            rendered: shown.clone(),
            reason: red(&req.reason),
            driver_pid: std::process::id(),
            pgid: None,
            leader_start: None,
        };
        if let Err(e) = append_mark(&self.inner, mark.clone()).await {
            tracing::error!(action = %req.name, path = %inner.audit.path().display(), "cannot write the audit log; the action does not run: {e}");
            let mut o = failed(format!(
                "not run: the audit log cannot be written ({}): {e}",
                inner.audit.path().display()
            ));
            o.detail = one_line(&redactor.redact(&o.detail));
            o.duration_s = secs(start.elapsed());
            return o;
        }
        let mut guard = Inflight {
            pgid: None,
            pending: Some(Pending {
                inner: Arc::clone(&self.inner),
                start,
                record: AuditRecord {
                    ts: String::new(),
                    operator: inner.operator.clone(),
                    action: req.name.clone(),
                    release: red(&req.release),
                    step: red(&req.step),
                    rendered: shown,
                    exit_code: None,
                    http_status: None,
                    ok: false,
                    duration_s: 0.0,
                    detail: String::new(),
                    reason: red(&req.reason),
                    run_id: Some(run_id),
                },
            }),
        };
        let sink = LineSink {
            action: req.name.clone(),
            out,
            redactor: redactor.clone(),
            closed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            dropped: AtomicUsize::new(0),
            last_err: std::sync::Mutex::new(None),
        };
        let timeout = req.spec.timeout;

        let mut cancel = cancel;
        let mut outcome = match rendered {
            Err(e) => failed(format!("cannot render the action: {e}")),
            Ok(Rendered::Command {
                argv,
                shell,
                env,
                cwd,
            }) => {
                run_command(
                    &argv,
                    shell,
                    &env,
                    cwd.as_deref(),
                    timeout,
                    &sink,
                    &mut guard,
                    (&self.inner, &mark),
                    cancel.as_mut(),
                )
                .await
            }
            Ok(Rendered::Http {
                method,
                url,
                headers,
                body,
            }) => match &inner.http {
                Err(e) => failed(format!("HTTP client unavailable: {e}")),
                Ok(client) => {
                    let expect = req.spec.expect_status.as_deref();
                    let http = run_http(
                        client, &method, &url, &headers, body, expect, timeout, &sink,
                    );
                    tokio::select! {
                        o = http => o,
                        () = cancel.as_mut() => failed("cancelled: the request was abandoned".into()),
                    }
                }
            },
            Ok(Rendered::Docker(d)) => {
                let op = crate::docker::action::perform(&d, timeout);
                let timed = async {
                    match tokio::time::timeout(timeout, op).await {
                        Ok(Ok(lines)) => {
                            for l in &lines {
                                sink.emit(Stream::Stdout, l.as_bytes(), false).await;
                            }
                            ActionOutcome {
                                ok: true,
                                detail: lines.last().cloned().unwrap_or_default(),
                                ..failed(String::new())
                            }
                        }
                        Ok(Err(e)) => failed(e),
                        Err(_) => ActionOutcome {
                            timed_out: true,
                            ..failed(format!(
                                "timed out after {}; the engine may still finish the operation",
                                humantime::format_duration(timeout)
                            ))
                        },
                    }
                };
                tokio::select! {
                    o = timed => o,
                    () = cancel.as_mut() => failed("cancelled: the engine request was abandoned".into()),
                }
            }
        };
        outcome.duration_s = secs(start.elapsed());
        outcome.detail = one_line(&redactor.redact(&outcome.detail));
        let dropped = sink.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(action = %req.name, dropped, "output receiver fell behind; output lines dropped");
        }

        let Some(record) = guard.finish(&outcome) else {
            return outcome;
        };
        let log = Arc::clone(&self.inner);
        let written = match tokio::task::spawn_blocking(move || log.audit.append(&record)).await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!("audit writer task failed: {e}"))),
        };
        if let Err(e) = written {
            tracing::error!(action = %req.name, path = %inner.audit.path().display(), "cannot write the audit log: {e}");
            outcome.ok = false;
            outcome.unaudited = true;
            outcome.detail = one_line(&redactor.redact(&format!(
                "{}; audit log write failed ({}): {e} — the action ran but its result is not in the audit log",
                outcome.detail,
                inner.audit.path().display()
            )));
        }
        outcome
    }
}

/// Appends (fsynced) off the async threads.
async fn append_mark(inner: &Arc<Inner>, mark: AuditMark) -> io::Result<()> {
    let log = Arc::clone(inner);
    match tokio::task::spawn_blocking(move || log.audit.append_mark(&mark)).await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(format!("audit writer task failed: {e}"))),
    }
}

/// Waits (up to `within`) until process group `pgid` has no live process,
/// reaping `child` on the way. True when it is gone.
async fn wait_gone(pgid: Pid, child: &mut tokio::process::Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let _ = child.try_wait();
        if !group_alive(pgid.as_raw(), None) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(GONE_POLL).await;
    }
}

/// Kills the process group and audits a "cancelled" record if a run is
/// dropped before it finishes.
struct Inflight {
    pgid: Option<Pid>,
    pending: Option<Pending>,
}

struct Pending {
    inner: Arc<Inner>,
    start: Instant,
    record: AuditRecord,
}

impl Inflight {
    /// Disarms the guard and returns the finished record (`None` if already
    /// finished).
    fn finish(&mut self, outcome: &ActionOutcome) -> Option<AuditRecord> {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        let mut rec = self.pending.take()?.record;
        rec.ts = jiff::Timestamp::now().to_string();
        rec.exit_code = outcome.exit_code;
        rec.http_status = outcome.http_status;
        rec.ok = outcome.ok;
        rec.duration_s = outcome.duration_s;
        rec.detail = outcome.detail.clone();
        Some(rec)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        let killed = match self.pgid.take() {
            Some(pgid) => killpg(pgid, Signal::SIGKILL).is_ok(),
            None => false,
        };
        if let Some(p) = self.pending.take() {
            let mut rec = p.record;
            rec.ts = jiff::Timestamp::now().to_string();
            rec.ok = false;
            rec.duration_s = secs(p.start.elapsed());
            rec.detail = if killed {
                "cancelled before it finished; process group killed".to_string()
            } else {
                "cancelled before it finished".to_string()
            };
            if let Err(e) = p.inner.audit.append(&rec) {
                tracing::error!(action = %rec.action, "cannot write the audit log: {e}");
            }
        }
    }
}

/// Where output lines go: strips, redacts and sends without blocking for
/// long.
struct LineSink {
    action: String,
    out: mpsc::Sender<OutputLine>,
    redactor: Redactor,
    closed: AtomicBool,
    stalled: AtomicBool,
    dropped: AtomicUsize,
    /// The last non-empty stderr line (stripped and redacted).
    last_err: std::sync::Mutex<Option<String>>,
}

impl LineSink {
    /// The last non-empty line the command wrote to stderr.
    fn last_err(&self) -> Option<String> {
        self.last_err
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn emit(&self, stream: Stream, raw: &[u8], cut: bool) {
        let text = String::from_utf8_lossy(raw);
        // A carriage return rewrites the line on a terminal (progress bars):
        // keep what a terminal would end up showing, the last non-empty part.
        let text = text
            .rsplit('\r')
            .find(|p| !p.is_empty())
            .unwrap_or_default();
        let mut line = self
            .redactor
            .redact(&strip_control(&self.redactor.redact(text)));
        if cut {
            line.push('…');
        }
        if stream == Stream::Stderr && !line.trim().is_empty() {
            *self.last_err.lock().unwrap_or_else(|p| p.into_inner()) = Some(line.clone());
        }
        self.send(OutputLine {
            action: self.action.clone(),
            stream,
            line,
        })
        .await;
    }

    async fn send(&self, line: OutputLine) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        match self.out.try_send(line) {
            Ok(()) => self.stalled.store(false, Ordering::Relaxed),
            Err(TrySendError::Closed(_)) => self.closed.store(true, Ordering::Relaxed),
            Err(TrySendError::Full(line)) => {
                if self.stalled.load(Ordering::Relaxed) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                match self.out.send_timeout(line, SEND_WAIT).await {
                    Ok(()) => {}
                    Err(SendTimeoutError::Timeout(_)) => {
                        self.stalled.store(true, Ordering::Relaxed);
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(SendTimeoutError::Closed(_)) => self.closed.store(true, Ordering::Relaxed),
                }
            }
        }
    }
}

/// Reads `reader` line by line (lines cut at [`MAX_LINE_BYTES`]) into `sink`
/// until EOF or a read error.
async fn pump<R: AsyncRead + Unpin>(reader: Option<R>, stream: Stream, sink: &LineSink) {
    let Some(reader) = reader else { return };
    let mut r = BufReader::with_capacity(16 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let (consumed, complete) = {
            let buf = match r.fill_buf().await {
                Ok(b) if !b.is_empty() => b,
                _ => break,
            };
            let (part, complete) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(line.len());
            if part.len() > room {
                line.extend_from_slice(&part[..room]);
                cut = true;
            } else {
                line.extend_from_slice(part);
            }
            (part.len() + usize::from(complete), complete)
        };
        r.consume(consumed);
        if complete {
            sink.emit(stream, &line, cut).await;
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() || cut {
        sink.emit(stream, &line, cut).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_command(
    argv: &[String],
    shell: bool,
    env: &BTreeMap<String, String>,
    cwd: Option<&Path>,
    timeout: Duration,
    sink: &LineSink,
    guard: &mut Inflight,
    (inner, mark): (&Arc<Inner>, &AuditMark),
    mut cancel: Pin<&mut (dyn Future<Output = ()> + Send)>,
) -> ActionOutcome {
    let Some((program, args)) = argv.split_first() else {
        return failed("nothing to run (empty argv)".into());
    };
    if let Some(dir) = cwd
        && !dir.is_dir()
    {
        return failed(format!("working directory not found: {}", dir.display()));
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(spawn_error(program, &e)),
    };
    let Some(pgid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
    else {
        return failed(format!("{program} started but has no process id"));
    };
    // process_group(0): the child leads a new group whose id is its pid.
    guard.pgid = Some(pgid);
    // Record the group durably, so that a rolldeck started after this one is
    // killed can tell whether the action still runs.
    let spawned = AuditMark {
        event: AuditStage::Spawned,
        ts: jiff::Timestamp::now().to_string(),
        pgid: Some(pgid.as_raw()),
        leader_start: start_time(pgid.as_raw()),
        ..mark.clone()
    };
    if let Err(e) = append_mark(inner, spawned).await {
        let _ = killpg(pgid, Signal::SIGKILL);
        let gone = wait_gone(pgid, &mut child, REAP_TIMEOUT).await;
        guard.pgid = None;
        return failed(format!(
            "killed at once: its process group could not be recorded in the audit log ({}): {e}{}",
            inner.audit.path().display(),
            if gone {
                ""
            } else {
                "; the process group did not exit after SIGKILL"
            }
        ));
    }

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let readers = async {
        tokio::join!(
            pump(stdout, Stream::Stdout, sink),
            pump(stderr, Stream::Stderr, sink)
        );
    };
    tokio::pin!(readers);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut readers_done = false;
    enum Ended {
        Exited(io::Result<ExitStatus>),
        TimedOut,
        Cancelled,
    }
    let ended = loop {
        tokio::select! {
            st = child.wait() => break Ended::Exited(st),
            () = &mut readers, if !readers_done => readers_done = true,
            () = tokio::time::sleep_until(deadline) => break Ended::TimedOut,
            () = cancel.as_mut() => break Ended::Cancelled,
        }
    };

    let mut notes: Vec<&str> = Vec::new();
    let mut outcome = match ended {
        Ended::Exited(Ok(status)) => {
            // The main process is reaped; anything still in its group was
            // left behind in the background. Kill it right away (no await in
            // between, so the group id cannot have been reused).
            if killpg(pgid, Signal::SIGKILL).is_ok() {
                notes.push("leftover background processes killed");
                if !wait_gone(pgid, &mut child, REAP_TIMEOUT).await {
                    notes.push("some did not exit after SIGKILL");
                }
            }
            guard.pgid = None;
            status_outcome(status, shell)
        }
        Ended::Exited(Err(e)) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = wait_gone(pgid, &mut child, REAP_TIMEOUT).await;
            guard.pgid = None;
            failed(format!("cannot wait for {program}: {e}"))
        }
        Ended::Cancelled => {
            let _ = killpg(pgid, Signal::SIGTERM);
            let detail = if wait_gone(pgid, &mut child, CANCEL_GRACE).await {
                "cancelled: process group stopped (SIGTERM)".to_string()
            } else {
                let _ = killpg(pgid, Signal::SIGKILL);
                if wait_gone(pgid, &mut child, REAP_TIMEOUT).await {
                    format!(
                        "cancelled: process group killed (SIGKILL after {})",
                        humantime::format_duration(CANCEL_GRACE)
                    )
                } else {
                    format!("cancelled: process group {pgid} did not exit after SIGKILL")
                }
            };
            guard.pgid = None;
            failed(detail)
        }
        Ended::TimedOut => {
            let _ = killpg(pgid, Signal::SIGKILL);
            let reaped = wait_gone(pgid, &mut child, REAP_TIMEOUT).await;
            guard.pgid = None;
            if !reaped {
                notes.push("the process did not exit after SIGKILL");
            }
            ActionOutcome {
                unaudited: false,
                ok: false,
                exit_code: None,
                http_status: None,
                duration_s: 0.0,
                timed_out: true,
                detail: format!(
                    "timed out after {}; process group killed",
                    humantime::format_duration(timeout)
                ),
            }
        }
    };
    if !readers_done
        && tokio::time::timeout(DRAIN_TIMEOUT, &mut readers)
            .await
            .is_err()
    {
        notes.push("output cut off: a process outside the group still holds it open");
    }
    // A command that failed says why in its last stderr line (`exit 1: nginx:
    // [emerg] …`), not only its exit code.
    if !outcome.ok
        && outcome.exit_code.is_some()
        && let Some(last) = sink.last_err()
    {
        outcome.detail = format!("{}: {last}", outcome.detail);
    }
    for n in notes {
        outcome.detail.push_str("; ");
        outcome.detail.push_str(n);
    }
    outcome
}

fn status_outcome(status: ExitStatus, shell: bool) -> ActionOutcome {
    if let Some(code) = status.code() {
        let mut detail = format!("exit {code}");
        match code {
            127 if shell => detail.push_str(" (command not found)"),
            126 if shell => detail.push_str(" (command not executable)"),
            _ => {}
        }
        ActionOutcome {
            unaudited: false,
            ok: code == 0,
            exit_code: Some(code),
            http_status: None,
            duration_s: 0.0,
            timed_out: false,
            detail,
        }
    } else {
        let detail = match status.signal() {
            Some(sig) => match Signal::try_from(sig) {
                Ok(s) => format!("killed by {}", s.as_str()),
                Err(_) => format!("killed by signal {sig}"),
            },
            None => format!("ended abnormally ({status})"),
        };
        failed(detail)
    }
}

fn spawn_error(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') && Path::new(program).is_file() => {
            format!("cannot run {program}: its interpreter was not found")
        }
        io::ErrorKind::NotFound => format!("command not found: {program}"),
        io::ErrorKind::PermissionDenied => format!("permission denied: {program}"),
        _ => format!("cannot start {program}: {e}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_http(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Option<String>,
    expect: Option<&[u16]>,
    timeout: Duration,
    sink: &LineSink,
) -> ActionOutcome {
    let shown_url = mask_url_password(url);
    let method = match reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return failed(format!("invalid HTTP method {method:?}")),
    };
    let mut rb = client.request(method, url).timeout(timeout);
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let exchange = async {
        let mut resp = rb.send().await?;
        let status = resp.status().as_u16();
        let mut buf: Vec<u8> = Vec::new();
        while buf.len() < MAX_HTTP_BODY_BYTES && bytecount_newlines(&buf) < MAX_HTTP_BODY_LINES {
            match resp.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                // The status is in; a body cut short does not change it.
                Ok(None) | Err(_) => break,
            }
        }
        Ok::<_, reqwest::Error>((status, buf))
    };
    let timed_out = || ActionOutcome {
        ok: false,
        exit_code: None,
        http_status: None,
        duration_s: 0.0,
        timed_out: true,
        detail: format!("timed out after {}", humantime::format_duration(timeout)),
        unaudited: false,
    };
    let (status, mut buf) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return timed_out(),
        Ok(Err(e)) if e.is_timeout() => return timed_out(),
        Ok(Err(e)) => return failed(http_error(e, &shown_url)),
        Ok(Ok(r)) => r,
    };

    let cut = buf.len() > MAX_HTTP_BODY_BYTES;
    buf.truncate(MAX_HTTP_BODY_BYTES);
    let mut lines = buf.split(|&b| b == b'\n').collect::<Vec<_>>();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let more = cut || lines.len() > MAX_HTTP_BODY_LINES;
    let n = lines.len().min(MAX_HTTP_BODY_LINES);
    for (i, l) in lines.into_iter().take(n).enumerate() {
        sink.emit(Stream::Http, l, more && i + 1 == n).await;
    }

    let ok = match expect {
        Some(list) => list.contains(&status),
        None => (200..300).contains(&status),
    };
    let detail = if ok {
        format!("HTTP {status}")
    } else {
        let wanted = match expect {
            Some(list) => list
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            None => "2xx".to_string(),
        };
        format!("HTTP {status} (expected {wanted})")
    };
    ActionOutcome {
        unaudited: false,
        ok,
        exit_code: None,
        http_status: Some(status),
        duration_s: 0.0,
        timed_out: false,
        detail,
    }
}

fn bytecount_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn http_error(e: reqwest::Error, shown_url: &str) -> String {
    let refused = {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut found = false;
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<io::Error>()
                && io.kind() == io::ErrorKind::ConnectionRefused
            {
                found = true;
            }
            src = s.source();
        }
        found
    };
    let (connect, builder) = (e.is_connect(), e.is_builder());
    let chain = error_chain(&e.without_url());
    if refused {
        format!("connection refused: {shown_url}")
    } else if connect {
        format!("connection failed: {shown_url}: {chain}")
    } else if builder {
        format!("invalid request: {chain}")
    } else {
        format!("request failed: {shown_url}: {chain}")
    }
}

/// An error and its sources, `: `-joined, repeated messages left out.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        src = s.source();
    }
    parts.join(": ")
}

fn failed(detail: String) -> ActionOutcome {
    ActionOutcome {
        unaudited: false,
        ok: false,
        exit_code: None,
        http_status: None,
        duration_s: 0.0,
        timed_out: false,
        detail,
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn one_line(s: &str) -> String {
    strip_control(&s.replace(['\n', '\r'], " "))
}
