//! The demo load generator: a steady stream of `GET /` requests, each sent
//! to the canary with probability `weight / 100` and to stable otherwise.
//!
//! Requests are started on a fixed tick (a tokio interval); concurrency is
//! capped by a semaphore, so a slow instance makes the generator skip ticks
//! instead of piling up tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

/// Settings of the load generator.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadConfig {
    /// Requests started per second, in total over both instances (default
    /// 80). 0 sends nothing.
    pub rate_per_sec: u32,
    /// Maximum number of requests in flight at once (default 64); ticks that
    /// find no free slot are skipped.
    pub max_in_flight: usize,
    /// Timeout of one request, connect included (default 2 s).
    pub timeout: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            rate_per_sec: 80,
            max_in_flight: 64,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Counters shared between the generator task and its handle.
#[derive(Debug, Default)]
struct Counters {
    stable: AtomicU64,
    canary: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

/// A running load generator. [`LoadGenerator::stop`] stops it; dropping the
/// handle aborts the task and every request in flight.
#[derive(Debug)]
pub struct LoadGenerator {
    counters: Arc<Counters>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the load generator against `http://{stable}/` and
/// `http://{canary}/`, reading the canary traffic weight (percent 0–100,
/// larger values count as 100) from `weight` before every request.
pub fn start(
    stable: SocketAddr,
    canary: SocketAddr,
    weight: Arc<AtomicU8>,
    config: LoadConfig,
) -> anyhow::Result<LoadGenerator> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .no_proxy()
        .build()
        .context("building the load generator's HTTP client")?;
    let counters = Arc::new(Counters::default());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(run(
        client,
        [format!("http://{stable}/"), format!("http://{canary}/")],
        weight,
        config,
        counters.clone(),
        rx,
    ));
    Ok(LoadGenerator {
        counters,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl LoadGenerator {
    /// Requests sent so far: `(to stable, to canary)`. A request counts when
    /// it is started, whatever its outcome.
    pub fn requests_sent(&self) -> (u64, u64) {
        (
            self.counters.stable.load(Ordering::Relaxed),
            self.counters.canary.load(Ordering::Relaxed),
        )
    }

    /// Requests that got no HTTP response (connection error or timeout).
    /// HTTP 500 answers are not failures here.
    pub fn requests_failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Ticks skipped because [`LoadConfig::max_in_flight`] requests were
    /// already in flight.
    pub fn ticks_skipped(&self) -> u64 {
        self.counters.skipped.load(Ordering::Relaxed)
    }

    /// Stops sending, aborts the requests still in flight and waits for the
    /// generator task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LoadGenerator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run(
    client: reqwest::Client,
    urls: [String; 2],
    weight: Arc<AtomicU8>,
    config: LoadConfig,
    counters: Arc<Counters>,
    mut shutdown: oneshot::Receiver<()>,
) {
    if config.rate_per_sec == 0 {
        let _ = shutdown.await;
        return;
    }
    let semaphore = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut in_flight = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / config.rate_per_sec);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let [stable_url, canary_url] = urls;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = semaphore.clone().try_acquire_owned() else {
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let w = weight.load(Ordering::Relaxed).min(100);
        let to_canary = rand::rng().random_range(0..100u8) < w;
        let url = if to_canary {
            counters.canary.fetch_add(1, Ordering::Relaxed);
            canary_url.clone()
        } else {
            counters.stable.fetch_add(1, Ordering::Relaxed);
            stable_url.clone()
        };
        let client = client.clone();
        let counters = counters.clone();
        in_flight.spawn(async move {
            let _permit = permit;
            let ok = match client.get(&url).send().await {
                Ok(resp) => resp.bytes().await.is_ok(),
                Err(_) => false,
            };
            if !ok {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    in_flight.shutdown().await;
}
