//! Deterministic purchases for one mobile, and their JSON wire form.
//!
//! Owns the dirt the API adds on top of the clean plan from
//! [`persona::planned_purchases`]. Everything here is a pure function of
//! (seed, normalized mobile, as-of date, dirt rates): the dirt is drawn from
//! the same per-mobile RNG as the plan, never from request order, batching or
//! retries, so a client sees the same rows however it slices its requests.
//! Routing and HTTP status codes live in `routes.rs`, not here.

use chrono::{Datelike, NaiveDate};
use rand::RngExt;
use serde::{Deserialize, Serialize, Serializer};

use super::Dirt;
use crate::generate::persona;
use crate::mobile;

/// One purchase row as the API answers it (DESIGN §3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiPurchase {
    /// The mobile exactly as the client sent it.
    pub mobile: String,
    /// `YYYY-MM-DD`, sometimes `DD-MM-YYYY`, or null.
    pub date: Option<String>,
    pub amount: Option<f64>,
    pub store: Option<String>,
    /// Unique per planned purchase of the mobile; a duplicated row repeats it.
    #[serde(default)]
    pub order_id: Option<String>,
}

/// The purchases the API answers for one mobile, as sent by a client.
///
/// A mobile that does not normalize has no purchases; that is data, not an
/// error, because the original mock answered such mobiles with nothing.
pub fn purchases_for(
    seed: u64,
    as_of: NaiveDate,
    dirt: &Dirt,
    mobile_as_sent: &str,
) -> Vec<ApiPurchase> {
    let Ok(normalized) = mobile::normalize(mobile_as_sent) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    append_rows(seed, as_of, dirt, &normalized, &mut rows);
    rows.iter().map(|row| row.to_api(mobile_as_sent)).collect()
}

/// How a date cell is written, chosen by the dirt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum DateCell {
    Null,
    Ymd(NaiveDate),
    Dmy(NaiveDate),
}

impl DateCell {
    fn text(self) -> Option<String> {
        match self {
            DateCell::Null => None,
            DateCell::Ymd(d) => Some(format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())),
            DateCell::Dmy(d) => Some(format!("{:02}-{:02}-{:04}", d.day(), d.month(), d.year())),
        }
    }
}

impl Serialize for DateCell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (d, dmy) = match *self {
            DateCell::Null => return s.serialize_none(),
            DateCell::Ymd(d) => (d, false),
            DateCell::Dmy(d) => (d, true),
        };
        // Four-digit years (all real as-of dates) are written into a stack
        // buffer, skipping `core::fmt`; no String per purchase either way.
        match u32::try_from(d.year()) {
            Ok(year) if year <= 9999 => {
                let mut buf = [b'-'; 10];
                let (y, m, dd) = if dmy { (6, 3, 0) } else { (0, 5, 8) };
                put_digits(&mut buf[y..y + 4], year);
                put_digits(&mut buf[m..m + 2], d.month());
                put_digits(&mut buf[dd..dd + 2], d.day());
                s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
            }
            // `collect_str` formats straight into serde_json's output.
            _ if dmy => s.collect_str(&format_args!(
                "{:02}-{:02}-{:04}",
                d.day(),
                d.month(),
                d.year()
            )),
            _ => s.collect_str(&format_args!(
                "{:04}-{:02}-{:02}",
                d.year(),
                d.month(),
                d.day()
            )),
        }
    }
}

/// Write `n` as zero-padded decimal filling `out` (high digits dropped).
fn put_digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// One purchase before the mobile is attached; `Copy` and allocation-free.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Row {
    pub date: DateCell,
    pub amount: Option<f64>,
    pub store: Option<&'static str>,
    /// The order id, as 16 hex digits on the wire.
    pub order: u64,
}

impl Row {
    /// The row as the public struct says it goes on the wire.
    fn to_api(self, mobile_as_sent: &str) -> ApiPurchase {
        ApiPurchase {
            mobile: mobile_as_sent.to_owned(),
            date: self.date.text(),
            amount: self.amount,
            store: self.store.map(str::to_owned),
            order_id: Some(format!("{:016x}", self.order)),
        }
    }
}

