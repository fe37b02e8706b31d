//! A real Prometheus as a child process, scraping given targets every
//! second. Used by the demo and by integration tests that need a real
//! Prometheus; it makes no demo assumptions beyond the targets passed.
//!
//! [`PrometheusServer::start`] writes a `prometheus.yml` into a fresh temp
//! dir, runs the binary with its TSDB in that dir and its web UI/API on a
//! free `127.0.0.1` port, and waits until `GET /-/ready` answers 200.
//! [`PrometheusServer::stop`] (or drop) kills the child and removes the
//! temp dir.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How often the demo's Prometheus scrapes its targets, in seconds.
pub const SCRAPE_INTERVAL_S: u64 = 1;

use anyhow::{Context as _, bail};
use tokio::process::Child;
use tokio::time::Instant;

/// How long [`PrometheusServer::start`] waits for `GET /-/ready` to answer
/// 200: 20 s.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How many ports [`PrometheusServer::start`] tries when the chosen port
/// gets taken between picking it and Prometheus binding it.
const PORT_ATTEMPTS: usize = 4;

/// Lines of the Prometheus log included in start errors.
const LOG_TAIL_LINES: usize = 25;

/// One endpoint Prometheus scrapes (`http://{addr}/metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The `job` label (targets with the same job share a scrape config).
    pub job: String,
    /// The address scraped; becomes the `instance` label.
    pub addr: SocketAddr,
    /// Extra target labels added to every series scraped from this target
    /// (names must match `[a-zA-Z_][a-zA-Z0-9_]*` and not start with `__`).
    pub labels: BTreeMap<String, String>,
}

impl ScrapeTarget {
    /// A target with no extra labels.
    pub fn new(job: impl Into<String>, addr: SocketAddr) -> Self {
        ScrapeTarget {
            job: job.into(),
            addr,
            labels: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) one target label.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }
}

/// A running Prometheus child process with its own temp dir (config, TSDB,
/// log). Killed and cleaned up by [`PrometheusServer::stop`] or, best
/// effort and synchronously, on drop.
#[derive(Debug)]
pub struct PrometheusServer {
    /// Base URL of the HTTP API: `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    addr: SocketAddr,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    log_path: PathBuf,
}

/// Starts Prometheus; same as [`PrometheusServer::start`].
pub async fn start(bin: &Path, targets: &[ScrapeTarget]) -> anyhow::Result<PrometheusServer> {
    PrometheusServer::start(bin, targets).await
}

/// The `prometheus.yml` for `targets`: scrape and evaluation interval 1 s,
/// one scrape config per job (in order of first appearance), one
/// `static_config` per target with its labels.
pub fn config_yaml(targets: &[ScrapeTarget]) -> anyhow::Result<String> {
    config_yaml_with_rules(targets, false)
}

/// [`config_yaml`], with `rule_files: ["rules.yml"]` (beside the config)
/// when `rules` is true.
pub fn config_yaml_with_rules(targets: &[ScrapeTarget], rules: bool) -> anyhow::Result<String> {
    let mut jobs: Vec<(&str, Vec<&ScrapeTarget>)> = Vec::new();
    for t in targets {
        for name in t.labels.keys() {
            if !valid_label_name(name) {
                bail!(
                    "scrape target {}: invalid label name `{name}` (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                    t.addr
                );
            }
        }
        match jobs.iter_mut().find(|(job, _)| *job == t.job) {
            Some((_, list)) => list.push(t),
            None => jobs.push((&t.job, vec![t])),
        }
    }
    // YAML double-quoted scalars accept JSON string syntax.
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut y = format!(
        "# Written by rolldeck.\nglobal:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    if rules {
        y.push_str("rule_files: [\"rules.yml\"]\n");
    }
    if jobs.is_empty() {
        y.push_str("scrape_configs: []\n");
        return Ok(y);
    }
    y.push_str("scrape_configs:\n");
    for (job, list) in jobs {
        let _ = writeln!(y, "  - job_name: {}\n    static_configs:", q(job));
        for t in list {
            let _ = writeln!(y, "      - targets: [{}]", q(&t.addr.to_string()));
            if !t.labels.is_empty() {
                y.push_str("        labels:\n");
                for (k, v) in &t.labels {
                    let _ = writeln!(y, "          {k}: {}", q(v));
                }
            }
        }
    }
    Ok(y)
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Picks a free port by binding `127.0.0.1:0` and dropping the listener.
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("picking a free port")?;
    Ok(l.local_addr()?)
}

/// The last `n` lines of the file at `path` (empty if unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Outcome of one start attempt.
enum Attempt {
    Ready(Child),
    PortTaken,
}

impl PrometheusServer {
    /// Starts `bin` scraping `targets` (see the module docs); returns once
    /// `GET /-/ready` answers 200. On failure (cannot spawn, exits early,
    /// not ready within [`READY_TIMEOUT`]) the error includes the tail of
    /// the Prometheus log, and nothing is left running.
    pub async fn start(bin: &Path, targets: &[ScrapeTarget]) -> anyhow::Result<PrometheusServer> {
        Self::start_with_rules(bin, targets, None).await
    }

