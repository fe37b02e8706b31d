//! Container operations: run one from a local image (env, labels, ports,
//! health check), start, stop, restart, remove, and the host port a
//! published port got. Used by the `docker` action kind, the Docker demo
//! and the tests. Every call has the client's request timeout; errors are
//! one line with the engine's message.

use super::short_error;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RestartContainerOptions, StopContainerOptions,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A container to run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct RunSpec {
    /// Container name.
    pub name: String,
    /// A local image, `name:tag` (nothing is pulled).
    pub image: String,
    /// Arguments after the image's entrypoint (empty: the image's `CMD`).
    pub cmd: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels (e.g. the track label the Docker source selects on).
    pub labels: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// The health check, if any.
    pub health: Option<HealthSpec>,
}

/// A published port: `container` (TCP) on `host_ip:host` (`host` 0: a free
/// port the engine picks; read it with [`published_port`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PortSpec {
    /// Port inside the container.
    pub container: u16,
    /// Port on the host (0: any free one).
    pub host: u16,
    /// Address on the host (default `127.0.0.1`).
    pub host_ip: String,
}

/// A health check run by the engine inside the container.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HealthSpec {
    /// The command, run without a shell (`CMD` form).
    pub cmd: Vec<String>,
    /// Between checks.
    pub interval: Duration,
    /// One check's limit.
    pub timeout: Duration,
    /// Failures in a row that make it `unhealthy`.
    pub retries: u32,
    /// Grace after start during which failures do not count.
    pub start_period: Duration,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Creates and starts `spec`; returns the container id. A container that
/// was created but could not start is removed again.
pub async fn run(docker: &Docker, spec: &RunSpec) -> Result<String, String> {
    let port_key = |p: &PortSpec| format!("{}/tcp", p.container);
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        bindings
            .entry(port_key(p))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(if p.host == 0 {
                    String::new()
                } else {
                    p.host.to_string()
                }),
            });
    }
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(spec.ports.iter().map(port_key).collect()),
        healthcheck: spec.health.as_ref().map(|h| HealthConfig {
            test: Some(
                std::iter::once("CMD".to_string())
                    .chain(h.cmd.iter().cloned())
                    .collect(),
            ),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(spec.name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| format!("create container {}: {}", spec.name, short_error(&e)))?;
    if let Err(e) = docker.start_container(&created.id, None).await {
        let _ = remove(docker, &created.id).await;
        return Err(format!(
            "start container {}: {}",
            spec.name,
            short_error(&e)
        ));
    }
    Ok(created.id)
}

/// Starts an existing container.
pub async fn start(docker: &Docker, name: &str) -> Result<(), String> {
    docker
        .start_container(name, None)
        .await
        .map_err(|e| format!("start container {name}: {}", short_error(&e)))
}

/// Stops a container: SIGTERM, then SIGKILL after `grace` (whole seconds).
pub async fn stop(docker: &Docker, name: &str, grace: Duration) -> Result<(), String> {
    docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
                signal: None,
            }),
        )
        .await
        .map_err(|e| format!("stop container {name}: {}", short_error(&e)))
}

/// Restarts a container (stop with `grace`, then start).
pub async fn restart(docker: &Docker, name: &str, grace: Duration) -> Result<(), String> {
    docker
        .restart_container(
            name,
            Some(RestartContainerOptions {
                t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
                signal: None,
            }),
        )
        .await
        .map_err(|e| format!("restart container {name}: {}", short_error(&e)))
}

/// Removes a container, running or not (force), with its anonymous volumes.
pub async fn remove(docker: &Docker, name: &str) -> Result<(), String> {
    docker
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            }),
        )
        .await
        .map_err(|e| format!("remove container {name}: {}", short_error(&e)))
}

/// The host port that `container_port/tcp` of container `name` is
/// published on.
pub async fn published_port(
    docker: &Docker,
    name: &str,
    container_port: u16,
) -> Result<u16, String> {
    let ins = docker
        .inspect_container(name, None)
        .await
        .map_err(|e| format!("inspect container {name}: {}", short_error(&e)))?;
    ins.network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&format!("{container_port}/tcp")).cloned().flatten())
        .and_then(|b| b.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .ok_or_else(|| format!("container {name} does not publish port {container_port}"))
}
