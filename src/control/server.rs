//! The driver's side of the control protocol (see [the module
//! docs](super)): a Unix socket, one task per connection, requests read
//! with a size cap, replies redacted.

use super::{Background, Claim, MAX_REQUEST};
use crate::exec::{AuditLog, AuditRecord, Operator, OutputLine, strip_control};
use crate::redact::Redactor;
use crate::release::engine::{Command, Issued, Release};
use crate::runtime::StatePaths;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};

/// Binds the control socket at `path` with mode `0660` (owner and group):
/// a file left there by a killed driver is removed first (the caller holds
/// the driver lock, so no live driver serves it). Returns the listener and
/// the socket's inode, so that only this socket is removed at the end
/// ([`unbind`]).
///
/// # Errors
///
/// The path is too long for a Unix socket (108 bytes on Linux), or I/O.
pub fn bind(path: &Path) -> std::io::Result<(UnixListener, u64)> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let ino = std::fs::metadata(path)?.ino();
    Ok((l, ino))
}

/// Removes the control socket at `path` if it is still the one [`bind`]
/// made (inode `ino`): a driver started after this one keeps its own.
pub fn unbind(path: &Path, ino: u64) {
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ino) {
        let _ = std::fs::remove_file(path);
    }
}

/// What every connection shares with the driver.
pub struct Shared {
    /// The state dir.
    pub paths: StatePaths,
    /// This driver's record, once the release is known.
    pub driver: watch::Receiver<Option<Background>>,
    /// The release as the driver last reported it.
    pub state: watch::Receiver<Option<Release>>,
    /// Why the driver stopped, once it has.
    pub stopped: watch::Receiver<Option<String>>,
    /// Commands for the driver.
    pub commands: mpsc::Sender<Issued>,
    /// Action output while it runs.
    pub output: broadcast::Sender<OutputLine>,
    /// The audit log (every command is audited with its operator).
    pub audit: Arc<AuditLog>,
    /// Masks secrets in every reply.
    pub redactor: Redactor,
    /// This host's name (operators are `user@host`).
    pub host: String,
    attached: std::sync::Mutex<BTreeMap<u64, String>>,
    next_conn: AtomicU64,
}

impl Shared {
    /// The shared state of one driver.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        paths: StatePaths,
        driver: watch::Receiver<Option<Background>>,
        state: watch::Receiver<Option<Release>>,
        stopped: watch::Receiver<Option<String>>,
        commands: mpsc::Sender<Issued>,
        output: broadcast::Sender<OutputLine>,
        audit: Arc<AuditLog>,
        redactor: Redactor,
    ) -> Self {
        Self {
            paths,
            driver,
            state,
            stopped,
            commands,
            output,
            audit,
            redactor,
            host: crate::exec::Operator::current().host,
            attached: std::sync::Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }

    /// The operators of the connections that said `hello`, oldest first.
    pub fn attached(&self) -> Vec<String> {
        self.attached
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_else(|p| p.into_inner().values().cloned().collect())
    }
}

/// Accepts connections for ever (each in its own task; an accept error is
/// logged and retried after 100 ms).
pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let s = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, s).await {
                        tracing::info!("control connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A request (see the protocol table in [the module docs](super)).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Hello {
        #[serde(default)]
        operator: Claim,
        #[serde(default)]
        read_only: bool,
    },
    Status,
    History,
    Events {
        #[serde(default)]
        from: u64,
    },
    Command {
        #[serde(flatten)]
        command: Command,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// One line read with a cap.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A complete line (without its newline; the last line may lack one).
    Complete(Vec<u8>),
    /// Longer than the cap: the bytes read so far were dropped.
    TooLong,
    /// End of stream.
    Eof,
}

/// Reads one `\n`-terminated line of at most `cap` bytes, never buffering
/// more than `cap` bytes of it. After [`Line::TooLong`] the rest of that
/// line is still unread: the caller closes the connection.
pub(crate) async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    cap: usize,
) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete(buf)
            });
        }
        if let Some(i) = avail.iter().position(|&b| b == b'\n') {
            let too_long = buf.len() + i > cap;
            if !too_long {
                buf.extend_from_slice(&avail[..i]);
            }
            r.consume(i + 1);
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete(buf)
            });
        }
        let n = avail.len();
        if buf.len() + n > cap {
            r.consume(n);
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(avail);
        r.consume(n);
    }
}

/// The OS user of uid `uid` (`uid<N>` when the user database has none).
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| strip_control(&u.name))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("uid{uid}"))
}

