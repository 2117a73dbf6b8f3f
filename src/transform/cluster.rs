//! Cluster: choose k (fixed, or `auto` by silhouette over a sweep) and fit the
//! final KMeans on the scaled buyers. The KMeans algorithm itself is in
//! `kmeans`; ordering and naming segments is in `label`.

use super::KChoice;
use crate::model::KSweep;
use crate::rng;

use super::evaluate;
use super::kmeans::{self, Fit, Params};
use super::scale::Scaled;

/// Most points the `auto` sweep fits on. Measured at 1M buyers
/// (`cargo bench --bench kmeans`): the sweep on 50,000 points picks the same k
/// as on all points while costing a fraction of a full fit per k.
pub const SWEEP_SAMPLE: usize = 50_000;

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
    /// One row per k tried; with more than `SWEEP_SAMPLE` buyers, inertia and
    /// silhouette are those of the sweep sample, not of all points.
    pub k_sweep: Vec<KSweep>,
}

/// Fit KMeans on `scaled`. Every random choice comes from streams of
/// `opts.seed`, so the result is a function of (data, opts).
pub fn cluster(scaled: &Scaled, opts: &ClusterOpts) -> Clustering {
    let (data, d) = (&scaled.data, scaled.d);
    let n = scaled.rows();
    let params = |k: u32| Params {
        k: k as usize,
        restarts: opts.restarts,
        max_iter: opts.max_iter,
        ..Params::default()
    };
    let mut sample_rng = rng::seeded(opts.seed, "silhouette-sample");
    let mut kmeans_rng = rng::seeded(opts.seed, "kmeans");
    match opts.k {
        KChoice::Fixed(k) => {
            let fit = kmeans::fit(data, d, &params(k), &mut kmeans_rng);
            let sil_idx = evaluate::sample(n, opts.silhouette_sample, &mut sample_rng);
            let silhouette =
                (fit.k >= 2).then(|| evaluate::silhouettes(data, d, &sil_idx, &[&fit.labels])[0]);
            let k_sweep = vec![KSweep {
                k: fit.k as u32,
                inertia: fit.inertia,
                silhouette: silhouette.unwrap_or(0.0),
            }];
            Clustering {
                fit,
                silhouette,
                k_sweep,
            }
        }
        KChoice::Auto => {
            // Fit the sweep on a sample: silhouette only sees ≤ 10k points
            // anyway, and k-means on 50k points finds the same centres.
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
            let sil_idx =
                evaluate::sample(sweep_idx.len(), opts.silhouette_sample, &mut sample_rng);
            let ks: Vec<u32> = (opts.k_min.max(2)..=opts.k_max.max(opts.k_min.max(2)))
                .filter(|&k| (k as usize) <= sweep_idx.len())
                .collect();
            let fits: Vec<Fit> = ks
                .iter()
                .map(|&k| kmeans::fit(&sweep_data, d, &params(k), &mut kmeans_rng))
                .collect();
            let labelings: Vec<&[u32]> = fits.iter().map(|f| f.labels.as_slice()).collect();
            let sils = evaluate::silhouettes(&sweep_data, d, &sil_idx, &labelings);
            let k_sweep: Vec<KSweep> = fits
                .iter()
                .zip(&sils)
                .map(|(f, &s)| KSweep {
                    k: f.k as u32,
                    inertia: f.inertia,
                    silhouette: s,
                })
                .collect();
            // Highest silhouette; ties go to the smaller k (first seen).
            let best = sils
                .iter()
                .enumerate()
                .fold(None::<(usize, f64)>, |acc, (i, &s)| match acc {
                    Some((_, b)) if b >= s => acc,
                    _ => Some((i, s)),
                })
                .map(|(i, _)| i);
            let Some(best) = best else {
                // Fewer than two buyers: nothing to sweep.
                let fit = kmeans::fit(data, d, &params(1), &mut kmeans_rng);
                return Clustering {
                    fit,
                    silhouette: None,
                    k_sweep,
                };
            };
            if sweep_idx.len() == n {
                let fit = fits.into_iter().nth(best).expect("best indexes fits");
                return Clustering {
                    fit,
                    silhouette: Some(sils[best]),
                    k_sweep,
                };
            }
            // Refit the chosen k on every point; the reported silhouette is
            // that of the final labels (on a fresh sample of all points), while
            // k_sweep keeps the sample's inertia and silhouette per k.
            let fit = kmeans::fit(data, d, &params(ks[best]), &mut kmeans_rng);
            let idx = evaluate::sample(n, opts.silhouette_sample, &mut sample_rng);
            let silhouette = Some(evaluate::silhouettes(data, d, &idx, &[&fit.labels])[0]);
            Clustering {
                fit,
                silhouette,
                k_sweep,
            }
        }
    }
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
    }
}
