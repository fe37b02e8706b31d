//! The Docker source (`[sources.docker]`), through the `bollard` crate.
//!
//! * **Connection.** `host` from the config, else `DOCKER_HOST`, else the
//!   local socket ([`bollard::Docker::connect_with_defaults`]); the API
//!   version is negotiated down to the engine's. No engine, a refused
//!   socket or a wrong `DOCKER_HOST` is a normal state: the source is
//!   *down* with the reason ([`DockerWatch::status`]), never an error that
//!   stops the cockpit.
//! * **Selection.** Each track's containers are picked by a label selector
//!   (`key=value` or `key`) or a glob over the name
//!   ([`crate::config::ContainerSelector`]); at most `max_containers` per
//!   track are read, more are counted in the status.
//! * **State.** [`DockerWatch::spawn`] keeps [`ContainerInfo`]s current from
//!   the engine's event stream (every container event of a selected or
//!   tracked container — start, die, kill, health_status, restart, destroy
//!   — re-inspects that container at once), with the whole list read again
//!   every `interval` as a safety net.
//! * **Health targets.** `docker:baseline` and `docker:canary` behave like
//!   `[[sources.health]]` targets in `health` steps and `rollback_when`
//!   triggers ([`DockerWatch::track_health`]): a probe passes only when the
//!   track has at least one container, every one is running and none is
//!   unhealthy or still starting its health check. Missing or stale state
//!   is never a pass. For rollback triggers ([`judge_track`],
//!   [`ProbeKind`]): a health check still `starting` (the container's start
//!   period) is no failure either, so a freshly started canary does not
//!   roll back; an exited or dead canary fires the trigger at once.
//!
//! Bounds: every request has the configured `timeout`; names, images and
//! reasons are cut to [`MAX_TEXT`] characters and stripped of control
//! sequences. `bollard` reads each JSON answer whole, so the byte size of a
//! list or inspect answer is bounded by the number of containers asked for
//! (`max_containers`), not by a byte cap of ours.

pub mod action;
pub mod image;
pub mod logs;
pub mod run;

use crate::config::{Config, ContainerSelector, DockerSource};
use crate::release::engine::ProbeKind;
use bollard::Docker;
use bollard::models::{ContainerInspectResponse, EventMessage};
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt as _;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest name, image or reason kept, in characters.
pub const MAX_TEXT: usize = 256;

/// The health target names the Docker source offers for `cfg`:
/// `docker:baseline` and/or `docker:canary`, for the tracks it selects.
pub fn health_targets(cfg: &Config) -> Vec<String> {
    cfg.sources.docker.as_ref().map_or_else(Vec::new, |d| {
        selectors(d)
            .into_iter()
            .map(|(t, _)| format!("docker:{t}"))
            .collect()
    })
}

fn selectors(d: &DockerSource) -> Vec<(&'static str, ContainerSelector)> {
    [("baseline", &d.baseline), ("canary", &d.canary)]
        .into_iter()
        .filter_map(|(t, s)| s.clone().map(|s| (t, s)))
        .collect()
}

/// One container as the cockpit and `rolldeck snapshot --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerInfo {
    /// Container id (full, hex).
    pub id: String,
    /// Name, without Docker's leading `/`.
    pub name: String,
    /// `baseline` or `canary`.
    pub track: String,
    /// Image as the container was created from it, `name:tag`.
    pub image: String,
    /// Docker's state: `created`, `running`, `paused`, `restarting`,
    /// `removing`, `exited`, `dead`.
    pub state: String,
    /// Health check status (`starting`, `healthy`, `unhealthy`), `null`
    /// when the container has no health check.
    pub health: Option<String>,
    /// Consecutive failed health checks (0 without a health check).
    pub failing_streak: i64,
    /// How often Docker restarted it (restart policy).
    pub restarts: i64,
    /// When it last started (RFC 3339), `null` if never.
    pub started_at: Option<String>,
    /// Exit code of the last run, `null` while running or never run.
    pub exit_code: Option<i64>,
}

