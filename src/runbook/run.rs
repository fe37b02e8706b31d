//! Running a block: the rules ([`prepare`]), the run through the executor
//! ([`run_block`], [`run_recorded`]) and PromQL blocks ([`query_table`]).
//!
//! [`prepare`] refuses, in this order ([`Refusal`]):
//! 1. anything in read-only / observer mode — queries included;
//! 2. a block that is not runnable ([`Block::not_runnable`]);
//! 3. a block with unresolved `$VAR`s (the names);
//! 4. without confirmation: a block marked `confirm`, and a shell block in
//!    a protected environment. The refusal carries the exact command (with
//!    variable values, secrets redacted) to show the operator; in a
//!    protected environment the cockpit has the operator type its name.
//!    Headless, `--yes` confirms.
//!
//! A shell block runs as `PROGRAM -c CODE` (`sh`, `bash` or `zsh` from the
//! fence language) with the runbook's directory as working directory, its
//! variables as environment variables, stdin from `/dev/null`, and the
//! block's timeout — through [`Executor::run`], so the audit line is
//! written before the spawn, the process group is killed at the timeout,
//! output has its control sequences removed and secrets redacted. The code
//! is passed as one argument exactly as written (its `{` are escaped from
//! the action template syntax, so nothing in it is substituted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::progress::{BlockState, ProgressError, ProgressStore};
use super::vars::{Resolved, VarSources, substitute_promql};
use super::{Block, BlockKind, Runbook, parse::shell_program};
use crate::exec::{ActionOutcome, ActionRequest, ActionSpec, Executor, OutputLine, render};
use crate::redact::Redactor;

/// Most rows of a PromQL answer kept for display.
pub const MAX_QUERY_ROWS: usize = 500;

/// Who may run what, here and now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPolicy {
    /// Read-only or observer: nothing runs.
    pub read_only: bool,
    /// `Some(environment name)` when the environment is protected.
    pub protected: Option<String>,
    /// The operator confirmed (cockpit: answered the prompt; headless:
    /// `--yes`).
    pub confirmed: bool,
    /// Time limit of a block without a `timeout` attribute (`None`:
    /// [`super::DEFAULT_TIMEOUT`]); the config's `[runbooks] timeout`.
    pub default_timeout: Option<std::time::Duration>,
}

impl RunPolicy {
    /// The policy for `cfg`: its protected environment and default
    /// timeout, with `read_only` and `confirmed` as given.
    pub fn from_config(cfg: &crate::config::Config, read_only: bool, confirmed: bool) -> Self {
        Self {
            read_only,
            protected: cfg
                .environment
                .protected
                .then(|| cfg.environment.name.clone()),
            confirmed,
            default_timeout: Some(cfg.runbooks.timeout),
        }
    }
}

/// Why a block needs confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConfirmReason {
    /// The block has `confirm: true`.
    Marked,
    /// The environment is protected: the operator types its name.
    Protected {
        /// The environment's name.
        environment: String,
    },
}

/// Why a block was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Read-only or observer mode.
    #[error("refused: read-only mode runs nothing")]
    ReadOnly,
    /// Not a runnable block; the reason.
    #[error("not runnable: {0}")]
    NotRunnable(String),
    /// Variables without a value.
    #[error(
        "needs a value for {}: set it in the config's [runbooks] vars or give it (cockpit: when asked; headless: --var NAME=VALUE); a block never runs with an empty value",
        .names.iter().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
    )]
    Unresolved {
        /// The names, in order of first use.
        names: Vec<String>,
    },
    /// Needs the operator's confirmation first.
    #[error("needs confirmation ({}): {shown}", match .reason { ConfirmReason::Marked => "the block is marked confirm".to_string(), ConfirmReason::Protected { environment } => format!("{environment} is a protected environment") })]
    NeedsConfirmation {
        /// Why.
        reason: ConfirmReason,
        /// The exact command (or query), secrets redacted.
        shown: String,
    },
}

/// A block ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The block's name.
    pub block: String,
    /// Shell or PromQL.
    pub kind: BlockKind,
    /// What runs, one line, secrets redacted (the confirmation text).
    pub shown: String,
    /// Shell: the request for [`Executor::run`] (name
    /// `runbook:FILE#BLOCK`; set `release` / `step` / `reason` as needed).
    pub request: Option<ActionRequest>,
    /// PromQL: the query with its variables substituted.
    pub query: Option<String>,
    /// Where each variable's value came from.
    pub vars: Resolved,
}

