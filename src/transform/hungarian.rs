//! The Hungarian algorithm: a minimum-cost one-to-one assignment of rows to
//! columns. `--previous-model` uses it to match new centroids to old ones so
//! segment ids and labels keep their meaning; a greedy nearest-first match
//! can steal a centroid's only good partner and is not used.
//!
//! This is the O(n² m) shortest-augmenting-path form with row and column
//! potentials (Kuhn–Munkres as in Jonker–Volgenant's presentation), for
//! `n ≤ m`.

/// Assign each of the `n` rows of the row-major `n × m` matrix `cost`
/// (`n ≤ m`) to a distinct column, minimising the total cost. Returns the
/// column of each row. Costs must be finite.
pub fn assign(cost: &[f64], n: usize, m: usize) -> Vec<usize> {
    assert!(n <= m, "more rows than columns");
    assert_eq!(cost.len(), n * m, "cost is n × m");
    // 1-based arrays with a virtual column 0, as in the textbook form.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut p = vec![0usize; m + 1]; // p[j] = row matched to column j
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                if cur < minv[j] {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the root.
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut row_to_col = vec![0usize; n];
    for j in 1..=m {
        if p[j] != 0 {
            row_to_col[p[j] - 1] = j - 1;
        }
    }
    row_to_col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(cost: &[f64], m: usize, a: &[usize]) -> f64 {
        a.iter().enumerate().map(|(i, &j)| cost[i * m + j]).sum()
    }

    /// Every permutation's cost, for checking optimality by brute force.
    fn brute_force(cost: &[f64], n: usize) -> f64 {
        fn go(cost: &[f64], n: usize, i: usize, used: &mut Vec<bool>, acc: f64, best: &mut f64) {
            if i == n {
                *best = best.min(acc);
                return;
            }
            for j in 0..n {
                if !used[j] {
                    used[j] = true;
                    go(cost, n, i + 1, used, acc + cost[i * n + j], best);
                    used[j] = false;
                }
            }
        }
        let mut best = f64::INFINITY;
        go(cost, n, 0, &mut vec![false; n], 0.0, &mut best);
        best
    }

    #[test]
    fn beats_greedy_where_greedy_fails() {
        // Greedy takes row 0 → col 0 (cost 1), then row 1 must take col 1
        // (cost 100): 101. Optimal is 0 → 1, 1 → 0: 2 + 2 = 4.
        let cost = [1.0, 2.0, 2.0, 100.0];
        let a = assign(&cost, 2, 2);
        assert_eq!(a, vec![1, 0]);
        assert_eq!(total(&cost, 2, &a), 4.0);
    }

    #[test]
    fn textbook_example() {
        // A classic 4 × 4 instance with optimum 140 (job assignment).
        let cost = [
            82.0, 83.0, 69.0, 92.0, //
            77.0, 37.0, 49.0, 92.0, //
            11.0, 69.0, 5.0, 86.0, //
            8.0, 9.0, 98.0, 23.0,
        ];
        let a = assign(&cost, 4, 4);
        assert_eq!(a, vec![2, 1, 0, 3]);
        assert_eq!(total(&cost, 4, &a), 140.0);
    }

    #[test]
    fn matches_brute_force_on_pseudo_random_matrices() {
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 1000) as f64 / 10.0
        };
        for n in 1..=6 {
            for _ in 0..20 {
                let cost: Vec<f64> = (0..n * n).map(|_| next()).collect();
                let a = assign(&cost, n, n);
                let mut cols = a.clone();
                cols.sort_unstable();
                assert_eq!(cols, (0..n).collect::<Vec<_>>(), "a permutation");
                assert!((total(&cost, n, &a) - brute_force(&cost, n)).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn rectangular_leaves_the_worst_column_unused() {
        let cost = [5.0, 1.0, 9.0, 2.0, 8.0, 9.0];
        assert_eq!(assign(&cost, 2, 3), vec![1, 0]);
    }
}
