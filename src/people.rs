//! The validated customers, by column: what extract hands to transform and
//! what `customer_segments` completes (issue 11: memory set by customers).
//!
//! As a `Vec<Customer>` a customer was 72 bytes plus two heap strings
//! (mobile and name, 32 bytes each from the allocator), and the strings,
//! freed in a million small pieces, stayed resident after transform had
//! copied them. Here mobiles and names live in two text arenas and the
//! demographics in a vector each, with a NaN of one reserved bit pattern for
//! a missing income: about 56 bytes a customer, in a few large blocks.
//! [`Customer`] stays the row type of a single customer (validation, tests).

use std::collections::HashMap;

use crate::mobile;
use crate::model::{Customer, CustomerIdx, Gender};

/// Customers by `mobile::key`: looked up once per fetched purchase, so a
/// fast hasher rather than SipHash.
pub type MobileIndex = HashMap<u64, CustomerIdx, foldhash::fast::RandomState>;

/// The bit pattern that means "no value" in an `f64` column. A NaN with a
/// payload no arithmetic produces, so a real NaN (refused by every sink)
/// still reads back as `Some(NaN)` and stays an error, not a NULL.
const NULL_BITS: u64 = 0x7ff8_5e9e_0000_0001;

pub(crate) fn put(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::from_bits(NULL_BITS))
}

pub(crate) fn take(x: f64) -> Option<f64> {
    (x.to_bits() != NULL_BITS).then_some(x)
}

/// Strings end to end in one buffer; `ends[i]` is where string `i` ends,
/// with [`Texts::NULL`] set when the value is missing. A `u64` end, not
/// `u32`, so no amount of text can wrap an offset.
#[derive(Clone, Debug, Default)]
struct Texts {
    text: String,
    ends: Vec<u64>,
}

impl Texts {
    const NULL: u64 = 1 << 63;

    fn with_capacity(rows: usize, bytes: usize) -> Texts {
        Texts {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, s: Option<&str>) {
        self.text.push_str(s.unwrap_or(""));
        let end = self.text.len() as u64;
        self.ends
            .push(if s.is_some() { end } else { end | Texts::NULL });
    }

    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        if end & Texts::NULL != 0 {
            return None;
        }
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] & !Texts::NULL,
        };
        self.text.get(start as usize..end as usize)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Customers by column: mobile, name and demographics.
#[derive(Clone, Debug, Default)]
pub struct People {
    mobiles: Texts,
    names: Texts,
    age: Vec<Option<u16>>,
    income: Vec<f64>,
    gender: Vec<Option<Gender>>,
}

impl People {
    pub fn len(&self) -> usize {
        self.mobiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Customer `i`'s normalized mobile (`None` past the end).
    pub fn mobile(&self, i: usize) -> Option<&str> {
        self.mobiles.get(i)
    }

    /// Customer `i`'s mobile, `""` past the end: for the callers that index
    /// customers they were given (a batch range, a purchase's customer).
    pub fn mobile_at(&self, i: usize) -> &str {
        self.mobile(i).unwrap_or_default()
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i)
    }

    pub fn age(&self, i: usize) -> Option<u16> {
        self.age.get(i).copied().flatten()
    }

    pub fn income(&self, i: usize) -> Option<f64> {
        self.income.get(i).copied().and_then(take)
    }

    pub fn gender(&self, i: usize) -> Option<Gender> {
        self.gender.get(i).copied().flatten()
    }

