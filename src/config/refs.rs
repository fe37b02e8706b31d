//! `${…}` references, which values are secret, and small text checks used by
//! validation (versions, header values, control characters).
//!
//! See the module documentation of [`crate::config`] for the rule.

/// Where a string with references sits, which decides how its values are
/// treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Field {
    /// The whole value is a credential by nature (bearer token, password,
    /// credential header, secret-named `env` entry): every reference in it is
    /// a secret, and so is the resolved value itself.
    pub secret: bool,
    /// The value is an action template: a `{` in a resolved value is written
    /// `{{` so it never reads as a placeholder, and `${{` passes through (the
    /// template turns it into a literal `${`, e.g. a shell variable).
    pub template: bool,
}

/// True for a name (header, `env` key, URL query parameter, environment
/// variable or file path) that says its value is a credential: it contains
/// `token`, `secret`, `password`, `passwd`, `passphrase`, `credential`,
/// `apikey`/`api_key`/`api-key`, `signature`, `private`, `authorization` or
/// `cookie`, or one of its words (split at anything but letters and digits)
/// is `key`, `auth`, `pass`, `pwd`, `pw`, `sig`, `jwt` or `bearer`
/// (case-insensitive). `X-Api-Key`, `access_token`, `PGPASSWORD`,
/// `/run/secrets/db` are; `NAMESPACE`, `X-Probe`, `keyboard` are not.
pub fn is_secret_name(name: &str) -> bool {
    const PARTS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "apikey",
        "api_key",
        "api-key",
        "signature",
        "private",
        "authorization",
        "cookie",
    ];
    const WORDS: &[&str] = &["key", "auth", "pass", "pwd", "pw", "sig", "jwt", "bearer"];
    let l = name.to_ascii_lowercase();
    PARTS.iter().any(|p| l.contains(p))
        || l.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| WORDS.contains(&w))
}

/// Resolves the `${…}` references in `value`, pushing every value that is a
/// secret onto `secrets` (see [`crate::config`] for the rule).
///
/// Forms: `${env:VAR}`, `${file:PATH}` (trailing newline removed),
/// `${secret:env:VAR}`, `${secret:file:PATH}`.
///
/// Errors (the message never contains a resolved value): an unclosed `${`,
/// an unknown form (`${vault:x}`, `${HOME}`), an empty or invalid variable
/// name (`${env:}`), an empty path, an unset variable, an unreadable file.
pub fn resolve(value: &str, field: Field, secrets: &mut Vec<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if field.template && after.starts_with('{') {
            // `${{NAME}` in a template: a literal `${`, not a reference.
            out.push_str("${{");
            rest = &after[1..];
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unclosed `${{` in {}: write `${{env:VAR}}`, `${{file:PATH}}`, `${{secret:env:VAR}}` or `${{secret:file:PATH}}`",
                shown(value)
            ));
        };
        let reference = &after[..end];
        if reference.contains("${") {
            return Err(format!(
                "unclosed `${{` in {}: a reference ends with `}}` before the next `${{`",
                shown(value)
            ));
        }
        let (explicit, form) = match reference.strip_prefix("secret:") {
            Some(f) => (true, f),
            None => (false, reference),
        };
        let (resolved, by_name) = if let Some(var) = form.strip_prefix("env:") {
            if var.is_empty() {
                return Err(format!(
                    "`${{{reference}}}` names no environment variable: write `${{env:VAR}}`"
                ));
            }
            if !is_env_name(var) {
                return Err(format!(
                    "`${{{}}}`: {} is not an environment variable name (letters, digits and `_`, not starting with a digit)",
                    clean(reference),
                    shown(var)
                ));
            }
            let v = std::env::var(var)
                .map_err(|_| format!("environment variable `{var}` is not set"))?;
            (v, is_secret_name(var))
        } else if let Some(file) = form.strip_prefix("file:") {
            if file.trim().is_empty() {
                return Err(format!(
                    "`${{{reference}}}` names no file: write `${{file:PATH}}`"
                ));
            }
            let s = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read file {}: {e}", shown(file)))?;
            (
                s.trim_end_matches(['\n', '\r']).to_string(),
                is_secret_name(file),
            )
        } else {
            let hint = if form.contains(':') {
                ""
            } else {
                " (a shell variable in an action is written `${{NAME}`)"
            };
            return Err(format!(
                "unknown reference `${{{}}}`: use `${{env:VAR}}`, `${{file:PATH}}`, `${{secret:env:VAR}}` or `${{secret:file:PATH}}`{hint}",
                clean(reference)
            ));
        };
        if explicit || field.secret || by_name {
            secrets.push(resolved.clone());
        }
        if field.template {
            out.push_str(&resolved.replace('{', "{{"));
        } else {
            out.push_str(&resolved);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if field.secret && !field.template {
        push_credential(&out, secrets);
    }
    Ok(out)
}

