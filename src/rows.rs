//! A report table's rows, in memory or spilled to a scratch file.
//!
//! Store summary and monthly trend rows grow with purchases (11 million at
//! a million customers, 270 MiB as structs), everything else with
//! customers. `run` spills them as transform makes them, bucket by bucket,
//! and the sinks read them back in order through a small page cache, so the
//! process's peak is set by customers (DESIGN §8); the behavior rows
//! (one per customer, 96 bytes each) are spilled as well. Checkpoints, shards and
//! tests keep them in memory; both kinds read the same through [`Rows::get`].

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use crate::model::{CustomerBehavior, CustomerIdx, PurchaseTrend, StoreSummary, YearMonth};
use crate::scratch::ScratchDir;

/// A row with a fixed-size little-endian encoding.
pub trait Record: Copy + PartialEq + fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    /// `b` is exactly `SIZE` bytes; `None` if they are not a row.
    fn decode(b: &[u8]) -> Option<Self>;
}

/// Rows per read when a spill is read whole ([`Rows::to_vec`]).
const PAGE: usize = 256;

/// Bytes per read for [`Rows::get`]: sequential readers (COPY) do one read
/// per 4 KiB, and SQLite's key-order reader, which jumps from customer to
/// customer, reads 4 KiB per jump and decodes only the rows it asks for.
/// (Pages of 256 decoded rows made that reader decode 256 rows per jump:
/// 15 s for the behavior table of a million customers.)
const GET_BYTES: usize = 4096;

pub struct Rows<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Memory(Vec<T>),
    Disk(Disk<T>),
}

struct Disk<T> {
    file: Arc<(ScratchDir, File)>,
    len: usize,
    /// The bytes last read for `get`: (first row, raw rows).
    page: Mutex<(usize, Vec<u8>)>,
    _rows: std::marker::PhantomData<T>,
}

impl<T: Record> Rows<T> {
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Memory(v) => v.len(),
            Inner::Disk(d) => d.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the rows live in a scratch file.
    pub fn is_spilled(&self) -> bool {
        matches!(self.inner, Inner::Disk(_))
    }

    /// Row `i`; `None` past the end or when the scratch file cannot be
    /// read (logged), which the sinks turn into a load error naming the row.
    pub fn get(&self, i: usize) -> Option<T> {
        match &self.inner {
            Inner::Memory(v) => v.get(i).copied(),
            Inner::Disk(d) => d.get(i),
        }
    }

    /// Every row, in order (read whole from a spill).
    pub fn to_vec(&self) -> std::io::Result<Vec<T>> {
        match &self.inner {
            Inner::Memory(v) => Ok(v.clone()),
            Inner::Disk(d) => {
                let mut out = Vec::with_capacity(d.len);
                let mut start = 0;
                while start < d.len {
                    out.extend(d.read_page(start)?);
                    start += PAGE;
                }
                Ok(out)
            }
        }
    }

    /// The rows as a vector to change, read into memory first if spilled.
    pub fn to_mut(&mut self) -> std::io::Result<&mut Vec<T>> {
        if let Inner::Disk(_) = self.inner {
            self.inner = Inner::Memory(self.to_vec()?);
        }
        match &mut self.inner {
            Inner::Memory(v) => Ok(v),
            Inner::Disk(_) => unreachable!("just read into memory"),
        }
    }

    /// Append a row to in-memory rows (checkpoint readers, tests).
    pub fn push(&mut self, row: T) -> std::io::Result<()> {
        self.to_mut()?.push(row);
        Ok(())
    }
}

