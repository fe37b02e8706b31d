//! The Prometheus source: instant PromQL queries through
//! `prometheus-http-query` over our own `reqwest::Client` (timeout, CA,
//! auth).
//!
//! The answer is checked strictly ([`parse_answer`]), because a source that
//! lies must show as down, never as a pass: an HTTP status outside 2xx
//! (whatever the body says), a non-JSON body (an HTML login page, a proxy
//! error), a JSON body that is not the Prometheus API envelope, an API
//! error (`bad_data` for a PromQL syntax error, with Prometheus' message),
//! an empty vector and several series are all errors with their reason.
//! The body is read with a cap (`max_body_bytes`, default 10 MB).

use crate::config::PrometheusSource;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// A configured Prometheus server.
#[derive(Clone)]
pub struct Prometheus {
    client: prometheus_http_query::Client,
    url: String,
    timeout: Duration,
    max_body: u64,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .finish()
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: serde_json::Map<String, serde_json::Value>,
    value: (f64, String),
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|_| format!("sample value {:?} is not a number", echo(s))),
    }
}

use super::body::error_chain;

/// Longest text taken from an answer into an error message (characters);
/// a hostile source cannot fill the journal through its error text.
const MAX_ECHO: usize = 300;

/// `s` cut to [`MAX_ECHO`] characters (with `…`), on one line. Control
/// sequences are stripped later, where all source text enters the engine.
fn echo(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_ECHO)
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if s.chars().nth(MAX_ECHO).is_some() {
        out.push('…');
    }
    out
}

/// Judges one answer of the instant-query API (`/api/v1/query`) and returns
/// its single value.
///
/// `status` is the HTTP status, `content_type` the `Content-Type` header
/// (empty when none), `body` the whole (capped) body.
///
/// Errors, each naming what was wrong:
/// - a status outside 2xx, **whatever the body says** (a proxy or a broken
///   server answering 500 with a `"success"` body is not trusted); when the
///   body is a Prometheus error envelope its message is kept:
///   `Prometheus error (bad_data): … (HTTP 400)`;
/// - a body that is not JSON or not the API envelope (an HTML login page),
///   with the status, content type and the start of the body;
/// - `"status": "error"` with Prometheus' own message;
/// - `no data: the query returned an empty vector`; several series; a
///   matrix or string result; a sample value that is not a number.
///
/// NaN and ±Inf are values (`Ok`); the analysis makes them inconclusive.
/// Never panics, for any bytes.
pub fn parse_answer(status: u16, content_type: &str, body: &[u8]) -> Result<f64, String> {
    let ok_status = (200..300).contains(&status);
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            let start: String = String::from_utf8_lossy(&body[..body.len().min(60)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Err(format!(
                "the answer is not from the Prometheus API (HTTP {status}, content-type {:?}, body starts {:?}: {})",
                if content_type.is_empty() {
                    "none".to_string()
                } else {
                    echo(content_type)
                },
                echo(&start).trim(),
                if body.is_empty() {
                    "empty body".to_string()
                } else {
                    echo(&e.to_string())
                }
            ));
        }
    };
    if env.status != "success" || !ok_status {
        let suffix = if ok_status {
            String::new()
        } else {
            format!(" (HTTP {status})")
        };
        return Err(match (env.status.as_str(), env.error_type, env.error) {
            ("error", Some(t), Some(m)) => {
                format!("Prometheus error ({}): {}{suffix}", echo(&t), echo(&m))
            }
            ("error", _, Some(m)) => format!("Prometheus error: {}{suffix}", echo(&m)),
            ("success", _, _) => format!(
                "Prometheus answered HTTP {status} with a \"success\" body; an answer that is not 2xx is not trusted whatever its body says"
            ),
            (other, _, _) => format!(
                "Prometheus answered status {:?} with HTTP {status}",
                echo(other)
            ),
        });
    }
    let Some(data) = env.data else {
        return Err("the answer is not from the Prometheus API (no `data`)".into());
    };
    match data.result_type.as_str() {
        "vector" => {
            let v: Vec<VectorSample> = serde_json::from_value(data.result).map_err(|e| {
                format!(
                    "the answer is not from the Prometheus API (bad vector: {})",
                    echo(&e.to_string())
                )
            })?;
            match v.len() {
                0 => Err("no data: the query returned an empty vector".into()),
                1 => parse_value(&v[0].value.1),
                n => Err(format!(
                    "the query returned {n} series (e.g. {}); aggregate it to one, e.g. with sum()",
                    echo(&serde_json::Value::Object(v[0].metric.clone()).to_string())
                )),
            }
        }
        "scalar" => {
            let (_, s): (f64, String) = serde_json::from_value(data.result).map_err(|e| {
                format!(
                    "the answer is not from the Prometheus API (bad scalar: {})",
                    echo(&e.to_string())
                )
            })?;
            parse_value(&s)
        }
        other => Err(format!(
            "the query returned a {}; an instant vector or scalar is needed",
            echo(other)
        )),
    }
}

