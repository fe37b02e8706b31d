//! The demo's database migrations: a bundled golang-migrate history
//! ([`HISTORY`]: `N_name.up.sql` / `N_name.down.sql`, one of them a
//! destructive `DROP COLUMN`), a PostgreSQL the demo starts when its
//! binaries are found ([`DemoDatabase`]), and `rolldeck __migrate`
//! ([`main`]), a small runner of our own that the demo plan's `migration`
//! step calls, since golang-migrate's `migrate` binary is not installed.
//!
//! The runner follows golang-migrate's documented PostgreSQL semantics:
//!
//! * the version table `schema_migrations(version bigint NOT NULL PRIMARY
//!   KEY, dirty boolean NOT NULL)` holds at most one row; no row = no
//!   migration applied (golang-migrate's "nil version");
//! * before a migration runs, the row is set to its target version with
//!   `dirty = true`; after it succeeded, `dirty = false` (each set is
//!   `TRUNCATE` + `INSERT` in one transaction). A migration that fails
//!   leaves the row dirty, and every later run refuses ("Dirty database
//!   version N. Fix and force version.");
//! * a file is sent as one simple query, so PostgreSQL runs its statements
//!   as one transaction (unless the file has its own `BEGIN`/`COMMIT`), as
//!   golang-migrate's postgres driver does: a file that fails half-way
//!   changes nothing but the dirty flag;
//! * `up [N]` applies the next N (all by default) versions above the
//!   current one, `down N` undoes N applied versions, newest first (the
//!   target of undoing the oldest is the nil version); an advisory lock
//!   keeps two runners apart. Unlike golang-migrate, `down N` with fewer
//!   than N migrations applied is refused before anything runs;
//! * output lines read like golang-migrate's: `4/u index_orders_created_at
//!   (12ms)`, `no change` when nothing is pending.
//!
//! The database URL comes from `DATABASE_URL` (as the `migration` step
//! passes it), never from the command line, so it is not in `ps` or the
//! audit log.

use crate::migrations::{Tool, disk};
use anyhow::Context as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__migrate";

/// The bundled history (file name, text), in version order.
pub const HISTORY: &[(&str, &str)] = &[
    (
        "1_create_orders.up.sql",
        include_str!("history/1_create_orders.up.sql"),
    ),
    (
        "1_create_orders.down.sql",
        include_str!("history/1_create_orders.down.sql"),
    ),
    (
        "2_add_order_status.up.sql",
        include_str!("history/2_add_order_status.up.sql"),
    ),
    (
        "2_add_order_status.down.sql",
        include_str!("history/2_add_order_status.down.sql"),
    ),
    (
        "3_create_order_items.up.sql",
        include_str!("history/3_create_order_items.up.sql"),
    ),
    (
        "3_create_order_items.down.sql",
        include_str!("history/3_create_order_items.down.sql"),
    ),
    (
        "4_index_orders_created_at.up.sql",
        include_str!("history/4_index_orders_created_at.up.sql"),
    ),
    (
        "4_index_orders_created_at.down.sql",
        include_str!("history/4_index_orders_created_at.down.sql"),
    ),
    (
        "5_drop_orders_legacy_note.up.sql",
        include_str!("history/5_drop_orders_legacy_note.up.sql"),
    ),
    (
        "5_drop_orders_legacy_note.down.sql",
        include_str!("history/5_drop_orders_legacy_note.down.sql"),
    ),
];

/// The version "production" is at when the demo starts: 1–3 applied, so
/// the release's migration step has 4 (a lock warning) and 5 (the
/// destructive `DROP COLUMN`) to apply.
pub const DEPLOYED_VERSION: i64 = 3;

/// The migration source's name in the demo config.
pub const SOURCE: &str = "checkout-db";

/// The database the demo creates.
const DATABASE: &str = "checkout";

/// The superuser the demo's `initdb` creates.
const USER: &str = "rolldeck";

