//! One driver per service+environment across Unix users on one host: the
//! default state dir is shared (beside the config file), and `check` warns
//! when a protected environment's state dir is private to one user.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

fn config(dir: &std::path::Path, extra: &str, protected: bool) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            r#"service = "svc"
{extra}
[environment]
name = "prod"
protected = {protected}
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "pause"
duration = "60s"
"#
        ),
    )
}

#[test]
fn two_users_of_one_config_cannot_both_drive() {
    if !nix::unistd::getuid().is_root() {
        eprintln!(
            "skipped two_users_of_one_config_cannot_both_drive: needs root to run as another user"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config(dir.path(), "", false);
    let cfg_s = cfg.to_str().unwrap();
    let mut first = Live::spawn(&["run", "--headless", "--yes", "--config", cfg_s]);
    first.wait_for(Duration::from_secs(20), |e| e["event"] == "step_started");
    // The state lives beside the config, shared with the group.
    let state = dir.path().join(".rolldeck");
    assert!(state.is_dir());
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o7777,
        0o2775
    );
    // Another user (nobody) on the same host, same config: refused.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["run", "--headless", "--yes", "--config", cfg_s])
        .env_remove("HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another rolldeck drives this release")
            && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
}

#[test]
fn check_warns_when_a_protected_state_dir_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = config(
        dir.path(),
        &format!("state_dir = \"{}\"", private.display()),
        true,
    );
    let r = run(
        &["check", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        r.stdout.contains("WARNING: state dir") && r.stdout.contains("private to one user"),
        "{r:?}"
    );
    // Shared with the group: no warning.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let r = run(
        &["check", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    assert!(!r.stdout.contains("WARNING: state dir"), "{r:?}");
}
