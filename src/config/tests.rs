use super::*;

const GOOD: &str = r#"
service = "checkout"

[environment]
name = "production"
protected = true

[sources.prometheus]
url = "http://127.0.0.1:9090"
timeout = "3s"

[[sources.health]]
name = "canary"
url = "http://127.0.0.1:8081/health"

[[checks]]
name = "error-rate"
kind = "error_rate"
metric = "http_requests_total"
error_matcher = 'code=~"5.."'
max = 0.05
for = "1m"

[actions.traffic]
argv = ["kubectl", "set-weight", "{weight}"]
timeout = "30s"

[plans.canary]
[[plans.canary.steps]]
kind = "traffic"
weight = 5

[[plans.canary.steps]]
kind = "analysis"
duration = "5m"

[[rollback]]
kind = "traffic"
weight = 0
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, Path::new("rolldeck.toml")) {
        Err(LoadError::Invalid(e)) => e,
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(_) => panic!("config unexpectedly valid"),
    }
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

fn one(text: &str) -> ConfigError {
    let e = errors(text);
    assert!(!e.is_empty());
    e[0].clone()
}

#[test]
fn a_good_config_loads_with_durations() {
    let c = parse(GOOD, Path::new("x.toml")).unwrap();
    assert_eq!(c.service, "checkout");
    assert!(c.environment.protected);
    assert_eq!(c.checks[0].for_, std::time::Duration::from_secs(60));
    assert_eq!(
        c.sources.prometheus.as_ref().unwrap().timeout,
        std::time::Duration::from_secs(3)
    );
    let (name, plan) = c.plan(None).unwrap();
    assert_eq!(name, "canary");
    assert_eq!(plan.steps.len(), 2);
}

#[test]
fn malformed_toml_names_line_and_column() {
    let text = GOOD.replace("protected = true", "protected = = true");
    let e = one(&text);
    assert_eq!(e.line, line_of(&text, "= = true"), "{e}");
    assert!(e.col >= 12, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("rolldeck.toml:{}:", e.line)),
        "{e}"
    );
    assert!(e.message.contains("TOML syntax error"), "{e}");
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let text = GOOD.replace("timeout = \"3s\"", "timout = \"3s\"");
    let e = one(&text);
    assert_eq!((e.line, e.col), (line_of(&text, "timout"), 1), "{e}");
    assert!(e.message.contains("unknown key `timout`"), "{e}");
    assert_eq!(e.help.as_deref(), Some("did you mean `timeout`?"));
}

#[test]
fn unknown_step_kind_lists_valid_kinds() {
    let text = GOOD.replace("kind = \"analysis\"", "kind = \"canary-analysis\"");
    let e = one(&text);
    assert!(e.message.contains("unknown value `canary-analysis`"), "{e}");
    for k in [
        "action", "traffic", "health", "analysis", "approval", "pause",
    ] {
        assert!(e.message.contains(k), "{e}");
    }
    assert_eq!(e.help.as_deref(), Some("did you mean `analysis`?"));
    assert_eq!(e.line, line_of(&text, "canary-analysis"), "{e}");
}

#[test]
fn wrong_type_and_bad_duration() {
    let text = GOOD.replace("protected = true", "protected = \"yes\"");
    let e = one(&text);
    assert_eq!(e.line, line_of(&text, "\"yes\""));
    assert!(
        e.message.contains("expected a boolean") || e.message.contains("invalid type"),
        "{e}"
    );
    let text = GOOD.replace("duration = \"5m\"", "duration = \"5 minutes please\"");
    let e = one(&text);
    assert_eq!(e.line, line_of(&text, "please"), "{e}");
}

#[test]
fn semantic_errors_are_located_and_suggest() {
    let text = GOOD.replace(
        "kind = \"traffic\"\nweight = 5",
        "kind = \"action\"\naction = \"trafic\"",
    );
    let e = one(&text);
    assert!(e.message.contains("unknown action `trafic`"), "{e}");
    assert_eq!(e.help.as_deref(), Some("did you mean `traffic`?"));
    assert_eq!(e.line, line_of(&text, "trafic"), "{e}");

    let text = GOOD.replace("weight = 5", "weight = 150");
    let e = one(&text);
    assert!(e.message.contains("150 is not a percentage"), "{e}");
    assert_eq!(e.line, line_of(&text, "150"), "{e}");
}

#[test]
fn check_without_condition_and_query_without_track() {
    let text = GOOD.replace("max = 0.05\n", "");
    let e = one(&text);
    assert!(e.message.contains("no condition"), "{e}");
    let text = GOOD.replace(
        "kind = \"error_rate\"\nmetric = \"http_requests_total\"\nerror_matcher = 'code=~\"5..\"'",
        "query = \"sum(rate(x[1m]))\"",
    );
    let e = one(&text);
    assert!(e.message.contains("no {track} placeholder"), "{e}");
}

#[test]
fn secrets_resolve_and_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "file-secret-123\n").unwrap();
    let text = GOOD.replace(
        "timeout = \"3s\"",
        &format!(
            "timeout = \"3s\"\nbearer_token = \"${{file:{}}}\"",
            f.display()
        ),
    );
    let c = parse(&text, Path::new("x.toml")).unwrap();
    assert_eq!(
        c.sources
            .prometheus
            .as_ref()
            .unwrap()
            .bearer_token
            .as_deref(),
        Some("file-secret-123")
    );
    assert_eq!(c.secrets, vec!["file-secret-123".to_string()]);

    let text = GOOD.replace(
        "timeout = \"3s\"",
        "timeout = \"3s\"\nbearer_token = \"${env:ROLLDECK_TEST_SURELY_UNSET_VAR}\"",
    );
    let e = one(&text);
    assert!(e.message.contains("ROLLDECK_TEST_SURELY_UNSET_VAR"), "{e}");
    assert_eq!(e.line, line_of(&text, "SURELY_UNSET"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let err = load(Path::new("/nonexistent/rolldeck.toml")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/rolldeck.toml"),
        "{err}"
    );
}

#[test]
fn resolve_secrets_syntax() {
    let mut s = Vec::new();
    assert_eq!(resolve_secrets("plain", &mut s).unwrap(), "plain");
    assert!(
        resolve_secrets("${vault:x}", &mut s)
            .unwrap_err()
            .contains("unknown reference")
    );
    assert!(
        resolve_secrets("${env:X", &mut s)
            .unwrap_err()
            .contains("unterminated")
    );
    assert!(s.is_empty());
}

#[test]
fn suggestions() {
    assert_eq!(
        suggest("promethus", ["prometheus", "scrape", "health"]),
        Some("prometheus")
    );
    assert_eq!(suggest("zzz", ["prometheus"]), None);
    // Typos beat substrings; substrings still help when nothing is close.
    assert_eq!(suggest("rolback", ["back", "rollback"]), Some("rollback"));
    assert_eq!(
        suggest("canary-analysis", ["action", "analysis", "approval"]),
        Some("analysis")
    );
}