impl ContainerInfo {
    /// Whether this container counts as healthy evidence: running, and its
    /// health check (if any) says `healthy`.
    pub fn problem(&self) -> Option<String> {
        if self.state != "running" {
            return Some(match self.exit_code {
                Some(c) if self.state == "exited" || self.state == "dead" => {
                    format!("container {} {} (exit code {c})", self.name, self.state)
                }
                _ => format!("container {} is {}", self.name, self.state),
            });
        }
        match self.health.as_deref() {
            None | Some("healthy") => None,
            Some("unhealthy") => Some(format!(
                "container {} is unhealthy (failing streak {})",
                self.name, self.failing_streak
            )),
            Some(h) => Some(format!("container {} health is {h}", self.name)),
        }
    }

    /// Exited or dead: gone until someone starts it again.
    pub fn stopped(&self) -> bool {
        matches!(self.state.as_str(), "exited" | "dead")
    }

    /// Running, with a health check still in its start period
    /// (`starting`): no evidence of health yet, nor of its absence.
    pub fn starting(&self) -> bool {
        self.state == "running" && self.health.as_deref() == Some("starting")
    }

    /// Seconds since it started, when running.
    pub fn uptime_s(&self, now: Timestamp) -> Option<i64> {
        if self.state != "running" {
            return None;
        }
        let t: Timestamp = self.started_at.as_deref()?.parse().ok()?;
        Some((now.as_second() - t.as_second()).max(0))
    }
}

fn cut(s: &str) -> String {
    crate::exec::strip_control(&s.chars().take(MAX_TEXT).collect::<String>())
}

/// A copy of what a [`DockerWatch`] knows ([`DockerWatch::view`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WatchView {
    /// `None` before the first attempt to reach the engine;
    /// `Some(Err(reason))` while it cannot be reached; else the engine's
    /// description (`Docker Engine 24.0.7 (API 1.43) at unix:///…`).
    pub conn: Option<Result<String, String>>,
    /// The selected containers, by track then name.
    pub containers: Vec<ContainerInfo>,
    /// Containers selected but not read because of `max_containers`.
    pub over_cap: usize,
    /// When the engine last confirmed the whole list (the periodic read).
    pub confirmed: Option<Timestamp>,
    /// After this long without a confirmation the list is stale
    /// (3 × `interval`).
    pub stale_after: Duration,
}

/// What the watcher knows.
#[derive(Debug, Clone, Default)]
struct State {
    /// `Err(reason)` while the engine cannot be reached; `None` before the
    /// first attempt.
    conn: Option<Result<String, String>>,
    containers: BTreeMap<String, ContainerInfo>,
    /// Containers selected but not read because of `max_containers`.
    over_cap: usize,
    /// When the state was last confirmed by the engine.
    confirmed: Option<Timestamp>,
}

