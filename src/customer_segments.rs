//! customer_segments stored by column: one row per valid customer, the
//! biggest per-customer table of a report, kept compact (issue 11: memory
//! set by customers).
//!
//! As a `Vec<CustomerSegment>` a row was 152 bytes plus two heap strings
//! (mobile, name: 32 bytes each from the allocator); here mobiles and names
//! live in two text arenas and every other field in a vector of its own,
//! with a NaN of one reserved bit pattern for a missing money or ratio
//! value, about 115 bytes a row in all. [`People`] (`crate::people`) is the
//! part known before segmenting, who the customers are: the validator
//! writes it, so no stage holds a `String` per customer, and `aggregate`
//! completes it into [`CustomerSegments`] in place. Readers get rows as
//! [`CustomerSegmentRef`] views (no allocation); the owned
//! [`CustomerSegment`] stays the row type of checkpoints and tests.
//!
//! This file owns the layout only; what the values mean is DESIGN §5 and
//! `transform::aggregate`.

#[cfg(test)]
use crate::model::Customer;
use crate::model::{CustomerSegment, Gender};
pub use crate::people::People;
use crate::people::{put, take};

/// The customer_segments rows of a report, by column (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct CustomerSegments {
    /// Mobile, name, gender; age and income as imputed and rounded.
    people: People,
    clv: Vec<f64>,
    avg_purchase_amount: Vec<f64>,
    purchase_count: Vec<u32>,
    days_since_last_purchase: Vec<Option<i32>>,
    purchase_frequency: Vec<f64>,
    segment: Vec<u32>,
    /// Index into `labels` (a segment's label lives once, not per row).
    label: Vec<u32>,
    labels: Vec<String>,
    scores: Vec<[Option<u8>; 3]>,
}

/// One customer_segments row, borrowed from [`CustomerSegments`]: the
/// fields of [`CustomerSegment`] without owning its strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomerSegmentRef<'a> {
    pub mobile: &'a str,
    pub name: Option<&'a str>,
    pub age: Option<u16>,
    pub income: Option<f64>,
    pub gender: Option<Gender>,
    pub clv: f64,
    pub avg_purchase_amount: Option<f64>,
    pub purchase_count: u32,
    pub days_since_last_purchase: Option<i32>,
    pub purchase_frequency: Option<f64>,
    pub segment: u32,
    pub segment_label: &'a str,
    pub r_score: Option<u8>,
    pub f_score: Option<u8>,
    pub m_score: Option<u8>,
}

impl CustomerSegmentRef<'_> {
    pub fn to_owned(&self) -> CustomerSegment {
        CustomerSegment {
            mobile: self.mobile.to_owned(),
            name: self.name.map(str::to_owned),
            age: self.age,
            income: self.income,
            gender: self.gender,
            clv: self.clv,
            avg_purchase_amount: self.avg_purchase_amount,
            purchase_count: self.purchase_count,
            days_since_last_purchase: self.days_since_last_purchase,
            purchase_frequency: self.purchase_frequency,
            segment: self.segment,
            segment_label: self.segment_label.to_owned(),
            r_score: self.r_score,
            f_score: self.f_score,
            m_score: self.m_score,
        }
    }
}

/// The per-customer values `aggregate` adds to a [`People`] row, and the
/// age and income the row reports in place of the people's.
#[derive(Clone, Copy, Debug)]
pub struct Segmented {
    pub age: Option<u16>,
    pub income: Option<f64>,
    pub clv: f64,
    pub avg_purchase_amount: Option<f64>,
    pub purchase_count: u32,
    pub days_since_last_purchase: Option<i32>,
    pub purchase_frequency: Option<f64>,
    pub segment: u32,
    pub scores: [Option<u8>; 3],
}

