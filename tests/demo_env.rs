//! Integration tests of the embedded demo environment (real servers, real
//! load, optionally a real Prometheus).

use std::time::Duration;

use rolldeck::demo::{DemoEnv, Scenario, find_prometheus};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
}

/// Whether `ROLLDECK_TEST_REQUIRE` (a comma list) names `what`.
fn required(what: &str) -> bool {
    std::env::var("ROLLDECK_TEST_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim().eq_ignore_ascii_case(what))
}

/// `(ok, errors)` from the `http_requests_total` counters of a `/metrics`
/// text.
fn request_counts(metrics: &str) -> (f64, f64) {
    let mut ok = 0.0;
    let mut err = 0.0;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
    {
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        if line.contains(r#"code="200""#) {
            ok += value;
        } else if line.contains(r#"code="5"#) {
            err += value;
        }
    }
    (ok, err)
}

async fn scrape(client: &reqwest::Client, addr: std::net::SocketAddr) -> (f64, f64) {
    let resp = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{le="0.025"}"#),
        "{text}"
    );
    assert!(!text.contains("track="), "no track label expected: {text}");
    request_counts(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_canary_errors_while_stable_stays_healthy() {
    let env = DemoEnv::start(Scenario::Bad, None).await.unwrap();
    assert!(env.prometheus.is_none());
    assert_eq!(env.weight(), 0);
    let c = client();
    let control = format!("http://{}", env.control_addr);

    // Validation of the traffic endpoint.
    for bad in ["101", "-1", "abc", ""] {
        let resp = c
            .post(format!("{control}/traffic?weight={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "weight={bad}");
        assert!(resp.text().await.unwrap().contains("0–100"));
    }
    let resp = c.post(format!("{control}/traffic")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(env.weight(), 0);

    let resp = c
        .post(format!("{control}/traffic?weight=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "weight=50");
    assert_eq!(env.weight(), 50);
    let got = c.get(format!("{control}/traffic")).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), "weight=50");

    // The canary degrades 3 s after its first request and reaches ~10 %
    // errors 2 s later; measure the error ratio over the following 6 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (canary_ok0, canary_err0) = scrape(&c, env.canary_addr).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (canary_ok1, canary_err1) = scrape(&c, env.canary_addr).await;
    let (stable_ok, stable_err) = scrape(&c, env.stable_addr).await;

    let canary_total = (canary_ok1 - canary_ok0) + (canary_err1 - canary_err0);
    let canary_ratio = (canary_err1 - canary_err0) / canary_total;
    println!(
        "canary: {canary_ratio:.3} errors over {canary_total} requests; stable: {stable_err} of {}; sent {:?}",
        stable_ok + stable_err,
        env.requests_sent()
    );
    assert!(
        canary_total >= 100.0,
        "too few canary requests: {canary_total}"
    );
    assert!(
        (0.04..=0.20).contains(&canary_ratio),
        "canary error ratio {canary_ratio} ({} of {canary_total})",
        canary_err1 - canary_err0
    );
    let stable_total = stable_ok + stable_err;
    assert!(
        stable_total >= 100.0,
        "too few stable requests: {stable_total}"
    );
    assert!(
        stable_err / stable_total < 0.02,
        "stable error ratio {} ({stable_err} of {stable_total})",
        stable_err / stable_total
    );

    let (to_stable, to_canary) = env.requests_sent();
    let share = to_canary as f64 / (to_stable + to_canary) as f64;
    assert!(to_stable + to_canary > 500, "sent {to_stable}+{to_canary}");
    assert!((0.25..0.65).contains(&share), "canary share {share}");

    // Rollback sets the weight to 0.
    let resp = c.post(format!("{control}/rollback")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.weight(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, canary_before) = env.requests_sent();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.requests_sent().1,
        canary_before,
        "no canary traffic after rollback"
    );

    let health = c
        .get(format!("http://{}/health", env.canary_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    let canary_addr = env.canary_addr;
    env.stop().await;
    assert!(
        c.get(format!("http://{canary_addr}/health"))
            .send()
            .await
            .is_err(),
        "the canary still answers after stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traffic_sends_nothing() {
    let env = DemoEnv::start(Scenario::NoTraffic, None).await.unwrap();
    env.set_weight(50);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.requests_sent(), (0, 0));
    let (ok, err) = scrape(&client(), env.canary_addr).await;
    assert_eq!((ok, err), (0.0, 0.0));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_both_instances() {
    let Some(bin) = find_prometheus(None) else {
        assert!(
            !required("prometheus"),
            "prometheus not found on $PATH but ROLLDECK_TEST_REQUIRE requires it"
        );
        println!("skipped: prometheus not found");
        return;
    };
    let env = DemoEnv::start(Scenario::Good, Some(bin)).await.unwrap();
    let prom = env.prometheus.as_ref().expect("prometheus started");
    let pid = prom.pid().expect("prometheus pid");
    let dir = prom.dir().to_path_buf();
    assert!(dir.join("prometheus.yml").is_file());
    let query = format!("{}/api/v1/query?query=up", prom.url);
    let c = client();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    loop {
        if let Ok(resp) = c.get(&query).send().await
            && let Ok(v) = resp.json::<serde_json::Value>().await
        {
            let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
            let up: Vec<_> = result
                .iter()
                .filter(|s| s["value"][1] == "1")
                .filter_map(|s| s["metric"]["track"].as_str().map(str::to_string))
                .collect();
            if up.len() == 2
                && up.contains(&"stable".to_string())
                && up.contains(&"canary".to_string())
            {
                break;
            }
            last = v.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "prometheus did not report both targets up within 20 s; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    env.stop().await;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    assert!(!alive, "prometheus (pid {pid}) still running after stop");
    assert!(
        !dir.exists(),
        "prometheus temp dir {} not removed",
        dir.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_kill_now_and_drop_leave_nothing_behind() {
    let Some(bin) = find_prometheus(None) else {
        assert!(
            !required("prometheus"),
            "prometheus not found on $PATH but ROLLDECK_TEST_REQUIRE requires it"
        );
        println!("skipped: prometheus not found");
        return;
    };
    let mut prom = rolldeck::demo::prometheus::PrometheusServer::start(&bin, &[])
        .await
        .unwrap();
    let pid = prom.pid().unwrap();
    let url = prom.url.clone();
    prom.kill_now();
    assert_eq!(prom.pid(), None);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err());
    assert!(client().get(format!("{url}/-/ready")).send().await.is_err());

    // Dropping a running server kills it too.
    let prom = rolldeck::demo::prometheus::PrometheusServer::start(&bin, &[])
        .await
        .unwrap();
    let pid = prom.pid().unwrap();
    let dir = prom.dir().to_path_buf();
    drop(prom);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err());
    assert!(!dir.exists());
}
