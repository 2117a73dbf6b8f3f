//! Purchases spilled to disk by customer range (DESIGN §8, one machine):
//! memory grows with customers, not purchases.
//!
//! Extract appends each purchase (32 bytes) to the bucket file of its
//! customer's range; transform then reads one bucket at a time, so at most
//! one bucket of purchases (a few tens of MiB) is in memory. Within a
//! customer, purchases keep the order they arrived in (a bucket is sorted
//! stably), which is what makes the tables the same as the in-memory path.
//! The files live in a private temporary directory removed on drop.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Range;

use chrono::{Datelike, NaiveDate};

use crate::model::{CustomerIdx, Purchase, RawDate, SuffixId};
use crate::scratch::ScratchDir;

/// Customers per bucket: 32k customers hold about 400k purchases (13 MiB)
/// at the mock's twelve per customer. A bucket's purchases, their sort
/// buffer and its store and trend rows are transform's working set beside
/// the per-customer vectors: 64k buckets made it 60 MiB at the peak, 32k
/// make it half that for twice the files (31 at a million customers).
const WIDTH: usize = 1 << 15;
const RECORD: usize = 32;

/// Bucket files being written.
pub struct Spool {
    dir: ScratchDir,
    width: usize,
    customers: usize,
    writers: Vec<Option<BufWriter<File>>>,
    counts: Vec<u64>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The finished spool, read bucket by bucket.
pub struct Spooled {
    dir: ScratchDir,
    width: usize,
    customers: usize,
    counts: Vec<u64>,
}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("dir", &self.dir.path())
            .field("purchases", &self.len())
            .finish()
    }
}

impl Spool {
    /// A spool for `customers` customers in a new directory under the
    /// system's temporary directory (`TMPDIR`).
    pub fn new(customers: usize) -> std::io::Result<Spool> {
        Spool::with_width(customers, WIDTH)
    }

    /// A spool of `width` customers per bucket (tests use small ones).
    pub fn with_width(customers: usize, width: usize) -> std::io::Result<Spool> {
        let width = width.max(1);
        let dir = ScratchDir::new("spool")?;
        let buckets = customers.div_ceil(width).max(1);
        Ok(Spool {
            dir,
            width,
            customers,
            writers: (0..buckets).map(|_| None).collect(),
            counts: vec![0; buckets],
        })
    }

    pub fn push(&mut self, p: &Purchase) -> std::io::Result<()> {
        let b = (p.customer.index() / self.width).min(self.writers.len() - 1);
        let w = match &mut self.writers[b] {
            Some(w) => w,
            slot => slot.insert(BufWriter::with_capacity(
                1 << 16,
                File::create(self.dir.path().join(format!("{b}.bin")))?,
            )),
        };
        w.write_all(&encode(p))?;
        self.counts[b] += 1;
        Ok(())
    }

    /// Purchases pushed so far.
    pub fn pushed(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn finish(self) -> std::io::Result<Spooled> {
        for w in self.writers.into_iter().flatten() {
            w.into_inner().map_err(|e| e.into_error())?.sync_data().ok();
        }
        Ok(Spooled {
            dir: self.dir,
            width: self.width,
            customers: self.customers,
            counts: self.counts,
        })
    }
}

impl Spooled {
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn buckets(&self) -> usize {
        self.counts.len()
    }

    /// Bucket `b`: its customer range and its purchases, sorted by customer
    /// (stably: arrival order within a customer).
    pub fn read(&self, b: usize) -> std::io::Result<(Range<usize>, Vec<Purchase>)> {
        let w = self.width;
        let range = (b * w).min(self.customers)..((b + 1) * w).min(self.customers);
        let mut out = Vec::with_capacity(self.counts[b] as usize);
        if self.counts[b] > 0 {
            let mut r = BufReader::with_capacity(
                1 << 16,
                File::open(self.dir.path().join(format!("{b}.bin")))?,
            );
            let mut buf = [0u8; RECORD];
            for _ in 0..self.counts[b] {
                r.read_exact(&mut buf)?;
                out.push(decode(&buf).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt spool record")
                })?);
            }
        }
        out.sort_by_key(|p| p.customer);
        Ok((range, out))
    }
}

