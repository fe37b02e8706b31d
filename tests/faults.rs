//! Lying, broken and endless sources: real TCP fault servers on 127.0.0.1
//! free ports, started by each test, against the real source code
//! (`Sources`) and the built binary. Evidence that is cut short, not 2xx,
//! out of its domain or endless is never a pass and never exhausts memory.

mod common;

use common::*;
use rolldeck::release::VerdictKind;
use rolldeck::release::analysis::{CheckRun, judge};
use rolldeck::sources::Sources;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a fault server does with one connection, given the request's
/// decoded path and query (`/api/v1/query?query=…`).
type Handler = dyn Fn(&str, &mut TcpStream) + Send + Sync;

/// Starts a fault server on a free port; each connection is served by
/// `handler` on its own thread. Returns `http://127.0.0.1:PORT`.
fn fault_server(handler: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handler: Arc<Handler> = Arc::new(handler);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let h = handler.clone();
            std::thread::spawn(move || {
                let target = read_request(&mut s);
                h(&target, &mut s);
            });
        }
    });
    format!("http://{addr}")
}

/// Reads a request's head; returns its target, percent-decoded.
fn read_request(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    decode(target)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn vector(v: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1800000000,"{v}"]}}]}}}}"#
    )
}

/// Holds fault-server connections open past every timeout in these tests.
fn hang() {
    std::thread::sleep(Duration::from_secs(30));
}

/// A config around `sources` (TOML for `[sources…]`, `[[checks]]`) with a
/// minimal plan, parsed and validated like `rolldeck` does.
fn config(dir: &Path, sources: &str) -> rolldeck::config::Config {
    let text = format!(
        r#"service = "checkout"
state_dir = "{}"

[environment]
name = "staging"

{sources}

[actions.noop]
argv = ["true"]

[plans.p]
[[plans.p.steps]]
kind = "action"
action = "noop"
"#,
        dir.join("state").display()
    );
    let path = write_config(dir, &text);
    rolldeck::config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn health_sources(url: &str, timeout: &str, extra: &str) -> String {
    format!(
        "[[sources.health]]\nname = \"canary\"\nurl = \"{url}/health\"\ntimeout = \"{timeout}\"\n{extra}"
    )
}

#[test]
fn health_body_cut_short_before_its_content_length_is_a_failed_probe() {
    let url = fault_server(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0123456789",
        );
        // Close: 990 bytes never come.
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &health_sources(&url, "1s", ""));
    let r = rt().block_on(Sources::new(&cfg).probe_health("canary"));
    let e = r.expect_err("a body cut short is not healthy");
    assert!(e.contains("HTTP 200, body unreadable"), "{e}");
    assert!(e.contains("cut short after 10 bytes"), "{e}");
}

