//! The `rolldeck` command line.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use rolldeck::config::{self, Config};
use rolldeck::release::{Phase, Release, StepStatus};
use rolldeck::runtime::{self, OutputMode, RunOptions, exit};
use rolldeck::sources::{SourceStatus, Sources};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `--help`'s closing text: examples and the exit codes
/// ([`runtime::exit`]; the README's table says the same).
const AFTER_HELP: &str = "\
Examples:
  rolldeck demo                          the cockpit on a built-in demo service (no config)
  rolldeck demo --docker                 the same with stable and canary as Docker containers
  rolldeck check --config rolldeck.toml  validate a config, probe its sources and actions
  rolldeck --config rolldeck.toml        open the cockpit (`:start` begins a release)
  rolldeck run --plan canary             start or resume a release in the cockpit
  rolldeck run --headless --yes          the same for CI: JSON lines, approvals given
  rolldeck status                        where the current (or last) release stands
  rolldeck run --detach                  hand the release to a background driver
  rolldeck attach                        the cockpit on a background driver's release

Exit codes:
  0    promoted (and every command that succeeded)
  1    error: config, usage, driver lock held, preflight refused, I/O
  2    the rollback itself failed: a human must act
  3    rolled back
  4    paused for a human and left unwatched (only with --exit-on-pause)
  5    aborted
  6    left unfinished: quit in the cockpit mid-release (`rolldeck run` resumes)
  7    handed to a background driver (`run --detach`): started, not finished
  130  interrupted by SIGINT/SIGTERM/SIGHUP (`rolldeck run` resumes)
Anything but 0 means: not promoted.";

