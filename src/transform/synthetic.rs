//! A synthetic `Joined` built from the planted personas with API-like dirt,
//! for transform's tests and benches (not used by the pipeline). It mirrors
//! DESIGN §3's default purchase dirt without depending on the API module, so
//! the transform tests measure transform alone.

use chrono::NaiveDate;
use rand::RngExt;

use crate::generate::persona::{self, Planned};
use crate::model::{Customer, CustomerIdx, Gender, Joined, Purchase, RawDate};
use crate::rng;

/// Dirt rates; `Default` is DESIGN §3's API default plus generate's
/// missing age/income rates.
#[derive(Clone, Debug)]
pub struct Dirt {
    pub null_date: f64,
    pub dmy_date: f64,
    pub null_amount: f64,
    pub null_store: f64,
    /// Fraction of customers with one purchase row sent twice.
    pub duplicate_purchase: f64,
    pub missing_age: f64,
    pub missing_income: f64,
    pub missing_gender: f64,
}

impl Default for Dirt {
    fn default() -> Self {
        Dirt {
            null_date: 0.10,
            dmy_date: 0.10,
            null_amount: 0.05,
            null_store: 0.05,
            duplicate_purchase: 0.02,
            missing_age: 0.10,
            missing_income: 0.02,
            missing_gender: 0.02,
        }
    }
}

/// `n` customers with truth, purchases from `persona::planned_purchases`, and dirt.
pub fn joined(n: usize, seed: u64, as_of: NaiveDate, dirt: &Dirt) -> Joined {
    let mut j = Joined {
        stores: persona::STORES.iter().map(|s| (*s).to_owned()).collect(),
        ..Joined::default()
    };
    let mut truth = Vec::with_capacity(n);
    let mut dirt_rng = rng::seeded(seed, "synthetic-dirt");
    for i in 0..n {
        let mobile = format!("91{:010}", 9_000_000_000u64 + i as u64);
        let p = persona::persona_of(seed, &mobile);
        let (age, income) = persona::demographics(seed, &mobile, p);
        let r = &mut dirt_rng;
        let gender = match r.random_range(0..100) {
            0..49 => Some(Gender::Male),
            49..98 => Some(Gender::Female),
            _ => Some(Gender::Other),
        };
        let cid = CustomerIdx::from_index(i);
        j.customers.push(&Customer {
            mobile: mobile.clone(),
            name: Some(format!("Customer {i}")),
            age: (r.random::<f64>() >= dirt.missing_age).then_some(age),
            income: (r.random::<f64>() >= dirt.missing_income).then_some(income),
            gender: gender.filter(|_| r.random::<f64>() >= dirt.missing_gender),
        });
        truth.push(Some(p));
        let planned =
            persona::planned_purchases(p, as_of, &mut persona::purchase_rng(seed, &mobile, as_of));
        let start = j.purchases.len();
        for Planned {
            date,
            amount,
            store,
        } in planned
        {
            let date = if r.random::<f64>() < dirt.null_date {
                RawDate::Null
            } else if r.random::<f64>() < dirt.dmy_date {
                RawDate::Dmy(date)
            } else {
                RawDate::Ymd(date)
            };
            let amount = (r.random::<f64>() >= dirt.null_amount).then_some(amount);
            let store = persona::STORES
                .iter()
                .position(|s| *s == store)
                .map(|s| s as u32);
            let store = store.filter(|_| r.random::<f64>() >= dirt.null_store);
            j.purchases.push(Purchase::new(cid, date, amount, store));
        }
        let len = j.purchases.len() - start;
        if len > 0 && r.random::<f64>() < dirt.duplicate_purchase {
            let copy = j.purchases[start + r.random_range(0..len)];
            j.purchases.push(copy);
        }
    }
    j.truth = Some(truth);
    j
}