#[test]
fn health_body_hanging_past_the_timeout_is_a_failed_probe() {
    let url = fault_server(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
        let _ = s.flush();
        hang();
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &health_sources(&url, "1s", ""));
    let start = Instant::now();
    let r = rt().block_on(Sources::new(&cfg).probe_health("canary"));
    let e = r.expect_err("a hanging body is not healthy");
    assert!(e.contains("HTTP 200, body unreadable"), "{e}");
    assert!(
        e.contains("not complete within 1s") || e.contains("no answer within 1s"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn endless_health_body_stops_at_its_cap() {
    let url = fault_server(endless);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &health_sources(&url, "20s", ""));
    let e = rt()
        .block_on(Sources::new(&cfg).probe_health("canary"))
        .expect_err("an endless body is not healthy");
    assert!(e.contains("answer larger than 1 MB cap"), "{e}");
}

/// Answers 200 with no Content-Length and streams forever (until the
/// client goes away).
fn endless(_: &str, s: &mut TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[");
    let chunk = "{\"metric\":{},\"value\":[1,\"0\"]},".repeat(2000);
    while s.write_all(chunk.as_bytes()).is_ok() {}
}

fn prom_sources(url: &str, extra: &str) -> String {
    format!(
        r#"[sources.prometheus]
url = "{url}"
timeout = "20s"
{extra}
[[checks]]
name = "errors"
kind = "error_rate"
metric = "http_requests_total"
error_matcher = 'code=~"5.."'
max = 0.05
"#
    )
}

#[test]
fn prometheus_answering_500_with_a_success_body_is_an_error_not_a_pass() {
    for status in ["500 Internal Server Error", "503 Service Unavailable"] {
        let url = fault_server(move |_, s| {
            respond(s, status, "application/json", &vector("0"));
        });
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &prom_sources(&url, ""));
        let sources = Sources::new(&cfg);
        let rt = rt();
        let m = rt.block_on(sources.measure("errors"));
        let e = m.canary.clone().expect_err("HTTP 5xx is no reading");
        assert!(e.contains(&format!("HTTP {}", &status[..3])), "{e}");
        assert!(e.contains("not trusted"), "{e}");
        let def = rolldeck::release::plan::check_def(&cfg.checks[0]);
        let (v, _) = judge(&def, &m, &CheckRun::default(), jiff::Timestamp::now());
        assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
        // And the source shows as down.
        let st = rt.block_on(sources.status_all());
        let p = st.iter().find(|s| s.source == "prometheus").unwrap();
        assert!(!p.ok, "{p:?}");
    }
}

#[test]
fn prometheus_answering_values_outside_the_domain_is_inconclusive() {
    // -5 for an error ratio, 3 (> 1), and a negative request count.
    for (value, requests, why) in [
        ("-5", "1000", "value -5 is outside the domain of a ratio"),
        ("3", "1000", "value 3 is outside the domain of a ratio"),
        ("0", "-1000", "request count -1000 is impossible"),
    ] {
        let url = fault_server(move |q, s| {
            let v = if q.contains("increase(") {
                requests
            } else {
                value
            };
            respond(s, "200 OK", "application/json", &vector(v));
        });
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &prom_sources(&url, ""));
        let m = rt().block_on(Sources::new(&cfg).measure("errors"));
        let def = rolldeck::release::plan::check_def(&cfg.checks[0]);
        let (v, run) = judge(&def, &m, &CheckRun::default(), jiff::Timestamp::now());
        assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains(why), "{}", v.reason);
        assert_eq!(run.passes, 0);
    }
}