/// What to do when no config file is found: the demo, `--config`, the
/// example config (printed with the places rolldeck looked).
const NO_CONFIG_HELP: &str = "\
What next:
  rolldeck demo                 see the cockpit on a built-in demo service (no config needed)
  rolldeck --config FILE        use a config file (or set ROLLDECK_CONFIG=FILE)
  cp config.example.toml rolldeck.toml
                                start from the annotated example in the source tree
                                (examples/first-config.toml is the smallest that works;
                                README: \"Your first config\")
  rolldeck check                then validate it and probe its sources";

/// rolldeck — a terminal cockpit for releases and incidents.
#[derive(Parser, Debug)]
#[command(name = "rolldeck", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// Config file (else $ROLLDECK_CONFIG, ./rolldeck.toml, the user config dir).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory for the journal, driver lock and audit log (shared on a bastion).
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Cockpit theme: dark, light, high-contrast, ansi16, mono, or a theme TOML file.
    #[arg(long, global = true, value_name = "THEME")]
    theme: Option<String>,
    /// Open the cockpit as an observer even if nobody drives (never acts).
    #[arg(long, global = true)]
    read_only: bool,
    /// Without a command: open the cockpit (same as `rolldeck run`).
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run (or resume) a release in the cockpit, or headless with --headless.
    Run {
        /// The plan to run (default: default_plan, `default`, or the only one).
        #[arg(long)]
        plan: Option<String>,
        /// One JSON object per line on stdout, no screen.
        #[arg(long)]
        headless: bool,
        /// Approve approval steps automatically; in a protected environment
        /// also confirms starting (or --resume) without typing its name.
        #[arg(long)]
        yes: bool,
        /// Resume a paused release.
        #[arg(long)]
        resume: bool,
        /// Start even if the preflight finds a source the plan needs down.
        #[arg(long)]
        force: bool,
        /// Headless: exit 4 as soon as the release waits for a human, leaving
        /// it unwatched (default: keep watching the rollback triggers).
        #[arg(long)]
        exit_on_pause: bool,
        /// The version being released (overrides `version` in the config):
        /// 1–128 characters from A-Z a-z 0-9 . _ + - (it reaches actions as
        /// `{version}`, so it is a version, never a script).
        #[arg(long = "release-version", value_name = "VERSION", value_parser = parse_version)]
        version: Option<String>,
        /// Hand the release to a background driver that outlives this
        /// terminal; prints the release id and exits 7 at once
        /// (`rolldeck attach` to watch and control it).
        #[arg(long)]
        detach: bool,
    },
    /// Open the cockpit on the release a background driver drives, and
    /// control it through the driver's control socket.
    Attach,
    /// Background drivers under this state dir: pid, release, step,
    /// since, attached operators.
    Ps {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and probe every source and action binary.
    Check,
    /// Where the current (or last) release stands.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Past releases.
    History {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export an incident's timeline (the latest, or --incident ID) for the
    /// postmortem: Markdown (default) or JSON. Exit 1 when there is none.
    Timeline {
        /// As Markdown (the default).
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
        /// The incident's id (`INC-20261123-180102`; default: the latest).
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
    },
    /// Poll every source once and print what the cockpit would show.
    Snapshot {
        /// As JSON (the only format so far).
        #[arg(long)]
        json: bool,
    },
    /// Where each `[[sources.migrations]]` stands (current, head, pending)
    /// and the lint findings of pending migrations. Exit 1 when a pending
    /// migration has an error-severity finding, or a source is down, dirty
    /// or failed.
    Migrations {
        /// One JSON array of per-source objects.
        #[arg(long)]
        json: bool,
    },
    /// A Markdown runbook: list its sections, blocks and checks (default),
    /// run one block (exit code: the block's), tick checks, skip a
    /// checklist. Running uses the cockpit's rules: timeout, confirmation,
    /// audit log, progress in the state directory.
    Runbook {
        /// The runbook file, or a name from `[runbooks] dirs`.
        file: String,
        /// List sections, blocks and checks (the default).
        #[arg(long)]
        list: bool,
        /// With --list: one JSON document.
        #[arg(long)]
        json: bool,
        /// Run the block NAME (see --list for the names).
        #[arg(long, value_name = "NAME", conflicts_with_all = ["list", "json"])]
        run: Option<String>,
        /// Confirm: blocks marked confirm, a protected environment, --skip-checklist.
        #[arg(long)]
        yes: bool,
        /// A variable's value for --run (recorded unless the name looks secret).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Tick a check (its text, or a unique part of it); repeatable.
        #[arg(long, value_name = "CHECK")]
        tick: Vec<String>,
        /// Un-tick a check; repeatable.
        #[arg(long, value_name = "CHECK")]
        untick: Vec<String>,
        /// Skip this checklist in the running release (needs --yes and --reason; audited).
        #[arg(long)]
        skip_checklist: bool,
        /// Why (for --skip-checklist).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// The embedded demo: a stable and a canary service, load, Prometheus and PostgreSQL if found.
    Demo {
        /// One JSON object per line on stdout.
        #[arg(long)]
        headless: bool,
        /// What the canary does.
        #[arg(long, value_enum, default_value_t = rolldeck::demo::Scenario::Good)]
        scenario: rolldeck::demo::Scenario,
        /// The prometheus binary (default: search $PATH).
        #[arg(long, value_name = "PATH")]
        prometheus: Option<PathBuf>,
        /// Never start Prometheus; use direct scrape.
        #[arg(long)]
        no_prometheus: bool,
        /// Never start PostgreSQL: the Migrations pane shows the bundled
        /// migrations directory only and the plan has no migration step.
        #[arg(long)]
        no_postgres: bool,
        /// Headless: exit 4 as soon as the release waits for a human.
        #[arg(long)]
        exit_on_pause: bool,
        /// Today's test pace (12 s analysis steps, ~45 s for `good`) instead
        /// of the readable one (36 s steps, ~2 min).
        #[arg(long)]
        fast: bool,
        /// Stable and canary as Docker containers of the local demo image
        /// (built when missing); needs a Docker Engine.
        #[arg(long)]
        docker: bool,
    },
}

/// `--release-version`: a version ([`config::check_version`]).
fn parse_version(v: &str) -> Result<String, String> {
    config::check_version(v).map(|()| v.to_string())
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == rolldeck::demo::supervise::SUBCOMMAND)
    {
        let code = rolldeck::demo::supervise::main(&args[2..]);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if args
        .get(1)
        .is_some_and(|a| a == rolldeck::demo::migrations::SUBCOMMAND)
    {
        let code = rolldeck::demo::migrations::main(&args[2..]);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if args
        .get(1)
        .is_some_and(|a| a == rolldeck::control::background::SUBCOMMAND)
    {
        let code = rolldeck::control::background::driver_main(&args[2..]);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if args
        .get(1)
        .is_some_and(|a| a == rolldeck::docker::image::SUBCOMMAND)
    {
        let code = rolldeck::docker::image::container_main(&args[2..]);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // The demo's children (Prometheus) start through `rolldeck __supervise`
    // so they die with this process.
    if let Ok(exe) = std::env::current_exe() {
        rolldeck::demo::supervise::use_supervisor(exe);
    }
    // Usage errors exit 1 (exit::ERROR), never clap's 2, which rolldeck
    // uses for "the rollback failed".
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::ERROR } else { 0 };
            let text = e.render().to_string();
            if e.use_stderr() {
                eprint!("{}", printable(&text));
            } else {
                print!("{text}");
            }
            return ExitCode::from(code as u8);
        }
    };
    // The cockpit routes tracing into its Logs pane; everything else to stderr.
    let cockpit = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && match &cli.command {
            None | Some(Cmd::Attach) => true,
            Some(Cmd::Run { headless, .. }) | Some(Cmd::Demo { headless, .. }) => !headless,
            _ => false,
        };
    if !cockpit {
        init_stderr_tracing();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rolldeck: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR as u8);
        }
    };
    let code = rt.block_on(async_main(cli));
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn init_stderr_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLLDECK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .init();
}

fn load_config(explicit: Option<&Path>) -> Result<Config, i32> {
    let path = config::discover(explicit).map_err(|e| {
        eprintln!("rolldeck: {}", printable(&e.to_string()));
        if matches!(e, config::LoadError::NotFound { .. }) {
            eprintln!("{NO_CONFIG_HELP}");
        }
        exit::ERROR
    })?;
    config::load(&path).map_err(|e| {
        eprintln!("{}", printable(&e.to_string()));
        exit::ERROR
    })
}

async fn async_main(cli: Cli) -> i32 {
    let tui = rolldeck::tui::run::TuiOptions {
        read_only: cli.read_only,
        theme: cli.theme.clone(),
        banner: Vec::new(),
        // `rolldeck run` starts a release; `rolldeck` alone only opens the cockpit.
        start: cli.command.is_some(),
        scrape_every: None,
        attach: matches!(cli.command, Some(Cmd::Attach)),
        hand_off: !matches!(cli.command, Some(Cmd::Demo { .. })),
    };
    let command = cli.command.unwrap_or(Cmd::Run {
        plan: None,
        headless: false,
        yes: false,
        resume: false,
        force: false,
        exit_on_pause: false,
        version: None,
        detach: false,
    });
    let result = match command {
        Cmd::Demo {
            headless,
            scenario,
            prometheus,
            no_prometheus,
            no_postgres,
            exit_on_pause,
            fast,
            docker,
        } => {
            let demo = rolldeck::demo::DemoOptions {
                docker,
                headless,
                prometheus,
                no_prometheus,
                no_postgres,
                exit_on_pause,
                pace: if fast {
                    rolldeck::demo::scenario_config::Pace::Fast
                } else {
                    rolldeck::demo::scenario_config::Pace::Story
                },
            };
            rolldeck::demo::run_demo(scenario, demo, tui).await
        }
        Cmd::Run {
            plan,
            headless,
            yes,
            resume,
            force,
            exit_on_pause,
            version,
            detach,
        } => {
            let cfg = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let opts = RunOptions {
                plan,
                version,
                yes,
                resume,
                force,
                exit_on_pause,
                state_dir: cli.state_dir.clone(),
                output: if headless {
                    OutputMode::Json
                } else {
                    OutputMode::Text
                },
            };
            if detach {
                return match rolldeck::control::background::detach_run(&cfg, &opts).await {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("rolldeck: {}", printable(&error_chain(&e)));
                        exit::ERROR
                    }
                };
            }
            // Without a terminal (piped, cron) the events print as readable text.
            if headless || !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                runtime::run(&cfg, &opts).await
            } else {
                rolldeck::tui::run::run_tui(cfg, opts, tui).await
            }
        }
        Cmd::Attach => match load_config(cli.config.as_deref()) {
            Ok(cfg) => {
                let opts = RunOptions {
                    plan: None,
                    version: None,
                    yes: false,
                    resume: false,
                    force: false,
                    exit_on_pause: false,
                    state_dir: cli.state_dir.clone(),
                    output: OutputMode::Text,
                };
                rolldeck::tui::run::run_tui(cfg, opts, tui).await
            }
            Err(code) => return code,
        },
        Cmd::Ps { json } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => match runtime::StatePaths::resolve(&cfg, cli.state_dir.as_deref()) {
                Ok(paths) => rolldeck::control::background::ps(&paths, json).await,
                Err(e) => Err(anyhow::anyhow!(e)),
            },
            Err(code) => return code,
        },
        Cmd::Check => match load_config(cli.config.as_deref()) {
            Ok(cfg) => Ok(check(&cfg, cli.state_dir.as_deref()).await),
            Err(code) => return code,
        },
        Cmd::Status { json } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => status(&cfg, cli.state_dir.as_deref(), json).await,
            Err(code) => return code,
        },
        Cmd::History { json } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => history(&cfg, cli.state_dir.as_deref(), json),
            Err(code) => return code,
        },
        Cmd::Migrations { json } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => migrations(&cfg, json).await,
            Err(code) => return code,
        },
        Cmd::Runbook {
            file,
            list: _,
            json,
            run,
            yes,
            vars,
            tick,
            untick,
            skip_checklist,
            reason,
        } => {
            // Listing a file given by path needs no config.
            let listing = run.is_none() && tick.is_empty() && untick.is_empty() && !skip_checklist;
            let cfg = if listing && cli.config.is_none() && Path::new(&file).is_file() {
                None
            } else {
                match load_config(cli.config.as_deref()) {
                    Ok(c) => Some(c),
                    Err(code) => return code,
                }
            };
            let opts = rolldeck::runbook::cli::Options {
                file,
                json,
                run,
                yes,
                vars,
                tick,
                untick,
                skip_checklist,
                reason,
                read_only: cli.read_only,
                state_dir: cli.state_dir.clone(),
            };
            Ok(rolldeck::runbook::cli::main(opts, cfg.as_ref()).await)
        }
        Cmd::Timeline { json, incident, .. } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => runtime::StatePaths::resolve(&cfg, cli.state_dir.as_deref())
                .map_err(anyhow::Error::msg)
                .and_then(|paths| {
                    let format = match json {
                        true => rolldeck::incident::export::Format::Json,
                        false => rolldeck::incident::export::Format::Markdown,
                    };
                    rolldeck::incident::export::render(
                        &rolldeck::incident::timeline::path_in(&paths.dir),
                        incident.as_deref(),
                        format,
                        jiff::Timestamp::now(),
                        &jiff::tz::TimeZone::system(),
                    )
                })
                .map(|text| {
                    print!("{text}");
                    exit::PROMOTED
                }),
            Err(code) => return code,
        },
        Cmd::Snapshot { json: _ } => match load_config(cli.config.as_deref()) {
            Ok(cfg) => snapshot(&cfg).await,
            Err(code) => return code,
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rolldeck: {}", printable(&error_chain(&e)));
            exit::ERROR
        }
    }
}

