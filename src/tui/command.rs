//! The `:` command line: parsing ([`parse_command`]) and Tab completion
//! ([`complete`]) of commands and plan names.

use super::keymap::nearest;

/// A parsed `:` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `rollback [reason…]`: roll back, with an optional free-text reason
    /// for the journal.
    Rollback {
        /// The rest of the line, if any (one pair of surrounding quotes
        /// removed).
        reason: Option<String>,
    },
    /// `promote`: to the next step.
    Promote,
    /// `promote --full`: straight to full traffic.
    PromoteFull,
    /// `weight N`: set the canary weight to N percent (0–100).
    Weight(u8),
    /// `pause`.
    Pause,
    /// `resume`.
    Resume,
    /// `approve`: the waiting gate.
    Approve,
    /// `retry`: the failed step.
    Retry,
    /// `abort`.
    Abort,
    /// `quit` or `q`.
    Quit,
    /// `help`.
    Help,
    /// `takeover`: an observer whose driver is gone takes the driver lock
    /// and resumes the release from the journal.
    Takeover,
    /// `detach`: hand the release this cockpit drives to a background
    /// driver and leave ([`crate::control`]).
    Detach,
    /// `start [PLAN]`: begin a new release (plan: the default one).
    Start {
        /// The plan, if named.
        plan: Option<String>,
    },
    /// `debug`: show or hide rolldeck's own tracing (tui-logger's view,
    /// with per-target levels).
    Debug,
    /// `incident …`, `note …`, `timeline`: the incident desk's commands
    /// ([`super::desk::DeskCommand`]).
    Desk(super::desk::DeskCommand),
}

impl CommandLine {
    /// True for every command but `quit`, `help` and `debug`: the cockpit confirms
    /// these before acting, as it does for
    /// [`Action::changes_world`](super::keymap::Action::changes_world) keys.
    pub fn changes_world(&self) -> bool {
        !matches!(
            self,
            CommandLine::Quit | CommandLine::Help | CommandLine::Debug
        )
    }
}

/// The commands [`parse_command`] knows, for completion and error messages.
pub const COMMANDS: &[&str] = &[
    "rollback", "promote", "weight", "pause", "resume", "approve", "retry", "abort", "quit",
    "help", "start", "takeover", "detach", "debug", "incident", "note", "timeline",
];

/// Parses a `:` command line (with or without the leading `:`): `rollback
/// [reason…]`, `promote`, `promote --full`, `weight N` (0–100, a trailing
/// `%` allowed), `pause`, `resume`, `approve`, `retry`, `abort`, `quit`/`q`,
/// `help`. The command word is case-insensitive; the reason is kept as
/// written.
///
/// # Errors
///
/// A message for the user: an empty line, an unknown command (listing the
/// valid ones and suggesting the nearest), arguments to a command that takes
/// none, or a weight that is not a whole number from 0 to 100.
pub fn parse_command(line: &str) -> Result<CommandLine, String> {
    let usage = "commands: rollback [reason], promote [--full], weight N, pause, resume, \
                 approve, retry, abort, start [plan], takeover, detach, debug, quit, help";
    let line = line.trim();
    let line = line.strip_prefix(':').unwrap_or(line).trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    if word.is_empty() {
        return Err(format!("empty command; {usage}"));
    }
    let command = word.to_lowercase();
    let no_args = |parsed: CommandLine| {
        if rest.is_empty() {
            Ok(parsed)
        } else {
            Err(format!("`{command}` takes no arguments (got `{rest}`)"))
        }
    };
    match command.as_str() {
        "rollback" => {
            let reason = unquote(rest);
            Ok(CommandLine::Rollback {
                reason: (!reason.is_empty()).then(|| reason.to_string()),
            })
        }
        "promote" => match rest {
            "" => Ok(CommandLine::Promote),
            "--full" => Ok(CommandLine::PromoteFull),
            other => Err(format!(
                "`promote` takes only `--full` (got `{other}`): `promote` goes to the next step, \
                 `promote --full` straight to 100%"
            )),
        },
        "weight" => {
            if rest.is_empty() {
                return Err("usage: weight N, with N the canary percentage from 0 to 100".into());
            }
            let number = rest.strip_suffix('%').unwrap_or(rest).trim();
            match number.parse::<i64>() {
                Ok(n) if (0..=100).contains(&n) => {
                    Ok(CommandLine::Weight(u8::try_from(n).expect("0..=100 fits")))
                }
                Ok(n) => Err(format!("weight must be from 0 to 100, got {n}")),
                Err(_) => Err(format!(
                    "weight must be a whole number from 0 to 100, got `{rest}`"
                )),
            }
        }
        "pause" => no_args(CommandLine::Pause),
        "takeover" => no_args(CommandLine::Takeover),
        "detach" => no_args(CommandLine::Detach),
        "resume" => no_args(CommandLine::Resume),
        "approve" => no_args(CommandLine::Approve),
        "retry" => no_args(CommandLine::Retry),
        "abort" => no_args(CommandLine::Abort),
        "quit" | "q" => no_args(CommandLine::Quit),
        "help" => no_args(CommandLine::Help),
        "debug" => no_args(CommandLine::Debug),
        "start" => Ok(CommandLine::Start {
            plan: (!rest.is_empty()).then(|| rest.to_string()),
        }),
        _ => {
            if let Some(desk) = super::desk::parse(&command, rest) {
                return desk.map(CommandLine::Desk);
            }
            let hint = nearest(&command, COMMANDS.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            Err(format!("unknown command `{word}`{hint} ({usage})"))
        }
    }
}

/// Removes one pair of matching surrounding quotes.
fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner.trim();
        }
    }
    text
}

