//! The config schema (serde) and its semantic validation.

use super::{Field, Seg, check_header_value, check_version, is_secret_name, suggest, url_secrets};
use crate::exec::ActionSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn d(secs: u64) -> Duration {
    Duration::from_secs(secs)
}
fn default_true() -> bool {
    true
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service being released, e.g. `checkout`.
    pub service: String,
    /// The version being released (shown and available as `{version}`);
    /// `rolldeck run --version` overrides it.
    #[serde(default)]
    pub version: Option<String>,
    /// Where the journal, driver lock and audit log live; defaults to the
    /// user state dir. Name a shared directory on a bastion so that every
    /// operator sees the same driver and history.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The target environment.
    pub environment: Environment,
    /// Where data comes from.
    #[serde(default)]
    pub sources: Sources,
    /// Which label value or scrape target is the baseline and which the canary.
    #[serde(default)]
    pub tracks: Tracks,
    /// Metric checks (`[[checks]]`).
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Named actions (`[actions.NAME]`): commands or HTTP requests.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionSpec>,
    /// Named plans (`[plans.NAME]`).
    #[serde(default)]
    pub plans: BTreeMap<String, PlanSpec>,
    /// The plan `rolldeck run` uses without `--plan`; defaults to the only
    /// plan, or the one named `default`.
    #[serde(default)]
    pub default_plan: Option<String>,
    /// The steps that restore the baseline (`[[rollback]]`), run in order.
    #[serde(default)]
    pub rollback: Vec<StepSpec>,
    /// Conditions that start the rollback at once (`[[rollback_when]]`).
    #[serde(default)]
    pub rollback_when: Vec<TriggerSpec>,
    /// The cockpit's theme: a built-in name (`dark`, `light`,
    /// `high-contrast`, `ansi16`, `mono`) or a theme TOML file; `--theme`
    /// overrides it and `NO_COLOR` forces `mono`.
    #[serde(default)]
    pub theme: Option<String>,
    /// Key overrides for the cockpit: action name → keys, e.g.
    /// `rollback = ["ctrl-b"]` (see `src/tui/keymap.toml` for the actions).
    #[serde(default)]
    pub keys: Option<toml::Table>,
    /// Markdown runbooks (`[runbooks]`, see [`crate::runbook`]).
    #[serde(default)]
    pub runbooks: Runbooks,
    /// What a driving cockpit does when its terminal hangs up (SIGHUP)
    /// mid-release: `detach` (the default, in every environment), `pause`
    /// or `rollback`; each hands the release to a background driver
    /// ([`crate::control::OnHangup`]).
    #[serde(default)]
    pub on_hangup: crate::control::OnHangup,
    /// The file this config was read from (set by the loader).
    #[serde(skip)]
    pub source_path: Option<PathBuf>,
    /// The secret values found at load: `${secret:…}` references and values
    /// secret by nature (see the module documentation of [`crate::config`]);
    /// redact these everywhere.
    #[serde(skip)]
    pub secrets: Vec<String>,
}

/// `[runbooks]`: where runbooks are and the values of their variables.
///
/// ```toml
/// [runbooks]
/// dirs = ["runbooks"]
/// vars = { NAMESPACE = "shop", DATABASE_URL = "${env:DATABASE_URL}" }
/// timeout = "2m"
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Runbooks {
    /// Directories searched (recursively) for `.md` runbooks, relative to
    /// the config file; each must exist.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Values of `$NAME` / `${NAME}` in runbook blocks. Names are shell
    /// variable names; values must not be empty; `${env:…}` / `${file:…}`
    /// references are resolved (secret for names that look secret, e.g.
    /// `DB_PASSWORD`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Time limit of a block without a `timeout` attribute (default 60 s,
    /// at most 30 days).
    #[serde(default = "default_runbook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for Runbooks {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            vars: BTreeMap::new(),
            timeout: default_runbook_timeout(),
        }
    }
}

fn default_runbook_timeout() -> Duration {
    crate::runbook::DEFAULT_TIMEOUT
}

/// `[environment]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// e.g. `production`, `staging`.
    pub name: String,
    /// A protected environment is shown in the danger colour and the
    /// operator types its name to confirm actions.
    #[serde(default)]
    pub protected: bool,
}

/// `[sources]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// A Prometheus server (`[sources.prometheus]`).
    #[serde(default)]
    pub prometheus: Option<PrometheusSource>,
    /// Direct-scrape targets (`[[sources.scrape]]`): `/metrics` endpoints
    /// read without Prometheus.
    #[serde(default)]
    pub scrape: Vec<ScrapeTarget>,
    /// HTTP health targets (`[[sources.health]]`).
    #[serde(default)]
    pub health: Vec<HealthTarget>,
    /// Database migration sources (`[[sources.migrations]]`).
    #[serde(default)]
    pub migrations: Vec<MigrationSource>,
    /// The Docker Engine (`[sources.docker]`): containers per track.
    #[serde(default)]
    pub docker: Option<DockerSource>,
}

/// `[[sources.migrations]]`: where a service's schema migrations stand.
///
/// At most one of `database_url` (read the tool's own version table over a
/// connection) or `command` (run e.g. `alembic current` and parse its
/// output) is set; with neither the source is *directory only*: pending
/// list and lint, applied state unknown. See [`crate::migrations`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationSource {
    /// Name shown in the Migrations pane and `rolldeck migrations`.
    pub name: String,
    /// `alembic`, `flyway`, `golang-migrate`, `sqlx` or `rails`.
    pub tool: crate::migrations::Tool,
    /// A PostgreSQL connection URL (`postgres://user:pass@host:port/db`
    /// or `host=… user=…`), usually `${env:DATABASE_URL}`. Always a secret:
    /// never shown, logged or journaled.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The migration files (relative to the config file's directory), e.g.
    /// `alembic/versions`.
    pub directory: PathBuf,
    /// Instead of `database_url`: argv printing the applied revisions, e.g.
    /// `["alembic", "current"]` (tool `alembic`).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The version table when not the tool's default (Flyway `table`,
    /// golang-migrate `x-migrations-table`): `name` or `schema.name`.
    #[serde(default)]
    pub table: Option<String>,
    /// Connect + read (or command) timeout (default 10 s, at most 30 days).
    #[serde(default = "default_migration_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How often the cockpit re-reads it (default 15 s, at least 1 s).
    #[serde(default = "default_migration_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// `migration` plan steps: argv upgrading to head (e.g.
    /// `["alembic", "upgrade", "head"]`), run as an action. It and
    /// `downgrade` get `database_url` as `DATABASE_URL` in their
    /// environment (`postgresql://…` suits both rolldeck and SQLAlchemy).
    #[serde(default)]
    pub upgrade: Option<Vec<String>>,
    /// `migration` steps with `round_trip = true`: argv downgrading one
    /// migration (e.g. `["alembic", "downgrade", "-1"]`).
    #[serde(default)]
    pub downgrade: Option<Vec<String>>,
    /// Time limit of each `upgrade`/`downgrade` run (default 10 min, at
    /// most 30 days).
    #[serde(default = "default_migration_run_timeout", with = "humantime_serde")]
    pub run_timeout: Duration,
}
fn default_migration_run_timeout() -> Duration {
    d(600)
}
fn default_migration_timeout() -> Duration {
    d(10)
}
fn default_migration_interval() -> Duration {
    d(15)
}

