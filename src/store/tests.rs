//! The journal on disk: round trips of every event (NaN, ±Inf, any UTF-8),
//! torn tails at any byte, corruption with line numbers, versions, one file
//! per release, the follower, and redaction before serialization.

use super::file::{self, JournalFile};
use super::*;
use crate::config::OnFailure;
use crate::redact::{MASK, Redactor, forms_of};
use crate::release::analysis::{CheckDef, Measurement, Reading};
use crate::release::engine::{Command, Issued};
use crate::release::journal::{VERSION, decode, encode};
use crate::release::plan::{Plan, Step, StepAction, Trigger};
use jiff::Timestamp;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_900_000_000 + secs).unwrap()
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        any::<f64>(),
    ]
}

fn any_opt_f64() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(any_f64())
}

fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "\\PC{0,40}",
        ".{0,300}"
    ]
    .boxed()
}

fn any_reading() -> impl Strategy<Value = Result<Reading, String>> {
    prop_oneof![
        (any_f64(), any_opt_f64()).prop_map(|(value, requests)| Ok(Reading { value, requests })),
        any_text().prop_map(Err),
    ]
}

fn plan(checks: Vec<CheckDef>, text: String) -> Plan {
    Plan {
        name: text.clone(),
        steps: vec![
            Step {
                name: format!("traffic {text}"),
                action: StepAction::Traffic {
                    action: "traffic".into(),
                    weight: 5,
                },
                on_failure: OnFailure::Rollback,
                idempotent: true,
            },
            Step {
                name: "analysis".into(),
                action: StepAction::Analysis {
                    checks: checks.iter().map(|c| c.name.clone()).collect(),
                    duration: Duration::from_secs(60),
                },
                on_failure: OnFailure::Rollback,
                idempotent: true,
            },
            Step {
                name: "approval".into(),
                action: StepAction::Approval { message: text },
                on_failure: OnFailure::Pause,
                idempotent: true,
            },
        ],
        rollback: vec![],
        triggers: checks
            .iter()
            .map(|c| Trigger::Check {
                name: c.name.clone(),
                check: c.name.clone(),
            })
            .collect(),
        checks: checks.into_iter().map(|c| (c.name.clone(), c)).collect(),
        health_intervals: BTreeMap::from([("canary".to_string(), Duration::from_secs(5))]),
        windows: BTreeMap::new(),
    }
}

fn any_check() -> BoxedStrategy<CheckDef> {
    (
        any_text(),
        (any_opt_f64(), any_opt_f64(), any_opt_f64()),
        (any_opt_f64(), any_opt_f64(), any_opt_f64()),
    )
        .prop_map(
            |(name, (max, min, max_increase), (max_ratio, min_requests, min_baseline))| CheckDef {
                name,
                max,
                min,
                max_increase,
                max_ratio,
                min_baseline,
                unit: None,
                interval: Duration::from_secs(10),
                for_: Duration::from_secs(20),
                min_samples: 1,
                min_requests,
                inconclusive_limit: 3,
            },
        )
        .boxed()
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Approve),
        Just(Command::Pause),
        Just(Command::Resume),
        Just(Command::Promote),
        Just(Command::PromoteFull),
        Just(Command::Retry),
        Just(Command::Rollback),
        Just(Command::Abort),
        any::<u8>().prop_map(|weight| Command::SetWeight { weight }),
    ]
}