/// The Docker source: connection, selection and the container state kept
/// current by [`DockerWatch::spawn`]. Cheap to clone (shared state).
#[derive(Clone)]
pub struct DockerWatch {
    cfg: DockerSource,
    state: Arc<Mutex<State>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl DockerWatch {
    /// The watcher for `[sources.docker]`; does no I/O.
    pub fn new(cfg: &DockerSource) -> Self {
        Self {
            cfg: cfg.clone(),
            state: Arc::default(),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// A receiver that sees a new value each time the container state
    /// changes (a container started, died, turned unhealthy, …).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// The containers known now, by track then name.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        let mut v: Vec<_> = self.lock().containers.values().cloned().collect();
        v.sort_by(|a, b| (&a.track, &a.name).cmp(&(&b.track, &b.name)));
        v
    }

    /// Everything the Containers pane shows, read at once: the
    /// connection, the containers (by track, then name), how many were
    /// left out by `max_containers`, and when the engine last confirmed
    /// the list.
    pub fn view(&self) -> WatchView {
        let st = self.lock();
        let mut containers: Vec<_> = st.containers.values().cloned().collect();
        containers.sort_by(|a, b| (&a.track, &a.name).cmp(&(&b.track, &b.name)));
        WatchView {
            conn: st.conn.clone(),
            containers,
            over_cap: st.over_cap,
            confirmed: st.confirmed,
            stale_after: 3 * self.cfg.interval,
        }
    }

    /// `Err(reason)` while the engine cannot be reached (or before the
    /// watcher first reached it), else the engine's description.
    pub fn connection(&self) -> Result<String, String> {
        self.lock()
            .conn
            .clone()
            .unwrap_or_else(|| Err("not connected yet".into()))
    }

    /// Evaluates the health target `docker:TRACK` from the watched state:
    /// `Ok(detail)` when the track has at least one container and every
    /// one is running and not unhealthy/starting; else `Err((kind,
    /// reason))`, the kind as [`judge_track`] gives it (`Plain` for a
    /// down engine or stale state).
    /// State not confirmed by the engine within 3 × `interval` (the engine
    /// went away, the watcher is not running) is a failure, never a pass.
    ///
    /// Right after the watcher starts (no list read and no failure yet) it
    /// waits for that first answer, at most `timeout` + 1 s, so that a
    /// trigger probed at once does not count a failure nobody saw.
    pub async fn track_health(&self, track: &str) -> Result<String, (ProbeKind, String)> {
        let first = |s: &State| s.confirmed.is_some() || matches!(s.conn, Some(Err(_)));
        if !first(&self.lock()) {
            let mut rx = self.subscribe();
            let wait = async {
                while !first(&self.lock()) {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(self.cfg.timeout + Duration::from_secs(1), wait).await;
        }
        let st = self.lock();
        let plain = |e: String| Err((ProbeKind::Plain, e));
        match &st.conn {
            None => return plain("Docker: no container state read yet".into()),
            Some(Err(e)) => return plain(format!("Docker down: {e}")),
            Some(Ok(_)) => {}
        }
        let stale = 3 * self.cfg.interval.as_millis() as i64;
        match st.confirmed {
            Some(t) if Timestamp::now().as_millisecond() - t.as_millisecond() <= stale => {}
            Some(t) => {
                return plain(format!(
                    "Docker: container state is stale (last confirmed {t})"
                ));
            }
            None => return plain("Docker: no container state read yet".into()),
        }
        judge_track(track, st.containers.values())
    }

    /// Starts the watcher task: connect, read the list, follow the event
    /// stream, read the list again every `interval`; on any failure the
    /// state says down with the reason and it reconnects after `interval`.
    /// Abort the handle to stop it.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.watch().await })
    }

    fn set_down(&self, reason: String) {
        let mut st = self.lock();
        let was = st.conn.clone();
        st.conn = Some(Err(cut(&reason)));
        drop(st);
        if was != self.lock().conn {
            self.bump();
        }
    }

    async fn watch(self) {
        loop {
            let docker = match connect(&self.cfg).await {
                Ok((d, about)) => {
                    self.lock().conn = Some(Ok(about));
                    self.bump();
                    d
                }
                Err(e) => {
                    self.set_down(e);
                    tokio::time::sleep(self.cfg.interval).await;
                    continue;
                }
            };
            let mut filters = HashMap::new();
            filters.insert("type".to_string(), vec!["container".to_string()]);
            let mut events = Box::pin(docker.events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            })));
            let mut tick = tokio::time::interval(self.cfg.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let why = loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(m)) => {
                            if let Err(e) = self.on_event(&docker, &m).await {
                                break e;
                            }
                        }
                        Some(Err(e)) => break format!("event stream: {}", short_error(&e)),
                        None => break "the engine closed the event stream".to_string(),
                    },
                    _ = tick.tick() => match list(&docker, &self.cfg).await {
                        Ok((found, over)) => self.replace(found, over),
                        Err(e) => break e,
                    },
                }
            };
            self.set_down(why);
            tokio::time::sleep(Duration::from_secs(1).min(self.cfg.interval)).await;
        }
    }

    fn replace(&self, found: Vec<ContainerInfo>, over_cap: usize) {
        let mut st = self.lock();
        let new: BTreeMap<_, _> = found.into_iter().map(|c| (c.id.clone(), c)).collect();
        let changed = st.containers != new;
        st.containers = new;
        st.over_cap = over_cap;
        st.confirmed = Some(Timestamp::now());
        drop(st);
        if changed {
            self.bump();
        }
    }

    /// One container event: re-inspect the container if it is tracked or
    /// its attributes (labels, name) match a selector.
    async fn on_event(&self, docker: &Docker, m: &EventMessage) -> Result<(), String> {
        let Some(actor) = &m.actor else { return Ok(()) };
        let Some(id) = actor.id.clone() else {
            return Ok(());
        };
        let attrs = actor.attributes.clone().unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_default();
        let known = self.lock().containers.contains_key(&id);
        let track = track_of(&self.cfg, &name, &attrs);
        if !known && track.is_none() {
            return Ok(());
        }
        let action = m.action.as_deref().unwrap_or("");
        if action == "destroy" {
            let gone = self.lock().containers.remove(&id).is_some();
            if gone {
                self.bump();
            }
            return Ok(());
        }
        match docker.inspect_container(&id, None).await {
            Ok(ins) => {
                let info = track
                    .or_else(|| self.lock().containers.get(&id).map(|c| c.track.clone()))
                    .and_then(|t| info_of(&ins, &t));
                let mut st = self.lock();
                let over = st
                    .containers
                    .values()
                    .filter(|c| Some(&c.track) == info.as_ref().map(|i| &i.track))
                    .count()
                    >= self.cfg.max_containers
                    && !st.containers.contains_key(&id);
                let changed = match info {
                    Some(i) if !over => st.containers.insert(id, i.clone()).as_ref() != Some(&i),
                    Some(_) => {
                        st.over_cap += 1;
                        false
                    }
                    None => st.containers.remove(&id).is_some(),
                };
                drop(st);
                if changed {
                    self.bump();
                }
                Ok(())
            }
            // Removed between the event and the inspect.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                if self.lock().containers.remove(&id).is_some() {
                    self.bump();
                }
                Ok(())
            }
            Err(e) => Err(format!("inspect {}: {}", cut(&name), short_error(&e))),
        }
    }

    /// The source's status line for the header, `rolldeck check` and
    /// `snapshot`: when the watcher runs, its state; else one fresh
    /// connection and list.
    pub async fn status(&self) -> crate::sources::SourceStatus {
        let start = std::time::Instant::now();
        let watched = {
            let st = self.lock();
            st.conn
                .clone()
                .map(|c| c.map(|about| (about, st.containers.len(), st.over_cap)))
        };
        let r = match watched.clone() {
            Some(r) => r,
            None => list_once(&self.cfg)
                .await
                .map(|(about, found, over)| (about, found.len(), over)),
        };
        let watched = watched.is_some();
        crate::sources::SourceStatus {
            source: "docker".into(),
            ok: r.is_ok(),
            detail: match r {
                Ok((about, n, over)) => format!(
                    "ok: {about}, {n} selected container{}{}",
                    if n == 1 { "" } else { "s" },
                    if over > 0 {
                        format!(" ({over} more over max_containers, not read)")
                    } else {
                        String::new()
                    }
                ),
                Err(e) => e,
            },
            latency_ms: (!watched).then(|| start.elapsed().as_secs_f64() * 1000.0),
        }
    }
}