/// `[sources.docker]`: the Docker Engine whose containers make up the
/// tracks. Each track's containers are picked by a [`ContainerSelector`];
/// the source also offers the health targets `docker:baseline` and
/// `docker:canary` (see [`crate::docker`]) to `health` steps and
/// `rollback_when` triggers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DockerSource {
    /// The engine's address: `unix:///var/run/docker.sock`, `tcp://HOST:PORT`
    /// or `http://HOST:PORT`. Default: `DOCKER_HOST`, else the local socket.
    #[serde(default)]
    pub host: Option<String>,
    /// The baseline's containers (`{ label = "app.track=stable" }` or
    /// `{ name = "checkout-blue*" }`).
    #[serde(default)]
    pub baseline: Option<ContainerSelector>,
    /// The canary's containers.
    #[serde(default)]
    pub canary: Option<ContainerSelector>,
    /// How often the whole container list is read again as a safety net
    /// beside the event stream (default 10 s, at least 1 s).
    #[serde(default = "default_docker_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How often `docker:TRACK` health targets are evaluated (default 2 s,
    /// at least 1 s).
    #[serde(default = "default_docker_probe", with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Timeout of one Engine API request (default 5 s; whole seconds).
    #[serde(default = "default_docker_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Most containers tracked per track (default 50, 1–1000); more are
    /// counted and named in the source's status, never read.
    #[serde(default = "default_max_containers")]
    pub max_containers: usize,
}
fn default_docker_interval() -> Duration {
    d(10)
}
fn default_docker_probe() -> Duration {
    d(2)
}
fn default_docker_timeout() -> Duration {
    d(5)
}
fn default_max_containers() -> usize {
    50
}

/// How a track's containers are picked: exactly one of `label`
/// (`key=value`, or `key` for "has the label") or `name` (a glob pattern
/// over the container name, `*` and `?`, e.g. `checkout-blue*`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContainerSelector {
    /// `key=value` or `key`.
    #[serde(default)]
    pub label: Option<String>,
    /// Glob over the container name (without Docker's leading `/`).
    #[serde(default)]
    pub name: Option<String>,
}

/// `[sources.prometheus]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// Base URL, e.g. `http://prometheus:9090`.
    pub url: String,
    /// Per-query timeout (default 5 s).
    #[serde(default = "default_prom_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Bearer token, usually `${env:PROM_TOKEN}`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// HTTP basic auth.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Extra CA certificate (PEM) to trust.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Largest answer read, in bytes (default 10 MB); a larger answer is an
    /// error naming the cap.
    #[serde(default = "default_big_body")]
    pub max_body_bytes: u64,
}
fn default_prom_timeout() -> Duration {
    d(5)
}
fn default_big_body() -> u64 {
    crate::sources::body::PROMETHEUS_BODY_CAP
}
fn default_health_body() -> u64 {
    crate::sources::body::HEALTH_BODY_CAP
}

/// HTTP basic auth credentials.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password, usually `${env:VAR}` or `${file:PATH}`.
    pub password: String,
}

/// `[[sources.scrape]]`: a Prometheus text-format endpoint read directly.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// Name, referenced by `tracks.baseline_target` / `tracks.canary_target`.
    pub name: String,
    /// The `/metrics` URL.
    pub url: String,
    /// Scrape interval (default 5 s).
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Scrape timeout (default 2 s).
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest `/metrics` answer read, in bytes (default 10 MB).
    #[serde(default = "default_big_body")]
    pub max_body_bytes: u64,
}
fn default_scrape_interval() -> Duration {
    d(5)
}
fn default_probe_timeout() -> Duration {
    d(2)
}

/// `[[sources.health]]`: an HTTP health endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthTarget {
    /// Name, referenced by `health` steps and triggers.
    pub name: String,
    /// The URL to GET.
    pub url: String,
    /// Probe interval (default 5 s).
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Probe timeout (default 2 s).
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Expected HTTP status (default 200).
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// If set, the body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Largest body read, in bytes (default 1 MB); a larger or unreadable
    /// body fails the probe.
    #[serde(default = "default_health_body")]
    pub max_body_bytes: u64,
}
fn default_status() -> u16 {
    200
}

/// `[tracks]`: how the canary and the baseline are told apart.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tracks {
    /// The Prometheus label whose value names the track (default `track`);
    /// built-in checks select on it.
    #[serde(default = "default_track_label")]
    pub label: String,
    /// The baseline's label value, substituted for `{track}` (default `stable`).
    #[serde(default = "default_baseline")]
    pub baseline: String,
    /// The canary's label value, substituted for `{track}` (default `canary`).
    #[serde(default = "default_canary")]
    pub canary: String,
    /// The `[[sources.scrape]]` target of the baseline, for direct scrape.
    #[serde(default)]
    pub baseline_target: Option<String>,
    /// The `[[sources.scrape]]` target of the canary, for direct scrape.
    #[serde(default)]
    pub canary_target: Option<String>,
}
fn default_track_label() -> String {
    "track".into()
}
fn default_baseline() -> String {
    "stable".into()
}
fn default_canary() -> String {
    "canary".into()
}
impl Default for Tracks {
    fn default() -> Self {
        Self {
            label: default_track_label(),
            baseline: default_baseline(),
            canary: default_canary(),
            baseline_target: None,
            canary_target: None,
        }
    }
}

/// What a metric check measures.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A PromQL query with a `{track}` placeholder, evaluated per track.
    #[default]
    Promql,
    /// Ratio of error requests to all requests over `window`, from a counter.
    ErrorRate,
    /// A quantile of a histogram over `window`, interpolated as Prometheus
    /// `histogram_quantile` does.
    LatencyQuantile,
}

/// `[[checks]]`: a metric check. Conditions describe what is healthy; the
/// check fails when one is violated for `for`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Unique name, e.g. `error-rate`.
    pub name: String,
    /// `promql` (default), `error_rate` or `latency_quantile`.
    #[serde(default)]
    pub kind: CheckKind,
    /// PromQL with `{track}` (kind `promql`); must return one sample.
    #[serde(default)]
    pub query: Option<String>,
    /// PromQL with `{track}` returning the request count over the window,
    /// compared with `min_requests` (kind `promql`).
    #[serde(default)]
    pub requests_query: Option<String>,
    /// Built-in kinds: the counter (`error_rate`, e.g. `http_requests_total`)
    /// or histogram base name (`latency_quantile`, e.g.
    /// `http_request_duration_seconds`).
    #[serde(default)]
    pub metric: Option<String>,
    /// `error_rate`: the label matcher selecting errors, e.g. `code=~"5.."`.
    #[serde(default)]
    pub error_matcher: Option<String>,
    /// `latency_quantile`: the quantile, ratio 0–1 (e.g. 0.95).
    #[serde(default)]
    pub quantile: Option<f64>,
    /// The analysis window (default 1 m, at most 30 days): built-in kinds
    /// compute their rate over it; for every kind an analysis step counts
    /// this check's evaluations only from one window after the step starts,
    /// so counted samples hold data from the new traffic weight only.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Healthy when the canary value ≤ max.
    #[serde(default)]
    pub max: Option<f64>,
    /// Healthy when the canary value ≥ min.
    #[serde(default)]
    pub min: Option<f64>,
    /// Healthy when canary − baseline ≤ max_increase (absolute, same unit as the value).
    #[serde(default)]
    pub max_increase: Option<f64>,
    /// Healthy when canary / max(baseline, min_baseline) ≤ max_ratio. With a
    /// baseline of 0 and no `min_baseline`, a canary above 0 violates it.
    #[serde(default)]
    pub max_ratio: Option<f64>,
    /// Floor of the baseline in `max_ratio` (same unit as the value, > 0),
    /// e.g. 0.001 so that a baseline with no errors still gives a ratio.
    #[serde(default)]
    pub min_baseline: Option<f64>,
    /// The value's unit, which bounds what a source may answer (`ratio`:
    /// 0–1; `seconds`, `count`, `bytes`: ≥ 0); a value outside is inconclusive.
    /// Built-in kinds have theirs (`error_rate`: ratio, `latency_quantile`:
    /// seconds); `promql` checks are unbounded unless set.
    #[serde(default)]
    pub unit: Option<crate::release::analysis::Unit>,
    /// Evaluation interval (default 10 s).
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long a condition must be violated before the verdict is `fail`
    /// (Prometheus alerting-rule `for` semantics; default 0 s).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Duration,
    /// Passing evaluations an analysis step needs from this check (default 1).
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
    /// Requests per track in the window below which the evaluation is
    /// `inconclusive` (built-in kinds count them; `promql` needs `requests_query`).
    #[serde(default)]
    pub min_requests: Option<f64>,
    /// Consecutive inconclusive evaluations after which the release pauses
    /// for a human (default 3).
    #[serde(default = "default_inconclusive_limit")]
    pub inconclusive_limit: u32,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
}
fn default_window() -> Duration {
    d(60)
}
fn default_check_interval() -> Duration {
    d(10)
}
fn default_min_samples() -> u32 {
    1
}
fn default_inconclusive_limit() -> u32 {
    3
}

