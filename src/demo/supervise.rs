//! `rolldeck __supervise PARENT_PID PROGRAM ARGS…`: the tiny first stage of
//! every child process the demo starts (Prometheus). It asks the kernel to
//! `SIGKILL` it when its parent (rolldeck) dies — even by `kill -9` — then
//! `exec`s the program, which keeps that setting (Linux `PR_SET_PDEATHSIG`,
//! set through `nix`, no `unsafe` of our own).
//!
//! Used only when [`use_supervisor`] was called (the `rolldeck` binary does
//! at start); elsewhere (tests linking the library) children are spawned
//! directly.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__supervise";

static SUPERVISOR: OnceLock<PathBuf> = OnceLock::new();

/// Makes the demo start its children through `exe __supervise …` (`exe`:
/// the running `rolldeck` binary).
pub fn use_supervisor(exe: PathBuf) {
    let _ = SUPERVISOR.set(exe);
}

/// A command that runs `program` so that it dies with this process: through
/// the supervisor when one is set, else directly.
pub fn command(program: &Path) -> tokio::process::Command {
    match SUPERVISOR.get() {
        Some(exe) => {
            let mut c = tokio::process::Command::new(exe);
            c.arg(SUBCOMMAND)
                .arg(std::process::id().to_string())
                .arg(program);
            c
        }
        None => tokio::process::Command::new(program),
    }
}

/// The subcommand: `args` are what follows `__supervise` (`PARENT_PID
/// PROGRAM ARGS…`). Returns only on failure, with the exit code (1) after
/// printing why; on success the process becomes `PROGRAM`.
pub fn main(args: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt as _;
    let (Some(parent), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("rolldeck {SUBCOMMAND}: usage: {SUBCOMMAND} PARENT_PID PROGRAM [ARGS…]");
        return 1;
    };
    let Some(parent) = parent.to_str().and_then(|p| p.parse::<i32>().ok()) else {
        eprintln!("rolldeck {SUBCOMMAND}: not a process id: {parent:?}");
        return 1;
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("rolldeck {SUBCOMMAND}: cannot set the parent-death signal: {e}");
        return 1;
    }
    // The parent may have died before the setting took effect.
    if nix::unistd::getppid().as_raw() != parent {
        eprintln!("rolldeck {SUBCOMMAND}: rolldeck (pid {parent}) is gone; not starting");
        return 1;
    }
    let e = std::process::Command::new(program).args(&args[2..]).exec();
    eprintln!(
        "rolldeck {SUBCOMMAND}: cannot run {}: {e}",
        Path::new(program).display()
    );
    1
}