    /// [`PrometheusServer::start`], with alerting (or recording) rules:
    /// `rules` is the text of a Prometheus rules file (`groups: …`),
    /// written as `rules.yml` beside `prometheus.yml`, evaluated every 1 s.
    pub async fn start_with_rules(
        bin: &Path,
        targets: &[ScrapeTarget],
        rules: Option<&str>,
    ) -> anyhow::Result<PrometheusServer> {
        let yaml = config_yaml_with_rules(targets, rules.is_some())?;
        let dir = tempfile::Builder::new()
            .prefix("rolldeck-prometheus-")
            .tempdir()
            .context("creating a temp dir for Prometheus")?;
        if let Some(r) = rules {
            let p = dir.path().join("rules.yml");
            std::fs::write(&p, r).with_context(|| format!("writing {}", p.display()))?;
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, yaml)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.path().join("prometheus.log");
        let data_path = dir.path().join("data");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .no_proxy()
            .build()?;

        for attempt in 1..=PORT_ATTEMPTS {
            let addr = free_port()?;
            let url = format!("http://{addr}");
            let _ = std::fs::remove_dir_all(&data_path);
            match Self::attempt(bin, &config_path, &data_path, &log_path, addr, &client).await? {
                Attempt::Ready(child) => {
                    tracing::info!(
                        url,
                        pid = child.id(),
                        dir = %dir.path().display(),
                        "prometheus started"
                    );
                    return Ok(PrometheusServer {
                        url,
                        addr,
                        child: Some(child),
                        dir_path: dir.path().to_path_buf(),
                        dir: Some(dir),
                        log_path,
                    });
                }
                Attempt::PortTaken => {
                    tracing::debug!(%addr, attempt, "prometheus port got taken; retrying");
                }
            }
        }
        bail!(
            "prometheus could not bind a port after {PORT_ATTEMPTS} attempts; log tail:\n{}",
            tail(&log_path, LOG_TAIL_LINES)
        )
    }

    async fn attempt(
        bin: &Path,
        config_path: &Path,
        data_path: &Path,
        log_path: &Path,
        addr: SocketAddr,
        client: &reqwest::Client,
    ) -> anyhow::Result<Attempt> {
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        // Through the supervisor: Prometheus dies with rolldeck, even on
        // `kill -9`.
        let mut child = super::supervise::command(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data_path.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let ready_url = format!("http://{addr}/-/ready");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let log_tail = tail(log_path, LOG_TAIL_LINES);
                if log_tail.contains("address already in use") {
                    return Ok(Attempt::PortTaken);
                }
                bail!(
                    "prometheus ({}) exited during startup ({status}); log tail:\n{log_tail}",
                    bin.display()
                );
            }
            if let Ok(resp) = client.get(&ready_url).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                return Ok(Attempt::Ready(child));
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                bail!(
                    "prometheus ({}) was not ready at {ready_url} within {}s; log tail:\n{}",
                    bin.display(),
                    READY_TIMEOUT.as_secs(),
                    tail(log_path, LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The address the HTTP API listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OS process id of the Prometheus child, or `None` once it has
    /// been killed and reaped by this handle ([`PrometheusServer::kill_now`],
    /// [`PrometheusServer::stop`]).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The temp dir holding `prometheus.yml`, `data/` and `prometheus.log`;
    /// removed by [`PrometheusServer::stop`] and on drop.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// The last `lines` lines of Prometheus's stdout/stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }

    /// Kills Prometheus now (SIGKILL) and reaps it, waiting at most 2 s,
    /// without removing the temp dir. Tests use it to simulate Prometheus
    /// dying mid-analysis; the API is unreachable afterwards.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap_blocking(&mut child, Duration::from_secs(2));
            tracing::info!(url = self.url, "prometheus killed");
        }
    }

    /// Kills Prometheus, waits for it to exit (at most 5 s) and removes the
    /// temp dir.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    pid = child.id(),
                    "prometheus did not exit within 5s of SIGKILL"
                );
            }
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            tracing::warn!(error = %e, "removing the prometheus temp dir");
        }
        tracing::info!(url = self.url, "prometheus stopped");
    }
}

/// Sends SIGKILL and polls `try_wait` (no async runtime needed) until the
/// child is reaped or `limit` passes.
fn kill_and_reap_blocking(child: &mut Child, limit: Duration) {
    let _ = child.start_kill();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap_blocking(&mut child, Duration::from_secs(1));
        }
        // `TempDir`'s own drop removes the directory.
        self.dir.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_groups_targets_by_job() {
        let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        let y = config_yaml(&[
            ScrapeTarget::new("demo", a).label("track", "stable"),
            ScrapeTarget::new("demo", b).label("track", "can\"ary"),
            ScrapeTarget::new("other", b),
        ])
        .unwrap();
        assert!(y.contains("scrape_interval: 1s"));
        assert!(y.contains("evaluation_interval: 1s"));
        assert_eq!(y.matches("job_name").count(), 2, "{y}");
        assert!(y.contains(
            "- targets: [\"127.0.0.1:1001\"]\n        labels:\n          track: \"stable\"\n"
        ));
        assert!(y.contains(r#"track: "can\"ary""#), "{y}");
        assert!(config_yaml(&[ScrapeTarget::new("x", a).label("bad-name", "v")]).is_err());
        assert!(config_yaml(&[ScrapeTarget::new("x", a).label("__x", "v")]).is_err());
        assert!(config_yaml(&[]).unwrap().contains("scrape_configs: []"));
    }

    #[tokio::test]
    async fn missing_binary_is_an_error() {
        let err = PrometheusServer::start(Path::new("/nonexistent/prometheus"), &[])
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/prometheus"),
            "{err:#}"
        );
    }
}
