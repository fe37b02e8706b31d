//! The embedded demo environment that `rolldeck demo` starts.
//!
//! Everything listens on `127.0.0.1` on ports picked by the OS (binding port
//! 0) and needs nothing but the `rolldeck` binary:
//!
//! * two instances of the demo HTTP service ([`service`]), `stable` and
//!   `canary`, whose behaviour depends on the [`Scenario`] — in this
//!   process, or with `--docker` as containers of the local demo image
//!   ([`docker`]);
//! * a traffic-control endpoint ([`service::spawn_control`]) that the demo
//!   plan's `traffic` and `rollback` actions call;
//! * a load generator ([`load`]) sending about 80 requests per second, split
//!   between the instances by the current canary traffic weight;
//! * optionally a real Prometheus ([`prometheus`]) scraping both instances
//!   every second.

pub mod docker;
pub mod load;
pub mod migrations;
pub mod prometheus;
pub mod scenario_config;
pub mod service;
pub mod supervise;

pub use scenario_config::{DemoOptions, run_demo};

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::Context as _;

use self::load::{LoadConfig, LoadGenerator};
use self::prometheus::{PrometheusServer, ScrapeTarget};
use self::service::{Behaviour, ServiceHandle};

/// Demo scenario: how the canary instance behaves once it gets traffic.
///
/// Parsed from and displayed as `good`, `bad`, `slow` or `no-traffic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// The canary behaves like stable (~0.1 % errors, 10–30 ms latency); the
    /// release should be promoted.
    Good,
    /// The canary's error ratio climbs to ~10 % starting ~3 s after it served
    /// its first request; the analysis should roll back.
    Bad,
    /// The canary's p95 latency climbs to ~600 ms (most requests 400–800 ms)
    /// starting ~3 s after its first request.
    Slow,
    /// Both instances are healthy but the load generator sends nothing, so
    /// the analysis has no data (inconclusive).
    NoTraffic,
}

impl Scenario {
    /// All scenarios, in documentation order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Good,
        Scenario::Bad,
        Scenario::Slow,
        Scenario::NoTraffic,
    ];

    /// The scenario's name as accepted on the command line (`no-traffic`
    /// for [`Scenario::NoTraffic`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Good => "good",
            Scenario::Bad => "bad",
            Scenario::Slow => "slow",
            Scenario::NoTraffic => "no-traffic",
        }
    }

    /// How the canary instance behaves in this scenario (stable is always
    /// [`Behaviour::Healthy`]).
    pub fn canary_behaviour(self) -> Behaviour {
        match self {
            Scenario::Good | Scenario::NoTraffic => Behaviour::Healthy,
            Scenario::Bad => Behaviour::Failing,
            Scenario::Slow => Behaviour::Slow,
        }
    }

    /// Whether the load generator sends requests in this scenario.
    pub fn sends_traffic(self) -> bool {
        self != Scenario::NoTraffic
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a [`Scenario`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown demo scenario `{0}` (expected good, bad, slow or no-traffic)")]
pub struct ParseScenarioError(pub String);

impl FromStr for Scenario {
    type Err = ParseScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseScenarioError(s.to_string()))
    }
}

/// The running demo environment: a stable and a canary instance of the demo
/// HTTP service, a traffic-control endpoint, a load generator splitting
/// requests by the current canary traffic weight, and optionally a real
/// Prometheus scraping both instances every 1 s.
///
/// Call [`DemoEnv::stop`] to shut it down in order. Dropping it is also
/// safe: the server and load tasks are aborted and the Prometheus child is
/// killed synchronously (its temp dir removed), so an interrupted run leaves
/// no processes behind.
#[derive(Debug)]
pub struct DemoEnv {
    /// The scenario the environment was started with.
    pub scenario: Scenario,
    /// Address of the stable instance of the demo service (`http://` + this).
    pub stable_addr: SocketAddr,
    /// Address of the canary instance of the demo service.
    pub canary_addr: SocketAddr,
    /// Address of the traffic-control endpoint (`POST /traffic?weight=N`,
    /// `POST /rollback`, `GET /traffic`).
    pub control_addr: SocketAddr,
    /// The Prometheus scraping both instances (job `demo`, target label
    /// `track="stable"` / `track="canary"`), if one was started.
    pub prometheus: Option<PrometheusServer>,
    weight: Arc<AtomicU8>,
    instances: Instances,
    control: ServiceHandle,
    load: Option<LoadGenerator>,
}

