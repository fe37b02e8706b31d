//! The `docker` action kind: a container operation through the Engine API,
//! run by the same executor as commands and HTTP requests (confirmation,
//! audit log, timeout, cancel; see [`crate::exec`]).
//!
//! ```toml
//! [actions.run_green]
//! docker = { op = "run", container = "checkout-green", image = "checkout:{version}",
//!            env = { MODE = "green" }, labels = { "app.track" = "canary" },
//!            ports = ["127.0.0.1:8082:8080"],
//!            health = { cmd = ["/app", "probe"], interval = "2s", retries = 3 } }
//! [actions.stop_blue]
//! docker = { op = "stop", container = "checkout-blue", grace = "10s" }
//! ```
//!
//! `op` is `run` (create and start from a *local* image — nothing is
//! pulled), `start`, `stop` (SIGTERM, SIGKILL after `grace`), `restart` or
//! `remove` (forced). Placeholders (`{version}` …) may appear in
//! `container`, `image`, `cmd`, `env` and `labels` values; they are
//! inserted as is (the Engine API takes no shell). References
//! (`${env:VAR}`, `${secret:env:VAR}`, `${file:PATH}`, …) are resolved at
//! load in those and in `ports`, `host` and `health.cmd` (see
//! [`crate::config`]); a secret one, and any `env` value whose name is
//! secret-like, never reaches the confirmation, audit log or journal.

use super::run::{HealthSpec, PortSpec, RunSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a `docker` action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerOp {
    /// Create and start a container from a local image.
    Run,
    /// Start an existing container.
    Start,
    /// Stop a container (SIGTERM, SIGKILL after `grace`).
    Stop,
    /// Restart a container.
    Restart,
    /// Remove a container, running or not.
    Remove,
}

impl DockerOp {
    /// The word used in the config and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            DockerOp::Run => "run",
            DockerOp::Start => "start",
            DockerOp::Stop => "stop",
            DockerOp::Restart => "restart",
            DockerOp::Remove => "remove",
        }
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(10)
}

/// `docker = { … }` of an action (also its rendered form, placeholders
/// filled).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerActionSpec {
    /// The operation.
    pub op: DockerOp,
    /// Container name.
    pub container: String,
    /// `run`: a local image, `name:tag`.
    #[serde(default)]
    pub image: Option<String>,
    /// `run`: arguments after the image's entrypoint.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `run`: environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `run`: labels (e.g. the track label `[sources.docker]` selects on).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `run`: published TCP ports, `"[IP:]HOST:CONTAINER"` (IP default
    /// `127.0.0.1`; HOST 0 picks a free port).
    #[serde(default)]
    pub ports: Vec<String>,
    /// `run`: the health check the engine runs in the container.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// `run`: remove a container of the same name first.
    #[serde(default)]
    pub replace: bool,
    /// `stop`/`restart`: time between SIGTERM and SIGKILL (default 10 s,
    /// at most 1 h).
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
    /// The engine (default: `DOCKER_HOST`, else the local socket).
    #[serde(default)]
    pub host: Option<String>,
}

/// A container health check (`CMD` form, no shell).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// Between checks (default 5 s, 1 s – 1 h).
    #[serde(default = "default_hc_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// One check's limit (default 3 s, 1 s – 1 h).
    #[serde(default = "default_hc_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Failures in a row that make it unhealthy (default 3, 1–100).
    #[serde(default = "default_hc_retries")]
    pub retries: u32,
    /// Grace after start (default 0 s, at most 1 h).
    #[serde(default, with = "humantime_serde")]
    pub start_period: Duration,
}
fn default_hc_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_hc_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_hc_retries() -> u32 {
    3
}

const HOUR: Duration = Duration::from_secs(3600);

/// `[IP:]HOST:CONTAINER` → a [`PortSpec`].
pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    let bad = || format!("port {s:?} is not [IP:]HOST:CONTAINER (e.g. \"127.0.0.1:8082:8080\")");
    let (container, host, ip) = match parts[..] {
        [c, h] => (c, h, "127.0.0.1"),
        [c, h, ip] => (c, h, ip),
        _ => return Err(bad()),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad());
    }
    Ok(PortSpec {
        container: container.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        host: host.parse().map_err(|_| bad())?,
        host_ip: ip.to_string(),
    })
}

