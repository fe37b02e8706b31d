//! Data sources: [`prometheus`], direct [`scrape`] of `/metrics`, and HTTP
//! health probes; [`Sources`] measures the config's checks for both tracks.
//!
//! A failed source is *state*, not an error that unwinds: every call
//! returns the reason as text, which becomes an `inconclusive` verdict or a
//! `down` line. That text is one line with terminal control sequences
//! stripped ([`crate::exec::strip_control`]): a hostile source cannot drive
//! the terminal through `check`, `snapshot`, the preflight or the journal.

pub mod alerts;
pub mod body;
pub mod prometheus;
pub mod scrape;

use crate::config::{CheckKind, CheckSpec, Config, HealthTarget, ScrapeTarget};
use crate::release::analysis::{Measurement, Reading, TrackResult};
use crate::release::engine::ProbeKind;
use jiff::Timestamp;
use scrape::{History, LabelMatcher};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one check is measured.
#[derive(Debug, Clone)]
pub enum Probe {
    /// PromQL per track (with `{track}` already substituted).
    Promql {
        /// Canary query.
        canary: String,
        /// Baseline query.
        baseline: String,
        /// Request-count queries (canary, baseline).
        requests: Option<(String, String)>,
    },
    /// Built-in error rate over direct scrapes.
    DirectErrorRate {
        /// Counter name.
        metric: String,
        /// Error matcher.
        errors: LabelMatcher,
        /// Window.
        window: Duration,
    },
    /// Built-in latency quantile over direct scrapes.
    DirectLatency {
        /// Histogram base name.
        metric: String,
        /// Quantile 0–1.
        quantile: f64,
        /// Window.
        window: Duration,
    },
}

fn prom_window(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// Substitutes `{track}`.
pub fn with_track(q: &str, track: &str) -> String {
    q.replace("{track}", track)
}

/// The PromQL a built-in check compiles to, with `{track}` left in:
/// `error_rate` → `(sum(rate(M{L="{track}",ERR}[W])) or vector(0)) / sum(rate(M{L="{track}"}[W]))`
/// (no error series yet means 0 errors, but no requests stays NaN/empty);
/// `latency_quantile` → `histogram_quantile(Q, sum by (le) (rate(M_bucket{L="{track}"}[W])))`.
/// Returns (value query, request-count query).
pub fn builtin_promql(c: &CheckSpec, track_label: &str) -> Option<(String, String)> {
    let m = c.metric.as_deref()?;
    let w = prom_window(c.window);
    let sel = format!("{track_label}=\"{{track}}\"");
    match c.kind {
        CheckKind::Promql => None,
        CheckKind::ErrorRate => {
            let errs = LabelMatcher::parse(c.error_matcher.as_deref()?)
                .ok()?
                .to_promql();
            Some((
                format!(
                    "(sum(rate({m}{{{sel},{errs}}}[{w}])) or vector(0)) / sum(rate({m}{{{sel}}}[{w}]))"
                ),
                format!("sum(increase({m}{{{sel}}}[{w}]))"),
            ))
        }
        CheckKind::LatencyQuantile => Some((
            format!(
                "histogram_quantile({}, sum by (le) (rate({m}_bucket{{{sel}}}[{w}])))",
                c.quantile?
            ),
            format!("sum(increase({m}_count{{{sel}}}[{w}]))"),
        )),
    }
}

/// The measurement plan for one check under `cfg`.
pub fn probe_for(cfg: &Config, c: &CheckSpec) -> Option<Probe> {
    let t = &cfg.tracks;
    if cfg.sources.prometheus.is_some() {
        let (q, rq) = match c.kind {
            CheckKind::Promql => (c.query.clone()?, c.requests_query.clone()),
            _ => {
                let (q, rq) = builtin_promql(c, &t.label)?;
                (q, Some(rq))
            }
        };
        return Some(Probe::Promql {
            canary: with_track(&q, &t.canary),
            baseline: with_track(&q, &t.baseline),
            requests: rq.map(|r| (with_track(&r, &t.canary), with_track(&r, &t.baseline))),
        });
    }
    match c.kind {
        CheckKind::Promql => None,
        CheckKind::ErrorRate => Some(Probe::DirectErrorRate {
            metric: c.metric.clone()?,
            errors: LabelMatcher::parse(c.error_matcher.as_deref()?).ok()?,
            window: c.window,
        }),
        CheckKind::LatencyQuantile => Some(Probe::DirectLatency {
            metric: c.metric.clone()?,
            quantile: c.quantile?,
            window: c.window,
        }),
    }
}

/// One source's state, for `rolldeck check`, `snapshot` and the header dots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    /// `prometheus`, `scrape:NAME`, `health:NAME`, `action:NAME`.
    pub source: String,
    /// Reachable and answering as expected.
    pub ok: bool,
    /// `ok` details or the reason it is down.
    pub detail: String,
    /// Round-trip time in milliseconds, when measured.
    pub latency_ms: Option<f64>,
}

