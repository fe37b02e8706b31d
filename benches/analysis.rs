//! One evaluation round of 50 checks over a 10-minute window at 1 s
//! resolution: the direct-scrape computation (counter and histogram deltas,
//! `histogram_quantile`) plus the verdict for each check.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use rolldeck::release::analysis::{CheckDef, CheckRun, Measurement, Reading, judge};
use rolldeck::sources::scrape::{History, LabelMatcher, parse_exposition};
use std::hint::black_box;
use std::time::Duration;

const BOUNDS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];

/// 601 scrapes, one per second, of a service exposing 4 status codes and a
/// latency histogram.
fn history() -> History {
    let mut h = History::new(Duration::from_secs(660));
    for s in 0..=600i64 {
        let n = s as f64;
        let mut text = String::from("# TYPE http_requests counter\n");
        for (code, share) in [("200", 0.97), ("404", 0.02), ("500", 0.008), ("503", 0.002)] {
            text.push_str(&format!(
                "http_requests_total{{code=\"{code}\"}} {}\n",
                (n * 100.0 * share).floor()
            ));
        }
        text.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (i, b) in BOUNDS.iter().enumerate() {
            let c = (n * 100.0 * (i as f64 + 1.0) / BOUNDS.len() as f64).floor();
            text.push_str(&format!(
                "http_request_duration_seconds_bucket{{le=\"{b}\"}} {c}\n"
            ));
        }
        h.push(
            parse_exposition(&text, Timestamp::from_second(1_800_000_000 + s).unwrap()).unwrap(),
        );
    }
    h
}

fn def(i: usize) -> CheckDef {
    CheckDef {
        name: format!("check-{i}"),
        max: Some(0.05),
        min: None,
        max_increase: Some(0.01),
        max_ratio: Some(2.0),
        min_baseline: None,
        unit: None,
        interval: Duration::from_secs(10),
        for_: Duration::from_secs(60),
        min_samples: 3,
        min_requests: Some(100.0),
        inconclusive_limit: 3,
    }
}

fn round(c: &mut Criterion) {
    let canary = history();
    let baseline = history();
    let errors = LabelMatcher::parse(r#"code=~"5..""#).unwrap();
    let window = Duration::from_secs(600);
    let defs: Vec<CheckDef> = (0..50).map(def).collect();
    let runs: Vec<CheckRun> = vec![CheckRun::default(); 50];
    let now = Timestamp::from_second(1_800_000_600).unwrap();
    c.bench_function(
        "evaluation round: 50 checks, 10 min window, 1 s resolution",
        |b| {
            b.iter(|| {
                let mut fails = 0;
                for (i, d) in defs.iter().enumerate() {
                    let reading = |h: &History| {
                        let r = if i % 2 == 0 {
                            h.error_rate("http_requests_total", &errors, window)
                        } else {
                            h.latency_quantile("http_request_duration_seconds", 0.95, window)
                        };
                        r.map(|(value, requests)| Reading {
                            value,
                            requests: Some(requests),
                        })
                    };
                    let m = Measurement {
                        check: d.name.clone(),
                        query: String::new(),
                        canary: reading(&canary),
                        baseline: reading(&baseline),
                    };
                    let (v, _) = judge(d, &m, &runs[i], now);
                    fails += usize::from(v.verdict == rolldeck::release::VerdictKind::Fail);
                }
                black_box(fails)
            })
        },
    );
}

criterion_group!(benches, round);
criterion_main!(benches);
