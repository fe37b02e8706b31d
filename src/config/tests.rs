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
fn reference_syntax() {
    let mut s = Vec::new();
    let f = Field::default();
    assert_eq!(resolve("plain", f, &mut s).unwrap(), "plain");
    for (bad, says) in [
        ("${vault:x}", "unknown reference"),
        ("${env:X", "unclosed"),
        ("${env:}", "names no environment variable"),
        ("${file:}", "names no file"),
        ("${secret:env:}", "names no environment variable"),
        ("${env:A B}", "not an environment variable name"),
        ("${env:X ${env:Y}", "unclosed"),
        ("${HOME}", "unknown reference"),
    ] {
        let e = resolve(bad, f, &mut s).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
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

/// `GOOD` with `extra` appended (new tables at the end).
fn with(extra: &str) -> String {
    format!("{GOOD}\n{extra}\n")
}

/// The error whose message contains `needle`, asserting it sits on the line
/// of `line_needle`.
fn error_at(text: &str, needle: &str, line_needle: &str) -> ConfigError {
    let all = errors(text);
    let e = all
        .iter()
        .find(|e| e.message.contains(needle))
        .unwrap_or_else(|| panic!("no error with {needle:?} in {all:?}"))
        .clone();
    assert_eq!(e.line, line_of(text, line_needle), "{e}");
    assert!(e.col > 1, "the column points at the value: {e}");
    e
}

#[test]
fn overflowing_durations_are_refused_with_position() {
    for huge in ["8000y", "18446744073709551615s", "31days", "721h"] {
        let text = GOOD.replace("duration = \"5m\"", &format!("duration = \"{huge}\""));
        let e = error_at(&text, "longer than the limit of 30 days", huge);
        assert!(e.message.contains("plans.canary.steps[1].duration"), "{e}");
        let text = with(&format!(
            "[[plans.canary.steps]]\nkind = \"pause\"\nduration = \"{huge}\""
        ));
        error_at(&text, "longer than the limit of 30 days", huge);
    }
    // Every other duration key is bounded too.
    for (from, to) in [
        ("timeout = \"3s\"", "timeout = \"8000y\""),
        ("for = \"1m\"", "for = \"8000y\""),
        ("timeout = \"30s\"", "timeout = \"8000y\""),
        ("max = 0.05", "max = 0.05\nwindow = \"8000y\""),
    ] {
        let text = GOOD.replace(from, to);
        error_at(&text, "longer than the limit", "8000y");
    }
    // 30 days exactly is fine.
    let text = GOOD.replace("duration = \"5m\"", "duration = \"30days\"");
    parse(&text, Path::new("x.toml")).unwrap();
}

#[test]
fn zero_and_subsecond_intervals_are_refused_with_position() {
    let cases = [
        // health target
        (
            GOOD.replace(
                "url = \"http://127.0.0.1:8081/health\"",
                "url = \"http://127.0.0.1:8081/health\"\ninterval = \"0s\"",
            ),
            "interval = \"0s\"",
        ),
        // check
        (
            GOOD.replace("for = \"1m\"", "for = \"1m\"\ninterval = \"0s\""),
            "interval = \"0s\"",
        ),
        // scrape target
        (
            GOOD.replace(
                "[[sources.health]]",
                "[[sources.scrape]]\nname = \"s\"\nurl = \"http://127.0.0.1:1/metrics\"\ninterval = \"0s\"\n\n[[sources.health]]",
            ),
            "interval = \"0s\"",
        ),
        // trigger
        (
            with("[[rollback_when]]\nhealth = \"canary\"\n\n[[rollback_when]]\nquery = 'up{job=\"{track}\"}'\nmax = 1\ninterval = \"500ms\""),
            "interval = \"500ms\"",
        ),
    ];
    for (text, line) in cases {
        error_at(&text, "shorter than the minimum interval of 1s", line);
    }
    for (from, to) in [
        ("timeout = \"3s\"", "timeout = \"0s\""),
        ("timeout = \"30s\"", "timeout = \"0s\""),
    ] {
        let text = GOOD.replace(from, to);
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|e| e.message.contains("more than 0s")
                    || e.message.contains("longer than zero")),
            "{e:?}"
        );
    }
    let text =
        with("[[plans.canary.steps]]\nkind = \"health\"\ntargets = [\"canary\"]\ntimeout = \"0s\"");
    error_at(&text, "more than 0s", "timeout = \"0s\"");
}

