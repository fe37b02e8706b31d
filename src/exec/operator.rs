//! Who is running rolldeck.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::strip_control;

/// Who ran an action: user, host, SSH client address and terminal.
///
/// Displayed as `alice@bastion (ssh 10.0.0.5, /dev/pts/3)`; the parenthesis
/// lists only what is known and is left out when nothing is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Login name: `$USER`, else the name of the real uid (via the user
    /// database), else `uid<N>`.
    pub user: String,
    /// This machine's host name (`localhost` if unknown).
    pub host: String,
    /// The SSH client's address: the first field of `$SSH_CONNECTION` (or of
    /// `$SSH_CLIENT`), when logged in over SSH.
    pub ssh_client: Option<String>,
    /// The terminal on stdin (`/dev/pts/3`, `/dev/tty1`), when there is one.
    pub tty: Option<String>,
}

impl Operator {
    /// Describes the current process's operator from the environment, the
    /// user database and `/proc/self/fd/0`. Never fails: unknown parts fall
    /// back as documented on the fields. Control characters are removed from
    /// every part.
    pub fn current() -> Self {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| strip_control(v.trim()))
                .filter(|v| !v.is_empty())
        };
        let uid = nix::unistd::getuid();
        let user = env("USER")
            .or_else(|| {
                nix::unistd::User::from_uid(uid)
                    .ok()
                    .flatten()
                    .map(|u| strip_control(&u.name))
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| format!("uid{uid}"));
        let host = nix::unistd::gethostname()
            .ok()
            .map(|h| strip_control(h.to_string_lossy().trim()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let first_field = |v: String| v.split_whitespace().next().map(str::to_string);
        let ssh_client = env("SSH_CONNECTION")
            .and_then(first_field)
            .or_else(|| env("SSH_CLIENT").and_then(first_field));
        let tty = std::fs::read_link("/proc/self/fd/0")
            .ok()
            .map(|p| strip_control(&p.to_string_lossy()))
            .filter(|p| p.starts_with("/dev/pts/") || p.starts_with("/dev/tty"));
        Self {
            user,
            host,
            ssh_client,
            tty,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.host)?;
        let mut extra: Vec<String> = Vec::new();
        if let Some(a) = &self.ssh_client {
            extra.push(format!("ssh {a}"));
        }
        if let Some(t) = &self.tty {
            extra.push(t.clone());
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}