/// Every configured source, ready to measure checks and probe targets.
#[derive(Clone)]
pub struct Sources {
    prom: Option<prometheus::Prometheus>,
    prom_error: Option<String>,
    http: reqwest::Client,
    probes: BTreeMap<String, Probe>,
    queries: BTreeMap<String, String>,
    health: BTreeMap<String, HealthTarget>,
    scrape: BTreeMap<String, (ScrapeTarget, Arc<Mutex<History>>)>,
    canary_target: Option<String>,
    baseline_target: Option<String>,
    docker: Option<crate::docker::DockerWatch>,
}

impl Sources {
    /// Builds the sources from a validated config. Does no I/O; start the
    /// direct-scrape pollers with [`Sources::spawn_scrapers`].
    pub fn new(cfg: &Config) -> Self {
        let (prom, prom_error) = match &cfg.sources.prometheus {
            Some(p) => match prometheus::Prometheus::new(p) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e)),
            },
            None => (None, None),
        };
        let mut probes = BTreeMap::new();
        let mut queries = BTreeMap::new();
        for c in &cfg.checks {
            if let Some(p) = probe_for(cfg, c) {
                queries.insert(c.name.clone(), describe(&p, &c.name));
                probes.insert(c.name.clone(), p);
            }
        }
        for (i, t) in cfg.rollback_when.iter().enumerate() {
            if let Some(q) = &t.query {
                let name = crate::release::plan::trigger_check_name(i);
                let canary = with_track(q, &cfg.tracks.canary);
                let p = Probe::Promql {
                    baseline: with_track(q, &cfg.tracks.baseline),
                    canary: canary.clone(),
                    requests: None,
                };
                queries.insert(name.clone(), canary);
                probes.insert(name, p);
            }
        }
        let keep = cfg
            .checks
            .iter()
            .map(|c| c.window)
            .max()
            .unwrap_or(Duration::from_secs(60))
            + Duration::from_secs(30);
        let scrape = cfg
            .sources
            .scrape
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    (s.clone(), Arc::new(Mutex::new(History::new(keep)))),
                )
            })
            .collect();
        Self {
            prom,
            prom_error,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            probes,
            queries,
            health: cfg
                .sources
                .health
                .iter()
                .map(|h| (h.name.clone(), h.clone()))
                .collect(),
            scrape,
            canary_target: cfg.tracks.canary_target.clone(),
            baseline_target: cfg.tracks.baseline_target.clone(),
            docker: cfg
                .sources
                .docker
                .as_ref()
                .map(crate::docker::DockerWatch::new),
        }
    }

    /// The query text shown for a check (canary's PromQL or a description).
    pub fn query_of(&self, check: &str) -> String {
        self.queries.get(check).cloned().unwrap_or_default()
    }

    /// The Docker source's watcher, when `[sources.docker]` is configured.
    pub fn docker(&self) -> Option<&crate::docker::DockerWatch> {
        self.docker.as_ref()
    }

    /// Starts one polling task per direct-scrape target, and the Docker
    /// watcher ([`crate::docker::DockerWatch::spawn`]); they stop when the
    /// returned handles are aborted (or the runtime ends).
    pub fn spawn_scrapers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let docker = self.docker.as_ref().map(|d| d.spawn());
        self.scrape
            .values()
            .map(|(target, hist)| {
                let target = target.clone();
                let hist = hist.clone();
                let http = self.http.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(target.interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        let now = Timestamp::now();
                        let r = scrape_once(&http, &target)
                            .await
                            .and_then(|t| scrape::parse_exposition(&t, now));
                        let mut h = hist.lock().unwrap_or_else(|p| p.into_inner());
                        match r {
                            Ok(s) => h.push(s),
                            Err(e) => h.fail(now, e),
                        }
                    }
                })
            })
            .chain(docker)
            .collect()
    }

    /// Measures `check` for both tracks. Never fails: problems are carried
    /// as each track's error text.
    pub async fn measure(&self, check: &str) -> Measurement {
        let query = self.query_of(check);
        let Some(p) = self.probes.get(check) else {
            let e = format!("no source can measure check `{check}`");
            return Measurement {
                check: check.into(),
                query,
                canary: Err(e.clone()),
                baseline: Err(e),
            };
        };
        let (canary, baseline) = match p {
            Probe::Promql {
                canary,
                baseline,
                requests,
            } => {
                let (rc, rb) = match requests {
                    Some((a, b)) => (Some(a.as_str()), Some(b.as_str())),
                    None => (None, None),
                };
                tokio::join!(
                    self.prom_reading(canary, rc),
                    self.prom_reading(baseline, rb)
                )
            }
            Probe::DirectErrorRate {
                metric,
                errors,
                window,
            } => (
                self.direct(self.canary_target.as_deref(), |h| {
                    h.error_rate(metric, errors, *window)
                }),
                self.direct(self.baseline_target.as_deref(), |h| {
                    h.error_rate(metric, errors, *window)
                }),
            ),
            Probe::DirectLatency {
                metric,
                quantile,
                window,
            } => (
                self.direct(self.canary_target.as_deref(), |h| {
                    h.latency_quantile(metric, *quantile, *window)
                }),
                self.direct(self.baseline_target.as_deref(), |h| {
                    h.latency_quantile(metric, *quantile, *window)
                }),
            ),
        };
        let clean = |r: TrackResult| r.map_err(|e| crate::exec::strip_control(&e));
        Measurement {
            check: check.into(),
            query,
            canary: clean(canary),
            baseline: clean(baseline),
        }
    }

    async fn prom_reading(&self, q: &str, requests: Option<&str>) -> TrackResult {
        let Some(p) = &self.prom else {
            return Err(self
                .prom_error
                .clone()
                .unwrap_or_else(|| "no [sources.prometheus] configured".into()));
        };
        let (v, r) = match requests {
            Some(rq) => {
                let (v, r) = tokio::join!(p.query_value(q), p.query_value(rq));
                (v, Some(r))
            }
            None => (p.query_value(q).await, None),
        };
        let value = v?;
        let requests = match r {
            None => None,
            Some(Ok(n)) => Some(n),
            // No request series at all: zero traffic, which min_requests judges.
            Some(Err(e)) if e.starts_with("no data") => Some(0.0),
            Some(Err(e)) => return Err(format!("request count: {e}")),
        };
        Ok(Reading { value, requests })
    }

    fn direct(
        &self,
        target: Option<&str>,
        f: impl Fn(&History) -> Result<(f64, f64), String>,
    ) -> TrackResult {
        let Some(name) = target else {
            return Err("no scrape target configured for this track".into());
        };
        let Some((t, h)) = self.scrape.get(name) else {
            return Err(format!("unknown scrape target `{name}`"));
        };
        let h = h.lock().unwrap_or_else(|p| p.into_inner());
        let now = Timestamp::now().as_millisecond();
        let stale_after = 3 * t.interval.as_millis() as i64;
        if let Some((at, e)) = &h.last_error
            && h.latest().is_none_or(|s| s.at < *at)
            && h.latest()
                .is_none_or(|s| now - s.at.as_millisecond() > stale_after)
        {
            return Err(format!("scrape of {name} failed: {e}"));
        }
        match h.latest() {
            None => return Err(format!("no successful scrape of {name} yet")),
            Some(s) if now - s.at.as_millisecond() > stale_after => {
                return Err(format!(
                    "scrape data of {name} is stale ({}s old)",
                    (now - s.at.as_millisecond()) / 1000
                ));
            }
            _ => {}
        }
        let (value, requests) = f(&h).map_err(|e| format!("{name}: {e}"))?;
        Ok(Reading {
            value,
            requests: Some(requests),
        })
    }

    /// Probes a health target once: GET, expected status, optional body
    /// text. Ok and Err both carry a one-line detail.
    /// `docker:TRACK` targets are judged from the Docker watcher's state
    /// ([`crate::docker::DockerWatch::track_health`]).
    pub async fn probe_health(&self, target: &str) -> Result<String, String> {
        self.probe_target(target).await.map_err(|(_, e)| e)
    }

    /// [`Sources::probe_health`] with what a failure means for steps and
    /// triggers ([`ProbeKind`]): `Starting` or `Stopped` for a `docker:TRACK`
    /// target whose containers are still starting their health check or
    /// have exited ([`crate::docker::judge_track`]), else `Plain`.
    pub async fn probe_target(&self, target: &str) -> Result<String, (ProbeKind, String)> {
        if let (Some(track), Some(d)) = (target.strip_prefix("docker:"), &self.docker) {
            return d.track_health(track).await;
        }
        let Some(h) = self.health.get(target) else {
            return Err((
                ProbeKind::Plain,
                format!("unknown health target `{target}`"),
            ));
        };
        probe_health(&self.http, h)
            .await
            .map(|d| crate::exec::strip_control(&d))
            .map_err(|e| (ProbeKind::Plain, crate::exec::strip_control(&e)))
    }

    /// Checks every source once (Prometheus API, each scrape target, each
    /// health target), concurrently.
    pub async fn status_all(&self) -> Vec<SourceStatus> {
        self.status_where(|_| true).await
    }

    /// Probes the sources whose [`SourceStatus::source`] name `want`
    /// accepts (`prometheus`, `scrape:NAME`, `health:NAME`), concurrently,
    /// each with its own timeout. Used by the header, `rolldeck check` and
    /// the preflight of `rolldeck run` ([`crate::preflight`]).
    pub async fn status_where(&self, want: impl Fn(&str) -> bool) -> Vec<SourceStatus> {
        let mut out = Vec::new();
        let want_prom = want("prometheus");
        if let Some(e) = self.prom_error.as_ref().filter(|_| want_prom) {
            out.push(SourceStatus {
                source: "prometheus".into(),
                ok: false,
                detail: e.clone(),
                latency_ms: None,
            });
        }
        let prom = async {
            match self.prom.as_ref().filter(|_| want_prom) {
                Some(p) => {
                    let t = Instant::now();
                    let r = p.probe().await;
                    Some(SourceStatus {
                        source: "prometheus".into(),
                        ok: r.is_ok(),
                        detail: match r {
                            Ok(_) => format!("ok: {} answers the query API", p.url()),
                            // The cause first; the URL after it.
                            Err(e) => format!("{e}; url {}", p.url()),
                        },
                        latency_ms: Some(t.elapsed().as_secs_f64() * 1000.0),
                    })
                }
                None => None,
            }
        };
        let scrapes = futures_join_all(
            self.scrape
                .values()
                .filter(|(t, _)| want(&format!("scrape:{}", t.name)))
                .map(|(t, _)| {
                    let http = self.http.clone();
                    let t = t.clone();
                    async move {
                        let start = Instant::now();
                        let r = scrape_once(&http, &t).await.and_then(|body| {
                            scrape::parse_exposition(&body, Timestamp::now())
                                .map(|s| s.series.len())
                        });
                        SourceStatus {
                            source: format!("scrape:{}", t.name),
                            ok: r.is_ok(),
                            detail: match r {
                                Ok(n) => format!("ok: {n} series from {}", t.url),
                                Err(e) => format!("{}: {e}", t.url),
                            },
                            latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
                        }
                    }
                }),
        );
        let healths = futures_join_all(
            self.health
                .values()
                .filter(|h| want(&format!("health:{}", h.name)))
                .map(|h| {
                    let http = self.http.clone();
                    let h = h.clone();
                    async move {
                        let start = Instant::now();
                        let r = probe_health(&http, &h).await;
                        SourceStatus {
                            source: format!("health:{}", h.name),
                            ok: r.is_ok(),
                            detail: match r {
                                Ok(d) | Err(d) => d,
                            },
                            latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
                        }
                    }
                }),
        );
        let docker = async {
            match self.docker.as_ref().filter(|_| want("docker")) {
                Some(d) => Some(d.status().await),
                None => None,
            }
        };
        let (p, s, h, d) = tokio::join!(prom, scrapes, healths, docker);
        out.extend(p);
        out.extend(s);
        out.extend(h);
        out.extend(d);
        for s in &mut out {
            s.detail = crate::exec::strip_control(&s.detail);
        }
        out
    }
}