/// Writes [`HISTORY`] into `dir` (created if needed).
pub fn write_history(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in HISTORY {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// The newest directory holding both `initdb` and `postgres`: Debian's
/// `/usr/lib/postgresql/VERSION/bin` (highest version first), else the
/// first `$PATH` entry holding both. `None` when PostgreSQL is not
/// installed.
pub fn find_postgres() -> Option<PathBuf> {
    let both = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            both(&bin).then_some((v, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .find(|d| both(d))
}

/// How long [`DemoDatabase::start`] waits for `initdb`, and then for the
/// server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How many ports [`DemoDatabase::start`] tries when the chosen one gets
/// taken before PostgreSQL binds it.
const PORT_ATTEMPTS: usize = 4;

/// A PostgreSQL for the demo: a fresh cluster in a temp dir (`initdb`,
/// scram-sha-256 password authentication for user `rolldeck` with a random
/// password), listening on a free `127.0.0.1` port, its unix socket in the
/// temp dir, started through the supervisor so it dies with rolldeck. As
/// root it runs as `nobody` (PostgreSQL refuses root) through `setpriv`,
/// which keeps the parent-death signal. Database `checkout` holds the
/// bundled history up to [`DEPLOYED_VERSION`] and a few orders.
///
/// [`DemoDatabase::stop`] shuts it down (fast shutdown) and removes the
/// temp dir; drop kills it (SIGKILL) and removes the dir.
#[derive(Debug)]
pub struct DemoDatabase {
    /// `postgresql://rolldeck:PASSWORD@127.0.0.1:PORT/checkout`: a secret.
    pub url: String,
    child: Option<tokio::process::Child>,
    dir: Option<tempfile::TempDir>,
}

/// `setpriv` arguments that run the rest as `nobody`, keeping the
/// parent-death signal the supervisor set.
const SETPRIV_NOBODY: &[&str] = &[
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--reset-env",
    "--pdeathsig=keep",
    "--",
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `setpriv` from `$PATH` (needed as root).
fn find_setpriv() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("setpriv"))
        .find(|p| p.is_file())
}

/// `program args…` as the unprivileged user when we are root.
fn as_postgres_user(
    program: &Path,
    setpriv: Option<&Path>,
    supervised: bool,
) -> tokio::process::Command {
    let (first, pre): (&Path, &[&str]) = match setpriv {
        Some(s) => (s, SETPRIV_NOBODY),
        None => (program, &[]),
    };
    let mut c = if supervised {
        super::supervise::command(first)
    } else {
        tokio::process::Command::new(first)
    };
    c.args(pre);
    if setpriv.is_some() {
        c.arg(program);
    }
    c
}

/// The last `n` lines of a file (empty if unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl DemoDatabase {
    /// Starts a cluster with the binaries in `bin` (see the type's docs).
    /// Errors (nothing is left running): `initdb` fails or times out, the
    /// server exits or does not accept connections within 60 s, running as
    /// root without `setpriv` or user `nobody`, or the history cannot be
    /// applied; the error carries the server log's tail.
    pub async fn start(bin: &Path, history: &Path) -> anyhow::Result<DemoDatabase> {
        let dir = tempfile::Builder::new()
            .prefix("rolldeck-demo-pg-")
            .tempdir()
            .context("creating a temp dir for PostgreSQL")?;
        let setpriv = if is_root() {
            let s = find_setpriv()
                .context("running as root: PostgreSQL must run unprivileged, and `setpriv` (util-linux) was not found")?;
            let nobody = nix::unistd::User::from_name("nobody")
                .ok()
                .flatten()
                .context("running as root: no user `nobody` to run PostgreSQL as")?;
            let group = nix::unistd::Group::from_name("nogroup")
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw());
            std::os::unix::fs::chown(dir.path(), Some(nobody.uid.as_raw()), group)
                .context("handing the PostgreSQL temp dir to `nobody`")?;
            Some(s)
        } else {
            None
        };
        let password: String = {
            use rand::Rng as _;
            rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(24)
                .map(char::from)
                .collect()
        };
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        if let Some(u) = setpriv
            .as_ref()
            .and(nix::unistd::User::from_name("nobody").ok().flatten())
        {
            std::os::unix::fs::chown(&pwfile, Some(u.uid.as_raw()), None)?;
        }
        let data = dir.path().join("data");
        let initdb = as_postgres_user(&bin.join("initdb"), setpriv.as_deref(), false)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(START_TIMEOUT, initdb)
            .await
            .map_err(|_| anyhow::anyhow!("initdb did not finish within {START_TIMEOUT:?}"))?
            .with_context(|| format!("running {}", bin.join("initdb").display()))?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            anyhow::bail!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let log_path = dir.path().join("postgres.log");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("picking a free port")?
                .port();
            let log = std::fs::File::create(&log_path)?;
            let mut child = as_postgres_user(&bin.join("postgres"), setpriv.as_deref(), true)
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .arg("-k")
                .arg(dir.path())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "synchronous_commit=off",
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", bin.join("postgres").display()))?;
            let admin = format!("postgresql://{USER}:{password}@127.0.0.1:{port}/postgres");
            let deadline = Instant::now() + START_TIMEOUT;
            let ready = loop {
                if let Some(status) = child.try_wait()? {
                    break Err(status);
                }
                if let Ok(Ok(())) =
                    tokio::time::timeout(Duration::from_secs(2), execute(&admin, "SELECT 1")).await
                {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    anyhow::bail!(
                        "PostgreSQL did not accept connections within {START_TIMEOUT:?}; log tail:\n{}",
                        tail(&log_path, 20)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            if let Err(status) = ready {
                let log_tail = tail(&log_path, 20);
                if log_tail.contains("could not bind") && attempt < PORT_ATTEMPTS {
                    continue;
                }
                anyhow::bail!("PostgreSQL exited during startup ({status}); log tail:\n{log_tail}");
            }
            let db = DemoDatabase {
                url: format!("postgresql://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"),
                child: Some(child),
                dir: Some(dir),
            };
            // On error `db` is dropped: the server is killed, the dir removed.
            execute(&admin, &format!("CREATE DATABASE {DATABASE}"))
                .await
                .map_err(anyhow::Error::msg)?;
            migrate(
                &db.url,
                history,
                None,
                Direction::Up(Some(DEPLOYED_VERSION as usize)),
                &mut |l| tracing::debug!("demo history: {l}"),
            )
            .await
            .map_err(|e| anyhow::anyhow!("applying the demo history: {e}"))?;
            execute(
                &db.url,
                "INSERT INTO orders (customer, total_cents, legacy_note) VALUES \
                 ('ada', 4200, 'leave at the door'), ('grace', 1999, NULL), \
                 ('linus', 12000, 'gift wrap')",
            )
            .await
            .map_err(anyhow::Error::msg)?;
            tracing::info!(port, "demo PostgreSQL started");
            return Ok(db);
        }
        anyhow::bail!(
            "PostgreSQL could not bind a port after {PORT_ATTEMPTS} attempts; log tail:\n{}",
            tail(&log_path, 20)
        )
    }

    /// Fast shutdown (SIGINT), at most 10 s, then SIGKILL; removes the
    /// temp dir.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            }
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            tracing::warn!(error = %e, "removing the demo PostgreSQL temp dir");
        }
    }
}

impl Drop for DemoDatabase {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        self.dir.take();
    }
}

