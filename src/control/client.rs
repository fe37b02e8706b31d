//! The client side of the control protocol: `rolldeck attach`, `ps`,
//! `status`, and scripts written in Rust.

use super::server::{Line, read_line_capped};
use super::{Claim, MAX_REPLY};
use crate::release::engine::Issued;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// How long a client waits for a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a driver's control socket.
pub struct Client {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    next: u64,
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Client {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` (no driver), `ConnectionRefused` (a killed driver's
    /// socket), `PermissionDenied` (not in the state dir's group).
    pub async fn connect(path: &Path) -> std::io::Result<Self> {
        let s = UnixStream::connect(path).await?;
        let (rd, wr) = s.into_split();
        Ok(Self {
            rd: BufReader::new(rd),
            wr,
            next: 1,
        })
    }

    /// Sends `req` (an object) with a fresh `id`, which is returned.
    ///
    /// # Errors
    ///
    /// I/O errors; `req` not an object.
    pub async fn send(&mut self, mut req: Value) -> std::io::Result<u64> {
        let id = self.next;
        self.next += 1;
        req.as_object_mut()
            .ok_or_else(|| other("a request is a JSON object"))?
            .insert("id".into(), id.into());
        let mut line = req.to_string();
        line.push('\n');
        self.wr.write_all(line.as_bytes()).await?;
        Ok(id)
    }

    /// The next reply line (`None` at the end of the stream).
    ///
    /// # Errors
    ///
    /// I/O errors, a line longer than [`MAX_REPLY`], a line not JSON.
    pub async fn recv(&mut self) -> std::io::Result<Option<Value>> {
        match read_line_capped(&mut self.rd, MAX_REPLY).await? {
            Line::Eof => Ok(None),
            Line::TooLong => Err(other(format!("reply longer than {MAX_REPLY} bytes"))),
            Line::Complete(l) => serde_json::from_slice(&l).map(Some).map_err(other),
        }
    }

    /// Sends `req` and returns its reply (other lines, e.g. of an `events`
    /// stream on this connection, are skipped), within [`REPLY_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// I/O errors, the driver closing the connection, the timeout.
    pub async fn call(&mut self, req: Value) -> std::io::Result<Value> {
        let id = self.send(req).await?;
        tokio::time::timeout(REPLY_TIMEOUT, async {
            loop {
                match self.recv().await? {
                    Some(v) if v.get("id") == Some(&Value::from(id)) => return Ok(v),
                    Some(_) => continue,
                    None => return Err(other("the driver closed the connection")),
                }
            }
        })
        .await
        .map_err(|_| other(format!("no reply within {REPLY_TIMEOUT:?}")))?
    }

    /// `hello` with this process's [`Claim`].
    ///
    /// # Errors
    ///
    /// As [`Client::call`].
    pub async fn hello(&mut self, read_only: bool) -> std::io::Result<Value> {
        self.call(json!({"op": "hello", "operator": Claim::current(), "read_only": read_only}))
            .await
    }
}

/// `status` of the driver at `socket`, in one short connection.
///
/// # Errors
///
/// Why it could not be asked, in words.
pub async fn status(socket: &Path) -> Result<Value, String> {
    let mut c = Client::connect(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    c.call(json!({"op": "status"}))
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))
}

/// The JSON request of a command (`{"op":"command","command":…,"reason":…}`).
pub fn command_request(i: &Issued) -> Value {
    let mut v = serde_json::to_value(&i.command).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("op".into(), "command".into());
        if let Some(r) = &i.reason {
            o.insert("reason".into(), r.clone().into());
        }
    }
    v
}

/// Sends each command from `rx` to the driver at `socket` (one connection,
/// opened with `hello` when first needed and again after an error) and
/// reports each result: `Ok(what was accepted)` or `Err(why not)`. Ends
/// when `rx` closes.
pub async fn forward(
    socket: std::path::PathBuf,
    mut rx: mpsc::Receiver<Issued>,
    mut report: impl FnMut(Result<String, String>) + Send,
) {
    let mut conn: Option<Client> = None;
    while let Some(i) = rx.recv().await {
        let name = command_request(&i)
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .replace('_', " ");
        if conn.is_none() {
            match Client::connect(&socket).await {
                Ok(mut c) => match c.hello(false).await {
                    Ok(_) => conn = Some(c),
                    Err(e) => {
                        report(Err(format!("{name}: the background driver: {e}")));
                        continue;
                    }
                },
                Err(e) => {
                    report(Err(format!(
                        "{name}: cannot reach the background driver ({}): {e}",
                        socket.display()
                    )));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match c.call(command_request(&i)).await {
            Ok(v) if v["ok"] == true => report(Ok(format!(
                "{name}: accepted by the background driver (as {})",
                v["operator"].as_str().unwrap_or("?")
            ))),
            Ok(v) => report(Err(format!(
                "{name}: {}",
                v["error"].as_str().unwrap_or("refused")
            ))),
            Err(e) => {
                conn = None;
                report(Err(format!("{name}: the background driver: {e}")));
            }
        }
    }
}