/// Sends `wrap(`[`DockerWatch::view`]`)` on `tx` now and after each change
/// of the watcher's state, until the receiver is gone. Changes that come
/// while a send waits for room are folded into the next view.
pub async fn forward_views<M>(
    watch: DockerWatch,
    tx: tokio::sync::mpsc::Sender<M>,
    wrap: impl Fn(WatchView) -> M,
) {
    let mut rx = watch.subscribe();
    loop {
        rx.borrow_and_update();
        if tx.send(wrap(watch.view())).await.is_err() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Judges one track's containers for the health target `docker:TRACK`:
/// `Ok(detail)` when the track has at least one container and each is
/// running with no health check or a `healthy` one. Otherwise the reasons
/// (every container's problem, `; `-joined) and what they mean
/// ([`ProbeKind`]):
///
/// * `Stopped` when any of them exited or is dead (a rollback trigger on
///   the target fires at once);
/// * `Starting` when every problem is a running container whose health
///   check still says `starting` (Docker's start period: never a pass, and
///   no failure for a trigger; Docker turns it `unhealthy` after the start
///   period and `retries` failed checks, which then count);
/// * `Plain` otherwise: `unhealthy`, `restarting`, `created`, `paused`, no
///   container on the track.
pub fn judge_track<'a>(
    track: &str,
    containers: impl IntoIterator<Item = &'a ContainerInfo>,
) -> Result<String, (ProbeKind, String)> {
    let mine: Vec<&ContainerInfo> = containers
        .into_iter()
        .filter(|c| c.track == track)
        .collect();
    if mine.is_empty() {
        return Err((ProbeKind::Plain, format!("no {track} container")));
    }
    let bad: Vec<&&ContainerInfo> = mine.iter().filter(|c| c.problem().is_some()).collect();
    if !bad.is_empty() {
        let kind = if bad.iter().any(|c| c.stopped()) {
            ProbeKind::Stopped
        } else if bad.iter().all(|c| c.starting()) {
            ProbeKind::Starting
        } else {
            ProbeKind::Plain
        };
        let problems: Vec<String> = bad.iter().filter_map(|c| c.problem()).collect();
        return Err((kind, problems.join("; ")));
    }
    Ok(format!(
        "{} {track} container{} running{}",
        mine.len(),
        if mine.len() == 1 { "" } else { "s" },
        if mine.iter().any(|c| c.health.is_some()) {
            ", healthy"
        } else {
            ""
        }
    ))
}

/// The track whose selector picks a container with this name and labels.
fn track_of(cfg: &DockerSource, name: &str, labels: &HashMap<String, String>) -> Option<String> {
    let name = name.trim_start_matches('/');
    selectors(cfg)
        .into_iter()
        .find(|(_, s)| matches(s, name, labels))
        .map(|(t, _)| t.to_string())
}

/// Whether selector `s` picks a container named `name` with `labels`.
pub fn matches(s: &ContainerSelector, name: &str, labels: &HashMap<String, String>) -> bool {
    if let Some(l) = &s.label {
        return match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        };
    }
    if let Some(p) = &s.name {
        return glob::Pattern::new(p).is_ok_and(|p| p.matches(name));
    }
    false
}

