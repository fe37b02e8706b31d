//! The demo HTTP service (one process-local axum server per instance) and
//! the demo's traffic-control endpoint.
//!
//! Demo service routes:
//!
//! * `GET /` — the work: sleeps a simulated latency, then answers 200 or
//!   500 depending on the instance's [`Behaviour`], with the header
//!   [`TRACK_HEADER`] naming the instance's track (`stable`, `canary`, …) so
//!   a client behind a load balancer can tell who answered;
//! * `GET /health` — 200 `ok`;
//! * `GET /metrics` — OpenMetrics text produced by `prometheus-client`: the
//!   counter `http_requests_total{code="200"|"500"}` and the histogram
//!   `http_request_duration_seconds` (buckets 0.005 … 5 s). There is no
//!   track label: the track is added by Prometheus target labels, or known
//!   from which target is scraped.
//!
//! Traffic-control routes ([`spawn_control`]): `POST /traffic?weight=N`,
//! `POST /rollback`, `GET /traffic`, `GET /health`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Buckets of `http_request_duration_seconds`, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How long after serving its first `GET /` a degrading instance
/// ([`Behaviour::Failing`], [`Behaviour::Slow`]) starts to degrade.
pub const DEGRADE_AFTER: Duration = Duration::from_secs(3);

/// How long a degrading instance takes to go from healthy to fully
/// degraded (linear ramp).
pub const DEGRADE_RAMP: Duration = Duration::from_secs(2);

/// Error ratio (fraction of `GET /` answered 500) of a healthy instance:
/// 0. It was 0.1 %, but at 5 % traffic weight the demo's 10 s window holds
/// about 35 canary requests, so one random 500 read as a 3 % error ratio
/// and failed the `max_increase = 0.03` gate: the good scenario rolled back
/// now and then. A healthy demo canary answers no 500s; the small-sample
/// weakness of a plain ratio gate is the analysis's to fix, not the demo's.
pub const HEALTHY_ERROR_RATIO: f64 = 0.0;

/// Error ratio of a fully degraded [`Behaviour::Failing`] instance: 10 %.
pub const FAILING_ERROR_RATIO: f64 = 0.10;

/// The response header of `GET /` naming the track that answered.
pub const TRACK_HEADER: &str = "x-demo-track";

/// Content type of `GET /metrics` (what `prometheus-client` produces).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How one instance of the demo service behaves. Degradation is measured
/// from the first `GET /` the instance serves: nothing changes for
/// [`DEGRADE_AFTER`] (3 s), then it ramps linearly over [`DEGRADE_RAMP`]
/// (2 s) and stays fully degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// ~0.1 % errors, latency uniform 10–30 ms, forever.
    Healthy,
    /// Like [`Behaviour::Healthy`], then the error ratio climbs to ~10 %.
    Failing,
    /// Like [`Behaviour::Healthy`], then latency climbs to 400–800 ms (93 %
    /// of requests uniform in 400–500 ms, 7 % in 500–800 ms: true p95
    /// ≈ 590 ms, `histogram_quantile(0.95, …)` over the standard buckets
    /// ≈ 640 ms); errors stay at ~0.1 %.
    Slow,
}

impl Behaviour {
    /// How degraded the instance is `since_first` after its first request:
    /// 0.0 (healthy) to 1.0 (fully degraded). Always 0 for
    /// [`Behaviour::Healthy`].
    pub fn degradation(self, since_first: Duration) -> f64 {
        if self == Behaviour::Healthy || since_first <= DEGRADE_AFTER {
            return 0.0;
        }
        ((since_first - DEGRADE_AFTER).as_secs_f64() / DEGRADE_RAMP.as_secs_f64()).min(1.0)
    }

    /// The probability (0.0–1.0) that a request `since_first` after the
    /// first one fails with 500.
    pub fn error_ratio(self, since_first: Duration) -> f64 {
        match self {
            Behaviour::Failing => {
                let d = self.degradation(since_first);
                HEALTHY_ERROR_RATIO + d * (FAILING_ERROR_RATIO - HEALTHY_ERROR_RATIO)
            }
            Behaviour::Healthy | Behaviour::Slow => HEALTHY_ERROR_RATIO,
        }
    }

    /// Draws the simulated latency of a request `since_first` after the
    /// first one.
    pub fn sample_latency<R: Rng + ?Sized>(self, rng: &mut R, since_first: Duration) -> Duration {
        let healthy_ms = rng.random_range(10.0..30.0);
        let ms = match self {
            Behaviour::Slow => {
                let d = self.degradation(since_first);
                if d == 0.0 {
                    healthy_ms
                } else {
                    let slow_ms = if rng.random_bool(0.93) {
                        rng.random_range(400.0..500.0)
                    } else {
                        rng.random_range(500.0..800.0)
                    };
                    healthy_ms + d * (slow_ms - healthy_ms)
                }
            }
            Behaviour::Healthy | Behaviour::Failing => healthy_ms,
        };
        Duration::from_secs_f64(ms / 1000.0)
    }
}