fn any_event() -> BoxedStrategy<Event> {
    prop_oneof![
        (
            any_text(),
            any_text(),
            any_text(),
            prop::option::of(any_text()),
            prop::collection::vec(any_check(), 0..3),
            any_text()
        )
            .prop_map(
                |(id, service, environment, version, checks, text)| Event::Start {
                    id,
                    service,
                    environment,
                    version,
                    plan: Box::new(plan(checks, text)),
                }
            ),
        Just(Event::Tick),
        Just(Event::Resumed),
        (any::<u64>(), any::<bool>(), any_text(), any::<bool>()).prop_map(
            |(run, ok, detail, unaudited)| Event::ActionFinished {
                run,
                ok,
                detail,
                unaudited
            }
        ),
        (
            any_text(),
            any_text(),
            any_reading(),
            any_reading(),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(check, query, canary, baseline, epoch)| Event::Measured {
                measurement: Measurement {
                    check,
                    query,
                    canary,
                    baseline,
                },
                epoch,
            }),
        (
            any_text(),
            any::<bool>(),
            any_text(),
            prop::sample::select(vec![
                crate::release::ProbeKind::Plain,
                crate::release::ProbeKind::Starting,
                crate::release::ProbeKind::Stopped
            ])
        )
            .prop_map(|(target, ok, detail, kind)| Event::Probed {
                target,
                ok,
                detail,
                kind
            }),
        (any_command(), any_text(), prop::option::of(any_text())).prop_map(
            |(command, operator, reason)| Event::Command(Issued {
                command,
                operator,
                reason,
            })
        ),
    ]
    .boxed()
}

fn rec(i: i64, release: &str, event: Event) -> Record {
    Record {
        ts: t(i),
        release: release.into(),
        event,
    }
}

/// Two records are the same when they encode the same (NaN ≠ NaN in Rust).
fn same(a: &Record, b: &Record) -> bool {
    encode(a, &Redactor::default()) == encode(b, &Redactor::default())
}

fn start(id: &str, service: &str) -> Event {
    Event::Start {
        id: id.into(),
        service: service.into(),
        environment: "staging".into(),
        version: Some("1.0".into()),
        plan: Box::new(plan(vec![], "p".into())),
    }
}

