//! The runbooks `rolldeck demo` offers: the repository's `runbooks/`,
//! built into the binary and written beside the demo's generated config.

use std::path::Path;

/// `(relative path, text)` of every demo runbook.
pub const FILES: &[(&str, &str)] = &[
    (
        "manual-rollback.md",
        include_str!("../../runbooks/manual-rollback.md"),
    ),
    (
        "db-pool-exhausted.md",
        include_str!("../../runbooks/db-pool-exhausted.md"),
    ),
    (
        "booking-conflict-surge.md",
        include_str!("../../runbooks/booking-conflict-surge.md"),
    ),
    (
        "line-push-failures.md",
        include_str!("../../runbooks/line-push-failures.md"),
    ),
    (
        "checklists/pre-deploy.md",
        include_str!("../../runbooks/checklists/pre-deploy.md"),
    ),
    (
        "checklists/during-deploy.md",
        include_str!("../../runbooks/checklists/during-deploy.md"),
    ),
    (
        "checklists/post-deploy.md",
        include_str!("../../runbooks/checklists/post-deploy.md"),
    ),
];

/// The runbook the demo's alert on the canary's error rate opens (its
/// `runbook_url` annotation).
pub const CANARY_ERROR_RATE_RUNBOOK: &str = "manual-rollback.md";

/// Writes [`FILES`] under `dir` (created).
///
/// # Errors
///
/// The first file or directory that cannot be written.
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    Ok(())
}

/// Writes [`FILES`] to `dir` and returns the `[runbooks]` table of the
/// demo config: `dirs = [dir]` and the variables the demo runbooks use
/// (`STABLE_URL`, `CANARY_URL`, `CONTROL_URL`, and `PROMETHEUS_URL` when
/// the demo runs one). When writing fails the reason is logged and the
/// config's load then names the missing directory.
pub fn config_table(
    dir: &Path,
    stable: &str,
    canary: &str,
    control: &str,
    prometheus: Option<&str>,
) -> String {
    if let Err(e) = write(dir) {
        tracing::warn!("cannot write the demo runbooks to {}: {e}", dir.display());
    }
    let q = |s: &str| toml_edit::Value::from(s).to_string();
    let mut vars = format!(
        "STABLE_URL = {}\nCANARY_URL = {}\nCONTROL_URL = {}\n",
        q(stable),
        q(canary),
        q(control)
    );
    if let Some(p) = prometheus {
        vars.push_str(&format!("PROMETHEUS_URL = {}\n", q(p)));
    }
    format!(
        "[runbooks]\ndirs = [{}]\ntimeout = \"30s\"\n\n[runbooks.vars]\n{vars}",
        q(&dir.to_string_lossy())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every demo runbook parses without an error-severity problem, and
    /// the demo's shell and PromQL blocks need only the demo's variables
    /// (or ones the operator is asked for).
    #[test]
    fn demo_runbooks_parse_cleanly() {
        for (rel, text) in FILES {
            let rb = super::super::parse(text);
            let errors: Vec<_> = rb
                .problems
                .iter()
                .filter(|p| p.severity == super::super::Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{rel}: {errors:?}");
            assert!(rb.title.is_some(), "{rel} has no title");
        }
        let rb = super::super::parse(FILES[0].1);
        assert!(rb.block("rollback-traffic").unwrap().attributes.confirm);
        assert_eq!(
            rb.block("current-weight").unwrap().variables,
            ["CONTROL_URL"]
        );
    }
}
