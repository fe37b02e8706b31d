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
fn promql_syntax_error_is_refused_at_load_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let text = BASE.replace("HEALTH_URL", "http://127.0.0.1:1/health").replace(
        "[[sources.health]]",
        "[sources.prometheus]\nurl = \"http://127.0.0.1:1\"\n\n[[checks]]\nname = \"broken\"\nquery = 'sum(rate(x{track=\"{track}\"}[1m])'\nmax = 0.1\n\n[[sources.health]]",
    );
    let cfg = config(dir.path(), &text);
    for args in [
        vec!["check", "--config", &cfg],
        vec!["snapshot", "--json", "--config", &cfg],
    ] {
        let r = run(&args, &[], Duration::from_secs(30));
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{cfg}:11:9: checks[0].query: not valid PromQL")),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "nothing probed: {}", r.stdout);
    }
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

/// BASE with a state dir in `dir` and the plan replaced by `steps` (TOML).
fn release_config(dir: &Path, actions: &str, steps: &str) -> String {
    let text = format!(
        "state_dir = \"{}\"\n{}",
        dir.join("state").display(),
        BASE.replace("HEALTH_URL", "http://127.0.0.1:1/health")
    );
    let (head, _) = text.split_once("[plans.canary]").unwrap();
    config(
        dir,
        &format!(
            "{head}{actions}\n[plans.canary]\n{steps}\n[[rollback]]\nkind = \"traffic\"\nweight = 0\n"
        ),
    )
}