/// What the argument of each command is, for the candidates line of the
/// `:` prompt once the command word is typed; `None` for commands without
/// arguments.
pub fn usage(command: &str) -> Option<&'static str> {
    match command {
        "rollback" => Some("rollback [reason]: roll back; the reason goes to the audit log"),
        "promote" => Some("promote: the next step · promote --full: straight to 100%"),
        "weight" => Some("weight N: set the canary weight to N% (0–100)"),
        "start" => Some("start [plan]: begin a new release (default plan without a name)"),
        _ => super::desk::usage(command),
    }
}

/// What Tab does to a `:` command line, and what the prompt shows under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The line after Tab: the word being typed completed to its only
    /// candidate (a command that takes arguments gets a space after it), or
    /// extended to the candidates' longest common prefix; unchanged when
    /// nothing matches.
    pub line: String,
    /// Every candidate for the word being typed, in [`COMMANDS`] order for
    /// commands and config order for plan names.
    pub candidates: Vec<String>,
}

/// Completes the word under the cursor (the end of `line`, the `:` prompt's
/// text without the `:`): a command name from [`COMMANDS`] while the first
/// word is typed (case-insensitive prefix), a plan name from `plans` after
/// `start `, `--full` after `promote `. Other arguments (a weight, a
/// reason) have no candidates.
pub fn complete(line: &str, plans: &[&str]) -> Completion {
    complete_with(line, plans, &[])
}

/// [`complete`], with runbook names after `runbook `.
pub fn complete_with(line: &str, plans: &[&str], runbooks: &[&str]) -> Completion {
    let start = line.len() - line.trim_start().len();
    let body = &line[start..];
    let (word_start, options): (usize, Vec<&str>) = match body.split_once(char::is_whitespace) {
        None => (start, COMMANDS.to_vec()),
        Some((command, rest)) => {
            // Only the first argument completes; it starts after the blanks.
            let arg_start = line.len() - rest.trim_start().len();
            let arg = &line[arg_start..];
            if arg.contains(char::is_whitespace) {
                (line.len(), Vec::new())
            } else {
                match command.to_lowercase().as_str() {
                    "start" => (arg_start, plans.to_vec()),
                    "runbook" => (arg_start, runbooks.to_vec()),
                    "promote" => (arg_start, vec!["--full"]),
                    _ => (line.len(), Vec::new()),
                }
            }
        }
    };
    let typed = line[word_start..].to_lowercase();
    let candidates: Vec<String> = options
        .iter()
        .filter(|c| c.to_lowercase().starts_with(&typed))
        .map(|c| c.to_string())
        .collect();
    let head = &line[..word_start];
    let line = match candidates.as_slice() {
        [] => line.to_string(),
        [only] => {
            let space = word_start == start && usage(only).is_some();
            format!("{head}{only}{}", if space { " " } else { "" })
        }
        many => {
            let prefix = common_prefix(many);
            if prefix.chars().count() > typed.chars().count() {
                format!("{head}{prefix}")
            } else {
                line.to_string()
            }
        }
    };
    Completion { line, candidates }
}

