//! Bad input gets a clear error and loses nothing: the binary against broken
//! configs and lying or silent sources.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

const BASE: &str = r#"service = "checkout"

[environment]
name = "staging"

[[sources.health]]
name = "canary"
url = "HEALTH_URL"
timeout = "1s"

[actions.traffic]
argv = ["true", "{weight}"]

[plans.canary]
[[plans.canary.steps]]
kind = "traffic"
weight = 5

[[rollback]]
kind = "traffic"
weight = 0
"#;

fn config(dir: &Path, text: &str) -> String {
    write_config(dir, text).to_str().unwrap().to_string()
}

fn check(cfg: &str) -> Run {
    run(&["check", "--config", cfg], &[], Duration::from_secs(30))
}

/// A server answering every request with `response` (raw HTTP).
fn serve(response: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
    format!("http://{addr}")
}

/// A server that accepts connections and never answers.
fn silent() -> (String, std::sync::mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        loop {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            if rx.try_recv().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (format!("http://{addr}"), tx)
}

const OK_HEALTH: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const HTML: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 38\r\nConnection: close\r\n\r\n<html><body>Please log in</body></html>";

#[test]
fn malformed_toml_exits_1_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &BASE.replace("name = \"staging\"", "name = \"staging"),
    );
    let r = check(&cfg);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("{cfg}:4:")), "{}", r.stderr);
    assert!(r.stderr.contains("TOML syntax error"), "{}", r.stderr);
}

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &BASE.replace("timeout = \"1s\"", "timeuot = \"1s\""),
    );
    let r = check(&cfg);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(&format!("{cfg}:9:1: unknown key `timeuot`")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `timeout`?"), "{}", r.stderr);
}

#[test]
fn unknown_step_kind_lists_the_valid_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &BASE.replace(
            "kind = \"traffic\"\nweight = 5",
            "kind = \"shift\"\nweight = 5",
        ),
    );
    let r = run(
        &["run", "--headless", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown value `shift`"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("action, traffic, health, analysis, approval, pause"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
}

#[test]
fn missing_config_file_is_named() {
    let r = check("/nonexistent/dir/rolldeck.toml");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("/nonexistent/dir/rolldeck.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_reports_every_source_and_command_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let health = serve(OK_HEALTH);
    let text = BASE
        .replace("HEALTH_URL", &format!("{health}/health"))
        .replace(
            "[plans.canary]",
            "[actions.page]\nargv = [\"no-such-binary-rolldeck-test\", \"x\"]\n\n[plans.canary]",
        );
    let cfg = config(dir.path(), &text);
    let r = check(&cfg);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let line = |src: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(src))
            .unwrap_or_else(|| panic!("no line for {src}:\n{}", r.stdout))
            .to_string()
    };
    assert!(line("health:canary").starts_with("ok"), "{}", r.stdout);
    assert!(line("action:traffic").starts_with("ok"), "{}", r.stdout);
    let page = line("action:page");
    assert!(page.starts_with("down"), "{page}");
    assert!(
        page.contains("command not found: no-such-binary-rolldeck-test"),
        "{page}"
    );
}

#[test]
fn health_endpoint_that_never_answers_is_down_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (url, stop) = silent();
    let cfg = config(
        dir.path(),
        &BASE.replace("HEALTH_URL", &format!("{url}/health")),
    );
    let r = check(&cfg);
    stop.send(()).ok();
    assert_eq!(r.code, 1);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("health:canary"))
        .unwrap()
        .to_string();
    assert!(line.starts_with("down"), "{line}");
    assert!(line.contains("no answer within 1s"), "{line}");
}