impl<T: Record> Disk<T> {
    fn get(&self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let per_page = (GET_BYTES / T::SIZE).max(1);
        let start = i - i % per_page;
        // A poisoned lock only means another reader panicked mid-read; the
        // page is re-read below whenever it is not the one wanted.
        let mut page = self.page.lock().unwrap_or_else(|e| e.into_inner());
        if page.0 != start || page.1.is_empty() {
            let n = per_page.min(self.len - start);
            page.1.resize(n * T::SIZE, 0);
            page.0 = start;
            if let Err(e) = self
                .file
                .1
                .read_exact_at(&mut page.1, (start * T::SIZE) as u64)
            {
                page.1.clear();
                tracing::error!(
                    message = "Cannot read spilled report rows.",
                    row = i,
                    error = %e
                );
                return None;
            }
        }
        let at = (i - start) * T::SIZE;
        let row = page.1.get(at..at + T::SIZE).and_then(T::decode);
        if row.is_none() {
            tracing::error!(message = "Corrupt spilled report row.", row = i);
        }
        row
    }

    fn read_page(&self, start: usize) -> std::io::Result<Vec<T>> {
        let n = PAGE.min(self.len - start);
        let mut buf = vec![0u8; n * T::SIZE];
        self.file
            .1
            .read_exact_at(&mut buf, (start * T::SIZE) as u64)?;
        buf.chunks_exact(T::SIZE)
            .map(|b| {
                T::decode(b).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "corrupt spilled report row",
                    )
                })
            })
            .collect()
    }
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            inner: Inner::Memory(Vec::new()),
        }
    }
}

impl<T> From<Vec<T>> for Rows<T> {
    fn from(v: Vec<T>) -> Self {
        Rows {
            inner: Inner::Memory(v),
        }
    }
}

impl<T> FromIterator<T> for Rows<T> {
    fn from_iter<I: IntoIterator<Item = T>>(rows: I) -> Self {
        Rows::from(rows.into_iter().collect::<Vec<T>>())
    }
}

impl<T: Clone> Clone for Rows<T> {
    fn clone(&self) -> Self {
        Rows {
            inner: match &self.inner {
                Inner::Memory(v) => Inner::Memory(v.clone()),
                Inner::Disk(d) => Inner::Disk(Disk {
                    file: Arc::clone(&d.file),
                    len: d.len,
                    page: Mutex::new((0, Vec::new())),
                    _rows: std::marker::PhantomData,
                }),
            },
        }
    }
}

impl<T: Record> PartialEq for Rows<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && match (self.to_vec(), other.to_vec()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    }
}

impl<T: Record> fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Memory(v) => v.fmt(f),
            Inner::Disk(d) => write!(f, "Rows {{ spilled: {} }}", d.len),
        }
    }
}

/// Rows being spilled, in order.
pub struct Spill<T> {
    dir: ScratchDir,
    out: BufWriter<File>,
    len: usize,
    buf: Vec<u8>,
    _rows: std::marker::PhantomData<T>,
}

impl<T: Record> Spill<T> {
    /// A spill file in a new scratch directory named after `what`.
    pub fn new(what: &str) -> std::io::Result<Spill<T>> {
        let dir = ScratchDir::new(what)?;
        let out = BufWriter::with_capacity(1 << 16, File::create(dir.path().join("rows.bin"))?);
        Ok(Spill {
            dir,
            out,
            len: 0,
            buf: Vec::with_capacity(T::SIZE),
            _rows: std::marker::PhantomData,
        })
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, row: &T) -> std::io::Result<()> {
        self.buf.clear();
        row.encode(&mut self.buf);
        debug_assert_eq!(self.buf.len(), T::SIZE);
        self.out.write_all(&self.buf)?;
        self.len += 1;
        Ok(())
    }

    /// A row as [`Record::encode`] wrote it (exactly `SIZE` bytes).
    pub fn push_encoded(&mut self, row: &[u8]) -> std::io::Result<()> {
        debug_assert_eq!(row.len(), T::SIZE);
        self.out.write_all(row)?;
        self.len += 1;
        Ok(())
    }

    /// Every row's encoding, read back in one piece; the file goes.
    pub fn into_encoded(self) -> std::io::Result<Vec<u8>> {
        self.out.into_inner().map_err(|e| e.into_error())?;
        std::fs::read(self.dir.path().join("rows.bin"))
    }