    /// Every mobile, in customer order.
    pub fn mobiles(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.mobile_at(i))
    }

    /// Each customer's index by `mobile::key` of its mobile: how extract
    /// joins purchases to customers, whatever their source.
    pub fn index_by_mobile(&self) -> MobileIndex {
        self.mobiles()
            .enumerate()
            .map(|(i, m)| (mobile::key(m), CustomerIdx::from_index(i)))
            .collect()
    }

    /// Customer `i` with its raw demographics and no strings: what the
    /// purchase half of transform reads per customer.
    pub fn demographics(&self, i: usize) -> Customer {
        Customer {
            mobile: String::new(),
            name: None,
            age: self.age(i),
            income: self.income(i),
            gender: self.gender(i),
        }
    }

    /// Customer `i` as an owned row (`None` past the end).
    pub fn get(&self, i: usize) -> Option<Customer> {
        Some(Customer {
            mobile: self.mobile(i)?.to_owned(),
            name: self.name(i).map(str::to_owned),
            age: self.age(i),
            income: self.income(i),
            gender: self.gender(i),
        })
    }

    /// Every customer as an owned row (checkpoints, tests).
    pub fn iter(&self) -> impl Iterator<Item = Customer> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Customers `range` with their demographics only (empty mobiles and
    /// no names): a bucket of the spooled transform.
    pub fn demographics_of(&self, range: std::ops::Range<usize>) -> People {
        let mut out = People::with_capacity(range.len(), 0, 0);
        for i in range {
            out.push_parts("", None, self.age(i), self.income(i), self.gender(i));
        }
        out
    }

    pub(crate) fn with_capacity(rows: usize, mobile_bytes: usize, name_bytes: usize) -> People {
        People {
            mobiles: Texts::with_capacity(rows, mobile_bytes),
            names: Texts::with_capacity(rows, name_bytes),
            age: Vec::with_capacity(rows),
            income: Vec::with_capacity(rows),
            gender: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, c: &Customer) {
        self.push_parts(&c.mobile, c.name.as_deref(), c.age, c.income, c.gender);
    }

    pub(crate) fn push_parts(
        &mut self,
        mobile: &str,
        name: Option<&str>,
        age: Option<u16>,
        income: Option<f64>,
        gender: Option<Gender>,
    ) {
        self.mobiles.push(Some(mobile));
        self.names.push(name);
        self.age.push(age);
        self.income.push(put(income));
        self.gender.push(gender);
    }

    /// Replace every age and income with these (after median imputation,
    /// in customer order): transform segments the imputed values, and the
    /// raw ones are not read again, so they are not kept beside them.
    pub fn impute(&mut self, ages: Vec<Option<u16>>, incomes: Vec<Option<f64>>) {
        debug_assert!(ages.len() == self.len() && incomes.len() == self.len());
        self.age = ages;
        self.income.clear();
        self.income.extend(incomes.into_iter().map(put));
    }

    /// Replace customer `i`'s age and income (imputed, rounded): how the
    /// report's values take the place of the raw ones without a copy.
    pub(crate) fn set_demographics(&mut self, i: usize, age: Option<u16>, income: Option<f64>) {
        if let (Some(a), Some(x)) = (self.age.get_mut(i), self.income.get_mut(i)) {
            *a = age;
            *x = put(income);
        }
    }
}

impl PartialEq for People {
    /// Customer by customer, as `Vec<Customer>`s compared.
    fn eq(&self, other: &People) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<Vec<Customer>> for People {
    /// Consumes the customers; the arenas are sized exactly up front.
    fn from(customers: Vec<Customer>) -> People {
        let mobile_bytes = customers.iter().map(|c| c.mobile.len()).sum();
        let name_bytes = customers
            .iter()
            .map(|c| c.name.as_ref().map_or(0, String::len))
            .sum();
        let mut people = People::with_capacity(customers.len(), mobile_bytes, name_bytes);
        for c in customers {
            people.push(&c);
        }
        people
    }
}

impl FromIterator<Customer> for People {
    fn from_iter<I: IntoIterator<Item = Customer>>(rows: I) -> People {
        let mut people = People::default();
        for c in rows {
            people.push(&c);
        }
        people
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(i: u32) -> Customer {
        Customer {
            mobile: format!("91987650{i:04}"),
            name: i.is_multiple_of(2).then(|| format!("c{i}")),
            age: (!i.is_multiple_of(3)).then_some(30),
            income: (!i.is_multiple_of(4)).then_some(1000.5),
            gender: (!i.is_multiple_of(5)).then_some(Gender::Female),
        }
    }

    #[test]
    fn customers_come_back_as_they_went_in_nulls_and_empty_texts_included() {
        let mut rows: Vec<Customer> = (0..20).map(customer).collect();
        rows[3].name = Some(String::new());
        rows[7].income = Some(f64::NAN);
        let people: People = rows.iter().cloned().collect();
        assert_eq!(people.len(), 20);
        let back: Vec<Customer> = people.iter().collect();
        assert!(back[7].income.is_some_and(f64::is_nan));
        assert_eq!(
            (back[3].name.as_deref(), back[2].name.as_deref()),
            (Some(""), Some("c2"))
        );
        rows[7].income = None;
        let mut back = back;
        back[7].income = None;
        assert_eq!(back, rows);
        assert_eq!(people.get(20), None);
        assert_eq!(people.mobile_at(20), "");
        assert_eq!(
            People::from(rows.clone()).iter().nth(5),
            Some(rows[5].clone())
        );
    }

    #[test]
    fn a_bucket_keeps_the_demographics_and_drops_the_strings() {
        let people: People = (0..10).map(customer).collect();
        let bucket = people.demographics_of(4..8);
        assert_eq!(bucket.len(), 4);
        for (j, i) in (4..8).enumerate() {
            assert_eq!(bucket.demographics(j), people.demographics(i));
            assert_eq!((bucket.mobile(j), bucket.name(j)), (Some(""), None));
        }
    }
}