/// Builds the HTTP client for a Prometheus source: timeout, extra CA, and a
/// bearer token or basic auth as a sensitive default header.
pub fn http_client(cfg: &PrometheusSource) -> Result<reqwest::Client, String> {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    let auth = if let Some(t) = &cfg.bearer_token {
        Some(format!("Bearer {t}"))
    } else {
        cfg.basic_auth.as_ref().map(|b| {
            use base64::Engine as _;
            let raw = format!("{}:{}", b.username, b.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        })
    };
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(&a)
            .map_err(|_| "credentials contain characters not allowed in a header".to_string())?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    let mut b = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .default_headers(headers);
    if let Some(ca) = &cfg.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| format!("cannot read CA file {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("CA file {}: {e}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| error_chain(&e))
}

impl Prometheus {
    /// Creates the source. Errors: bad URL, unreadable CA file, credentials
    /// not valid in a header.
    pub fn new(cfg: &PrometheusSource) -> Result<Self, String> {
        let http = http_client(cfg)?;
        let client =
            prometheus_http_query::Client::from(http, &cfg.url).map_err(|e| error_chain(&e))?;
        Ok(Self {
            client,
            url: cfg.url.clone(),
            timeout: cfg.timeout,
            max_body: cfg.max_body_bytes,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs an instant query and returns its single value.
    ///
    /// Errors (as text, shown as the verdict's reason): connection and
    /// timeout errors, an answer larger than the source's `max_body_bytes`
    /// cap or cut short, and everything [`parse_answer`] rejects.
    /// NaN and ±Inf are returned as values; the analysis treats them as
    /// inconclusive.
    pub async fn query_value(&self, promql: &str) -> Result<f64, String> {
        let (status, ctype, body) = self.query_answer(promql).await?;
        parse_answer(status, &ctype, &body)
    }

    /// Sends an instant query and returns the answer unjudged: HTTP status,
    /// `Content-Type` (empty when none) and the body (at most the source's
    /// `max_body_bytes`). For callers that read more than one value (a
    /// runbook's PromQL block shown as a table); judge it as strictly as
    /// [`parse_answer`] does.
    ///
    /// Errors: connection and timeout errors, an answer larger than the cap
    /// or cut short.
    pub async fn query_answer(&self, promql: &str) -> Result<(u16, String, Vec<u8>), String> {
        let resp = tokio::time::timeout(
            self.timeout + Duration::from_millis(500),
            self.client.query(promql).get_raw(),
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
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = super::body::read_capped(resp, self.max_body, self.timeout)
            .await
            .map_err(|e| format!("reading Prometheus answer (HTTP {status}): {e}"))?;
        Ok((status, ctype, body))
    }

    /// Checks that the server answers the query API; returns the latency.
    pub async fn probe(&self) -> Result<Duration, String> {
        let t = Instant::now();
        self.query_value("vector(1)").await?;
        Ok(t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vector(value: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1800000000.123,"{value}"]}}]}}}}"#
        )
    }

    /// A closed port (nothing listens on 127.0.0.1:1): the error leads
    /// with the cause and the host, and the URL-encoded query never
    /// appears in it.
    #[tokio::test]
    async fn an_unreachable_server_is_named_by_its_cause() {
        let p = Prometheus::new(&PrometheusSource {
            url: "http://127.0.0.1:1".into(),
            timeout: Duration::from_secs(2),
            bearer_token: None,
            basic_auth: None,
            ca_file: None,
            max_body_bytes: 1000,
        })
        .unwrap();
        let e = p
            .query_value(r#"sum(rate(http_requests_total{track="canary",code=~"5.."}[1m]))"#)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "Prometheus unreachable: connection refused (127.0.0.1:1)"
        );
    }

    #[test]
    fn a_success_body_behind_a_non_2xx_status_is_an_error() {
        for status in [500u16, 503, 302, 404] {
            let e = parse_answer(status, "application/json", vector("0").as_bytes()).unwrap_err();
            assert!(e.contains(&format!("HTTP {status}")), "{e}");
            assert!(e.contains("not trusted"), "{e}");
        }
        assert_eq!(
            parse_answer(200, "application/json", vector("0.25").as_bytes()),
            Ok(0.25)
        );
    }

    #[test]
    fn an_error_envelope_keeps_prometheus_message_and_the_status() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let e = parse_answer(400, "application/json", body.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "Prometheus error (bad_data): parse error at char 5 (HTTP 400)"
        );
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "empty body"),
            (b"<html>log in</html>", "not from the Prometheus API (HTTP 200"),
            (b"{\"status\":\"success\"", "EOF while parsing"),
            (br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#, "empty vector"),
            (br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#, "returned a matrix"),
            (br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}"#, "sample value \"x\" is not a number"),
            (br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#, "returned 2 series"),
        ];
        for (body, want) in cases {
            let e = parse_answer(200, "application/json", body).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }

    #[test]
    fn echoed_text_is_bounded() {
        let long = "x".repeat(100_000);
        let body = format!(r#"{{"status":"error","errorType":"bad_data","error":"{long}"}}"#);
        let e = parse_answer(400, "", body.as_bytes()).unwrap_err();
        assert!(e.len() < 1000, "{} bytes", e.len());
        assert!(e.contains('…'));
    }

    /// One random change to a valid answer.
    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(usize, u8),
        Cut(usize),
        Insert(usize, Vec<u8>),
        Remove(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
            any::<usize>().prop_map(Mutation::Cut),
            (
                any::<usize>(),
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..8),
                    Just(b"\"NaN\"".to_vec()),
                    Just(b",{}".to_vec()),
                    Just(b"[]".to_vec()),
                    Just(b"null".to_vec()),
                    Just(b"1e999".to_vec()),
                    Just(b"\\u0000".to_vec()),
                ]
            )
                .prop_map(|(i, v)| Mutation::Insert(i, v)),
            (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        ]
    }

    fn apply(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
        for m in ms {
            let len = b.len();
            match m {
                Mutation::Flip(i, v) if len > 0 => b[i % len] = *v,
                Mutation::Cut(i) => b.truncate(i % (len + 1)),
                Mutation::Insert(i, v) => {
                    let at = i % (len + 1);
                    b.splice(at..at, v.iter().copied());
                }
                Mutation::Remove(i, n) if len > 0 => {
                    let at = i % len;
                    b.drain(at..(at + n).min(len));
                }
                _ => {}
            }
        }
        b
    }

    /// Every error: non-empty, one line, bounded (a hostile body cannot fill
    /// the journal through its error).
    fn well_formed(e: &str) -> Result<(), TestCaseError> {
        prop_assert!(!e.trim().is_empty(), "empty error");
        prop_assert!(!e.contains('\n'), "multi-line error {e:?}");
        prop_assert!(
            e.chars().count() < 1200,
            "error of {} chars",
            e.chars().count()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes with any status: no panic; an error says what was wrong.
        #[test]
        fn arbitrary_bytes_never_panic(
            status in prop_oneof![Just(200u16), Just(400), Just(500), 100u16..600],
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            match parse_answer(status, "application/json", &body) {
                Ok(_) => prop_assert!((200..300).contains(&status)),
                Err(e) => well_formed(&e)?,
            }
        }

        /// Mutated valid answers: no panic; a value only from a 2xx answer.
        #[test]
        fn mutated_answers_never_panic(
            status in prop_oneof![Just(200u16), Just(500), Just(503)],
            value in prop_oneof![any::<f64>().prop_map(|v| v.to_string()), Just("NaN".to_string()), Just("+Inf".to_string())],
            scalar in any::<bool>(),
            ms in proptest::collection::vec(mutation(), 0..4),
        ) {
            let valid = if scalar {
                format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":[1.5,"{value}"]}}}}"#)
            } else {
                vector(&value)
            };
            let body = apply(valid.into_bytes(), &ms);
            match parse_answer(status, "application/json", &body) {
                Ok(_) => prop_assert_eq!(status, 200),
                Err(e) => well_formed(&e)?,
            }
        }

        /// Valid answers give back their value exactly.
        #[test]
        fn valid_answers_give_their_value(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            prop_assert_eq!(parse_answer(200, "application/json", vector(&v.to_string()).as_bytes()), Ok(v));
        }
    }
}
