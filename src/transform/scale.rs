//! Scale: turn chosen features of the customers fed to KMeans into a dense
//! row-major matrix (optional log1p of skewed money/count features, then
//! z-score; gender one-hot), and record the parameters for the model file.
//!
//! Which features exist and which are the default lives here; clustering
//! itself does not.

use crate::model::{FeatureScale, Gender};

use super::Error;
use super::features::Features;

/// Feature set used when `TransformOpts::features` is empty.
///
/// Chosen by ARI/NMI against the planted personas on 10,000 synthetic
/// customers with the API's default dirt (seed 42, k = auto 2..=8, 4 restarts),
/// measured by `tests::candidate_feature_sets` in `transform/mod.rs` (run with
/// `--release -- --ignored --nocapture`):
///
/// | features (log1p on)                                  | ARI    | NMI    | k |
/// |------------------------------------------------------|--------|--------|---|
/// | **clv, purchase_count, days_since_last** (default)   | 0.9959 | 0.9942 | 4 |
/// | avg_purchase_amount, purchase_count, days_since_last | 0.9920 | 0.9885 | 4 |
/// | all 13 columns (money, counts, dates, age, income, gender) | 0.9924 | 0.9887 | 4 |
/// | clv, avg_amount, count, days_since_last, frequency   | 0.8601 | 0.9067 | 5 |
/// | clv, count, days_since_first, days_since_last, frequency | 0.8584 | 0.9109 | 3 |
/// | avg_amount, count, days_since_last, frequency        | 0.8578 | 0.9033 | 5 |
/// | clv, count, days_since_last, frequency               | 0.8339 | 0.8774 | 5 |
/// | clv, count, days_since_last, frequency, age, income  | 0.8145 | 0.8483 | 3 |
///
/// With log1p off the RFM set still scores 0.9861, but every set containing
/// `purchase_frequency` collapses to k = 2 (ARI 0.23): its raw tail (short
/// spans floored at 30 days) dominates the geometry. Frequency also hurts with
/// log1p on (it is noisy when 10% of dates are null), so the default is plain
/// recency / frequency-as-count / monetary.
pub const DEFAULT_FEATURES: &[&str] = &["clv", "purchase_count", "days_since_last_purchase"];

/// Every name `TransformOpts::features` accepts (`gender` expands to the three one-hot columns).
pub const ALL_FEATURES: &[&str] = &[
    "clv",
    "avg_purchase_amount",
    "max_purchase_amount",
    "min_purchase_amount",
    "purchase_count",
    "days_since_first_purchase",
    "days_since_last_purchase",
    "purchase_frequency",
    "age",
    "income",
    "gender_male",
    "gender_female",
    "gender_other",
];

/// Demographics of one customer after imputation, as scaling sees them.
/// Scaling asks for them customer by customer (a function, not a slice),
/// so no per-customer vector of them is held while clustering (issue 11).
#[derive(Clone, Copy, Debug, Default)]
pub struct Demographics {
    pub age: Option<u16>,
    pub income: Option<f64>,
    pub gender: Option<Gender>,
}

/// The KMeans input: `n` rows of `d` scaled values.
#[derive(Clone, Debug)]
pub struct Scaled {
    pub data: Vec<f64>,
    pub d: usize,
    pub scales: Vec<FeatureScale>,
    /// Per feature, how many rows had no value and were imputed.
    pub imputed: Vec<u64>,
}

impl Scaled {
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.d).unwrap_or(0)
    }
}

/// Resolve the names in `requested` (empty = default) into a validated list.
pub fn resolve(requested: &[String]) -> Result<Vec<&'static str>, Error> {
    if requested.is_empty() {
        return Ok(DEFAULT_FEATURES.to_vec());
    }
    let mut out: Vec<&'static str> = Vec::new();
    for raw in requested {
        let name = raw.trim().to_ascii_lowercase();
        let names: Vec<&'static str> = if name == "gender" {
            vec!["gender_male", "gender_female", "gender_other"]
        } else {
            match ALL_FEATURES.iter().find(|f| **f == name) {
                Some(f) => vec![*f],
                None => {
                    return Err(Error::Features {
                        message: format!(
                            "unknown feature `{raw}`, expected one of {}, gender",
                            ALL_FEATURES.join(", ")
                        ),
                    });
                }
            }
        };
        for n in names {
            if out.contains(&n) {
                return Err(Error::Features {
                    message: format!("feature `{n}` given twice"),
                });
            }
            out.push(n);
        }
    }
    Ok(out)
}

/// Money and count features are right-skewed (lognormal amounts, champions
/// buying 10x as often), so log1p pulls their tails in before z-scoring.
fn skewed(name: &str) -> bool {
    matches!(
        name,
        "clv"
            | "avg_purchase_amount"
            | "max_purchase_amount"
            | "min_purchase_amount"
            | "purchase_count"
            | "purchase_frequency"
            | "income"
    )
}

fn one_hot(name: &str) -> bool {
    name.starts_with("gender_")
}

