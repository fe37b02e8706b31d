#![allow(dead_code)]
//! Docker test harness: the real engine, the demo image built once per test
//! binary (removed when the last test using it ends), and containers and
//! networks named with a unique prefix per test, all removed on drop —
//! also when the test fails.

use bollard::Docker;
use rolldeck::docker::run::{HealthSpec, PortSpec, RunSpec};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A runtime for the harness's own engine calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The local engine (DOCKER_HOST or the socket), or `None` after printing
/// why the test skips; panics when `ROLLDECK_TEST_REQUIRE` names `docker`.
pub fn engine_or_skip(test: &str, rt: &tokio::runtime::Runtime) -> Option<Docker> {
    let r = rt.block_on(async {
        let d = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        let d = d.negotiate_version().await.map_err(|e| e.to_string())?;
        d.ping().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(d)
    });
    match r {
        Ok(d) => Some(d),
        Err(e) if crate::common::required("docker") => {
            panic!("{test}: the Docker Engine is required (ROLLDECK_TEST_REQUIRE) but: {e}")
        }
        Err(e) => {
            eprintln!("skipped {test}: no Docker Engine: {e}");
            None
        }
    }
}

/// (users, tag) of this binary's test image.
static IMAGE: Mutex<(usize, Option<String>)> = Mutex::new((0, None));

/// A test's use of the demo image; the last one dropped removes it.
pub struct ImageUse {
    pub tag: String,
    docker: Docker,
}

impl ImageUse {
    fn get(docker: &Docker, rt: &tokio::runtime::Runtime) -> ImageUse {
        let mut g = IMAGE.lock().unwrap_or_else(|p| p.into_inner());
        let tag = match &g.1 {
            Some(t) => t.clone(),
            None => {
                let tag = format!("rolldeck-test-{}:t", std::process::id());
                rt.block_on(rolldeck::docker::image::ensure_as(
                    docker,
                    &crate::common::bin(),
                    &tag,
                ))
                .unwrap_or_else(|e| panic!("building the demo image: {e}"));
                g.1 = Some(tag.clone());
                tag
            }
        };
        g.0 += 1;
        ImageUse {
            tag,
            docker: docker.clone(),
        }
    }
}

impl Drop for ImageUse {
    fn drop(&mut self) {
        let mut g = IMAGE.lock().unwrap_or_else(|p| p.into_inner());
        g.0 -= 1;
        if g.0 == 0
            && let Some(tag) = g.1.take()
        {
            let d = self.docker.clone();
            let _ = std::thread::spawn(move || {
                rt().block_on(rolldeck::docker::image::remove(&d, &tag))
            })
            .join();
        }
    }
}

/// One test's Docker world: containers (and networks) named `PREFIX-…`,
/// all removed on drop.
pub struct Env {
    pub prefix: String,
    pub docker: Docker,
    pub rt: tokio::runtime::Runtime,
    // Dropped after the containers (see Drop).
    pub image: Option<ImageUse>,
}

impl Env {
    /// The engine and the demo image, or `None` (skip, reason printed).
    pub fn new(test: &str) -> Option<Env> {
        let rt = rt();
        let docker = engine_or_skip(test, &rt)?;
        let image = ImageUse::get(&docker, &rt);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Some(Env {
            prefix: format!("rdt{}x{nanos:x}", std::process::id()),
            docker,
            rt,
            image: Some(image),
        })
    }

    /// The demo image's tag.
    pub fn tag(&self) -> String {
        self.image.as_ref().unwrap().tag.clone()
    }

    /// `PREFIX-suffix`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// Runs the demo service as `PREFIX-suffix` with label
    /// `rolldeck.test=PREFIX-track`, port 8080 published on a free
    /// loopback port, and a 1 s health check on `/health`. Returns (name, host port).
    pub fn run_service(&self, suffix: &str, track: &str, behaviour: &str) -> (String, u16) {
        let name = self.name(suffix);
        let spec = RunSpec {
            name: name.clone(),
            image: self.tag(),
            cmd: ["service", track, behaviour, "8080"]
                .map(String::from)
                .to_vec(),
            env: BTreeMap::new(),
            labels: BTreeMap::from([(
                "rolldeck.test".to_string(),
                format!("{}-{track}", self.prefix),
            )]),
            ports: vec![PortSpec {
                container: 8080,
                host: 0,
                host_ip: "127.0.0.1".into(),
            }],
            health: Some(HealthSpec {
                cmd: [
                    "/rolldeck",
                    "__container",
                    "probe",
                    "http://127.0.0.1:8080/health",
                ]
                .map(String::from)
                .to_vec(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
                retries: 2,
                start_period: Duration::ZERO,
            }),
        };
        let port = self.rt.block_on(async {
            rolldeck::docker::run::run(&self.docker, &spec)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            rolldeck::docker::run::published_port(&self.docker, &name, 8080)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        });
        (name, port)
    }

    /// Runs `cmd` (after the image's entrypoint) as `PREFIX-suffix`.
    pub fn run_cmd(&self, suffix: &str, cmd: &[&str], labels: &[(&str, &str)]) -> String {
        let name = self.name(suffix);
        let spec = RunSpec {
            name: name.clone(),
            image: self.tag(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        self.rt
            .block_on(rolldeck::docker::run::run(&self.docker, &spec))
            .unwrap_or_else(|e| panic!("{e}"));
        name
    }

    /// Waits (at most 40 s) until container `name` reports `healthy`.
    pub fn wait_healthy(&self, name: &str) {
        let start = std::time::Instant::now();
        loop {
            let h = self.rt.block_on(async {
                let i = self.docker.inspect_container(name, None).await.ok()?;
                Some(i.state?.health?.status?.to_string())
            });
            if h.as_deref() == Some("healthy") {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "{name} never became healthy (last: {h:?})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every container whose name starts with the prefix.
    pub fn containers(&self) -> Vec<String> {
        self.rt.block_on(async {
            let all = self
                .docker
                .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                    all: true,
                    ..Default::default()
                }))
                .await
                .unwrap_or_default();
            all.into_iter()
                .filter_map(|c| c.names?.first().cloned())
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| n.starts_with(&self.prefix))
                .collect()
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in self.containers() {
            let r = self
                .rt
                .block_on(rolldeck::docker::run::remove(&self.docker, &name));
            if let Err(e) = r {
                eprintln!("cleanup: {e}");
            }
        }
        let prefix = self.prefix.clone();
        let _ = self.rt.block_on(async {
            for n in self
                .docker
                .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                .await
                .unwrap_or_default()
            {
                if let Some(name) = n.name.filter(|n| n.starts_with(&prefix)) {
                    let _ = self.docker.remove_network(&name).await;
                }
            }
            Ok::<(), ()>(())
        });
        self.image.take();
    }
}
