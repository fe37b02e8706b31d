//! The firing alerts of the configured Prometheus (`GET /api/v1/alerts`,
//! the Prometheus HTTP API), for the cockpit's Runbook pane and the
//! incident timeline.
//!
//! Read like every other source: with the source's own HTTP client
//! (timeout, CA, auth; [`super::prometheus::http_client`]), the body capped
//! at the source's `max_body_bytes`, and the answer judged strictly — a
//! status outside 2xx, a body that is not the API's envelope, an API error
//! are errors with their reason, shown as the alerts being *down*, never as
//! "no alerts". Each alert is decoded with `prometheus-http-query`'s
//! [`Alert`](prometheus_http_query::response::Alert) type (labels,
//! annotations, state, `activeAt`, value); only `firing` alerts are kept
//! (`pending` ones have not met their `for` yet).
//!
//! An alert names its runbook the Prometheus way: the `runbook_url`
//! annotation ([`FiringAlert::runbook_url`]); the `summary` annotation and
//! the `severity` label are shown beside its name.

use crate::config::PrometheusSource;
use jiff::Timestamp;
use prometheus_http_query::response::Alert;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest annotation or label text kept (characters); longer is cut
/// with `…`.
const MAX_TEXT: usize = 300;

/// One firing alert.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringAlert {
    /// `alertname` label.
    pub name: String,
    /// `severity` label, if any.
    pub severity: Option<String>,
    /// When it became active (`activeAt`; firing since at most then plus
    /// its `for`).
    pub since: Timestamp,
    /// `summary` annotation (else `description`), if any.
    pub summary: Option<String>,
    /// `runbook_url` annotation, if any.
    pub runbook_url: Option<String>,
    /// Every label but `alertname`, sorted.
    pub labels: BTreeMap<String, String>,
    /// The value of the rule's expression that made it fire.
    pub value: f64,
}

impl FiringAlert {
    /// Identifies this firing (name, labels and since): the same alert
    /// firing again later is a new firing.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!(
            "{}{{{}}}@{}",
            self.name,
            labels.join(","),
            self.since.as_second()
        )
    }

    /// `name{label="v",…}` for text.
    pub fn display_name(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "severity")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        if labels.is_empty() {
            self.name.clone()
        } else {
            format!("{}{{{}}}", self.name, labels.join(","))
        }
    }
}

