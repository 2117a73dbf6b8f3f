//! Criteria for choosing k: Calinski-Harabasz, Davies-Bouldin, the smallest
//! segment's share, bootstrap stability, and the rule that turns a sweep of
//! them into one k. Silhouette is in `evaluate` (it shares its pairwise
//! distances across k); fitting is in `kmeans`; running the sweep is in
//! `cluster`.
//!
//! Calinski-Harabasz and Davies-Bouldin follow scikit-learn's definitions
//! (`sklearn.metrics.calinski_harabasz_score`, `davies_bouldin_score`), and
//! the tests hold them to values scikit-learn computed.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::model::KSweep;
use crate::rng;

use super::evaluate;
use super::kmeans::{self, Params};

/// Resamples per k for the stability score: 70 refits per sweep, about as
/// long as the sweep's silhouettes at 10,000 customers.
pub const STABILITY_RESAMPLES: usize = 10;
/// Share of the points each resample keeps (drawn without replacement): the
/// 80% subsamples of Ben-Hur, Elisseeff & Guyon (2002).
pub const STABILITY_FRACTION: f64 = 0.8;
/// Most points a resample holds. This keeps the cost of the 70 refits of a
/// sweep independent of the number of customers. Smaller resamples can only
/// make a clustering look less stable (the refits see less of the data), so
/// the cap errs on the side of vetoing a k: on the CDNOW log (23,570
/// customers) 4,000-point resamples lower the least stable segment's
/// Jaccard by at most 0.15 against 8,000-point ones, and every k stays above
/// the threshold on both.
pub const STABILITY_MAX_POINTS: usize = 4_000;

/// A segment whose mean Jaccard over the resamples is at least this is
/// "stable": Hennig's threshold (clusterboot, 2007: "a valid, stable cluster
/// should yield a mean Jaccard similarity value of 0.75 or more").
pub const STABLE_JACCARD: f64 = 0.75;
/// A segment smaller than this share of the clustered customers is too small
/// to address with a campaign of its own.
pub const MIN_SEGMENT_SHARE: f64 = 0.02;