/// `[plans.NAME]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
    /// The steps, in order (`[[plans.NAME.steps]]`).
    pub steps: Vec<StepSpec>,
}

/// The kind of a plan step.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Run a named action.
    Action,
    /// Set the canary traffic weight (percent 0–100) via the traffic action.
    Traffic,
    /// Wait for N consecutive passes of health targets.
    Health,
    /// Evaluate metric checks for a duration.
    Analysis,
    /// Wait for a human to approve.
    Approval,
    /// Wait for a duration (or, without one, until resumed).
    Pause,
    /// Run a migration source's `upgrade` (with `round_trip`: upgrade →
    /// downgrade → upgrade), then check the database reached head.
    Migration,
    /// Wait until a Markdown checklist (`checklist = "runbooks/pre-deploy.md"`)
    /// has every check ticked and every runnable block passed
    /// ([`crate::runbook::checklist`]).
    Checklist,
}

/// What happens when a step fails.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Run the `[[rollback]]` steps (default).
    #[default]
    Rollback,
    /// Pause for a human (retry, rollback or abort).
    Pause,
    /// Stop the release without running the rollback steps.
    Abort,
}

/// One step (`[[plans.NAME.steps]]` or `[[rollback]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// `action`, `traffic`, `health`, `analysis`, `approval` or `pause`.
    pub kind: StepKind,
    /// Display name; defaults to one derived from the kind.
    #[serde(default)]
    pub name: Option<String>,
    /// `action`: the action to run; `traffic`: the traffic action (default `traffic`).
    #[serde(default)]
    pub action: Option<String>,
    /// `traffic`: canary weight, percent 0–100.
    #[serde(default)]
    pub weight: Option<u8>,
    /// `health`: the `[[sources.health]]` targets that must pass.
    #[serde(default)]
    pub targets: Vec<String>,
    /// `health`: consecutive passes needed per target (default 3).
    #[serde(default)]
    pub passes: Option<u32>,
    /// `health`: give up after this long (default 60 s).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `analysis`: the checks to evaluate (default: all).
    #[serde(default)]
    pub checks: Vec<String>,
    /// `analysis` (required) and `pause` (optional: without it, wait for resume).
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// `approval`: what to ask the human.
    #[serde(default)]
    pub message: Option<String>,
    /// What to do when the step fails (default `rollback`).
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Whether the step may run again after an interruption. Default: true
    /// for traffic, health, analysis and pause; false for action steps
    /// unless their action says `idempotent = true`.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// `migration`: the `[[sources.migrations]]` name (default: the only one).
    #[serde(default)]
    pub source: Option<String>,
    /// `migration`: upgrade → downgrade one → upgrade → check (default false).
    #[serde(default)]
    pub round_trip: bool,
    /// `traffic`: refuse to raise the canary weight unless every migration
    /// source is at head and clean (the reason is the step's failure).
    #[serde(default)]
    pub require_migrations: bool,
    /// `checklist`: the Markdown runbook whose checks and runnable blocks
    /// must be done (relative to the config file).
    #[serde(default)]
    pub checklist: Option<PathBuf>,
}

/// `[[rollback_when]]`: a condition that starts the rollback at once.
/// Exactly one of `check`, `query` or `health` is set.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A metric check whose `fail` verdict triggers the rollback (evaluated
    /// during the whole release, not only in analysis steps).
    #[serde(default)]
    pub check: Option<String>,
    /// PromQL with `{track}`, evaluated for the canary.
    #[serde(default)]
    pub query: Option<String>,
    /// `query`: triggers when the value stays above this for `for`.
    #[serde(default)]
    pub max: Option<f64>,
    /// `query`: triggers when the value stays below this for `for`.
    #[serde(default)]
    pub min: Option<f64>,
    /// `query`: how long the limit must be exceeded (default 0 s).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Duration,
    /// `query`: evaluation interval (default 10 s).
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// A `[[sources.health]]` target …
    #[serde(default)]
    pub health: Option<String>,
    /// … failing this many consecutive probes (default 3).
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// Whether this trigger is enabled (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// A semantic problem found by [`validate`], located by key path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where, as a key path.
    pub at: Vec<Seg>,
    /// What is wrong and what was expected.
    pub message: String,
    /// A suggestion.
    pub help: Option<String>,
}

macro_rules! path {
    ($($s:expr),* $(,)?) => { vec![$(Seg::from($s)),*] };
}

fn problem(at: Vec<Seg>, message: impl Into<String>) -> Problem {
    Problem {
        at,
        message: message.into(),
        help: None,
    }
}

fn unknown_name<'a>(
    at: Vec<Seg>,
    what: &str,
    bad: &str,
    known: impl IntoIterator<Item = &'a str> + Clone,
) -> Problem {
    let list: Vec<&str> = known.clone().into_iter().collect();
    Problem {
        at,
        message: if list.is_empty() {
            format!("unknown {what} `{bad}`: none is defined")
        } else {
            format!("unknown {what} `{bad}`; defined: {}", list.join(", "))
        },
        help: suggest(bad, known).map(|s| format!("did you mean `{s}`?")),
    }
}

impl Config {
    /// The plan to run: `name`, else `default_plan`, else the one named
    /// `default`, else the only plan. Errors name the plans that exist.
    pub fn plan(&self, name: Option<&str>) -> Result<(&str, &PlanSpec), String> {
        let wanted = name.or(self.default_plan.as_deref());
        let known = || self.plans.keys().cloned().collect::<Vec<_>>().join(", ");
        match wanted {
            Some(n) => self
                .plans
                .get_key_value(n)
                .map(|(k, v)| (k.as_str(), v))
                .ok_or_else(|| {
                    let hint = suggest(n, self.plans.keys().map(String::as_str))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    format!("no plan named `{n}`{hint}; plans: {}", known())
                }),
            None => {
                if let Some((k, v)) = self.plans.get_key_value("default") {
                    return Ok((k.as_str(), v));
                }
                match self.plans.len() {
                    1 => {
                        let (k, v) = self.plans.iter().next().expect("one plan");
                        Ok((k.as_str(), v))
                    }
                    0 => Err("the config defines no plan ([plans.NAME])".to_string()),
                    _ => Err(format!(
                        "several plans and no default_plan; pick one with --plan: {}",
                        known()
                    )),
                }
            }
        }
    }

