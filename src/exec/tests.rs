use std::collections::BTreeMap;
use std::time::Duration;

use super::template::{Piece, check_shell_template, mask_url_password, parse};
use super::*;
use crate::redact::Redactor;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn argv_spec(argv: &[&str]) -> ActionSpec {
    ActionSpec {
        argv: Some(argv.iter().map(|s| s.to_string()).collect()),
        ..ActionSpec::default()
    }
}

fn shell_spec(cmd: &str) -> ActionSpec {
    ActionSpec {
        shell: true,
        command: Some(cmd.to_string()),
        ..ActionSpec::default()
    }
}

fn http_spec(url: &str) -> ActionSpec {
    ActionSpec {
        url: Some(url.to_string()),
        ..ActionSpec::default()
    }
}

#[test]
fn parse_splits_placeholders_escapes_and_literal_braces() {
    assert_eq!(
        parse("w={weight}%"),
        vec![Piece::Lit("w="), Piece::Var("weight"), Piece::Lit("%")]
    );
    assert_eq!(
        parse("{{weight}"),
        vec![Piece::Lit("{"), Piece::Lit("weight}")]
    );
    assert_eq!(
        parse(r#"{"w": {weight}}"#),
        vec![
            Piece::Lit(r#"{"w": "#),
            Piece::Var("weight"),
            Piece::Lit("}")
        ]
    );
    assert_eq!(
        parse("{ not } {1x} {}"),
        vec![Piece::Lit("{ not } {1x} {}")]
    );
    assert_eq!(parse(""), vec![]);
}

#[test]
fn toml_defaults_and_durations() {
    let spec: ActionSpec = toml::from_str(r#"argv = ["true"]"#).unwrap();
    assert_eq!(spec.method, "POST");
    assert_eq!(spec.timeout, Duration::from_secs(30));
    assert!(!spec.shell);
    let spec: ActionSpec = toml::from_str(
        r#"
        url = "http://h/x"
        method = "put"
        timeout = "5m"
        expect_status = [200, 202]
        headers = { "Content-Type" = "application/json" }
        "#,
    )
    .unwrap();
    assert_eq!(spec.timeout, Duration::from_secs(300));
    spec.validate().unwrap();
    assert!(
        toml::from_str::<ActionSpec>(
            r#"argv = ["x"]
        tiemout = "1s""#
        )
        .is_err()
    );
    // Round trip through serde keeps the duration readable.
    let back: ActionSpec = toml::from_str(&toml::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn validate_requires_exactly_one_kind() {
    let none = ActionSpec::default();
    assert!(none.validate().unwrap_err().contains("set one of"));
    let mut both = argv_spec(&["true"]);
    both.url = Some("http://h".into());
    assert!(both.validate().unwrap_err().contains("found argv and url"));
    let mut cmd = shell_spec("echo hi");
    cmd.shell = false;
    assert!(cmd.validate().unwrap_err().contains("shell = true"));
    let mut sh = argv_spec(&["echo"]);
    sh.shell = true;
    assert!(sh.validate().unwrap_err().contains("needs `command`"));
    assert!(
        argv_spec(&[])
            .validate()
            .unwrap_err()
            .contains("must not be empty")
    );
    assert!(argv_spec(&[""]).validate().is_err());
    assert!(
        argv_spec(&["{weight}"])
            .validate()
            .unwrap_err()
            .contains("argv[0]")
    );
    argv_spec(&["kubectl", "set", "{weight}"])
        .validate()
        .unwrap();
    shell_spec("echo {weight}").validate().unwrap();
    http_spec("https://h/x").validate().unwrap();
}

#[test]
fn validate_checks_http_fields() {
    let mut s = http_spec("http://h/x");
    s.method = "POTS".into();
    assert!(s.validate().unwrap_err().contains("unknown HTTP method"));
    s.method = "delete".into();
    s.validate().unwrap();
    assert!(
        http_spec("ftp://h/x")
            .validate()
            .unwrap_err()
            .contains("http://")
    );
    let mut s = http_spec("http://h/x");
    s.expect_status = Some(vec![]);
    assert!(s.validate().is_err());
    s.expect_status = Some(vec![42]);
    assert!(s.validate().is_err());
    let mut s = http_spec("http://h/x");
    s.env.insert("A".into(), "b".into());
    assert!(s.validate().unwrap_err().contains("`env`"));
    let mut s = argv_spec(&["true"]);
    s.body = Some("x".into());
    s.method = "GET".into();
    let e = s.validate().unwrap_err();
    assert!(e.contains("`body`") && e.contains("`method`"), "{e}");
    let mut s = argv_spec(&["true"]);
    s.timeout = Duration::ZERO;
    assert!(s.validate().unwrap_err().contains("timeout"));
    let mut s = http_spec("http://h/x");
    s.headers.insert("Bad Header".into(), "v".into());
    assert!(s.validate().unwrap_err().contains("header name"));
}

#[test]
fn unknown_placeholder_lists_known_ones() {
    let s = argv_spec(&["echo", "{wieght}", "{weight}", "{wieght}"]);
    assert_eq!(
        s.placeholders(),
        vec!["wieght".to_string(), "weight".to_string()]
    );
    let e = s.validate().unwrap_err();
    assert!(e.contains("{wieght}"), "{e}");
    for k in KNOWN_PLACEHOLDERS {
        assert!(e.contains(&format!("{{{k}}}")), "{e}");
    }
    let r = render(&s, &vars(&[("weight", "1")])).unwrap_err();
    assert!(
        matches!(&r, ExecError::UnknownPlaceholder { name, .. } if name == "wieght"),
        "{r}"
    );
    assert!(r.to_string().contains("{operator}"));
}

#[test]
fn placeholders_cover_every_field() {
    let mut s = http_spec("http://h/{service}");
    s.headers.insert("X-Who".into(), "{operator}".into());
    s.body = Some("{reason} {service}".into());
    assert_eq!(s.placeholders(), vec!["service", "operator", "reason"]);
    let mut c = shell_spec("run {step}");
    c.env.insert("V".into(), "{version}".into());
    assert_eq!(c.placeholders(), vec!["step", "version"]);
}

#[test]
fn program_is_argv0_sh_or_none() {
    assert_eq!(argv_spec(&["kubectl", "x"]).program(), Some("kubectl"));
    assert_eq!(shell_spec("echo").program(), Some("sh"));
    assert_eq!(http_spec("http://h").program(), None);
}

#[test]
fn render_keeps_each_value_in_its_argument() {
    let s = argv_spec(&["tool", "--reason={reason}", "{weight}", "{{literal}"]);
    let r = render(
        &s,
        &vars(&[("reason", "a b; rm -rf / 'x' \"y\""), ("weight", "25")]),
    )
    .unwrap();
    let Rendered::Command { argv, shell, .. } = &r else {
        panic!("not a command: {r:?}")
    };
    assert!(!shell);
    assert_eq!(
        argv,
        &vec![
            "tool".to_string(),
            "--reason=a b; rm -rf / 'x' \"y\"".to_string(),
            "25".to_string(),
            "{literal}".to_string()
        ]
    );
    assert!(matches!(
        render(&s, &vars(&[("weight", "25")])),
        Err(ExecError::MissingVar(n)) if n == "reason"
    ));
    assert!(matches!(
        render(&s, &vars(&[("weight", "2\u{0}5"), ("reason", "r")])),
        Err(ExecError::NulInValue(_))
    ));
}

#[test]
fn render_shell_quotes_values() {
    let s = shell_spec("echo --reason={reason} {weight}");
    let r = render(
        &s,
        &vars(&[("reason", "a; touch /tmp/x"), ("weight", "25")]),
    )
    .unwrap();
    let Rendered::Command { argv, shell, .. } = r else {
        panic!()
    };
    assert!(shell);
    assert_eq!(argv[..2], ["sh".to_string(), "-c".to_string()]);
    assert_eq!(argv[2], "echo --reason='a; touch /tmp/x' 25");
}

#[test]
fn shell_placeholders_must_be_plain_words() {
    for bad in [
        "echo '{reason}'",
        "echo \"{reason}\"",
        "echo \"x $(echo {reason})\"",
        "echo \\{reason}",
        "echo hi # {reason}",
        "cat <<EOF\n{reason}\nEOF",
        "echo ${reason}",
        "echo $'x\\' {reason}'",
    ] {
        let e = check_shell_template(bad).unwrap_err();
        assert!(
            matches!(e, ExecError::UnsafeShellPlaceholder { .. }),
            "{bad}: {e}"
        );
        assert!(shell_spec(bad).validate().is_err(), "{bad}");
    }
    for good in [
        "echo {reason}",
        "echo 'quoted' {reason} \"x\" --w={weight}",
        "a#b {reason}",
        "# comment\necho {reason}",
        "cat <<< {reason}",
        "awk '{print $1}' {reason}",
        "echo ${{HOME} {weight}",
        "f() { echo {weight}; }; f",
    ] {
        check_shell_template(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        shell_spec(good)
            .validate()
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let r = render(&shell_spec("echo ${{HOME}"), &BTreeMap::new()).unwrap();
    let Rendered::Command { argv, .. } = r else {
        panic!()
    };
    assert_eq!(argv[2], "echo ${HOME}");
}

#[test]
fn render_http_encodes_by_context() {
    let mut s = http_spec("http://h/api/{service}?reason={reason}");
    s.headers
        .insert("Content-Type".into(), "application/json".into());
    s.headers.insert("X-Reason".into(), "{reason}".into());
    s.body = Some(r#"{"w": {weight}, "r": "{reason}"}"#.into());
    s.method = "put".into();
    let r = render(
        &s,
        &vars(&[
            ("service", "web/api"),
            ("reason", "a \"b\"&c=d"),
            ("weight", "25"),
        ]),
    )
    .unwrap();
    let Rendered::Http {
        method,
        url,
        headers,
        body,
    } = r
    else {
        panic!()
    };
    assert_eq!(method, "PUT");
    assert_eq!(url, "http://h/api/web%2Fapi?reason=a%20%22b%22%26c%3Dd");
    assert_eq!(headers["X-Reason"], "a \"b\"&c=d");
    assert_eq!(body.unwrap(), r#"{"w": 25, "r": "a \"b\"&c=d"}"#);
    let json: serde_json::Value = serde_json::from_str(&{
        let Rendered::Http { body, .. } = render(
            &s,
            &vars(&[("service", "x"), ("reason", "q\"\n}"), ("weight", "1")]),
        )
        .unwrap() else {
            panic!()
        };
        body.unwrap()
    })
    .unwrap();
    assert_eq!(json["r"], "q\"\n}");
}

#[test]
fn display_quotes_masks_and_redacts() {
    let red = Redactor::new(vec!["hunter22".to_string()]);
    let r = Rendered::Command {
        argv: vec!["kubectl".into(), "set".into(), "weight".into(), "25".into()],
        shell: false,
        env: BTreeMap::new(),
        cwd: None,
    };
    assert_eq!(r.display(&red), "kubectl set weight 25");
    let r = Rendered::Command {
        argv: vec![
            "deploy".into(),
            "a b".into(),
            "--token=hunter22".into(),
            "x\ny".into(),
        ],
        shell: false,
        env: vars(&[("API_TOKEN", "plain"), ("MODE", "fast")]),
        cwd: Some("/srv/app".into()),
    };
    let d = r.display(&red);
    assert!(!d.contains("hunter22") && !d.contains("plain"), "{d}");
    assert!(
        d.starts_with("cd /srv/app && API_TOKEN='***' MODE=fast deploy 'a b' "),
        "{d}"
    );
    assert!(!d.contains('\n'));
    let r = Rendered::Http {
        method: "POST".into(),
        url: "https://bob:pw123@h/x?k=hunter22".into(),
        headers: vars(&[
            ("Authorization", "Bearer abc"),
            ("X-Note", "hunter22"),
            ("cookie", "c=1"),
        ]),
        body: Some("{\"a\":1}".into()),
    };
    let d = r.display(&red);
    assert!(d.starts_with("POST 'https://bob:***@h/x?k=***'"), "{d}");
    assert!(
        d.contains("-H 'Authorization: ***'") && d.contains("-H 'cookie: ***'"),
        "{d}"
    );
    assert!(d.contains("-H 'X-Note: ***'") && !d.contains("abc"), "{d}");
    assert!(d.ends_with(r#"-d '{"a":1}'"#), "{d}");
    let simple = Rendered::Http {
        method: "POST".into(),
        url: "http://host/x".into(),
        headers: BTreeMap::new(),
        body: None,
    };
    assert_eq!(simple.display(&Redactor::default()), "POST http://host/x");
}

#[test]
fn mask_url_password_only_touches_userinfo() {
    assert_eq!(mask_url_password("http://h/a:b@c"), "http://h/a:b@c");
    assert_eq!(mask_url_password("http://u@h/"), "http://u@h/");
    assert_eq!(
        mask_url_password("http://u:p@h:80/x"),
        "http://u:***@h:80/x"
    );
    assert_eq!(mask_url_password("nonsense"), "nonsense");
}

#[test]
fn strip_control_removes_sequences_and_controls() {
    assert_eq!(strip_control("\x1b]0;pwned\x07\x1b[2Jhello"), "hello");
    assert_eq!(strip_control("\x1b[31mred\x1b[0m\tok\r"), "red\tok");
    assert_eq!(strip_control("a\u{9b}2Jb\u{7f}c\u{0}d"), "a2Jbcd");
    assert_eq!(strip_control("abc\u{202e}def"), "abcdef");
    assert_eq!(strip_control("\x1bP1;2q\x1b\\x"), "x");
    assert_eq!(strip_control("plain ünïcode ✓"), "plain ünïcode ✓");
}

#[test]
fn operator_display() {
    let mut op = Operator {
        user: "alice".into(),
        host: "bastion".into(),
        ssh_client: Some("10.0.0.5".into()),
        tty: Some("/dev/pts/3".into()),
    };
    assert_eq!(op.to_string(), "alice@bastion (ssh 10.0.0.5, /dev/pts/3)");
    op.tty = None;
    assert_eq!(op.to_string(), "alice@bastion (ssh 10.0.0.5)");
    op.ssh_client = None;
    assert_eq!(op.to_string(), "alice@bastion");
    let cur = Operator::current();
    assert!(!cur.user.is_empty() && !cur.host.is_empty());
}

fn record(action: &str) -> AuditRecord {
    AuditRecord {
        ts: jiff::Timestamp::now().to_string(),
        operator: Operator {
            user: "u".into(),
            host: "h".into(),
            ssh_client: None,
            tty: None,
        },
        action: action.into(),
        release: Some("r1".into()),
        step: None,
        rendered: "true".into(),
        exit_code: Some(0),
        http_status: None,
        ok: true,
        duration_s: 0.01,
        detail: "exit 0".into(),
        reason: None,
        run_id: None,
    }
}

#[test]
fn audit_log_appends_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/audit.jsonl");
    assert!(AuditLog::read_all(&path).unwrap().is_empty());
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.path(), path);
    log.append(&record("one")).unwrap();
    log.append(&record("two")).unwrap();
    let all = AuditLog::read_all(&path).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], record_with_ts("two", &all[1].ts));

    // A torn last line is skipped; a bad line in the middle is an error.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"ts\":"))
        .unwrap();
    assert_eq!(AuditLog::read_all(&path).unwrap().len(), 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"\n"))
        .unwrap();
    let e = AuditLog::read_all(&path).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().contains(":3:"), "{e}");
}

fn record_with_ts(action: &str, ts: &str) -> AuditRecord {
    AuditRecord {
        ts: ts.to_string(),
        ..record(action)
    }
}

#[test]
fn audit_log_is_shared_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = std::sync::Arc::new(AuditLog::open(&path).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    log.append(&record(&format!("t{t}-{i}"))).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(AuditLog::read_all(&path).unwrap().len(), 40);
}

#[test]
fn run_future_is_send_and_executor_is_clone() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_clone_sync<T: Clone + Send + Sync>() {}
    assert_clone_sync::<Executor>();
    let dir = tempfile::tempdir().unwrap();
    let ex = Executor::new(
        AuditLog::open(&dir.path().join("a.jsonl")).unwrap(),
        Operator::current(),
        Redactor::default(),
    );
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let fut = ex.run(
        ActionRequest {
            name: "x".into(),
            spec: argv_spec(&["true"]),
            vars: BTreeMap::new(),
            reason: None,
            release: None,
            step: None,
        },
        tx,
    );
    assert_send(&fut);
    drop(fut);
    // A future dropped before its first poll has started nothing, so there
    // is nothing to audit.
    assert!(
        AuditLog::read_all(&dir.path().join("a.jsonl"))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn run_reports_render_errors_and_audits_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let ex = Executor::new(
        AuditLog::open(&path).unwrap(),
        Operator::current(),
        Redactor::default(),
    );
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let o = ex
        .run(
            ActionRequest {
                name: "bad".into(),
                spec: argv_spec(&["echo", "{nope}"]),
                vars: BTreeMap::new(),
                reason: None,
                release: None,
                step: None,
            },
            tx,
        )
        .await;
    assert!(!o.ok);
    assert!(
        o.detail.contains("unknown placeholder {nope}"),
        "{}",
        o.detail
    );
    let recs = AuditLog::read_all(&path).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].rendered, "echo '{nope}'");
    assert_eq!(recs[0].detail, o.detail);
}
