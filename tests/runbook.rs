//! Markdown runbooks: the parser over real-world shapes, running blocks
//! headless (timeouts, process groups, confirmation, read-only), progress
//! across restarts, and the checklist plan step.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Live, alive, run, write_config};
use proptest::prelude::*;
use rolldeck::runbook::{self, BlockKind, BlockState, Item, ProgressStore, Severity};

const DEADLINE: Duration = Duration::from_secs(60);

/// Real-world shapes: a block inside a numbered list item, `~~~` fences,
/// info strings with and without attributes, malformed attribute JSON,
/// an HTML block, nested headings, an indented code block.
const REAL_WORLD: &str = r#"# Incident: API 5xx
<!-- owner: platform team -->

Some intro with `inline code` and a [link](https://example.com).

## Diagnose

1. Check the pods:

   ```bash
   kubectl get pods -n "$NAMESPACE"
   ```

2. Then the logs:

   ~~~sh {"name":"tail-logs","timeout":"30s"}
   kubectl logs deploy/api --tail=50
   ~~~

### Deeper

```sh {"name":"broken", "confirm": yes}
echo never runs
```

<details>
<summary>Old way</summary>

```sh
echo inside html details
```

</details>

| metric | limit |
| --- | --- |
| errors | 5 % |

    echo indented code

```python
print("shown")
```

```console
$ echo transcript
transcript
```

## Checks

- [ ] Paged the **DBA**
- [x] Status page updated
  - [ ] nested sub-check
"#;

#[test]
fn real_world_markdown_shapes() {
    let rb = runbook::parse(REAL_WORLD);
    assert_eq!(rb.title.as_deref(), Some("Incident: API 5xx"));
    let titles: Vec<(&str, u8, Option<usize>)> = rb
        .sections
        .iter()
        .map(|s| (s.title.as_str(), s.level, s.parent))
        .collect();
    assert_eq!(
        titles,
        [
            ("Incident: API 5xx", 1, None),
            ("Diagnose", 2, Some(0)),
            ("Deeper", 3, Some(1)),
            ("Checks", 2, Some(0)),
        ]
    );

    let blocks: Vec<(&str, Option<&str>, bool, usize)> = rb
        .blocks
        .iter()
        .map(|b| (b.name.as_str(), b.language.as_deref(), b.runnable(), b.line))
        .collect();
    assert_eq!(
        blocks,
        [
            ("kubectl-get-pods-n", Some("bash"), true, 10),
            ("tail-logs", Some("sh"), true, 16),
            ("echo-never-runs", Some("sh"), false, 22),
            ("echo-inside-html-details", Some("sh"), true, 29),
            ("echo-indented-code", None, false, 39),
            ("print-shown", Some("python"), false, 41),
            ("echo-transcript", Some("console"), false, 45),
        ]
    );
    // A block inside a list item keeps its code without the indentation.
    assert_eq!(rb.blocks[0].code, "kubectl get pods -n \"$NAMESPACE\"\n");
    assert_eq!(rb.blocks[0].variables, ["NAMESPACE"]);
    assert_eq!(
        rb.blocks[1].attributes.timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(rb.blocks[1].kind, BlockKind::Shell);
    assert!(!rb.blocks[4].fenced);

    // Malformed attribute JSON: an error naming the line; the block is shown.
    let broken = &rb.blocks[2];
    let why = broken.not_runnable.as_deref().unwrap();
    assert!(why.contains("line 22"), "{why}");
    let p = rb
        .problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .unwrap();
    assert_eq!((p.line, p.block), (22, Some(2)));
    assert!(p.message.starts_with("malformed attributes"), "{p}");
    assert!(
        rb.items
            .iter()
            .any(|i| matches!(i, Item::Block { index: 2 }))
    );

    // Checks, nested ones too; a `[x]` in the file is shown, not ticked.
    let checks: Vec<(&str, usize, bool)> = rb
        .checks
        .iter()
        .map(|c| (c.text.as_str(), c.line, c.checked_in_file))
        .collect();
    assert_eq!(
        checks,
        [
            ("Paged the DBA", 52, false),
            ("Status page updated", 53, true),
            ("nested sub-check", 54, false),
        ]
    );
    assert_eq!(rb.checks[0].section, Some(3));

    // The HTML, the table and the prose are shown as text, in order.
    let texts: Vec<&str> = rb
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.iter().any(|t| t.contains("<summary>Old way")));
    assert!(texts.iter().any(|t| t.contains("| errors | 5 % |")));
    assert!(texts.iter().any(|t| t.contains("owner: platform team")));
}

/// `--list --json`: every fenced or indented block, in document order,
/// with its attributes as written.
#[test]
fn list_json_has_every_block_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incident.md");
    std::fs::write(&file, REAL_WORLD).unwrap();
    let r = run(
        &["runbook", file.to_str().unwrap(), "--list", "--json"],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 7);
    assert_eq!(blocks[1]["name"], "tail-logs");
    assert_eq!(blocks[1]["attributes"]["timeout"], "30s");
    assert_eq!(blocks[1]["line"], 16);
    assert_eq!(blocks[2]["runnable"], false);
    assert_eq!(blocks[4]["language"], serde_json::Value::Null);
    assert_eq!(v["checks"][0]["text"], "Paged the DBA");
    assert_eq!(v["checks"][0]["line"], 52);
    assert_eq!(v["sections"][2]["title"], "Deeper");
    assert_eq!(v["problems"][0]["line"], 22);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text: parsing never panics, and the items cover every block and
    /// check exactly once.
    #[test]
    fn parsing_never_panics(text in "(?s).{0,600}") {
        let rb = runbook::parse(&text);
        let blocks = rb.items.iter().filter(|i| matches!(i, Item::Block { .. })).count();
        let checks = rb.items.iter().filter(|i| matches!(i, Item::Check { .. })).count();
        prop_assert_eq!(blocks, rb.blocks.len());
        prop_assert_eq!(checks, rb.checks.len());
        let mut names: Vec<&str> = rb.blocks.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), rb.blocks.len(), "block names are unique");
    }

    /// Documents made of headings, prose, lists and fenced blocks: every
    /// fenced block appears, in order, with its code, language and line.
    #[test]
    fn every_fenced_block_appears_in_order(pieces in proptest::collection::vec(piece(), 0..12)) {
        let mut text = String::new();
        let mut expected: Vec<(String, String, usize)> = Vec::new();
        for p in &pieces {
            let line = text.lines().count() + 1;
            match p {
                Piece::Fence { fence, lang, attrs, code } => {
                    text.push_str(&format!("{fence}{lang}{attrs}\n{code}{fence}\n"));
                    expected.push((lang.clone(), code.clone(), line));
                }
                Piece::Text(t) => {
                    text.push_str(t);
                    text.push('\n');
                }
            }
            text.push('\n');
        }
        let rb = runbook::parse(&text);
        let got: Vec<(String, String, usize)> = rb
            .blocks
            .iter()
            .filter(|b| b.fenced)
            .map(|b| (b.language.clone().unwrap_or_default(), b.code.clone(), b.line))
            .collect();
        prop_assert_eq!(got, expected, "text:\n{}", text);
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Fence {
        fence: String,
        lang: String,
        attrs: String,
        code: String,
    },
    Text(String),
}

