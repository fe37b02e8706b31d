//! The cockpit attached to a background driver ([`crate::control`]): the
//! state comes from the journal as for an observer; commands go over the
//! driver's control socket and their results come back as a flash and a
//! log line; when the driver is gone, `:takeover` starts a new background
//! driver that resumes from the journal.

use super::app::{App, Msg, Role};
use super::logs::{Level, LogLine, LogSource};
use crate::control::{self, Background, Liveness};
use crate::release::engine::Issued;
use crate::runtime::StatePaths;
use tokio::sync::mpsc;

/// The background driver a cockpit attaches to: the running one (unless
/// read-only), or with `rolldeck attach` also a killed one (the cockpit
/// then says it is gone and offers to resume). `rolldeck attach` without
/// one opens read-only on the journal (the last release's outcome).
///
/// # Errors
///
/// An unreadable `background.json` or journal.
pub fn target(
    paths: &StatePaths,
    read_only: bool,
    explicit: bool,
) -> anyhow::Result<Option<Background>> {
    let live = control::liveness(paths).map_err(anyhow::Error::msg)?;
    Ok(match live {
        _ if read_only => None,
        Liveness::Running(b) => Some(b),
        Liveness::Gone(b) if explicit => Some(b),
        _ => None,
    })
}

/// The header's words for an attached cockpit.
pub fn describe(b: &Background) -> String {
    format!(
        "background driver pid {} (started by {})",
        b.pid, b.started_by
    )
}

/// A command channel whose commands go to the driver at `socket`; each
/// result is shown as a flash and a log line.
pub fn forwarder(socket: std::path::PathBuf, tx: mpsc::Sender<Msg>) -> mpsc::Sender<Issued> {
    let (cmd_tx, cmd_rx) = mpsc::channel::<Issued>(16);
    tokio::spawn(control::client::forward(socket, cmd_rx, move |r| {
        let (level, text) = match r {
            Ok(t) => (Level::Info, t),
            Err(e) => (Level::Error, e),
        };
        let _ = tx.try_send(Msg::Log(LogLine::new(
            LogSource::Rolldeck,
            level,
            text.clone(),
        )));
        let _ = tx.try_send(Msg::Flash(text));
    }));
    cmd_tx
}

/// `:takeover` in an attached cockpit whose driver is gone: a new
/// background driver resumes the release from the journal (the journal
/// and the driver lock make this safe: an action the killed driver left
/// running is waited for and never run twice, see
/// [`crate::exec::AuditLog::settle_unfinished`]). Returns the new command
/// channel, or says why not in the flash.
pub async fn resume(
    app: &mut App,
    cfg: &crate::config::Config,
    paths: &StatePaths,
    tx: &mpsc::Sender<Msg>,
) -> Option<mpsc::Sender<Issued>> {
    let start = control::background::Start {
        resume: false,
        ..Default::default()
    };
    let (cfg, p) = (cfg.clone(), paths.clone());
    let spawned =
        tokio::task::spawn_blocking(move || control::background::spawn(&cfg, &p, &start)).await;
    app.dirty = true;
    match spawned {
        Ok(Ok(b)) => {
            app.role = Role::Attached(describe(&b));
            app.driver_gone = false;
            app.flash = Some(format!(
                "resumed: background driver pid {} drives release {} from the journal",
                b.pid, b.release
            ));
            Some(forwarder(b.socket, tx.clone()))
        }
        Ok(Err(e)) => {
            app.flash = Some(format!("cannot resume: {e}"));
            None
        }
        Err(e) => {
            app.flash = Some(format!("cannot resume: {e}"));
            None
        }
    }
}

/// The terminal of a driving cockpit hung up mid-release and its driver
/// has stopped (the lock is free): a background driver resumes the release
/// from the journal (after the `on_hangup` command was journaled, see
/// [`control::OnHangup`]). Returns [`crate::runtime::exit::DETACHED`], or
/// [`crate::runtime::exit::INTERRUPTED`] when no driver could be started;
/// either way the outcome is appended to the driver log, since the
/// terminal is gone.
/// `operator`: a hang-up's (the `on_hangup` command is issued in its
/// name); `None` for `:detach`, which issues none and says the outcome on
/// the terminal too.
pub async fn hand_off(
    cfg: &crate::config::Config,
    paths: &StatePaths,
    operator: Option<&str>,
) -> i32 {
    use std::io::Write as _;
    let (c, p) = (cfg.clone(), paths.clone());
    let start = control::background::Start {
        command: operator.and_then(|o| hangup_command(cfg.on_hangup, o)),
        ..Default::default()
    };
    let r = tokio::task::spawn_blocking(move || control::background::spawn(&c, &p, &start))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let (code, line) = match r {
        Ok(b) => (
            crate::runtime::exit::DETACHED,
            format!(
                "release {} handed to background driver pid {}",
                b.release, b.pid
            ),
        ),
        Err(e) => (
            crate::runtime::exit::INTERRUPTED,
            format!("no background driver could take over the release: {e}"),
        ),
    };
    tracing::warn!("{line}");
    if operator.is_none() {
        eprintln!("rolldeck: {line}; `rolldeck attach` returns to it");
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(control::log_path(paths))
    {
        let _ = writeln!(f, "=== {} {line} ===", jiff::Timestamp::now());
    }
    code
}

/// The command `on_hangup` journals before the hand-off (`None`: detach).
pub fn hangup_command(
    on: control::OnHangup,
    operator: &str,
) -> Option<crate::release::engine::Issued> {
    use crate::release::engine::Command;
    let command = match on {
        control::OnHangup::Detach => return None,
        control::OnHangup::Pause => Command::Pause,
        control::OnHangup::Rollback => Command::Rollback,
    };
    Some(Issued {
        command,
        operator: operator.to_string(),
        reason: Some("the terminal hung up (on_hangup)".into()),
    })
}
