//! Mobile number normalization, the join key of the whole pipeline.
//!
//! DESIGN §3: remove spaces, `-`, `(`, `)`, `.` and one leading `+`; what is
//! left must be 10–15 ASCII digits. Everything that compares or hashes a
//! mobile goes through [`normalize`], so generator, API and extract agree.

/// Why a mobile was refused; the text goes into the rejects file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    Missing,
    BadCharacter(char),
    Length(usize),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Missing => write!(f, "missing mobile"),
            Invalid::BadCharacter(c) => write!(f, "invalid mobile: unexpected character `{c}`"),
            Invalid::Length(n) => write!(f, "invalid mobile: {n} digits, expected 10 to 15"),
        }
    }
}

/// Normalize a mobile to its digits, or say why it is not one.
pub fn normalize(raw: &str) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    let mut digits = String::with_capacity(trimmed.len());
    let mut plus_seen = false;
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            // A `+` is leading when no digit came before it: `(+91) …` is common.
            '+' if !plus_seen && digits.is_empty() => plus_seen = true,
            other => return Err(Invalid::BadCharacter(other)),
        }
    }
    match digits.len() {
        0 if trimmed.is_empty() => Err(Invalid::Missing),
        10..=15 => Ok(digits),
        n => Err(Invalid::Length(n)),
    }
}

/// A normalized mobile packed into a u64 (its digits, plus its length so
/// leading zeros still count): hash keys without a heap string per customer.
pub fn key(normalized: &str) -> u64 {
    let digits = normalized.bytes().fold(0u64, |acc, b| {
        acc.wrapping_mul(10)
            .wrapping_add(u64::from(b.wrapping_sub(b'0')))
    });
    // 15 digits < 2^50, so the length fits above them.
    digits | ((normalized.len() as u64) << 50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_formats_design_allows() {
        let cases = [
            ("+919876543210", "919876543210"),
            ("919876543210", "919876543210"),
            ("+91 98765 43210", "919876543210"),
            ("+91-98765-43210", "919876543210"),
            ("(+91) 98765.43210", "919876543210"),
            ("  +91 (987) 654-3210 ", "919876543210"),
            ("9876543210", "9876543210"),
            ("123456789012345", "123456789012345"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "input {raw:?}");
        }
    }

    #[test]
    fn keys_are_unique_per_normalized_mobile() {
        assert_ne!(key("0919876543210"), key("919876543210"));
        assert_ne!(key("919876543210"), key("919876543211"));
        assert_eq!(key("999999999999999"), 999_999_999_999_999 | (15 << 50));
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases = [
            ("", Invalid::Missing),
            ("   ", Invalid::Missing),
            ("+", Invalid::Length(0)),
            ("12345", Invalid::Length(5)),
            ("1234567890123456", Invalid::Length(16)),
            ("98765abc10", Invalid::BadCharacter('a')),
            ("++919876543210", Invalid::BadCharacter('+')),
            ("91/9876543210", Invalid::BadCharacter('/')),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), Err(want), "input {raw:?}");
        }
    }
}