/// Pushes a credential value and, for `Scheme credential` (`Bearer abc`,
/// `Basic …`), the credential alone.
pub(crate) fn push_credential(value: &str, secrets: &mut Vec<String>) {
    let v = value.trim();
    if v.is_empty() {
        return;
    }
    secrets.push(v.to_string());
    if let Some((scheme, cred)) = v.split_once(char::is_whitespace)
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !cred.trim().is_empty()
    {
        secrets.push(cred.trim().to_string());
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The credentials a URL carries: the userinfo password (or, without a
/// password, the user part, e.g. `https://TOKEN@host`), and the values of
/// query parameters whose name [`is_secret_name`] (`?token=…`, `&sig=…`), both
/// as written and percent-decoded.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..auth_end].rfind('@') {
        let userinfo = &rest[..at];
        let cred = match userinfo.split_once(':') {
            Some((_, pw)) => pw,
            None => userinfo,
        };
        push_raw_and_decoded(cred, &mut out);
    }
    if let Some(q) = url.find('?') {
        let query = &url[q + 1..];
        // The fragment is not part of the query.
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if is_secret_name(&decode(name)) {
                push_raw_and_decoded(value, &mut out);
            }
        }
    }
    out
}

fn push_raw_and_decoded(v: &str, out: &mut Vec<String>) {
    if v.is_empty() {
        return;
    }
    out.push(v.to_string());
    let d = decode(v);
    if d != v {
        out.push(d);
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Longest `--release-version` / `version`, in characters.
pub const MAX_VERSION_LEN: usize = 128;

/// Checks a release version: 1–128 characters from `A-Z a-z 0-9 . _ + -`
/// (e.g. `2.4.1`, `v1.0.0-rc.1+build.5`), not starting with `-`. A version
/// reaches actions as `{version}`, so it is a version, never a script.
///
/// Errors: a message naming the offending character (control characters
/// escaped) and the allowed set.
pub fn check_version(v: &str) -> Result<(), String> {
    let allowed = "1–128 characters from A-Z a-z 0-9 . _ + -, e.g. 2.4.1 or v1.0.0-rc.1";
    if v.is_empty() {
        return Err(format!("the version is empty; a version is {allowed}"));
    }
    if v.chars().count() > MAX_VERSION_LEN {
        return Err(format!(
            "the version is {} characters long; a version is {allowed}",
            v.chars().count()
        ));
    }
    if let Some(bad) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._+-".contains(*c)))
    {
        return Err(format!(
            "{} is not a version: {} is not allowed; a version is {allowed}",
            shown(v),
            shown(&bad.to_string())
        ));
    }
    if v.starts_with('-') {
        return Err(format!(
            "{} is not a version: it starts with `-` (it would read as an option); a version is {allowed}",
            shown(v)
        ));
    }
    Ok(())
}

/// Checks an HTTP header value from the config: no CR, LF, NUL or other
/// control character but tab (they would split or forge headers).
pub fn check_header_value(v: &str) -> Result<(), String> {
    match v.chars().find(|c| c.is_control() && *c != '\t') {
        None => Ok(()),
        Some('\r') | Some('\n') => {
            Err("a header value must not contain CR or LF (it would start a new header)".into())
        }
        Some(c) => Err(format!(
            "a header value must not contain control characters (found {})",
            c.escape_default()
        )),
    }
}

/// `text` with every control character written as an escape (`\u{1b}`,
/// `\n`), so an echoed value can neither drive the terminal nor forge a line.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A value echoed in a message: quoted, control characters escaped, cut at
/// 60 characters.
pub(crate) fn shown(v: &str) -> String {
    let cut: String = v.chars().take(60).collect();
    let more = if v.chars().count() > 60 { "…" } else { "" };
    format!("\"{}{more}\"", clean(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
            "access_token",
            "PGPASSWORD",
            "CHAT_TOKEN",
            "sig",
            "client_secret",
            "/run/secrets/db",
            "/etc/rolldeck/prom-password",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "NAMESPACE",
            "X-Probe",
            "Content-Type",
            "keyboard",
            "monkey",
            "author",
            "region",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn url_credentials() {
        let s = url_secrets("https://user:p%40ss@host/x?a=1&token=t%20k&Signature=abc#frag");
        assert!(s.contains(&"p%40ss".to_string()), "{s:?}");
        assert!(s.contains(&"p@ss".to_string()), "{s:?}");
        assert!(s.contains(&"t%20k".to_string()), "{s:?}");
        assert!(s.contains(&"t k".to_string()), "{s:?}");
        assert!(s.contains(&"abc".to_string()), "{s:?}");
        assert!(!s.contains(&"1".to_string()), "{s:?}");
        assert_eq!(url_secrets("https://ghp_tok@host/"), vec!["ghp_tok"]);
        assert!(url_secrets("http://host:9090/api?query=up").is_empty());
    }

    #[test]
    fn versions() {
        for ok in ["2.4.1", "v1.0.0-rc.1+build.5", "1_2"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1.0\";touch /tmp/x;\"",
            "1 0",
            "$(id)",
            "-rf",
            "1\n2",
            &"9".repeat(129),
        ] {
            let e = check_version(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn clean_escapes_controls() {
        assert_eq!(clean("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
    }
}