/// A running HTTP server of the demo (a service instance or the traffic
/// control). [`ServiceHandle::shutdown`] stops it gracefully; dropping the
/// handle aborts the server task.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The address the server listens on (`127.0.0.1`, OS-chosen port).
    pub addr: SocketAddr,
    /// The instance's track (`stable`, `canary`) or `control`.
    pub name: String,
    stats: Option<Arc<ServiceState>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServiceHandle {
    /// `GET /` requests served so far by a demo service instance: `(answered
    /// 200, answered 500)`. `(0, 0)` for the traffic control.
    pub fn served(&self) -> (u64, u64) {
        self.stats.as_ref().map_or((0, 0), |s| {
            (
                s.served_ok.load(Ordering::Relaxed),
                s.served_err.load(Ordering::Relaxed),
            )
        })
    }

    /// Stops the server: stops accepting, lets in-flight requests finish
    /// (at most 3 s, then aborts) and waits for the task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Label set of `http_requests_total`: the HTTP status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// State shared by the handlers of one demo service instance.
#[derive(Debug)]
struct ServiceState {
    track: String,
    behaviour: Behaviour,
    first_request: OnceLock<Instant>,
    registry: Registry,
    requests: Family<CodeLabel, Counter>,
    duration: Histogram,
    served_ok: AtomicU64,
    served_err: AtomicU64,
}

/// Starts one instance of the demo service on `127.0.0.1:0`. `track` is
/// only used for logs and [`ServiceHandle::name`] (the metrics carry no
/// track label).
pub async fn spawn(track: &str, behaviour: Behaviour) -> anyhow::Result<ServiceHandle> {
    spawn_at(track, behaviour, (Ipv4Addr::LOCALHOST, 0).into()).await
}

/// Starts one instance of the demo service listening on `addr` (the demo
/// image listens on `0.0.0.0:8080` inside its container).
pub async fn spawn_at(
    track: &str,
    behaviour: Behaviour,
    addr: SocketAddr,
) -> anyhow::Result<ServiceHandle> {
    let mut registry = Registry::default();
    let requests = Family::<CodeLabel, Counter>::default();
    registry.register(
        "http_requests",
        "Requests to GET / by HTTP status code",
        requests.clone(),
    );
    let duration = Histogram::new(LATENCY_BUCKETS);
    registry.register(
        "http_request_duration_seconds",
        "Time to answer GET /, in seconds",
        duration.clone(),
    );
    // Both series exist from the start, so rates over them are well defined
    // before the first error.
    for code in ["200", "500"] {
        let _ = requests.get_or_create(&CodeLabel {
            code: code.to_string(),
        });
    }
    let state = Arc::new(ServiceState {
        track: track.to_string(),
        behaviour,
        first_request: OnceLock::new(),
        registry,
        requests,
        duration,
        served_ok: AtomicU64::new(0),
        served_err: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/", get(work))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let mut handle = serve_at(track, router, addr).await?;
    handle.stats = Some(state);
    tracing::debug!(track, addr = %handle.addr, ?behaviour, "demo service started");
    Ok(handle)
}

/// Starts the traffic-control endpoint on `127.0.0.1:0`, reading and
/// writing the canary traffic weight (percent 0–100) in `weight`:
///
/// * `POST /traffic?weight=N` — sets the weight; 200 `weight=N`, or 400 with
///   a message unless `N` is an integer 0–100;
/// * `POST /rollback` — sets the weight to 0; 200 `weight=0`;
/// * `GET /traffic` — 200 `weight=N`;
/// * `GET /health` — 200 `ok`.
///
/// Every change is logged with `tracing::info!`.
pub async fn spawn_control(weight: Arc<AtomicU8>) -> anyhow::Result<ServiceHandle> {
    let router = Router::new()
        .route("/traffic", get(get_weight).post(set_weight))
        .route("/rollback", post(rollback))
        .route("/health", get(health))
        .with_state(weight);
    serve_at("control", router, (Ipv4Addr::LOCALHOST, 0).into()).await
}

/// Binds `addr` and serves `router` until shut down.
async fn serve_at(name: &str, router: Router, addr: SocketAddr) -> anyhow::Result<ServiceHandle> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} for the demo {name} server"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task_name = name.to_string();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(server = task_name, error = %e, "demo server failed");
        }
    });
    Ok(ServiceHandle {
        addr,
        name: name.to_string(),
        stats: None,
        shutdown: Some(tx),
        task: Some(task),
    })
}