/// The longest common prefix of `words` (by characters).
fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut prefix: Vec<char> = first.chars().collect();
    for w in &words[1..] {
        let n = prefix
            .iter()
            .zip(w.chars())
            .take_while(|(a, b)| **a == *b)
            .count();
        prefix.truncate(n);
    }
    prefix.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        use CommandLine::*;
        assert_eq!(parse_command("rollback"), Ok(Rollback { reason: None }));
        assert_eq!(
            parse_command(":rollback  p99 latency x3 "),
            Ok(Rollback {
                reason: Some("p99 latency x3".into())
            })
        );
        assert_eq!(
            parse_command("rollback \"bad deploy\""),
            Ok(Rollback {
                reason: Some("bad deploy".into())
            })
        );
        assert_eq!(parse_command("promote"), Ok(Promote));
        assert_eq!(parse_command("promote --full"), Ok(PromoteFull));
        assert!(parse_command("promote --fast").is_err());
        assert_eq!(parse_command("weight 25"), Ok(Weight(25)));
        assert_eq!(parse_command("weight 0"), Ok(Weight(0)));
        assert_eq!(parse_command("weight 100%"), Ok(Weight(100)));
        assert!(
            parse_command("weight 101")
                .unwrap_err()
                .contains("0 to 100")
        );
        assert!(parse_command("weight -1").unwrap_err().contains("0 to 100"));
        assert!(
            parse_command("weight lots")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_command("weight").unwrap_err().contains("usage"));
        assert_eq!(parse_command("pause"), Ok(Pause));
        assert_eq!(parse_command("resume"), Ok(Resume));
        assert_eq!(parse_command("approve"), Ok(Approve));
        assert_eq!(parse_command("retry"), Ok(Retry));
        assert_eq!(parse_command("abort"), Ok(Abort));
        assert_eq!(parse_command("q"), Ok(Quit));
        assert_eq!(parse_command("QUIT"), Ok(Quit));
        assert_eq!(parse_command("help"), Ok(Help));
        assert!(
            parse_command("pause now")
                .unwrap_err()
                .contains("takes no arguments")
        );
        assert!(parse_command("").unwrap_err().contains("empty"));
        let e = parse_command("rolback now").unwrap_err();
        assert!(e.contains("did you mean `rollback`"), "{e}");
        assert!(e.contains("weight N"), "{e}");
        assert!(Rollback { reason: None }.changes_world());
        assert!(!Quit.changes_world());
    }

    #[test]
    fn completes_command_words() {
        let c = complete("ro", &[]);
        assert_eq!(c.candidates, ["rollback"]);
        assert_eq!(c.line, "rollback ", "takes a reason: a space follows");
        let c = complete("pau", &[]);
        assert_eq!(c.line, "pause", "no arguments: no space");
        // Several candidates: shown, and the line grows to their common prefix.
        let c = complete("re", &[]);
        assert_eq!(c.candidates, ["resume", "retry"]);
        assert_eq!(c.line, "re");
        let c = complete("ta", &[]);
        assert_eq!(c.line, "takeover");
        // Case-insensitive; the candidate's spelling wins.
        assert_eq!(complete("PROM", &[]).line, "promote ");
        // Nothing typed: every command, the line unchanged.
        let c = complete("", &[]);
        assert_eq!(c.candidates.len(), COMMANDS.len());
        assert_eq!(c.line, "");
        // Nothing matches: unchanged, no candidates.
        let c = complete("xyz", &[]);
        assert!(c.candidates.is_empty());
        assert_eq!(c.line, "xyz");
        // Every completed command parses (those without arguments).
        for name in COMMANDS {
            let line = complete(&name[..2], &[]).line;
            if usage(name).is_none() && complete(&name[..2], &[]).candidates.len() == 1 {
                assert!(parse_command(&line).is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn completes_plan_names_after_start() {
        let plans = ["canary", "canary-fast", "blue-green"];
        let c = complete("start ", &plans);
        assert_eq!(c.candidates, plans);
        assert_eq!(c.line, "start ");
        let c = complete("start b", &plans);
        assert_eq!(c.line, "start blue-green");
        assert_eq!(
            parse_command(&c.line),
            Ok(CommandLine::Start {
                plan: Some("blue-green".into())
            })
        );
        let c = complete("start  can", &plans);
        assert_eq!(c.candidates, ["canary", "canary-fast"]);
        assert_eq!(c.line, "start  canary", "common prefix");
        assert_eq!(complete("promote --", &[]).line, "promote --full");
        // Arguments that are free text or numbers have no candidates.
        assert!(complete("weight 2", &plans).candidates.is_empty());
        assert!(
            complete("rollback bad deploy", &plans)
                .candidates
                .is_empty()
        );
        assert!(complete("start canary x", &plans).candidates.is_empty());
    }
}
