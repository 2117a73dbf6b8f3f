//! The date texts of purchases that are not one of the three plain formats
//! (DESIGN §3), kept so nothing is lost: each purchase stores a small id,
//! the texts live here once.
//!
//! A real transaction log stamps every purchase with a date-time, so at a
//! million customers there are 12 million of them; kept one string each,
//! they were 500 MiB and the spooled transform re-read all of them per
//! bucket (123 s against 4 s with plain dates). So an ISO date-time is
//! split: its calendar date goes in the purchase (`RawDate::Stamp`) and the
//! rest (`T10:00:00Z`) is interned here, one entry per distinct time and
//! offset; any other text is interned whole. Interning stops at
//! `MAX_INTERNED` distinct texts; later new ones are appended uninterned,
//! still lossless, only no longer bounded (sub-second stamps can do that).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::model::{RawDate, SuffixId};

/// Distinct texts interned at most (a few dozen MiB); below `SuffixId`'s
/// 2^24, so every interned suffix has an id.
const MAX_INTERNED: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OddDates {
    texts: Vec<String>,
    ids: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl OddDates {
    /// Entry `i` (a whole text, or a date-time's suffix); `""` past the end.
    pub fn get(&self, i: u32) -> &str {
        self.texts.get(i as usize).map_or("", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// A text that is no accepted date format: kept whole.
    pub(crate) fn whole(&mut self, text: &str) -> RawDate {
        RawDate::Text(self.entry(text))
    }

    /// `text` when it is an ISO 8601 date-time (DESIGN §3) written
    /// `YYYY-MM-DD` then `T` or a space: its date and interned rest.
    pub(crate) fn stamp(&mut self, text: &str) -> Option<RawDate> {
        let (day, rest) = (text.get(..10)?, text.get(10..)?);
        if !rest.starts_with(['T', ' ']) {
            return None;
        }
        let Some(RawDate::Ymd(date)) = crate::model::classify_digits(day) else {
            return None;
        };
        // Whether the rest is a valid time and offset does not depend on
        // the date, so a known rest needs no parse.
        let id = match self.ids.get(rest) {
            Some(&id) => id,
            None => {
                iso_datetime_date(text)?;
                self.entry(rest)
            }
        };
        Some(match SuffixId::new(id) {
            Some(s) => RawDate::Stamp(date, s),
            None => self.whole(text),
        })
    }

    /// Append `other`'s entries (a batch's, made on another thread) and
    /// give its dates in this table's ids.
    pub(crate) fn absorb(
        &mut self,
        other: OddDates,
    ) -> impl Fn(RawDate, &mut OddDates) -> RawDate + use<> {
        let ids: Vec<u32> = other.texts.iter().map(|t| self.entry(t)).collect();
        move |d, odd| match d {
            RawDate::Text(i) => RawDate::Text(ids[i as usize]),
            RawDate::Stamp(date, s) => {
                let id = ids[s.index() as usize];
                match SuffixId::new(id) {
                    Some(s) => RawDate::Stamp(date, s),
                    None => {
                        let whole = stamp_text(date, odd.get(id));
                        odd.whole(&whole)
                    }
                }
            }
            d => d,
        }
    }

    /// The id of `text`, interned while there is room.
    fn entry(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        self.texts.push(text.to_owned());
        if self.ids.len() < MAX_INTERNED {
            self.ids.insert(text.to_owned(), id);
        }
        id
    }
}

/// The calendar date of an ISO 8601 date-time as written (`2026-10-01T10:00:00Z`,
/// `2026-10-01 10:00:00`, `2026-10-01T10:00:00+05:30`, with or without
/// seconds and fractions): DESIGN §3 takes the date as written, whatever the
/// offset. `None` for anything else.
pub fn iso_datetime_date(text: &str) -> Option<NaiveDate> {
    use chrono::{DateTime, NaiveDateTime};
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    const ZONED: [&str; 6] = [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ];
    let zulu = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .unwrap_or(text);
    let ok = NAIVE
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(zulu, f).is_ok())
        || ZONED
            .iter()
            .any(|f| DateTime::parse_from_str(text, f).is_ok());
    ok.then_some(date)
}

/// `date` as `YYYY-MM-DD` (a stamp's date was written so: 4-digit year).
pub(crate) fn ymd(date: NaiveDate) -> String {
    ymd_digits(date).iter().map(|&b| char::from(b)).collect()
}

/// `ymd` without a String: `text_key` runs once per stamped purchase.
fn ymd_digits(date: NaiveDate) -> [u8; 10] {
    let (y, m, d) = (date.year().unsigned_abs(), date.month(), date.day());
    let digit = |n: u32| b'0' + (n % 10) as u8;
    [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(d / 10),
        digit(d),
    ]
}

/// The whole text of a date-time: its date, then its rest.
pub(crate) fn stamp_text(date: NaiveDate, rest: &str) -> String {
    ymd(date) + rest
}

/// FNV-1a of a raw date's whole text, without building it: the key that
/// makes two purchases exact duplicates (`order_key` of the text).
pub(crate) fn text_key(d: RawDate, odd: &OddDates) -> Option<u64> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match d {
        RawDate::Text(i) => feed(odd.get(i).as_bytes()),
        RawDate::Stamp(date, s) => {
            feed(&ymd_digits(date));
            feed(odd.get(s.index()).as_bytes());
        }
        _ => return None,
    }
    Some(hash.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::order_key;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    /// See: issue 11. A year of purchases stamped at three times of day
    /// holds three entries, and each date and text comes back.
    #[test]
    fn issue_11_date_times_share_their_rest_so_memory_stays_flat() {
        let mut odd = OddDates::default();
        let first = d(2025, 1, 1);
        for i in 0..10_000u32 {
            let date = first + chrono::Days::new(u64::from(i % 365));
            let text = format!("{}T{:02}:00:00Z", ymd(date), 9 + i % 3);
            let got = RawDate::classify(Some(&text), &mut odd);
            assert_eq!(got, RawDate::Stamp(date, got_suffix(got)), "{text}");
            assert_eq!(got.text(&odd), Some(text));
        }
        assert_eq!(odd.len(), 3);
    }

    fn got_suffix(d: RawDate) -> SuffixId {
        match d {
            RawDate::Stamp(_, s) => s,
            other => panic!("not a stamp: {other:?}"),
        }
    }

    /// Every form DESIGN §3 allows is a stamp and comes back as written;
    /// a broken time, a date that is not `YYYY-MM-DD`, or leading space
    /// stays whole text.
    #[test]
    fn stamps_are_exactly_the_iso_date_times_and_lossless() {
        let mut odd = OddDates::default();
        for text in [
            "2026-10-01T10:00:00Z",
            "2026-10-01 10:00:00",
            "2026-10-01T10:00:00+05:30",
            "2026-10-01 10:00:00.123-0800",
            "2026-10-01T10:00",
            "2026-10-01T23:59:60z",
        ] {
            let d = RawDate::classify(Some(text), &mut odd);
            assert!(matches!(d, RawDate::Stamp(..)), "{text}: {d:?}");
            assert_eq!(d.text(&odd).as_deref(), Some(text));
        }
        for text in [
            "2026-10-01T25:00:00Z",
            "2026-10-01T10:00:00 UTC",
            "2026-02-30T10:00:00Z",
            "26-10-01T10:00:00Z",
            " 2026-10-01T10:00:00Z",
            "2026-10-01X10:00:00Z",
            "12/1/2010 8:26",
        ] {
            let d = RawDate::classify(Some(text), &mut odd);
            assert!(matches!(d, RawDate::Text(_)), "{text}: {d:?}");
            assert_eq!(d.text(&odd).as_deref(), Some(text));
        }
    }

    /// An odd text seen again is the same entry: memory grows with the
    /// distinct texts, not the purchases.
    #[test]
    fn repeated_odd_texts_are_stored_once() {
        let mut odd = OddDates::default();
        let a = RawDate::classify(Some("12/1/2010 8:26"), &mut odd);
        let b = RawDate::classify(Some("12/1/2010 8:26"), &mut odd);
        assert_eq!(a, b);
        assert_eq!(odd.len(), 1);
    }

    /// The duplicate key is the whole text's, however it is stored.
    #[test]
    fn text_key_is_the_whole_texts_order_key() {
        let mut odd = OddDates::default();
        for text in ["2026-10-01T10:00:00Z", "12/1/2010 8:26"] {
            let d = RawDate::classify(Some(text), &mut odd);
            assert_eq!(text_key(d, &odd), Some(order_key(text)), "{text}");
        }
    }

    /// A batch's table merged into another keeps every date's text, and
    /// shares the entries both have.
    #[test]
    fn absorbed_dates_keep_their_texts() {
        let mut main = OddDates::default();
        let first = RawDate::classify(Some("2026-10-01T10:00:00Z"), &mut main);
        let mut batch = OddDates::default();
        let texts = ["2026-11-02T10:00:00Z", "junk", "2026-11-02T11:00:00Z"];
        let dates: Vec<RawDate> = texts
            .iter()
            .map(|t| RawDate::classify(Some(t), &mut batch))
            .collect();
        let remap = main.absorb(batch);
        for (d, text) in dates.into_iter().zip(texts) {
            let d = remap(d, &mut main);
            assert_eq!(d.text(&main).as_deref(), Some(text));
        }
        assert_eq!(first.text(&main).as_deref(), Some("2026-10-01T10:00:00Z"));
        assert_eq!(main.len(), 3, "T10:00:00Z once, junk, T11:00:00Z");
    }

    // See: issue 9 (moved here from clean)
    #[test]
    fn issue_9_iso_datetimes_take_the_calendar_date_as_written() {
        for text in [
            "2026-10-01T10:00:00Z",
            "2026-10-01T23:30:00+05:30",
            "2026-10-01T23:30:00-0800",
            "2026-10-01 10:00:00",
            "2026-10-01 10:00",
            "2026-10-01T10:00:00.123456Z",
        ] {
            assert_eq!(iso_datetime_date(text), Some(d(2026, 10, 1)), "{text}");
        }
        for text in [
            "2026-10-01",
            "2026-10-01Tnoon",
            "01-10-2026 10:00",
            "yesterday",
        ] {
            assert_eq!(iso_datetime_date(text), None, "{text}");
        }
    }
}
