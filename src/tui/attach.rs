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
/// then says it is gone and offers to resume).
///
/// # Errors
///
/// `rolldeck attach` with no background driver for this
/// service+environment; an unreadable `background.json`.
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
        Liveness::None | Liveness::Gone(_) if explicit => anyhow::bail!(
            "no background driver for {}: `rolldeck run --detach` starts one",
            paths.dir.display()
        ),
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
