//! What the cockpit tests share: the fixture clock, plan steps, and drawing
//! the whole screen into ratatui's `TestBackend` as text.

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rolldeck::config::OnFailure;
use rolldeck::release::plan::{Step, StepAction};
use rolldeck::tui::app::App;

/// The fixture clock: `s` seconds after 2030-03-17 (a fixed instant).
pub fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_900_000_000 + s).unwrap()
}

/// A plan step that rolls back on failure.
pub fn step(name: &str, action: StepAction) -> Step {
    Step {
        name: name.into(),
        action,
        on_failure: OnFailure::Rollback,
        idempotent: true,
    }
}

/// A traffic step to `w` percent through the `traffic` action.
pub fn traffic(w: u8) -> Step {
    step(
        &format!("traffic {w}%"),
        StepAction::Traffic {
            action: "traffic".into(),
            weight: w,
        },
    )
}

/// The whole screen drawn at `w`x`h`.
pub fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| rolldeck::tui::ui::draw(f, app)).unwrap();
    term
}

/// The screen's text, one line per row; the no-break space between a
/// number and its unit reads as a space.
pub fn screen_text(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(&buf[(x, y)].symbol().replace('\u{a0}', " "));
        }
        out.push('\n');
    }
    out
}