/// Escapes text for the action template syntax: every `{` becomes `{{`, so
/// nothing in it is read as a placeholder.
fn literal(s: &str) -> String {
    s.replace('{', "{{")
}

/// The audit name of a block: `runbook:FILE#BLOCK`.
pub fn audit_name(rb: &Runbook, block: &Block) -> String {
    let file = rb
        .path
        .as_deref()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runbook".into());
    format!("runbook:{file}#{}", block.name)
}

/// Checks the rules and builds what runs (see the module documentation).
///
/// # Errors
///
/// [`Refusal`], in the order the module documentation gives.
pub fn prepare(
    rb: &Runbook,
    block: &Block,
    vars: &VarSources,
    policy: &RunPolicy,
    redactor: &Redactor,
) -> Result<Prepared, Refusal> {
    if policy.read_only {
        return Err(Refusal::ReadOnly);
    }
    if let Some(why) = &block.not_runnable {
        return Err(Refusal::NotRunnable(why.clone()));
    }
    let resolved = vars.resolve(&block.variables);
    if !resolved.missing.is_empty() {
        return Err(Refusal::Unresolved {
            names: resolved.missing.clone(),
        });
    }
    let (shown, request, query) = match block.kind {
        BlockKind::Shell => {
            let program = block
                .language
                .as_deref()
                .and_then(shell_program)
                .ok_or_else(|| Refusal::NotRunnable("not a shell block".into()))?;
            let spec = ActionSpec {
                description: Some(format!("runbook block {}", block.name)),
                argv: Some(vec![
                    program.to_string(),
                    "-c".to_string(),
                    literal(&block.code),
                ]),
                env: resolved
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), literal(v)))
                    .collect(),
                cwd: rb
                    .path
                    .as_deref()
                    .and_then(|p| p.parent())
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(|d| d.to_path_buf()),
                timeout: block
                    .attributes
                    .timeout
                    .or(policy.default_timeout)
                    .unwrap_or(super::DEFAULT_TIMEOUT),
                idempotent: None,
                ..ActionSpec::default()
            };
            let shown = match render(&spec, &BTreeMap::new()) {
                Ok(r) => r.display(redactor),
                Err(e) => return Err(Refusal::NotRunnable(e.to_string())),
            };
            let req = ActionRequest {
                name: audit_name(rb, block),
                spec,
                vars: BTreeMap::new(),
                reason: Some(format!(
                    "runbook {} block {}",
                    rb.display_name(),
                    block.name
                )),
                release: None,
                step: None,
            };
            (shown, Some(req), None)
        }
        BlockKind::Promql => {
            let q = substitute_promql(block.code.trim(), &resolved.values);
            (redactor.redact(&q), None, Some(q))
        }
        BlockKind::Other => return Err(Refusal::NotRunnable("shown, not run".into())),
    };
    if !policy.confirmed {
        let reason = if block.attributes.confirm {
            Some(ConfirmReason::Marked)
        } else if block.kind == BlockKind::Shell {
            policy.protected.as_ref().map(|e| ConfirmReason::Protected {
                environment: e.clone(),
            })
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Refusal::NeedsConfirmation { reason, shown });
        }
    }
    Ok(Prepared {
        block: block.name.clone(),
        kind: block.kind,
        shown,
        request,
        query,
        vars: resolved,
    })
}

/// Runs a prepared shell block through `executor` (audited, timeout,
/// process group killed, output to `out`), stopped early when `cancel`
/// resolves ([`Executor::run_until`]: SIGTERM, then SIGKILL, to the whole
/// group). A PromQL block is not run here (see [`query_table`]): it comes
/// back unsuccessful.
pub async fn run_block(
    executor: &Executor,
    prepared: &Prepared,
    out: mpsc::Sender<OutputLine>,
    cancel: impl std::future::Future<Output = ()> + Send,
) -> ActionOutcome {
    match &prepared.request {
        Some(req) => executor.run_until(req.clone(), out, cancel).await,
        None => ActionOutcome {
            ok: false,
            exit_code: None,
            http_status: None,
            duration_s: 0.0,
            timed_out: false,
            detail: "a PromQL block runs through query_table, not the executor".into(),
            unaudited: false,
        },
    }
}

/// The state a finished run leaves.
pub fn state_after(outcome: &ActionOutcome) -> BlockState {
    if outcome.ok {
        BlockState::Ok
    } else {
        BlockState::Failed {
            exit_code: outcome.exit_code,
        }
    }
}

