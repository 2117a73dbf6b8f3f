//! Cluster: choose k (fixed, or `auto` by the rule in `criteria` over a
//! sweep of 2..=8) and fit the final KMeans on the scaled buyers. The KMeans
//! algorithm itself is in `kmeans`, the criteria and the rule in `criteria`;
//! ordering and naming segments is in `label`.

use std::time::{Duration, Instant};

use super::KChoice;
use crate::model::KSweep;
use crate::rng;

use super::criteria;
use super::evaluate;
use super::kmeans::{self, Fit, Params};
use super::scale::Scaled;

/// Most points the `auto` sweep fits on. Measured at 1M buyers
/// (`cargo bench --bench kmeans`): the sweep on 50,000 points picks the same k
/// as on all points while costing a fraction of a full fit per k.
pub const SWEEP_SAMPLE: usize = 50_000;

/// Most points the `auto` silhouettes are computed on (`silhouette_sample`
/// lowers it further). The pairwise distances grow with the square of the
/// sample and were 0.45 s of a 0.50 s transform at 10,000 customers with the
/// 10,000-point default; on 4,000 points the seven values move by at most
/// 0.003 (measured on the planted world) for a sixth of the cost. A fixed `--k`
/// computes one silhouette, on `silhouette_sample` points.
pub const SWEEP_SILHOUETTE_SAMPLE: usize = 4_000;

/// What clustering needs from `TransformOpts`.
#[derive(Clone, Debug)]
pub struct ClusterOpts {
    pub k: KChoice,
    pub k_min: u32,
    pub k_max: u32,
    pub restarts: u32,
    pub max_iter: u32,
    pub silhouette_sample: usize,
    pub seed: u64,
}

/// The final fit plus what the model file records about choosing it.
#[derive(Clone, Debug)]
pub struct Clustering {
    pub fit: Fit,
    pub silhouette: Option<f64>,
    /// One row per k tried; with more than `SWEEP_SAMPLE` buyers, every
    /// criterion is that of the sweep sample, not of all points.
    pub k_sweep: Vec<KSweep>,
    /// Time spent computing the criteria and choosing k (the sweep's fits
    /// included), for benches.
    pub sweep_time: Duration,
}

/// Fit KMeans on `scaled`. Every random choice comes from streams of
/// `opts.seed`, so the result is a function of (data, opts). Each k is fitted
/// from a fresh `kmeans` stream, so `auto` choosing k gives the segments of a
/// fixed `--k` of that value (when the sweep holds every point).
pub fn cluster(scaled: &Scaled, opts: &ClusterOpts) -> Clustering {
    let (data, d) = (&scaled.data, scaled.d);
    let n = scaled.rows();
    let params = |k: u32| Params {
        k: k as usize,
        restarts: opts.restarts,
        max_iter: opts.max_iter,
        ..Params::default()
    };
    let kmeans_rng = || rng::seeded(opts.seed, "kmeans");
    let mut sample_rng = rng::seeded(opts.seed, "silhouette-sample");
    let started = Instant::now();
    match opts.k {
        KChoice::Fixed(k) => {
            let fit = kmeans::fit(data, d, &params(k), &mut kmeans_rng());
            let sil_idx = evaluate::sample(n, opts.silhouette_sample, &mut sample_rng);
            let silhouette =
                (fit.k >= 2).then(|| evaluate::silhouettes(data, d, &sil_idx, &[&fit.labels])[0]);
            let sweep_started = Instant::now();
            let mut k_sweep = criteria_rows(
                data,
                d,
                std::slice::from_ref(&fit),
                &[silhouette.unwrap_or(0.0)],
                &params(k),
                opts.seed,
            );
            for row in &mut k_sweep {
                row.eligible = criteria::eligible(row);
            }
            Clustering {
                fit,
                silhouette,
                k_sweep,
                sweep_time: sweep_started.elapsed(),
            }
        }
        KChoice::Auto => {
            // Fit the sweep on a sample: k-means on 50k points finds the
            // same centres as on all of them.
            let sweep_idx =
                evaluate::sample(n, SWEEP_SAMPLE, &mut rng::seeded(opts.seed, "sweep-sample"));
            let sweep_data: Vec<f64> = if sweep_idx.len() == n {
                data.clone()
            } else {
                sweep_idx
                    .iter()
                    .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
                    .collect()
            };
            let m = sweep_idx.len();
            let k_lo = opts.k_min.max(2);
            let ks: Vec<u32> = (k_lo..=opts.k_max.max(k_lo))
                .filter(|&k| (k as usize) <= m)
                .collect();
            if ks.is_empty() {
                // Fewer than two buyers: nothing to sweep.
                let fit = kmeans::fit(data, d, &params(1), &mut kmeans_rng());
                return Clustering {
                    fit,
                    silhouette: None,
                    k_sweep: Vec::new(),
                    sweep_time: started.elapsed(),
                };
            }
            let fits: Vec<Fit> = criteria::parallel_map(ks.len(), |i| {
                kmeans::fit(&sweep_data, d, &params(ks[i]), &mut kmeans_rng())
            });
            let sil_size = opts.silhouette_sample.min(SWEEP_SILHOUETTE_SAMPLE);
            let sil_idx = evaluate::sample(m, sil_size, &mut sample_rng);
            let labelings: Vec<&[u32]> = fits.iter().map(|f| f.labels.as_slice()).collect();
            let sils = evaluate::silhouettes(&sweep_data, d, &sil_idx, &labelings);
            let mut k_sweep = criteria_rows(&sweep_data, d, &fits, &sils, &params(k_lo), opts.seed);
            for row in &mut k_sweep {
                row.eligible = criteria::eligible(row);
            }
            let best = criteria::choose_k(&k_sweep).expect("the sweep has rows");
            let sweep_time = started.elapsed();
            // The chosen labels, refitted on every point when the sweep saw a
            // sample (then with a silhouette on a fresh sample of all points).
            let fit = if m == n {
                fits.into_iter().nth(best).expect("best indexes fits")
            } else {
                kmeans::fit(data, d, &params(ks[best]), &mut kmeans_rng())
            };
            let silhouette = if m == n {
                sils[best]
            } else {
                let idx = evaluate::sample(n, sil_size, &mut sample_rng);
                evaluate::silhouettes(data, d, &idx, &[&fit.labels])[0]
            };
            Clustering {
                fit,
                silhouette: Some(silhouette),
                k_sweep,
                sweep_time,
            }
        }
    }
}