#[test]
fn invalid_promql_is_refused_with_position() {
    let text = GOOD.replace(
        "kind = \"error_rate\"\nmetric = \"http_requests_total\"\nerror_matcher = 'code=~\"5..\"'",
        "query = 'sum(rate(x{track=\"{track}\"}[1m])'",
    );
    error_at(&text, "not valid PromQL", "sum(rate(x");
    // A trigger query too.
    let text = with("[[rollback_when]]\nquery = 'rate(x{track=\"{track}\"}[1m]) >'\nmax = 1");
    error_at(&text, "not valid PromQL", "[1m]) >'");
    // A metric name that makes the built-in query invalid.
    let text = GOOD.replace(
        "metric = \"http_requests_total\"",
        "metric = \"http requests\"",
    );
    error_at(&text, "not valid PromQL", "http requests");
    // Valid PromQL loads, with {track} substituted.
    let text =
        with("[[rollback_when]]\nquery = 'sum(rate(x{track=\"{track}\"}[1m])) > bool 0'\nmax = 1");
    parse(&text, Path::new("x.toml")).unwrap();
}

#[test]
fn unknown_reference_forms_are_refused_with_position() {
    for form in ["${env:}", "${vault:x}", "${env:X", "${secret:ssm:x}"] {
        let text = GOOD.replace(
            "argv = [\"kubectl\", \"set-weight\", \"{weight}\"]",
            &format!("argv = [\"kubectl\", \"set-weight\", \"{{weight}}\", \"{form}\"]"),
        );
        let e = error_at(&text, "argv[3]", form);
        assert!(
            e.message.contains("unknown reference")
                || e.message.contains("unclosed")
                || e.message.contains("names no"),
            "{e}"
        );
    }
    // A reference where none is resolved is an error, not literal text.
    let text = GOOD.replace(
        "metric = \"http_requests_total\"",
        "metric = \"${env:METRIC}\"",
    );
    error_at(&text, "only resolved in", "${env:METRIC}");
    let text = GOOD.replace("service = \"checkout\"", "service = \"${env:SVC}\"");
    error_at(&text, "only resolved in", "${env:SVC}");
}

#[test]
fn unclosed_placeholder_in_a_template_is_refused() {
    let text = GOOD.replace("\"{weight}\"]", "\"{weight\"]");
    error_at(&text, "placeholder `{weight` is not closed", "\"{weight\"]");
    // `{{weight` is a literal and `{print $1}` is not a placeholder.
    let text = GOOD.replace(
        "\"{weight}\"]",
        "\"{weight}\", \"{{weight\", \"{print $1}\"]",
    );
    parse(&text, Path::new("x.toml")).unwrap();
}

#[test]
fn header_values_with_cr_or_lf_are_refused() {
    let text = GOOD.replace(
        "url = \"http://127.0.0.1:8081/health\"",
        "url = \"http://127.0.0.1:8081/health\"\nheaders = { \"X-Probe\" = \"a\\r\\nX-Injected: 1\" }",
    );
    error_at(&text, "CR or LF", "X-Injected");
    let text = with(
        "[actions.hook]\nurl = \"http://127.0.0.1:1/x\"\nheaders = { \"X-Note\" = \"a\\nb\" }",
    );
    error_at(&text, "CR or LF", "X-Note");
    // A URL with a newline is refused, not silently cleaned.
    let text = GOOD.replace(
        "url = \"http://127.0.0.1:8081/health\"",
        "url = \"http://127.0.0.1:8081/he\\nalth\"",
    );
    error_at(&text, "control character", "he\\nalth");
}

#[test]
fn shell_scripts_in_argv_follow_the_shell_rules() {
    // Inside quotes, quoting cannot protect the value: refused at load.
    let text = with("[actions.deploy]\nargv = [\"sh\", \"-c\", \"echo 'deploying {version}'\"]");
    error_at(&text, "is a shell script", "argv = [\"sh\"");
    let text = with("[actions.deploy]\nargv = [\"python3\", \"-c\", \"print('{version}')\"]");
    error_at(&text, "code injection", "argv = [\"python3\"");
    // A plain word in the script is fine (its value is shell-quoted).
    let text = with("[actions.deploy]\nargv = [\"bash\", \"-ec\", \"echo deploying {version}\"]");
    parse(&text, Path::new("x.toml")).unwrap();
}