/// Connects to the engine of `cfg` and negotiates the API version. Returns
/// the client and "engine VERSION (API X)"; the reason when it fails.
pub async fn connect(cfg: &DockerSource) -> Result<(Docker, String), String> {
    connect_host(cfg.host.as_deref(), cfg.timeout).await
}

/// [`connect`] to `host` (`None`: `DOCKER_HOST`, else the local socket)
/// with request timeout `timeout` (whole seconds, at least 1).
pub async fn connect_host(
    host: Option<&str>,
    timeout: Duration,
) -> Result<(Docker, String), String> {
    let (d, host) = match host {
        Some(h) => (Docker::connect_with_host(h), h.to_string()),
        None => (
            Docker::connect_with_defaults(),
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
        ),
    };
    let host = cut(&host);
    let d = d
        .map_err(|e| format!("cannot use Docker host {host}: {}", short_error(&e)))?
        .with_timeout(timeout.max(Duration::from_secs(1)));
    let d = tokio::time::timeout(timeout, d.negotiate_version())
        .await
        .map_err(|_| {
            format!(
                "Docker Engine at {host} did not answer within {}",
                humantime::format_duration(timeout)
            )
        })?
        .map_err(|e| format!("Docker Engine at {host}: {}", short_error(&e)))?;
    let v = tokio::time::timeout(timeout, d.version())
        .await
        .map_err(|_| format!("Docker Engine at {host} did not answer"))?
        .map_err(|e| format!("Docker Engine at {host}: {}", short_error(&e)))?;
    let about = format!(
        "Docker Engine {} (API {}) at {host}",
        cut(v.version.as_deref().unwrap_or("?")),
        cut(v.api_version.as_deref().unwrap_or("?"))
    );
    Ok((d, about))
}

/// An error and its causes in one line.
pub fn short_error(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        src = x.source();
    }
    cut(&s)
}

/// Connects once and lists the selected containers (for `snapshot` and
/// `check`): (engine description, containers, count over the cap).
pub async fn list_once(cfg: &DockerSource) -> Result<(String, Vec<ContainerInfo>, usize), String> {
    let (d, about) = connect(cfg).await?;
    let (found, over) = list(&d, cfg).await?;
    Ok((about, found, over))
}