    /// A stable identifier for the driver lock and journal:
    /// `service@environment`, with path-unsafe characters replaced.
    pub fn release_key(&self) -> String {
        format!("{}@{}", self.service, self.environment.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Checks everything serde cannot: references between sections, ranges,
/// required fields per step kind, duration bounds, PromQL syntax, header
/// values; resolves `${…}` references in place and collects
/// [`Config::secrets`].
/// Returns every problem found.
pub fn validate(cfg: &mut Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut secrets = Vec::new();

    // References, in every string that may carry one; which values are
    // secret is decided here (see the module documentation of `config`).
    let mut resolve =
        |s: &mut String, at: Vec<Seg>, field: Field, out: &mut Vec<Problem>| match super::resolve(
            s,
            field,
            &mut secrets,
        ) {
            Ok(v) => *s = v,
            Err(e) => out.push(problem(at, e)),
        };
    let plain = Field::default();
    let credential = Field {
        secret: true,
        template: false,
    };
    if let Some(p) = cfg.sources.prometheus.as_mut() {
        resolve(
            &mut p.url,
            path!["sources", "prometheus", "url"],
            plain,
            &mut out,
        );
        if let Some(t) = p.bearer_token.as_mut() {
            resolve(
                t,
                path!["sources", "prometheus", "bearer_token"],
                credential,
                &mut out,
            );
        }
        if let Some(b) = p.basic_auth.as_mut() {
            resolve(
                &mut b.username,
                path!["sources", "prometheus", "basic_auth", "username"],
                plain,
                &mut out,
            );
            resolve(
                &mut b.password,
                path!["sources", "prometheus", "basic_auth", "password"],
                credential,
                &mut out,
            );
        }
    }
    for (i, s) in cfg.sources.scrape.iter_mut().enumerate() {
        resolve(
            &mut s.url,
            path!["sources", "scrape", i, "url"],
            plain,
            &mut out,
        );
    }
    for (i, h) in cfg.sources.health.iter_mut().enumerate() {
        resolve(
            &mut h.url,
            path!["sources", "health", i, "url"],
            plain,
            &mut out,
        );
        for (k, v) in h.headers.iter_mut() {
            let field = Field {
                secret: is_secret_name(k),
                template: false,
            };
            resolve(
                v,
                path!["sources", "health", i, "headers", k.as_str()],
                field,
                &mut out,
            );
        }
    }
    if let Some(d) = cfg.sources.docker.as_mut() {
        if let Some(h) = d.host.as_mut() {
            resolve(h, path!["sources", "docker", "host"], plain, &mut out);
        }
        for (track, sel) in [("baseline", &mut d.baseline), ("canary", &mut d.canary)] {
            let Some(sel) = sel.as_mut() else { continue };
            for (key, v) in [("label", sel.label.as_mut()), ("name", sel.name.as_mut())] {
                if let Some(v) = v {
                    resolve(v, path!["sources", "docker", track, key], plain, &mut out);
                }
            }
        }
    }
    for (i, m) in cfg.sources.migrations.iter_mut().enumerate() {
        if let Some(u) = m.database_url.as_mut() {
            resolve(
                u,
                path!["sources", "migrations", i, "database_url"],
                credential,
                &mut out,
            );
        }
    }
    for (k, v) in cfg.runbooks.vars.iter_mut() {
        let field = Field {
            secret: is_secret_name(k),
            template: false,
        };
        resolve(v, path!["runbooks", "vars", k.as_str()], field, &mut out);
    }
    // Action fields are templates: a `{` in a resolved value must stay literal.
    for (name, a) in cfg.actions.iter_mut() {
        let base = || path!["actions", name.as_str()];
        let template = Field {
            secret: false,
            template: true,
        };
        let mut fields: Vec<(Vec<Seg>, &mut String, Field)> = Vec::new();
        if let Some(argv) = a.argv.as_mut() {
            for (j, arg) in argv.iter_mut().enumerate() {
                let mut at = base();
                at.extend(path!["argv", j]);
                fields.push((at, arg, template));
            }
        }
        for (key, v) in [
            ("command", a.command.as_mut()),
            ("url", a.url.as_mut()),
            ("body", a.body.as_mut()),
        ] {
            if let Some(v) = v {
                let mut at = base();
                at.push(key.into());
                fields.push((at, v, template));
            }
        }
        for (key, map) in [("headers", &mut a.headers), ("env", &mut a.env)] {
            for (k, v) in map.iter_mut() {
                let mut at = base();
                at.extend(path![key, k.as_str()]);
                let field = Field {
                    secret: is_secret_name(k),
                    template: true,
                };
                fields.push((at, v, field));
            }
        }
        // `docker = { … }`: the placeholder texts are templates; ports,
        // host and the health command are used as written.
        if let Some(d) = a.docker.as_mut() {
            let at = |rest: Vec<Seg>| {
                let mut p = base();
                p.push("docker".into());
                p.extend(rest);
                p
            };
            fields.push((at(path!["container"]), &mut d.container, template));
            if let Some(i) = d.image.as_mut() {
                fields.push((at(path!["image"]), i, template));
            }
            for (j, c) in d.cmd.iter_mut().enumerate() {
                fields.push((at(path!["cmd", j]), c, template));
            }
            for (k, v) in d.env.iter_mut() {
                let field = Field {
                    secret: is_secret_name(k),
                    template: true,
                };
                fields.push((at(path!["env", k.as_str()]), v, field));
            }
            for (k, v) in d.labels.iter_mut() {
                fields.push((at(path!["labels", k.as_str()]), v, template));
            }
            for (j, p) in d.ports.iter_mut().enumerate() {
                fields.push((at(path!["ports", j]), p, plain));
            }
            if let Some(h) = d.host.as_mut() {
                fields.push((at(path!["host"]), h, plain));
            }
            if let Some(h) = d.health.as_mut() {
                for (j, c) in h.cmd.iter_mut().enumerate() {
                    fields.push((at(path!["health", "cmd", j]), c, plain));
                }
            }
        }
        for (at, v, field) in fields {
            resolve(v, at, field, &mut out);
        }
    }
    // Secret by nature, however written: URL credentials, and credential
    // headers and env values of actions (templates: only when they have no
    // placeholders; their references were handled above).
    if let Some(p) = &cfg.sources.prometheus {
        secrets.extend(url_secrets(&p.url));
    }
    for s in &cfg.sources.scrape {
        secrets.extend(url_secrets(&s.url));
    }
    for h in &cfg.sources.health {
        secrets.extend(url_secrets(&h.url));
    }
    for m in &cfg.sources.migrations {
        if let Some(u) = &m.database_url {
            secrets.extend(crate::migrations::url_secrets(u));
        }
    }
    for a in cfg.actions.values() {
        if let Some(u) = &a.url {
            secrets.extend(
                url_secrets(u)
                    .iter()
                    .filter_map(|s| crate::exec::literal_text(s)),
            );
        }
        let docker_env = a.docker.iter().flat_map(|d| d.env.iter());
        for (k, v) in a.headers.iter().chain(a.env.iter()).chain(docker_env) {
            if is_secret_name(k)
                && let Some(l) = crate::exec::literal_text(v)
            {
                super::refs::push_credential(&l, &mut secrets);
            }
        }
    }
    secrets.retain(|s| !s.trim().is_empty());
    secrets.sort();
    secrets.dedup();
    cfg.secrets = secrets;

    // Durations: bounded, so no deadline overflows; intervals have a floor.
    validate_durations(cfg, &mut out);
    validate_runbooks(&cfg.runbooks, &mut out);
    if let Some(v) = &cfg.version
        && let Err(e) = check_version(v)
    {
        out.push(problem(path!["version"], e));
    }

    if cfg.service.trim().is_empty() {
        out.push(problem(path!["service"], "must not be empty"));
    }
    if cfg.environment.name.trim().is_empty() {
        out.push(problem(path!["environment", "name"], "must not be empty"));
    }

    // Sources.
    if let Some(p) = &cfg.sources.prometheus {
        check_url(&p.url, path!["sources", "prometheus", "url"], &mut out);
        if p.bearer_token.is_some() && p.basic_auth.is_some() {
            out.push(problem(
                path!["sources", "prometheus", "basic_auth"],
                "set either bearer_token or basic_auth, not both",
            ));
        }
        if let Some(ca) = &p.ca_file
            && !ca.is_file()
        {
            out.push(problem(
                path!["sources", "prometheus", "ca_file"],
                format!("CA file {} does not exist", ca.display()),
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in cfg.sources.scrape.iter().enumerate() {
        check_url(&s.url, path!["sources", "scrape", i, "url"], &mut out);
        if !names.insert(s.name.clone()) {
            out.push(problem(
                path!["sources", "scrape", i, "name"],
                format!("duplicate name `{}`", s.name),
            ));
        }
    }
    let mut hnames = std::collections::BTreeSet::new();
    for (i, h) in cfg.sources.health.iter().enumerate() {
        check_url(&h.url, path!["sources", "health", i, "url"], &mut out);
        if !hnames.insert(h.name.clone()) {
            out.push(problem(
                path!["sources", "health", i, "name"],
                format!("duplicate name `{}`", h.name),
            ));
        }
        for (k, v) in &h.headers {
            let at = path!["sources", "health", i, "headers", k.as_str()];
            if k.is_empty() || !k.bytes().all(is_token_byte) {
                out.push(problem(
                    at.clone(),
                    format!("invalid HTTP header name {:?}", k),
                ));
            }
            if let Err(e) = check_header_value(v) {
                out.push(problem(at, e));
            }
        }
        if !(100..=599).contains(&h.expect_status) {
            out.push(problem(
                path!["sources", "health", i, "expect_status"],
                format!("{} is not an HTTP status (100–599)", h.expect_status),
            ));
        }
    }
    if let Some(dk) = &cfg.sources.docker {
        validate_docker(dk, &mut out);
    }
    // Body caps: 0 would refuse every answer.
    let caps = (cfg.sources.prometheus.iter())
        .map(|p| {
            (
                path!["sources", "prometheus", "max_body_bytes"],
                p.max_body_bytes,
            )
        })
        .chain((cfg.sources.scrape.iter().enumerate()).map(|(i, s)| {
            (
                path!["sources", "scrape", i, "max_body_bytes"],
                s.max_body_bytes,
            )
        }))
        .chain((cfg.sources.health.iter().enumerate()).map(|(i, h)| {
            (
                path!["sources", "health", i, "max_body_bytes"],
                h.max_body_bytes,
            )
        }));
    for (at, cap) in caps {
        if cap == 0 {
            out.push(problem(at, "must be at least 1 (bytes)"));
        }
    }
    crate::migrations::validate_sources(&cfg.sources.migrations, &mut |i, key, message, help| {
        let mut at = path!["sources", "migrations", i];
        if !key.is_empty() {
            at.push(key.into());
        }
        out.push(Problem { at, message, help });
    });
    let scrape_names: Vec<&str> = cfg.sources.scrape.iter().map(|s| s.name.as_str()).collect();
    for (key, v) in [
        ("baseline_target", &cfg.tracks.baseline_target),
        ("canary_target", &cfg.tracks.canary_target),
    ] {
        if let Some(t) = v
            && !scrape_names.contains(&t.as_str())
        {
            out.push(unknown_name(
                path!["tracks", key],
                "scrape target",
                t,
                scrape_names.iter().copied(),
            ));
        }
    }
    let direct = cfg.tracks.baseline_target.is_some() && cfg.tracks.canary_target.is_some();
    let has_prom = cfg.sources.prometheus.is_some();

    // Checks.
    let mut cnames = std::collections::BTreeSet::new();
    for (i, c) in cfg.checks.iter().enumerate() {
        let at = |k: &str| path!["checks", i, k];
        if !cnames.insert(c.name.clone()) {
            out.push(problem(
                at("name"),
                format!("duplicate check name `{}`", c.name),
            ));
        }
        match c.kind {
            CheckKind::Promql => {
                if c.query.is_none() {
                    out.push(problem(
                        at("kind"),
                        "a `promql` check needs `query` (PromQL with {track})",
                    ));
                }
                if !has_prom {
                    out.push(problem(
                        at("kind"),
                        "a `promql` check needs [sources.prometheus]",
                    ));
                }
                if c.min_requests.is_some() && c.requests_query.is_none() {
                    out.push(problem(
                        at("min_requests"),
                        "with kind `promql`, min_requests needs `requests_query`",
                    ));
                }
            }
            CheckKind::ErrorRate | CheckKind::LatencyQuantile => {
                if c.metric.is_none() {
                    out.push(problem(at("kind"), "a built-in check needs `metric`"));
                }
                if c.query.is_some() {
                    out.push(problem(at("query"), "`query` is only for kind `promql`"));
                }
                if !has_prom && !direct {
                    out.push(problem(
                        at("kind"),
                        "a built-in check needs [sources.prometheus] or tracks.baseline_target and tracks.canary_target",
                    ));
                }
                if c.kind == CheckKind::ErrorRate {
                    match &c.error_matcher {
                        None => out.push(problem(
                            at("kind"),
                            "an `error_rate` check needs `error_matcher`, e.g. 'code=~\"5..\"'",
                        )),
                        Some(m) => {
                            if let Err(e) = crate::sources::scrape::LabelMatcher::parse(m) {
                                out.push(problem(at("error_matcher"), e));
                            }
                        }
                    }
                }
                if c.kind == CheckKind::LatencyQuantile {
                    match c.quantile {
                        Some(q) if (0.0..=1.0).contains(&q) => {}
                        Some(q) => out.push(problem(
                            at("quantile"),
                            format!("{q} is not a ratio between 0 and 1"),
                        )),
                        None => out.push(problem(
                            at("kind"),
                            "a `latency_quantile` check needs `quantile` (0–1)",
                        )),
                    }
                }
            }
        }
        if c.max.is_none() && c.min.is_none() && c.max_increase.is_none() && c.max_ratio.is_none() {
            out.push(problem(
                at("name"),
                "the check has no condition: set max, min, max_increase or max_ratio",
            ));
        }
        for (k, v) in [
            ("max", c.max),
            ("min", c.min),
            ("max_increase", c.max_increase),
            ("max_ratio", c.max_ratio),
            ("min_baseline", c.min_baseline),
        ] {
            if let Some(v) = v
                && !v.is_finite()
            {
                out.push(problem(at(k), "must be a finite number"));
            }
        }
        if let Some(f) = c.min_baseline {
            if c.max_ratio.is_none() {
                out.push(problem(
                    at("min_baseline"),
                    "min_baseline is the floor of max_ratio's baseline; set max_ratio",
                ));
            } else if f <= 0.0 {
                out.push(problem(at("min_baseline"), "must be more than 0"));
            }
        }
        if let (Some(u), Some(own)) = (c.unit, crate::release::analysis::Unit::of_kind(c.kind))
            && u != own
        {
            out.push(problem(
                at("unit"),
                format!(
                    "this built-in check measures in {}; `unit` is for kind `promql`",
                    own.as_str()
                ),
            ));
        }
        if c.inconclusive_limit == 0 {
            out.push(problem(at("inconclusive_limit"), "must be at least 1"));
        }
        for (key, q) in [("query", &c.query), ("requests_query", &c.requests_query)] {
            let Some(q) = q else { continue };
            if !q.contains("{track}") {
                out.push(problem(at(key), "the query has no {track} placeholder, so canary and baseline would read the same series"));
            }
            check_promql(q, &cfg.tracks, at(key), &mut out);
        }
        if has_prom
            && c.kind != CheckKind::Promql
            && let Some((q, rq)) = crate::sources::builtin_promql(c, &cfg.tracks.label)
        {
            for q in [q, rq] {
                check_promql(&q, &cfg.tracks, at("metric"), &mut out);
            }
        }
    }

    // Actions.
    for (name, a) in &cfg.actions {
        // Template problems at their key; the rest of `validate` at the action.
        let templated = crate::exec::template_problems(a);
        for (key, msg) in &templated {
            let mut at = path!["actions", name.as_str()];
            match key {
                crate::exec::TemplateKey::Argv(i) => at.extend(path!["argv", *i]),
                crate::exec::TemplateKey::Key(k) => at.push((*k).into()),
                crate::exec::TemplateKey::Entry(t, k) => at.extend(path![*t, k.as_str()]),
            }
            out.push(problem(at, msg.clone()));
        }
        if let Err(e) = a.validate() {
            let rest: Vec<&str> = e
                .split("; ")
                .filter(|p| {
                    !templated
                        .iter()
                        .any(|(_, m)| m.starts_with(p) || m.contains(&format!("; {p}")))
                })
                .collect();
            let rest = rest.join("; ");
            if !rest.is_empty() {
                let at = if rest.contains("`timeout`") {
                    path!["actions", name.as_str(), "timeout"]
                } else {
                    path!["actions", name.as_str()]
                };
                out.push(problem(at, rest));
            }
        }
        for (k, v) in &a.headers {
            if let Err(e) = check_header_value(v) {
                out.push(problem(
                    path!["actions", name.as_str(), "headers", k.as_str()],
                    e,
                ));
            }
        }
    }

    // Plans and rollback steps.
    let action_names: Vec<&str> = cfg.actions.keys().map(String::as_str).collect();
    let check_names: Vec<&str> = cfg.checks.iter().map(|c| c.name.as_str()).collect();
    let docker_targets = crate::docker::health_targets(cfg);
    let health_names: Vec<&str> = (cfg.sources.health.iter().map(|h| h.name.as_str()))
        .chain(docker_targets.iter().map(String::as_str))
        .collect();
    let ctx = StepCtx {
        actions: &action_names,
        checks: &check_names,
        health: &health_names,
        migrations: &cfg.sources.migrations,
    };
    if cfg.plans.is_empty() {
        out.push(problem(
            path![],
            "no plan defined: add [[plans.NAME.steps]]",
        ));
    }
    for (pname, plan) in &cfg.plans {
        if plan.steps.is_empty() {
            out.push(problem(
                path!["plans", pname.as_str()],
                "the plan has no steps",
            ));
        }
        for (i, s) in plan.steps.iter().enumerate() {
            validate_step(
                s,
                path!["plans", pname.as_str(), "steps", i],
                &ctx,
                false,
                &mut out,
            );
        }
    }
    if let Some(dp) = &cfg.default_plan
        && !cfg.plans.contains_key(dp)
    {
        out.push(unknown_name(
            path!["default_plan"],
            "plan",
            dp,
            cfg.plans.keys().map(String::as_str),
        ));
    }
    for (i, s) in cfg.rollback.iter().enumerate() {
        validate_step(s, path!["rollback", i], &ctx, true, &mut out);
    }
    let uses_traffic = cfg
        .plans
        .values()
        .any(|p| p.steps.iter().any(|s| s.kind == StepKind::Traffic));
    if uses_traffic && cfg.rollback.is_empty() {
        out.push(problem(
            path![],
            "the plan shifts traffic but no [[rollback]] steps restore the baseline (e.g. kind = \"traffic\", weight = 0)",
        ));
    }

    // Triggers.
    for (i, t) in cfg.rollback_when.iter().enumerate() {
        let at = |k: &str| path!["rollback_when", i, k];
        let set = [t.check.is_some(), t.query.is_some(), t.health.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 {
            out.push(problem(
                path!["rollback_when", i],
                "set exactly one of `check`, `query` or `health`",
            ));
        }
        if let Some(c) = &t.check
            && !check_names.contains(&c.as_str())
        {
            out.push(unknown_name(
                at("check"),
                "check",
                c,
                check_names.iter().copied(),
            ));
        }
        if let Some(h) = &t.health
            && !health_names.contains(&h.as_str())
        {
            out.push(unknown_name(
                at("health"),
                "health target",
                h,
                health_names.iter().copied(),
            ));
        }
        if let Some(q) = &t.query {
            check_promql(q, &cfg.tracks, at("query"), &mut out);
        }
        if t.query.is_some() {
            if !has_prom {
                out.push(problem(
                    at("query"),
                    "a `query` trigger needs [sources.prometheus]",
                ));
            }
            if t.max.is_none() && t.min.is_none() {
                out.push(problem(
                    at("query"),
                    "a `query` trigger needs `max` or `min`",
                ));
            }
        }
    }
    out
}

struct StepCtx<'a> {
    actions: &'a [&'a str],
    checks: &'a [&'a str],
    health: &'a [&'a str],
    migrations: &'a [MigrationSource],
}

fn validate_step(
    s: &StepSpec,
    base: Vec<Seg>,
    ctx: &StepCtx<'_>,
    rollback: bool,
    out: &mut Vec<Problem>,
) {
    let at = |k: &str| {
        let mut p = base.clone();
        p.push(k.into());
        p
    };
    let not_for = |field: &str, present: bool, out: &mut Vec<Problem>| {
        if present {
            out.push(problem(
                at(field),
                format!("`{field}` does not apply to a `{}` step", kind_name(s.kind)),
            ));
        }
    };
    if s.kind != StepKind::Migration {
        not_for("source", s.source.is_some(), out);
        not_for("round_trip", s.round_trip, out);
    }
    if s.kind != StepKind::Traffic {
        not_for("require_migrations", s.require_migrations, out);
    } else if s.require_migrations && ctx.migrations.is_empty() {
        out.push(problem(
            at("require_migrations"),
            "no [[sources.migrations]] to require",
        ));
    } else if s.require_migrations
        && let Some(m) = ctx
            .migrations
            .iter()
            .find(|m| m.database_url.is_none() && m.command.is_none())
    {
        out.push(problem(
            at("require_migrations"),
            format!(
                "migration source `{}` reads no database (directory only): the gate could never pass; set its database_url",
                m.name
            ),
        ));
    }
    if s.kind == StepKind::Migration {
        let names: Vec<&str> = ctx.migrations.iter().map(|m| m.name.as_str()).collect();
        let src = match (&s.source, ctx.migrations) {
            (Some(n), _) => match ctx.migrations.iter().find(|m| &m.name == n) {
                Some(m) => Some(m),
                None => {
                    out.push(unknown_name(
                        at("source"),
                        "migration source",
                        n,
                        names.iter().copied(),
                    ));
                    None
                }
            },
            (None, [one]) => Some(one),
            (None, []) => {
                out.push(problem(
                    at("kind"),
                    "a `migration` step needs a [[sources.migrations]]",
                ));
                None
            }
            (None, _) => {
                out.push(problem(
                    at("kind"),
                    format!(
                        "several migration sources: name one with `source` ({})",
                        names.join(", ")
                    ),
                ));
                None
            }
        };
        if let Some(m) = src {
            if m.database_url.is_none() && m.command.is_none() {
                out.push(problem(
                    at("kind"),
                    format!(
                        "migration source `{}` reads no database (directory only): set its database_url so the step can check it reached head",
                        m.name
                    ),
                ));
            }
            if m.upgrade.is_none() {
                out.push(problem(
                    at("kind"),
                    format!(
                        "migration source `{}` has no `upgrade` command (e.g. [\"alembic\", \"upgrade\", \"head\"])",
                        m.name
                    ),
                ));
            }
            if s.round_trip && m.downgrade.is_none() {
                out.push(problem(
                    at("round_trip"),
                    format!(
                        "round_trip needs `downgrade` on migration source `{}` (e.g. [\"alembic\", \"downgrade\", \"-1\"])",
                        m.name
                    ),
                ));
            }
        }
    }
    match s.kind {
        StepKind::Migration => {}
        StepKind::Action => match &s.action {
            None => out.push(problem(
                at("kind"),
                "an `action` step needs `action` (the name of an [actions.NAME])",
            )),
            Some(a) if !ctx.actions.contains(&a.as_str()) => out.push(unknown_name(
                at("action"),
                "action",
                a,
                ctx.actions.iter().copied(),
            )),
            _ => {}
        },
        StepKind::Traffic => {
            let a = s.action.as_deref().unwrap_or("traffic");
            if !ctx.actions.contains(&a) {
                let mut p = unknown_name(
                    if s.action.is_some() {
                        at("action")
                    } else {
                        at("kind")
                    },
                    "traffic action",
                    a,
                    ctx.actions.iter().copied(),
                );
                p.message.push_str(
                    " (a traffic step runs [actions.traffic] unless `action` names another)",
                );
                out.push(p);
            }
            match s.weight {
                None => out.push(problem(
                    at("kind"),
                    "a `traffic` step needs `weight` (percent 0–100)",
                )),
                Some(w) if w > 100 => out.push(problem(
                    at("weight"),
                    format!("{w} is not a percentage (0–100)"),
                )),
                _ => {}
            }
        }
        StepKind::Health => {
            if s.targets.is_empty() {
                out.push(problem(
                    at("kind"),
                    "a `health` step needs `targets` (names of [[sources.health]])",
                ));
            }
            for (j, t) in s.targets.iter().enumerate() {
                if !ctx.health.contains(&t.as_str()) {
                    let mut p = at("targets");
                    p.push(j.into());
                    out.push(unknown_name(
                        p,
                        "health target",
                        t,
                        ctx.health.iter().copied(),
                    ));
                }
            }
            if s.passes == Some(0) {
                out.push(problem(at("passes"), "must be at least 1"));
            }
        }
        StepKind::Analysis => {
            if rollback {
                out.push(problem(
                    at("kind"),
                    "rollback steps cannot be `analysis`: the rollback must not wait on metrics",
                ));
            }
            match s.duration {
                None => out.push(problem(
                    at("kind"),
                    "an `analysis` step needs `duration`, e.g. \"2m\"",
                )),
                Some(d) if d.is_zero() => out.push(problem(at("duration"), "must be more than 0s")),
                _ => {}
            }
            if ctx.checks.is_empty() {
                out.push(problem(
                    at("kind"),
                    "an `analysis` step needs at least one [[checks]]",
                ));
            }
            for (j, c) in s.checks.iter().enumerate() {
                if !ctx.checks.contains(&c.as_str()) {
                    let mut p = at("checks");
                    p.push(j.into());
                    out.push(unknown_name(p, "check", c, ctx.checks.iter().copied()));
                }
            }
        }
        StepKind::Approval => {
            if rollback {
                out.push(problem(
                    at("kind"),
                    "rollback steps cannot wait for approval",
                ));
            }
        }
        StepKind::Pause => {}
        StepKind::Checklist => {
            if rollback {
                out.push(problem(
                    at("kind"),
                    "rollback steps cannot wait for a checklist: the rollback must not wait on people",
                ));
            }
            match &s.checklist {
                None => out.push(problem(
                    at("kind"),
                    "a `checklist` step needs `checklist`, a Markdown file such as \"runbooks/pre-deploy.md\"",
                )),
                Some(f) => {
                    if let Err(e) = crate::runbook::checklist::validate_file(f) {
                        out.push(problem(at("checklist"), e));
                    }
                }
            }
        }
    }
    not_for(
        "checklist",
        s.checklist.is_some() && s.kind != StepKind::Checklist,
        out,
    );
    not_for(
        "weight",
        s.weight.is_some() && s.kind != StepKind::Traffic,
        out,
    );
    not_for(
        "targets",
        !s.targets.is_empty() && s.kind != StepKind::Health,
        out,
    );
    not_for(
        "passes",
        s.passes.is_some() && s.kind != StepKind::Health,
        out,
    );
    not_for(
        "checks",
        !s.checks.is_empty() && s.kind != StepKind::Analysis,
        out,
    );
    not_for(
        "duration",
        s.duration.is_some() && !matches!(s.kind, StepKind::Analysis | StepKind::Pause),
        out,
    );
    not_for(
        "message",
        s.message.is_some() && s.kind != StepKind::Approval,
        out,
    );
    not_for(
        "action",
        s.action.is_some() && !matches!(s.kind, StepKind::Action | StepKind::Traffic),
        out,
    );
}

/// The config word for a step kind.
pub fn kind_name(k: StepKind) -> &'static str {
    match k {
        StepKind::Action => "action",
        StepKind::Traffic => "traffic",
        StepKind::Health => "health",
        StepKind::Analysis => "analysis",
        StepKind::Approval => "approval",
        StepKind::Pause => "pause",
        StepKind::Migration => "migration",
        StepKind::Checklist => "checklist",
    }
}

/// The longest duration any key accepts: 30 days. Anything longer is a
/// typo (`"8000y"`) and could overflow a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The shortest `interval` (scrape, health, check, trigger): 1 s. A zero
/// interval would spin or panic a worker.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What a duration key may hold.
#[derive(Clone, Copy)]
enum Bound {
    /// A polling interval: at least [`MIN_INTERVAL`].
    Interval,
    /// A timeout or rate window: more than 0 s.
    Positive,
    /// `for` or a pause: 0 s allowed.
    Any,
}

fn bound(d: Duration, kind: Bound, at: Vec<Seg>, out: &mut Vec<Problem>) {
    let shown = humantime::format_duration(d);
    if d > MAX_DURATION {
        out.push(problem(
            at,
            format!("{shown} is longer than the limit of 30 days"),
        ));
        return;
    }
    match kind {
        Bound::Interval if d < MIN_INTERVAL => out.push(problem(
            at,
            format!(
                "{} is shorter than the minimum interval of 1s",
                if d.is_zero() {
                    "0s".to_string()
                } else {
                    shown.to_string()
                }
            ),
        )),
        Bound::Positive if d.is_zero() => out.push(problem(at, "must be more than 0s")),
        _ => {}
    }
}

/// `[runbooks]`: directories exist, variable names are shell names and
/// values are not empty.
fn validate_runbooks(rb: &Runbooks, out: &mut Vec<Problem>) {
    for (i, d) in rb.dirs.iter().enumerate() {
        if !d.is_dir() {
            out.push(Problem {
                at: path!["runbooks", "dirs", i],
                message: format!("runbook directory {} does not exist", d.display()),
                help: Some("paths are relative to the config file".into()),
            });
        }
    }
    for (k, v) in &rb.vars {
        let at = path!["runbooks", "vars", k.as_str()];
        let ident = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            out.push(problem(
                at.clone(),
                format!(
                    "{:?} is not a variable name (letters, digits and _, not starting with a digit)",
                    super::clean(k)
                ),
            ));
        }
        if v.is_empty() {
            out.push(problem(
                at,
                "empty value: a runbook block never runs with an empty variable; give a value or remove the key",
            ));
        }
    }
    bound(
        rb.timeout,
        Bound::Positive,
        path!["runbooks", "timeout"],
        out,
    );
}

/// Bounds every duration in the config (see [`MAX_DURATION`],
/// [`MIN_INTERVAL`]).
fn validate_durations(cfg: &Config, out: &mut Vec<Problem>) {
    use Bound::*;
    if let Some(dk) = &cfg.sources.docker {
        let at = |k: &str| path!["sources", "docker", k];
        bound(dk.interval, Interval, at("interval"), out);
        bound(dk.probe_interval, Interval, at("probe_interval"), out);
        bound(dk.timeout, Interval, at("timeout"), out);
    }
    if let Some(p) = &cfg.sources.prometheus {
        bound(
            p.timeout,
            Positive,
            path!["sources", "prometheus", "timeout"],
            out,
        );
    }
    for (i, s) in cfg.sources.scrape.iter().enumerate() {
        bound(
            s.interval,
            Interval,
            path!["sources", "scrape", i, "interval"],
            out,
        );
        bound(
            s.timeout,
            Positive,
            path!["sources", "scrape", i, "timeout"],
            out,
        );
    }
    for (i, h) in cfg.sources.health.iter().enumerate() {
        bound(
            h.interval,
            Interval,
            path!["sources", "health", i, "interval"],
            out,
        );
        bound(
            h.timeout,
            Positive,
            path!["sources", "health", i, "timeout"],
            out,
        );
    }
    for (i, m) in cfg.sources.migrations.iter().enumerate() {
        bound(
            m.timeout,
            Positive,
            path!["sources", "migrations", i, "timeout"],
            out,
        );
        bound(
            m.interval,
            Interval,
            path!["sources", "migrations", i, "interval"],
            out,
        );
        bound(
            m.run_timeout,
            Positive,
            path!["sources", "migrations", i, "run_timeout"],
            out,
        );
    }
    for (i, c) in cfg.checks.iter().enumerate() {
        bound(c.window, Positive, path!["checks", i, "window"], out);
        bound(c.interval, Interval, path!["checks", i, "interval"], out);
        bound(c.for_, Any, path!["checks", i, "for"], out);
    }
    for (name, a) in &cfg.actions {
        // Zero is reported by `ActionSpec::validate`.
        bound(
            a.timeout,
            Any,
            path!["actions", name.as_str(), "timeout"],
            out,
        );
    }
    let steps = cfg
        .plans
        .iter()
        .flat_map(|(p, plan)| {
            plan.steps
                .iter()
                .enumerate()
                .map(move |(i, s)| (path!["plans", p.as_str(), "steps", i], s))
        })
        .chain(
            cfg.rollback
                .iter()
                .enumerate()
                .map(|(i, s)| (path!["rollback", i], s)),
        );
    for (base, s) in steps {
        let at = |k: &str| {
            let mut p = base.clone();
            p.push(k.into());
            p
        };
        if let Some(t) = s.timeout {
            bound(t, Positive, at("timeout"), out);
        }
        // Zero analysis durations are reported by the step checks.
        if let Some(d) = s.duration {
            bound(d, Any, at("duration"), out);
        }
    }
    for (i, t) in cfg.rollback_when.iter().enumerate() {
        bound(t.for_, Any, path!["rollback_when", i, "for"], out);
        bound(
            t.interval,
            Interval,
            path!["rollback_when", i, "interval"],
            out,
        );
    }
}

/// Checks that `query` (with `{track}`) is PromQL for both tracks.
fn check_promql(query: &str, tracks: &Tracks, at: Vec<Seg>, out: &mut Vec<Problem>) {
    for t in [&tracks.canary, &tracks.baseline] {
        let q = crate::sources::with_track(query, t);
        if let Err(e) = promql_parser::parser::parse(&q) {
            let e: String = e.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push(problem(
                at,
                format!("not valid PromQL (with {{track}} = {t:?}): {e}"),
            ));
            return;
        }
    }
}

/// `[sources.docker]`: the host's scheme, one selector per track, each
/// selector exactly one of `label`/`name`, a valid glob, the cap in range.
fn validate_docker(dk: &DockerSource, out: &mut Vec<Problem>) {
    if let Some(h) = &dk.host
        && !["unix://", "tcp://", "http://"]
            .iter()
            .any(|p| h.starts_with(p) && h.len() > p.len())
    {
        out.push(problem(
            path!["sources", "docker", "host"],
            format!(
                "{:?} is not a Docker host: use unix:///PATH, tcp://HOST:PORT or http://HOST:PORT",
                super::clean(h)
            ),
        ));
    }
    if dk.baseline.is_none() && dk.canary.is_none() {
        out.push(problem(
            path!["sources", "docker"],
            "select the containers of at least one track: baseline = { label = \"app.track=stable\" } or canary = { name = \"checkout-green*\" }",
        ));
    }
    if !(1..=1000).contains(&dk.max_containers) {
        out.push(problem(
            path!["sources", "docker", "max_containers"],
            format!("{} is out of range (1–1000)", dk.max_containers),
        ));
    }
    for (track, sel) in [("baseline", &dk.baseline), ("canary", &dk.canary)] {
        let Some(sel) = sel else { continue };
        let at = |k: &str| path!["sources", "docker", track, k];
        match (&sel.label, &sel.name) {
            (Some(l), None) => {
                let key = l.split_once('=').map_or(l.as_str(), |(k, _)| k);
                if key.trim().is_empty() || l.chars().any(char::is_control) {
                    out.push(problem(
                        at("label"),
                        format!(
                            "{:?} is not a label selector: use key=value or key",
                            super::clean(l)
                        ),
                    ));
                }
            }
            (None, Some(n)) => {
                if let Err(e) = glob::Pattern::new(n) {
                    out.push(problem(at("name"), format!("not a name pattern: {e}")));
                } else if n.is_empty() {
                    out.push(problem(at("name"), "must not be empty"));
                }
            }
            _ => out.push(problem(
                path!["sources", "docker", track],
                "set exactly one of `label` (key=value) or `name` (a pattern such as \"checkout-blue*\")",
            )),
        }
    }
}

fn check_url(u: &str, at: Vec<Seg>, out: &mut Vec<Problem>) {
    if u.chars().any(char::is_control) {
        out.push(problem(
            at,
            "the URL contains a control character (CR, LF, tab …)",
        ));
        return;
    }
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        Ok(url) => out.push(problem(
            at,
            format!("URL scheme `{}` is not http or https", url.scheme()),
        )),
        Err(e) => out.push(problem(at, format!("not a URL ({e}): {u:?}"))),
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