#[test]
fn the_version_is_a_version() {
    let text = GOOD.replace(
        "service = \"checkout\"",
        "service = \"checkout\"\nversion = '1.0\";touch /tmp/pwned;\"'",
    );
    error_at(&text, "is not a version", "version = ");
    let text = GOOD.replace(
        "service = \"checkout\"",
        "service = \"checkout\"\nversion = \"v2.4.1-rc.1+b5\"",
    );
    parse(&text, Path::new("x.toml")).unwrap();
}

#[test]
fn echoed_values_carry_no_control_characters() {
    let text = GOOD.replace(
        "timeout = \"3s\"",
        "timeout = \"3s\"\n\"evil\\u001b[2J\\u0007\" = 1",
    );
    let all = errors(&text);
    for e in &all {
        let shown = e.to_string();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("evil\\u{1b}[2J"), "{shown:?}");
    }
    let text = GOOD.replace(
        "weight = 5",
        "weight = 5\naction = \"tra\\u001b]0;x\\u0007ffic\"",
    );
    let shown = errors(&text)
        .iter()
        .map(|e| e.to_string())
        .collect::<String>();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
}

/// Writes `value` to a file named `name` in `dir`; returns its path.
fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    p.display().to_string()
}

#[test]
fn plain_references_are_not_secrets_but_secret_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let ns = secret_file(dir.path(), "namespace", "default");
    let text = GOOD.replace(
        "argv = [\"kubectl\", \"set-weight\", \"{weight}\"]",
        &format!("argv = [\"kubectl\", \"-n\", \"${{file:{ns}}}\", \"set-weight\", \"{{weight}}\", \"${{secret:file:{ns}}}x\"]"),
    );
    let c = parse(&text, Path::new("x.toml")).unwrap();
    assert_eq!(c.actions["traffic"].argv.as_ref().unwrap()[2], "default");
    // Only the `${secret:…}` use makes it a secret.
    assert_eq!(c.secrets, vec!["default".to_string()]);
    let text = GOOD.replace(
        "argv = [\"kubectl\", \"set-weight\", \"{weight}\"]",
        &format!(
            "argv = [\"kubectl\", \"-n\", \"${{file:{ns}}}\", \"set-weight\", \"{{weight}}\"]"
        ),
    );
    let c = parse(&text, Path::new("x.toml")).unwrap();
    assert!(c.secrets.is_empty(), "{:?}", c.secrets);
}

#[test]
fn values_secret_by_nature_are_secrets_whatever_the_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret_file(dir.path(), "plain-a", "plain-a-value");
    let b = secret_file(dir.path(), "plain-b", "plain-b-value");
    let tok = secret_file(dir.path(), "chat_token", "chat-token-value");
    let text = GOOD
        .replace(
            "url = \"http://127.0.0.1:9090\"",
            "url = \"http://prom:inline-pw@127.0.0.1:9090\"",
        )
        .replace(
            "url = \"http://127.0.0.1:8081/health\"",
            &format!("url = \"http://127.0.0.1:8081/health?region=eu&token=${{file:{a}}}&sig=a%2Fb\"\nheaders = {{ Authorization = \"Bearer inline-bearer\", \"X-Probe\" = \"rolldeck\", \"X-Api-Key\" = \"${{file:{b}}}\" }}"),
        )
        .replace(
            "timeout = \"30s\"",
            &format!("timeout = \"30s\"\nenv = {{ PGPASSWORD = \"inline-db-pw\", MODE = \"fast\", NOTE = \"${{file:{tok}}}\" }}"),
        );
    let c = parse(&text, Path::new("x.toml")).unwrap();
    for s in [
        "inline-pw",
        "plain-a-value",
        "a%2Fb",
        "a/b",
        "Bearer inline-bearer",
        "inline-bearer",
        "plain-b-value",
        "inline-db-pw",
        "chat-token-value",
    ] {
        assert!(c.secrets.contains(&s.to_string()), "{s} in {:?}", c.secrets);
    }
    for s in ["eu", "rolldeck", "fast", "prom", "default"] {
        assert!(
            !c.secrets.contains(&s.to_string()),
            "{s} in {:?}",
            c.secrets
        );
    }
}

