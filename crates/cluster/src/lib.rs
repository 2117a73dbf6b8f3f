//! segpipe's clustering kernels: KMeans ([`kmeans`]) and the scores that
//! choose k and check segments against ground truth ([`evaluate`]).
//!
//! Everything here is plain arithmetic on row-major `f64` matrices, with no
//! knowledge of customers; `segpipe::transform` decides what is clustered.

pub mod evaluate;
pub mod kmeans;

/// The RNG every kernel draws from (the same type as `segpipe::rng::Rng`).
pub type Rng = rand_pcg::Pcg64Mcg;

/// The cores this process may use, asked once: `available_parallelism`
/// reads cgroup files on every call, and Lloyd's loop asks each iteration
/// (2.6% of a 10,000-customer run).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}
