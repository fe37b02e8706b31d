//! Container logs into the Logs pane's ring buffer
//! ([`crate::tui::logs::LogBuffer`]).
//!
//! [`stream`] reads one container's stdout and stderr through the Engine
//! API (`follow`, `since`, `tail`), cuts the byte stream into lines and
//! pushes each as a [`LogLine`] tagged with the container's name
//! ([`LogSource::Container`]; stderr lines at [`Level::Warn`]). The buffer
//! strips terminal control sequences, caps each line and keeps at most its
//! capacity, counting the lines it evicts ([`LogBuffer::dropped`]): a
//! container printing 100k lines a minute cannot grow memory past the ring.
//! A partial line longer than [`MAX_PARTIAL_BYTES`] is pushed as it stands
//! instead of waiting for its newline. Lines are pushed in batches (one lock per chunk the
//! engine sends) so that a noisy container does not hold the lock the
//! cockpit's keys and drawing need.

use crate::tui::logs::{Level, LogBuffer, LogLine, LogSource};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest partial line kept while waiting for its newline, in bytes.
pub const MAX_PARTIAL_BYTES: usize = 64 * 1024;

/// Which logs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRequest {
    /// Keep reading new lines until the container stops (or the task is
    /// aborted).
    pub follow: bool,
    /// Only lines written in this last stretch of time.
    pub since: Option<Duration>,
    /// Only the last this many lines already written (`None`: all).
    pub tail: Option<usize>,
}

/// Totals of one [`stream`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogTotals {
    /// Lines pushed into the buffer.
    pub lines: u64,
    /// Bytes read from the engine.
    pub bytes: u64,
}

#[derive(Default)]
struct Splitter {
    partial: Vec<u8>,
}

impl Splitter {
    /// Appends `chunk`; returns the complete lines (and pieces of an
    /// over-long line).
    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            if let Some(body) = part.strip_suffix(b"\n") {
                self.partial.extend_from_slice(body);
                let line = std::mem::take(&mut self.partial);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                out.push(String::from_utf8_lossy(line).into_owned());
            } else {
                self.partial.extend_from_slice(part);
                if self.partial.len() >= MAX_PARTIAL_BYTES {
                    let line = std::mem::take(&mut self.partial);
                    out.push(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned())
    }
}

/// Streams the logs of container `name` into `buf` until the engine ends
/// the stream (the container stopped, or `follow` is false and the
/// existing lines are read). Returns the totals, or the engine's error.
pub async fn stream(
    docker: &Docker,
    name: &str,
    req: LogRequest,
    buf: &Arc<Mutex<LogBuffer>>,
) -> Result<LogTotals, String> {
    let since = req.since.map_or(0, |d| {
        let now = jiff::Timestamp::now().as_second();
        i32::try_from(now - i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
    });
    let opts = LogsOptions {
        follow: req.follow,
        stdout: true,
        stderr: true,
        since,
        tail: req
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string()),
        ..Default::default()
    };
    let mut s = Box::pin(docker.logs(name, Some(opts)));
    let source = LogSource::Container(name.to_string());
    let (mut out, mut err) = (Splitter::default(), Splitter::default());
    let mut totals = LogTotals::default();
    let push = |lines: Vec<(Level, String)>, totals: &mut LogTotals| {
        if lines.is_empty() {
            return;
        }
        totals.lines += lines.len() as u64;
        let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
        for (level, text) in lines {
            b.push(LogLine::new(source.clone(), level, text));
        }
    };
    while let Some(item) = s.next().await {
        let item = item.map_err(|e| format!("logs of {name}: {}", super::short_error(&e)))?;
        let (level, lines) = match &item {
            LogOutput::StdErr { message } => (Level::Warn, err.feed(message)),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Level::Info, out.feed(message))
            }
            LogOutput::StdIn { .. } => continue,
        };
        totals.bytes += item.as_ref().len() as u64;
        push(lines.into_iter().map(|l| (level, l)).collect(), &mut totals);
    }
    let rest: Vec<(Level, String)> = [(Level::Info, out.finish()), (Level::Warn, err.finish())]
        .into_iter()
        .filter_map(|(l, t)| t.map(|t| (l, t)))
        .collect();
    push(rest, &mut totals);
    Ok(totals)
}

/// Follows the logs of every container `watch` selects, into `buf`: a
/// [`stream`] (follow, last `tail` lines) starts for each running container
/// as soon as the watcher sees it, and is stopped when it leaves the
/// selection; a container that starts again gets a new stream from the time
/// it restarted. A stream that fails says why in the buffer (as a line of
/// the container). Runs until aborted.
pub async fn follow_selected(
    watch: super::DockerWatch,
    docker_host: Option<String>,
    timeout: Duration,
    tail: usize,
    buf: Arc<Mutex<LogBuffer>>,
) {
    let mut changed = watch.subscribe();
    let mut running: std::collections::HashMap<String, (String, tokio::task::JoinHandle<()>)> =
        std::collections::HashMap::new();
    loop {
        let now: std::collections::HashMap<String, super::ContainerInfo> = watch
            .containers()
            .into_iter()
            .filter(|c| c.state == "running")
            .map(|c| (c.id.clone(), c))
            .collect();
        running.retain(|id, (started, h)| {
            let keep = now.get(id).and_then(|c| c.started_at.as_ref()) == Some(started)
                && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for (id, c) in now {
            if running.contains_key(&id) {
                continue;
            }
            let started = c.started_at.clone().unwrap_or_default();
            let buf = buf.clone();
            let host = docker_host.clone();
            let name = c.name.clone();
            let h = tokio::spawn(async move {
                let r = match super::connect_host(host.as_deref(), timeout).await {
                    Ok((d, _)) => {
                        let req = LogRequest {
                            follow: true,
                            since: None,
                            tail: Some(tail),
                        };
                        stream(&d, &name, req, &buf).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    buf.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(LogLine::new(
                            LogSource::Container(name),
                            Level::Error,
                            format!("log stream failed: {e}"),
                        ));
                }
            });
            running.insert(id, (started, h));
        }
        if changed.changed().await.is_err() {
            break;
        }
    }
    for (_, (_, h)) in running {
        h.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_joins_chunks_and_caps_partial_lines() {
        let mut s = Splitter::default();
        assert!(s.feed(b"hel").is_empty());
        assert_eq!(s.feed(b"lo\r\nwor"), vec!["hello"]);
        assert_eq!(s.feed(b"ld\n\n"), vec!["world", ""]);
        let big = vec![b'x'; MAX_PARTIAL_BYTES + 10];
        let got = s.feed(&big);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_PARTIAL_BYTES + 10);
        assert!(s.partial.is_empty());
        assert!(s.feed(b"tail").is_empty());
        assert_eq!(s.finish().as_deref(), Some("tail"));
    }
}
