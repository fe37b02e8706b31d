//! `rolldeck demo --docker`: the stable and canary demo services run as
//! Docker containers of the locally built demo image
//! ([`crate::docker::image`], `rolldeck-demo:VERSION`, built when missing or
//! when the binary changed, reused otherwise), everything else as in the
//! plain demo (traffic control, load generator, Prometheus or direct
//! scrape, all in this process).
//!
//! * **Names and labels.** Each run has an id ([`new_run_id`]: process id
//!   and time); its containers are `rolldeck-demo-ID-stable` and
//!   `rolldeck-demo-ID-canary`, labelled [`RUN_LABEL`]`=ID` and
//!   [`TRACK_LABEL`]`=stable|canary`. Port 8080 of each is published on a
//!   free port of `127.0.0.1` (the engine picks it).
//! * **Cockpit.** The generated config gets a `[sources.docker]` selecting
//!   the two containers by name, so the Containers data and the
//!   `docker:canary` health target are live, and a rollback trigger on
//!   `docker:canary` (the canary container dies or turns unhealthy →
//!   rollback).
//! * **Cleanup.** Every container labelled with the run's id is removed when
//!   the demo ends — normally, on SIGINT, SIGTERM or SIGHUP, on a panic of
//!   the release, or when starting fails half-way ([`remove_run`]). The
//!   demo creates no network (the default bridge is used). The image stays,
//!   for the next run.
//! * **No engine.** Connecting has a [`CONNECT_TIMEOUT`]; an unreachable
//!   engine is an error naming the host and the reason (exit 1), never a
//!   hang.
//!
//! `ROLLDECK_DEMO_IMAGE` (environment) names another tag for the demo image
//! (tests use one of their own so they can remove it afterwards).

use super::{DemoEnv, Instances, Scenario};
use crate::docker::run::{HealthSpec, PortSpec, RunSpec};
use crate::docker::{image, run, short_error};
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The label carrying the run id on every container of a demo run.
pub const RUN_LABEL: &str = "io.rolldeck.demo.run";

/// The label carrying the track (`stable` or `canary`).
pub const TRACK_LABEL: &str = "io.rolldeck.demo.track";

/// The environment variable naming another tag for the demo image.
pub const IMAGE_ENV: &str = "ROLLDECK_DEMO_IMAGE";

/// How long connecting to the engine (and each request) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the containers may take to report `healthy` after start.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// The port the demo service listens on inside its container.
pub const CONTAINER_PORT: u16 = 8080;

/// A fresh run id: `PID-MILLIS` (hex millisecond clock), unique on this
/// host while the process lives.
pub fn new_run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{}-{ms:x}", std::process::id())
}

/// The container name of `track` in run `run`.
pub fn container_name(run: &str, track: &str) -> String {
    format!("rolldeck-demo-{run}-{track}")
}

/// Connects to the engine (`DOCKER_HOST`, else the local socket).
///
/// # Errors
///
/// The host and the reason (no socket, refused, no answer within
/// [`CONNECT_TIMEOUT`]).
pub async fn connect() -> Result<Docker, String> {
    crate::docker::connect_host(None, CONNECT_TIMEOUT)
        .await
        .map(|(d, _)| d)
        .map_err(|e| format!("rolldeck demo --docker needs a Docker Engine: {e}"))
}

/// The two demo containers of one run.
#[derive(Debug)]
pub struct DemoContainers {
    docker: Docker,
    /// The run id ([`RUN_LABEL`]).
    pub run: String,
    /// The image both run from, `name:tag`.
    pub image: String,
    /// Whether this run built the image (false: an earlier build was reused).
    pub image_built: bool,
    /// The stable container's name.
    pub stable: String,
    /// The canary container's name.
    pub canary: String,
    /// Where the stable container's port 8080 is published.
    pub stable_addr: SocketAddr,
    /// Where the canary container's port 8080 is published.
    pub canary_addr: SocketAddr,
}

impl DemoContainers {
    /// One line for people: the containers, their label and the image.
    pub fn describe(&self) -> String {
        format!(
            "containers: {} and {} (label {RUN_LABEL}={}), image {} ({})",
            self.stable,
            self.canary,
            self.run,
            self.image,
            if self.image_built { "built" } else { "reused" }
        )
    }