impl DemoEnv {
    /// Starts everything; `prometheus_bin`: `Some(path)` to start a real
    /// Prometheus (returns an error if it cannot start, after stopping what
    /// was already started), `None` for none.
    ///
    /// The canary traffic weight starts at 0 %.
    pub async fn start(
        scenario: Scenario,
        prometheus_bin: Option<PathBuf>,
    ) -> anyhow::Result<DemoEnv> {
        let stable = service::spawn("stable", Behaviour::Healthy)
            .await
            .context("starting the stable demo service")?;
        let canary = service::spawn("canary", scenario.canary_behaviour())
            .await
            .context("starting the canary demo service")?;
        Self::start_around(
            scenario,
            prometheus_bin,
            Instances::Local { stable, canary },
        )
        .await
    }

    /// Starts the control endpoint, Prometheus and the load around running
    /// `instances` (stopped again if that fails).
    async fn start_around(
        scenario: Scenario,
        prometheus_bin: Option<PathBuf>,
        instances: Instances,
    ) -> anyhow::Result<DemoEnv> {
        let weight = Arc::new(AtomicU8::new(0));
        let (stable_addr, canary_addr) = instances.addrs();
        let control = match service::spawn_control(weight.clone()).await {
            Ok(c) => c,
            Err(e) => {
                instances.stop().await;
                return Err(e.context("starting the demo traffic control"));
            }
        };

        let prometheus = match prometheus_bin {
            None => None,
            Some(bin) => {
                let targets = demo_targets(stable_addr, canary_addr);
                match PrometheusServer::start_with_rules(&bin, &targets, Some(&alert_rules())).await
                {
                    Ok(p) => Some(p),
                    Err(e) => {
                        control.shutdown().await;
                        instances.stop().await;
                        return Err(e.context("starting the demo Prometheus"));
                    }
                }
            }
        };

        let load = if scenario.sends_traffic() {
            match load::start(
                stable_addr,
                canary_addr,
                weight.clone(),
                LoadConfig::default(),
            ) {
                Ok(l) => Some(l),
                Err(e) => {
                    control.shutdown().await;
                    instances.stop().await;
                    return Err(e);
                }
            }
        } else {
            None
        };

        tracing::info!(
            %scenario,
            stable = %stable_addr,
            canary = %canary_addr,
            control = %control.addr,
            prometheus = prometheus.as_ref().map(|p| p.url.as_str()).unwrap_or("none"),
            "demo environment started"
        );
        Ok(DemoEnv {
            scenario,
            stable_addr,
            canary_addr,
            control_addr: control.addr,
            prometheus,
            weight,
            instances,
            control,
            load,
        })
    }

    /// The demo containers, when the instances run in Docker
    /// (`rolldeck demo --docker`).
    pub fn containers(&self) -> Option<&docker::DemoContainers> {
        match &self.instances {
            Instances::Local { .. } => None,
            Instances::Containers(c) => Some(c),
        }
    }

    /// The current canary traffic weight, percent 0–100.
    pub fn weight(&self) -> u8 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Sets the canary traffic weight directly (percent; values above 100
    /// are clamped to 100), as `POST /traffic?weight=N` does.
    pub fn set_weight(&self, weight: u8) {
        let weight = weight.min(100);
        let old = self.weight.swap(weight, Ordering::Relaxed);
        if old != weight {
            tracing::info!(from = old, to = weight, "canary traffic weight changed");
        }
    }

    /// Requests the load generator has sent so far: `(to stable, to
    /// canary)`. Always `(0, 0)` in the `no-traffic` scenario.
    pub fn requests_sent(&self) -> (u64, u64) {
        self.load
            .as_ref()
            .map_or((0, 0), LoadGenerator::requests_sent)
    }

    /// Scrape targets for the two instances (job `demo`, labels
    /// `track="stable"` / `track="canary"`), as the demo Prometheus uses.
    pub fn scrape_targets(&self) -> Vec<ScrapeTarget> {
        demo_targets(self.stable_addr, self.canary_addr)
    }

    /// Stops the load generator, the servers and Prometheus (kill + wait,
    /// temp dir removed), in that order. Also done on drop (best effort,
    /// synchronous kill of the Prometheus child) so Ctrl-C leaves nothing
    /// behind.
    pub async fn stop(self) {
        let DemoEnv {
            scenario,
            prometheus,
            instances,
            control,
            load,
            ..
        } = self;
        if let Some(load) = load {
            load.stop().await;
        }
        tokio::join!(instances.stop(), control.shutdown());
        if let Some(p) = prometheus {
            p.stop().await;
        }
        tracing::info!(%scenario, "demo environment stopped");
    }
}

/// Where the two demo service instances run.
#[derive(Debug)]
enum Instances {
    /// In this process (the plain demo).
    Local {
        stable: ServiceHandle,
        canary: ServiceHandle,
    },
    /// In Docker containers (`rolldeck demo --docker`).
    Containers(docker::DemoContainers),
}

impl Instances {
    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        match self {
            Instances::Local { stable, canary } => (stable.addr, canary.addr),
            Instances::Containers(c) => (c.stable_addr, c.canary_addr),
        }
    }

