//! Secrets that must never reach output: the [`DatabaseUrl`] newtype and the
//! maskers for database URLs, libpq key=value strings and API URLs (DESIGN §2).
//!
//! Masking parses; it does not pattern-match. A PostgreSQL URL's userinfo is
//! found the way tokio-postgres (the client that connects with it) finds it:
//! everything up to the first `@` after `://`, so a password holding `/`,
//! `?` or `#` unencoded is masked too. Every masked PostgreSQL string is then
//! checked against the password tokio-postgres itself parses out of the
//! original: if that password still shows (raw or percent-encoded), the whole
//! credential part is replaced, so a parser disagreement can only over-mask.
//! Not owned here: where URLs are used (load, extract).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What every secret is replaced with.
pub const MASK: &str = "***";

/// A database URL (`postgres://…`, `postgresql://…`, a libpq `key=value`
/// string, or `sqlite://PATH`) whose password never reaches logs or output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The real URL, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn masked(&self) -> String {
        mask_database_url(&self.0)
    }

    /// A libpq `key=value` connection string rather than a URL.
    pub fn is_conninfo(&self) -> bool {
        is_conninfo(&self.0)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

/// `host=… dbname=…`: the first token is `word=` and there is no scheme.
fn is_conninfo(s: &str) -> bool {
    let s = s.trim_start();
    !s.contains("://")
        && s.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Mask any database URL or key=value string.
pub fn mask_database_url(raw: &str) -> String {
    if is_conninfo(raw) {
        return verified(raw, mask_conninfo(raw));
    }
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        return verified(raw, mask_pg_url(raw));
    }
    mask_url(raw)
}

/// PostgreSQL URL: userinfo up to the first `@`, plus `password=` in the query.
fn mask_pg_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end..];
    let masked_rest = match rest.find('@') {
        Some(at) => {
            let creds = &rest[..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}{}", &rest[at..]),
                None => rest.to_owned(),
            }
        }
        None => rest.to_owned(),
    };
    mask_query_password(&format!("{}{masked_rest}", &raw[..scheme_end]))
}

/// `?password=…` (libpq takes it in the query too), any case.
fn mask_query_password(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let (base, query) = url.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASK}"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}{}", parts.join("&"))
}

/// libpq `key=value` string, values optionally single-quoted with `\'`
/// and `\\` escapes: the `password` value becomes `***`, the rest is kept.
fn mask_conninfo(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    loop {
        while let Some(&c) = chars.peek() {
            if !c.is_whitespace() {
                break;
            }
            out.push(c);
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        out.push_str(&key);
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            out.push(c);
            chars.next();
            if !c.is_whitespace() {
                // Not `key = value`: keep the rest as it is, masked whole if
                // a password may hide in it.
                return out;
            }
        }
        if chars.next().is_none() {
            return out;
        }
        out.push('=');
        while let Some(&c) = chars.peek() {
            if !c.is_whitespace() {
                break;
            }
            out.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            value.push('\'');
            chars.next();
            while let Some(c) = chars.next() {
                value.push(c);
                match c {
                    '\\' => {
                        if let Some(next) = chars.next() {
                            value.push(next);
                        }
                    }
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
                if c == '\\'
                    && let Some(next) = chars.next()
                {
                    value.push(next);
                }
            }
        }
        if key.eq_ignore_ascii_case("password") {
            out.push_str(MASK);
        } else {
            out.push_str(&value);
        }
    }
}

/// Over-mask unless tokio-postgres, reading the masked string, finds the
/// mask (or nothing) where it found the password in the original.
fn verified(raw: &str, masked: String) -> String {
    let had_password = match tokio_postgres::Config::from_str(raw) {
        Ok(config) => config.get_password().is_some(),
        // It cannot connect with it either; still never print what could
        // be a password.
        Err(_) => {
            return if masked == raw && raw.contains(['@', '=']) {
                redact_all(raw)
            } else {
                masked
            };
        }
    };
    if !had_password {
        return masked;
    }
    match tokio_postgres::Config::from_str(&masked) {
        Ok(config) if config.get_password() == Some(MASK.as_bytes()) => masked,
        _ => redact_all(raw),
    }
}

/// Keep only the scheme: the last resort.
fn redact_all(raw: &str) -> String {
    match raw.find("://") {
        Some(i) => format!("{}{MASK}", &raw[..i + 3]),
        None => MASK.to_owned(),
    }
}

/// Mask the password of any other URL (API URLs, `sqlite://`), parsed with
/// the `url` crate; a URL it cannot parse loses everything up to its last
/// `@`, where credentials would be.
pub fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_none() {
                return raw.to_owned();
            }
            if url.set_password(Some(MASK)).is_err() {
                return redact_all(raw);
            }
            url.to_string()
        }
        Err(_) => match (raw.find("://"), raw.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{MASK}{}", &raw[..s + 3], &raw[at..]),
            _ => raw.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        let cases = [
            (
                "postgres://user:secret@host:5432/db",
                "postgres://user:***@host:5432/db",
            ),
            ("postgresql://user@host/db", "postgresql://user@host/db"),
            (
                "postgres://u:p%40ss@h/db?sslmode=disable",
                "postgres://u:***@h/db?sslmode=disable",
            ),
            (
                "postgres://h/db?user=u&password=pw",
                "postgres://h/db?user=u&password=***",
            ),
            ("sqlite://segpipe.db", "sqlite://segpipe.db"),
        ];
        for (raw, want) in cases {
            let url = DatabaseUrl::new(raw);
            assert_eq!(url.to_string(), want);
            assert!(!format!("{url:?}").contains("secret"));
        }
    }

    // See: issue 8
    #[test]
    fn issue_8_password_with_slash_or_question_mark_is_masked() {
        for (raw, want) in [
            (
                "postgres://postgres:pa/ssW0rd@127.0.0.1:5432/test",
                "postgres://postgres:***@127.0.0.1:5432/test",
            ),
            (
                "postgres://postgres:pa?ss#W0rd@127.0.0.1/test",
                "postgres://postgres:***@127.0.0.1/test",
            ),
            (
                "postgresql://u:%2Fs%3Fecret@h/db?password=other",
                "postgresql://u:***@h/db?password=***",
            ),
        ] {
            assert_eq!(DatabaseUrl::new(raw).masked(), want, "{raw}");
        }
    }

    // See: issue 8
    #[test]
    fn issue_8_conninfo_password_is_masked() {
        for (raw, want) in [
            (
                "host=127.0.0.1 user=postgres password=hunter2 dbname=test",
                "host=127.0.0.1 user=postgres password=*** dbname=test",
            ),
            (
                "host=h password='a b\\' c' dbname=d",
                "host=h password=*** dbname=d",
            ),
            ("host=h password = s3cr3t", "host=h password = ***"),
            ("host=h dbname=d", "host=h dbname=d"),
        ] {
            let url = DatabaseUrl::new(raw);
            assert!(url.is_conninfo(), "{raw}");
            assert_eq!(url.masked(), want, "{raw}");
        }
    }

    #[test]
    fn api_urls_lose_their_password() {
        assert_eq!(
            mask_url("https://user:t0k/en@api.example/v1"),
            "https://***@api.example/v1"
        );
        assert_eq!(
            mask_url("http://user:tok@127.0.0.1:8000/x"),
            "http://user:***@127.0.0.1:8000/x"
        );
        assert_eq!(mask_url("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
    }

    #[test]
    fn a_password_equal_to_the_user_name_keeps_the_user() {
        let m = DatabaseUrl::new("postgres://postgres:postgres@h/db").masked();
        assert_eq!(m, "postgres://postgres:***@h/db");
    }
}