/// Runs a prepared shell block and records it in `store`: `running` (with
/// this process id) before, then `ok` / `failed` with the exit code and
/// detail after.
///
/// # Errors
///
/// `(None, e)` when `running` cannot be recorded: the block did not run.
/// `(Some(outcome), e)` when the result cannot be recorded: the block ran
/// and this is how it ended.
pub async fn run_recorded(
    store: &ProgressStore,
    executor: &Executor,
    block: &Block,
    prepared: &Prepared,
    out: mpsc::Sender<OutputLine>,
    cancel: impl std::future::Future<Output = ()> + Send,
) -> Result<ActionOutcome, (Option<ActionOutcome>, ProgressError)> {
    let op = executor.operator().to_string();
    store
        .update(|p| {
            p.set_state(
                block,
                BlockState::Running {
                    pid: std::process::id(),
                },
                "",
                0.0,
                &op,
            )
        })
        .map_err(|e| (None, e))?;
    let outcome = run_block(executor, prepared, out, cancel).await;
    store
        .update(|p| {
            p.set_state(
                block,
                state_after(&outcome),
                &outcome.detail,
                outcome.duration_s,
                &op,
            )
        })
        .map_err(|e| (Some(outcome.clone()), e))?;
    Ok(outcome)
}

/// A PromQL answer as a table: one row per series, a column per label
/// (sorted, `__name__` first) and `value` last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryTable {
    /// The query as sent.
    pub query: String,
    /// `vector` or `scalar` (an instant query).
    pub result_type: String,
    /// Label names, then `value`.
    pub columns: Vec<String>,
    /// One row per series; cells in `columns` order (a missing label is
    /// empty). Values as Prometheus wrote them (`NaN`, `+Inf` kept).
    pub rows: Vec<Vec<String>>,
    /// More series than [`MAX_QUERY_ROWS`] came back; the rest are left out.
    pub truncated: bool,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

fn cut(s: &str, n: usize) -> String {
    let mut out: String = crate::exec::strip_control(s).chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// Judges an instant-query answer and makes it a table. As strict as
/// [`crate::sources::prometheus::parse_answer`]: a status outside 2xx, a
/// body that is not the API envelope, `"status":"error"` are errors; an
/// empty vector is a table with no rows (a diagnostic query may rightly
/// find nothing — the caller shows "no series"). Label values and numbers
/// have control characters removed. Never panics.
pub fn parse_table(query: &str, status: u16, body: &[u8]) -> Result<QueryTable, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the answer is not from the Prometheus API (HTTP {status}): {}",
            cut(&e.to_string(), 200)
        )
    })?;
    if env.status != "success" || !(200..300).contains(&status) {
        return Err(match (env.error_type, env.error) {
            (Some(t), Some(m)) => format!(
                "Prometheus error ({}): {} (HTTP {status})",
                cut(&t, 100),
                cut(&m, 300)
            ),
            (_, Some(m)) => format!("Prometheus error: {} (HTTP {status})", cut(&m, 300)),
            _ => format!(
                "Prometheus answered status {:?} with HTTP {status}",
                cut(&env.status, 40)
            ),
        });
    }
    let data = env
        .data
        .ok_or("the answer is not from the Prometheus API (no `data`)")?;
    match data.result_type.as_str() {
        "vector" => {
            let samples: Vec<Sample> = serde_json::from_value(data.result).map_err(|e| {
                format!(
                    "the answer is not from the Prometheus API (bad vector: {})",
                    cut(&e.to_string(), 200)
                )
            })?;
            let mut labels: Vec<String> = samples
                .iter()
                .flat_map(|s| s.metric.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if let Some(i) = labels.iter().position(|l| l == "__name__") {
                let n = labels.remove(i);
                labels.insert(0, n);
            }
            let truncated = samples.len() > MAX_QUERY_ROWS;
            let rows = samples
                .iter()
                .take(MAX_QUERY_ROWS)
                .map(|s| {
                    let mut row: Vec<String> = labels
                        .iter()
                        .map(|l| s.metric.get(l).map(|v| cut(v, 200)).unwrap_or_default())
                        .collect();
                    row.push(cut(&s.value.1, 40));
                    row
                })
                .collect();
            let mut columns: Vec<String> = labels.iter().map(|l| cut(l, 100)).collect();
            columns.push("value".into());
            Ok(QueryTable {
                query: query.to_string(),
                result_type: "vector".into(),
                columns,
                rows,
                truncated,
            })
        }
        "scalar" => {
            let (_, v): (f64, String) = serde_json::from_value(data.result).map_err(|e| {
                format!(
                    "the answer is not from the Prometheus API (bad scalar: {})",
                    cut(&e.to_string(), 200)
                )
            })?;
            Ok(QueryTable {
                query: query.to_string(),
                result_type: "scalar".into(),
                columns: vec!["value".into()],
                rows: vec![vec![cut(&v, 40)]],
                truncated: false,
            })
        }
        other => Err(format!(
            "the query returned a {}; an instant vector or scalar is needed",
            cut(other, 40)
        )),
    }
}