#[test]
fn prometheus_url_answering_html_is_down_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let fake = serve(HTML);
    let health = serve(OK_HEALTH);
    let text = BASE.replace("HEALTH_URL", &format!("{health}/health")).replace(
        "[[sources.health]]",
        &format!(
            "[sources.prometheus]\nurl = \"{fake}\"\ntimeout = \"2s\"\n\n[[checks]]\nname = \"errors\"\nquery = 'sum(rate(x{{track=\"{{track}}\"}}[1m]))'\nmax = 0.1\n\n[[sources.health]]"
        ),
    );
    let cfg = config(dir.path(), &text);
    let r = check(&cfg);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("prometheus"))
        .unwrap()
        .to_string();
    assert!(line.starts_with("down"), "{line}");
    assert!(line.contains("not from the Prometheus API"), "{line}");
    assert!(line.contains("text/html"), "{line}");

    let snap = run(
        &["snapshot", "--json", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    let v: serde_json::Value = serde_json::from_str(snap.stdout.trim()).unwrap();
    let err = v["checks"][0]["canary"]["error"].as_str().unwrap();
    assert!(err.contains("not from the Prometheus API"), "{v}");
}

#[test]
fn promql_syntax_error_shows_prometheus_message() {
    let _g = heavy();
    let Some(bin) = prometheus_or_skip("promql_syntax_error_shows_prometheus_message") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prom = rt
        .block_on(rolldeck::demo::prometheus::PrometheusServer::start(
            &bin,
            &[],
        ))
        .expect("start prometheus");
    let dir = tempfile::tempdir().unwrap();
    let health = serve(OK_HEALTH);
    let text = BASE.replace("HEALTH_URL", &format!("{health}/health")).replace(
        "[[sources.health]]",
        &format!(
            "[sources.prometheus]\nurl = \"{}\"\n\n[[checks]]\nname = \"broken\"\nquery = 'sum(rate(x{{track=\"{{track}}\"}}[1m])'\nmax = 0.1\n\n[[sources.health]]",
            prom.url
        ),
    );
    let cfg = config(dir.path(), &text);
    let snap = run(
        &["snapshot", "--json", "--config", &cfg],
        &[],
        Duration::from_secs(30),
    );
    let v: serde_json::Value = serde_json::from_str(snap.stdout.trim()).unwrap();
    let err = v["checks"][0]["canary"]["error"].as_str().unwrap();
    assert!(err.contains("Prometheus error (bad_data)"), "{err}");
    assert!(err.contains("parse error"), "{err}");
    // The source itself is fine.
    let src = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "prometheus")
        .unwrap();
    assert_eq!(src["ok"], true, "{v}");
    rt.block_on(prom.stop());
}

/// A "Prometheus" whose error message carries terminal control sequences.
fn hostile() -> &'static str {
    let body =
        r#"{"status":"error","errorType":"bad_data","error":"x\u001b[2J\u001b]0;pwned\u0007y"}"#;
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Box::leak(resp.into_boxed_str())
}

#[test]
fn control_sequences_from_a_source_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let fake = serve(hostile());
    let health = serve(OK_HEALTH);
    let text = BASE
        .replace("HEALTH_URL", &format!("{health}/health"))
        .replace(
            "[[sources.health]]",
            &format!(
                "state_dir = \"{}\"\n[sources.prometheus]\nurl = \"{fake}\"\n\n[[checks]]\nname = \"errors\"\nquery = 'sum(x{{track=\"{{track}}\"}})'\nmax = 0.1\ninterval = \"1s\"\ninconclusive_limit = 2\n\n[[sources.health]]",
                dir.path().join("state").display()
            ),
        )
        .replace(
            "[plans.canary]\n[[plans.canary.steps]]\nkind = \"traffic\"\nweight = 5",
            "[plans.canary]\n[[plans.canary.steps]]\nkind = \"analysis\"\nduration = \"10s\"",
        );
    // `state_dir` must be top-level: move it before the first table.
    let text = {
        let (line, rest) = text
            .split_once("state_dir = ")
            .map(|(a, b)| {
                (
                    b.lines().next().unwrap().to_string(),
                    a.to_string() + b.split_once('\n').unwrap().1,
                )
            })
            .unwrap();
        format!("state_dir = {line}\n{rest}")
    };
    let cfg = config(dir.path(), &text);
    // The hostile Prometheus fails the preflight too: --force starts anyway.
    let r = run(
        &[
            "run",
            "--headless",
            "--force",
            "--exit-on-pause",
            "--config",
            &cfg,
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Prometheus error (bad_data): xy"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("\\u001b") && !r.stdout.contains('\u{1b}'),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("\\u0007"), "{}", r.stdout);
}