fn piece() -> impl Strategy<Value = Piece> {
    let code = proptest::collection::vec("[a-z $={}\"'|&;.-]{0,20}", 0..4)
        .prop_map(|lines| lines.iter().map(|l| format!("{l}\n")).collect::<String>());
    let lang = prop_oneof![
        Just("sh".to_string()),
        Just("bash".to_string()),
        Just("promql".to_string()),
        Just("python".to_string()),
        Just("".to_string()),
    ];
    let attrs = prop_oneof![
        Just(String::new()),
        Just(" {\"name\":\"x\",\"confirm\":\"true\"}".to_string()),
        Just(" {\"timeout\":\"5s\"".to_string()),
        Just(" {broken".to_string()),
    ];
    let fence = prop_oneof![Just("```".to_string()), Just("~~~".to_string())];
    let text = prop_oneof![
        "# [A-Za-z ]{1,20}",
        "#{2,6} [A-Za-z ]{1,20}",
        "[A-Za-z ,.()*_]{1,60}",
        "- \\[[ x]\\] [A-Za-z ]{1,20}",
        "1\\. [a-z ]{1,20}",
        "\\| a \\| b \\|\n\\| --- \\| --- \\|\n\\| 1 \\| 2 \\|",
    ];
    prop_oneof![
        (fence, lang, attrs, code).prop_map(|(fence, lang, attrs, code)| Piece::Fence {
            fence,
            attrs: if lang.is_empty() {
                String::new()
            } else {
                attrs
            },
            lang,
            code
        }),
        text.prop_map(Piece::Text),
    ]
}