async fn work(
    State(s): State<Arc<ServiceState>>,
) -> (StatusCode, [(&'static str, String); 1], &'static str) {
    let start = Instant::now();
    let since_first = start - *s.first_request.get_or_init(|| start);
    let (latency, fail) = {
        let mut rng = rand::rng();
        let latency = s.behaviour.sample_latency(&mut rng, since_first);
        let fail = rng.random_bool(s.behaviour.error_ratio(since_first));
        (latency, fail)
    };
    tokio::time::sleep(latency).await;
    let (code, body) = if fail {
        s.served_err.fetch_add(1, Ordering::Relaxed);
        (StatusCode::INTERNAL_SERVER_ERROR, "simulated failure\n")
    } else {
        s.served_ok.fetch_add(1, Ordering::Relaxed);
        (StatusCode::OK, "ok\n")
    };
    s.requests
        .get_or_create(&CodeLabel {
            code: code.as_u16().to_string(),
        })
        .inc();
    s.duration.observe(start.elapsed().as_secs_f64());
    (code, [(TRACK_HEADER, s.track.clone())], body)
}

async fn health() -> &'static str {
    "ok"
}

async fn metrics(State(s): State<Arc<ServiceState>>) -> axum::response::Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// Parses the `weight` query parameter: an integer percent 0–100.
fn parse_weight(params: &HashMap<String, String>) -> Result<u8, String> {
    let Some(raw) = params.get("weight") else {
        return Err("missing query parameter `weight` (an integer percent 0–100)\n".to_string());
    };
    match raw.trim().parse::<u8>() {
        Ok(w) if w <= 100 => Ok(w),
        _ => Err(format!(
            "invalid weight `{raw}`: expected an integer percent 0–100\n"
        )),
    }
}

fn change_weight(weight: &AtomicU8, to: u8, why: &str) {
    let from = weight.swap(to, Ordering::Relaxed);
    if from != to {
        tracing::info!(from, to, via = why, "canary traffic weight changed");
    } else {
        tracing::info!(weight = to, via = why, "canary traffic weight unchanged");
    }
}

async fn set_weight(
    State(weight): State<Arc<AtomicU8>>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    match parse_weight(&params) {
        Ok(w) => {
            change_weight(&weight, w, "POST /traffic");
            (StatusCode::OK, format!("weight={w}"))
        }
        Err(msg) => {
            tracing::warn!(message = msg.trim_end(), "rejected traffic change");
            (StatusCode::BAD_REQUEST, msg)
        }
    }
}

async fn rollback(State(weight): State<Arc<AtomicU8>>) -> (StatusCode, String) {
    change_weight(&weight, 0, "POST /rollback");
    (StatusCode::OK, "weight=0".to_string())
}

async fn get_weight(State(weight): State<Arc<AtomicU8>>) -> String {
    format!("weight={}", weight.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degradation_ramps_after_delay() {
        let b = Behaviour::Failing;
        assert_eq!(b.degradation(Duration::from_secs(2)), 0.0);
        assert!((b.degradation(Duration::from_secs(4)) - 0.5).abs() < 1e-9);
        assert_eq!(b.degradation(Duration::from_secs(60)), 1.0);
        assert_eq!(Behaviour::Healthy.degradation(Duration::from_secs(60)), 0.0);
        assert!((b.error_ratio(Duration::from_secs(60)) - FAILING_ERROR_RATIO).abs() < 1e-9);
        assert_eq!(
            Behaviour::Slow.error_ratio(Duration::from_secs(60)),
            HEALTHY_ERROR_RATIO
        );
    }

    #[test]
    fn slow_latency_is_400_to_800_ms_when_degraded() {
        // Seeded and large: the p95 of a random sample must not make the
        // test flaky (2000 draws once gave 0.544).
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261122);
        let mut v: Vec<Duration> = (0..20_000)
            .map(|_| Behaviour::Slow.sample_latency(&mut rng, Duration::from_secs(10)))
            .collect();
        v.sort();
        assert!(v[0] >= Duration::from_millis(400) && v[19_999] <= Duration::from_millis(800));
        let p95 = v[19_000].as_secs_f64();
        assert!((0.55..0.65).contains(&p95), "p95 {p95}");
        for _ in 0..200 {
            let l = Behaviour::Healthy.sample_latency(&mut rng, Duration::from_secs(10));
            assert!(l >= Duration::from_millis(10) && l <= Duration::from_millis(30));
        }
    }

    #[test]
    fn weight_parsing() {
        let q = |v: &str| HashMap::from([("weight".to_string(), v.to_string())]);
        assert_eq!(parse_weight(&q("0")), Ok(0));
        assert_eq!(parse_weight(&q("100")), Ok(100));
        assert!(parse_weight(&q("101")).is_err());
        assert!(parse_weight(&q("-1")).is_err());
        assert!(parse_weight(&q("abc")).is_err());
        assert!(parse_weight(&HashMap::new()).is_err());
    }
}