fn describe(p: &Probe, check: &str) -> String {
    match p {
        Probe::Promql { canary, .. } => canary.clone(),
        Probe::DirectErrorRate {
            metric,
            errors,
            window,
        } => format!(
            "direct scrape: Δ{metric}{{{}}} / Δ{metric} over {}",
            errors.to_promql(),
            humantime::format_duration(*window)
        ),
        Probe::DirectLatency {
            metric,
            quantile,
            window,
        } => format!(
            "direct scrape: histogram_quantile({quantile}, Δ{metric}_bucket over {}) for {check}",
            humantime::format_duration(*window)
        ),
    }
}

async fn futures_join_all<
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
>(
    futs: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

async fn scrape_once(http: &reqwest::Client, t: &ScrapeTarget) -> Result<String, String> {
    let resp = http
        .get(&t.url)
        .timeout(t.timeout)
        .send()
        .await
        .map_err(|e| short_http_error(&e, t.timeout, &t.url))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let body = body::read_capped(resp, t.max_body_bytes, t.timeout).await?;
    String::from_utf8(body).map_err(|e| {
        format!(
            "the answer is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn short_http_error(e: &reqwest::Error, timeout: Duration, url: &str) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(timeout));
    }
    body::transport_cause(e, url)
}

/// Probes one health target: GET with its timeout and headers; ok when the
/// status is `expect_status`, the whole body could be read (at most
/// `max_body_bytes`, default 1 MB) and contains `body_contains` (if set).
///
/// A body that cannot be read completely — cut short before its
/// `Content-Length`, hanging past the timeout, or larger than the cap — is
/// a failed probe with that reason, whatever the status.
pub async fn probe_health(http: &reqwest::Client, h: &HealthTarget) -> Result<String, String> {
    let start = Instant::now();
    let mut req = http.get(&h.url).timeout(h.timeout);
    for (k, v) in &h.headers {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| short_http_error(&e, h.timeout, &h.url))?;
    let status = resp.status().as_u16();
    let body = body::read_capped(resp, h.max_body_bytes, h.timeout)
        .await
        .map_err(|e| format!("HTTP {status}, body unreadable: {e}"))?;
    let ms = start.elapsed().as_millis();
    if status != h.expect_status {
        return Err(format!(
            "HTTP {status} (expected {}) in {ms} ms",
            h.expect_status
        ));
    }
    if let Some(want) = &h.body_contains
        && !String::from_utf8_lossy(&body).contains(want.as_str())
    {
        return Err(format!(
            "HTTP {status} in {ms} ms but the body lacks {want:?}"
        ));
    }
    Ok(format!("HTTP {status} in {ms} ms"))
}