impl CustomerSegments {
    /// Complete `people` row by row: `row(i, &people)` gives customer i's
    /// values; segment `s`'s label is `labels[s]`. `people` is moved, not
    /// copied. Rows are asked for last to first, so the caller can free its
    /// per-customer inputs from the end while the columns grow (the
    /// columns are reversed in place at the end).
    pub fn complete(
        mut people: People,
        labels: &[String],
        mut row: impl FnMut(usize, &People) -> Segmented,
    ) -> CustomerSegments {
        let n = people.len();
        let mut t = CustomerSegments {
            clv: Vec::with_capacity(n),
            avg_purchase_amount: Vec::with_capacity(n),
            purchase_count: Vec::with_capacity(n),
            days_since_last_purchase: Vec::with_capacity(n),
            purchase_frequency: Vec::with_capacity(n),
            segment: Vec::with_capacity(n),
            label: Vec::with_capacity(n),
            labels: labels.to_vec(),
            scores: Vec::with_capacity(n),
            people: People::default(),
        };
        for i in (0..n).rev() {
            let r = row(i, &people);
            people.set_demographics(i, r.age, r.income);
            t.clv.push(r.clv);
            t.avg_purchase_amount.push(put(r.avg_purchase_amount));
            t.purchase_count.push(r.purchase_count);
            t.days_since_last_purchase.push(r.days_since_last_purchase);
            t.purchase_frequency.push(put(r.purchase_frequency));
            t.segment.push(r.segment);
            t.label.push(r.segment);
            t.scores.push(r.scores);
        }
        t.clv.reverse();
        t.avg_purchase_amount.reverse();
        t.purchase_count.reverse();
        t.days_since_last_purchase.reverse();
        t.purchase_frequency.reverse();
        t.segment.reverse();
        t.label.reverse();
        t.scores.reverse();
        t.people = people;
        t
    }

    pub fn len(&self) -> usize {
        self.people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Customer `i`'s mobile (`None` past the end).
    pub fn mobile(&self, i: usize) -> Option<&str> {
        self.people.mobile(i)
    }

    /// Row `i` (`None` past the end).
    pub fn get(&self, i: usize) -> Option<CustomerSegmentRef<'_>> {
        let mobile = self.people.mobile(i)?;
        let [r_score, f_score, m_score] = self.scores[i];
        Some(CustomerSegmentRef {
            mobile,
            name: self.people.name(i),
            age: self.people.age(i),
            income: self.people.income(i),
            gender: self.people.gender(i),
            clv: self.clv[i],
            avg_purchase_amount: take(self.avg_purchase_amount[i]),
            purchase_count: self.purchase_count[i],
            days_since_last_purchase: self.days_since_last_purchase[i],
            purchase_frequency: take(self.purchase_frequency[i]),
            segment: self.segment[i],
            segment_label: self
                .labels
                .get(self.label[i] as usize)
                .map_or("", String::as_str),
            r_score,
            f_score,
            m_score,
        })
    }