    /// The config added to the demo's: `[sources.docker]` selecting the two
    /// containers by name, and a rollback trigger on `docker:canary`.
    pub fn config_section(&self) -> String {
        format!(
            r#"
[sources.docker]
baseline = {{ name = "{stable}" }}
canary = {{ name = "{canary}" }}
interval = "10s"
probe_interval = "1s"
timeout = "5s"

[[rollback_when]]
name = "canary container down"
health = "docker:canary"
consecutive_failures = 2
"#,
            stable = self.stable,
            canary = self.canary,
        )
    }

    /// Removes both containers (and anything else labelled with the run).
    /// Failures are logged; the engine's own cleanup is not waited for.
    pub async fn remove(self) {
        match remove_run(&self.docker, &self.run).await {
            Ok(gone) => tracing::info!(run = %self.run, ?gone, "demo containers removed"),
            Err(e) => tracing::warn!(run = %self.run, "removing the demo containers: {e}"),
        }
    }
}

/// Removes every container (running or not) and network labelled
/// [`RUN_LABEL`]`=run`; returns the container names removed.
///
/// # Errors
///
/// The engine's message for a list or remove that failed (the others are
/// still tried).
pub async fn remove_run(docker: &Docker, run: &str) -> Result<Vec<String>, String> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={run}")])]);
    let list = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("list the demo containers: {}", short_error(&e)))?;
    let mut gone = Vec::new();
    let mut errors = Vec::new();
    for c in list {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_string());
        match run::remove(docker, &id).await {
            Ok(()) => gone.push(name),
            Err(e) if e.contains("No such container") => {}
            Err(e) => errors.push(e),
        }
    }
    let nets = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| format!("list the demo networks: {}", short_error(&e)))?;
    for n in nets {
        if let Some(id) = n.id
            && let Err(e) = docker.remove_network(&id).await
        {
            errors.push(format!("remove network {id}: {}", short_error(&e)));
        }
    }
    if errors.is_empty() {
        Ok(gone)
    } else {
        Err(errors.join("; "))
    }
}

