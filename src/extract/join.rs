//! Joining: purchases to customers (done per batch in `client`), and the
//! ground-truth personas to customers, into one `Joined`.

use std::collections::HashMap;
use std::path::Path;

use super::Error;
use super::client::Fetched;
use super::customers::Validated;
use crate::mobile;
use crate::model::{Joined, Persona};

/// Truth personas by `mobile::key` of the normalized mobile.
pub type Truth = HashMap<u64, Persona>;

/// Read a `mobile,persona` truth file.
pub fn read_truth(path: &Path) -> Result<Truth, Error> {
    let bad = |line: u64, message: String| Error::Truth {
        path: path.to_owned(),
        line,
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(1, e.to_string()))?;
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| bad(1, format!("missing column `{name}`")))
    };
    let (m, p) = (col("mobile")?, col("persona")?);
    let mut truth = Truth::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| bad(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let mobile = mobile::normalize(record.get(m).unwrap_or_default())
            .map_err(|e| bad(line, e.to_string()))?;
        let persona_text = record.get(p).unwrap_or_default();
        let persona = Persona::parse(persona_text)
            .ok_or_else(|| bad(line, format!("unknown persona `{persona_text}`")))?;
        truth.insert(mobile::key(&mobile), persona);
    }
    Ok(truth)
}

/// Put validated customers, fetched purchases and truth together.
pub fn assemble(
    validated: Validated,
    fetched: Fetched,
    truth: Option<&Truth>,
    spool: Option<std::sync::Arc<crate::spool::Spooled>>,
) -> Joined {
    let mut quality = validated.quality;
    quality.add(
        "purchases_fetched",
        fetched.purchases.len() as u64
            + spool.as_ref().map_or(0, |s| s.len())
            + fetched.unmatched
            + fetched.rejects.len() as u64,
    );
    quality.add("purchases_unmatched_dropped", fetched.unmatched);
    if !fetched.reject_header.is_empty() {
        quality.add("purchases_rejected", fetched.rejects.len() as u64);
    }
    let truth = validated.truth.or_else(|| {
        truth.map(|t| {
            validated
                .customers
                .mobiles()
                .map(|m| t.get(&mobile::key(m)).copied())
                .collect::<Vec<_>>()
        })
    });
    Joined {
        customers: validated.customers,
        positions: validated.positions,
        purchases: fetched.purchases,
        spool,
        stores: fetched.stores,
        odd_dates: fetched.odd_dates,
        source_header: validated.header,
        rejects: validated.rejects,
        purchase_rejects: fetched.rejects,
        purchase_header: fetched.reject_header,
        truth,
        quality,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_file_is_read_by_normalized_mobile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        std::fs::write(
            &path,
            "persona,mobile\nchampion,+91 98765 43210\nlapsed,919876543211\n",
        )
        .expect("write");
        let t = read_truth(&path).expect("truth");
        assert_eq!(
            t.get(&mobile::key("919876543210")),
            Some(&Persona::Champion)
        );
        assert_eq!(t.get(&mobile::key("919876543211")), Some(&Persona::Lapsed));
        std::fs::write(&path, "mobile,persona\n+919876543210,wizard\n").expect("write");
        let err = read_truth(&path).expect_err("bad persona");
        assert!(
            err.to_string()
                .ends_with("t.csv:2: unknown persona `wizard`"),
            "{err}"
        );
    }
}