    /// Row `i`; panics past the end, like indexing a slice.
    pub fn row(&self, i: usize) -> CustomerSegmentRef<'_> {
        match self.get(i) {
            Some(r) => r,
            None => panic!("customer row {i} out of range ({} rows)", self.len()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = CustomerSegmentRef<'_>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// Every row as an owned `CustomerSegment` (tests, edits).
    pub fn to_vec(&self) -> Vec<CustomerSegment> {
        self.iter().map(|r| r.to_owned()).collect()
    }

    fn push(&mut self, c: &CustomerSegment) {
        self.people
            .push_parts(&c.mobile, c.name.as_deref(), c.age, c.income, c.gender);
        self.clv.push(c.clv);
        self.avg_purchase_amount.push(put(c.avg_purchase_amount));
        self.purchase_count.push(c.purchase_count);
        self.days_since_last_purchase
            .push(c.days_since_last_purchase);
        self.purchase_frequency.push(put(c.purchase_frequency));
        self.segment.push(c.segment);
        let label = match self.labels.iter().position(|l| *l == c.segment_label) {
            Some(at) => at,
            None => {
                self.labels.push(c.segment_label.clone());
                self.labels.len() - 1
            }
        };
        self.label.push(label as u32);
        self.scores.push([c.r_score, c.f_score, c.m_score]);
    }
}

impl<'a> IntoIterator for &'a CustomerSegments {
    type Item = CustomerSegmentRef<'a>;
    type IntoIter = Box<dyn Iterator<Item = CustomerSegmentRef<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl From<Vec<CustomerSegment>> for CustomerSegments {
    fn from(rows: Vec<CustomerSegment>) -> CustomerSegments {
        rows.into_iter().collect()
    }
}

impl FromIterator<CustomerSegment> for CustomerSegments {
    fn from_iter<I: IntoIterator<Item = CustomerSegment>>(rows: I) -> CustomerSegments {
        let mut t = CustomerSegments::default();
        for row in rows {
            t.push(&row);
        }
        t
    }
}

impl PartialEq for CustomerSegments {
    /// Row by row, as `Vec<CustomerSegment>` compared.
    fn eq(&self, other: &CustomerSegments) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u32) -> CustomerSegment {
        CustomerSegment {
            mobile: format!("91987650{i:04}"),
            name: i.is_multiple_of(2).then(|| format!("c{i}")),
            age: (!i.is_multiple_of(3)).then_some(30),
            income: (!i.is_multiple_of(4)).then_some(1000.5),
            gender: (!i.is_multiple_of(5)).then_some(Gender::Female),
            clv: f64::from(i),
            avg_purchase_amount: (!i.is_multiple_of(6)).then_some(2.5),
            purchase_count: i,
            days_since_last_purchase: (!i.is_multiple_of(7)).then_some(-3),
            purchase_frequency: (!i.is_multiple_of(8)).then_some(0.0),
            segment: i % 3,
            segment_label: ["a", "", "no purchases"][(i % 3) as usize].to_owned(),
            r_score: (!i.is_multiple_of(9)).then_some(5),
            f_score: (!i.is_multiple_of(10)).then_some(0),
            m_score: (!i.is_multiple_of(11)).then_some(1),
        }
    }

    #[test]
    fn rows_come_back_as_they_went_in_nulls_and_empty_texts_included() {
        let mut rows: Vec<CustomerSegment> = (0..40).map(row).collect();
        rows[3].name = Some(String::new());
        rows[4].mobile = String::new();
        // A real NaN is a value, not a NULL: the sinks must still refuse it.
        rows[5].avg_purchase_amount = Some(f64::NAN);
        let t = CustomerSegments::from(rows.clone());
        assert_eq!(t.len(), 40);
        let back = t.to_vec();
        assert!(back[5].avg_purchase_amount.is_some_and(f64::is_nan));
        rows[5].avg_purchase_amount = None;
        let mut back = back;
        back[5].avg_purchase_amount = None;
        assert_eq!(back, rows);
        assert_eq!(t.get(40), None);
        assert_eq!(t.mobile(4), Some(""));
    }

    #[test]
    fn people_complete_in_place() {
        let customers: Vec<Customer> = (0..3)
            .map(|i| Customer {
                mobile: format!("9100{i}"),
                name: (i != 1).then(|| format!("n{i}")),
                age: (i != 2).then_some(40),
                income: None,
                gender: Some(Gender::Male),
            })
            .collect();
        let people = People::from(customers);
        assert_eq!(
            (people.len(), people.age(2), people.income(0)),
            (3, None, None)
        );
        assert_eq!(people.demographics(0).age, Some(40));
        let labels = vec!["x".to_owned(), "y".to_owned()];
        let t = CustomerSegments::complete(people, &labels, |i, _| Segmented {
            age: Some(50),
            income: Some(7.0),
            clv: i as f64,
            avg_purchase_amount: None,
            purchase_count: 1,
            days_since_last_purchase: Some(2),
            purchase_frequency: Some(0.5),
            segment: (i % 2) as u32,
            scores: [Some(1), Some(2), Some(3)],
        });
        let r = t.row(1);
        assert_eq!(
            (
                r.mobile,
                r.name,
                r.age,
                r.income,
                r.segment_label,
                r.m_score
            ),
            ("91001", None, Some(50), Some(7.0), "y", Some(3))
        );
        assert_eq!(t.row(2).name, Some("n2"));
    }
}
