//! Cluster quality: silhouette (internal, one of the criteria for k) and agreement with the
//! planted personas (external): Adjusted Rand Index and NMI with arithmetic
//! normalization, as scikit-learn defines them. Fitting is not done here.

use rand::seq::index;

use crate::Rng;

/// A deterministic sample of at most `size` of `0..n`, sorted.
pub fn sample(n: usize, size: usize, rng: &mut Rng) -> Vec<usize> {
    if size >= n {
        return (0..n).collect();
    }
    let mut v = index::sample(rng, n, size).into_vec();
    v.sort_unstable();
    v
}

/// Mean silhouette of the `sample` rows under each of several labelings at
/// once. Pairwise distances dominate the cost, so each one is computed once
/// and shared by every k of the sweep. A point alone in its cluster scores 0;
/// a labeling with fewer than two clusters in the sample scores 0. With every
/// row in `sample` this is scikit-learn's exact `silhouette_score`.
pub fn silhouettes(data: &[f64], d: usize, sample: &[usize], labelings: &[&[u32]]) -> Vec<f64> {
    let m = labelings.len();
    let s = sample.len();
    if m == 0 || s < 2 {
        return vec![0.0; m];
    }
    let kmax = labelings
        .iter()
        .flat_map(|l| sample.iter().map(|&i| l[i]))
        .max()
        .map_or(1, |x| x as usize + 1);
    // Sample-local copies: one column per feature, so a point's distances to
    // all others are computed in one vectorizable pass.
    let cols: Vec<f64> = (0..d)
        .flat_map(|j| sample.iter().map(move |&i| data[i * d + j]))
        .collect();
    // Per labeling, the sample's positions grouped by cluster (`order`) and
    // where each cluster's run starts (`starts`, kmax + 1 entries): summing a
    // cluster's distances is then a gather, not a scatter that stalls on
    // repeated labels.
    let mut order = Vec::with_capacity(m * s);
    let mut starts = Vec::with_capacity(m * (kmax + 1));
    let mut own = Vec::with_capacity(m * s);
    for l in labelings {
        let labels: Vec<usize> = sample.iter().map(|&i| l[i] as usize).collect();
        let mut counts = vec![0usize; kmax + 1];
        for &c in &labels {
            counts[c + 1] += 1;
        }
        for c in 0..kmax {
            counts[c + 1] += counts[c];
        }
        starts.extend_from_slice(&counts);
        let mut next = counts;
        let base = order.len();
        order.resize(base + s, 0u32);
        for (q, &c) in labels.iter().enumerate() {
            order[base + next[c]] = q as u32;
            next[c] += 1;
        }
        own.extend(labels);
    }
    let per_point = |p: usize, dist: &mut [f64], acc: &mut [f64]| -> Vec<f64> {
        dist.fill(0.0);
        for j in 0..d {
            let x = cols[j * s + p];
            for (t, y) in dist.iter_mut().zip(&cols[j * s..(j + 1) * s]) {
                *t += (x - y) * (x - y);
            }
        }
        for t in dist.iter_mut() {
            *t = t.sqrt();
        }
        (0..m)
            .map(|a| {
                let st = &starts[a * (kmax + 1)..(a + 1) * (kmax + 1)];
                let ord = &order[a * s..(a + 1) * s];
                for c in 0..kmax {
                    acc[c] = ord[st[c]..st[c + 1]]
                        .iter()
                        .map(|&q| dist[q as usize])
                        .sum();
                }
                let size = |c: usize| st[c + 1] - st[c];
                let mine = own[a * s + p];
                if size(mine) <= 1 {
                    return 0.0;
                }
                let within = acc[mine] / (size(mine) - 1) as f64;
                let nearest = (0..kmax)
                    .filter(|&c| c != mine && size(c) > 0)
                    .map(|c| acc[c] / size(c) as f64)
                    .fold(f64::INFINITY, f64::min);
                if !nearest.is_finite() {
                    return 0.0;
                }
                let denom = within.max(nearest);
                if denom > 0.0 {
                    (nearest - within) / denom
                } else {
                    0.0
                }
            })
            .collect()
    };
    let threads = crate::cores().min(s);
    let per = s.div_ceil(threads);
    // Each thread scores its own points; the per-point values are added in
    // point order afterwards so the result does not depend on the thread count.
    let values: Vec<Vec<f64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..s)
            .step_by(per)
            .map(|start| {
                let per_point = &per_point;
                sc.spawn(move || {
                    let mut dist = vec![0.0; s];
                    let mut acc = vec![0.0; kmax];
                    (start..(start + per).min(s))
                        .map(|p| per_point(p, &mut dist, &mut acc))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("silhouette worker does not panic"))
            .collect()
    });
    (0..m)
        .map(|a| values.iter().map(|v| v[a]).sum::<f64>() / s as f64)
        .collect()
}

/// Contingency table of two labelings of the same items.
struct Table {
    cells: Vec<f64>,
    rows: Vec<f64>,
    cols: Vec<f64>,
    nc: usize,
    n: f64,
}

