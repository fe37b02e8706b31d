//! A new user's first minutes: `--help` with examples and exit codes, no
//! config yet, the README's first config, and a config with several
//! mistakes (all reported at once, in file order).

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The README's "Your first config".
const FIRST_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/first-config.toml");

/// Runs the binary in `dir` with no config anywhere it looks (no
/// `$ROLLDECK_CONFIG`, a home without a config directory).
fn run_without_config(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("ROLLDECK_CONFIG")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .output()
        .expect("run rolldeck");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn help_has_examples_and_the_exit_code_table() {
    let r = run(&["--help"], &[], Duration::from_secs(30));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Examples:"), "{}", r.stdout);
    assert!(r.stdout.contains("rolldeck demo"), "{}", r.stdout);
    assert!(r.stdout.contains("rolldeck check --config"), "{}", r.stdout);
    // The table's codes are the ones the binary exits with.
    use rolldeck::runtime::exit;
    for (code, meaning) in [
        (exit::PROMOTED, "promoted"),
        (exit::ERROR, "error"),
        (exit::ROLLBACK_FAILED, "the rollback itself failed"),
        (exit::ROLLED_BACK, "rolled back"),
        (exit::PAUSED, "paused for a human"),
        (exit::ABORTED, "aborted"),
        (exit::LEFT_UNFINISHED, "left unfinished"),
        (exit::INTERRUPTED, "interrupted"),
    ] {
        let row = format!("  {code:<4} {meaning}");
        assert!(r.stdout.contains(&row), "no `{row}` in\n{}", r.stdout);
    }
}

#[test]
fn no_config_says_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["status"][..], &["check"][..]] {
        let r = run_without_config(dir.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("no config file found"),
            "{args:?}: {}",
            r.stderr
        );
        for next in ["rolldeck demo", "--config FILE", "config.example.toml"] {
            assert!(
                r.stderr.contains(next),
                "{args:?} lacks {next}: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn the_first_config_in_the_readme_passes_validation() {
    // In-process: it loads and its plan has the three steps the README names.
    let cfg = rolldeck::config::load(Path::new(FIRST_CONFIG)).unwrap_or_else(|e| panic!("{e}"));
    let plan = rolldeck::release::Plan::from_config(&cfg, None).unwrap();
    assert_eq!(plan.steps.len(), 3);
    assert!(cfg.sources.prometheus.is_some());
    assert_eq!(cfg.sources.health.len(), 1);
    assert_eq!(cfg.actions.len(), 1);
    // `rolldeck check` accepts it (its sources may well be down here: the
    // probes are not what this test is about).
    let r = run(
        &["check", "--config", FIRST_CONFIG],
        &[],
        Duration::from_secs(60),
    );
    assert!(
        r.stdout
            .starts_with("config ok: service checkout, environment staging"),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stdout.contains("warning:"), "{}", r.stdout);
    assert!(r.code == 0 || r.code == 1, "{}", r.code);
}

#[test]
fn the_readme_shows_the_first_config_and_it_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Your first config")
        .nth(1)
        .expect("README has a \"Your first config\" section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a TOML block in the section");
    let cfg =
        rolldeck::config::parse(block, Path::new("README.md")).unwrap_or_else(|e| panic!("{e}"));
    let example = rolldeck::config::load(Path::new(FIRST_CONFIG)).unwrap();
    // The same config as the example file, comments aside.
    assert_eq!(cfg.service, example.service);
    assert_eq!(cfg.checks, example.checks);
    assert_eq!(cfg.actions, example.actions);
    assert_eq!(cfg.plans, example.plans);
    assert_eq!(cfg.rollback, example.rollback);
    assert_eq!(cfg.rollback_when, example.rollback_when);
    assert_eq!(cfg.sources, example.sources);
}

/// The position (`line:col`) of every error line of `stderr`.
fn positions(stderr: &str, file: &str) -> Vec<(usize, usize)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(file)?.strip_prefix(':'))
        .map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap().parse().unwrap();
            let col = parts.next().unwrap().parse().unwrap();
            (line, col)
        })
        .collect()
}

#[test]
fn every_config_error_is_reported_at_once_in_line_order() {
    let dir = tempfile::tempdir().unwrap();
    // Two misspelt keys and two mistakes the validation finds (an unknown
    // action, a zero interval), spread over the file.
    let text = std::fs::read_to_string(FIRST_CONFIG)
        .unwrap()
        .replace(
            "name = \"staging\"",
            "nmae = \"staging\"\nname = \"staging\"",
        )
        .replace("timeout = \"30s\"", "timout = \"30s\"")
        .replace(
            "url = \"http://127.0.0.1:8081/health\"",
            "url = \"http://127.0.0.1:8081/health\"\ninterval = \"0s\"",
        )
        .replace("weight = 100", "weight = 100\naction = \"trafic\"");
    let path = write_config(dir.path(), &text);
    let file = path.to_str().unwrap();
    let r = run(&["check", "--config", file], &[], Duration::from_secs(30));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let found = positions(&r.stderr, file);
    assert_eq!(found.len(), 4, "{}", r.stderr);
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(found, sorted, "not in file order:\n{}", r.stderr);
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        lines,
        [
            line("nmae"),
            line("interval = \"0s\""),
            line("timout"),
            line("trafic")
        ],
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `name`?"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `timeout`?"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `traffic`?"), "{}", r.stderr);

    // Values of the wrong shape: each one reported, nothing made up for the
    // keys set aside.
    let text = std::fs::read_to_string(FIRST_CONFIG)
        .unwrap()
        .replace("max = 0.05", "max = \"5%\"")
        .replace("duration = \"5m\"", "duration = \"five minutes\"")
        .replace("weight = 10\n", "weight = \"ten\"\n");
    let path = write_config(dir.path(), &text);
    let r = run(&["check", "--config", file], &[], Duration::from_secs(30));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<usize> = positions(&r.stderr, file).iter().map(|(l, _)| *l).collect();
    assert_eq!(
        lines,
        [
            line_in(&text, "\"5%\""),
            line_in(&text, "\"ten\""),
            line_in(&text, "five minutes")
        ],
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("missing field"), "{}", r.stderr);
    drop(path);
}

fn line_in(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}