/// Append the dirty rows of one normalized mobile to `out`.
pub(crate) fn append_rows(
    seed: u64,
    as_of: NaiveDate,
    dirt: &Dirt,
    normalized: &str,
    out: &mut Vec<Row>,
) {
    let persona = persona::persona_of(seed, normalized);
    let mut rng = persona::purchase_rng(seed, normalized, as_of);
    let planned = persona::planned_purchases(persona, as_of, &mut rng);
    let start = out.len();
    // Order ids come from a hash, not the RNG, so adding them changed no
    // other value the API sends.
    let first_order = crate::rng::hash(&[b"order", normalized.as_bytes(), &seed.to_le_bytes()]);
    for (i, p) in planned.iter().enumerate() {
        // Draw the same number of values per row whatever the rates are, so a
        // change to one rate does not reshuffle the other kinds of dirt.
        let date_u: f64 = rng.random();
        let amount_u: f64 = rng.random();
        let store_u: f64 = rng.random();
        let date = if date_u < dirt.null_date_rate {
            DateCell::Null
        } else if date_u < dirt.null_date_rate + dirt.dmy_date_rate {
            DateCell::Dmy(p.date)
        } else {
            DateCell::Ymd(p.date)
        };
        out.push(Row {
            date,
            amount: (amount_u >= dirt.null_amount_rate).then_some(p.amount),
            store: (store_u >= dirt.null_store_rate).then_some(p.store),
            order: first_order.wrapping_add(i as u64),
        });
    }
    let dup_u: f64 = rng.random();
    if !planned.is_empty() && dup_u < dirt.duplicate_purchase_rate {
        let i = start + rng.random_range(0..planned.len());
        // Right after the original, as a double-submitted row would appear.
        out.insert(i + 1, out[i]);
    }
}

/// The 200 body of `POST /purchase-history`, written without copying.
pub(crate) struct PurchasesBody<'a> {
    /// Mobiles as sent; `rows` refer to them by index.
    pub mobiles: &'a [&'a str],
    pub rows: &'a [(u32, Row)],
}

