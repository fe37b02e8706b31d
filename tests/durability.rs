//! Durability end to end, with the built binary: a NaN measurement from a
//! real Prometheus keeps `status`, `history` and `run --resume` working;
//! services whose names differ only in path-unsafe characters keep separate
//! state; a journal of another service is never resumed.

mod common;

use common::*;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(90);

fn approval_config(dir: &std::path::Path, service: &str) -> std::path::PathBuf {
    let cfg_dir = dir.join(service.replace('/', "-slash-"));
    std::fs::create_dir_all(&cfg_dir).unwrap();
    write_config(
        &cfg_dir,
        &format!(
            r#"service = "{service}"
state_dir = "{}"
[environment]
name = "staging"
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "approval"
message = "go?"
"#,
            dir.join("state").display()
        ),
    )
}

#[test]
fn pay_slash_api_and_pay_underscore_api_keep_separate_releases() {
    let dir = tempfile::tempdir().unwrap();
    let a = approval_config(dir.path(), "pay_api");
    let b = approval_config(dir.path(), "pay/api");
    let ra = run(
        &[
            "run",
            "--headless",
            "--exit-on-pause",
            "--config",
            a.to_str().unwrap(),
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(ra.code, 4, "{ra:?}");
    // The other service starts its own release; it does not resume pay_api's.
    let rb = run(
        &[
            "run",
            "--headless",
            "--exit-on-pause",
            "--config",
            b.to_str().unwrap(),
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(rb.code, 4, "{rb:?}");
    let ev = rb.events();
    assert!(
        ev.iter().any(|e| e["event"] == "release_started"),
        "{}",
        rb.stdout
    );
    assert!(!ev.iter().any(|e| e["event"] == "resumed"), "{}", rb.stdout);
    let st = run(
        &["status", "--json", "--config", b.to_str().unwrap()],
        &[],
        DEADLINE,
    );
    let v: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(v["service"], "pay/api", "{v}");
    let mut dirs: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, vec!["pay%2Fapi@staging", "pay_api@staging"]);

    // A state directory holding another service's unfinished release (copied
    // by hand, or a shared state_dir mix-up) is refused, naming both.
    let c = approval_config(dir.path(), "pay-api");
    let from = dir.path().join("state/pay_api@staging");
    let to = dir.path().join("state/pay-api@staging");
    std::fs::create_dir_all(to.join("releases")).unwrap();
    std::fs::copy(from.join("current"), to.join("current")).unwrap();
    for e in std::fs::read_dir(from.join("releases")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("releases").join(e.file_name())).unwrap();
    }
    let rc = run(
        &[
            "run",
            "--headless",
            "--exit-on-pause",
            "--config",
            c.to_str().unwrap(),
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(rc.code, 1, "{rc:?}");
    assert!(
        rc.stderr.contains("refusing to resume")
            && rc.stderr.contains("`pay_api`")
            && rc.stderr.contains("`pay-api`"),
        "{}",
        rc.stderr
    );
}

#[test]
fn a_nan_measurement_keeps_status_history_and_resume_working() {
    let Some(prom_bin) =
        prometheus_or_skip("a_nan_measurement_keeps_status_history_and_resume_working")
    else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let prom = rt
        .block_on(rolldeck::demo::prometheus::start(&prom_bin, &[]))
        .expect("prometheus");
    let dir = tempfile::tempdir().unwrap();
    // A rate of a service with no traffic: 0/0 is NaN in PromQL.
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "nan"
state_dir = "{}"
[environment]
name = "staging"
[sources.prometheus]
url = "{}"
[[checks]]
name = "error-rate"
query = 'label_replace(vector(0) / vector(0), "track", "{{track}}", "", "")'
requests_query = 'label_replace(vector(0) / vector(0), "track", "{{track}}", "", "")'
max = 0.5
window = "2s"
interval = "1s"
inconclusive_limit = 2
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "analysis"
checks = ["error-rate"]
duration = "30s"
"#,
            dir.path().join("state").display(),
            prom.url
        ),
    );
    let c = cfg.to_str().unwrap();
    let first = run(
        &["run", "--headless", "--exit-on-pause", "--config", c],
        &[],
        DEADLINE,
    );
    assert_eq!(first.code, 4, "{first:?}");
    assert!(
        first.finished()["reason"]
            .as_str()
            .unwrap()
            .contains("inconclusive"),
        "{}",
        first.stdout
    );

    let st = run(&["status", "--json", "--config", c], &[], DEADLINE);
    assert_eq!(st.code, 0, "{st:?}");
    let v: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(v["phase"], "paused", "{v}");
    assert_eq!(v["verdicts"][0]["canary"], "NaN", "{v}");

    let h = run(&["history", "--json", "--config", c], &[], DEADLINE);
    assert_eq!(h.code, 0, "{h:?}");

    // What the pause message says to type works: it resumes and pauses again.
    let again = run(
        &[
            "run",
            "--headless",
            "--exit-on-pause",
            "--resume",
            "--config",
            c,
        ],
        &[],
        DEADLINE,
    );
    assert_eq!(again.code, 4, "{again:?}");
    assert!(
        again.events().iter().any(|e| e["event"] == "resumed"),
        "{}",
        again.stdout
    );
    rt.block_on(prom.stop());
}

/// A whole headless release whose state dir (journal, audit log) is on a
/// small real tmpfs that fills up mid-release: the run stops with an error
/// (never "promoted"), the last action does not run unaudited, and once the
/// space is freed `status` reads the journal and `run` resumes to the end,
/// running that action exactly once.
#[test]
fn a_full_disk_mid_release_stops_it_and_freed_space_resumes_it() {
    use std::io::{BufRead, BufReader, Write};
    let Some(fs) = common::Tmpfs::mount("a_full_disk_mid_release", "1m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("last-ran");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"service = "disk"
state_dir = "{state}"
[environment]
name = "staging"
[actions.first]
argv = ["true"]
[actions.last]
argv = ["sh", "-c", "echo once >> {marker}"]
[plans.p]
[[plans.p.steps]]
kind = "action"
action = "first"
[[plans.p.steps]]
kind = "pause"
duration = "2s"
{pauses}[[plans.p.steps]]
kind = "action"
action = "last"
"#,
            state = fs.path().join("state").display(),
            marker = marker.display(),
            // tmpfs allocates by page: a few small appends still fit in the
            // journal's last page of a "full" disk. Many short steps after
            // the fill make the journal need new pages.
            pauses = "[[plans.p.steps]]\nkind = \"pause\"\nduration = \"100ms\"\n".repeat(60),
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["run", "--headless", "--config", cfg])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the pause step to start, then fill the disk.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let Some(Ok(l)) = lines.next() else {
            panic!("the run ended before its pause step: {seen}")
        };
        seen.push_str(&l);
        seen.push('\n');
        if l.contains("\"step_started\"") && l.contains("\"pause 2s\"") {
            break;
        }
    }
    let filler = fs.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![b'x'; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    drop(f);
    for l in lines.map_while(Result::ok) {
        seen.push_str(&l);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("full-disk run: {status:?}\n{stderr}");
    assert_ne!(
        status.code(),
        Some(0),
        "a full disk is never success: {seen}{stderr}"
    );
    assert!(!seen.contains("\"promoted\""), "{seen}");
    assert!(
        !marker.exists(),
        "the last action ran with a full disk: {seen}{stderr}"
    );

    // Space back: the journal reads, and the release resumes to the end.
    std::fs::remove_file(&filler).unwrap();
    let st = run(&["status", "--json", "--config", cfg], &[], DEADLINE);
    assert_eq!(st.code, 0, "{st:?}");
    let resumed = run(&["run", "--headless", "--config", cfg], &[], DEADLINE);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "once\n",
        "the last action ran exactly once"
    );
    let hist = run(&["history", "--json", "--config", cfg], &[], DEADLINE);
    assert_eq!(hist.code, 0, "{hist:?}");
    assert!(hist.stdout.contains("promoted"), "{hist:?}");
}