fn measured(v: f64) -> Event {
    Event::Measured {
        epoch: Some(1),
        measurement: Measurement {
            check: "error-rate".into(),
            query: "q".into(),
            canary: Ok(Reading {
                value: v,
                requests: Some(0.0),
            }),
            baseline: Ok(Reading {
                value: f64::NAN,
                requests: Some(f64::INFINITY),
            }),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every event, with NaN, ±Inf, huge and empty values and any UTF-8,
    /// comes back from the journal file as it went in.
    #[test]
    fn every_event_round_trips_through_the_journal(events in prop::collection::vec(any_event(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (mut f, _) = JournalFile::open(&path).unwrap();
        let recs: Vec<Record> = events.into_iter().enumerate().map(|(i, e)| rec(i as i64, "r-1", e)).collect();
        for r in &recs {
            f.append_line(&encode(r, &Redactor::default())).unwrap();
        }
        let back = file::read(&path).unwrap();
        prop_assert_eq!(back.len(), recs.len());
        for (a, b) in recs.iter().zip(&back) {
            prop_assert!(same(a, b), "{:?}\n{:?}", a, b);
            // Non-finite values are explicit, finite ones exact.
            if let (Event::Measured { measurement: x, .. }, Event::Measured { measurement: y, .. }) = (&a.event, &b.event)
                && let (Ok(x), Ok(y)) = (&x.canary, &y.canary)
            {
                prop_assert!(x.value.to_bits() == y.value.to_bits() || (x.value.is_nan() && y.value.is_nan()));
            }
        }
    }

    /// A journal cut at any byte loads every complete record, accepts the
    /// next append (the torn bytes kept aside), and then loads them all.
    #[test]
    fn a_journal_cut_at_any_byte_loads_and_accepts_the_next_append(
        events in prop::collection::vec(any_event(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let recs: Vec<Record> = events.into_iter().enumerate().map(|(i, e)| rec(i as i64, "r-1", e)).collect();
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for r in &recs {
            bytes.extend_from_slice(encode(r, &Redactor::default()).as_bytes());
            bytes.push(b'\n');
            ends.push(bytes.len());
        }
        let cut = cut.index(bytes.len() + 1);
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        let back = file::read(&path).unwrap();
        prop_assert_eq!(back.len(), complete);
        for (a, b) in recs.iter().zip(&back) {
            prop_assert!(same(a, b));
        }
        let (mut f, scan) = JournalFile::open(&path).unwrap();
        prop_assert_eq!(scan.records.len(), complete);
        let next = rec(99, "r-1", measured(f64::NAN));
        f.append_line(&encode(&next, &Redactor::default())).unwrap();
        let back = file::read(&path).unwrap();
        prop_assert_eq!(back.len(), complete + 1);
        prop_assert!(same(&back[complete], &next));
        // The torn bytes are kept in a side file, byte for byte.
        let torn_len = cut - ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(0);
        let sides: Vec<_> = std::fs::read_dir(dir.path()).unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".torn-"))
            .collect();
        if torn_len == 0 {
            prop_assert!(sides.is_empty());
        } else {
            prop_assert_eq!(sides.len(), 1);
            let kept = std::fs::read(&sides[0]).unwrap();
            let start = cut - torn_len;
            prop_assert_eq!(&kept[..], &bytes[start..cut]);
        }
    }

    /// For any secret (length ≥ 3) inside any event's text, the journal line
    /// is valid JSON, decodes to a record, and no string in it holds the
    /// secret raw, percent-encoded, JSON-escaped or control-stripped.
    #[test]
    fn redaction_leaves_valid_json_and_no_form_of_the_secret(
        secret in prop_oneof![
            "\\PC{3,12}",
            ".{3,12}",
            prop::collection::vec(prop_oneof![Just('"'), Just('\\'), Just(' '), Just('\t'), Just('%'), Just('+'), Just('\n'), Just('é'), Just('\u{1}'), Just('a'), Just('1')], 3..10)
                .prop_map(|v| v.into_iter().collect::<String>()),
            Just("true".to_string()), Just("100".to_string()), Just("null".to_string()),
            Just("measured".to_string()), Just("2026".to_string()), Just("error-rate".to_string()),
        ],
        pre in any_text(),
        post in any_text(),
        event in any_event(),
    ) {
        prop_assume!(secret != MASK);
        let forms = forms_of(&secret);
        prop_assume!(!forms.is_empty());
        let red = Redactor::new([secret.clone()]);
        let text = format!("{pre}{secret}{post}");
        let event = plant(event, &text);
        let r = rec(1, "r-1", event);
        let line = encode(&r, &red);
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        prop_assert!(decode(line.as_bytes()).is_ok(), "{}", line);
        let mut strings = Vec::new();
        collect_strings(&value, None, &mut strings);
        for s in strings {
            let lit = serde_json::to_string(&s).unwrap();
            for f in &forms {
                prop_assert!(!s.contains(f.as_str()), "{:?} in {:?}", f, s);
                prop_assert!(!lit.contains(f.as_str()), "{:?} in {}", f, lit);
            }
        }
    }
}

/// Puts `text` into every free-text field of `e`.
fn plant(e: Event, text: &str) -> Event {
    let s = text.to_string();
    match e {
        Event::Start {
            id,
            service,
            environment,
            version,
            plan: p,
        } => Event::Start {
            id,
            service,
            environment,
            version: version.map(|_| s.clone()),
            plan: Box::new(Plan {
                name: s.clone(),
                ..*p
            }),
        },
        Event::ActionFinished {
            run, ok, unaudited, ..
        } => Event::ActionFinished {
            run,
            ok,
            detail: s,
            unaudited,
        },
        Event::Measured {
            measurement: m,
            epoch,
        } => Event::Measured {
            measurement: Measurement {
                query: s.clone(),
                canary: Err(s.clone()),
                ..m
            },
            epoch,
        },
        Event::Probed {
            target, ok, kind, ..
        } => Event::Probed {
            target,
            ok,
            detail: s,
            kind,
        },
        Event::Command(i) => Event::Command(Issued {
            reason: Some(s.clone()),
            operator: s,
            ..i
        }),
        other => other,
    }
}

/// Every string value outside [`crate::redact::STRUCTURAL_KEYS`].
fn collect_strings(v: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s)
            if !key.is_some_and(|k| crate::redact::STRUCTURAL_KEYS.contains(&k)) =>
        {
            out.push(s.clone());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, key, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                collect_strings(x, Some(k), out);
            }
        }
        _ => {}
    }
}

#[test]
fn nan_rates_do_not_make_the_journal_unreadable() {
    // A 0/0 rate: the canary's value and the request counts are NaN.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let mut j = store.open(Redactor::default());
    j.append(&rec(0, "r-1", start("r-1", "svc"))).unwrap();
    j.append(&rec(1, "r-1", measured(f64::NAN))).unwrap();
    j.append(&rec(2, "r-1", measured(f64::NEG_INFINITY)))
        .unwrap();
    let text = std::fs::read_to_string(store.release_path("r-1")).unwrap();
    assert!(text.contains(r#""value":"NaN""#), "{text}");
    assert!(text.contains(r#""requests":"inf""#), "{text}");
    let rel = store.latest().unwrap().unwrap();
    assert_eq!(store.all().unwrap().len(), 1);
    // The release state (`status --json`) keeps them too.
    let json = serde_json::to_string(&rel).unwrap();
    let back: crate::release::Release = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

#[test]
fn an_old_journal_with_null_for_nan_loads() {
    // What rolldeck wrote before: NaN as null, no version field.
    let dir = tempfile::tempdir().unwrap();
    let old = encode(&rec(0, "r-1", start("r-1", "svc")), &Redactor::default()).replacen(
        &format!("\"v\":{VERSION},"),
        "",
        1,
    );
    let m = r#"{"ts":"2030-03-17T17:46:41Z","release":"r-1","event":{"type":"measured","check":"error-rate","query":"q","canary":{"Ok":{"value":null,"requests":0.0}},"baseline":{"Ok":{"value":null}}}}"#;
    std::fs::write(dir.path().join("journal.jsonl"), format!("{old}\n{m}\n")).unwrap();
    let store = Store::new(dir.path());
    let recs = file::read(&store.legacy_path()).unwrap();
    assert_eq!(recs.len(), 2);
    match &recs[1].event {
        Event::Measured { measurement: m, .. } => {
            assert!(m.canary.as_ref().unwrap().value.is_nan())
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(store.latest().unwrap().unwrap().id, "r-1");
}

#[test]
fn a_newer_version_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let line = encode(&rec(0, "r-1", start("r-1", "svc")), &Redactor::default()).replacen(
        &format!("\"v\":{VERSION}"),
        "\"v\":7",
        1,
    );
    let p = dir.path().join("j.jsonl");
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let e = file::read(&p).unwrap_err().to_string();
    assert!(e.contains("j.jsonl:1") && e.contains("version 7"), "{e}");
    // Not mistaken for a torn tail either: appending refuses too.
    assert!(JournalFile::open(&p).is_err());
}

#[test]
fn corruption_in_the_middle_names_its_line_even_when_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    let a = encode(&rec(0, "r-1", start("r-1", "svc")), &Redactor::default());
    let b = encode(&rec(1, "r-1", Event::Tick), &Redactor::default());
    let mut bytes = format!("{a}\n{b}\n").into_bytes();
    bytes.extend_from_slice(b"{\"ts\":\"\xff\xfe\"}\n");
    bytes.extend_from_slice(format!("{b}\n").as_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = file::read(&p).unwrap_err().to_string();
    assert!(e.contains("j.jsonl:3") && e.contains("UTF-8"), "{e}");

    // A whitespace-only line in the middle is corruption, not skipped.
    std::fs::write(&p, format!("{a}\n   \n{b}\n")).unwrap();
    let e = file::read(&p).unwrap_err().to_string();
    assert!(e.contains("j.jsonl:2") && e.contains("blank"), "{e}");

    // A torn tail that splits a UTF-8 character is only a torn tail.
    let mut bytes = format!("{a}\n").into_bytes();
    let c = encode(
        &rec(
            2,
            "r-1",
            Event::Probed {
                target: "é".into(),
                ok: true,
                detail: "ü".into(),
                kind: Default::default(),
            },
        ),
        &Redactor::default(),
    );
    let cut = c.find('é').unwrap() + 1;
    bytes.extend_from_slice(&c.as_bytes()[..cut]);
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(file::read(&p).unwrap().len(), 1);
}

#[test]
fn one_file_per_release_with_a_current_pointer_and_history_over_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    // An old single journal with one finished-or-not release.
    let old = rec(0, "old-1", start("old-1", "svc"));
    std::fs::write(
        store.legacy_path(),
        format!("{}\n", encode(&old, &Redactor::default())),
    )
    .unwrap();
    assert_eq!(store.latest().unwrap().unwrap().id, "old-1");

    let mut j = store.open(Redactor::default());
    // Resuming the old release copies it to its own file first.
    j.append(&rec(1, "old-1", Event::Resumed)).unwrap();
    assert_eq!(file::read(&store.release_path("old-1")).unwrap().len(), 2);
    j.append(&rec(2, "new/2", start("new/2", "svc"))).unwrap();
    j.append(&rec(3, "new/2", Event::Tick)).unwrap();
    assert_eq!(store.current_id().unwrap().as_deref(), Some("new/2"));
    assert!(
        store
            .release_path("new/2")
            .ends_with("releases/new%2F2.jsonl")
    );
    assert_eq!(store.latest().unwrap().unwrap().id, "new/2");
    let all: Vec<String> = store.all().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(all, vec!["old-1", "new/2"]);
}

#[test]
fn the_follower_reads_only_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let mut fo = Follower::new(store.clone());
    assert_eq!(fo.poll().unwrap(), None);
    let mut j = store.open(Redactor::default());
    j.append(&rec(0, "r-1", start("r-1", "svc"))).unwrap();
    let r = fo.poll().unwrap().expect("the release appears");
    assert_eq!(r.id, "r-1");
    assert_eq!(fo.poll().unwrap(), None, "nothing new");
    j.append(&rec(1, "r-1", measured(f64::NAN))).unwrap();
    assert!(fo.poll().unwrap().is_some());
    // A partial record is not read until its newline arrives.
    let p = store.release_path("r-1");
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"{\"ts\":")
        .unwrap();
    assert_eq!(fo.poll().unwrap(), None);
    // The next driver cuts it off and appends: the follower re-reads.
    let mut j2 = store.open(Redactor::default());
    j2.append(&rec(
        2,
        "r-1",
        Event::Command(Issued {
            command: Command::Pause,
            operator: "a".into(),
            reason: None,
        }),
    ))
    .unwrap();
    let r = fo.poll().unwrap().expect("changed");
    assert!(
        matches!(r.phase, crate::release::Phase::Paused { .. }),
        "{:?}",
        r.phase
    );
    assert!(std::fs::metadata(&p).unwrap().len() > len);
    // Corruption is an error with a line number, not an idle screen.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"garbage\n{}\n")
        .unwrap();
    let e = fo.poll().unwrap_err().to_string();
    assert!(e.contains(":4:"), "{e}");
}

#[test]
fn names_map_to_distinct_directories() {
    assert_ne!(encode_name("pay/api"), encode_name("pay_api"));
    assert_eq!(encode_name("pay_api"), "pay_api");
    assert_eq!(encode_name("pay/api"), "pay%2Fapi");
    assert_eq!(encode_name(".."), "%2E.");
    assert_ne!(encode_name("a@b"), encode_name("a%40b"));
    let long_a = "x".repeat(300) + "a";
    let long_b = "x".repeat(300) + "b";
    assert_ne!(encode_name(&long_a), encode_name(&long_b));
    assert!(encode_name(&long_a).len() <= 200);
}

#[test]
fn a_release_of_another_service_is_not_resumed() {
    let rel = crate::release::Release::start(&start("r-1", "pay_api"), t(0))
        .unwrap()
        .0;
    assert!(crate::release::journal::check_owner(&rel, "pay_api", "staging").is_ok());
    let e = crate::release::journal::check_owner(&rel, "pay/api", "staging").unwrap_err();
    assert!(
        e.contains("pay_api") && e.contains("pay/api") && e.contains("refusing"),
        "{e}"
    );
}