/// Connects (10 s limit) and runs `sql` as one simple query.
async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let client = connect(url).await?;
    client.batch_execute(sql).await.map_err(|e| pg_reason(&e))
}

/// A connection (no TLS, 10 s connect limit); the connection task ends
/// when the client is dropped.
async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
    config.connect_timeout(Duration::from_secs(10));
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect: {}", pg_reason(&e)))?;
    tokio::spawn(conn);
    Ok(client)
}

/// The driver's reason (never the password), with the server's code.
fn pg_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::sources::body::error_chain(e),
    }
}

/// What the runner does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Apply the next N pending migrations (all when `None`).
    Up(Option<usize>),
    /// Undo the N newest applied migrations.
    Down(usize),
    /// Print the current version.
    Version,
}

/// The version table's name, quoted.
fn quoted(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// One migration on disk: version, title, up file, down file.
struct Step {
    version: i64,
    title: String,
    up: PathBuf,
    down: Option<PathBuf>,
}

/// The directory's migrations in version order (read with
/// [`disk::read`], golang-migrate names).
fn steps(dir: &Path) -> Result<Vec<Step>, String> {
    let d = disk::read(Tool::GolangMigrate, dir)?;
    d.migrations
        .into_iter()
        .map(|m| {
            let version: i64 = m
                .revision
                .parse()
                .map_err(|_| format!("version {} does not fit a bigint", m.revision))?;
            let name = m
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let title = name
                .split_once('_')
                .map(|(_, t)| t.trim_end_matches(".up.sql").to_string())
                .unwrap_or_default();
            let down = m.file.with_file_name(name.replace(".up.sql", ".down.sql"));
            Ok(Step {
                version,
                title,
                up: m.file.clone(),
                down: down.is_file().then_some(down),
            })
        })
        .collect()
}

/// Runs the runner against `url` with the migrations in `dir` and version
/// table `table` (default `schema_migrations`), calling `say` with each
/// line as it happens (`4/u title (12ms)` after each migration, `no
/// change`, or the version). Errors are golang-migrate's words where it
/// has them (`Dirty database version 5. Fix and force version.`, `no
/// migration`, `file does not exist`); the migrations before the failing
/// one stay applied.
pub async fn migrate(
    url: &str,
    dir: &Path,
    table: Option<&str>,
    what: Direction,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let list = tokio::task::spawn_blocking(move || steps(&dir))
        .await
        .map_err(|e| format!("reading the migrations failed: {e}"))??;
    let table = table.unwrap_or("schema_migrations");
    let t = quoted(table);
    let mut client = connect(url).await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
        ))
        .await
        .map_err(|e| format!("creating {table}: {}", pg_reason(&e)))?;
    // One runner at a time (the lock ends with the session too).
    let key = lock_key(table);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .map_err(|e| format!("locking: {}", pg_reason(&e)))?;
    let out = run_locked(&mut client, &t, &list, what, say).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
    out
}

