//! Direct scrape: reading the tracks' own `/metrics` endpoints (Prometheus
//! text exposition format, parsed by the `prometheus-parse` crate) for
//! places without a Prometheus server, and computing the built-in checks
//! from counter and histogram deltas over a window.

use jiff::Timestamp;
use regex::Regex;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// A Prometheus label matcher: `label="v"`, `label!="v"`, `label=~"re"`,
/// `label!~"re"` (regexes fully anchored, as in PromQL).
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name.
    pub label: String,
    op: Op,
    value: String,
    re: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

impl LabelMatcher {
    /// Parses one matcher. Errors say what the syntax is.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let syntax = || {
            format!("`{s}` is not a label matcher; expected e.g. code=~\"5..\" or status=\"500\"")
        };
        let pos = s.find(['=', '!']).ok_or_else(syntax)?;
        let label = s[..pos].trim();
        let rest = &s[pos..];
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (Op::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::Nre, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Eq, r)
        } else {
            return Err(syntax());
        };
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(syntax());
        }
        let rest = rest.trim();
        let value = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .ok_or_else(syntax)?
            .to_string();
        let re = match op {
            Op::Re | Op::Nre => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("bad regex in `{s}`: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            label: label.to_string(),
            op,
            value,
            re,
        })
    }

    /// Whether a series with these labels matches (a missing label is "").
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            Op::Nre => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// The matcher as PromQL text.
    pub fn to_promql(&self) -> String {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::Nre => "!~",
        };
        format!("{}{}\"{}\"", self.label, op, self.value)
    }
}

/// One series' value at one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (histograms: the base name).
    pub metric: String,
    /// Labels (without `le`).
    pub labels: BTreeMap<String, String>,
    /// Plain value (counters, gauges, untyped).
    pub value: f64,
    /// Histogram buckets: (upper bound, cumulative count); empty otherwise.
    pub buckets: Vec<(f64, f64)>,
}

/// One parsed scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Timestamp,
    /// Every series.
    pub series: Vec<Series>,
}

/// Parses the Prometheus text exposition format with `prometheus-parse`.
pub fn parse_exposition(text: &str, at: Timestamp) -> Result<Snapshot, String> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| format!("not Prometheus text format: {e}"))?;
    let mut series = Vec::new();
    for s in scrape.samples {
        let labels: BTreeMap<String, String> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (value, buckets) = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => (v, Vec::new()),
            prometheus_parse::Value::Histogram(h) => {
                (0.0, h.iter().map(|b| (b.less_than, b.count)).collect())
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        series.push(Series {
            metric: s.metric,
            labels,
            value,
            buckets,
        });
    }
    if series.is_empty() && !text.trim().is_empty() {
        return Err("the answer has no Prometheus samples (is this a /metrics endpoint?)".into());
    }
    Ok(Snapshot { at, series })
}

