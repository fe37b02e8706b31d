//! The postmortem-ready export of one incident's timeline: Markdown (a
//! header and a table, pasted into the postmortem document) or JSON.
//!
//! Times are local with the zone, to the second (`2026-11-23 19:01:02
//! CET`), as people read them; the JSON carries the UTC time (RFC 3339)
//! beside it.

use super::{Entry, Incident};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `2026-11-23 19:01:02 CET` in `tz`.
pub fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A duration in seconds as `1h02m03s`, `4m05s`, `7s`.
pub fn duration_words(s: i64) -> String {
    let s = s.max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// One table cell: `|` escaped, line breaks as `<br>`, control characters
/// removed.
fn cell(s: &str) -> String {
    crate::exec::strip_control(&s.replace('\n', " <br> "))
        .replace('\\', "\\\\")
        .replace('|', "\\|")
}

/// The incident as Markdown: a title with severity, when it started (and
/// by whom), when it was resolved or that it is ongoing at `now` with its
/// duration, then a table of every entry in order: time, who, what, detail.
pub fn markdown(i: &Incident, now: Timestamp, tz: &TimeZone) -> String {
    let mut out = format!("# {} {}: {}\n\n", i.id, i.severity, cell(&i.title));
    out.push_str(&format!("- Severity: {}\n", i.severity));
    out.push_str(&format!(
        "- Started: {} by {}\n",
        local(i.started_at, tz),
        cell(&i.started_by)
    ));
    match i.resolved_at {
        Some(r) => out.push_str(&format!(
            "- Resolved: {} (after {})\n",
            local(r, tz),
            duration_words(r.as_second() - i.started_at.as_second())
        )),
        None => out.push_str(&format!(
            "- Ongoing at {} ({} so far)\n",
            local(now, tz),
            duration_words(now.as_second() - i.started_at.as_second())
        )),
    }
    out.push_str(&format!(
        "- Entries: {}\n\n## Timeline\n\n",
        i.entries.len()
    ));
    out.push_str("| Time | Who | What | Detail |\n|---|---|---|---|\n");
    for e in &i.entries {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            local(e.ts, tz),
            cell(&e.operator),
            e.kind.words(),
            cell(&detail(e))
        ));
    }
    out
}

/// An entry's detail as exported: the start's severity and title, else
/// its text.
fn detail(e: &Entry) -> String {
    match (e.kind, e.severity) {
        (super::Kind::Start, Some(s)) => format!("{s}: {}", e.text),
        _ => e.text.clone(),
    }
}

/// The incident as one JSON object: `{incident, severity, title,
/// started_at, started_by, resolved_at, duration_s, entries: [{ts, local,
/// operator, kind, text}]}` (times UTC RFC 3339; `local` in `tz`;
/// `duration_s` up to the resolve, or up to `now` while ongoing).
pub fn json(i: &Incident, now: Timestamp, tz: &TimeZone) -> serde_json::Value {
    let end = i.resolved_at.unwrap_or(now);
    serde_json::json!({
        "incident": i.id,
        "severity": i.severity,
        "title": i.title,
        "started_at": i.started_at,
        "started_by": i.started_by,
        "resolved_at": i.resolved_at,
        "duration_s": (end.as_second() - i.started_at.as_second()).max(0),
        "entries": i.entries.iter().map(|e| serde_json::json!({
            "ts": e.ts,
            "local": local(e.ts, tz),
            "operator": e.operator,
            "kind": e.kind,
            "text": detail(e),
        })).collect::<Vec<_>>(),
    })
}

/// The export formats of `rolldeck timeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// [`markdown`] (the default).
    #[default]
    Markdown,
    /// [`json`], one object.
    Json,
}

/// Picks the incident to export from the timeline at `path`: the one with
/// id `want`, else the latest. Returns it rendered in `format`.
///
/// # Errors
///
/// An unreadable or corrupt timeline; no incident in it (`no incident has
/// been started …`); no incident with id `want` (listing the known ones).
pub fn render(
    path: &std::path::Path,
    want: Option<&str>,
    format: Format,
    now: Timestamp,
    tz: &TimeZone,
) -> anyhow::Result<String> {
    let entries = super::timeline::read(path)?;
    let all = super::replay(&entries);
    let chosen = match want {
        Some(id) => all.iter().find(|i| i.id == id).ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
            anyhow::anyhow!(
                "no incident `{id}` in {} (known: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?,
        None => all.last().ok_or_else(|| {
            anyhow::anyhow!(
                "no incident has been started here ({} has none): `:incident P1 \"title\"` in the cockpit starts one",
                path.display()
            )
        })?,
    };
    Ok(match format {
        Format::Markdown => markdown(chosen, now, tz),
        Format::Json => format!("{}\n", json(chosen, now, tz)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Severity, replay};
    use super::*;

    #[test]
    fn markdown_lists_every_entry_in_order_with_local_times() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let t0: Timestamp = "2026-11-23T18:00:00Z".parse().unwrap();
        let mk = |s: i64, kind, text: &str| Entry {
            ts: t0 + jiff::SignedDuration::from_secs(s),
            incident: "INC-20261123-180000".into(),
            operator: "ana@bastion".into(),
            kind,
            text: text.into(),
            severity: (kind == Kind::Start).then_some(Severity::P1),
            key: None,
        };
        let entries = vec![
            mk(0, Kind::Start, "checkout 5xx"),
            mk(5, Kind::Block, "db-pool.md › check-pool: exit 0"),
            mk(9, Kind::Note, "pool | saturated"),
            mk(20, Kind::Verdict, "error-rate: fail"),
            mk(65, Kind::Resolve, "rolled back"),
        ];
        let i = &replay(&entries)[0];
        let md = markdown(i, t0, &tz);
        assert!(
            md.starts_with("# INC-20261123-180000 P1: checkout 5xx\n"),
            "{md}"
        );
        assert!(
            md.contains("- Resolved: 2026-11-23 19:01:05 CET (after 1m05s)"),
            "{md}"
        );
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 2026")).collect();
        assert_eq!(rows.len(), 5, "{md}");
        assert!(rows[0].contains("19:00:00 CET") && rows[0].contains("incident started"));
        assert!(rows[1].contains("block run"));
        assert!(
            rows[2].contains("pool \\| saturated"),
            "escaped: {}",
            rows[2]
        );
        assert!(rows[3].contains("verdict"));
        assert!(rows[4].contains("incident resolved"));
        let j = json(i, t0, &tz);
        assert_eq!(j["duration_s"], 65);
        assert_eq!(j["entries"].as_array().unwrap().len(), 5);
        assert_eq!(j["entries"][2]["kind"], "note");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(7), "7s");
        assert_eq!(duration_words(245), "4m05s");
        assert_eq!(duration_words(3723), "1h02m03s");
        assert_eq!(duration_words(-3), "0s");
    }
}
