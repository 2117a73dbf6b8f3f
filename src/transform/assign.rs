//! Assign: what a saved `segment_model.json` is used for. Reading it,
//! checking that it fits this build and this data (`--model`,
//! `--previous-model`), nearest-centroid assignment with the saved scaling,
//! and matching a refit's centroids to a previous model's so ids and labels
//! keep their meaning. Fitting is elsewhere (`cluster`, `rfm`).

use std::path::Path;

use crate::model::{FeatureScale, MODEL_VERSION, Method, SegmentModel};

use super::Error;
use super::hungarian;
use super::scale::{self, ALL_FEATURES};

/// Read a model file.
pub fn read(path: &Path) -> Result<SegmentModel, Error> {
    let text = std::fs::read(path).map_err(|source| Error::ModelRead {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::ModelParse {
        path: path.to_owned(),
        source,
    })
}

/// Check that `model` can assign customers here, and return its features as
/// the names `scale` knows. `requested` is the configured feature list
/// (empty = not configured): when given it must be the model's.
pub fn check(
    model: &SegmentModel,
    path: &Path,
    requested: &[&'static str],
) -> Result<Vec<&'static str>, Error> {
    let bad = |message: String| Error::ModelMismatch {
        path: path.to_owned(),
        message,
    };
    if model.version != MODEL_VERSION {
        return Err(bad(format!(
            "model version {}, this segpipe reads version {MODEL_VERSION}",
            model.version
        )));
    }
    let ids: Vec<u32> = model.labels.keys().copied().collect();
    if ids.iter().enumerate().any(|(i, &id)| id as usize != i) {
        return Err(bad(format!(
            "segment ids {ids:?} are not 0, 1, 2, … without gaps"
        )));
    }
    if model.method == Method::Rfm {
        return Ok(Vec::new());
    }
    let mut names = Vec::with_capacity(model.features.len());
    for f in &model.features {
        match ALL_FEATURES.iter().find(|n| **n == f.feature) {
            Some(n) => names.push(*n),
            None => {
                return Err(bad(format!(
                    "unknown feature `{}`, this segpipe knows {}",
                    f.feature,
                    ALL_FEATURES.join(", ")
                )));
            }
        }
        if !(f.std.is_finite() && f.std > 0.0 && f.mean.is_finite()) {
            return Err(bad(format!(
                "feature `{}` has scaling mean {} std {}",
                f.feature, f.mean, f.std
            )));
        }
    }
    if !requested.is_empty() && requested != names.as_slice() {
        return Err(bad(format!(
            "features {}, configured features {}",
            names.join(", "),
            requested.join(", ")
        )));
    }
    if model.centroids.len() != model.k as usize {
        return Err(bad(format!(
            "k {} but {} centroids",
            model.k,
            model.centroids.len()
        )));
    }
    if let Some(c) = model.centroids.iter().find(|c| c.len() != names.len()) {
        return Err(bad(format!(
            "a centroid has {} values for {} features",
            c.len(),
            names.len()
        )));
    }
    if model.labels.len() < model.centroids.len() {
        return Err(bad(format!(
            "{} labels for {} centroids",
            model.labels.len(),
            model.centroids.len()
        )));
    }
    Ok(names)
}

/// Index of the nearest centroid (squared Euclidean; ties to the lower index)
/// for each of the rows of `data`, and the summed squared distance.
pub fn nearest(data: &[f64], d: usize, centroids: &[Vec<f64>]) -> (Vec<u32>, f64) {
    let mut inertia = 0.0;
    let labels =
        data.chunks_exact(d.max(1))
            .map(|row| {
                let (best, dist) = centroids.iter().enumerate().fold(
                    (0usize, f64::INFINITY),
                    |(bi, bd), (i, c)| {
                        let dd = sq_dist(row, c);
                        if dd < bd { (i, dd) } else { (bi, bd) }
                    },
                );
                inertia += if dist.is_finite() { dist } else { 0.0 };
                best as u32
            })
            .collect();
    (labels, inertia)
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// A centroid scaled with `from`, expressed in the space scaled with `to`
/// (through raw feature units), so centroids of two fits can be compared.
pub fn rescale(centroid: &[f64], from: &[FeatureScale], to: &[FeatureScale]) -> Vec<f64> {
    centroid
        .iter()
        .zip(from.iter().zip(to))
        .map(|(&z, (f, t))| scale::to_scaled(t, scale::to_raw(f, z)))
        .collect()
}

/// For each new centroid, the old segment id it continues: the assignment
/// of new to old centroids minimising the summed squared distances in the
/// new fit's space (Hungarian algorithm). Needs as many old as new
/// centroids; `None` otherwise.
pub fn match_centroids(
    new: &[Vec<f64>],
    new_scales: &[FeatureScale],
    old: &[Vec<f64>],
    old_scales: &[FeatureScale],
) -> Option<Vec<u32>> {
    if new.len() > old.len() || new_scales.len() != old_scales.len() {
        return None;
    }
    let old_here: Vec<Vec<f64>> = old
        .iter()
        .map(|c| rescale(c, old_scales, new_scales))
        .collect();
    let cost: Vec<f64> = new
        .iter()
        .flat_map(|n| old_here.iter().map(move |o| sq_dist(n, o)))
        .collect();
    if cost.iter().any(|c| !c.is_finite()) {
        return None;
    }
    Some(
        hungarian::assign(&cost, new.len(), old.len())
            .into_iter()
            .map(|j| j as u32)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, NaiveDate, Utc};

    use super::*;

    fn fs(feature: &str, log1p: bool, mean: f64, std: f64) -> FeatureScale {
        FeatureScale {
            feature: feature.into(),
            log1p,
            mean,
            std,
            impute: None,
        }
    }

    fn model() -> SegmentModel {
        SegmentModel {
            version: MODEL_VERSION,
            method: Method::Kmeans,
            run_id: "r".into(),
            started_at: DateTime::<Utc>::from_timestamp(0, 0).expect("valid"),
            as_of: NaiveDate::from_ymd_opt(2026, 3, 1).expect("valid"),
            seed: 1,
            k: 2,
            features: vec![
                fs("clv", true, 5.0, 2.0),
                fs("purchase_count", true, 1.0, 0.5),
            ],
            centroids: vec![vec![1.0, 1.0], vec![-1.0, -1.0]],
            inertia: 0.0,
            silhouette: None,
            k_sweep: Vec::new(),
            labels: BTreeMap::from([(0, "a".into()), (1, "b".into()), (2, "no purchases".into())]),
            evaluation: None,
            holdout: None,
        }
    }

    #[test]
    fn a_fitting_model_passes_and_each_misfit_is_named() {
        let p = Path::new("m.json");
        assert_eq!(
            check(&model(), p, &[]).expect("fits"),
            vec!["clv", "purchase_count"]
        );
        let msg = |m: SegmentModel, req: &[&'static str]| match check(&m, p, req) {
            Err(Error::ModelMismatch { message, .. }) => message,
            other => panic!("expected a mismatch, got {other:?}"),
        };
        let mut m = model();
        m.version = 2;
        assert_eq!(msg(m, &[]), "model version 2, this segpipe reads version 1");
        let mut m = model();
        m.features[1].feature = "loyalty_points".into();
        assert!(msg(m, &[]).starts_with("unknown feature `loyalty_points`"));
        assert_eq!(
            msg(model(), &["clv", "days_since_last_purchase"]),
            "features clv, purchase_count, configured features clv, days_since_last_purchase"
        );
        let mut m = model();
        m.centroids[1].pop();
        assert_eq!(msg(m, &[]), "a centroid has 1 values for 2 features");
        let mut m = model();
        m.labels.remove(&1);
        assert_eq!(
            msg(m, &[]),
            "segment ids [0, 2] are not 0, 1, 2, … without gaps"
        );
    }

    #[test]
    fn old_model_files_without_version_method_or_holdout_still_read() {
        let mut v = serde_json::to_value(model()).expect("serialize");
        let o = v.as_object_mut().expect("object");
        o.remove("version");
        o.remove("method");
        o.remove("holdout");
        let m: SegmentModel = serde_json::from_value(v).expect("old file reads");
        assert_eq!((m.version, m.method, m.holdout), (1, Method::Kmeans, None));
    }

    #[test]
    fn nearest_picks_the_closest_centroid() {
        let cs = vec![vec![0.0, 0.0], vec![10.0, 0.0]];
        let (l, inertia) = nearest(&[1.0, 0.0, 9.0, 1.0, 5.0, 0.0], 2, &cs);
        assert_eq!(l, vec![0, 1, 0], "a tie goes to the lower index");
        assert!((inertia - (1.0 + 2.0 + 25.0)).abs() < 1e-12);
    }

    #[test]
    fn centroids_match_across_different_scalings() {
        let old_s = vec![
            fs("clv", true, 5.0, 2.0),
            fs("days_since_last_purchase", false, 100.0, 50.0),
        ];
        let new_s = vec![
            fs("clv", true, 6.0, 1.0),
            fs("days_since_last_purchase", false, 80.0, 40.0),
        ];
        // Three old segments in raw units, then permuted and re-scaled.
        let raw = [[1000.0, 10.0], [50.0, 400.0], [300.0, 100.0]];
        let z = |s: &[FeatureScale], r: &[f64; 2]| {
            vec![scale::to_scaled(&s[0], r[0]), scale::to_scaled(&s[1], r[1])]
        };
        let old: Vec<Vec<f64>> = raw.iter().map(|r| z(&old_s, r)).collect();
        let new: Vec<Vec<f64>> = [2, 0, 1].iter().map(|&i| z(&new_s, &raw[i])).collect();
        assert_eq!(
            match_centroids(&new, &new_s, &old, &old_s),
            Some(vec![2, 0, 1])
        );
        assert_eq!(match_centroids(&old, &old_s, &new[..2], &new_s), None);
    }
}