    async fn stop(self) {
        match self {
            Instances::Local { stable, canary } => {
                tokio::join!(stable.shutdown(), canary.shutdown());
            }
            Instances::Containers(c) => c.remove().await,
        }
    }
}

/// The name of the demo Prometheus's alert on the canary's error rate.
pub const CANARY_ALERT: &str = "CanaryErrorRateHigh";

/// The runbook the demo's alert names in its `runbook_url` annotation (the
/// Prometheus convention): the demo's manual-rollback runbook.
pub const CANARY_ALERT_RUNBOOK: &str = crate::runbook::demo::CANARY_ERROR_RATE_RUNBOOK;

/// The demo Prometheus's rules file: one alerting rule, [`CANARY_ALERT`],
/// firing when more than 5 % of the canary's requests over 10 s are 5xx
/// (the demo's `error-rate` limit) for 3 s, with a `severity` label, a
/// `summary` and the `runbook_url` of [`CANARY_ALERT_RUNBOOK`].
pub fn alert_rules() -> String {
    format!(
        r#"# Written by rolldeck demo.
groups:
  - name: rolldeck-demo
    rules:
      - alert: {CANARY_ALERT}
        expr: (sum(rate(http_requests_total{{track="canary",code=~"5.."}}[10s])) or vector(0)) / sum(rate(http_requests_total{{track="canary"}}[10s])) > 0.05
        for: 3s
        labels:
          severity: page
          track: canary
        annotations:
          summary: "canary 5xx share at {{{{ $value | humanizePercentage }}}} (limit 5%)"
          runbook_url: "{CANARY_ALERT_RUNBOOK}"
"#
    )
}

/// The demo's scrape targets: job `demo`, target label `track`.
fn demo_targets(stable: SocketAddr, canary: SocketAddr) -> Vec<ScrapeTarget> {
    vec![
        ScrapeTarget::new("demo", stable).label("track", "stable"),
        ScrapeTarget::new("demo", canary).label("track", "canary"),
    ]
}

/// Finds a `prometheus` executable: the explicit path if given (must exist
/// and be an executable file; `None` otherwise, `$PATH` is then not
/// searched), else searches `$PATH`. `None` if absent.
pub fn find_prometheus(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return is_executable(path).then(|| path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a regular file (after following symlinks) that someone
/// may execute.
fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip() {
        for sc in Scenario::ALL {
            assert_eq!(sc.to_string().parse::<Scenario>(), Ok(sc));
            let v = <Scenario as clap::ValueEnum>::to_possible_value(&sc).unwrap();
            assert_eq!(v.get_name(), sc.as_str());
        }
        assert_eq!("NO-TRAFFIC".parse::<Scenario>(), Ok(Scenario::NoTraffic));
        let err = "meh".parse::<Scenario>().unwrap_err();
        assert!(err.to_string().contains("`meh`"), "{err}");
    }

    #[test]
    fn find_prometheus_explicit_path_must_be_executable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert_eq!(find_prometheus(Some(&missing)), None);
        assert_eq!(find_prometheus(Some(dir.path())), None);
        let file = dir.path().join("prometheus");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(find_prometheus(Some(&file)), None);
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(find_prometheus(Some(&file)), Some(file.clone()));
    }
}