/// A customer's value of a feature; `None` where it cannot be known.
fn value(name: &str, f: &Features, demo: &Demographics) -> Option<f64> {
    match name {
        "clv" => Some(f.clv()),
        "avg_purchase_amount" => f.avg_purchase_amount(),
        "max_purchase_amount" => f.max_purchase_amount(),
        "min_purchase_amount" => f.min_purchase_amount(),
        "purchase_count" => Some(f64::from(f.purchase_count())),
        "days_since_first_purchase" => f.days_since_first_purchase().map(f64::from),
        "days_since_last_purchase" => f.days_since_last_purchase().map(f64::from),
        "purchase_frequency" => f.purchase_frequency(),
        "age" => demo.age.map(f64::from),
        "income" => demo.income,
        "gender_male" => Some(f64::from(u8::from(demo.gender == Some(Gender::Male)))),
        "gender_female" => Some(f64::from(u8::from(demo.gender == Some(Gender::Female)))),
        "gender_other" => Some(f64::from(u8::from(demo.gender == Some(Gender::Other)))),
        _ => None,
    }
}

/// Median of the known (non-NaN) values of column `j`.
fn median_known(data: &[f64], d: usize, j: usize) -> Option<f64> {
    let mut known: Vec<f64> = data
        .iter()
        .skip(j)
        .step_by(d)
        .copied()
        .filter(|x| !x.is_nan())
        .collect();
    if known.is_empty() {
        return None;
    }
    let mid = known.len() / 2;
    let (_, m, _) = known.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

/// Scale the `rows` (customer indexes) on `names`. One-hot columns stay 0/1
/// (recorded as mean 0, std 1) because z-scoring a rare flag would blow it up.
pub fn scale(
    features: &[Features],
    demographics: &dyn Fn(usize) -> Demographics,
    rows: &[u32],
    names: &[&str],
    log1p: bool,
) -> Scaled {
    let d = names.len();
    let mut data = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        let (f, demo) = (&features[r as usize], &demographics(r as usize));
        for name in names {
            data.push(value(name, f, demo).unwrap_or(f64::NAN));
        }
    }
    // Clustering needs a number everywhere: an unknown value (a buyer with no
    // dated purchase has no recency) becomes the median of the known ones,
    // counted. The report tables keep it NULL.
    let mut imputed = vec![0u64; d];
    let mut impute = vec![None; d];
    for j in 0..d {
        if data.iter().skip(j).step_by(d).any(|x| x.is_nan()) {
            let fill = median_known(&data, d, j).unwrap_or(0.0);
            impute[j] = Some(fill);
            for x in data.iter_mut().skip(j).step_by(d).filter(|x| x.is_nan()) {
                *x = fill;
                imputed[j] += 1;
            }
        }
    }
    for (j, name) in names.iter().enumerate() {
        if log1p && skewed(name) {
            for x in data.iter_mut().skip(j).step_by(d) {
                *x = x.max(0.0).ln_1p();
            }
        }
    }
    let n = rows.len().max(1) as f64;
    let mut scales = Vec::with_capacity(d);
    for (j, name) in names.iter().enumerate() {
        let (mean, std) = if one_hot(name) {
            (0.0, 1.0)
        } else {
            let mean = data.iter().skip(j).step_by(d).sum::<f64>() / n;
            let var = data
                .iter()
                .skip(j)
                .step_by(d)
                .map(|x| (x - mean).powi(2))
                .sum::<f64>()
                / n;
            // A constant column would divide by zero; leave it centred at 0.
            (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
        };
        for x in data.iter_mut().skip(j).step_by(d) {
            *x = (*x - mean) / std;
        }
        scales.push(FeatureScale {
            feature: (*name).to_owned(),
            log1p: log1p && skewed(name),
            mean,
            std,
            impute: impute[j],
        });
    }
    Scaled {
        data,
        d,
        scales,
        imputed,
    }
}

/// Scale the `rows` with saved parameters (`--model`): each feature's
/// unknown value becomes the model's `impute` (or, when the fitted data had
/// none unknown, the fitted mean, i.e. 0 after scaling), then log1p and the
/// saved mean and std. Nothing is estimated from these rows.
pub fn apply(
    features: &[Features],
    demographics: &dyn Fn(usize) -> Demographics,
    rows: &[u32],
    scales: &[FeatureScale],
) -> Scaled {
    let d = scales.len();
    let mut data = Vec::with_capacity(rows.len() * d);
    let mut imputed = vec![0u64; d];
    for &r in rows {
        let (f, demo) = (&features[r as usize], &demographics(r as usize));
        for (j, s) in scales.iter().enumerate() {
            let raw = value(&s.feature, f, demo).or_else(|| {
                imputed[j] += 1;
                s.impute
            });
            data.push(raw.map_or(0.0, |x| to_scaled(s, x)));
        }
    }
    Scaled {
        data,
        d,
        scales: scales.to_vec(),
        imputed,
    }
}

/// A raw value of `s.feature` in the scaled space of `s`.
pub fn to_scaled(s: &FeatureScale, raw: f64) -> f64 {
    let x = if s.log1p { raw.max(0.0).ln_1p() } else { raw };
    (x - s.mean) / s.std
}

/// The raw value (feature units) of a scaled value of `s`.
pub fn to_raw(s: &FeatureScale, z: f64) -> f64 {
    let x = z * s.std + s.mean;
    if s.log1p { x.exp_m1() } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(clv: f64, count: u32, recency: i32) -> Features {
        Features::default()
            .with_clv(clv)
            .with_purchase_count(count)
            .with_days_since_last_purchase(Some(recency))
    }

    // See: issue 9
    #[test]
    fn issue_9_unknown_recency_is_imputed_with_the_median_and_counted() {
        let undated = f(10.0, 1, 0).with_days_since_last_purchase(None);
        let feats = vec![f(1.0, 1, 10), undated, f(3.0, 1, 30), f(4.0, 1, 20)];
        let s = scale(
            &feats,
            &|_| Demographics::default(),
            &[0, 1, 2, 3],
            &["days_since_last_purchase"],
            false,
        );
        assert_eq!(s.imputed, vec![1]);
        assert_eq!(s.scales[0].impute, Some(20.0));
        // 10, 20 (imputed), 30, 20: mean 20, so the imputed row sits at 0.
        assert!((s.scales[0].mean - 20.0).abs() < 1e-12);
        assert!(s.data[1].abs() < 1e-12);
    }

    #[test]
    fn z_scores_have_zero_mean_and_unit_std_and_log1p_is_recorded() {
        let feats = vec![f(0.0, 1, 10), f(99.0, 3, 20), f(9999.0, 5, 30)];
        let demo = [
            Demographics {
                gender: Some(Gender::Male),
                ..Demographics::default()
            },
            Demographics::default(),
            Demographics {
                gender: Some(Gender::Other),
                ..Demographics::default()
            },
        ];
        let names = [
            "clv",
            "days_since_last_purchase",
            "gender_male",
            "gender_other",
        ];
        let s = scale(&feats, &|r| demo[r], &[0, 1, 2], &names, true);
        assert_eq!((s.rows(), s.d), (3, 4));
        for j in 0..2 {
            let col: Vec<f64> = s.data.iter().skip(j).step_by(4).copied().collect();
            let mean = col.iter().sum::<f64>() / 3.0;
            let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "{col:?}");
        }
        // log1p(0), log1p(99), log1p(9999) = 0, ln 100, ln 10000: evenly spaced.
        assert!(s.scales[0].log1p && !s.scales[1].log1p);
        assert!((s.scales[0].mean - (100f64.ln() + 10000f64.ln()) / 3.0).abs() < 1e-12);
        assert!(
            (s.data[4] - 0.0).abs() < 1e-12,
            "middle point sits at the mean"
        );
        // One-hot columns are untouched 0/1.
        let male: Vec<f64> = s.data.iter().skip(2).step_by(4).copied().collect();
        assert_eq!(male, vec![1.0, 0.0, 0.0]);
        assert_eq!(s.data[2 * 4 + 3], 1.0, "row 2 is gender other");
    }

    #[test]
    fn constant_column_does_not_divide_by_zero() {
        let feats = vec![f(5.0, 1, 1), f(5.0, 1, 1)];
        let s = scale(
            &feats,
            &|_| Demographics::default(),
            &[0, 1],
            &["clv"],
            false,
        );
        assert_eq!(s.data, vec![0.0, 0.0]);
        assert_eq!(s.scales[0].std, 1.0);
    }

    #[test]
    fn resolve_validates_names() {
        assert_eq!(resolve(&[]).expect("default"), DEFAULT_FEATURES.to_vec());
        assert_eq!(
            resolve(&["CLV".into(), "gender".into()]).expect("valid"),
            vec!["clv", "gender_male", "gender_female", "gender_other"]
        );
        assert!(resolve(&["bogus".into()]).is_err());
        assert!(resolve(&["clv".into(), "clv".into()]).is_err());
    }

    #[test]
    fn applying_the_saved_scaling_reproduces_the_fit_and_imputes_from_the_model() {
        let undated = f(10.0, 2, 0).with_days_since_last_purchase(None);
        let feats = vec![f(1.0, 1, 10), undated, f(300.0, 7, 30), f(4.0, 1, 20)];
        let demo = [Demographics::default(); 4];
        let names = ["clv", "purchase_count", "days_since_last_purchase"];
        let fitted = scale(&feats, &|r| demo[r], &[0, 1, 2, 3], &names, true);
        let applied = apply(&feats, &|r| demo[r], &[0, 1, 2, 3], &fitted.scales);
        assert_eq!(applied.imputed, fitted.imputed);
        for (a, b) in applied.data.iter().zip(&fitted.data) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        for (j, s) in fitted.scales.iter().enumerate() {
            let z = fitted.data[j];
            let raw = to_raw(s, z);
            assert!((to_scaled(s, raw) - z).abs() < 1e-9);
        }
        // A new customer is scaled with the model's numbers, not its own.
        let one = apply(&[f(4.0, 1, 20)], &|r| demo[r], &[0], &fitted.scales);
        assert!((one.data[0] - fitted.data[3 * 3]).abs() < 1e-12);
    }
}