/// An error and its causes, `: `-joined, each cause once: a cause whose
/// text its parent's message already ends with (`journal X: Not a directory
/// (os error 20)` over the OS error itself) is not repeated.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) || out.contains(&format!("{text}: ")) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `text` with control characters other than newline escaped (paths and
/// values echoed in errors cannot drive the terminal).
fn printable(text: &str) -> String {
    text.split('\n')
        .map(config::clean)
        .collect::<Vec<_>>()
        .join("\n")
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Probes of the action binaries (HTTP actions are not sent: they change the world).
fn action_statuses(cfg: &Config) -> Vec<SourceStatus> {
    cfg.actions
        .iter()
        .map(|(name, a)| match (a.program(), &a.url) {
            (Some(p), _) => match which(p) {
                Some(path) => SourceStatus {
                    source: format!("action:{name}"),
                    ok: true,
                    detail: format!("ok: {}", path.display()),
                    latency_ms: None,
                },
                None => SourceStatus {
                    source: format!("action:{name}"),
                    ok: false,
                    detail: format!("command not found: {p}"),
                    latency_ms: None,
                },
            },
            (None, Some(url)) => SourceStatus {
                source: format!("action:{name}"),
                ok: true,
                detail: format!("HTTP action {} {} (not sent by check)", a.method, url),
                latency_ms: None,
            },
            _ => SourceStatus {
                source: format!("action:{name}"),
                ok: false,
                detail: "neither a command nor a URL".into(),
                latency_ms: None,
            },
        })
        .collect()
}

async fn check(cfg: &Config, state_dir: Option<&Path>) -> i32 {
    let redactor = rolldeck::redact::Redactor::new(cfg.secrets.clone());
    println!(
        "config ok: service {}, environment {}{}, {} checks, {} actions, plans: {}",
        cfg.service,
        cfg.environment.name,
        if cfg.environment.protected {
            " (protected)"
        } else {
            ""
        },
        cfg.checks.len(),
        cfg.actions.len(),
        cfg.plans.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    // Plans that will wait or pause for a human (warnings, not errors).
    for name in cfg.plans.keys() {
        match rolldeck::release::Plan::from_config(cfg, Some(name)) {
            Ok(plan) => plan
                .warnings()
                .iter()
                .for_each(|w| println!("warning: {w}")),
            Err(e) => println!("warning: plan `{name}`: {e}"),
        }
    }
    // One driver per service+environment holds only among users who share
    // the state dir.
    if let Ok(paths) = runtime::StatePaths::resolve(cfg, state_dir)
        && let Some(w) = paths.private_warning(cfg.environment.protected)
    {
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            println!("\x1b[1;31mWARNING: {w}\x1b[0m");
        } else {
            println!("WARNING: {w}");
        }
    }
    let mut all = rolldeck::preflight::probe(cfg, None).await;
    all.extend(action_statuses(cfg));
    // Migration sources: read like the pane does (down with the reason).
    for m in rolldeck::migrations::read_all(&cfg.sources.migrations).await {
        let detail = match (&m.error, m.at_head_and_clean()) {
            (Some(e), _) => e.clone(),
            (None, Ok(())) => format!("at head {}", m.heads.join(", ")),
            (None, Err(why)) => why,
        };
        all.push(SourceStatus {
            source: format!("migrations:{}", m.name),
            ok: m.ok,
            detail,
            latency_ms: None,
        });
    }
    all.extend(rolldeck::runbook::check_statuses(cfg));
    let mut ok = true;
    for s in &all {
        ok &= s.ok;
        let lat = s
            .latency_ms
            .map(|l| format!("{l:.0}ms"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<4} {:<28} {:>7}  {}",
            if s.ok { "ok" } else { "down" },
            s.source,
            lat,
            redactor.redact(&s.detail)
        );
    }
    if ok { exit::PROMOTED } else { exit::ERROR }
}

/// A time as people read it: local, to the second, with the zone
/// (`2026-11-23 15:04:05 CET`). JSON output keeps RFC 3339 UTC.
fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn step_summary(r: &Release) -> serde_json::Value {
    serde_json::json!(
        r.plan
            .steps
            .iter()
            .zip(&r.steps)
            .enumerate()
            .map(|(i, (s, run))| serde_json::json!({
                "step": i, "name": s.name, "kind": s.kind(), "status": run.status,
                "detail": run.detail, "started_at": run.started_at, "finished_at": run.finished_at,
            }))
            .collect::<Vec<_>>()
    )
}

fn phase_words(p: &Phase) -> (String, String) {
    match p {
        Phase::Running => ("running".into(), String::new()),
        Phase::Paused { reason, .. } => ("paused".into(), reason.clone()),
        Phase::WaitingApproval { message } => ("waiting_approval".into(), message.clone()),
        Phase::RollingBack { reason } => ("rolling_back".into(), reason.clone()),
        Phase::Finished { outcome, reason } => (outcome.as_str().into(), reason.clone()),
    }
}

async fn status(cfg: &Config, state_dir: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    // The background driver, if one was started (or killed) here.
    let background = match runtime::StatePaths::resolve(cfg, state_dir) {
        Ok(p) => rolldeck::control::background::row(&p)
            .await
            .map_err(anyhow::Error::msg)?,
        Err(_) => None,
    };
    let Some((r, holder)) = runtime::status(cfg, state_dir)? else {
        if json {
            println!("{}", serde_json::json!({"release": null}));
        } else {
            println!("no release in the journal for {}", cfg.release_key());
        }
        return Ok(exit::PROMOTED);
    };
    let now = jiff::Timestamp::now();
    let (phase, why) = phase_words(&r.phase);
    let current = r.current_step().map(|s| s.name.clone());
    let verdicts: Vec<_> = r.checks.values().filter_map(|c| c.last.clone()).collect();
    if json {
        let v = serde_json::json!({
            "release": r.id, "service": r.service, "environment": r.environment, "version": r.version,
            "plan": r.plan.name, "phase": phase, "reason": why, "current_step": current,
            "weight": r.weight, "progress": r.progress(), "eta_s": if r.is_finished() { 0.0 } else { r.eta_s(now) },
            "started_at": r.started_at, "finished_at": r.finished_at,
            "driver": holder, "steps": step_summary(&r), "verdicts": verdicts,
            "background": background,
        });
        println!("{v}");
    } else {
        // Text for people: `waiting for approval`, not `waiting_approval`.
        let phase = phase.replace('_', " ");
        println!(
            "release {} ({}) plan {}: {phase}{}",
            r.id,
            r.version.as_deref().unwrap_or("-"),
            r.plan.name,
            if why.is_empty() {
                String::new()
            } else {
                format!(" — {why}")
            }
        );
        println!("canary weight {}%, {}", r.weight, r.position_words(now));
        match holder {
            Some(h) => println!("driver: {h}"),
            None => println!("driver: none"),
        }
        if let Some(b) = &background {
            println!("{}", rolldeck::control::background::row_words(b));
        }
        for (i, (s, run)) in r.plan.steps.iter().zip(&r.steps).enumerate() {
            let (mark, word) = rolldeck::tui::ui::status_mark(run.status);
            let word =
                if run.status == StepStatus::Running && matches!(r.phase, Phase::Paused { .. }) {
                    "paused"
                } else {
                    word
                };
            println!("  {mark} {i:>2} {:<22} {word:<11} {}", s.name, run.detail);
        }
        for v in verdicts {
            println!("  [{}] {}", v.check, v.reason);
        }
    }
    Ok(exit::PROMOTED)
}

fn history(cfg: &Config, state_dir: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    let all = runtime::history(cfg, state_dir)?;
    let rows: Vec<serde_json::Value> = all
        .iter()
        .map(|r| {
            let (phase, why) = phase_words(&r.phase);
            let dur = r
                .finished_at
                .map(|f| (f.as_millisecond() - r.started_at.as_millisecond()) as f64 / 1000.0);
            serde_json::json!({"release": r.id, "version": r.version, "plan": r.plan.name,
                "started_at": r.started_at, "finished_at": r.finished_at, "outcome": phase,
                "reason": why, "duration_s": dur})
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else if rows.is_empty() {
        println!("no releases in the journal for {}", cfg.release_key());
    } else {
        for (r, release) in rows.iter().zip(&all) {
            println!(
                "{}  {:<12} {:<10} {:>6}  {}",
                local_time(release.started_at),
                r["outcome"].as_str().unwrap_or("-").replace('_', " "),
                r["version"].as_str().unwrap_or("-"),
                r["duration_s"]
                    .as_f64()
                    .map(|d| format!("{d:.0}s"))
                    .unwrap_or_else(|| "-".into()),
                r["release"].as_str().unwrap_or("-"),
            );
        }
    }
    Ok(exit::PROMOTED)
}

async fn snapshot(cfg: &Config) -> anyhow::Result<i32> {
    let redactor = rolldeck::redact::Redactor::new(cfg.secrets.clone());
    let sources = Sources::new(cfg);
    let scrapers = sources.spawn_scrapers();
    let direct = cfg.sources.prometheus.is_none() && !cfg.sources.scrape.is_empty();
    if direct {
        // Rates need two scrapes.
        let wait = cfg
            .sources
            .scrape
            .iter()
            .map(|s| s.interval)
            .max()
            .unwrap_or_default();
        tokio::time::sleep(
            wait.min(std::time::Duration::from_secs(10)) + std::time::Duration::from_millis(300),
        )
        .await;
    }
    let status = sources.status_all().await;
    let mut checks = Vec::new();
    for c in &cfg.checks {
        let m = sources.measure(&c.name).await;
        let track = |r: &rolldeck::release::TrackResult| match r {
            Ok(x) => serde_json::json!({"value": x.value, "requests": x.requests}),
            Err(e) => serde_json::json!({"error": e}),
        };
        checks.push(serde_json::json!({"check": c.name, "query": m.query,
            "canary": track(&m.canary), "baseline": track(&m.baseline)}));
    }
    for h in scrapers {
        h.abort();
    }
    let migrations = rolldeck::migrations::read_all(&cfg.sources.migrations).await;
    // `null` without [sources.docker] or while the engine is down (the
    // `docker` source says why); else every selected container.
    let containers = match &cfg.sources.docker {
        Some(d) => match rolldeck::docker::list_once(d).await {
            Ok((_, list, _)) => serde_json::to_value(list)?,
            Err(_) => serde_json::Value::Null,
        },
        None => serde_json::Value::Null,
    };
    let v = serde_json::json!({"service": cfg.service, "environment": cfg.environment.name,
        "protected": cfg.environment.protected, "sources": status, "checks": checks,
        "containers": containers, "migrations": migrations});
    println!("{}", redactor.to_json_line(&v)?);
    Ok(
        if status.iter().all(|s| s.ok) && migrations.iter().all(|m| m.ok) {
            exit::PROMOTED
        } else {
            exit::ERROR
        },
    )
}

/// `rolldeck migrations [--json]`: exit 0 only when every source was read,
/// none is dirty or failed, and no pending migration has an error finding.
async fn migrations(cfg: &Config, json: bool) -> anyhow::Result<i32> {
    use rolldeck::migrations::Severity;
    let redactor = rolldeck::redact::Redactor::new(cfg.secrets.clone());
    if cfg.sources.migrations.is_empty() {
        anyhow::bail!("no [[sources.migrations]] configured");
    }
    let all = rolldeck::migrations::read_all(&cfg.sources.migrations).await;
    let bad = all
        .iter()
        .any(|s| !s.ok || s.dirty || !s.failed.is_empty() || s.has_error_finding());
    if json {
        println!("{}", redactor.to_json_line(&all)?);
    } else {
        for s in &all {
            let none = || "(none)".to_string();
            let list = |v: &[String]| if v.is_empty() { none() } else { v.join(", ") };
            let mut head = format!(
                "{} ({}): {} → {}",
                s.name,
                s.tool.as_str(),
                list(&s.current),
                list(&s.heads)
            );
            if s.directory_only {
                head.push_str(&format!(
                    ", {} file(s), applied state not read (directory only)",
                    s.pending.len()
                ));
            } else if s.pending.is_empty() && s.ok {
                head.push_str(", at head");
            } else {
                head.push_str(&format!(", {} pending", s.pending.len()));
            }
            println!("{}", redactor.redact(&head));
            if let Some(e) = &s.error {
                println!("  DOWN: {}", redactor.redact(e));
            }
            if s.dirty || !s.failed.is_empty() {
                println!("  DIRTY/FAILED: {}", list(&s.failed));
            }
            if !s.missing_files.is_empty() {
                println!("  applied but no file: {}", s.missing_files.join(", "));
            }
            for w in &s.warnings {
                println!("  warning: {}", redactor.redact(w));
            }
            for p in &s.applied_destructive {
                println!(
                    "  applied, destructive (a rollback does not undo it): {} {}",
                    p.revision, p.file
                );
            }
            for p in &s.pending {
                println!("  pending {} {}", p.revision, p.file);
                for f in &p.findings {
                    let sev = match f.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                    println!(
                        "    {sev:<7} {:<20} {}{at}: {}",
                        f.rule,
                        p.file,
                        redactor.redact(&f.message)
                    );
                }
            }
        }
    }
    Ok(if bad { exit::ERROR } else { exit::PROMOTED })
}
