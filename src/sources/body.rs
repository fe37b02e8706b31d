//! Bounded reading of answers from sources (Prometheus, direct scrape,
//! health probes).
//!
//! A source can send an endless or huge body (a misrouted stream, a proxy
//! gone wrong); reading it whole would grow memory without bound. Every
//! body is read chunk by chunk and counted: past the cap the read stops with
//! `answer larger than 10 MB cap`. A body that ends before its
//! `Content-Length` (the connection closed or timed out) is an error too,
//! never an empty or partial answer taken as the whole.

use std::time::Duration;

/// Default cap on a Prometheus answer, in bytes (10 MB).
pub const PROMETHEUS_BODY_CAP: u64 = 10_000_000;
/// Default cap on a direct-scrape `/metrics` answer, in bytes (10 MB).
pub const SCRAPE_BODY_CAP: u64 = 10_000_000;
/// Default cap on a health endpoint's answer, in bytes (1 MB).
pub const HEALTH_BODY_CAP: u64 = 1_000_000;

/// Formats a byte count the way caps are written: `10 MB`, `512 kB`,
/// `1500 bytes` (decimal units, as in `max_body_bytes = 10_000_000`).
pub fn fmt_bytes(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} MB", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} kB", n / 1_000)
    } else {
        format!("{n} bytes")
    }
}

/// The error text for a body past `cap` bytes: `answer larger than 10 MB cap`.
pub fn too_large(cap: u64) -> String {
    format!("answer larger than {} cap", fmt_bytes(cap))
}

/// Why a request never got an answer, cause first and short:
/// `connection refused (127.0.0.1:1)`, `timed out (prom:9090)`,
/// `dns error: failed to lookup address information: Name or service not
/// known (prom.invalid:9090)`. The `host:port` comes from `url`; the
/// request's URL (with its URL-encoded query) never appears: the query
/// is shown once, decoded, where the verdict shows it.
///
/// The cause is the innermost I/O error of the chain when there is one
/// (its kind in words for the common ones), else the chain with every
/// `for url (…)` left out.
pub fn transport_cause(e: &(dyn std::error::Error + 'static), url: &str) -> String {
    use std::io::ErrorKind;
    let mut io: Option<&std::io::Error> = None;
    let mut timeout = false;
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = src {
        if let Some(i) = x.downcast_ref::<std::io::Error>() {
            io = Some(i);
        }
        if let Some(r) = x.downcast_ref::<reqwest::Error>() {
            timeout |= r.is_timeout();
        }
        src = x.source();
    }
    let cause = match io.map(|i| (i.kind(), i)) {
        Some((ErrorKind::ConnectionRefused, _)) => "connection refused".to_string(),
        Some((ErrorKind::ConnectionReset, _)) => "connection reset".to_string(),
        Some((ErrorKind::ConnectionAborted, _)) => "connection aborted".to_string(),
        Some((ErrorKind::TimedOut, _)) => "timed out".to_string(),
        Some((ErrorKind::HostUnreachable, _)) => "host unreachable".to_string(),
        Some((ErrorKind::NetworkUnreachable, _)) => "network unreachable".to_string(),
        Some((ErrorKind::AddrNotAvailable, _)) => "address not available".to_string(),
        _ if timeout => "timed out".to_string(),
        Some((_, i)) => without_os_code(&i.to_string()),
        None => without_urls(&error_chain(e)),
    };
    match host_port(url) {
        Some(hp) => format!("{cause} ({hp})"),
        None => cause,
    }
}

/// `host:port` of `url` (the scheme's default port when none is written).
fn host_port(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn without_os_code(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// The text with every ` for url (…)` left out (reqwest names the whole
/// request URL there, URL-encoded query and all).
fn without_urls(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(" for url (") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " for url (".len()..];
        rest = match after.find(')') {
            Some(j) => &after[j + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The error and its sources on one line (`a: b: c`), without repeats.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

/// Reads the whole body of `resp`, at most `cap` bytes, within `timeout`.
///
/// Errors (one line, shown as the reason a source is down):
/// - `answer larger than 10 MB cap` — declared by `Content-Length` or
///   counted while streaming (nothing past the cap is kept in memory);
/// - `answer cut short after N bytes: …` — the connection closed or failed
///   before the body was complete (e.g. fewer bytes than `Content-Length`);
/// - `answer not complete within 2s (N bytes read)` — the body hung.
pub async fn read_capped(
    mut resp: reqwest::Response,
    cap: u64,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length()
        && len > cap
    {
        return Err(format!("{} (Content-Length {len})", too_large(cap)));
    }
    let mut buf: Vec<u8> = Vec::new();
    let read = async {
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() as u64 + chunk.len() as u64 > cap {
                        return Err(too_large(cap));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(()),
                Err(e) if e.is_timeout() => {
                    return Err(format!(
                        "answer not complete within {} ({} bytes read)",
                        humantime::format_duration(timeout),
                        buf.len()
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "answer cut short after {} bytes: {}",
                        buf.len(),
                        error_chain(&e)
                    ));
                }
            }
        }
    };
    // `buf` is borrowed by the read; its length is reported from the error.
    let r = tokio::time::timeout(timeout, read).await;
    match r {
        Ok(Ok(())) => Ok(buf),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "answer not complete within {} ({} bytes read)",
            humantime::format_duration(timeout),
            buf.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_read_as_written() {
        assert_eq!(fmt_bytes(10_000_000), "10 MB");
        assert_eq!(fmt_bytes(1_000_000), "1 MB");
        assert_eq!(fmt_bytes(512_000), "512 kB");
        assert_eq!(fmt_bytes(1500), "1500 bytes");
        assert_eq!(too_large(10_000_000), "answer larger than 10 MB cap");
    }
}