/// One text value as shown: control characters removed, cut to
/// [`MAX_TEXT`] characters.
fn clean(s: &str) -> String {
    let s = crate::exec::strip_control(s);
    if s.chars().count() > MAX_TEXT {
        let mut c: String = s.chars().take(MAX_TEXT).collect();
        c.push('…');
        c
    } else {
        s
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<AlertsData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// Judges one answer of `GET /api/v1/alerts` (status, the whole capped
/// body) and returns its firing alerts, oldest first.
///
/// Errors (one line, bounded): a status outside 2xx whatever the body;
/// a body that is not JSON or not the alerts envelope (with the start of
/// the body); `"status": "error"` with Prometheus' message. Never panics.
pub fn parse_alerts(status: u16, body: &[u8]) -> Result<Vec<FiringAlert>, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(&body[..body.len().min(60)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "the answer is not from the Prometheus alerts API (HTTP {status}, body starts {:?}: {})",
            start.trim(),
            clean(&e.to_string())
        )
    })?;
    if !(200..300).contains(&status) || env.status != "success" {
        return Err(match (env.error_type, env.error) {
            (Some(t), Some(m)) => format!(
                "Prometheus error ({}): {} (HTTP {status})",
                clean(&t),
                clean(&m)
            ),
            (_, Some(m)) => format!("Prometheus error: {} (HTTP {status})", clean(&m)),
            _ => format!(
                "Prometheus answered status {:?} with HTTP {status}; an answer that is not a 2xx success is not trusted",
                clean(&env.status)
            ),
        });
    }
    let data = env
        .data
        .ok_or("the answer is not from the Prometheus alerts API (no `data`)")?;
    let mut out: Vec<FiringAlert> = data
        .alerts
        .iter()
        .filter(|a| a.state().is_firing())
        .map(|a| {
            let at = a.active_at();
            let since = Timestamp::new(at.unix_timestamp(), at.nanosecond() as i32)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let ann = a.annotations();
            let labels: BTreeMap<String, String> = a
                .labels()
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| (clean(k), clean(v)))
                .collect();
            FiringAlert {
                name: clean(
                    a.labels()
                        .get("alertname")
                        .map_or("(no alertname)", String::as_str),
                ),
                severity: labels.get("severity").cloned(),
                since,
                summary: ann
                    .get("summary")
                    .or_else(|| ann.get("description"))
                    .map(|s| clean(s)),
                runbook_url: ann.get("runbook_url").map(|s| clean(s)),
                labels,
                value: a.value(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.key().cmp(&b.key())));
    Ok(out)
}

/// The alerts source: the configured Prometheus's alerts API.
#[derive(Clone)]
pub struct AlertSource {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    max_body: u64,
}

impl AlertSource {
    /// Builds it from `[sources.prometheus]`. Errors: an unreadable CA
    /// file, credentials not valid in a header, a bad URL.
    pub fn new(cfg: &PrometheusSource) -> Result<Self, String> {
        let http = super::prometheus::http_client(cfg)?;
        // The crate's client checks the URL the same way the query source does.
        let client = prometheus_http_query::Client::from(http.clone(), &cfg.url)
            .map_err(|e| super::body::error_chain(&e))?;
        let base = client.base_url().as_str().trim_end_matches('/').to_string();
        Ok(Self {
            http,
            url: format!("{base}/api/v1/alerts"),
            timeout: cfg.timeout,
            max_body: cfg.max_body_bytes,
        })
    }

    /// The alerts API's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads the firing alerts once. Errors (as text, shown as the alerts
    /// being down): unreachable, no answer within the timeout, a body past
    /// the cap or cut short, and everything [`parse_alerts`] rejects.
    pub async fn fetch(&self) -> Result<Vec<FiringAlert>, String> {
        let resp = tokio::time::timeout(
            self.timeout + Duration::from_millis(500),
            self.http.get(&self.url).timeout(self.timeout).send(),
        )
        .await
        .map_err(|_| {
            format!(
                "Prometheus did not answer within {}",
                humantime::format_duration(self.timeout)
            )
        })?
        .map_err(|e| {
            format!(
                "Prometheus unreachable: {}",
                super::body::transport_cause(&e, &self.url)
            )
        })?;
        let status = resp.status().as_u16();
        let body = super::body::read_capped(resp, self.max_body, self.timeout)
            .await
            .map_err(|e| format!("reading the alerts (HTTP {status}): {e}"))?;
        parse_alerts(status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ANSWER: &str = r#"{"status":"success","data":{"alerts":[
      {"labels":{"alertname":"CanaryErrorRateHigh","severity":"page","track":"canary"},
       "annotations":{"summary":"canary 5xx at 40%","runbook_url":"https://wiki/runbooks/manual-rollback.md"},
       "state":"firing","activeAt":"2026-11-23T18:00:01.5Z","value":"4e-01"},
      {"labels":{"alertname":"Pending"},"annotations":{},"state":"pending",
       "activeAt":"2026-11-23T18:00:02Z","value":"1"}]}}"#;

    #[test]
    fn firing_alerts_with_their_runbook() {
        let got = parse_alerts(200, ANSWER.as_bytes()).unwrap();
        assert_eq!(got.len(), 1, "pending alerts are not firing");
        let a = &got[0];
        assert_eq!(a.name, "CanaryErrorRateHigh");
        assert_eq!(a.severity.as_deref(), Some("page"));
        assert_eq!(a.summary.as_deref(), Some("canary 5xx at 40%"));
        assert_eq!(
            a.runbook_url.as_deref(),
            Some("https://wiki/runbooks/manual-rollback.md")
        );
        assert_eq!(a.since, "2026-11-23T18:00:01.5Z".parse().unwrap());
        assert_eq!(a.value, 0.4);
        assert_eq!(a.display_name(), "CanaryErrorRateHigh{track=\"canary\"}");
    }

    #[test]
    fn a_source_that_lies_is_down_not_quiet() {
        let e = parse_alerts(500, ANSWER.as_bytes()).unwrap_err();
        assert!(e.contains("HTTP 500"), "{e}");
        let e = parse_alerts(200, b"<html>login</html>").unwrap_err();
        assert!(e.contains("not from the Prometheus alerts API"), "{e}");
        let e = parse_alerts(
            503,
            br#"{"status":"error","errorType":"unavailable","error":"rule manager not ready"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Prometheus error (unavailable): rule manager not ready (HTTP 503)"
        );
        assert!(parse_alerts(200, br#"{"status":"success"}"#).is_err());
        assert_eq!(
            parse_alerts(200, br#"{"status":"success","data":{"alerts":[]}}"#),
            Ok(vec![])
        );
    }

    #[tokio::test]
    async fn unreachable_is_named_by_its_cause() {
        let s = AlertSource::new(&PrometheusSource {
            url: "http://127.0.0.1:1".into(),
            timeout: Duration::from_secs(2),
            bearer_token: None,
            basic_auth: None,
            ca_file: None,
            max_body_bytes: 1000,
        })
        .unwrap();
        assert_eq!(s.url(), "http://127.0.0.1:1/api/v1/alerts");
        let e = s.fetch().await.unwrap_err();
        assert_eq!(
            e,
            "Prometheus unreachable: connection refused (127.0.0.1:1)"
        );
    }

    proptest! {
        /// Any bytes: no panic; errors are one bounded line.
        #[test]
        fn arbitrary_answers_never_panic(
            status in prop_oneof![Just(200u16), Just(500), 100u16..600],
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            if let Err(e) = parse_alerts(status, &body) {
                prop_assert!(!e.contains('\n'));
                prop_assert!(e.chars().count() < 1200);
            }
        }
    }
}