/// Removes run `run`'s containers after an interrupted start: twice, a
/// moment apart, so a create request the engine was still handling when
/// the start was abandoned is caught too.
pub async fn cleanup_interrupted(docker: &Docker, run: &str) {
    for _ in 0..2 {
        if let Err(e) = remove_run(docker, run).await {
            tracing::warn!(run, "removing the demo containers: {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The container's argument for the canary's behaviour in `scenario`.
fn behaviour_arg(scenario: Scenario) -> &'static str {
    match scenario.canary_behaviour() {
        super::service::Behaviour::Healthy => "good",
        super::service::Behaviour::Failing => "failing",
        super::service::Behaviour::Slow => "slow",
    }
}

/// The run spec of `track`'s container.
fn spec(run_id: &str, image: &str, track: &str, behaviour: &str) -> RunSpec {
    RunSpec {
        name: container_name(run_id, track),
        image: image.to_string(),
        cmd: vec![
            "service".into(),
            track.into(),
            behaviour.into(),
            CONTAINER_PORT.to_string(),
        ],
        env: BTreeMap::new(),
        labels: BTreeMap::from([
            (RUN_LABEL.to_string(), run_id.to_string()),
            (TRACK_LABEL.to_string(), track.to_string()),
        ]),
        ports: vec![PortSpec {
            container: CONTAINER_PORT,
            host: 0,
            host_ip: Ipv4Addr::LOCALHOST.to_string(),
        }],
        health: Some(HealthSpec {
            cmd: vec![
                image::BINARY_IN_IMAGE.into(),
                image::SUBCOMMAND.into(),
                "probe".into(),
                format!("http://127.0.0.1:{CONTAINER_PORT}/health"),
            ],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 2,
            start_period: Duration::ZERO,
        }),
    }
}

/// Waits until container `name` reports `healthy`, at most
/// [`HEALTHY_WITHIN`].
///
/// # Errors
///
/// It stopped (with its exit code), turned unhealthy, or did not get
/// healthy in time (its last health status).
async fn wait_healthy(docker: &Docker, name: &str) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    loop {
        let ins = docker
            .inspect_container(name, None)
            .await
            .map_err(|e| format!("inspect container {name}: {}", short_error(&e)))?;
        let st = ins.state.unwrap_or_default();
        let status = st.status.map(|s| s.to_string()).unwrap_or_default();
        let health = st
            .health
            .and_then(|h| h.status)
            .map(|h| h.to_string())
            .unwrap_or_default();
        if status != "running" {
            return Err(format!(
                "container {name} is {status} (exit code {}) instead of serving",
                st.exit_code.map_or("?".to_string(), |c| c.to_string())
            ));
        }
        match health.as_str() {
            "healthy" => return Ok(()),
            "unhealthy" => return Err(format!("container {name} is unhealthy")),
            _ => {}
        }
        if start.elapsed() > HEALTHY_WITHIN {
            return Err(format!(
                "container {name} was not healthy within {}s (health: {health})",
                HEALTHY_WITHIN.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The image (built or reused) and both containers running healthy; on
/// failure whatever was created is removed again.
async fn start_containers(
    docker: &Docker,
    run_id: &str,
    scenario: Scenario,
) -> Result<DemoContainers, String> {
    let tag = match std::env::var(IMAGE_ENV) {
        Ok(t) if !t.trim().is_empty() => t,
        _ => image::tag(),
    };
    let bin: PathBuf = std::env::current_exe()
        .map_err(|e| format!("cannot find the running rolldeck binary for the demo image: {e}"))?;
    let id_of = |i: Option<bollard::models::ImageInspect>| i.and_then(|i| i.id);
    let before = id_of(docker.inspect_image(&tag).await.ok());
    let tag = image::ensure_as(docker, &bin, &tag).await?;
    let after = id_of(docker.inspect_image(&tag).await.ok());
    let stable = container_name(run_id, "stable");
    let canary = container_name(run_id, "canary");
    let started = async {
        run::run(docker, &spec(run_id, &tag, "stable", "good")).await?;
        run::run(
            docker,
            &spec(run_id, &tag, "canary", behaviour_arg(scenario)),
        )
        .await?;
        let port = |n: String| async move {
            run::published_port(docker, &n, CONTAINER_PORT)
                .await
                .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        };
        let stable_addr = port(stable.clone()).await?;
        let canary_addr = port(canary.clone()).await?;
        let (a, b) = tokio::join!(wait_healthy(docker, &stable), wait_healthy(docker, &canary));
        a?;
        b?;
        Ok::<_, String>((stable_addr, canary_addr))
    };
    match started.await {
        Ok((stable_addr, canary_addr)) => Ok(DemoContainers {
            docker: docker.clone(),
            run: run_id.to_string(),
            image: tag,
            image_built: before != after,
            stable,
            canary,
            stable_addr,
            canary_addr,
        }),
        Err(e) => {
            if let Err(c) = remove_run(docker, run_id).await {
                tracing::warn!("removing the demo containers: {c}");
            }
            Err(e)
        }
    }
}

impl DemoEnv {
    /// Like [`DemoEnv::start`], with the stable and canary instances as
    /// containers of run `run_id` on `docker` (see the module
    /// documentation). Nothing started is left behind on an error.
    ///
    /// # Errors
    ///
    /// Building the image, creating or starting a container (the engine's
    /// message), a container that is not healthy within
    /// [`HEALTHY_WITHIN`], or what [`DemoEnv::start`] can fail with.
    pub async fn start_docker(
        scenario: Scenario,
        prometheus_bin: Option<PathBuf>,
        docker: &Docker,
        run_id: &str,
    ) -> anyhow::Result<DemoEnv> {
        let c = start_containers(docker, run_id, scenario)
            .await
            .map_err(|e| anyhow::anyhow!("starting the demo containers: {e}"))?;
        Self::start_around(scenario, prometheus_bin, Instances::Containers(c)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_named_and_labelled_per_run_and_track() {
        let s = spec("42-abc", "rolldeck-demo:1", "canary", "failing");
        assert_eq!(s.name, "rolldeck-demo-42-abc-canary");
        assert_eq!(s.labels[RUN_LABEL], "42-abc");
        assert_eq!(s.labels[TRACK_LABEL], "canary");
        assert_eq!(s.cmd, ["service", "canary", "failing", "8080"]);
        assert_eq!(s.ports[0].host, 0, "a free port, picked by the engine");
        assert_eq!(s.ports[0].host_ip, "127.0.0.1");
        assert_eq!(behaviour_arg(Scenario::Bad), "failing");
        assert_eq!(behaviour_arg(Scenario::Good), "good");
        assert_eq!(behaviour_arg(Scenario::Slow), "slow");
        assert_ne!(new_run_id(), "");
    }
}