/// Runs a prepared PromQL block against `prom` (the configured
/// Prometheus source: its timeout, auth and body cap) and returns the
/// answer as a table.
///
/// # Errors
///
/// The block is not a query; Prometheus is unreachable, slow, or answers
/// with an error or something that is not its API.
pub async fn query_table(
    prom: &crate::sources::prometheus::Prometheus,
    prepared: &Prepared,
) -> Result<QueryTable, String> {
    let q = prepared
        .query
        .as_deref()
        .ok_or("not a PromQL block: run it with run_block")?;
    let (status, _ctype, body) = prom.query_answer(q).await?;
    parse_table(q, status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(md: &str) -> Runbook {
        super::super::parse(md)
    }

    #[test]
    fn refusals_in_order() {
        let r = rb("```sh {\"confirm\":\"true\"}\necho $NS\n```\n```text\nx\n```\n");
        let red = Redactor::new(Vec::<String>::new());
        let mut vars = VarSources::default();
        let ro = RunPolicy {
            read_only: true,
            confirmed: true,
            ..RunPolicy::default()
        };
        assert_eq!(
            prepare(&r, &r.blocks[0], &vars, &ro, &red).unwrap_err(),
            Refusal::ReadOnly
        );
        let p = RunPolicy::default();
        assert!(matches!(
            prepare(&r, &r.blocks[1], &vars, &p, &red).unwrap_err(),
            Refusal::NotRunnable(_)
        ));
        assert_eq!(
            prepare(&r, &r.blocks[0], &vars, &p, &red).unwrap_err(),
            Refusal::Unresolved {
                names: vec!["NS".into()]
            }
        );
        vars.given.insert("NS".into(), "prod".into());
        let Refusal::NeedsConfirmation { reason, shown } =
            prepare(&r, &r.blocks[0], &vars, &p, &red).unwrap_err()
        else {
            panic!("expected a confirmation")
        };
        assert_eq!(reason, ConfirmReason::Marked);
        assert!(shown.contains("NS=prod"), "{shown}");
        let ok = prepare(
            &r,
            &r.blocks[0],
            &vars,
            &RunPolicy {
                confirmed: true,
                ..p
            },
            &red,
        )
        .unwrap();
        assert!(ok.request.is_some());
    }

    #[test]
    fn protected_environment_asks_for_shell_not_for_queries() {
        let r = rb("```bash\necho hi\n```\n```promql\nup\n```\n");
        let red = Redactor::new(Vec::<String>::new());
        let p = RunPolicy {
            protected: Some("production".into()),
            ..RunPolicy::default()
        };
        let v = VarSources::default();
        assert!(matches!(
            prepare(&r, &r.blocks[0], &v, &p, &red).unwrap_err(),
            Refusal::NeedsConfirmation {
                reason: ConfirmReason::Protected { .. },
                ..
            }
        ));
        assert_eq!(
            prepare(&r, &r.blocks[1], &v, &p, &red)
                .unwrap()
                .query
                .as_deref(),
            Some("up")
        );
    }

    #[test]
    fn table_from_answers() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1,"1"]},
            {"metric":{"job":"b","instance":"x"},"value":[1,"NaN"]}]}}"#;
        let t = parse_table("up", 200, body).unwrap();
        assert_eq!(t.columns, ["__name__", "instance", "job", "value"]);
        assert_eq!(t.rows[1], ["", "x", "b", "NaN"]);
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_table("x", 200, empty).unwrap().rows.is_empty());
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse_table("x", 400, err).unwrap_err().contains("bad_data"));
        assert!(parse_table("x", 502, b"<html>").is_err());
        let lying = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_table("x", 500, lying).is_err());
    }
}