/// Every criterion of each fit (fits of the same points); `eligible` is
/// left for the caller.
fn criteria_rows(
    data: &[f64],
    d: usize,
    fits: &[Fit],
    silhouettes: &[f64],
    params: &Params,
    seed: u64,
) -> Vec<KSweep> {
    let references: Vec<(&[u32], usize)> =
        fits.iter().map(|f| (f.labels.as_slice(), f.k)).collect();
    let stability = criteria::stabilities(data, d, &references, params, seed);
    fits.iter()
        .zip(silhouettes)
        .zip(stability)
        .map(|((fit, &silhouette), stability)| KSweep {
            k: fit.k as u32,
            inertia: fit.inertia,
            silhouette,
            calinski_harabasz: criteria::calinski_harabasz(data, d, &fit.labels, fit.k),
            davies_bouldin: criteria::davies_bouldin(data, d, &fit.labels, fit.k),
            smallest_share: criteria::smallest_share(&fit.labels, fit.k),
            stability: stability.ari,
            min_segment_stability: stability.min_jaccard,
            eligible: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FeatureScale;

    #[test]
    fn auto_picks_the_planted_k_and_keeps_the_sweep() {
        let mut data = Vec::new();
        let centres = [[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]];
        let mut rng = rng::seeded(3, "t");
        for i in 0..900 {
            let c = centres[i % 3];
            data.push(c[0] + crate::generate::persona::normal(&mut rng));
            data.push(c[1] + crate::generate::persona::normal(&mut rng));
        }
        let scaled = Scaled {
            data,
            d: 2,
            scales: Vec::<FeatureScale>::new(),
            imputed: Vec::new(),
        };
        let opts = ClusterOpts {
            k: KChoice::Auto,
            k_min: 2,
            k_max: 6,
            restarts: 3,
            max_iter: 100,
            silhouette_sample: 500,
            seed: 42,
        };
        let c = cluster(&scaled, &opts);
        assert_eq!(c.fit.k, 3);
        assert_eq!(
            c.k_sweep.iter().map(|s| s.k).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
        assert!(c.silhouette.expect("k>=2") > 0.6);
        let again = cluster(&scaled, &opts);
        assert_eq!(again.fit, c.fit);
        assert_eq!(again.k_sweep, c.k_sweep);
        // Every criterion is filled in; the planted k is stable and sizable.
        let three = &c.k_sweep[1];
        assert_eq!((three.stability, three.min_segment_stability), (1.0, 1.0));
        assert!((three.smallest_share - 1.0 / 3.0).abs() < 0.01, "{three:?}");
        assert!(three.calinski_harabasz > c.k_sweep[0].calinski_harabasz);
        assert!(three.davies_bouldin < c.k_sweep[0].davies_bouldin);
        assert!(three.eligible);
        // `auto` choosing 3 gives the segments of `--k 3`.
        let fixed = cluster(
            &scaled,
            &ClusterOpts {
                k: KChoice::Fixed(3),
                ..opts
            },
        );
        assert_eq!(fixed.fit, c.fit);
        assert_eq!(fixed.k_sweep.len(), 1);
        assert_eq!(fixed.k_sweep[0].min_segment_stability, 1.0);
    }

    /// Prints the sweep and the chosen k on a scaled matrix from a CSV file
    /// (one row per customer, comma-separated, no header), e.g. the CDNOW log
    /// scaled as transform scales its default features (the README table).
    /// Run: `SEGPIPE_SWEEP_CSV=FILE cargo test --release --lib
    /// sweep_of_a_csv_matrix -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement on an external file, prints a table"]
    fn sweep_of_a_csv_matrix() {
        let path = std::env::var("SEGPIPE_SWEEP_CSV").expect("SEGPIPE_SWEEP_CSV names a file");
        let text = std::fs::read_to_string(path).expect("readable matrix");
        let rows: Vec<Vec<f64>> = text
            .lines()
            .map(|l| {
                l.split(',')
                    .map(|v| v.trim().parse().expect("number"))
                    .collect()
            })
            .collect();
        let scaled = Scaled {
            d: rows[0].len(),
            data: rows.concat(),
            scales: Vec::new(),
            imputed: Vec::new(),
        };
        let opts = ClusterOpts {
            k: KChoice::Auto,
            k_min: 2,
            k_max: 8,
            restarts: 4,
            max_iter: 100,
            silhouette_sample: 10_000,
            seed: 42,
        };
        let t = std::time::Instant::now();
        let c = cluster(&scaled, &opts);
        println!(
            "{} rows, sweep {:?}, chosen k {}",
            scaled.rows(),
            t.elapsed(),
            c.fit.k
        );
        for r in &c.k_sweep {
            println!("{r:?}");
        }
        if let Ok(out) = std::env::var("SEGPIPE_SWEEP_LABELS") {
            let text: String = c.fit.labels.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(out, text).expect("labels written");
        }
    }
}