/// At most 128 characters of `s`, trimmed, without control characters.
fn clean(s: &str) -> String {
    strip_control(s.trim()).chars().take(128).collect()
}

/// The operator of a connection: the peer's OS user (from the kernel), and
/// what the client claims beside it (`deploy (says alice)` when the
/// claimed name differs: a claim is never taken for the identity).
pub fn operator_for(peer: &str, host: &str, claim: &Claim) -> Operator {
    let claimed = claim.user.as_deref().map(clean).filter(|c| !c.is_empty());
    let user = match claimed {
        Some(c) if c != peer => format!("{peer} (says {c})"),
        _ => peer.to_string(),
    };
    let opt = |v: &Option<String>| v.as_deref().map(clean).filter(|s| !s.is_empty());
    Operator {
        user,
        host: host.to_string(),
        ssh_client: opt(&claim.ssh_client),
        tty: opt(&claim.tty),
    }
}

struct Conn {
    id: u64,
    peer: String,
    operator: Operator,
    read_only: bool,
    streams: Vec<tokio::task::JoinHandle<()>>,
}

async fn connection(stream: UnixStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = user_name(cred.uid());
    let (rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(1024);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = out_rx.recv().await {
            line.push('\n');
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut conn = Conn {
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        operator: operator_for(&peer, &shared.host, &Claim::default()),
        peer,
        read_only: false,
        streams: Vec::new(),
    };
    let mut reader = BufReader::new(rd);
    let result = loop {
        let line = match read_line_capped(&mut reader, MAX_REQUEST).await {
            Ok(Line::Eof) => break Ok(()),
            Ok(Line::TooLong) => {
                let _ = out_tx
                    .send(
                        json!({"id": null, "ok": false,
                        "error": format!("request longer than {MAX_REQUEST} bytes; closing")})
                        .to_string(),
                    )
                    .await;
                break Ok(());
            }
            Ok(Line::Complete(l)) => l,
            Err(e) => break Err(e),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut reply = handle(&mut conn, &shared, &line, &out_tx).await;
        if reply.is_null() {
            continue;
        }
        shared.redactor.redact_value(&mut reply);
        if out_tx.send(reply.to_string()).await.is_err() {
            break Ok(());
        }
    };
    if let Ok(mut m) = shared.attached.lock() {
        m.remove(&conn.id);
    }
    for s in conn.streams.drain(..) {
        s.abort();
    }
    drop(out_tx);
    if let Err(e) = writer.await {
        tracing::warn!(
            "control connection {}: its writer task failed: {e}",
            conn.id
        );
    }
    result
}

fn error(id: &Value, why: impl Into<String>) -> Value {
    json!({"id": id, "ok": false, "error": why.into()})
}

async fn handle(
    conn: &mut Conn,
    shared: &Arc<Shared>,
    line: &[u8],
    out: &mpsc::Sender<String>,
) -> Value {
    let mut v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return error(&Value::Null, format!("not a JSON object: {e}")),
    };
    let Some(obj) = v.as_object_mut() else {
        return error(&Value::Null, "not a JSON object");
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let req: Request = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => {
            return error(
                &id,
                format!(
                    "bad request: {e} (ops: hello, status, history, events, command; see `rolldeck --help` and the README's control API)"
                ),
            );
        }
    };
    match req {
        Request::Hello {
            operator,
            read_only,
        } => {
            conn.operator = operator_for(&conn.peer, &shared.host, &operator);
            conn.read_only = read_only;
            if let Ok(mut m) = shared.attached.lock() {
                let mut who = conn.operator.to_string();
                if read_only {
                    who.push_str(" [read-only]");
                }
                m.insert(conn.id, who);
            }
            json!({"id": id, "ok": true, "operator": conn.operator.to_string(), "read_only": read_only})
        }
        Request::Status => {
            let driver = shared.driver.borrow().clone();
            let release = shared.state.borrow().clone();
            let stopped = shared.stopped.borrow().clone();
            json!({"id": id, "ok": true, "driver": driver, "release": release,
                "attached": shared.attached(), "stopped": stopped})
        }
        Request::History => {
            let store = shared.paths.store.clone();
            match tokio::task::spawn_blocking(move || store.all()).await {
                Ok(Ok(all)) => {
                    let rows: Vec<Value> = all.iter().map(history_row).collect();
                    json!({"id": id, "ok": true, "releases": rows})
                }
                Ok(Err(e)) => error(&id, format!("history: {e}")),
                Err(e) => error(&id, format!("history reader failed: {e}")),
            }
        }
        Request::Events { from } => {
            let s = shared.clone();
            let out = out.clone();
            let sid = id.clone();
            conn.streams
                .push(tokio::spawn(stream_events(sid, from, s, out)));
            // The stream's first line is its acknowledgement.
            Value::Null
        }
        Request::Command { command, reason } => command_request(conn, shared, id, command, reason),
    }
}

/// One row of `history`.
pub fn history_row(r: &Release) -> Value {
    use crate::release::Phase;
    let (outcome, reason) = match &r.phase {
        Phase::Running => ("running".to_string(), String::new()),
        Phase::Paused { reason, .. } => ("paused".into(), reason.clone()),
        Phase::WaitingApproval { message } => ("waiting_approval".into(), message.clone()),
        Phase::RollingBack { reason } => ("rolling_back".into(), reason.clone()),
        Phase::Finished { outcome, reason } => (outcome.as_str().into(), reason.clone()),
    };
    json!({"release": r.id, "version": r.version, "plan": r.plan.name,
        "started_at": r.started_at, "finished_at": r.finished_at,
        "outcome": outcome, "reason": reason})
}

fn command_request(
    conn: &Conn,
    shared: &Arc<Shared>,
    id: Value,
    command: Command,
    reason: Option<String>,
) -> Value {
    let name = serde_json::to_value(&command)
        .ok()
        .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let reason = reason
        .map(|r| {
            strip_control(r.trim())
                .chars()
                .take(1000)
                .collect::<String>()
        })
        .filter(|r| !r.is_empty());
    let release = shared.state.borrow().clone();
    let check: Result<(), String> = if conn.read_only {
        Err("refused: read-only connection".into())
    } else if let Some(why) = shared.stopped.borrow().clone() {
        Err(format!("refused: the driver has stopped ({why})"))
    } else {
        match &release {
            None => Err("refused: no release yet".into()),
            Some(r) => r.can(&command).map_err(|w| format!("refused: {w}")),
        }
    };
    let issued = Issued {
        command,
        operator: conn.operator.to_string(),
        reason: reason.clone(),
    };
    let result = check.and_then(|()| {
        shared.commands.try_send(issued.clone()).map_err(|_| {
            "refused: the driver is not accepting commands (queue full or stopping)".to_string()
        })
    });
    let rec = AuditRecord {
        ts: jiff::Timestamp::now().to_string(),
        operator: conn.operator.clone(),
        action: format!("command {name}"),
        release: release.as_ref().map(|r| r.id.clone()),
        step: None,
        rendered: shared
            .redactor
            .to_json_line(&issued)
            .unwrap_or_else(|e| format!("(unencodable: {e})")),
        exit_code: None,
        http_status: None,
        ok: result.is_ok(),
        duration_s: 0.0,
        detail: match &result {
            Ok(()) => "accepted by the background driver".into(),
            Err(e) => e.clone(),
        },
        reason,
        run_id: None,
    };
    let audited = shared.audit.append(&rec);
    match (result, audited) {
        (Ok(()), Ok(())) => {
            json!({"id": id, "ok": true, "accepted": true, "operator": conn.operator.to_string()})
        }
        // Accepted but not audited: said, never hidden.
        (Ok(()), Err(e)) => json!({"id": id, "ok": true, "accepted": true,
            "operator": conn.operator.to_string(), "warning": format!("audit log: {e}")}),
        (Err(e), _) => error(&id, e),
    }
}

/// Streams the journal records of the driven release from index `from`,
/// action output, and the end (see the protocol table).
async fn stream_events(id: Value, from: u64, shared: Arc<Shared>, out: mpsc::Sender<String>) {
    let send = async |v: Value| {
        let mut v = v;
        shared.redactor.redact_value(&mut v);
        out.send(v.to_string()).await.is_ok()
    };
    let mut state = shared.state.clone();
    let mut stopped = shared.stopped.clone();
    let mut output = shared.output.subscribe();
    // The release is known once the driver has journaled its first record.
    let rid = loop {
        let known = state.borrow().as_ref().map(|r| r.id.clone());
        if let Some(rid) = known {
            break rid;
        }
        let why = stopped.borrow().clone();
        if let Some(why) = why {
            let _ =
                send(json!({"id": id, "ok": false, "error": format!("the driver stopped: {why}")}))
                    .await;
            return;
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { return },
            _ = stopped.changed() => {},
        }
    };
    if !send(json!({"id": id, "ok": true, "release": rid, "from": from})).await {
        return;
    }
    let path = shared.paths.store.release_path(&rid);
    let mut off = 0u64;
    let mut index = 0u64;
    loop {
        let end = stopped.borrow().clone();
        match read_new(&path, &mut off) {
            Ok(lines) => {
                for raw in lines {
                    if index >= from {
                        let ok = send(json!({"id": id, "offset": index, "record": raw})).await;
                        if !ok {
                            return;
                        }
                    }
                    index += 1;
                }
            }
            Err(e) => {
                let _ = send(json!({"id": id, "ok": false, "error": e})).await;
                return;
            }
        }
        if let Some(why) = end {
            let _ = send(json!({"id": id, "end": why})).await;
            return;
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { tokio::time::sleep(Duration::from_millis(500)).await },
            _ = stopped.changed() => {},
            o = output.recv() => match o {
                Ok(l) => if !send(json!({"id": id, "output": l})).await { return },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    if !send(json!({"id": id, "output_lost": n})).await { return }
                }
                Err(broadcast::error::RecvError::Closed) => tokio::time::sleep(Duration::from_millis(500)).await,
            },
            // Records that change no state (a refused command) still go out
            // within half a second.
            _ = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}

/// The complete records appended to `path` since byte `off` (advanced past
/// them), each as JSON; a torn tail waits for its newline.
fn read_new(path: &Path, off: &mut u64) -> Result<Vec<Value>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("journal {}: {e}", path.display())),
    };
    let len = f
        .metadata()
        .map_err(|e| format!("journal {}: {e}", path.display()))?
        .len();
    if len < *off {
        return Err(format!(
            "journal {} shrank (torn tail cut off?); reconnect with `from` to resume",
            path.display()
        ));
    }
    if len == *off {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(*off))
        .map_err(|e| format!("journal {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(len - *off)
        .read_to_end(&mut buf)
        .map_err(|e| format!("journal {}: {e}", path.display()))?;
    let Some(last) = buf.iter().rposition(|&b| b == b'\n') else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, line) in buf[..last].split(|&b| b == b'\n').enumerate() {
        let v: Value = serde_json::from_slice(line).map_err(|e| {
            format!(
                "journal {}: record {} after byte {}: {e}",
                path.display(),
                i + 1,
                *off
            )
        })?;
        out.push(v);
    }
    *off += last as u64 + 1;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_capped_and_a_long_one_is_refused() {
        let data = b"{\"op\":\"status\"}\n0123456789abcdef\nxxxxxxxxxxxxxxxxxxxx\n".to_vec();
        let mut r = BufReader::with_capacity(4, &data[..]);
        assert_eq!(
            read_line_capped(&mut r, 16).await.unwrap(),
            Line::Complete(b"{\"op\":\"status\"}".to_vec()),
            "15 bytes"
        );
        assert_eq!(
            read_line_capped(&mut r, 16).await.unwrap(),
            Line::Complete(b"0123456789abcdef".to_vec()),
            "exactly 16 bytes"
        );
        // The caller closes the connection: the rest is never read.
        assert_eq!(read_line_capped(&mut r, 16).await.unwrap(), Line::TooLong);
        let mut empty = BufReader::new(&b""[..]);
        assert_eq!(read_line_capped(&mut empty, 16).await.unwrap(), Line::Eof);
    }

    #[test]
    fn requests_decode_with_their_commands() {
        let r: Request = serde_json::from_str(
            r#"{"op":"command","command":"set_weight","weight":25,"reason":"hold"}"#,
        )
        .unwrap();
        match r {
            Request::Command { command, reason } => {
                assert_eq!(command, Command::SetWeight { weight: 25 });
                assert_eq!(reason.as_deref(), Some("hold"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"command","command":"explode"}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
        assert!(matches!(
            serde_json::from_str::<Request>(r#"{"op":"status"}"#).unwrap(),
            Request::Status
        ));
    }

    #[test]
    fn the_operator_is_the_peer_and_a_claim_only_stands_beside_it() {
        let claim = Claim {
            user: Some("alice\x1b[2J".into()),
            ssh_client: Some("10.0.0.5".into()),
            tty: None,
        };
        let op = operator_for("deploy", "bastion", &claim);
        assert_eq!(op.user, "deploy (says alice)", "escape sequences removed");
        assert_eq!(op.to_string(), "deploy (says alice)@bastion (ssh 10.0.0.5)");
        let same = Claim {
            user: Some("deploy".into()),
            ..Claim::default()
        };
        assert_eq!(operator_for("deploy", "h", &same).user, "deploy");
    }
}