#[test]
fn endless_prometheus_answer_errors_with_the_cap_not_oom() {
    let url = fault_server(endless);
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    // The default cap (10 MB), and a configured one.
    for (extra, cap) in [("", "10 MB"), ("max_body_bytes = 50_000", "50 kB")] {
        let cfg = config(dir.path(), &prom_sources(&url, extra));
        let start = Instant::now();
        let m = rt.block_on(Sources::new(&cfg).measure("errors"));
        let e = m.canary.expect_err("an endless answer is no reading");
        assert!(e.contains(&format!("answer larger than {cap} cap")), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn declared_oversized_answer_is_refused_before_reading() {
    let url = fault_server(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{",
        );
        hang();
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &prom_sources(&url, ""));
    let m = rt().block_on(Sources::new(&cfg).measure("errors"));
    let e = m.canary.expect_err("too large");
    assert!(
        e.contains("answer larger than 10 MB cap (Content-Length 20000000)"),
        "{e}"
    );
}

#[test]
fn endless_scrape_target_stops_at_its_cap() {
    let url = fault_server(|_, s| {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
        let line = "http_requests_total{code=\"200\"} 1\n".repeat(1000);
        while s.write_all(line.as_bytes()).is_ok() {}
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "[[sources.scrape]]\nname = \"canary\"\nurl = \"{url}/metrics\"\ntimeout = \"20s\"\nmax_body_bytes = 200_000\n"
        ),
    );
    let st = rt().block_on(Sources::new(&cfg).status_all());
    let s = st.iter().find(|s| s.source == "scrape:canary").unwrap();
    assert!(!s.ok, "{s:?}");
    assert!(s.detail.contains("answer larger than 200 kB cap"), "{s:?}");
}

#[test]
fn snapshot_json_against_an_endless_prometheus_ends_with_the_cap() {
    let url = fault_server(endless);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "service = \"checkout\"\n[environment]\nname = \"staging\"\n{}\n[actions.noop]\nargv = [\"true\"]\n[plans.p]\n[[plans.p.steps]]\nkind = \"action\"\naction = \"noop\"\n",
        prom_sources(&url, "max_body_bytes = 1_000_000")
    );
    let cfg = write_config(dir.path(), &text);
    let r = run(
        &["snapshot", "--json", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    let err = v["checks"][0]["canary"]["error"].as_str().unwrap();
    assert!(err.contains("answer larger than 1 MB cap"), "{v}");
}

/// A "Prometheus" for the built-in error-rate check: the canary answers
/// 50 % errors, the baseline none, 1000 requests each; anything else
/// (probes like `vector(1)`) answers 1.
fn zero_baseline_prometheus(q: &str, s: &mut TcpStream) {
    let v = if q.contains("increase(") {
        "1000"
    } else if q.contains("track=\"canary\"") {
        "0.5"
    } else if q.contains("track=\"stable\"") {
        "0"
    } else {
        "1"
    };
    respond(s, "200 OK", "application/json", &vector(v));
}

#[test]
fn zero_baseline_canary_with_half_errors_is_not_promoted() {
    let url = fault_server(zero_baseline_prometheus);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"service = "checkout"
state_dir = "{state}"

[environment]
name = "staging"

[sources.prometheus]
url = "{url}"

[[checks]]
name = "errors"
kind = "error_rate"
metric = "http_requests_total"
error_matcher = 'code=~"5.."'
max_ratio = 2
interval = "1s"
window = "1s"

[actions.traffic]
argv = ["true", "{{weight}}"]

[plans.canary]
[[plans.canary.steps]]
kind = "traffic"
weight = 5
[[plans.canary.steps]]
kind = "analysis"
duration = "6s"

[[rollback]]
kind = "traffic"
weight = 0
"#,
        state = dir.path().join("state").display()
    );
    let cfg = write_config(dir.path(), &text);
    // --exit-on-pause: a pause (not enough data) ends the run, and fails the
    // assertions below, instead of waiting for a human.
    let r = run(
        &[
            "run",
            "--headless",
            "--exit-on-pause",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(60),
    );
    let fin = r.finished();
    assert_ne!(fin["outcome"], "promoted", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(fin["outcome"], "rolled_back", "{}\n{}", r.stdout, r.stderr);
    assert_ne!(r.code, 0);
    let reason = fin["reason"].as_str().unwrap();
    assert!(reason.contains("against baseline 0"), "{reason}");
    assert!(
        !r.events()
            .iter()
            .any(|e| e["event"] == "verdict" && e["verdict"] == "pass"),
        "{}",
        r.stdout
    );
}

#[test]
fn config_rejects_unusable_caps_floors_and_units_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"service = "checkout"
[environment]
name = "staging"
[sources.prometheus]
url = "http://127.0.0.1:9"
max_body_bytes = 0
[[checks]]
name = "a"
kind = "error_rate"
metric = "m"
error_matcher = 'code=~"5.."'
max = 0.1
min_baseline = 0.01
unit = "seconds"
[[checks]]
name = "b"
query = 'x{track="{track}"}'
max_ratio = 2
min_baseline = -1
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "action"
action = "noop"
"#;
    let path = write_config(dir.path(), text);
    let e = rolldeck::config::parse(text, &path)
        .expect_err("invalid")
        .to_string();
    for want in [
        ":6:18: sources.prometheus.max_body_bytes: must be at least 1",
        ":13:16: checks[0].min_baseline: min_baseline is the floor of max_ratio's baseline",
        ":14:8: checks[0].unit: this built-in check measures in ratio",
        ":19:16: checks[1].min_baseline: must be more than 0",
    ] {
        assert!(e.contains(want), "{want:?} not in:\n{e}");
    }
}