fn table(a: &[u32], b: &[u32]) -> Table {
    let nr = a.iter().max().map_or(0, |x| *x as usize + 1);
    let nc = b.iter().max().map_or(0, |x| *x as usize + 1);
    let mut cells = vec![0.0; nr * nc];
    let mut rows = vec![0.0; nr];
    let mut cols = vec![0.0; nc];
    for (&x, &y) in a.iter().zip(b) {
        cells[x as usize * nc + y as usize] += 1.0;
        rows[x as usize] += 1.0;
        cols[y as usize] += 1.0;
    }
    Table {
        cells,
        rows,
        cols,
        nc,
        n: a.len().min(b.len()) as f64,
    }
}

fn pairs(x: f64) -> f64 {
    x * (x - 1.0) / 2.0
}

/// Adjusted Rand Index (Hubert & Arabie): 1 for identical partitions, about 0
/// for independent ones. Degenerate cases (both one cluster, or all
/// singletons) score 1 as in scikit-learn.
pub fn ari(a: &[u32], b: &[u32]) -> f64 {
    let t = table(a, b);
    let index: f64 = t.cells.iter().map(|&c| pairs(c)).sum();
    let sa: f64 = t.rows.iter().map(|&c| pairs(c)).sum();
    let sb: f64 = t.cols.iter().map(|&c| pairs(c)).sum();
    let total = pairs(t.n);
    if total == 0.0 {
        return 1.0;
    }
    let expected = sa * sb / total;
    let max = (sa + sb) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Normalized mutual information, MI / mean(H(a), H(b)). Two one-cluster
/// labelings score 1 (they agree), as in scikit-learn.
pub fn nmi(a: &[u32], b: &[u32]) -> f64 {
    let t = table(a, b);
    if t.n == 0.0 {
        return 1.0;
    }
    let entropy = |v: &[f64]| -> f64 {
        v.iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / t.n) * (c / t.n).ln())
            .sum()
    };
    let (ha, hb) = (entropy(&t.rows), entropy(&t.cols));
    if ha == 0.0 && hb == 0.0 {
        return 1.0;
    }
    let mut mi = 0.0;
    for (i, &r) in t.rows.iter().enumerate() {
        for (j, &c) in t.cols.iter().enumerate() {
            let nij = t.cells[i * t.nc + j];
            if nij > 0.0 {
                mi += nij / t.n * (t.n * nij / (r * c)).ln();
            }
        }
    }
    let denom = (ha + hb) / 2.0;
    if denom > 0.0 {
        (mi / denom).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn seeded(seed: u64, _stream: &str) -> Rng {
        Rng::seed_from_u64(seed)
    }

    #[test]
    fn identical_and_relabelled_partitions_score_one() {
        let a = [0, 0, 1, 1, 2, 2];
        let b = [5, 5, 3, 3, 0, 0];
        assert!((ari(&a, &a) - 1.0).abs() < 1e-12);
        assert!((ari(&a, &b) - 1.0).abs() < 1e-12);
        assert!((nmi(&a, &b) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_small_example() {
        // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714,
        // normalized_mutual_info_score(...) = 0.8.
        let (a, b) = ([0, 0, 1, 1], [0, 0, 1, 2]);
        assert!((ari(&a, &b) - 4.0 / 7.0).abs() < 1e-9, "{}", ari(&a, &b));
        assert!((nmi(&a, &b) - 0.8).abs() < 1e-9, "{}", nmi(&a, &b));
        // adjusted_rand_score([0,0,0,1,1,1],[0,0,1,1,2,2]) = 0.2424242424 (8/33).
        let (a, b) = ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]);
        assert!((ari(&a, &b) - 8.0 / 33.0).abs() < 1e-9, "{}", ari(&a, &b));
    }

    #[test]
    fn independent_partitions_score_near_zero() {
        let a: Vec<u32> = (0..10_000).map(|i| i % 4).collect();
        let b: Vec<u32> = (0..10_000).map(|i| (i / 7) % 3).collect();
        assert!(ari(&a, &b).abs() < 0.01);
        assert!(nmi(&a, &b) < 0.01);
    }

    #[test]
    fn silhouette_of_separated_and_mixed_labelings() {
        // Two tight groups far apart on a line.
        let data = vec![0.0, 0.1, 0.2, 10.0, 10.1, 10.2];
        let good = [0, 0, 0, 1, 1, 1];
        let bad = [0, 1, 0, 1, 0, 1];
        let single = [0; 6];
        let s = silhouettes(&data, 1, &[0, 1, 2, 3, 4, 5], &[&good, &bad, &single]);
        // By hand: the end points have a = 0.15 and b = 10.1 (outer) or 9.9
        // (inner); the middle ones a = 0.1, b = 10.
        let exact = (2.0 * (1.0 - 0.15 / 10.1) + 2.0 * 0.99 + 2.0 * (1.0 - 0.15 / 9.9)) / 6.0;
        assert!((s[0] - exact).abs() < 1e-12, "{} vs {exact}", s[0]);
        assert!(s[1] < 0.0, "{s:?}");
        assert_eq!(s[2], 0.0);
        let one = silhouettes(&data, 1, &[0, 3], &[&good]);
        assert_eq!(one[0], 0.0, "singletons in the sample score 0");
    }

    #[test]
    fn sample_is_deterministic_sorted_and_bounded() {
        let a = sample(1000, 10, &mut seeded(1, "s"));
        assert_eq!(a, sample(1000, 10, &mut seeded(1, "s")));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(5, 10, &mut seeded(1, "s")), vec![0, 1, 2, 3, 4]);
    }
}
