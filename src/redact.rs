//! Redaction of secret values.
//!
//! Secrets are the values that `${env:VAR}` and `${file:PATH}` references in
//! the config resolved to. They must never appear in logs, the journal or the
//! audit log: every string that leaves rolldeck for one of those goes through
//! [`Redactor::redact`].

/// The text that replaces a secret value.
pub const MASK: &str = "***";

/// Replaces every occurrence of known secret values with [`MASK`].
///
/// Cheap to clone; empty secrets and secrets shorter than 3 bytes are ignored
/// (masking every `a` in a log line would hide everything and protect nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Builds a redactor over the given secret values. Longer secrets are
    /// replaced first, so a secret that contains another is masked whole.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 3).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Adds one more secret value.
    pub fn add(&mut self, secret: impl Into<String>) {
        let mut all = std::mem::take(&mut self.secrets);
        all.push(secret.into());
        *self = Self::new(all);
    }

    /// Returns `text` with every secret value replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// True when no secrets are known.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_longest_first() {
        let r = Redactor::new(vec![
            "hunter2".to_string(),
            "hunter2-extra".to_string(),
            "x".to_string(),
        ]);
        assert_eq!(r.redact("a hunter2 b hunter2-extra c x"), "a *** b *** c x");
    }

    #[test]
    fn leaves_text_without_secrets_alone() {
        let r = Redactor::new(vec!["s3cr3t".to_string()]);
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(Redactor::default().is_empty());
    }
}