#[test]
fn hostile_release_version_is_refused_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let cfg = release_config(
        dir.path(),
        "[actions.deploy]\nargv = [\"sh\", \"-c\", \"echo deploying {version}\"]\n",
        "[[plans.canary.steps]]\nkind = \"action\"\naction = \"deploy\"\n",
    );
    let hostile = format!("1.0;touch {}", pwned.display());
    let r = run(
        &[
            "run",
            "--headless",
            "--config",
            &cfg,
            "--release-version",
            &hostile,
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--release-version"), "{}", r.stderr);
    assert!(r.stderr.contains("is not a version"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(!pwned.exists(), "the injected command ran");
}

#[test]
fn a_value_in_an_sh_c_argv_script_is_quoted_end_to_end() {
    // Step names reach `{step}` unvalidated: the script quotes them.
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let cfg = release_config(
        dir.path(),
        "[actions.deploy]\nargv = [\"sh\", \"-c\", \"echo step {step}\"]\n",
        &format!(
            "[[plans.canary.steps]]\nkind = \"action\"\naction = \"deploy\"\nname = 'x;touch {};echo'\n",
            pwned.display()
        ),
    );
    let r = run(
        &["run", "--headless", "--config", &cfg],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!pwned.exists(), "the injected command ran");
    assert!(
        r.stdout
            .contains(&format!("step x;touch {};echo", pwned.display())),
        "{}",
        r.stdout
    );
}

#[test]
fn zero_interval_is_refused_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &BASE
            .replace("HEALTH_URL", "http://127.0.0.1:1/health")
            .replace("timeout = \"1s\"", "timeout = \"1s\"\ninterval = \"0s\""),
    );
    let r = check(&cfg);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{cfg}:10:12: sources.health[0].interval: 0s is shorter than the minimum interval of 1s"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn overflowing_pause_is_refused_before_anything_runs() {
    for huge in ["8000y", "18446744073709551615s"] {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let cfg = release_config(
            dir.path(),
            &format!(
                "[actions.mark]\nargv = [\"touch\", \"{}\"]\n",
                marker.display()
            ),
            &format!(
                "[[plans.canary.steps]]\nkind = \"pause\"\nduration = \"{huge}\"\n\n[[plans.canary.steps]]\nkind = \"action\"\naction = \"mark\"\n"
            ),
        );
        let text = std::fs::read_to_string(&cfg).unwrap();
        let line = text.lines().position(|l| l.contains(huge)).unwrap() + 1;
        let r = run(
            &["run", "--headless", "--config", &cfg],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{cfg}:{line}:12: plans.canary.steps[0].duration:")),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("longer than the limit of 30 days"),
            "{}",
            r.stderr
        );
        assert!(!marker.exists(), "the step after the pause ran");
    }
}

#[test]
fn plain_env_values_are_not_secrets_but_secret_references_are() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = release_config(
        dir.path(),
        "[actions.show]\nargv = [\"echo\", \"ns=${env:ROLLDECK_T_NAMESPACE}\", \"key=${secret:env:ROLLDECK_T_DEPLOY}\"]\n",
        "[[plans.canary.steps]]\nkind = \"action\"\naction = \"show\"\nname = \"default\"\n",
    );
    let r = run(
        &["run", "--headless", "--config", &cfg],
        &[
            ("ROLLDECK_T_NAMESPACE", "default"),
            ("ROLLDECK_T_DEPLOY", "hush-hush-42"),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // `default` (plan step name and the namespace) is shown as is …
    assert!(r.stdout.contains("ns=default"), "{}", r.stdout);
    assert!(r.stdout.contains("\"default\""), "{}", r.stdout);
    // … and the secret never appears.
    assert!(r.stdout.contains("key=***"), "{}", r.stdout);
    assert!(!r.stdout.contains("hush-hush-42"), "{}", r.stdout);
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let cfg = config(
        dir.path(),
        &BASE.replace("HEALTH_URL", "http://127.0.0.1:1/health"),
    );
    for cmd in ["status", "history"] {
        let r = run(
            &[cmd, "--config", &cfg, "--state-dir", file.to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.matches("(os error").count(), 1, "{}", r.stderr);
    }
}

#[test]
fn usage_errors_exit_1_not_the_rollback_failed_code() {
    let r = run(&["run", "--no-such-flag"], &[], Duration::from_secs(30));
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn an_overflowing_deadline_never_reads_as_elapsed() {
    // The engine alone (the loader refuses such a duration): a pause whose
    // end overflows the calendar waits forever instead of passing at once.
    use rolldeck::release::{Event, Plan, Release, StepStatus};
    let dir = tempfile::tempdir().unwrap();
    let text = BASE
        .replace("HEALTH_URL", "http://127.0.0.1:1/health")
        .replace(
            "kind = \"traffic\"\nweight = 5",
            "kind = \"pause\"\nduration = \"1s\"",
        );
    let mut cfg = rolldeck::config::parse(&text, &dir.path().join("x.toml")).unwrap();
    cfg.plans.get_mut("canary").unwrap().steps[0].duration = Some(Duration::from_secs(u64::MAX));
    let plan = Plan::from_config(&cfg, None).unwrap();
    let now = jiff::Timestamp::now();
    let start = Event::Start {
        id: "r1".into(),
        service: "checkout".into(),
        environment: "staging".into(),
        version: None,
        plan: Box::new(plan),
    };
    let (mut r, _) = Release::start(&start, now).unwrap();
    for later in [1i64, 3600, 10 * 365 * 86400] {
        r.apply(&Event::Tick, now + jiff::SignedDuration::from_secs(later));
        assert_eq!(r.steps[0].status, StepStatus::Running, "after {later}s");
        assert!(!r.is_finished());
    }
}

#[test]
fn check_warns_when_an_analysis_step_is_shorter_than_a_window_and_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let health = serve(OK_HEALTH);
    let text = BASE
        .replace("HEALTH_URL", &format!("{health}/health"))
        .replace(
            "[plans.canary]",
            r#"[sources.prometheus]
url = "http://127.0.0.1:9"

[[checks]]
name = "error-rate"
query = 'sum(rate(errors{track="{track}"}[5m]))'
window = "5m"
interval = "30s"
min_samples = 2
max = 0.05

[plans.canary]"#,
        )
        .replace(
            "weight = 5\n",
            "weight = 5\n\n[[plans.canary.steps]]\nkind = \"analysis\"\nduration = \"2m\"\n",
        );
    let cfg = config(dir.path(), &text);
    let r = check(&cfg);
    let warning = r
        .stdout
        .lines()
        .find(|l| l.starts_with("warning: plan `canary` step 2"))
        .unwrap_or_else(|| panic!("no warning:\n{}\n{}", r.stdout, r.stderr));
    assert!(
        warning.contains(
            "analysis 2m is shorter than check `error-rate`'s window 5m + 2 × interval 30s = 6m"
        ),
        "{warning}"
    );
}