/// A config with `[runbooks] dirs = ["runbooks"]` and a plan whose first
/// step is a checklist; `protected` environment or not.
fn setup(protected: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rbdir = dir.path().join("runbooks");
    std::fs::create_dir_all(&rbdir).unwrap();
    let marker = dir.path().join("deployed");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "rbtest"
state_dir = "{state}"

[environment]
name = "{env}"
protected = {protected}

[runbooks]
dirs = ["runbooks"]
vars = {{ GREETING = "hello from the config" }}

[actions.deploy]
argv = ["touch", "{marker}"]
timeout = "10s"

[plans.default]
[[plans.default.steps]]
kind = "checklist"
checklist = "runbooks/pre.md"

[[plans.default.steps]]
kind = "action"
action = "deploy"
"#,
            state = dir.path().join("state").display(),
            env = if protected { "production" } else { "staging" },
            marker = marker.display(),
        ),
    );
    std::fs::write(
        rbdir.join("pre.md"),
        "# Pre-deploy\n\n- [ ] Backups verified\n- [ ] Team told\n\n```sh {\"name\":\"smoke\"}\necho \"$GREETING\"\n```\n",
    )
    .unwrap();
    (dir, cfg, marker)
}

fn runbook_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join("runbooks").join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn store(cfg: &Path, file: &Path) -> ProgressStore {
    let c = rolldeck::config::load(cfg).unwrap();
    let paths = rolldeck::runtime::StatePaths::resolve(&c, None).unwrap();
    runbook::checklist::store_for(&paths, file).unwrap()
}

/// A block past its timeout is killed with the processes it started, and
/// the exit code says it did not succeed.
#[test]
fn a_block_is_killed_with_its_children_at_its_timeout() {
    let (dir, cfg, _) = setup(false);
    let pidfile = dir.path().join("child.pid");
    let file = runbook_file(
        dir.path(),
        "hang.md",
        &format!(
            "# Hang\n\n```sh {{\"name\":\"hang\",\"timeout\":\"1s\"}}\nsleep 300 &\necho $! > {}\nwait\n```\n",
            pidfile.display()
        ),
    );
    let r = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "runbook",
            file.to_str().unwrap(),
            "--run",
            "hang",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 124, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the block's child {pid} survived its timeout");
    let p = store(&cfg, &file).load().unwrap();
    let rb = runbook::Runbook::load(&file).unwrap();
    assert_eq!(
        p.state(&rb.blocks[0]),
        BlockState::Failed { exit_code: None }
    );
}

