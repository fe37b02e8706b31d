//! The Logs pane: ring buffer, sanitising, filters, follow/pause, save,
//! rendering and the tracing layer.

use std::sync::{Arc, Mutex};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use rolldeck::tui::logs::{
    InitTracingError, Level, LogBuffer, LogLine, LogSource, LogsView, MAX_LINE_CHARS, init_tracing,
    tracing_layer,
};
use tracing_subscriber::layer::SubscriberExt;

fn ts() -> jiff::Timestamp {
    "2024-05-01T12:34:56Z".parse().unwrap()
}

fn line(text: &str) -> LogLine {
    LogLine {
        ts: ts(),
        source: LogSource::Rolldeck,
        level: Level::Info,
        text: text.to_owned(),
    }
}

fn texts(lines: &[&LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

fn numbered(n: usize) -> LogBuffer {
    let mut b = LogBuffer::new(10_000);
    for i in 0..n {
        b.push(line(&format!("line {i}")));
    }
    b
}

fn range(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line {i}")).collect()
}

/// The buffer's rows as text, one string per row.
fn rows(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (area.top()..area.bottom())
        .map(|y| {
            (area.left()..area.right())
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn render(b: &LogBuffer, width: u16, height: u16) -> Buffer {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    LogsView::new(b).render(area, &mut buf);
    buf
}

#[test]
fn ring_buffer_is_bounded_and_counts_drops() {
    let mut b = LogBuffer::new(10_000);
    for i in 0..25_000 {
        b.push(line(&format!("line {i}")));
    }
    assert_eq!(b.len(), 10_000);
    assert_eq!(b.dropped(), 15_000);
    assert_eq!(b.matching(), 10_000);
    assert_eq!(b.total(), 25_000);
    b.top();
    assert_eq!(texts(&b.visible(1)), ["line 15000"]);
    b.bottom();
    assert_eq!(texts(&b.visible(1)), ["line 24999"]);
    assert_eq!(LogBuffer::default().len(), 0);
    assert!(LogBuffer::default().is_empty());
}

#[test]
fn control_sequences_are_stripped() {
    let mut b = LogBuffer::new(10);
    b.push(line("\x1b]0;pwned\x07\x1b[2Jhello"));
    b.push(LogLine {
        source: LogSource::Action("dep\x1b[31mloy".into()),
        ..line("\x1b[1mbold\x1b[0m\r")
    });
    let v = b.visible(10);
    assert_eq!(texts(&v), ["hello", "bold"]);
    assert_eq!(v[1].source, LogSource::Action("deploy".into()));
}

#[test]
fn newlines_split_lines_and_long_lines_are_capped() {
    let mut b = LogBuffer::new(10);
    b.push(LogLine {
        level: Level::Error,
        ..line("first\nsecond\r\n\nfourth\n")
    });
    let v = b.visible(10);
    assert_eq!(texts(&v), ["first", "second", "", "fourth"]);
    assert!(v.iter().all(|l| l.level == Level::Error && l.ts == ts()));

    b.push(line(&"x".repeat(5000)));
    let long = &b.visible(1)[0].text;
    assert_eq!(long.chars().count(), MAX_LINE_CHARS);
    assert!(long.ends_with('…'));
    b.push(line(""));
    assert_eq!(b.len(), 6);
}

#[test]
fn filter_substring_inverted_regex_and_errors() {
    let mut b = LogBuffer::new(100);
    for t in [
        "GET /api 200",
        "GET /api 503 upstream",
        "POST /login 500",
        "Timeout talking to db",
    ] {
        b.push(line(t));
    }
    assert_eq!(b.filter(), None);

    b.set_filter(Some("TIMEOUT")).unwrap();
    assert_eq!(b.filter(), Some("TIMEOUT"));
    assert_eq!(b.matching(), 1);
    assert_eq!(texts(&b.visible(10)), ["Timeout talking to db"]);

    b.set_filter(Some("!get")).unwrap();
    assert_eq!(
        texts(&b.visible(10)),
        ["POST /login 500", "Timeout talking to db"]
    );

    b.set_filter(Some(r"~5\d\d")).unwrap();
    assert_eq!(b.matching(), 2);
    assert_eq!(
        texts(&b.visible(10)),
        ["GET /api 503 upstream", "POST /login 500"]
    );

    // New lines are filtered as they arrive.
    b.push(line("PUT /x 502"));
    b.push(line("PUT /x 201"));
    assert_eq!(b.matching(), 3);
    assert_eq!(b.len(), 6);

    let err = b.set_filter(Some("~5(")).unwrap_err();
    assert_eq!(err, "invalid regex: unclosed group");
    assert_eq!(
        b.filter(),
        Some(r"~5\d\d"),
        "a bad filter keeps the old one"
    );

    b.set_filter(None).unwrap();
    assert_eq!(b.matching(), 6);
    b.set_filter(Some("   ")).unwrap();
    assert_eq!(b.filter(), None);
}

#[test]
fn follow_tails_and_pause_keeps_the_view() {
    let mut b = numbered(100);
    assert!(b.follow());
    assert_eq!(texts(&b.visible(10)), range(90, 100));

    b.scroll_up(5);
    assert!(!b.follow(), "scrolling up pauses");
    assert_eq!(texts(&b.visible(10)), range(85, 95));

    for i in 100..150 {
        b.push(line(&format!("line {i}")));
    }
    assert_eq!(
        texts(&b.visible(10)),
        range(85, 95),
        "pushing while paused does not move the view"
    );

    b.scroll_down(3);
    assert_eq!(texts(&b.visible(10)), range(88, 98));
    b.scroll_down(1_000);
    assert_eq!(texts(&b.visible(10)), range(140, 150), "clamped at the end");
    assert!(!b.follow(), "scrolling down does not resume following");

    b.top();
    assert_eq!(texts(&b.visible(3)), range(0, 3));
    b.scroll_up(4);
    assert_eq!(texts(&b.visible(3)), range(0, 3));

    b.bottom();
    assert!(b.follow());
    assert_eq!(texts(&b.visible(10)), range(140, 150));
    b.push(line("line 150"));
    assert_eq!(texts(&b.visible(2)), range(149, 151));

    b.toggle_follow();
    assert!(!b.follow());
    b.push(line("line 151"));
    assert_eq!(texts(&b.visible(2)), range(149, 151));
    b.toggle_follow();
    assert_eq!(texts(&b.visible(2)), range(150, 152));
}

#[test]
fn pause_scrolls_over_matching_lines_only() {
    let mut b = numbered(100);
    b.set_filter(Some("~0$")).unwrap(); // line 0, 10, …, 90
    assert_eq!(b.matching(), 10);
    assert_eq!(texts(&b.visible(3)), ["line 70", "line 80", "line 90"]);
    b.scroll_up(2);
    assert_eq!(texts(&b.visible(3)), ["line 50", "line 60", "line 70"]);
    b.set_filter(None).unwrap();
    assert!(!b.follow());
    assert_eq!(texts(&b.visible(3)), range(50, 53));
}

#[test]
fn paused_view_survives_eviction_until_its_line_goes() {
    let mut b = LogBuffer::new(20);
    for i in 0..20 {
        b.push(line(&format!("line {i}")));
    }
    b.visible(5);
    b.scroll_up(5); // top = line 10
    assert_eq!(texts(&b.visible(5)), range(10, 15));
    for i in 20..30 {
        b.push(line(&format!("line {i}")));
    }
    assert_eq!(texts(&b.visible(5)), range(10, 15));
    b.push(line("line 30"));
    assert_eq!(
        texts(&b.visible(5)),
        range(11, 16),
        "oldest shown line evicted"
    );
}

#[test]
fn toggles() {
    let mut b = LogBuffer::new(10);
    assert!(!b.wrap());
    assert!(b.timestamps());
    b.toggle_wrap();
    b.toggle_timestamps();
    assert!(b.wrap());
    assert!(!b.timestamps());
}

#[test]
fn save_writes_only_matching_lines() {
    let mut b = LogBuffer::new(100);
    b.push(line("request ok"));
    b.push(LogLine {
        source: LogSource::Action("rollback".into()),
        level: Level::Error,
        ..line("request failed: 503")
    });
    b.push(line("idle"));
    b.set_filter(Some("request")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.txt");
    assert_eq!(b.save(&path).unwrap(), 2);
    let got = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got,
        "2024-05-01T12:34:56.000Z INFO  rolldeck request ok\n\
         2024-05-01T12:34:56.000Z ERROR action:rollback request failed: 503\n"
    );
    for l in got.lines() {
        let stamp = l.split(' ').next().unwrap();
        assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    }

    assert!(b.save(&dir.path().join("missing/dir/x")).is_err());
}

fn mixed() -> LogBuffer {
    let mut b = numbered(30);
    b.push(LogLine {
        source: LogSource::Action("a-very-long-action-name-indeed".into()),
        level: Level::Warn,
        ..line(&format!("wide 日本語 text\tand tabs {}", "y".repeat(300)))
    });
    b.push(LogLine {
        source: LogSource::Container("c".into()),
        level: Level::Debug,
        ..line("")
    });
    b
}

#[test]
fn render_never_panics() {
    let b = mixed();
    for (w, h) in [(80, 10), (0, 0), (5, 1), (80, 24), (1, 1), (2, 2), (3, 3)] {
        render(&b, w, h);
    }
    let empty = LogBuffer::new(10);
    for wrap in [false, true] {
        for paused in [false, true] {
            for filter in [None, Some("line"), Some("nothing matches")] {
                let mut b = mixed();
                if wrap {
                    b.toggle_wrap();
                }
                if paused {
                    b.scroll_up(3);
                }
                b.set_filter(filter).unwrap();
                for w in 0..=14 {
                    for h in 0..=6 {
                        render(&b, w, h);
                        render(&empty, w, h);
                    }
                }
            }
        }
    }
    // An area larger than (or outside) the buffer is clipped, not a panic.
    let mut small = Buffer::empty(Rect::new(0, 0, 10, 4));
    LogsView::new(&b).render(Rect::new(5, 2, 40, 40), &mut small);
    LogsView::new(&b).render(Rect::new(50, 50, 4, 4), &mut small);
}

#[test]
fn render_shows_state_and_lines() {
    let mut b = numbered(3);
    b.push(LogLine {
        source: LogSource::Action("deploy".into()),
        level: Level::Error,
        ..line("exit status 1")
    });
    let text = rows(&render(&b, 60, 8)).join("\n");
    assert!(text.contains("12:34:56 rolldeck line 0"), "{text}");
    assert!(
        text.contains("12:34:56 deploy   ERROR exit status 1"),
        "{text}"
    );
    // The zone is named once, in the title (a view without one shows UTC).
    assert!(
        text.contains(" Logs  [follow] [times UTC]  4 lines "),
        "{text}"
    );

    b.scroll_up(1);
    b.set_filter(Some("line")).unwrap();
    let text = rows(&render(&b, 60, 8)).join("\n");
    assert!(
        text.contains("[paused] [times UTC] filter: line  3/4 lines"),
        "{text}"
    );
}

#[test]
fn render_snapshot_80x10() {
    let mut b = LogBuffer::new(5);
    b.toggle_timestamps();
    b.push(line("release payments-api v2.4.1: canary 10%"));
    b.push(LogLine {
        source: LogSource::Action("smoke-test".into()),
        ..line("GET /healthz 200 in 12ms")
    });
    b.push(LogLine {
        source: LogSource::Action("smoke-test".into()),
        level: Level::Warn,
        ..line("GET /checkout 503 in 2301ms (retrying)")
    });
    b.push(LogLine {
        level: Level::Error,
        ..line("canary analysis failed: error rate 4.2% > 1% for 3 intervals")
    });
    b.push(line(&format!(
        "rolling back: {}",
        "a long line that does not fit in eighty columns and is cut with an ellipsis"
    )));
    b.push(LogLine {
        level: Level::Debug,
        ..line("rollback step 1/3 done")
    });
    b.push(line("tab\tseparated"));
    assert_eq!(b.dropped(), 2);

    let plain = rows(&render(&b, 80, 10)).join("\n");
    b.toggle_wrap();
    b.scroll_up(1);
    let wrapped = rows(&render(&b, 80, 10)).join("\n");
    insta::assert_snapshot!("logs_80x10", format!("{plain}\n\n{wrapped}"));
}

#[test]
fn tracing_layer_forwards_rolldeck_events() {
    let buf = Arc::new(Mutex::new(LogBuffer::new(100)));
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let subscriber = tracing_subscriber::registry().with(tracing_layer(buf.clone(), Some(tx)));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "rolldeck::engine", step = 2, service = "api", "promoting canary");
        tracing::error!(target: "rolldeck", "boom\x1b[2J");
        tracing::debug!(target: "rolldeck::x", "details");
        tracing::trace!(target: "rolldeck::x", "too fine");
        tracing::info!(target: "hyper::client", "not ours");

        // While the UI holds the lock, events are queued, not lost.
        let mut guard = buf.lock().unwrap();
        tracing::warn!(target: "rolldeck::engine", "during render");
        assert_eq!(guard.len(), 3);
        assert_eq!(guard.drain_pending(), 1);
        drop(guard);
        tracing::warn!(target: "rolldeck::engine", "after");
    });
    assert_eq!(*rx.borrow(), 5);

    let b = buf.lock().unwrap();
    let v = b.visible(10);
    assert_eq!(
        texts(&v),
        [
            "promoting canary step=2 service=api",
            "boom",
            "details",
            "during render",
            "after"
        ]
    );
    let levels: Vec<Level> = v.iter().map(|l| l.level).collect();
    assert_eq!(
        levels,
        [
            Level::Info,
            Level::Error,
            Level::Debug,
            Level::Warn,
            Level::Warn
        ]
    );
    assert!(v.iter().all(|l| l.source == LogSource::Rolldeck));
    assert_eq!(b.dropped(), 0);
}

#[test]
fn init_tracing_refuses_a_second_subscriber() {
    let buf = Arc::new(Mutex::new(LogBuffer::new(100)));
    init_tracing(buf.clone(), None).expect("first install");
    tracing::info!(target: "rolldeck::test", "hello from the global subscriber");
    assert_eq!(
        texts(&buf.lock().unwrap().visible(5)),
        ["hello from the global subscriber"]
    );
    let err = init_tracing(buf, None).unwrap_err();
    assert!(matches!(err, InitTracingError::AlreadySet), "{err}");
    // No tui-logger mover thread (it wakes every 10 ms: 100 wake-ups a
    // second in an idle cockpit); the cockpit moves events before a frame.
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        // A test thread may end while we look: skip what is gone.
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(
        !threads.iter().any(|n| n.starts_with("tui-logger")),
        "{threads:?}"
    );
}