/// Every error of `text` points into the text: a line that exists and a
/// column within it (or one past its end).
fn assert_positioned(text: &str, e: &LoadError) {
    let LoadError::Invalid(all) = e else {
        panic!("parse gives only Invalid errors: {e}");
    };
    assert!(!all.is_empty());
    let lines: Vec<&str> = text.split('\n').collect();
    for err in all {
        assert!(
            err.line >= 1 && err.line <= lines.len(),
            "{err} in {text:?}"
        );
        let len = lines[err.line - 1].chars().count();
        assert!(err.col >= 1 && err.col <= len + 1, "{err} in {text:?}");
        assert!(
            !err.to_string().chars().any(|c| c.is_control() && c != '\n'),
            "{err:?}"
        );
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// The keys of `GOOD` holding a duration, as they appear.
    const DURATION_LINES: &[&str] = &[
        "timeout = \"3s\"",
        "for = \"1m\"",
        "timeout = \"30s\"",
        "duration = \"5m\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_text_never_panics_and_errors_are_positioned(text in "[\\s\\S]{0,300}") {
            if let Err(e) = parse(&text, Path::new("f.toml")) {
                assert_positioned(&text, &e);
            }
        }

        #[test]
        fn tomlish_text_never_panics(text in "([a-z_.\\[\\]\"'={}, 0-9$:\\n-]|kind|steps|plans|actions|sources|\\$\\{env:|\\{weight|\"8000y\"){0,80}") {
            if let Err(e) = parse(&text, Path::new("f.toml")) {
                assert_positioned(&text, &e);
            }
        }

        #[test]
        fn mutated_good_config_never_panics(
            at in 0usize..GOOD.len(),
            cut in 0usize..12,
            insert in "[\\s\\S]{0,10}|\"0s\"|\"8000y\"|\\$\\{vault:x\\}|\\{weight|\\r\\n",
        ) {
            let mut text = GOOD.to_string();
            let start = text.floor_char_boundary(at);
            let end = text.floor_char_boundary((start + cut).min(text.len()));
            text.replace_range(start..end, &insert);
            match parse(&text, Path::new("f.toml")) {
                Ok(c) => {
                    // Whatever loads is within the bounds.
                    for ch in &c.checks {
                        prop_assert!(ch.interval >= MIN_INTERVAL && ch.interval <= MAX_DURATION);
                        prop_assert!(ch.for_ <= MAX_DURATION);
                    }
                    for h in &c.sources.health {
                        prop_assert!(h.interval >= MIN_INTERVAL && h.interval <= MAX_DURATION);
                    }
                }
                Err(e) => assert_positioned(&text, &e),
            }
        }

        #[test]
        fn any_duration_loads_bounded_or_errs_on_its_line(
            which in 0usize..4,
            n in "[0-9]{1,22}",
            unit in "ns|us|ms|s|m|h|d|days|w|M|y|years",
        ) {
            let line = DURATION_LINES[which];
            let key = line.split(" = ").next().unwrap();
            let new = format!("{key} = \"{n}{unit}\"");
            let text = GOOD.replacen(line, &new, 1);
            match parse(&text, Path::new("f.toml")) {
                Ok(c) => {
                    let p = c.sources.prometheus.as_ref().unwrap();
                    let (_, plan) = c.plan(None).unwrap();
                    let d = match which {
                        0 => p.timeout,
                        1 => c.checks[0].for_,
                        2 => c.actions["traffic"].timeout,
                        _ => plan.steps[1].duration.unwrap(),
                    };
                    prop_assert!(d <= MAX_DURATION, "{new} loaded as {d:?}");
                    prop_assert!(which == 1 || !d.is_zero(), "{new} loaded as 0");
                }
                Err(e) => {
                    assert_positioned(&text, &e);
                    let LoadError::Invalid(all) = e else { unreachable!() };
                    let want = line_of(&text, &new);
                    for err in all {
                        prop_assert_eq!(err.line, want, "{}", err);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_from_a_file_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f.toml");
            std::fs::write(&p, &bytes).unwrap();
            match load(&p) {
                Ok(_) => {}
                Err(LoadError::Io { .. }) => prop_assert!(std::str::from_utf8(&bytes).is_err()),
                Err(e) => assert_positioned(std::str::from_utf8(&bytes).unwrap(), &e),
            }
        }
    }
}

#[test]
fn a_bad_unit_is_located_and_suggests_the_nearest() {
    let text = GOOD.replace(
        "kind = \"error_rate\"",
        "kind = \"promql\"\nquery = 'sum(rate(x{track=\"{track}\"}[1m]))'\nunit = \"precent\"",
    );
    let e = one(&text);
    assert_eq!(e.line, line_of(&text, "precent"), "{e}");
    assert!(e.col > 1, "{e}");
    assert!(e.message.contains("unknown value `precent`"), "{e}");
    for u in ["ratio", "percent", "seconds", "bytes", "none"] {
        assert!(e.message.contains(u), "{e}");
    }
    assert_eq!(e.help.as_deref(), Some("did you mean `percent`?"));
    // Every documented unit is accepted on a `promql` check.
    for u in ["ratio", "percent", "seconds", "bytes", "count", "none"] {
        let ok = GOOD.replace(
            "kind = \"error_rate\"",
            &format!("kind = \"promql\"\nquery = 'sum(rate(x{{track=\"{{track}}\"}}[1m]))'\nunit = \"{u}\""),
        );
        let ok = ok
            .replace("metric = \"http_requests_total\"\n", "")
            .replace("error_matcher = 'code=~\"5..\"'\n", "");
        if let Err(e) = parse(&ok, Path::new("rolldeck.toml")) {
            panic!("unit {u} refused: {e}");
        }
    }
}

#[test]
fn docker_action_fields_resolve_references_and_keep_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let img = secret_file(dir.path(), "image", "checkout:{version}-x");
    let pw = secret_file(dir.path(), "db", "db-pw-value");
    let plain = secret_file(dir.path(), "mode", "fast-mode");
    let home = std::env::var("HOME").expect("HOME is set");
    let text = GOOD.replace(
        "argv = [\"kubectl\", \"set-weight\", \"{weight}\"]",
        &format!(
            "docker = {{ op = \"run\", container = \"green-${{env:HOME}}\", image = \"${{file:{img}}}\", \
             cmd = [\"serve\", \"${{file:{plain}}}\"], env = {{ DB_PASSWORD = \"${{file:{pw}}}\", MODE = \"${{file:{plain}}}\", \
             OTHER = \"${{secret:file:{plain}}}z\" }}, labels = {{ \"app.mode\" = \"${{file:{plain}}}\" }}, \
             ports = [\"127.0.0.1:${{file:{plain}}}:8080\"], health = {{ cmd = [\"/probe\", \"${{env:HOME}}\"] }} }}"
        ),
    );
    // The port is not a number once resolved: refused after resolution,
    // at the action.
    let e = one(&text);
    assert!(e.message.contains("fast-mode:8080"), "{e}");
    let text = text.replace(&format!("${{file:{plain}}}:8080"), "0:8080");
    let c = parse(&text, Path::new("x.toml")).unwrap();
    let d = c.actions["traffic"].docker.as_ref().unwrap();
    assert_eq!(d.container, format!("green-{home}"));
    // A `{` from a resolved value stays literal (not a placeholder).
    assert_eq!(d.image.as_deref(), Some("checkout:{{version}-x"));
    assert_eq!(d.cmd, ["serve", "fast-mode"]);
    assert_eq!(d.env["DB_PASSWORD"], "db-pw-value");
    assert_eq!(d.env["MODE"], "fast-mode");
    assert_eq!(d.labels["app.mode"], "fast-mode");
    assert_eq!(d.health.as_ref().unwrap().cmd[1], home);
    // Secret by name or by `${secret:…}`; a plain reference is not.
    assert!(
        c.secrets.contains(&"db-pw-value".to_string()),
        "{:?}",
        c.secrets
    );
    assert!(
        c.secrets.contains(&"fast-mode".to_string()),
        "{:?}",
        c.secrets
    );
    let text = text.replace(&format!("${{secret:file:{plain}}}z"), "z");
    let c = parse(&text, Path::new("x.toml")).unwrap();
    assert!(
        !c.secrets.contains(&"fast-mode".to_string()),
        "{:?}",
        c.secrets
    );
    // An unset variable is an error at its line.
    let text = text.replace("green-${env:HOME}", "${env:ROLLDECK_TEST_SURELY_UNSET_VAR}");
    let e = one(&text);
    assert!(e.message.contains("ROLLDECK_TEST_SURELY_UNSET_VAR"), "{e}");
    assert_eq!(e.line, line_of(&text, "SURELY_UNSET"), "{e}");
}