impl DockerActionSpec {
    /// Every text that may hold placeholders, with its key for messages.
    pub fn texts(&self) -> Vec<(String, &str)> {
        let mut out = vec![("container".to_string(), self.container.as_str())];
        if let Some(i) = &self.image {
            out.push(("image".into(), i));
        }
        for (i, c) in self.cmd.iter().enumerate() {
            out.push((format!("cmd[{i}]"), c));
        }
        for (k, v) in &self.env {
            out.push((format!("env.{k}"), v));
        }
        for (k, v) in &self.labels {
            out.push((format!("labels.{k}"), v));
        }
        out
    }

    /// Fills every text with `fill` (placeholder substitution).
    pub fn map_texts<E>(&self, mut fill: impl FnMut(&str) -> Result<String, E>) -> Result<Self, E> {
        let mut d = self.clone();
        d.container = fill(&self.container)?;
        d.image = self.image.as_deref().map(&mut fill).transpose()?;
        d.cmd = self.cmd.iter().map(|c| fill(c)).collect::<Result<_, _>>()?;
        for v in d.env.values_mut().chain(d.labels.values_mut()) {
            *v = fill(v)?;
        }
        Ok(d)
    }

    /// Problems independent of placeholder values, one message each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.container.trim().is_empty() {
            out.push("`docker.container` must not be empty".to_string());
        }
        let run_only = [
            ("image", self.image.is_some()),
            ("cmd", !self.cmd.is_empty()),
            ("env", !self.env.is_empty()),
            ("labels", !self.labels.is_empty()),
            ("ports", !self.ports.is_empty()),
            ("health", self.health.is_some()),
            ("replace", self.replace),
        ];
        if self.op == DockerOp::Run {
            if self.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                out.push("`docker.op = \"run\"` needs `image` (a local image, name:tag)".into());
            }
        } else {
            let set: Vec<&str> = run_only
                .iter()
                .filter(|(_, s)| *s)
                .map(|(k, _)| *k)
                .collect();
            if !set.is_empty() {
                out.push(format!(
                    "`docker.{}` only apply to op \"run\", not \"{}\"",
                    set.join("`, `docker."),
                    self.op.as_str()
                ));
            }
        }
        for p in &self.ports {
            if let Err(e) = parse_port(p) {
                out.push(format!("`docker.ports`: {e}"));
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                out.push(format!("`docker.env`: invalid variable name {k:?}"));
            }
        }
        if self.grace > HOUR {
            out.push("`docker.grace` must be at most 1h".into());
        }
        if let Some(h) = &self.health {
            if h.cmd.is_empty() || h.cmd[0].trim().is_empty() {
                out.push("`docker.health.cmd` must name a command".into());
            }
            for (k, d) in [("interval", h.interval), ("timeout", h.timeout)] {
                if d < Duration::from_secs(1) || d > HOUR {
                    out.push(format!("`docker.health.{k}` must be between 1s and 1h"));
                }
            }
            if h.start_period > HOUR {
                out.push("`docker.health.start_period` must be at most 1h".into());
            }
            if !(1..=100).contains(&h.retries) {
                out.push("`docker.health.retries` must be 1–100".into());
            }
        }
        if let Some(h) = &self.host
            && !["unix://", "tcp://", "http://"]
                .iter()
                .any(|p| h.starts_with(p))
        {
            out.push(
                "`docker.host` must be unix:///PATH, tcp://HOST:PORT or http://HOST:PORT".into(),
            );
        }
        out
    }

    /// The [`RunSpec`] of a rendered `run`.
    ///
    /// # Errors
    ///
    /// A `run` without `image` (refused at load too), or a bad port.
    pub fn run_spec(&self) -> Result<RunSpec, String> {
        let image = self
            .image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or("`docker.image` is required for op = \"run\"")?;
        Ok(RunSpec {
            name: self.container.clone(),
            image,
            cmd: self.cmd.clone(),
            env: self.env.clone(),
            labels: self.labels.clone(),
            ports: self
                .ports
                .iter()
                .map(|p| parse_port(p))
                .collect::<Result<_, _>>()?,
            health: self.health.as_ref().map(|h| HealthSpec {
                cmd: h.cmd.clone(),
                interval: h.interval,
                timeout: h.timeout,
                retries: h.retries,
                start_period: h.start_period,
            }),
        })
    }

    /// One line saying what runs, like the `docker` CLI would (`env`
    /// values passed through `mask` first).
    pub fn display(&self, mask: impl Fn(&str, &str) -> String) -> String {
        let mut parts = vec!["docker".to_string(), self.op.as_str().to_string()];
        match self.op {
            DockerOp::Run => {
                if self.replace {
                    parts.push("--replace".into());
                }
                parts.push(format!("--name {}", self.container));
                for (k, v) in &self.env {
                    parts.push(format!("-e {k}={}", mask(k, v)));
                }
                for (k, v) in &self.labels {
                    parts.push(format!("-l {k}={v}"));
                }
                for p in &self.ports {
                    parts.push(format!("-p {p}"));
                }
                if let Some(h) = &self.health {
                    parts.push(format!(
                        "--health-cmd {:?} --health-interval {}",
                        h.cmd.join(" "),
                        humantime::format_duration(h.interval)
                    ));
                }
                parts.push(self.image.clone().unwrap_or_default());
                parts.extend(self.cmd.iter().cloned());
            }
            DockerOp::Stop | DockerOp::Restart => {
                parts.push(format!("-t {}", self.grace.as_secs()));
                parts.push(self.container.clone());
            }
            DockerOp::Start | DockerOp::Remove => parts.push(self.container.clone()),
        }
        parts.join(" ")
    }
}