/// Mean of each cluster (`k * d` values) and its size; an empty cluster has a
/// zero mean and size 0.
fn means(data: &[f64], d: usize, labels: &[u32], k: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for (x, &l) in data.chunks_exact(d).zip(labels) {
        let l = l as usize;
        counts[l] += 1;
        for (s, v) in sums[l * d..(l + 1) * d].iter_mut().zip(x) {
            *s += v;
        }
    }
    for (c, &n) in counts.iter().enumerate() {
        if n > 0 {
            for s in &mut sums[c * d..(c + 1) * d] {
                *s /= n as f64;
            }
        }
    }
    (sums, counts)
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Calinski-Harabasz index: between-cluster over within-cluster dispersion,
/// each divided by its degrees of freedom (higher is better). Labels are
/// `0..k`; empty clusters do not count. 1.0 when every cluster is a single
/// point's repeat (no within dispersion), 0.0 with fewer than two clusters,
/// as scikit-learn does (it raises instead for one cluster).
pub fn calinski_harabasz(data: &[f64], d: usize, labels: &[u32], k: usize) -> f64 {
    let n = labels.len();
    let (centres, counts) = means(data, d, labels, k);
    let used = counts.iter().filter(|&&c| c > 0).count();
    if used < 2 || n <= used {
        return 0.0;
    }
    let (mean, _) = means(data, d, &vec![0; n], 1);
    let between: f64 = (0..k)
        .filter(|&c| counts[c] > 0)
        .map(|c| counts[c] as f64 * dist2(&centres[c * d..(c + 1) * d], &mean))
        .sum();
    let within: f64 = data
        .chunks_exact(d)
        .zip(labels)
        .map(|(x, &l)| dist2(x, &centres[l as usize * d..(l as usize + 1) * d]))
        .sum();
    if within == 0.0 {
        return 1.0;
    }
    between * (n - used) as f64 / (within * (used - 1) as f64)
}

/// Davies-Bouldin index: the mean, over clusters, of the worst ratio of
/// summed spreads (mean distance to the centroid) to centroid distance
/// (lower is better, 0 is the floor). Empty clusters do not count.
pub fn davies_bouldin(data: &[f64], d: usize, labels: &[u32], k: usize) -> f64 {
    let (centres, counts) = means(data, d, labels, k);
    let mut spread = vec![0.0; k];
    for (x, &l) in data.chunks_exact(d).zip(labels) {
        let l = l as usize;
        spread[l] += dist2(x, &centres[l * d..(l + 1) * d]).sqrt();
    }
    let used: Vec<usize> = (0..k).filter(|&c| counts[c] > 0).collect();
    if used.len() < 2 {
        return 0.0;
    }
    for &c in &used {
        spread[c] /= counts[c] as f64;
    }
    let centre = |c: usize| &centres[c * d..(c + 1) * d];
    // scikit-learn's `np.allclose(x, 0)`: |x| <= 1e-8.
    let all_near_zero = |mut it: Box<dyn Iterator<Item = f64> + '_>| it.all(|v| v.abs() <= 1e-8);
    if all_near_zero(Box::new(used.iter().map(|&c| spread[c])))
        || all_near_zero(Box::new(used.iter().flat_map(|&a| {
            used.iter()
                .map(move |&b| dist2(centre(a), centre(b)).sqrt())
        })))
    {
        return 0.0;
    }
    let total: f64 = used
        .iter()
        .map(|&a| {
            used.iter()
                .filter(|&&b| b != a)
                .map(|&b| {
                    let between = dist2(centre(a), centre(b)).sqrt();
                    // Coinciding centroids: scikit-learn divides by +inf.
                    if between == 0.0 {
                        0.0
                    } else {
                        (spread[a] + spread[b]) / between
                    }
                })
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum();
    total / used.len() as f64
}

/// Share of the points in the smallest of the `k` clusters asked for (labels
/// `0..k`): an empty cluster makes it 0.
pub fn smallest_share(labels: &[u32], k: usize) -> f64 {
    if labels.is_empty() || k == 0 {
        return 0.0;
    }
    let mut counts = vec![0usize; k];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts.iter().copied().min().unwrap_or(0) as f64 / labels.len() as f64
}

/// How well a clustering survives resampling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stability {
    /// Mean Adjusted Rand Index between the reference labels and a refit, on
    /// the points of each resample.
    pub ari: f64,
    /// The least stable segment's mean Jaccard (Hennig's clusterwise
    /// stability): per resample, the Jaccard of the segment with the refit's
    /// best-matching cluster, on the resample's points.
    pub min_jaccard: f64,
}

/// Bootstrap stability of `reference` (labels `0..k` of `data`, as fitted
/// with `params`): refit KMeans with the same settings on
/// [`STABILITY_RESAMPLES`] subsamples of [`STABILITY_FRACTION`] of the points
/// (at most [`STABILITY_MAX_POINTS`]) and compare each refit with the
/// reference on the points the two share, the subsample. This is the
/// clusterwise scheme of Hennig (2007) with subsetting, summarized also as a
/// mean ARI. Each resample draws from its own stream of `seed`, so the result
/// does not depend on the order or the threads the resamples run on.
pub fn stability(
    data: &[f64],
    d: usize,
    reference: &[u32],
    k: usize,
    params: &Params,
    seed: u64,
) -> Stability {
    stabilities(data, d, &[(reference, k)], params, seed)[0]
}

/// [`stability`] of several labelings of the same points (the sweep's k),
/// with every refit of every labeling shared out over the cores at once:
/// per labeling, the refits at k = 8 cost several times those at k = 2.
pub fn stabilities(
    data: &[f64],
    d: usize,
    references: &[(&[u32], usize)],
    params: &Params,
    seed: u64,
) -> Vec<Stability> {
    let n = data.len().checked_div(d).unwrap_or(0);
    let size = ((n as f64 * STABILITY_FRACTION) as usize).min(STABILITY_MAX_POINTS);
    let measured = |k: usize| k >= 2 && size >= k;
    let tasks: Vec<(usize, usize)> = references
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| measured(*k))
        .flat_map(|(r, _)| (0..STABILITY_RESAMPLES).map(move |b| (r, b)))
        .collect();
    let runs: Vec<(f64, Vec<f64>)> = parallel_map(tasks.len(), |t| {
        let (r, b) = tasks[t];
        let (reference, k) = references[r];
        let mut draw = rng::seeded(seed, &format!("stability-sample-{k}-{b}"));
        let idx = evaluate::sample(n, size, &mut draw);
        let sub: Vec<f64> = idx
            .iter()
            .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
            .collect();
        let refit = kmeans::fit(
            &sub,
            d,
            &Params { k, ..*params },
            &mut rng::seeded(seed, &format!("stability-fit-{k}-{b}")),
        );
        let theirs: Vec<u32> = idx.iter().map(|&i| reference[i]).collect();
        let ari = evaluate::ari(&theirs, &refit.labels);
        (ari, best_jaccards(&theirs, &refit.labels, k, refit.k))
    });
    let mut runs = runs.into_iter();
    references
        .iter()
        .map(|&(_, k)| {
            if !measured(k) {
                // Nothing to resample: one cluster, or fewer points than k.
                return Stability {
                    ari: 1.0,
                    min_jaccard: 1.0,
                };
            }
            let mine: Vec<(f64, Vec<f64>)> = runs.by_ref().take(STABILITY_RESAMPLES).collect();
            let count = mine.len() as f64;
            Stability {
                ari: mine.iter().map(|r| r.0).sum::<f64>() / count,
                min_jaccard: (0..k)
                    .map(|c| mine.iter().map(|r| r.1[c]).sum::<f64>() / count)
                    .fold(f64::INFINITY, f64::min),
            }
        })
        .collect()
}

/// For each reference cluster `0..k`, the best Jaccard index with any cluster
/// of `other` (labels `0..k_other`). A reference cluster absent from these
/// points scores 0: it did not survive.
fn best_jaccards(reference: &[u32], other: &[u32], k: usize, k_other: usize) -> Vec<f64> {
    let mut both = vec![0usize; k * k_other.max(1)];
    let mut ref_size = vec![0usize; k];
    let mut other_size = vec![0usize; k_other.max(1)];
    for (&a, &b) in reference.iter().zip(other) {
        both[a as usize * k_other.max(1) + b as usize] += 1;
        ref_size[a as usize] += 1;
        other_size[b as usize] += 1;
    }
    (0..k)
        .map(|a| {
            (0..k_other.max(1))
                .map(|b| {
                    let inter = both[a * k_other.max(1) + b];
                    let union = ref_size[a] + other_size[b] - inter;
                    if union == 0 {
                        0.0
                    } else {
                        inter as f64 / union as f64
                    }
                })
                .fold(0.0, f64::max)
        })
        .collect()
}

/// Whether a row of the sweep may be chosen by [`choose_k`]'s main branch:
/// every segment stable (mean Jaccard ≥ [`STABLE_JACCARD`]) and none tiny
/// (share ≥ [`MIN_SEGMENT_SHARE`]).
pub fn eligible(row: &KSweep) -> bool {
    row.min_segment_stability >= STABLE_JACCARD && row.smallest_share >= MIN_SEGMENT_SHARE
}

/// Silhouette from which a k = 2 maximum counts as real structure: Kaufman &
/// Rousseeuw's "strong structure" (1990, 0.71–1.0; 0.51–0.70 "reasonable").
pub const STRONG_SILHOUETTE: f64 = 0.7;

/// The rule for `--k auto`; returns an index into `sweep` (rows in
/// increasing k), `None` for an empty sweep.
///
/// 1. Only *eligible* k compete: every segment stable and none tiny
///    ([`eligible`]). Stability alone cannot pick k (KMeans splits a big
///    Gaussian blob the same way on every resample), it only vetoes.
/// 2. Let `k_s` be the k with the highest silhouette (ties to the smaller).
///    If `k_s` is eligible and the silhouette rose to it from a coarser k
///    (`k_s` is not the sweep's smallest k), or it is the smallest but shows
///    strong structure (≥ [`STRONG_SILHOUETTE`]), the data hold `k_s`
///    separated groups: take `k_s`. Splitting such a group further is stable
///    too, but is not a new segment (the planted personas: 4).
/// 3. Otherwise take the **finest** eligible k. A weak silhouette maximum at
///    k = 2 is what real transaction logs show (one-time vs repeat buyers,
///    DESIGN §4), and two segments drive no campaign while finer ones are
///    stable and big enough to address.
/// 4. No k eligible: fall back to `k_s`.
pub fn choose_k(sweep: &[KSweep]) -> Option<usize> {
    let best_silhouette = sweep
        .iter()
        .enumerate()
        .fold(None::<(usize, f64)>, |acc, (i, r)| match acc {
            Some((_, b)) if b >= r.silhouette => acc,
            _ => Some((i, r.silhouette)),
        })
        .map(|(i, _)| i)?;
    let s = &sweep[best_silhouette];
    let coarsest = sweep.iter().map(|r| r.k).min().unwrap_or(s.k);
    if eligible(s) && (s.k > coarsest || s.silhouette >= STRONG_SILHOUETTE) {
        return Some(best_silhouette);
    }
    sweep
        .iter()
        .enumerate()
        .filter(|(_, r)| eligible(r))
        .max_by_key(|(_, r)| r.k)
        .map(|(i, _)| i)
        .or(Some(best_silhouette))
}

pub use segpipe_cluster::cores;

/// `f(0), f(1), …, f(n - 1)` computed on every core, returned in index order.
/// Each call is independent, so the results do not depend on the number of
/// threads; the next free index is handed to whichever thread is idle, since
/// the calls differ in cost (a fit at k = 8 takes longer than at k = 2).
pub fn parallel_map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let threads = cores().min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("parallel_map worker does not panic"))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    //! Each criterion on hand-made point sets, against scikit-learn 1.x
    //! (`silhouette_score`, `calinski_harabasz_score`, `davies_bouldin_score`,
    //! `KMeans(k, n_init=10).inertia_`). The sets are built from a Halton
    //! sequence through Box-Muller, so Python rebuilds them exactly. To
    //! regenerate the constants (numpy + scikit-learn):
    //!
    //! ```python
    //! import numpy as np
    //! from sklearn.cluster import KMeans
    //! from sklearn.metrics import silhouette_score, calinski_harabasz_score, davies_bouldin_score
    //! def halton(i, b):
    //!     f, r = 1.0, 0.0
    //!     while i > 0:
    //!         f /= b; r += f * (i % b); i //= b
    //!     return r
    //! def gauss(i):
    //!     u1, u2 = halton(i + 1, 2), halton(i + 1, 3)
    //!     r = np.sqrt(-2.0 * np.log(u1))
    //!     return r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
    //! def blobs(centres, per):
    //!     X, y = [], []
    //!     for i in range(per * len(centres)):
    //!         c = i % len(centres); g = gauss(i)
    //!         X.append((centres[c][0] + g[0], centres[c][1] + g[1])); y.append(c)
    //!     return np.array(X), np.array(y)
    //! sets = {}
    //! sets['two'] = blobs([(0, 0), (10, 0)], 100)
    //! sets['three'] = blobs([(0, 0), (10, 0), (0, 10)], 60)
    //! X = np.array([gauss(i) for i in range(200)]); sets['gauss'] = (X, (X[:, 0] >= 0).astype(int))
    //! X, y = blobs([(0, 0), (10, 0)], 99)
    //! X = np.vstack([X, [(50 + 0.5 * gauss(i)[0], 50 + 0.5 * gauss(i)[1]) for i in range(2)]])
    //! y = np.concatenate([y, [2, 2]]); sets['outlier'] = (X, y)
    //! for name, (X, y) in sets.items():
    //!     k = len(set(y))
    //!     km = KMeans(k, n_init=10, random_state=0).fit(X)
    //!     print(name, silhouette_score(X, y), calinski_harabasz_score(X, y),
    //!           davies_bouldin_score(X, y), km.inertia_, np.bincount(y).min() / len(y))
    //! ```

    use super::*;
    use crate::transform::evaluate::silhouettes;

    fn halton(mut i: usize, b: usize) -> f64 {
        let (mut f, mut r) = (1.0, 0.0);
        while i > 0 {
            f /= b as f64;
            r += f * (i % b) as f64;
            i /= b;
        }
        r
    }

    fn gauss(i: usize) -> (f64, f64) {
        let (u1, u2) = (halton(i + 1, 2), halton(i + 1, 3));
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        (r * a.cos(), r * a.sin())
    }

    fn blobs(centres: &[(f64, f64)], per: usize) -> (Vec<f64>, Vec<u32>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..per * centres.len() {
            let c = i % centres.len();
            let g = gauss(i);
            x.extend([centres[c].0 + g.0, centres[c].1 + g.1]);
            y.push(c as u32);
        }
        (x, y)
    }

    fn two() -> (Vec<f64>, Vec<u32>) {
        blobs(&[(0.0, 0.0), (10.0, 0.0)], 100)
    }

    fn three() -> (Vec<f64>, Vec<u32>) {
        blobs(&[(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)], 60)
    }

    /// One Gaussian cut in half at x = 0: no real structure.
    fn gaussian() -> (Vec<f64>, Vec<u32>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let g = gauss(i);
            x.extend([g.0, g.1]);
            y.push(u32::from(g.0 >= 0.0));
        }
        (x, y)
    }

    /// Two blobs of 99 and a far cluster of 2 points: 1% of the set.
    fn outlier() -> (Vec<f64>, Vec<u32>) {
        let (mut x, mut y) = blobs(&[(0.0, 0.0), (10.0, 0.0)], 99);
        for i in 0..2 {
            let g = gauss(i);
            x.extend([50.0 + 0.5 * g.0, 50.0 + 0.5 * g.1]);
            y.push(2);
        }
        (x, y)
    }

    struct Known {
        silhouette: f64,
        calinski_harabasz: f64,
        davies_bouldin: f64,
        smallest_share: f64,
    }

    fn check(name: &str, (x, y): (Vec<f64>, Vec<u32>), k: usize, want: Known) {
        let all: Vec<usize> = (0..y.len()).collect();
        let got = [
            silhouettes(&x, 2, &all, &[&y])[0],
            calinski_harabasz(&x, 2, &y, k),
            davies_bouldin(&x, 2, &y, k),
            smallest_share(&y, k),
        ];
        let want = [
            want.silhouette,
            want.calinski_harabasz,
            want.davies_bouldin,
            want.smallest_share,
        ];
        for ((g, w), what) in got
            .iter()
            .zip(want)
            .zip(["silhouette", "CH", "DB", "share"])
        {
            assert!(
                (g - w).abs() < 1e-6,
                "{name} {what}: {g} vs scikit-learn {w}"
            );
        }
    }

    #[test]
    fn criteria_match_scikit_learn_on_two_blobs() {
        check(
            "two blobs",
            two(),
            2,
            Known {
                silhouette: 0.8290360727,
                calinski_harabasz: 2434.9495430787,
                davies_bouldin: 0.2534913028,
                smallest_share: 0.5,
            },
        );
    }

    #[test]
    fn criteria_match_scikit_learn_on_three_blobs() {
        check(
            "three blobs",
            three(),
            3,
            Known {
                silhouette: 0.8922139306,
                calinski_harabasz: 5250.9439238670,
                davies_bouldin: 0.1517012012,
                smallest_share: 1.0 / 3.0,
            },
        );
    }

    #[test]
    fn criteria_match_scikit_learn_on_a_single_gaussian() {
        check(
            "single Gaussian",
            gaussian(),
            2,
            Known {
                silhouette: 0.2997255310,
                calinski_harabasz: 90.6605489419,
                davies_bouldin: 1.2836275984,
                smallest_share: 0.495,
            },
        );
    }

    #[test]
    fn criteria_match_scikit_learn_with_a_one_percent_outlier_cluster() {
        check(
            "1% outliers",
            outlier(),
            3,
            Known {
                silhouette: 0.8306398388,
                calinski_harabasz: 3392.3068593938,
                davies_bouldin: 0.1814135505,
                smallest_share: 0.01,
            },
        );
    }

    /// KMeans' inertia (the sweep's first criterion) reaches scikit-learn's
    /// optimum, and its labels are the planted ones.
    #[test]
    fn kmeans_inertia_matches_scikit_learn() {
        for (name, (x, y), k, want) in [
            ("two blobs", two(), 2, 405.7294100519),
            ("three blobs", three(), 3, 166.2441112606),
            ("1% outliers", outlier(), 3, 401.1228421048),
        ] {
            let fit = kmeans::fit(
                &x,
                2,
                &Params {
                    k,
                    ..Params::default()
                },
                &mut rng::seeded(42, "kmeans"),
            );
            assert!(
                (fit.inertia - want).abs() < 1e-6,
                "{name}: {} vs scikit-learn {want}",
                fit.inertia
            );
            assert!(
                (evaluate::ari(&fit.labels, &y) - 1.0).abs() < 1e-12,
                "{name}"
            );
            // The nearest-centroid assignment a saved model uses gives the fit's labels.
            let (labels, inertia) = kmeans::predict(&x, 2, &fit.centroids);
            assert_eq!(labels, fit.labels, "{name}");
            assert!((inertia - want).abs() < 1e-6, "{name}");
        }
    }

    #[test]
    fn degenerate_inputs_score_like_scikit_learn() {
        // One cluster: scikit-learn refuses; we score 0 and do not panic.
        let (x, _) = two();
        let one = vec![0u32; 200];
        assert_eq!(calinski_harabasz(&x, 2, &one, 1), 0.0);
        assert_eq!(davies_bouldin(&x, 2, &one, 1), 0.0);
        // Every cluster a repeated point: no within dispersion.
        let x = [1.0, 1.0, 1.0, 5.0, 5.0, 5.0];
        let y = [0, 0, 0, 1, 1, 1];
        assert_eq!(calinski_harabasz(&x, 1, &y, 2), 1.0);
        assert_eq!(davies_bouldin(&x, 1, &y, 2), 0.0);
        // A cluster asked for but empty makes the smallest share 0.
        assert_eq!(smallest_share(&y, 3), 0.0);
        assert_eq!(smallest_share(&[], 2), 0.0);
    }

    fn params(k: usize) -> Params {
        Params {
            k,
            ..Params::default()
        }
    }

    fn fitted(x: &[f64], k: usize) -> Vec<u32> {
        kmeans::fit(x, 2, &params(k), &mut rng::seeded(42, "kmeans")).labels
    }

    #[test]
    fn separated_blobs_are_perfectly_stable_at_their_k() {
        let (x, _) = three();
        let s = stability(&x, 2, &fitted(&x, 3), 3, &params(3), 42);
        assert_eq!(
            s,
            Stability {
                ari: 1.0,
                min_jaccard: 1.0
            }
        );
        let (x, _) = two();
        let s = stability(&x, 2, &fitted(&x, 2), 2, &params(2), 42);
        assert_eq!(s.ari, 1.0);
        assert_eq!(s.min_jaccard, 1.0);
    }

    #[test]
    fn a_reference_the_refits_never_find_is_unstable() {
        // Labels that cut the two blobs across their gap: no refit agrees.
        let (x, y) = two();
        let scrambled: Vec<u32> = y
            .iter()
            .enumerate()
            .map(|(i, _)| (i / 2 % 2) as u32)
            .collect();
        let s = stability(&x, 2, &scrambled, 2, &params(2), 42);
        assert!(s.ari < 0.1, "{s:?}");
        assert!(s.min_jaccard < STABLE_JACCARD, "{s:?}");
        // Same seed, same score, whatever the threads.
        assert_eq!(s, stability(&x, 2, &scrambled, 2, &params(2), 42));
    }

    fn row(k: u32, silhouette: f64, stable: f64, share: f64) -> KSweep {
        KSweep {
            k,
            inertia: 0.0,
            silhouette,
            calinski_harabasz: 0.0,
            davies_bouldin: 0.0,
            smallest_share: share,
            stability: stable,
            min_segment_stability: stable,
            eligible: false,
        }
    }

    #[test]
    fn rule_takes_an_interior_silhouette_peak_when_it_is_stable() {
        // The planted world: peak at 4, finer splits stable too.
        let sweep: Vec<KSweep> = [0.57, 0.68, 0.72, 0.65, 0.57, 0.51, 0.47]
            .iter()
            .zip(2..)
            .map(|(&s, k)| row(k, s, 0.95, 0.08))
            .collect();
        assert_eq!(sweep[choose_k(&sweep).expect("rows")].k, 4);
    }

    #[test]
    fn rule_passes_over_a_weak_k2_peak_for_the_finest_stable_k() {
        // The CDNOW log (README): silhouette falls from k = 2; k = 8 is tiny.
        let mut sweep: Vec<KSweep> = [0.58, 0.49, 0.41, 0.40, 0.39, 0.41, 0.39]
            .iter()
            .zip(2..)
            .map(|(&s, k)| row(k, s, 0.9, 0.04))
            .collect();
        sweep[6].smallest_share = 0.01;
        sweep[5].min_segment_stability = 0.7;
        assert_eq!(sweep[choose_k(&sweep).expect("rows")].k, 6);
        // A strong k = 2 peak (two separated blobs) is kept.
        sweep[0].silhouette = 0.85;
        assert_eq!(sweep[choose_k(&sweep).expect("rows")].k, 2);
    }

    #[test]
    fn rule_falls_back_to_the_best_silhouette_when_nothing_is_stable() {
        let sweep: Vec<KSweep> = [0.3, 0.5, 0.5, 0.2]
            .iter()
            .zip(2..)
            .map(|(&s, k)| row(k, s, 0.5, 0.3))
            .collect();
        // Tie between k = 3 and k = 4: the smaller wins.
        assert_eq!(sweep[choose_k(&sweep).expect("rows")].k, 3);
        assert_eq!(choose_k(&[]), None);
        // An unstable interior peak is not taken when a finer k is stable.
        let mut sweep = sweep;
        sweep[3].min_segment_stability = 0.9;
        assert_eq!(sweep[choose_k(&sweep).expect("rows")].k, 5);
    }

    #[test]
    fn parallel_map_keeps_index_order() {
        assert_eq!(
            parallel_map(100, |i| i * 2),
            (0..100).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(parallel_map(0, |i| i).is_empty());
    }
}