fn encode(p: &Purchase) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..4].copy_from_slice(&(p.customer.index() as u32).to_le_bytes());
    b[4..8].copy_from_slice(&p.store().unwrap_or(u32::MAX).to_le_bytes());
    let day = |d: NaiveDate| d.num_days_from_ce() as u32;
    let (tag, v, suffix) = match p.date {
        RawDate::Null => (0u8, 0u32, 0),
        RawDate::Ymd(d) => (1, day(d), 0),
        RawDate::Dmy(d) => (2, day(d), 0),
        RawDate::Slash(d) => (3, day(d), 0),
        RawDate::Text(i) => (4, i, 0),
        RawDate::Stamp(d, s) => (5, day(d), s.index()),
    };
    b[8] = tag;
    b[9..13].copy_from_slice(&v.to_le_bytes());
    b[29..32].copy_from_slice(&suffix.to_le_bytes()[..3]);
    b[13..21].copy_from_slice(&p.amount().unwrap_or(f64::NAN).to_bits().to_le_bytes());
    b[21..29].copy_from_slice(&p.order().unwrap_or(0).to_le_bytes());
    b
}

fn decode(b: &[u8; RECORD]) -> Option<Purchase> {
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[13..21]);
    let amount = f64::from_bits(u64::from_le_bytes(w));
    w.copy_from_slice(&b[21..29]);
    let order = u64::from_le_bytes(w);
    let day = || NaiveDate::from_num_days_from_ce_opt(u32_at(9) as i32);
    let date = match b[8] {
        0 => RawDate::Null,
        1 => RawDate::Ymd(day()?),
        2 => RawDate::Dmy(day()?),
        3 => RawDate::Slash(day()?),
        4 => RawDate::Text(u32_at(9)),
        5 => RawDate::Stamp(
            day()?,
            SuffixId::new(u32::from_le_bytes([b[29], b[30], b[31], 0]))?,
        ),
        _ => return None,
    };
    let store = Some(u32_at(4)).filter(|&s| s != u32::MAX);
    Some(
        Purchase::new(
            CustomerIdx::from_index(u32_at(0) as usize),
            date,
            (!amount.is_nan()).then_some(amount),
            store,
        )
        .with_order(order),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchases_come_back_by_bucket_in_arrival_order_per_customer() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        let stamp = RawDate::Stamp(d, SuffixId::new(70_000).expect("fits"));
        let ps: Vec<Purchase> = [
            (WIDTH + 4_464, RawDate::Dmy(d), Some(1.5), Some(3), 9),
            (2, RawDate::Text(7), None, None, 0),
            (WIDTH + 4_464, RawDate::Null, Some(2.0), Some(1), 0),
            (1, RawDate::Slash(d), Some(0.1), Some(0), 1),
            (2, RawDate::Ymd(d), Some(3.0), None, 5),
            (1, stamp, None, Some(2), 0),
        ]
        .into_iter()
        .map(|(c, date, a, s, o)| {
            Purchase::new(CustomerIdx::from_index(c), date, a, s).with_order(o)
        })
        .collect();
        let mut spool = Spool::new(WIDTH + 14_464).expect("spool");
        for p in &ps {
            spool.push(p).expect("push");
        }
        let done = spool.finish().expect("finish");
        assert_eq!(done.buckets(), 2);
        assert_eq!(done.len(), 6);
        let (r0, b0) = done.read(0).expect("bucket 0");
        assert_eq!(r0, 0..WIDTH);
        // Debug text: a null amount is NaN, which `==` never matches.
        let show = |v: &[Purchase]| format!("{v:?}");
        assert_eq!(show(&b0), show(&[ps[3], ps[5], ps[1], ps[4]]));
        let (r1, b1) = done.read(1).expect("bucket 1");
        assert_eq!(r1, WIDTH..WIDTH + 14_464);
        assert_eq!(show(&b1), show(&[ps[0], ps[2]]));
        let dir = done.dir.path().to_path_buf();
        drop(done);
        assert!(!dir.exists(), "the spool removes its files");
    }
}
