//! The Migrations pane drawn into ratatui's `TestBackend`: current → head,
//! pending migrations with their findings, dirty/failed and a source down
//! in the danger colour, multiple heads warned, secrets redacted.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rolldeck::migrations::{Finding, Pending, Severity, Status, Tool};
use rolldeck::redact::Redactor;
use rolldeck::tui::app::{App, Msg, Role};
use rolldeck::tui::keymap::Keymap;
use rolldeck::tui::theme::Theme;

fn app(secret: &str) -> App {
    let mut app = App::new(
        "api".into(),
        "staging".into(),
        false,
        Role::Driver,
        Keymap::default_map(),
        Theme::builtin("dark").unwrap(),
        Default::default(),
        Redactor::new([secret.to_string()]),
        "alice@bastion".into(),
        Timestamp::from_second(1_900_000_000).unwrap(),
    );
    app.migrations_configured = true;
    app
}

fn render(app: &App) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| rolldeck::tui::ui::draw(f, app)).unwrap();
    term
}

fn rows(term: &Terminal<TestBackend>) -> Vec<String> {
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// The foreground colour at the first cell of `needle`.
fn fg_at(term: &Terminal<TestBackend>, needle: &str) -> ratatui::style::Color {
    let rows = rows(term);
    let (y, row) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not on screen:\n{}", rows.join("\n")));
    let x = row[..row.find(needle).unwrap()].chars().count();
    term.backend().buffer()[(x as u16, y as u16)].fg
}

fn finding(severity: Severity, rule: &str, line: u32) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        line: Some(line),
        message: format!("{rule} here"),
    }
}

/// Opens the Migrations pane's tab (key `3`) at 80x24.
fn focus_migrations(app: &mut App) {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('3'),
        KeyModifiers::NONE,
    )));
}

#[test]
fn migrations_pane_shows_state_findings_and_danger() {
    let mut app = app("hunter2");
    focus_migrations(&mut app);
    let text = rows(&render(&app)).join("\n");
    assert!(text.contains("reading migration sources"), "{text}");

    let mut dirty = Status::new("app", Tool::Alembic);
    dirty.current = vec!["3c4d".into()];
    dirty.heads = vec!["5e6f".into(), "9a9a".into()];
    dirty.warnings =
        vec!["multiple heads: 5e6f, 9a9a (merge them, e.g. `alembic merge heads`)".into()];
    dirty.dirty = true;
    dirty.failed = vec!["4d5e".into()];
    dirty.pending = vec![
        Pending {
            revision: "4d5e".into(),
            file: "/srv/alembic/versions/4d5e_drop_email.py".into(),
            findings: vec![finding(Severity::Error, "drop-column", 15)],
        },
        Pending {
            revision: "5e6f".into(),
            file: "/srv/alembic/versions/5e6f_audit.py".into(),
            findings: vec![finding(Severity::Warning, "empty-downgrade", 18)],
        },
    ];
    let mut down = Status::new("billing", Tool::GolangMigrate);
    down.ok = false;
    down.error = Some("cannot connect: password hunter2 rejected".into());
    let mut clean = Status::new("search", Tool::Flyway);
    clean.current = vec!["2".into()];
    clean.heads = vec!["2".into()];
    clean.applied_destructive = vec![Pending {
        revision: "2".into(),
        file: "/srv/sql/V2__drop_legacy.sql".into(),
        findings: vec![finding(Severity::Error, "drop-column", 4)],
    }];
    app.update(Msg::Migrations(vec![dirty, down, clean]));
    let term = render(&app);
    let text = rows(&term).join("\n");
    let theme = Theme::builtin("dark").unwrap();
    let crit = theme.crit.fg.unwrap();
    let warn = theme.warn.fg.unwrap();
    assert!(
        text.contains("app (alembic) 3c4d → 5e6f, 9a9a  2 pending"),
        "{text}"
    );
    assert_eq!(
        fg_at(&term, "✗ app"),
        crit,
        "dirty source in the danger colour"
    );
    assert_eq!(fg_at(&term, "DIRTY"), crit);
    assert_eq!(fg_at(&term, "⚠ multiple heads"), warn);
    assert!(text.contains("4d5e_drop_email.py"), "{text}");
    assert_eq!(fg_at(&term, "✗ error drop-column:15"), crit);
    assert_eq!(fg_at(&term, "! warn empty-downgrade:18"), warn);
    assert_eq!(fg_at(&term, "DOWN: cannot connect"), crit);
    assert!(!text.contains("hunter2"), "secret on screen:\n{text}");
    assert_eq!(fg_at(&term, "✓ search"), theme.ok.fg.unwrap());
    assert!(text.contains("1 destructive"), "{text}");
    // Applied destructive migrations stay in view: a rollback does not undo them.
    assert!(text.contains("applied 2 V2__drop_legacy.sql"), "{text}");
    assert_eq!(fg_at(&term, "✗ drop-column:4 — a rollback"), crit);
}

#[test]
fn a_directory_only_source_lists_its_files_and_claims_no_state() {
    let mut app = app("hunter2");
    focus_migrations(&mut app);
    let mut s = Status::new("checkout-db", Tool::GolangMigrate);
    s.directory_only = true;
    s.heads = vec!["5".into()];
    s.pending = vec![Pending {
        revision: "5".into(),
        file: "/tmp/d/5_drop_orders_legacy_note.up.sql".into(),
        findings: vec![finding(Severity::Error, "drop-column", 3)],
    }];
    app.update(Msg::Migrations(vec![s]));
    let term = render(&app);
    let text = rows(&term).join("\n");
    let theme = Theme::builtin("dark").unwrap();
    assert!(
        text.contains("? checkout-db (golang-migrate) (none) → 5  applied state unknown"),
        "{text}"
    );
    assert_eq!(fg_at(&term, "? checkout-db"), theme.warn.fg.unwrap());
    assert!(
        text.contains("directory only: no database is read"),
        "{text}"
    );
    assert!(
        !text.contains("at head") && !text.contains("DOWN"),
        "{text}"
    );
    assert_eq!(
        fg_at(&term, "✗ error drop-column:3"),
        theme.crit.fg.unwrap()
    );
}