/// Prometheus `histogram_quantile(q, buckets)`: linear interpolation within
/// the bucket holding rank `q × count`, as in Prometheus'
/// `promql/quantile.go` (`bucketQuantile`): NaN without a `+Inf` bucket or
/// with no observations; the upper bound of the second-highest bucket when
/// the rank falls in the `+Inf` bucket; a lowest bucket with an upper bound
/// ≤ 0 returns that bound; `q < 0` → −Inf, `q > 1` → +Inf.
/// `buckets`: (upper bound, cumulative count), any order.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.len() < 2 || b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts must be monotonic; Prometheus repairs small violations the same way.
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let idx = b.iter().position(|x| x.1 >= rank).unwrap_or(b.len() - 1);
    if idx == b.len() - 1 {
        return b[b.len() - 2].0;
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let mut start = 0.0;
    let end = b[idx].0;
    let mut count = b[idx].1;
    if idx > 0 {
        start = b[idx - 1].0;
        count -= b[idx - 1].1;
        rank -= b[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// The scrapes of one target over time (bounded by `keep`).
#[derive(Debug, Clone)]
pub struct History {
    snapshots: VecDeque<Snapshot>,
    keep: Duration,
    /// The last scrape error, with its time.
    pub last_error: Option<(Timestamp, String)>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl History {
    /// Keeps scrapes for `keep` (the longest check window plus a margin).
    pub fn new(keep: Duration) -> Self {
        Self {
            snapshots: VecDeque::new(),
            keep,
            last_error: None,
        }
    }

    /// Adds a scrape and drops those older than `keep` (keeping one older
    /// snapshot so a full window can be computed).
    pub fn push(&mut self, s: Snapshot) {
        let newest = s.at;
        self.snapshots.push_back(s);
        self.last_error = None;
        while self.snapshots.len() > 2
            && self.snapshots[1].at.as_millisecond() < newest.as_millisecond() - ms(self.keep)
        {
            self.snapshots.pop_front();
        }
    }

    /// Records a failed scrape.
    pub fn fail(&mut self, at: Timestamp, e: String) {
        self.last_error = Some((at, e));
    }

    /// The newest scrape.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.snapshots.back()
    }

    /// The newest scrape and the oldest one within `window` of it.
    fn pair(&self, window: Duration) -> Result<(&Snapshot, &Snapshot), String> {
        let newest = self.snapshots.back().ok_or("no successful scrape yet")?;
        let from = newest.at.as_millisecond() - ms(window);
        let oldest = self
            .snapshots
            .iter()
            .find(|s| s.at.as_millisecond() >= from)
            .filter(|s| s.at != newest.at)
            .ok_or("only one scrape in the window so far; need two")?;
        Ok((oldest, newest))
    }

    /// Error ratio (0–1) and request count over `window`: Δ(matching
    /// series) / Δ(all series) of counter `metric`; a counter that went
    /// down is taken as reset (its new value is the increase).
    pub fn error_rate(
        &self,
        metric: &str,
        errors: &LabelMatcher,
        window: Duration,
    ) -> Result<(f64, f64), String> {
        let (a, b) = self.pair(window)?;
        let total = |s: &Snapshot, only_errors: bool| -> BTreeMap<String, f64> {
            s.series
                .iter()
                .filter(|x| x.metric == metric && x.buckets.is_empty())
                .filter(|x| !only_errors || errors.matches(&x.labels))
                .map(|x| (format!("{:?}", x.labels), x.value))
                .collect()
        };
        let inc = |old: &BTreeMap<String, f64>, new: &BTreeMap<String, f64>| -> f64 {
            new.iter()
                .map(|(k, v)| match old.get(k) {
                    Some(o) if v >= o => v - o,
                    Some(_) => *v,
                    None => *v,
                })
                .sum()
        };
        let all_new = total(b, false);
        if all_new.is_empty() {
            return Err(format!("no series named `{metric}` in the scrape"));
        }
        let requests = inc(&total(a, false), &all_new);
        let errs = inc(&total(a, true), &total(b, true));
        if requests == 0.0 {
            return Ok((f64::NAN, 0.0));
        }
        Ok((errs / requests, requests))
    }

    /// Quantile `q` (0–1) of histogram `metric` over `window` (bucket
    /// deltas summed over all series, then [`histogram_quantile`]), and the
    /// observation count.
    pub fn latency_quantile(
        &self,
        metric: &str,
        q: f64,
        window: Duration,
    ) -> Result<(f64, f64), String> {
        let (a, b) = self.pair(window)?;
        let sum_buckets = |s: &Snapshot| -> BTreeMap<String, (f64, f64)> {
            let mut m: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            for x in s
                .series
                .iter()
                .filter(|x| x.metric == metric && !x.buckets.is_empty())
            {
                for (le, c) in &x.buckets {
                    m.entry(format!("{le}")).or_insert((*le, 0.0)).1 += c;
                }
            }
            m
        };
        let new = sum_buckets(b);
        if new.is_empty() {
            return Err(format!("no histogram named `{metric}` in the scrape"));
        }
        let old = sum_buckets(a);
        let delta: Vec<(f64, f64)> = new
            .iter()
            .map(|(k, (le, c))| {
                let o = old.get(k).map_or(0.0, |x| x.1);
                (*le, if *c >= o { c - o } else { *c })
            })
            .collect();
        let count = delta.iter().map(|x| x.1).fold(0.0, f64::max);
        Ok((histogram_quantile(q, &delta), count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_prometheus_interpolation() {
        // Prometheus docs example shape: 0.1:50, 0.5:90, 1:100, +Inf:100.
        let b = [
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((histogram_quantile(0.5, &b) - 0.1).abs() < 1e-12);
        // rank 95 falls in (0.5,1]: 0.5 + 0.5 * (5/10) = 0.75
        assert!((histogram_quantile(0.95, &b) - 0.75).abs() < 1e-12);
        assert!((histogram_quantile(0.25, &b) - 0.05).abs() < 1e-12);
        assert!(
            histogram_quantile(0.5, &[(0.1, 1.0)]).is_nan(),
            "no +Inf bucket"
        );
        assert!(histogram_quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        // Rank in the +Inf bucket: the second-highest bound.
        assert_eq!(
            histogram_quantile(0.99, &[(0.1, 1.0), (f64::INFINITY, 10.0)]),
            0.1
        );
        assert_eq!(histogram_quantile(-1.0, &b), f64::NEG_INFINITY);
        assert_eq!(histogram_quantile(2.0, &b), f64::INFINITY);
    }

    #[test]
    fn matcher_syntax_and_matching() {
        let m = LabelMatcher::parse(r#"code=~"5..""#).unwrap();
        let l = |v: &str| BTreeMap::from([("code".to_string(), v.to_string())]);
        assert!(m.matches(&l("503")));
        assert!(!m.matches(&l("200")));
        assert!(!m.matches(&l("5000")), "anchored like PromQL");
        assert_eq!(m.to_promql(), r#"code=~"5..""#);
        assert!(
            LabelMatcher::parse(r#"code!="200""#)
                .unwrap()
                .matches(&l("500"))
        );
        assert!(LabelMatcher::parse("code 500").is_err());
        assert!(LabelMatcher::parse(r#"code=~"(""#).is_err());
    }

    fn snap(at: i64, ok: f64, err: f64, buckets: &[(f64, f64)]) -> Snapshot {
        let text = format!(
            "# TYPE http_requests counter\nhttp_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"500\"}} {err}\n\
             # TYPE lat histogram\n{}",
            buckets
                .iter()
                .map(|(le, c)| {
                    let le = if le.is_infinite() {
                        "+Inf".to_string()
                    } else {
                        le.to_string()
                    };
                    format!("lat_bucket{{le=\"{le}\"}} {c}\n")
                })
                .collect::<String>()
        );
        parse_exposition(&text, Timestamp::from_second(at).unwrap()).unwrap()
    }

    #[test]
    fn error_rate_and_quantile_from_deltas() {
        let mut h = History::new(Duration::from_secs(120));
        let inf = f64::INFINITY;
        h.push(snap(
            100,
            1000.0,
            10.0,
            &[(0.1, 100.0), (1.0, 110.0), (inf, 110.0)],
        ));
        assert!(
            h.error_rate(
                "http_requests_total",
                &LabelMatcher::parse(r#"code=~"5..""#).unwrap(),
                Duration::from_secs(60)
            )
            .is_err()
        );
        h.push(snap(
            130,
            1090.0,
            20.0,
            &[(0.1, 100.0), (1.0, 210.0), (inf, 210.0)],
        ));
        let m = LabelMatcher::parse(r#"code=~"5..""#).unwrap();
        let (rate, req) = h
            .error_rate("http_requests_total", &m, Duration::from_secs(60))
            .unwrap();
        assert_eq!(req, 100.0);
        assert!((rate - 0.1).abs() < 1e-12);
        // All 100 new observations in (0.1, 1]: p50 = 0.1 + 0.9 * 0.5
        let (p50, n) = h
            .latency_quantile("lat", 0.5, Duration::from_secs(60))
            .unwrap();
        assert_eq!(n, 100.0);
        assert!((p50 - 0.55).abs() < 1e-9, "{p50}");
        assert!(
            h.error_rate("nope_total", &m, Duration::from_secs(60))
                .is_err()
        );
    }

    #[test]
    fn no_requests_is_nan_not_zero() {
        let mut h = History::new(Duration::from_secs(120));
        h.push(snap(100, 5.0, 0.0, &[(f64::INFINITY, 0.0)]));
        h.push(snap(110, 5.0, 0.0, &[(f64::INFINITY, 0.0)]));
        let (rate, req) = h
            .error_rate(
                "http_requests_total",
                &LabelMatcher::parse(r#"code=~"5..""#).unwrap(),
                Duration::from_secs(60),
            )
            .unwrap();
        assert!(rate.is_nan());
        assert_eq!(req, 0.0);
    }

    #[test]
    fn html_is_not_an_exposition() {
        assert!(
            parse_exposition("<html><body>login</body></html>", Timestamp::UNIX_EPOCH).is_err()
        );
    }
}