/// Lists every container (running or not) of each selected track, at most
/// `max_containers` per track, and inspects each for restarts, health
/// streak, start time and exit code. Returns them and how many were left
/// out by the cap.
pub async fn list(d: &Docker, cfg: &DockerSource) -> Result<(Vec<ContainerInfo>, usize), String> {
    let mut out = Vec::new();
    let mut over = 0;
    for (track, sel) in selectors(cfg) {
        let mut filters = HashMap::new();
        if let Some(l) = &sel.label {
            filters.insert("label".to_string(), vec![l.clone()]);
        }
        let all = d
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("list containers: {}", short_error(&e)))?;
        let picked: Vec<_> = all
            .into_iter()
            .filter(|c| {
                let name = c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                matches(&sel, &name, &c.labels.clone().unwrap_or_default())
            })
            .collect();
        over += picked.len().saturating_sub(cfg.max_containers);
        for c in picked.into_iter().take(cfg.max_containers) {
            let Some(id) = c.id else { continue };
            match d.inspect_container(&id, None).await {
                Ok(ins) => out.extend(info_of(&ins, track)),
                // Removed meanwhile.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(format!("inspect {id}: {}", short_error(&e))),
            }
        }
    }
    Ok((out, over))
}

/// The [`ContainerInfo`] of an inspected container on `track`.
pub fn info_of(ins: &ContainerInspectResponse, track: &str) -> Option<ContainerInfo> {
    let st = ins.state.as_ref();
    let state = st
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let health = st
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
        .map(|h| h.to_string())
        .filter(|h| !h.is_empty() && h != "none");
    let running = state == "running";
    Some(ContainerInfo {
        id: ins.id.clone()?,
        name: cut(ins.name.as_deref().unwrap_or("").trim_start_matches('/')),
        track: track.to_string(),
        image: cut(ins
            .config
            .as_ref()
            .and_then(|c| c.image.as_deref())
            .unwrap_or("?")),
        health,
        failing_streak: st
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.failing_streak)
            .unwrap_or(0),
        restarts: ins.restart_count.unwrap_or(0),
        started_at: st
            .and_then(|s| s.started_at.clone())
            .filter(|t| !t.starts_with("0001-")),
        exit_code: if running || state == "created" {
            None
        } else {
            st.and_then(|s| s.exit_code)
        },
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, track: &str, state: &str, health: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            track: track.into(),
            image: "img:1".into(),
            state: state.into(),
            health: health.map(String::from),
            failing_streak: 0,
            restarts: 0,
            started_at: None,
            exit_code: (state == "exited").then_some(137),
        }
    }

    #[test]
    fn judge_track_kinds_starting_is_never_a_pass_and_exited_is_stopped() {
        let kind = |list: &[ContainerInfo]| judge_track("canary", list).map_err(|(k, _)| k);
        let healthy = c("a", "canary", "running", Some("healthy"));
        let plain = c("b", "canary", "running", None);
        let starting = c("s", "canary", "running", Some("starting"));
        let unhealthy = c("u", "canary", "running", Some("unhealthy"));
        let exited = c("x", "canary", "exited", None);
        let restarting = c("r", "canary", "restarting", Some("starting"));
        let other_track = c("o", "baseline", "exited", None);

        assert!(kind(&[healthy.clone(), plain.clone()]).is_ok());
        assert_eq!(
            kind(std::slice::from_ref(&starting)),
            Err(ProbeKind::Starting)
        );
        assert_eq!(
            kind(&[healthy.clone(), starting.clone()]),
            Err(ProbeKind::Starting),
            "one starting container is no pass for the track"
        );
        assert_eq!(
            kind(&[starting.clone(), unhealthy.clone()]),
            Err(ProbeKind::Plain)
        );
        assert_eq!(kind(&[unhealthy]), Err(ProbeKind::Plain));
        assert_eq!(kind(&[restarting]), Err(ProbeKind::Plain));
        assert_eq!(kind(&[starting, exited.clone()]), Err(ProbeKind::Stopped));
        assert_eq!(kind(&[healthy, exited.clone()]), Err(ProbeKind::Stopped));
        assert_eq!(kind(&[other_track]), Err(ProbeKind::Plain), "no canary");
        assert_eq!(kind(&[]), Err(ProbeKind::Plain));
        let (_, why) = judge_track("canary", &[exited]).unwrap_err();
        assert!(why.contains("exited (exit code 137)"), "{why}");
    }
}
