//! Planted personas and the behaviour each one drives.
//!
//! Both `generate` (age, income) and the mock API (purchases) call into this
//! file with (seed, normalized mobile[, as-of]), so they agree on who is who
//! without sharing state. The parameters are chosen so that the personas are
//! separable on recency, frequency and spend (log scale), which is what a good
//! segmentation should recover; `transform` measures that with ARI/NMI.

use chrono::{Duration, NaiveDate};
use rand::RngExt;

use crate::model::Persona;
use crate::rng::{self, Rng};

/// Fixed persona weights; they sum to 1.
pub const WEIGHTS: [(Persona, f64); 5] = [
    (Persona::Champion, 0.12),
    (Persona::Loyal, 0.24),
    (Persona::Occasional, 0.32),
    (Persona::Lapsed, 0.28),
    (Persona::NeverBought, 0.04),
];

/// Store names the mock API sells at.
pub const STORES: [&str; 8] = [
    "DMart",
    "Reliance Fresh",
    "Big Bazaar",
    "More",
    "Spencer's",
    "Star Bazaar",
    "Nature's Basket",
    "Amazon Fresh",
];

/// How a persona buys. Day offsets count back from the as-of date.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Inclusive range of purchases over the two-year window.
    pub count: (u32, u32),
    /// Range of days since the first purchase.
    pub first_ago: (i64, i64),
    /// Range of days since the last purchase.
    pub last_ago: (i64, i64),
    /// Median purchase amount (lognormal) and its log-sd.
    pub amount_median: f64,
    pub amount_sigma: f64,
    /// Relative weight of each of `STORES`.
    pub store_weights: [f64; 8],
    /// Mean age, and income multiplier over the population median.
    pub age_mean: f64,
    pub income_factor: f64,
}

pub fn behaviour(p: Persona) -> Behaviour {
    match p {
        Persona::Champion => Behaviour {
            count: (30, 60),
            first_ago: (420, 729),
            last_ago: (0, 14),
            amount_median: 2500.0,
            amount_sigma: 0.35,
            store_weights: [2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 3.0],
            age_mean: 42.0,
            income_factor: 1.6,
        },
        Persona::Loyal => Behaviour {
            count: (12, 24),
            first_ago: (240, 729),
            last_ago: (0, 45),
            amount_median: 900.0,
            amount_sigma: 0.35,
            store_weights: [4.0, 3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0],
            age_mean: 38.0,
            income_factor: 1.2,
        },
        Persona::Occasional => Behaviour {
            count: (2, 6),
            first_ago: (90, 365),
            last_ago: (0, 120),
            amount_median: 450.0,
            amount_sigma: 0.5,
            store_weights: [3.0, 2.0, 3.0, 3.0, 1.0, 1.0, 0.5, 2.0],
            age_mean: 31.0,
            income_factor: 1.0,
        },
        Persona::Lapsed => Behaviour {
            count: (3, 8),
            first_ago: (560, 729),
            last_ago: (400, 540),
            amount_median: 800.0,
            amount_sigma: 0.45,
            store_weights: [3.0, 3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0],
            age_mean: 47.0,
            income_factor: 0.9,
        },
        Persona::NeverBought => Behaviour {
            count: (0, 0),
            first_ago: (0, 0),
            last_ago: (0, 0),
            amount_median: 0.0,
            amount_sigma: 0.0,
            store_weights: [1.0; 8],
            age_mean: 29.0,
            income_factor: 0.8,
        },
    }
}

/// The persona of a customer: a pure function of (seed, normalized mobile).
pub fn persona_of(seed: u64, mobile: &str) -> Persona {
    let u = rng::unit(rng::hash(&[
        b"persona",
        &seed.to_le_bytes(),
        mobile.as_bytes(),
    ]));
    let mut acc = 0.0;
    for (p, w) in WEIGHTS {
        acc += w;
        if u < acc {
            return p;
        }
    }
    Persona::NeverBought
}