impl PurchasesBody<'_> {
    /// Append the JSON to `out`: byte for byte what serde_json writes for
    /// `{"purchases": [ApiPurchase, …]}` (a test holds the two together),
    /// but written by hand. Through serde every row paid a map entry per
    /// field, an escape scan of every string and `core::fmt` for the order
    /// id: about a third of the mock server's CPU. Here a mobile is escaped
    /// once per answer, not once per row, and the fixed-shape cells (dates,
    /// hex order ids) are plain byte writes; numbers and strings that may
    /// need escaping still go through serde_json, so its rules hold.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut echoes = Vec::with_capacity(self.mobiles.len() * 16);
        let mut ends = Vec::with_capacity(self.mobiles.len());
        for mobile in self.mobiles {
            write_str(&mut echoes, mobile)?;
            ends.push(echoes.len());
        }
        out.extend_from_slice(br#"{"purchases":["#);
        for (i, (m, row)) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let m = *m as usize;
            let start = match m {
                0 => 0,
                _ => ends.get(m - 1).copied().unwrap_or_default(),
            };
            let end = ends.get(m).copied().unwrap_or_default();
            out.extend_from_slice(br#"{"mobile":"#);
            match echoes.get(start..end) {
                Some(echo) => out.extend_from_slice(echo),
                None => write_str(out, "")?,
            }
            out.extend_from_slice(br#","date":"#);
            write_date(out, row.date)?;
            out.extend_from_slice(br#","amount":"#);
            match row.amount {
                Some(x) => serde::Serializer::serialize_f64(
                    &mut serde_json::Serializer::new(&mut *out),
                    x,
                )?,
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(br#","store":"#);
            match row.store {
                Some(store) => write_str(out, store)?,
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(br#","order_id":""#);
            write_hex16(out, row.order);
            out.extend_from_slice(br#""}"#);
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

/// A JSON string, quoted; plain text (the usual store names and mobiles)
/// is copied as is, anything serde_json would escape is left to it.
fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// A date cell as [`DateCell`]'s `Serialize` writes it; four-digit years
/// (all real as-of dates) without serde_json's escape scan.
fn write_date(out: &mut Vec<u8>, cell: DateCell) -> Result<(), serde_json::Error> {
    let (d, dmy) = match cell {
        DateCell::Null => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        DateCell::Ymd(d) => (d, false),
        DateCell::Dmy(d) => (d, true),
    };
    match u32::try_from(d.year()) {
        Ok(year) if year <= 9999 => {
            let mut buf = [b'-'; 12];
            buf[0] = b'"';
            buf[11] = b'"';
            let (y, m, dd) = if dmy { (7, 4, 1) } else { (1, 6, 9) };
            put_digits(&mut buf[y..y + 4], year);
            put_digits(&mut buf[m..m + 2], d.month());
            put_digits(&mut buf[dd..dd + 2], d.day());
            out.extend_from_slice(&buf);
            Ok(())
        }
        _ => serde_json::to_writer(out, &cell),
    }
}

/// `n` as 16 lower-case hex digits, as `{:016x}` writes it.
fn write_hex16(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out.extend_from_slice(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date")
    }

    fn default_dirt() -> Dirt {
        Dirt::default()
    }

    fn clean() -> Dirt {
        Dirt {
            null_date_rate: 0.0,
            dmy_date_rate: 0.0,
            null_amount_rate: 0.0,
            null_store_rate: 0.0,
            duplicate_purchase_rate: 0.0,
        }
    }

    fn mobile(i: u64) -> String {
        format!("+91{}", 9_000_000_000 + i * 7919)
    }

    #[test]
    fn purchases_are_deterministic_and_independent_of_spelling() {
        let dirt = default_dirt();
        for i in 0..300 {
            let m = mobile(i);
            let a = purchases_for(42, as_of(), &dirt, &m);
            assert_eq!(a, purchases_for(42, as_of(), &dirt, &m));
            // Another spelling of the same number: same rows, its own echo.
            let spaced = format!("{} {} {}", &m[..3], &m[3..8], &m[8..]);
            let b = purchases_for(42, as_of(), &dirt, &spaced);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.mobile, m);
                assert_eq!(y.mobile, spaced);
                assert_eq!((&x.date, x.amount, &x.store), (&y.date, y.amount, &y.store));
            }
        }
    }

    #[test]
    fn seed_and_as_of_change_the_answer() {
        let dirt = default_dirt();
        let m = mobile(3);
        let base = purchases_for(42, as_of(), &dirt, &m);
        let other_day = as_of().succ_opt().expect("valid date");
        let differs = (0..50).any(|i| {
            let m = mobile(i);
            purchases_for(42, as_of(), &dirt, &m) != purchases_for(43, as_of(), &dirt, &m)
        });
        assert!(differs, "seed must matter");
        assert_ne!(base, purchases_for(42, other_day, &dirt, &m));
    }

    #[test]
    fn clean_rows_match_the_generator_plan() {
        for i in 0..200 {
            let m = mobile(i);
            let n = mobile::normalize(&m).expect("valid mobile");
            let p = persona::persona_of(42, &n);
            let plan =
                persona::planned_purchases(p, as_of(), &mut persona::purchase_rng(42, &n, as_of()));
            let got = purchases_for(42, as_of(), &clean(), &m);
            assert_eq!(got.len(), plan.len());
            for (g, p) in got.iter().zip(&plan) {
                assert_eq!(
                    g.date.as_deref(),
                    Some(p.date.format("%Y-%m-%d").to_string().as_str())
                );
                assert_eq!(g.amount, Some(p.amount));
                assert_eq!(g.store.as_deref(), Some(p.store));
            }
        }
    }

    #[test]
    fn invalid_mobiles_get_nothing() {
        for m in ["", "abc", "12345", "+91 98765 4321x", "1234567890123456"] {
            assert!(
                purchases_for(42, as_of(), &default_dirt(), m).is_empty(),
                "{m:?}"
            );
        }
    }

    #[test]
    fn dirt_rates_are_within_tolerance() {
        let dirt = default_dirt();
        let (mut rows, mut null_date, mut dmy, mut null_amount, mut null_store) = (0, 0, 0, 0, 0);
        let (mut buyers, mut with_dup) = (0, 0);
        for i in 0..20_000 {
            let got = purchases_for(7, as_of(), &dirt, &mobile(i));
            if got.is_empty() {
                continue;
            }
            buyers += 1;
            if got.windows(2).any(|w| w[0] == w[1]) {
                with_dup += 1;
            }
            for p in &got {
                rows += 1;
                match &p.date {
                    None => null_date += 1,
                    Some(d) if d.as_bytes()[2] == b'-' => dmy += 1,
                    Some(d) => assert_eq!(d.as_bytes()[4], b'-', "{d}"),
                }
                null_amount += usize::from(p.amount.is_none());
                null_store += usize::from(p.store.is_none());
            }
        }
        let share = |n: usize, of: usize| n as f64 / of as f64;
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() < want * 0.1,
                "{what}: {got:.4} vs {want}"
            );
        };
        close(share(null_date, rows), 0.10, "null date");
        close(share(dmy, rows), 0.10, "dmy date");
        close(share(null_amount, rows), 0.05, "null amount");
        close(share(null_store, rows), 0.05, "null store");
        // Rows of one mobile never repeat by chance (distinct amounts), so an
        // adjacent equal pair is the planted duplicate.
        close(share(with_dup, buyers), 0.02, "duplicated mobiles");
    }

    #[test]
    fn zero_rates_give_clean_rows_and_full_rates_give_all_dirt() {
        let full = Dirt {
            null_date_rate: 1.0,
            dmy_date_rate: 0.0,
            null_amount_rate: 1.0,
            null_store_rate: 1.0,
            duplicate_purchase_rate: 1.0,
        };
        for i in 0..100 {
            let m = mobile(i);
            let c = purchases_for(42, as_of(), &clean(), &m);
            assert!(
                c.iter()
                    .all(|p| p.date.is_some() && p.amount.is_some() && p.store.is_some())
            );
            let d = purchases_for(42, as_of(), &full, &m);
            assert_eq!(d.len(), if c.is_empty() { 0 } else { c.len() + 1 });
            assert!(
                d.iter()
                    .all(|p| p.date.is_none() && p.amount.is_none() && p.store.is_none())
            );
        }
    }

    #[test]
    fn dates_serialize_like_their_text_for_any_year() {
        for (y, m, d) in [
            (2026, 3, 1),
            (1, 12, 31),
            (9999, 1, 9),
            (10_000, 5, 5),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
            for cell in [DateCell::Ymd(date), DateCell::Dmy(date), DateCell::Null] {
                let json = serde_json::to_value(cell).expect("serialize");
                assert_eq!(json, serde_json::json!(cell.text()), "{cell:?}");
            }
        }
        assert_eq!(DateCell::Dmy(as_of()).text().as_deref(), Some("24-11-2026"));
        assert_eq!(DateCell::Ymd(as_of()).text().as_deref(), Some("2026-11-24"));
    }

    #[test]
    fn wire_form_matches_the_public_struct() {
        let dirt = default_dirt();
        let sent = ["+91 98765 43210", "919876500001", "bad\"mobile"];
        let mut rows = Vec::new();
        let mut want = Vec::new();
        for (i, m) in sent.iter().enumerate() {
            let mut one = Vec::new();
            if let Ok(n) = mobile::normalize(m) {
                append_rows(42, as_of(), &dirt, &n, &mut one);
            }
            rows.extend(one.into_iter().map(|r| (i as u32, r)));
            want.extend(purchases_for(42, as_of(), &dirt, m));
        }
        let body = PurchasesBody {
            mobiles: &sent,
            rows: &rows,
        };
        let mut bytes = Vec::new();
        body.write_json(&mut bytes).expect("serialize");
        let got: serde_json::Value = serde_json::from_slice(&bytes).expect("parse");
        assert_eq!(got, serde_json::json!({ "purchases": want }));
    }

    /// The hand-written body is the bytes serde_json writes for the public
    /// struct, for echoes and stores that need escaping, null cells, years
    /// of any width and extreme order ids too.
    #[test]
    fn wire_bytes_are_what_serde_json_writes() {
        #[derive(Serialize)]
        struct Body {
            purchases: Vec<ApiPurchase>,
        }
        let dirt = default_dirt();
        let sent = [
            "+91 98765 43210",
            "\t+919876500001\n",
            "\u{2003}(+91) 98765.00002",
            "+919876500003",
        ];
        let mut rows = Vec::new();
        for (i, m) in sent.iter().enumerate() {
            let n = mobile::normalize(m).expect("valid mobile");
            let mut one = Vec::new();
            append_rows(42, as_of(), &dirt, &n, &mut one);
            rows.extend(one.into_iter().map(|r| (i as u32, r)));
        }
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        let odd = [
            (
                DateCell::Ymd(date(10_000, 5, 5)),
                Some(0.1),
                Some("Caf\u{e9} \"Q\"\n"),
                0,
            ),
            (
                DateCell::Dmy(date(-44, 3, 15)),
                Some(1e21),
                Some("a\\b\u{1}"),
                u64::MAX,
            ),
            (
                DateCell::Dmy(date(1, 1, 9)),
                None,
                None,
                0x0123_4567_89ab_cdef,
            ),
            (DateCell::Null, Some(-0.0), Some(""), 1),
            (
                DateCell::Ymd(date(2026, 11, 24)),
                Some(1234.5),
                Some("DMart"),
                16,
            ),
        ];
        rows.extend(odd.into_iter().map(|(date, amount, store, order)| {
            (
                3,
                Row {
                    date,
                    amount,
                    store,
                    order,
                },
            )
        }));
        let want = Body {
            purchases: rows
                .iter()
                .map(|(m, r)| r.to_api(sent[*m as usize]))
                .collect(),
        };
        let mut got = Vec::new();
        PurchasesBody {
            mobiles: &sent,
            rows: &rows,
        }
        .write_json(&mut got)
        .expect("serialize");
        assert_eq!(
            String::from_utf8(got).expect("UTF-8"),
            serde_json::to_string(&want).expect("serialize")
        );
        let mut empty = Vec::new();
        PurchasesBody {
            mobiles: &[],
            rows: &[],
        }
        .write_json(&mut empty)
        .expect("serialize");
        assert_eq!(empty, br#"{"purchases":[]}"#);
    }
}
