//! Benchmarks for transform: our KMeans vs smartcore's on the same
//! 1,000,000-point matrix (seconds and inertia), and `transform()` end to end
//! on 1,000,000 synthetic customers with seconds per sub-step.
//!
//! Run: `cargo bench --bench kmeans` (release). `SEGPIPE_BENCH_N` overrides
//! the customer count; `SEGPIPE_BENCH_SMARTCORE_MAX` caps the points given to
//! smartcore (default: 1M, dropped to 100k when 100k already takes > 12 s).

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use segpipe::config::TransformSettings;
use segpipe::transform::{self, TransformOpts, kmeans};
// `synthetic.rs` is a test fixture kept out of the library build; it names
// its imports `crate::…`, which these resolve.
use segpipe::{generate, model, rng};

#[path = "../src/transform/synthetic.rs"]
mod synthetic;
use smartcore::cluster::kmeans::{KMeans, KMeansParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow_free::Result {
    let n = env_usize("SEGPIPE_BENCH_N", 1_000_000);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).ok_or("bad date")?;
    let t = Instant::now();
    let joined = synthetic::joined(n, 42, as_of, &synthetic::Dirt::default());
    println!(
        "synthetic world: {n} customers, {} purchases, built in {:.2}s",
        joined.purchases.len(),
        t.elapsed().as_secs_f64()
    );

    let s = TransformSettings::default();
    let opts = TransformOpts {
        as_of,
        seed: 42,
        k: s.k,
        k_min: s.k_min,
        k_max: s.k_max,
        features: s.features.clone(),
        log1p: s.log1p,
        restarts: s.restarts,
        max_iter: s.max_iter,
        silhouette_sample: s.silhouette_sample,
        run_id: "bench".into(),
        started_at: DateTime::<Utc>::from_timestamp(1_772_000_000, 0).ok_or("bad time")?,
        method: s.method,
        model: None,
        previous_model: None,
        holdout_from: None,
    };
    let t = Instant::now();
    let (report, times) = transform::transform_timed(joined, &opts).map_err(|e| e.to_string())?;
    let total = t.elapsed().as_secs_f64();
    println!("\ntransform() end to end: {total:.2}s (k = auto)");
    for (step, d) in &times {
        println!("  {step:<15} {:>7.3}s", d.as_secs_f64());
    }
    let e = report.model.evaluation.clone().ok_or("no evaluation")?;
    println!(
        "  k {}  silhouette {:.4}  ARI {:.4}  NMI {:.4}  rows: {:?}",
        report.model.k,
        report.model.silhouette.unwrap_or(0.0),
        e.ari,
        e.nmi,
        report.row_counts()
    );
    let sweep_s = times
        .iter()
        .find(|(step, _)| *step == "k_sweep")
        .map_or(0.0, |(_, d)| d.as_secs_f64());
    println!("  k sweep (every criterion): {sweep_s:.3}s");
    println!(
        "  {:>2} {:>12} {:>10} {:>12} {:>8} {:>8} {:>9} {:>10} {:>8}",
        "k",
        "inertia",
        "silhouette",
        "calinski-h",
        "davies-b",
        "smallest",
        "stab ARI",
        "min Jacc.",
        "eligible"
    );
    for r in &report.model.k_sweep {
        println!(
            "  {:>2} {:>12.1} {:>10.4} {:>12.1} {:>8.4} {:>8.4} {:>9.4} {:>10.4} {:>8}{}",
            r.k,
            r.inertia,
            r.silhouette,
            r.calinski_harabasz,
            r.davies_bouldin,
            r.smallest_share,
            r.stability,
            r.min_segment_stability,
            r.eligible,
            if r.k == report.model.k {
                "  <- chosen"
            } else {
                ""
            }
        );
    }

    // The KMeans input exactly as transform builds it by default: buyers,
    // log1p(clv), log1p(purchase_count), days_since_last_purchase, z-scored.
    let mut rows: Vec<[f64; 3]> = report
        .customers
        .iter()
        .filter_map(|c| {
            // Buyers with a known recency (the pipeline imputes the rest).
            let recency = c
                .days_since_last_purchase
                .filter(|_| c.purchase_count > 0)?;
            Some([
                c.clv.ln_1p(),
                f64::from(c.purchase_count).ln_1p(),
                f64::from(recency),
            ])
        })
        .collect();
    for j in 0..3 {
        let m = rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64;
        let sd = (rows.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / rows.len() as f64).sqrt();
        for r in &mut rows {
            r[j] = (r[j] - m) / sd;
        }
    }
    let k = 4;
    println!(
        "\nKMeans k={k} on {} points x 3 features (max_iter 100)",
        rows.len()
    );
    let data: Vec<f64> = rows.iter().flatten().copied().collect();
    for restarts in [1, 4] {
        let p = kmeans::Params {
            k,
            restarts,
            max_iter: 100,
            tol: 1e-4,
        };
        let t = Instant::now();
        let fit = kmeans::fit(&data, 3, &p, &mut rng::seeded(42, "kmeans"));
        println!(
            "  ours      restarts={restarts}: {:>7.2}s  inertia {:.1}  iterations {}",
            t.elapsed().as_secs_f64(),
            fit.inertia,
            fit.iterations
        );
    }

    let mut cap = env_usize("SEGPIPE_BENCH_SMARTCORE_MAX", rows.len());
    for size in [100_000.min(rows.len()), rows.len()] {
        if size > cap {
            println!(
                "  smartcore at {size} points: skipped (projected > 2 minutes from the 100k run)"
            );
            continue;
        }
        let part = &rows[..size];
        let x = DenseMatrix::new(size, 3, part.iter().flatten().copied().collect(), false)
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let mut params = KMeansParameters::default().with_k(k).with_max_iter(100);
        params.seed = Some(42);
        let model: KMeans<f64, u32, DenseMatrix<f64>, Vec<u32>> =
            KMeans::fit(&x, params).map_err(|e| e.to_string())?;
        let fit_s = t.elapsed().as_secs_f64();
        let labels = model.predict(&x).map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        let inertia = inertia_of(part, &labels, k);
        let ours = kmeans::fit(
            &part.iter().flatten().copied().collect::<Vec<_>>(),
            3,
            &kmeans::Params {
                k,
                restarts: 1,
                max_iter: 100,
                tol: 1e-4,
            },
            &mut rng::seeded(42, "kmeans"),
        );
        println!(
            "  smartcore {size:>8} points: {secs:>7.2}s (fit {fit_s:.2}s + predict)  inertia {inertia:.1}  (ours, 1 restart, same points: inertia {:.1})",
            ours.inertia
        );
        if size == 100_000 && secs * (rows.len() as f64 / size as f64) > 120.0 {
            cap = size;
        }
    }
    Ok(())
}

/// Inertia of a labelling: squared distances to the mean of each cluster.
fn inertia_of(rows: &[[f64; 3]], labels: &[u32], k: usize) -> f64 {
    let mut sums = vec![[0.0; 3]; k];
    let mut counts = vec![0.0; k];
    for (r, &l) in rows.iter().zip(labels) {
        for j in 0..3 {
            sums[l as usize][j] += r[j];
        }
        counts[l as usize] += 1.0;
    }
    rows.iter()
        .zip(labels)
        .map(|(r, &l)| {
            (0..3)
                .map(|j| (r[j] - sums[l as usize][j] / counts[l as usize]).powi(2))
                .sum::<f64>()
        })
        .sum()
}

/// A tiny error type so the bench needs no extra dependency.
mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