    pub fn finish(self) -> std::io::Result<Rows<T>> {
        self.out.into_inner().map_err(|e| e.into_error())?;
        let file = File::open(self.dir.path().join("rows.bin"))?;
        Ok(Rows {
            inner: Inner::Disk(Disk {
                file: Arc::new((self.dir, file)),
                len: self.len,
                page: Mutex::new((0, Vec::new())),
                _rows: std::marker::PhantomData,
            }),
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    f64::from_le_bytes(x)
}

impl Record for StoreSummary {
    const SIZE: usize = 20;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend((self.customer.index() as u32).to_le_bytes());
        out.extend(self.store.to_le_bytes());
        out.extend(self.total_spent.to_le_bytes());
        out.extend(self.visit_count.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Some(StoreSummary {
            customer: CustomerIdx::from_index(u32_at(b, 0) as usize),
            store: u32_at(b, 4),
            total_spent: f64_at(b, 8),
            visit_count: u32_at(b, 16),
        })
    }
}

impl Record for PurchaseTrend {
    const SIZE: usize = 24;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend((self.customer.index() as u32).to_le_bytes());
        out.extend(self.month.year.to_le_bytes());
        out.extend(self.month.month.to_le_bytes());
        out.extend(self.total_spent.to_le_bytes());
        out.extend(self.num_purchases.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let month = u32_at(b, 8);
        (1..=12).contains(&month).then(|| PurchaseTrend {
            customer: CustomerIdx::from_index(u32_at(b, 0) as usize),
            month: YearMonth {
                year: u32_at(b, 4) as i32,
                month,
            },
            total_spent: f64_at(b, 12),
            num_purchases: u32_at(b, 20),
        })
    }
}

/// Bit `i` of the flags byte says optional field `i` has a value; an
/// absent value is written as zeros.
impl Record for CustomerBehavior {
    const SIZE: usize = 4 + 8 + 3 * 8 + 4 + 2 * 4 + 2 * 4 + 1;

    fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0u8;
        let mut opt_f64 = |bit: u8, x: Option<f64>, out: &mut Vec<u8>| {
            flags |= u8::from(x.is_some()) << bit;
            out.extend(x.unwrap_or(0.0).to_le_bytes());
        };
        out.extend((self.customer.index() as u32).to_le_bytes());
        out.extend(self.total_spent.to_le_bytes());
        opt_f64(0, self.avg_transaction_value, out);
        opt_f64(1, self.max_purchase_amount, out);
        opt_f64(2, self.min_purchase_amount, out);
        out.extend(self.purchase_count.to_le_bytes());
        let days = |d: Option<NaiveDate>| d.map(|d| d.to_epoch_days());
        let ints = [
            days(self.first_purchase),
            days(self.last_purchase),
            self.days_since_first_purchase,
            self.days_since_last_purchase,
        ];
        for (bit, x) in (3u8..).zip(ints) {
            flags |= u8::from(x.is_some()) << bit;
            out.extend(x.unwrap_or(0).to_le_bytes());
        }
        out.push(flags);
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let flags = b[Self::SIZE - 1];
        let has = |bit: u8| flags & (1 << bit) != 0;
        let opt_f64 = |bit: u8, at: usize| has(bit).then(|| f64_at(b, at));
        let opt_i32 = |bit: u8, at: usize| has(bit).then(|| u32_at(b, at) as i32);
        let date = |bit: u8, at: usize| -> Option<Option<NaiveDate>> {
            match opt_i32(bit, at) {
                None => Some(None),
                Some(days) => NaiveDate::from_epoch_days(days).map(Some),
            }
        };
        Some(CustomerBehavior {
            customer: CustomerIdx::from_index(u32_at(b, 0) as usize),
            total_spent: f64_at(b, 4),
            avg_transaction_value: opt_f64(0, 12),
            max_purchase_amount: opt_f64(1, 20),
            min_purchase_amount: opt_f64(2, 28),
            purchase_count: u32_at(b, 36),
            first_purchase: date(3, 40)?,
            last_purchase: date(4, 44)?,
            days_since_first_purchase: opt_i32(5, 48),
            days_since_last_purchase: opt_i32(6, 52),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(i: usize) -> StoreSummary {
        StoreSummary {
            customer: CustomerIdx::from_index(i / 3),
            store: (i % 7) as u32,
            total_spent: i as f64 * 1.25 - 3.0,
            visit_count: (i % 11) as u32 + 1,
        }
    }

    /// Pages end mid-table and rows are read out of order (SQLite's key
    /// order): every row comes back as written, in memory or on disk.
    #[test]
    fn spilled_rows_read_back_as_written_in_any_order() {
        let rows: Vec<StoreSummary> = (0..PAGE * 3 + 17).map(store).collect();
        let mut spill = Spill::new("rows-test").expect("spill");
        for r in &rows {
            spill.push(r).expect("push");
        }
        let disk = spill.finish().expect("finish");
        assert!(disk.is_spilled());
        assert_eq!(disk.len(), rows.len());
        for i in (0..rows.len()).rev().step_by(5).chain(0..rows.len()) {
            assert_eq!(disk.get(i), Some(rows[i]), "row {i}");
        }
        assert_eq!(disk.get(rows.len()), None);
        let memory = Rows::from(rows.clone());
        assert_eq!(disk, memory);
        assert_eq!(disk.clone().to_vec().expect("read"), rows);
    }

    #[test]
    fn trends_round_trip_and_bad_month_is_corrupt() {
        let t = PurchaseTrend {
            customer: CustomerIdx::from_index(9),
            month: YearMonth {
                year: -5,
                month: 12,
            },
            total_spent: f64::MAX,
            num_purchases: u32::MAX,
        };
        let mut b = Vec::new();
        t.encode(&mut b);
        assert_eq!(b.len(), PurchaseTrend::SIZE);
        assert_eq!(PurchaseTrend::decode(&b), Some(t));
        b[8] = 13;
        assert_eq!(PurchaseTrend::decode(&b), None);
    }

    #[test]
    fn behavior_round_trips_with_and_without_values() {
        let full = CustomerBehavior {
            customer: CustomerIdx::from_index(7),
            total_spent: 12.5,
            avg_transaction_value: Some(-0.0),
            max_purchase_amount: Some(1e12),
            min_purchase_amount: Some(0.01),
            purchase_count: 3,
            first_purchase: NaiveDate::from_ymd_opt(1969, 12, 31),
            last_purchase: NaiveDate::from_ymd_opt(2026, 11, 24),
            days_since_first_purchase: Some(0),
            days_since_last_purchase: Some(-4),
        };
        let empty = CustomerBehavior {
            customer: CustomerIdx::from_index(8),
            total_spent: 0.0,
            avg_transaction_value: None,
            max_purchase_amount: None,
            min_purchase_amount: None,
            purchase_count: 0,
            first_purchase: None,
            last_purchase: None,
            days_since_first_purchase: None,
            days_since_last_purchase: None,
        };
        for row in [full, empty] {
            let mut b = Vec::new();
            row.encode(&mut b);
            assert_eq!(b.len(), CustomerBehavior::SIZE);
            let back = CustomerBehavior::decode(&b).expect("decodes");
            // Debug text tells -0.0 from 0.0, which `==` does not.
            assert_eq!(format!("{back:?}"), format!("{row:?}"));
        }
    }

    /// The scratch directory goes with the last clone of the rows.
    #[test]
    fn spill_files_are_removed_with_the_rows() {
        let mut spill = Spill::<StoreSummary>::new("rows-test").expect("spill");
        spill.push(&store(1)).expect("push");
        let dir = spill.dir.path().to_path_buf();
        let rows = spill.finish().expect("finish");
        let copy = rows.clone();
        drop(rows);
        assert!(dir.exists());
        drop(copy);
        assert!(!dir.exists());
    }

    #[test]
    fn to_mut_reads_spilled_rows_into_memory() {
        let mut spill = Spill::new("rows-test").expect("spill");
        spill.push(&store(4)).expect("push");
        let mut rows = spill.finish().expect("finish");
        rows.push(store(5)).expect("push");
        assert!(!rows.is_spilled());
        assert_eq!(rows.to_vec().expect("read"), vec![store(4), store(5)]);
    }
}
