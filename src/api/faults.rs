//! Fault injection for `/purchase-history`: a failure rate and added latency.
//!
//! Owns only the decision and the delay; `http.rs` applies them to the purchase
//! route and leaves `/health` and `/openapi.json` alone, so a health check
//! never reports a deliberately flaky service as down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::rng;

/// Failure rate and latency, plus the request counter the decision hashes.
#[derive(Debug)]
pub(crate) struct Faults {
    seed: u64,
    fail_rate: f64,
    latency: Duration,
    counter: AtomicU64,
}

impl Faults {
    pub(crate) fn new(seed: u64, fail_rate: f64, latency_ms: u64) -> Faults {
        Faults {
            seed,
            fail_rate,
            latency: Duration::from_millis(latency_ms),
            counter: AtomicU64::new(0),
        }
    }

    /// Whether this request gets an injected 503. Counts the request.
    pub(crate) fn next_fails(&self) -> bool {
        if self.fail_rate <= 0.0 || self.fail_rate.is_nan() {
            return false;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        fails(self.seed, n, self.fail_rate)
    }

    /// The configured latency, if any; the server waits it out
    /// asynchronously, so a delayed answer holds no thread.
    pub(crate) fn latency(&self) -> Option<Duration> {
        (!self.latency.is_zero()).then_some(self.latency)
    }
}

/// Whether request number `n` fails. A hash of (seed, n) rather than a
/// thread RNG: a run with the same seed and request order fails the same
/// requests, so tests of the rate are reproducible instead of lucky.
pub(crate) fn fails(seed: u64, n: u64, rate: f64) -> bool {
    rng::unit(rng::hash(&[
        b"fault",
        &seed.to_le_bytes(),
        &n.to_le_bytes(),
    ])) < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_accurate_over_many_requests() {
        for rate in [0.01, 0.2, 0.5, 0.9] {
            let n = 20_000;
            let got = (0..n).filter(|&i| fails(42, i, rate)).count() as f64 / n as f64;
            assert!((got - rate).abs() < 0.01, "{rate}: {got}");
        }
    }

    #[test]
    fn off_and_full_rates_are_exact() {
        let off = Faults::new(1, 0.0, 0);
        assert!((0..1000).all(|_| !off.next_fails()));
        let nan = Faults::new(1, f64::NAN, 0);
        assert!((0..1000).all(|_| !nan.next_fails()));
        let all = Faults::new(1, 1.0, 0);
        assert!((0..1000).all(|_| all.next_fails()));
    }

    #[test]
    fn latency_is_off_unless_configured() {
        assert_eq!(Faults::new(1, 0.0, 0).latency(), None);
        assert_eq!(
            Faults::new(1, 0.0, 120).latency(),
            Some(Duration::from_millis(120))
        );
    }

    #[test]
    fn decisions_are_reproducible_per_seed() {
        let a: Vec<bool> = (0..200).map(|i| fails(7, i, 0.3)).collect();
        let b: Vec<bool> = (0..200).map(|i| fails(7, i, 0.3)).collect();
        let c: Vec<bool> = (0..200).map(|i| fails(8, i, 0.3)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
