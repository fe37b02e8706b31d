//! The Prometheus source: instant PromQL queries through
//! `prometheus-http-query` over our own `reqwest::Client` (timeout, CA,
//! auth).
//!
//! The answer is checked strictly, because a source that lies must show as
//! down, never as a pass: a non-JSON body (an HTML login page, a proxy
//! error), a JSON body that is not the Prometheus API envelope, an API
//! error (`bad_data` for a PromQL syntax error, with Prometheus' message),
//! an empty vector, several series, and NaN are all errors with their reason.

use crate::config::PrometheusSource;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// A configured Prometheus server.
#[derive(Clone)]
pub struct Prometheus {
    client: prometheus_http_query::Client,
    url: String,
    timeout: Duration,
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
            .map_err(|_| format!("sample value {s:?} is not a number")),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
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
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs an instant query and returns its single value.
    ///
    /// Errors (as text, shown as the verdict's reason): connection and
    /// timeout errors, a non-Prometheus answer, an API error with
    /// Prometheus' own message, `empty vector` (no series matched), more
    /// than one series (aggregate with `sum()`), a matrix or string result.
    /// NaN and ±Inf are returned as values; the analysis treats them as
    /// inconclusive.
    pub async fn query_value(&self, promql: &str) -> Result<f64, String> {
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
        .map_err(|e| format!("Prometheus unreachable: {}", error_chain(&e)))?;
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| "Prometheus answer body timed out".to_string())?
            .map_err(|e| format!("reading Prometheus answer: {}", error_chain(&e)))?;
        let env: Envelope = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(_) => {
                let start: String = String::from_utf8_lossy(&body[..body.len().min(60)])
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                return Err(format!(
                    "the answer is not from the Prometheus API (HTTP {}, content-type {:?}, body starts {:?})",
                    status.as_u16(),
                    if ctype.is_empty() {
                        "none"
                    } else {
                        ctype.as_str()
                    },
                    start.trim()
                ));
            }
        };
        if env.status != "success" {
            return Err(match (env.error_type, env.error) {
                (Some(t), Some(m)) => format!("Prometheus error ({t}): {m}"),
                (_, Some(m)) => format!("Prometheus error: {m}"),
                _ => format!(
                    "Prometheus answered status {:?} with HTTP {}",
                    env.status,
                    status.as_u16()
                ),
            });
        }
        let Some(data) = env.data else {
            return Err("the answer is not from the Prometheus API (no `data`)".into());
        };
        match data.result_type.as_str() {
            "vector" => {
                let v: Vec<VectorSample> = serde_json::from_value(data.result).map_err(|e| {
                    format!("the answer is not from the Prometheus API (bad vector: {e})")
                })?;
                match v.len() {
                    0 => Err("no data: the query returned an empty vector".into()),
                    1 => parse_value(&v[0].value.1),
                    n => Err(format!(
                        "the query returned {n} series (e.g. {}); aggregate it to one, e.g. with sum()",
                        serde_json::Value::Object(v[0].metric.clone())
                    )),
                }
            }
            "scalar" => {
                let (_, s): (f64, String) = serde_json::from_value(data.result).map_err(|e| {
                    format!("the answer is not from the Prometheus API (bad scalar: {e})")
                })?;
                parse_value(&s)
            }
            other => Err(format!(
                "the query returned a {other}; an instant vector or scalar is needed"
            )),
        }
    }

    /// Checks that the server answers the query API; returns the latency.
    pub async fn probe(&self) -> Result<Duration, String> {
        let t = Instant::now();
        self.query_value("vector(1)").await?;
        Ok(t.elapsed())
    }
}