/// Performs a rendered `docker` action: connects (request timeout
/// `timeout`), does the operation, and returns `Ok(lines)` describing what
/// happened or `Err(reason)` with the engine's message.
pub async fn perform(d: &DockerActionSpec, timeout: Duration) -> Result<Vec<String>, String> {
    let (docker, about) = super::connect_host(d.host.as_deref(), timeout).await?;
    let name = &d.container;
    let mut lines = vec![format!("connected to {about}")];
    match d.op {
        DockerOp::Run => {
            let spec = d.run_spec()?;
            if d.replace {
                match super::run::remove(&docker, name).await {
                    Ok(()) => lines.push(format!("removed the earlier container {name}")),
                    Err(e) if e.contains("No such container") => {}
                    Err(e) => return Err(e),
                }
            }
            let id = super::run::run(&docker, &spec).await?;
            lines.push(format!(
                "container {name} started from {} (id {})",
                spec.image,
                &id[..id.len().min(12)]
            ));
        }
        DockerOp::Start => {
            super::run::start(&docker, name).await?;
            lines.push(format!("container {name} started"));
        }
        DockerOp::Stop => {
            super::run::stop(&docker, name, d.grace).await?;
            lines.push(format!("container {name} stopped"));
        }
        DockerOp::Restart => {
            super::run::restart(&docker, name, d.grace).await?;
            lines.push(format!("container {name} restarted"));
        }
        DockerOp::Remove => {
            super::run::remove(&docker, name).await?;
            lines.push(format!("container {name} removed"));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_and_without_ip() {
        assert_eq!(
            parse_port("8082:8080").unwrap(),
            PortSpec {
                container: 8080,
                host: 8082,
                host_ip: "127.0.0.1".into()
            }
        );
        assert_eq!(parse_port("0.0.0.0:0:80").unwrap().host_ip, "0.0.0.0");
        for bad in ["8080", "x:80", "1.2.3.4:80:0", "nope:1:2", "1:2:3:4"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_run_without_an_image_is_an_error_not_an_empty_image() {
        let spec: DockerActionSpec =
            toml::from_str("op = \"run\"\ncontainer = \"green\"").expect("parses");
        let err = spec.run_spec().unwrap_err();
        assert!(err.contains("docker.image"), "{err}");
    }
}
