//! The Runbook pane (pane 5): a runbook opened with `:runbook NAME` (Tab
//! completes it), its blocks run with `Enter` through the real executor
//! (output under the block and in the Logs pane, states ok / failed with
//! the exit code), a `confirm` block through the confirmation popup,
//! checks ticked with `Space`, `n`/`p` between steps; progress survives a
//! new cockpit; observers run nothing. Snapshots at 160x48 and 80x24.

#[allow(dead_code)]
mod screen;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rolldeck::redact::Redactor;
use rolldeck::tui::app::{App, Msg, Out, Pane, Popup, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::runbook::RunbookCtx;
use rolldeck::tui::theme::Theme;
use screen::{render, screen_text, t};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const RUNBOOK: &str = r#"# Checkout 5xx

Follow this when checkout answers 5xx.

## Diagnose

```sh {"name":"say-hello","timeout":"10s"}
echo "hello from $GREETING"
echo second line
```

```sh {"name":"fails","timeout":"10s"}
echo about to fail >&2
exit 3
```

```text
not run: only shown
```

## Act

```sh {"name":"careful","confirm":"true","timeout":"10s"}
echo careful step done
```

- [ ] Told the on-call lead
- [ ] Opened the status page
"#;

struct World {
    _dir: tempfile::TempDir,
    cfg: Arc<rolldeck::config::Config>,
    paths: rolldeck::runtime::StatePaths,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("runbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(books.join("checkout-5xx.md"), RUNBOOK).unwrap();
    std::fs::write(books.join("db-pool.md"), "# DB pool\n").unwrap();
    let cfg_path = dir.path().join("rolldeck.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"service = "checkout"
state_dir = "{state}"
[environment]
name = "staging"
[runbooks]
dirs = ["runbooks"]
vars = {{ GREETING = "the runbook" }}
[[sources.health]]
name = "canary"
url = "http://127.0.0.1:1/health"
[actions.traffic]
argv = ["true"]
[[plans.canary.steps]]
kind = "traffic"
weight = 100
[[rollback]]
kind = "traffic"
weight = 0
"#,
            state = dir.path().join("state").display()
        ),
    )
    .unwrap();
    let cfg = rolldeck::config::load(&cfg_path).unwrap_or_else(|e| panic!("{e}"));
    let paths = rolldeck::runtime::StatePaths::resolve(&cfg, None).unwrap();
    World {
        _dir: dir,
        cfg: Arc::new(cfg),
        paths,
    }
}

fn app(w: &World, role: Role) -> (App, RunbookCtx) {
    let mut app = App::new(
        "checkout".into(),
        "staging".into(),
        false,
        role.clone(),
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        BTreeMap::new(),
        Redactor::default(),
        "alice@bastion".into(),
        t(0),
    );
    app.time_zone = jiff::tz::TimeZone::UTC;
    let writes = !matches!(role, Role::ReadOnly);
    app.desk.writes = writes;
    app.desk.runbooks = rolldeck::runbook::discover(&w.cfg.runbooks.dirs).unwrap();
    app.desk.runbook_vars = w.cfg.runbooks.vars.clone();
    let executor = writes.then(|| {
        rolldeck::exec::Executor::new(
            rolldeck::exec::AuditLog::open(&w.paths.audit).unwrap(),
            rolldeck::exec::Operator::current(),
            Redactor::default(),
        )
    });
    let ctx = RunbookCtx {
        executor,
        prometheus: Err("no [sources.prometheus] configured".into()),
        paths: w.paths.clone(),
        cfg: w.cfg.clone(),
        read_only: !matches!(role, Role::Driver | Role::Idle),
    };
    (app, ctx)
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Feeds a key, then does the jobs it asks for (as the event loop does)
/// until the cockpit asks for nothing more.
async fn press(app: &mut App, ctx: &RunbookCtx, code: KeyCode) -> Vec<Out> {
    let outs = app.update(key(code));
    settle(app, ctx, outs).await
}

async fn settle(app: &mut App, ctx: &RunbookCtx, mut outs: Vec<Out>) -> Vec<Out> {
    let (tx, mut rx) = mpsc::channel(256);
    let mut other = Vec::new();
    let mut pending = 0;
    loop {
        for o in outs.drain(..) {
            match o {
                Out::Runbook(job) => {
                    ctx.perform(job, tx.clone());
                    pending += 1;
                }
                o => other.push(o),
            }
        }
        if pending == 0 {
            return other;
        }
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a runbook job answered")
            .expect("channel open");
        // One answer per job; output lines come before it.
        if let Msg::Runbook(
            rolldeck::tui::runbook::RunbookMsg::Opened(_)
            | rolldeck::tui::runbook::RunbookMsg::Done { .. }
            | rolldeck::tui::runbook::RunbookMsg::Progress(_),
        ) = &m
        {
            pending -= 1;
        }
        outs = app.update(m);
    }
}

async fn type_command(app: &mut App, ctx: &RunbookCtx, line: &str) -> Vec<Out> {
    app.update(key(KeyCode::Char(':')));
    for c in line.chars() {
        app.update(key(KeyCode::Char(c)));
    }
    press(app, ctx, KeyCode::Enter).await
}

fn pane(app: &App, w: u16, h: u16) -> String {
    screen_text(&render(app, w, h))
}

fn open(app: &App) -> &rolldeck::tui::runbook::OpenRunbook {
    app.desk.runbook.as_ref().expect("a runbook is open")
}

fn state(app: &App, block: &str) -> String {
    let o = open(app);
    let i = o.book.blocks.iter().position(|b| b.name == block).unwrap();
    o.state(i).label()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_run_confirm_tick_and_reopen_where_it_was() {
    let w = world();
    let (mut app, ctx) = app(&w, Role::Driver);
    // Tab completes the runbook's name.
    app.update(key(KeyCode::Char(':')));
    for c in "runbook che".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Tab));
    assert_eq!(
        app.popup,
        Some(Popup::Command("runbook checkout-5xx".into()))
    );
    press(&mut app, &ctx, KeyCode::Enter).await;
    assert_eq!(app.focus, Pane::Runbook);
    assert_eq!(open(&app).name, "checkout-5xx");
    let text = pane(&app, 160, 48);
    assert!(text.contains("# Diagnose"), "{text}");
    assert!(text.contains("say-hello [sh] ○ not run"), "{text}");
    assert!(text.contains("[ ] Told the on-call lead"), "{text}");

    // Enter runs the focused block: its output under it and in the logs.
    press(&mut app, &ctx, KeyCode::Enter).await;
    assert_eq!(state(&app, "say-hello"), "ok");
    let text = pane(&app, 160, 48);
    assert!(text.contains("│ hello from the runbook"), "{text}");
    assert!(text.contains("say-hello [sh] ✓ ok"), "{text}");
    assert!(
        app.logs_mut()
            .visible(1000)
            .iter()
            .any(|l| l.text.contains("hello from the runbook")),
        "output in the Logs pane"
    );

    // n: the next step; a failing block shows its exit code.
    press(&mut app, &ctx, KeyCode::Char('n')).await;
    press(&mut app, &ctx, KeyCode::Enter).await;
    assert_eq!(state(&app, "fails"), "failed (exit 3)");
    assert!(pane(&app, 160, 48).contains("fails [sh] ✗ failed (exit 3)"));

    // The text block is shown, not a step; n goes to the confirm block,
    // which asks first; Esc cancels, Enter (after a second ask) runs it.
    press(&mut app, &ctx, KeyCode::Char('n')).await;
    press(&mut app, &ctx, KeyCode::Enter).await;
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("a confirmation: {:?}", app.popup)
    };
    assert!(
        c.will_run.iter().any(|l| l.contains("careful step done")),
        "{c:?}"
    );
    press(&mut app, &ctx, KeyCode::Esc).await;
    assert_eq!(state(&app, "careful"), "not run");
    press(&mut app, &ctx, KeyCode::Enter).await;
    press(&mut app, &ctx, KeyCode::Enter).await;
    assert_eq!(state(&app, "careful"), "ok");

    // Space ticks the next check; p goes back a step.
    press(&mut app, &ctx, KeyCode::Char('n')).await;
    press(&mut app, &ctx, KeyCode::Char(' ')).await;
    assert!(pane(&app, 160, 48).contains("[x] Told the on-call lead"));
    press(&mut app, &ctx, KeyCode::Char('p')).await;
    assert!(matches!(
        open(&app).focused(),
        Some(rolldeck::tui::runbook::Step::Block(_))
    ));

    insta::assert_snapshot!("runbook_open_160x48", pane(&app, 160, 48));
    insta::assert_snapshot!("runbook_open_80x24", pane(&app, 80, 24));

    // A new cockpit: the runbook is where it was.
    let (mut again, ctx2) = self::app(&w, Role::Driver);
    type_command(&mut again, &ctx2, "runbook checkout-5xx").await;
    assert_eq!(state(&again, "say-hello"), "ok");
    assert_eq!(state(&again, "fails"), "failed (exit 3)");
    assert_eq!(state(&again, "careful"), "ok");
    let text = pane(&again, 160, 48);
    assert!(text.contains("[x] Told the on-call lead"), "{text}");
    assert!(text.contains("3/5 steps done"), "{text}");
    // Esc closes it; the pane lists the runbooks again.
    press(&mut again, &ctx2, KeyCode::Esc).await;
    assert!(again.desk.runbook.is_none());
    assert!(pane(&again, 160, 48).contains("checkout-5xx, db-pool"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_and_read_only_see_runbooks_but_run_nothing() {
    let w = world();
    for role in [Role::Observer(None), Role::ReadOnly] {
        let (mut app, ctx) = app(&w, role.clone());
        type_command(&mut app, &ctx, "runbook checkout-5xx").await;
        assert!(pane(&app, 160, 48).contains("say-hello [sh]"), "{role:?}");
        press(&mut app, &ctx, KeyCode::Enter).await;
        assert!(
            app.flash.as_deref().unwrap_or("").contains("refused"),
            "{role:?}: {:?}",
            app.flash
        );
        assert_eq!(state(&app, "say-hello"), "not run", "{role:?}");
        // Checks neither.
        for _ in 0..4 {
            press(&mut app, &ctx, KeyCode::Char('n')).await;
        }
        press(&mut app, &ctx, KeyCode::Char(' ')).await;
        assert!(pane(&app, 160, 48).contains("[ ] Told the on-call lead"));
    }
    assert!(
        !Path::new(&w.paths.audit).exists()
            || rolldeck::exec::AuditLog::read_all(&w.paths.audit)
                .unwrap()
                .is_empty(),
        "nothing ran"
    );
}

/// End to end in a real terminal (tmux) with the built binary: `:runbook`
/// opens the runbook, `Enter` runs its first block, and the block's state
/// and output show under it (and in the Logs pane); at 80x24 the pane
/// still reads.
#[test]
fn tmux_open_a_runbook_and_run_a_block() {
    use std::process::Command;
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("ROLLDECK_TEST_REQUIRE")
                .is_ok_and(|v| v.split(',').any(|s| s.trim() == "tmux")),
            "tmux is required (ROLLDECK_TEST_REQUIRE) but not installed"
        );
        eprintln!("skipped tmux_open_a_runbook_and_run_a_block: tmux not installed");
        return;
    }
    let w = world();
    let cfg = w.cfg.source_path.clone().expect("loaded from a file");
    let socket = format!("rolldeck-runbook-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .unwrap()
    };
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .status();
        }
    }
    let _kill = Kill(socket.clone());
    let cmd = format!(
        "{} --config {}",
        env!("CARGO_BIN_EXE_rolldeck"),
        cfg.display()
    );
    assert!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            "rb",
            "-x",
            "160",
            "-y",
            "48",
            &cmd
        ])
        .status
        .success()
    );
    let screen =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "rb"]).stdout).into_owned();
    let wait = |what: &str, pred: &dyn Fn(&str) -> bool| {
        let start = std::time::Instant::now();
        loop {
            let s = screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never showed {what}; last screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("the cockpit", &|s| s.contains("5 Actions"));
    tmux(&["send-keys", "-t", "rb", ":runbook checkout-5xx", "Enter"]);
    wait("the runbook", &|s| s.contains("say-hello [sh] ○ not run"));
    tmux(&["send-keys", "-t", "rb", "Enter"]);
    let s = wait("the block's result", &|s| s.contains("say-hello [sh] ✓ ok"));
    assert!(s.contains("│ hello from the runbook"), "{s}");
    assert!(
        s.contains("say-hello hello from the runbook"),
        "in the Logs pane:\n{s}"
    );
    tmux(&["resize-window", "-t", "rb", "-x", "80", "-y", "24"]);
    wait("the pane at 80x24", &|s| {
        s.contains("runbook checkout-5xx") && s.contains("steps done")
    });
    tmux(&["send-keys", "-t", "rb", "q"]);
}