/// A clean planned purchase; the API adds dirt on top.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub date: NaiveDate,
    pub amount: f64,
    pub store: &'static str,
}

/// RNG for everything about one mobile's purchases at one as-of date.
pub fn purchase_rng(seed: u64, mobile: &str, as_of: NaiveDate) -> Rng {
    let day = as_of.to_string();
    rng::seeded(
        rng::hash(&[&seed.to_le_bytes(), mobile.as_bytes(), day.as_bytes()]),
        "purchases",
    )
}

/// The clean purchases of one customer, oldest first.
pub fn planned_purchases(persona: Persona, as_of: NaiveDate, rng: &mut Rng) -> Vec<Planned> {
    let b = behaviour(persona);
    if b.count.1 == 0 {
        return Vec::new();
    }
    let n = rng.random_range(b.count.0..=b.count.1);
    let first = rng.random_range(b.first_ago.0..=b.first_ago.1);
    let last = rng.random_range(b.last_ago.0..=b.last_ago.1).min(first);
    let mut days: Vec<i64> = Vec::with_capacity(n as usize);
    days.push(first);
    if n > 1 {
        days.push(last);
    }
    for _ in 2..n {
        days.push(rng.random_range(last..=first));
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.into_iter()
        .map(|ago| Planned {
            date: as_of - Duration::days(ago),
            amount: (lognormal(rng, b.amount_median, b.amount_sigma) * 100.0).round() / 100.0,
            store: STORES[weighted(rng, &b.store_weights)],
        })
        .collect()
}

/// Age and income of a customer, mildly shaped by persona.
pub fn demographics(seed: u64, mobile: &str, persona: Persona) -> (u16, f64) {
    let mut rng = rng::seeded(
        rng::hash(&[&seed.to_le_bytes(), mobile.as_bytes()]),
        "demographics",
    );
    let b = behaviour(persona);
    let age = (b.age_mean + 11.0 * normal(&mut rng))
        .round()
        .clamp(18.0, 85.0) as u16;
    let income = (lognormal(&mut rng, 600_000.0 * b.income_factor, 0.45) / 100.0).round() * 100.0;
    (age, income)
}

/// Standard normal by Box-Muller; avoids a distribution crate for one formula.
pub fn normal(rng: &mut Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

fn weighted(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date")
    }

    #[test]
    fn weights_sum_to_one_and_shares_match() {
        let total: f64 = WEIGHTS.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let n = 50_000;
        for (p, w) in WEIGHTS {
            let got = (0..n)
                .filter(|i| persona_of(42, &format!("91{:010}", 9_000_000_000u64 + i)) == p)
                .count() as f64
                / n as f64;
            assert!((got - w).abs() < 0.01, "{p}: {got} vs {w}");
        }
    }

    #[test]
    fn purchases_are_deterministic_and_inside_the_window() {
        for i in 0..500u64 {
            let m = format!("9198{:08}", i);
            let p = persona_of(7, &m);
            let a = planned_purchases(p, as_of(), &mut purchase_rng(7, &m, as_of()));
            let b = planned_purchases(p, as_of(), &mut purchase_rng(7, &m, as_of()));
            assert_eq!(a, b);
            let (lo, hi) = behaviour(p).count;
            assert!((lo..=hi).contains(&(a.len() as u32)));
            for x in &a {
                let ago = (as_of() - x.date).num_days();
                assert!((0..730).contains(&ago), "{ago}");
                assert!(x.amount > 0.0);
            }
        }
    }

    #[test]
    fn lapsed_customers_stopped_buying_long_ago() {
        let mut rng = purchase_rng(1, "919999999999", as_of());
        for _ in 0..200 {
            let v = planned_purchases(Persona::Lapsed, as_of(), &mut rng);
            let last = v.iter().map(|p| p.date).max().expect("lapsed buy");
            assert!((as_of() - last).num_days() >= 400);
        }
    }
}