/// A `confirm` block: refused in read-only mode and headless without
/// `--yes` (nothing runs); runs with `--yes`, audited, exit code its own.
#[test]
fn a_confirm_block_needs_yes_and_never_runs_read_only() {
    let (dir, cfg, _) = setup(false);
    let touched = dir.path().join("touched");
    let file = runbook_file(
        dir.path(),
        "danger.md",
        &format!(
            "# Danger\n\n```sh {{\"name\":\"restart\",\"confirm\":\"true\"}}\ntouch {}\nexit 3\n```\n",
            touched.display()
        ),
    );
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "--config".to_string(),
            cfg.to_str().unwrap().to_string(),
            "runbook".into(),
            file.to_str().unwrap().to_string(),
            "--run".into(),
            "restart".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let call = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&refs, &[], DEADLINE)
    };
    let mut ro = args(&["--yes"]);
    ro.insert(0, "--read-only".into());
    let r = call(ro);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
    assert!(!touched.exists());

    let r = call(args(&[]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("needs confirmation"), "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(!touched.exists());

    let r = call(args(&["--yes"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(touched.exists());
    let c = rolldeck::config::load(&cfg).unwrap();
    let paths = rolldeck::runtime::StatePaths::resolve(&c, None).unwrap();
    let audit = rolldeck::exec::AuditLog::read_all(&paths.audit).unwrap();
    let rec = audit
        .iter()
        .find(|a| a.action == "runbook:danger.md#restart")
        .expect("audited");
    assert_eq!(rec.exit_code, Some(3));
}

/// A protected environment asks for every shell block; unresolved
/// variables refuse the run and name the variable.
#[test]
fn protected_environment_and_unresolved_variables_refuse() {
    let (dir, cfg, _) = setup(true);
    let file = runbook_file(
        dir.path(),
        "vars.md",
        "# Vars\n\n```sh {\"name\":\"show\"}\necho \"$GREETING $NAMESPACE_FOR_TEST\"\n```\n",
    );
    let base = [
        "--config",
        cfg.to_str().unwrap(),
        "runbook",
        file.to_str().unwrap(),
        "--run",
        "show",
    ];
    let r = run(&base, &[], DEADLINE);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("$NAMESPACE_FOR_TEST"), "{}", r.stderr);
    let mut with_var = base.to_vec();
    with_var.extend(["--var", "NAMESPACE_FOR_TEST=shop"]);
    let r = run(&with_var, &[], DEADLINE);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("production is a protected environment"),
        "{}",
        r.stderr
    );
    // The value given once was recorded: no --var needed now.
    let mut yes = base.to_vec();
    yes.push("--yes");
    let r = run(&yes, &[], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "hello from the config shop");
}

/// Close and reopen: block states and ticks are where they were; a
/// corrupt progress file is an error, never a silent reset.
#[test]
fn progress_survives_a_restart_and_corruption_is_shown() {
    let (dir, cfg, _) = setup(false);
    let file = runbook_file(
        dir.path(),
        "steps.md",
        "# Steps\n\n```sh {\"name\":\"fails\"}\nexit 7\n```\n\n```sh {\"name\":\"works\"}\necho ok\n```\n\n- [ ] Looked at the dashboard\n",
    );
    let c = cfg.to_str().unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        run(
            &["--config", c, "runbook", f, "--run", "fails"],
            &[],
            DEADLINE
        )
        .code,
        7
    );
    assert_eq!(
        run(
            &["--config", c, "runbook", f, "--run", "works"],
            &[],
            DEADLINE
        )
        .code,
        0
    );
    let r = run(
        &["--config", c, "runbook", f, "--tick", "dashboard"],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A new process (this test) reads what the others left.
    let rb = runbook::Runbook::load(&file).unwrap();
    let st = store(&cfg, &file);
    let p = st.load().unwrap();
    assert_eq!(
        p.state(rb.block("fails").unwrap()),
        BlockState::Failed { exit_code: Some(7) }
    );
    assert_eq!(p.state(rb.block("works").unwrap()), BlockState::Ok);
    assert!(p.ticked(&rb.checks[0]));

    std::fs::write(st.path(), "{\"version\":1,\"runbook\":").unwrap();
    let r = run(
        &["--config", c, "runbook", f, "--run", "works"],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(st.path()).unwrap(),
        "{\"version\":1,\"runbook\":",
        "the corrupt file is left for a human"
    );
}

/// The checklist step holds a headless release — `--yes` does not tick
/// checks — until the checks are ticked and the block has passed; then the
/// release goes on. Skipping needs `--yes` and a reason, and is audited.
#[test]
fn checklist_step_blocks_a_headless_release_until_done() {
    let (dir, cfg, marker) = setup(false);
    let c = cfg.to_str().unwrap();
    let pre = dir.path().join("runbooks/pre.md");
    let f = pre.to_str().unwrap();

    // --exit-on-pause: the checklist waits like an approval; --yes does not pass it.
    let r = run(
        &[
            "--config",
            c,
            "run",
            "--headless",
            "--yes",
            "--exit-on-pause",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("waiting for checklist"), "{}", r.stdout);
    assert!(
        !marker.exists(),
        "the deploy ran past an unticked checklist"
    );

    // Ticks before this release's checklist do not count: the everyday
    // progress is not the release's.
    let everyday = ProgressStore::in_state(
        &rolldeck::runtime::StatePaths::resolve(&rolldeck::config::load(&cfg).unwrap(), None)
            .unwrap()
            .dir,
        &pre,
    );
    assert_ne!(everyday.path(), store(&cfg, &pre).path());

    // Resume, watched: tick one check, then the other, then run the block.
    let mut live = Live::spawn(&["--config", c, "run", "--headless", "--yes"]);
    live.wait_for(DEADLINE, |v| {
        v["event"] == "action_output" && v.to_string().contains("0/2 checks ticked")
    });
    let tick = run(
        &["--config", c, "runbook", f, "--tick", "Backups"],
        &[],
        DEADLINE,
    );
    assert_eq!(tick.code, 0, "{}", tick.stderr);
    live.wait_for(DEADLINE, |v| {
        v.to_string()
            .contains("1/2 checks ticked, 0/1 blocks passed")
    });
    assert_eq!(
        run(
            &["--config", c, "runbook", f, "--tick", "Team told"],
            &[],
            DEADLINE
        )
        .code,
        0
    );
    assert!(!marker.exists());
    let smoke = run(
        &["--config", c, "runbook", f, "--run", "smoke"],
        &[],
        DEADLINE,
    );
    assert_eq!(smoke.code, 0, "{}", smoke.stderr);
    let done = live.wait_for(DEADLINE, |v| v["event"] == "release_finished");
    assert_eq!(done["outcome"], "promoted", "{:?}", live.seen);
    assert_eq!(live.wait_exit(DEADLINE), 0);
    assert!(marker.exists());

    // A new release: its checklist starts empty, and skipping it is audited.
    std::fs::remove_file(&marker).unwrap();
    let r = run(
        &[
            "--config",
            c,
            "run",
            "--headless",
            "--yes",
            "--exit-on-pause",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(
        r.code, 4,
        "the last release's ticks passed this one:\n{}",
        r.stdout
    );
    let r = run(
        &[
            "--config",
            c,
            "runbook",
            f,
            "--skip-checklist",
            "--reason",
            "hotfix",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 1, "skipped without --yes");
    let r = run(
        &[
            "--config",
            c,
            "runbook",
            f,
            "--skip-checklist",
            "--reason",
            "hotfix for INC-42",
            "--yes",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        &["--config", c, "run", "--headless", "--yes"],
        &[],
        DEADLINE,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("skipped by"), "{}", r.stdout);
    assert!(marker.exists());
    let paths =
        rolldeck::runtime::StatePaths::resolve(&rolldeck::config::load(&cfg).unwrap(), None)
            .unwrap();
    let audit = rolldeck::exec::AuditLog::read_all(&paths.audit).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "checklist-skip"
                && a.reason.as_deref() == Some("hotfix for INC-42"))
    );
}

/// The seed runbooks in `runbooks/` parse without errors; the demo's copy
/// is the same text.
#[test]
fn seed_runbooks_parse_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let entries = runbook::discover(&[root]).unwrap();
    assert!(entries.len() >= 7, "{entries:?}");
    for e in &entries {
        let rb = runbook::Runbook::load(&e.path).unwrap();
        assert!(
            !rb.problems.iter().any(|p| p.severity == Severity::Error),
            "{}: {:?}",
            e.name,
            rb.problems
        );
        let embedded = runbook::demo::FILES
            .iter()
            .find(|(rel, _)| Path::new(rel).with_extension("") == Path::new(&e.name));
        let (_, text) = embedded.unwrap_or_else(|| panic!("{} is not in the demo", e.name));
        assert_eq!(*text, std::fs::read_to_string(&e.path).unwrap());
    }
    assert_eq!(
        runbook::find(
            &entries,
            "https://wiki.example/runbooks/manual-rollback.md#verify"
        )
        .map(|e| e.name.as_str()),
        Some("manual-rollback")
    );
}

/// `[runbooks]` and checklist steps are checked at load, each problem at
/// its file:line:col.
#[test]
fn config_problems_name_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(
        dir.path().join("runbooks/bad.md"),
        "# Bad\n\n```sh {\"confirm\":\"maybe\"}\necho\n```\n",
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        r#"service = "x"

[environment]
name = "staging"

[runbooks]
dirs = ["runbooks", "missing"]
vars = { "1BAD" = "v", EMPTY = "" }
timeout = "90d"

[plans.default]
[[plans.default.steps]]
kind = "checklist"
checklist = "runbooks/bad.md"

[[plans.default.steps]]
kind = "checklist"

[[rollback]]
kind = "checklist"
checklist = "runbooks/bad.md"
"#,
    );
    let e = rolldeck::config::load(&cfg).unwrap_err().to_string();
    for (want, line) in [
        ("runbook directory", 7),
        ("is not a variable name", 8),
        ("empty value", 8),
        ("longer than the limit of 30 days", 9),
        (
            "line 3: error: attribute `confirm` must be true or false",
            14,
        ),
        ("a `checklist` step needs `checklist`", 17),
        ("rollback steps cannot wait for a checklist", 20),
    ] {
        let hit = e
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("no {want:?} in:\n{e}"));
        assert!(
            hit.contains(&format!("rolldeck.toml:{line}:")),
            "{want:?} not at line {line}: {hit}"
        );
    }
}

/// A PromQL block runs against a real Prometheus (the demo's) and comes
/// back as a table with the target's labels.
#[test]
fn a_promql_block_queries_a_real_prometheus() {
    let _g = common::heavy();
    let Some(prom) = common::prometheus_or_skip("a_promql_block_queries_a_real_prometheus") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt
        .block_on(rolldeck::demo::DemoEnv::start(
            rolldeck::demo::Scenario::Good,
            Some(prom),
        ))
        .expect("demo env");
    let dir = tempfile::tempdir().unwrap();
    let text = rolldeck::demo::scenario_config::demo_config(
        &env,
        &dir.path().join("state"),
        rolldeck::demo::scenario_config::Pace::Fast,
    );
    let cfg = write_config(dir.path(), &text);
    let c = cfg.to_str().unwrap();
    std::fs::write(
        dir.path().join("runbooks/up.md"),
        "# Up\n\n```promql {\"name\":\"up\"}\nup{job=\"demo\"}\n```\n\n```promql {\"name\":\"bad\"}\nsum(\n```\n",
    )
    .unwrap();
    // The first scrape may not have happened yet: an empty answer is
    // "no series", asked again until the targets show.
    let mut last = None;
    for _ in 0..60 {
        let r = run(
            &["--config", c, "runbook", "up", "--run", "up"],
            &[],
            DEADLINE,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        if r.stdout.contains("canary") && r.stdout.contains("stable") {
            last = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = last.expect("both tracks in `up`");
    let header = r.stdout.lines().next().unwrap();
    for col in ["__name__", "instance", "job", "track", "value"] {
        assert!(header.contains(col), "{header}");
    }
    // A PromQL syntax error is Prometheus' own message, and a failure.
    let bad = run(
        &["--config", c, "runbook", "up", "--run", "bad"],
        &[],
        DEADLINE,
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("bad_data"), "{}", bad.stderr);
    // The demo's own runbook, by name, through its configured directory.
    let listed = run(
        &[
            "--config",
            c,
            "runbook",
            "manual-rollback",
            "--list",
            "--json",
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("error-rate-by-track"));
    rt.block_on(env.stop());
}

/// Runbook variables may come from the environment (`${env:…}`); one
/// named like a secret never reaches the output or the progress file.
#[test]
fn secret_variables_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "x"
state_dir = "{}"

[environment]
name = "staging"

[runbooks]
dirs = ["runbooks"]
vars = {{ API_TOKEN = "tok-8c1f5e22", REGION = "${{env:RB_TEST_REGION}}" }}

[actions.noop]
argv = ["true"]

[plans.default]
[[plans.default.steps]]
kind = "action"
action = "noop"
"#,
            dir.path().join("state").display()
        ),
    );
    let file = runbook_file(
        dir.path(),
        "s.md",
        "# S\n\n```sh {\"name\":\"show\"}\necho \"$REGION $API_TOKEN $DB_PASSWORD\"\n```\n",
    );
    let r = run(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "runbook",
            file.to_str().unwrap(),
            "--run",
            "show",
            "--var",
            "DB_PASSWORD=pw-77aa91",
        ],
        &[("RB_TEST_REGION", "eu-west-1")],
        DEADLINE,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("eu-west-1 "), "{}", r.stdout);
    for secret in ["tok-8c1f5e22", "pw-77aa91"] {
        assert!(!r.stdout.contains(secret), "{}", r.stdout);
        assert!(!r.stderr.contains(secret), "{}", r.stderr);
        let state = dir.path().join("state");
        for f in walk(&state) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(!text.contains(secret), "{} holds {secret}", f.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `rolldeck check` reads every runbook of `[runbooks] dirs`: one with a
/// malformed block fails the check, naming the line.
#[test]
fn check_reports_runbook_problems() {
    let (dir, cfg, _) = setup(false);
    let c = cfg.to_str().unwrap();
    let ok = run(&["--config", c, "check"], &[], DEADLINE);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("runbook:pre"), "{}", ok.stdout);
    runbook_file(
        dir.path(),
        "broken.md",
        "# Broken\n\n```sh {\"timeout\":\"soon\"}\necho\n```\n",
    );
    let bad = run(&["--config", c, "check"], &[], DEADLINE);
    assert_ne!(bad.code, 0, "{}", bad.stdout);
    let line = bad
        .stdout
        .lines()
        .find(|l| l.contains("runbook:broken"))
        .unwrap_or_else(|| panic!("{}", bad.stdout));
    assert!(line.contains("line 3: error"), "{line}");
}