/// A stable advisory lock key for `table` (FNV-1a).
fn lock_key(table: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("rolldeck-migrate:{table}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

async fn current(client: &tokio_postgres::Client, t: &str) -> Result<Option<(i64, bool)>, String> {
    let rows = client
        .query(
            format!("SELECT version, dirty FROM {t} LIMIT 2").as_str(),
            &[],
        )
        .await
        .map_err(|e| format!("reading {t}: {}", pg_reason(&e)))?;
    if rows.len() > 1 {
        return Err(format!("{t} has more than one row"));
    }
    rows.first()
        .map(|r| {
            Ok::<_, String>((
                r.try_get(0).map_err(|e| pg_reason(&e))?,
                r.try_get(1).map_err(|e| pg_reason(&e))?,
            ))
        })
        .transpose()
}

/// golang-migrate's `SetVersion`: one transaction that empties the table
/// and, for a version (or the nil version while dirty), writes the row.
async fn set_version(
    client: &mut tokio_postgres::Client,
    t: &str,
    version: Option<i64>,
    dirty: bool,
) -> Result<(), String> {
    let tx = client.transaction().await.map_err(|e| pg_reason(&e))?;
    tx.batch_execute(&format!("TRUNCATE {t}"))
        .await
        .map_err(|e| format!("setting the version: {}", pg_reason(&e)))?;
    if version.is_some() || dirty {
        let v = version.unwrap_or(-1);
        tx.execute(
            format!("INSERT INTO {t} (version, dirty) VALUES ($1, $2)").as_str(),
            &[&v, &dirty],
        )
        .await
        .map_err(|e| format!("setting the version: {}", pg_reason(&e)))?;
    }
    tx.commit()
        .await
        .map_err(|e| format!("setting the version: {}", pg_reason(&e)))
}

async fn run_locked(
    client: &mut tokio_postgres::Client,
    t: &str,
    list: &[Step],
    what: Direction,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), String> {
    let cur = current(client, t).await?;
    if let Some((v, true)) = cur {
        return Err(format!(
            "Dirty database version {v}. Fix and force version."
        ));
    }
    let cur = cur.map(|(v, _)| v).filter(|v| *v >= 0);
    match what {
        Direction::Version => match cur {
            Some(v) => say(v.to_string()),
            None => return Err("no migration".into()),
        },
        Direction::Up(n) => {
            if let Some(v) = cur
                && !list.iter().any(|s| s.version == v)
            {
                return Err(format!(
                    "no migration found for version {v}: file does not exist"
                ));
            }
            let todo: Vec<&Step> = list
                .iter()
                .filter(|s| cur.is_none_or(|c| s.version > c))
                .take(n.unwrap_or(usize::MAX))
                .collect();
            if todo.is_empty() {
                say("no change".into());
            }
            for s in todo {
                let started = Instant::now();
                set_version(client, t, Some(s.version), true).await?;
                run_file(client, &s.up).await?;
                set_version(client, t, Some(s.version), false).await?;
                say(format!(
                    "{}/u {} ({}ms)",
                    s.version,
                    s.title,
                    started.elapsed().as_millis()
                ));
            }
        }
        Direction::Down(n) => {
            let applied: Vec<&Step> = match cur {
                None => Vec::new(),
                Some(v) => {
                    if !list.iter().any(|s| s.version == v) {
                        return Err(format!(
                            "no migration found for version {v}: file does not exist"
                        ));
                    }
                    list.iter().filter(|s| s.version <= v).collect()
                }
            };
            if n > applied.len() {
                return Err(format!(
                    "cannot undo {n}: {} migration(s) applied",
                    applied.len()
                ));
            }
            for (i, s) in applied.iter().enumerate().rev().take(n) {
                let down = s.down.as_ref().ok_or_else(|| {
                    format!(
                        "no down migration for version {}: file does not exist",
                        s.version
                    )
                })?;
                let target = i.checked_sub(1).map(|j| applied[j].version);
                let started = Instant::now();
                set_version(client, t, target, true).await?;
                run_file(client, down).await?;
                set_version(client, t, target, false).await?;
                say(format!(
                    "{}/d {} ({}ms)",
                    s.version,
                    s.title,
                    started.elapsed().as_millis()
                ));
            }
        }
    }
    Ok(())
}

/// Sends the file as one simple query (one implicit transaction).
async fn run_file(client: &tokio_postgres::Client, path: &Path) -> Result<(), String> {
    let p = path.to_path_buf();
    let text = tokio::task::spawn_blocking(move || disk::read_capped(&p))
        .await
        .map_err(|e| format!("reading {} failed: {e}", path.display()))??;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    client
        .batch_execute(&text)
        .await
        .map_err(|e| format!("migration failed in {name}: {}", pg_reason(&e)))
}

/// What the command line asks: directory, table, direction.
fn parse_args(args: &[OsString]) -> Result<(PathBuf, Option<String>, Direction), String> {
    let mut dir = None;
    let mut table = None;
    let mut rest: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a
            .to_str()
            .ok_or_else(|| format!("argument {a:?} is not UTF-8"))?;
        match a {
            "--dir" => dir = Some(PathBuf::from(it.next().ok_or("--dir needs a directory")?)),
            "--table" => {
                table = Some(
                    it.next()
                        .and_then(|t| t.to_str())
                        .ok_or("--table needs a name")?
                        .to_string(),
                )
            }
            _ => rest.push(a.to_string()),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    let n = |s: Option<&String>| -> Result<Option<usize>, String> {
        s.map(|s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{s}` is not a positive count"))
        })
        .transpose()
    };
    let what = match rest
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["up"] | ["up", _] => Direction::Up(n(rest.get(1))?),
        ["down", _] => Direction::Down(n(rest.get(1))?.unwrap_or(1)),
        ["down"] => {
            return Err("down needs a count (down N); undoing everything is not offered".into());
        }
        ["version"] => Direction::Version,
        _ => return Err("expected up [N], down N or version".into()),
    };
    Ok((dir, table, what))
}

/// `rolldeck __migrate --dir DIR [--table T] up [N] | down N | version`,
/// the database from `DATABASE_URL`. Prints each migration run (or the
/// version) on stdout; returns the exit code: 0 done, 1 an error (printed
/// on stderr as `error: …`).
pub fn main(args: &[OsString]) -> i32 {
    let usage = format!(
        "usage: rolldeck {SUBCOMMAND} --dir DIR [--table NAME] up [N] | down N | version (database: $DATABASE_URL)"
    );
    let (dir, table, what) = match parse_args(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}\n{usage}");
            return 1;
        }
    };
    let Some(url) = std::env::var_os("DATABASE_URL") else {
        eprintln!("error: DATABASE_URL is not set\n{usage}");
        return 1;
    };
    let Some(url) = url.to_str().map(str::to_string) else {
        eprintln!("error: DATABASE_URL is not UTF-8");
        return 1;
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut say = |l: String| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{l}");
        let _ = out.flush();
    };
    match rt.block_on(migrate(&url, &dir, table.as_deref(), what, &mut say)) {
        Ok(()) => 0,
        Err(e) => {
            // The driver's messages never carry the password; the URL is
            // never part of a message.
            eprintln!("error: {e}");
            1
        }
    }
}

/// What the demo adds to its config: a `[[sources.migrations]]` for the
/// bundled history in `history`; with a database (`url`), `upgrade` /
/// `downgrade` commands running `exe __migrate`, a `migration` step with
/// `round_trip = true` before the first traffic step, and every traffic
/// step requiring migrations at head. Without one, a directory-only source
/// and no step (nothing can be applied, and nothing pretends it was).
/// Errors when `config` lacks the demo plan's first traffic step.
pub fn add_to_config(
    config: &str,
    history: &Path,
    url: Option<&str>,
    exe: &Path,
) -> Result<String, String> {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let dir = history.display().to_string();
    let mut source = format!(
        "\n[[sources.migrations]]\nname = \"{SOURCE}\"\ntool = \"golang-migrate\"\ndirectory = {}\ninterval = \"2s\"\ntimeout = \"5s\"\n",
        q(&dir)
    );
    let Some(url) = url else {
        return Ok(format!("{config}{source}"));
    };
    let exe = exe.display().to_string();
    let argv = |rest: &[&str]| {
        let mut v = vec![q(&exe), q(SUBCOMMAND), q("--dir"), q(&dir)];
        v.extend(rest.iter().map(|s| q(s)));
        format!("[{}]", v.join(", "))
    };
    source.push_str(&format!(
        "database_url = {}\nupgrade = {}\ndowngrade = {}\nrun_timeout = \"60s\"\n",
        q(url),
        argv(&["up"]),
        argv(&["down", "1"])
    ));
    let traffic = "[[plans.canary.steps]]\nkind = \"traffic\"\n";
    let Some(at) = config.find(traffic) else {
        return Err("the demo plan has no traffic step".into());
    };
    let step = "[[plans.canary.steps]]\nkind = \"migration\"\nround_trip = true\n\n";
    let mut text = format!("{}{step}{}", &config[..at], &config[at..]);
    text = text.replace(traffic, &format!("{traffic}require_migrations = true\n"));
    text.push_str(&source);
    Ok(text)
}

/// The demo's migrations once set up: the history written, and the
/// database when one started.
#[derive(Debug)]
pub struct DemoMigrations {
    /// Where the history was written (`DIR/migrations`).
    pub history: PathBuf,
    /// The database, when PostgreSQL was found and started.
    pub db: Option<DemoDatabase>,
    /// The running `rolldeck` binary, which the step's commands call.
    pub exe: PathBuf,
    /// One line for the banner: what runs, or why no database does.
    pub note: String,
}

/// Writes the history into `dir/migrations` and, unless `no_postgres`,
/// starts a [`DemoDatabase`] when PostgreSQL is found. A database that
/// fails to start is not fatal: the demo goes on directory only and
/// [`DemoMigrations::note`] (and a warning) says why. Errors: the history
/// cannot be written.
pub async fn start(dir: &Path, no_postgres: bool) -> anyhow::Result<DemoMigrations> {
    let history = dir.join("migrations");
    write_history(&history).with_context(|| format!("writing {}", history.display()))?;
    let total = HISTORY.len() / 2;
    let without = |why: String| {
        format!(
            "migrations: {why}; the Migrations pane shows the bundled directory only (lint included), and the plan has no migration step"
        )
    };
    let exe = std::env::current_exe();
    let (db, note) = match (no_postgres, find_postgres(), &exe) {
        (true, _, _) => (None, without("--no-postgres".into())),
        (_, None, _) => (
            None,
            without(
                "no PostgreSQL found (initdb and postgres, /usr/lib/postgresql/*/bin or $PATH)"
                    .into(),
            ),
        ),
        (_, _, Err(e)) => (
            None,
            without(format!("cannot find the rolldeck binary ({e})")),
        ),
        (_, Some(bin), Ok(_)) => match DemoDatabase::start(&bin, &history).await {
            Ok(db) => (
                Some(db),
                format!(
                    "migrations: PostgreSQL ({}) at version {DEPLOYED_VERSION} of {total}; the plan's migration step applies the rest with a round trip",
                    bin.display()
                ),
            ),
            Err(e) => {
                tracing::warn!("the demo PostgreSQL did not start: {e:#}");
                let why = format!("{e:#}");
                let first = why.lines().next().unwrap_or_default();
                (None, without(format!("PostgreSQL did not start ({first})")))
            }
        },
    };
    Ok(DemoMigrations {
        history,
        db,
        exe: exe.unwrap_or_default(),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::Severity;

    #[test]
    fn the_history_lints_as_the_story_says() {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path()).unwrap();
        let d = disk::read(Tool::GolangMigrate, dir.path()).unwrap();
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        let found: Vec<(String, String, Severity, Option<u32>)> = d
            .migrations
            .iter()
            .flat_map(|m| {
                m.findings
                    .iter()
                    .map(|f| (m.revision.clone(), f.rule.clone(), f.severity, f.line))
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "4".into(),
                    "index-not-concurrent".into(),
                    Severity::Warning,
                    Some(3)
                ),
                ("5".into(), "drop-column".into(), Severity::Error, Some(3)),
            ]
        );
        assert_eq!(d.migrations.len(), 5);
        assert!((DEPLOYED_VERSION as usize) < d.migrations.len());
    }

    #[test]
    fn arguments() {
        let a = |s: &[&str]| parse_args(&s.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(
            a(&["--dir", "d", "up"]).unwrap(),
            (PathBuf::from("d"), None, Direction::Up(None))
        );
        assert_eq!(
            a(&["up", "2", "--dir", "d", "--table", "t"]).unwrap(),
            (PathBuf::from("d"), Some("t".into()), Direction::Up(Some(2)))
        );
        assert_eq!(
            a(&["--dir", "d", "down", "1"]).unwrap().2,
            Direction::Down(1)
        );
        assert_eq!(a(&["--dir", "d", "version"]).unwrap().2, Direction::Version);
        assert!(a(&["--dir", "d", "down"]).is_err());
        assert!(a(&["--dir", "d", "down", "0"]).is_err());
        assert!(a(&["--dir", "d", "sideways"]).is_err());
        assert!(a(&["up"]).is_err());
    }

    #[test]
    fn the_config_gets_a_round_trip_step_before_traffic() {
        let base = "[[plans.canary.steps]]\nkind = \"action\"\naction = \"preflight\"\n\n[[plans.canary.steps]]\nkind = \"traffic\"\nweight = 5\n\n[[plans.canary.steps]]\nkind = \"traffic\"\nweight = 25\n";
        let t = add_to_config(
            base,
            Path::new("/h"),
            Some("postgresql://u:p@h/db"),
            Path::new("/bin/rd"),
        )
        .unwrap();
        let step = t.find("kind = \"migration\"\nround_trip = true").unwrap();
        assert!(step < t.find("weight = 5").unwrap(), "{t}");
        assert_eq!(t.matches("require_migrations = true").count(), 2, "{t}");
        assert!(
            t.contains(r#"upgrade = ["/bin/rd", "__migrate", "--dir", "/h", "up"]"#),
            "{t}"
        );
        assert!(t.contains(r#"downgrade = ["/bin/rd", "__migrate", "--dir", "/h", "down", "1"]"#));
        // Without a database: the directory only, no step.
        let t = add_to_config(base, Path::new("/h"), None, Path::new("/bin/rd")).unwrap();
        assert!(
            !t.contains("migration\"") && !t.contains("database_url"),
            "{t}"
        );
        assert!(t.contains("[[sources.migrations]]"));
        assert!(add_to_config("", Path::new("/h"), Some("u"), Path::new("/x")).is_err());
    }
}
