//! Transform: clean → features → scale → cluster (fit, or apply a saved
//! model) → aggregate (DESIGN §4).
//!
//! This file owns the stage entry point, its options and its `Error`, and the
//! glue between the sub-steps: which customers are segmented, by which
//! method, segment ids and labels (kept from a previous model when one is
//! given), transitions, and the evaluation against ground truth. Each
//! sub-step is a pure function in its own file.

mod aggregate;
mod assign;
mod clean;
mod cluster;
pub mod criteria;
pub mod features;
mod holdout;
// The kernels live in crates/cluster so that test builds optimize them.
pub use segpipe_cluster::{evaluate, kmeans};
mod hungarian;
mod k_choice;
mod label;
mod rfm;
mod scale;
mod spooled;
pub mod steps;
#[cfg(test)]
pub(crate) mod synthetic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::customer_segments::People;
use crate::model::{
    Evaluation, FeatureScale, Joined, KSweep, MODEL_VERSION, Method, Persona, Report, SegmentModel,
    Transition,
};

pub use k_choice::KChoice;

/// Transform inputs, built from `Settings`.
#[derive(Clone, Debug)]
pub struct TransformOpts {
    pub as_of: NaiveDate,
    pub seed: u64,
    pub k: KChoice,
    pub k_min: u32,
    pub k_max: u32,
    /// Features fed to KMeans; empty = the measured default.
    pub features: Vec<String>,
    pub log1p: bool,
    pub restarts: u32,
    pub max_iter: u32,
    pub silhouette_sample: usize,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    /// How buyers are segmented when no saved model is applied.
    pub method: Method,
    /// Assign with this saved model and fit nothing (`--model`).
    pub model: Option<PathBuf>,
    /// Keep the ids and labels of this model, and report transitions from it
    /// (`--previous-model`).
    pub previous_model: Option<PathBuf>,
    /// Fit on purchases before this date, score on the rest (`--holdout-from`).
    pub holdout_from: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no valid customers to segment")]
    NoCustomers,
    #[error("invalid feature selection: {message}")]
    Features { message: String },
    #[error("cannot read model `{path}`")]
    ModelRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a segment model")]
    ModelParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("model `{path}` does not fit: {message}")]
    ModelMismatch { path: PathBuf, message: String },
    #[error("invalid holdout: {message}")]
    Holdout { message: String },
    #[error("cannot use the scratch files of the purchase spool or spilled rows (TMPDIR)")]
    Spool(#[source] std::io::Error),
}

/// Wall time of each sub-step, in order, for run summaries and benches.
pub type StepTimes = Vec<(&'static str, Duration)>;

/// Segment `joined` (see the module doc and DESIGN §4).
///
/// Takes `joined` by value so the purchases (the biggest input, ~300 MiB at a
/// million customers) are freed as soon as the last table that needs them is
/// built, before the per-customer tables exist.
pub fn transform(joined: Joined, opts: &TransformOpts) -> Result<Report, Error> {
    transform_timed(joined, opts).map(|(report, _)| report)
}

/// [`transform`], also returning how long each sub-step took.
pub fn transform_timed(joined: Joined, opts: &TransformOpts) -> Result<(Report, StepTimes), Error> {
    let models = read_models(opts)?;
    match opts.holdout_from {
        None => transform_with(joined, opts, &models),
        Some(from) => transform_holdout(joined, opts, &models, from),
    }
}

/// The saved models the options name (`--model`, `--previous-model`).
fn read_models(opts: &TransformOpts) -> Result<Models, Error> {
    let read = |p: &Option<PathBuf>| -> Result<Option<(SegmentModel, PathBuf)>, Error> {
        p.as_ref()
            .map(|p| assign::read(p).map(|m| (m, p.clone())))
            .transpose()
    };
    Ok(Models {
        apply: read(&opts.model)?,
        previous: read(&opts.previous_model)?,
    })
}

/// Saved models given to a run, each with the path it came from.
#[derive(Default)]
struct Models {
    apply: Option<(SegmentModel, PathBuf)>,
    previous: Option<(SegmentModel, PathBuf)>,
}

/// `--holdout-from`: fit on the purchases before `from` as of the day
/// before, then score on the rest (see `holdout`).
fn transform_holdout(
    mut joined: Joined,
    opts: &TransformOpts,
    models: &Models,
    from: NaiveDate,
) -> Result<(Report, StepTimes), Error> {
    let Some(fit_as_of) = from.pred_opt().filter(|_| from <= opts.as_of) else {
        return Err(Error::Holdout {
            message: format!(
                "--holdout-from {from} is after the as-of date {}",
                opts.as_of
            ),
        });
    };
    let started = Instant::now();
    if let Some(repaired) = clean::normalize(&joined) {
        joined = repaired;
    }
    let (fit, split) = holdout::split(&joined, opts.as_of, from);
    drop(joined);
    let split_time = started.elapsed();
    let fit_opts = TransformOpts {
        as_of: fit_as_of,
        ..opts.clone()
    };
    let (mut report, mut times) = transform_with(fit, &fit_opts, models)?;
    let started = Instant::now();
    let h = holdout::score(&report, &split, from, opts.as_of);
    report
        .quality
        .add("holdout_purchases_scored", split.scored_purchases);
    report
        .quality
        .add("holdout_undated_purchases_excluded", split.undated);
    report.model.holdout = Some(h);
    times.insert(0, ("holdout_split", split_time));
    times.push(("holdout_score", started.elapsed()));
    Ok((report, times))
}

/// What segmenting the buyers produced, ids already final.
struct Segmentation {
    /// Segment id of every customer (non-buyers included).
    segment: Vec<u32>,
    /// Label of each segment id (`0..labels.len()`).
    labels: Vec<String>,
    /// Segments among buyers (KMeans k, or named RFM segments).
    k: usize,
    scales: Vec<FeatureScale>,
    centroids: Vec<Vec<f64>>,
    inertia: f64,
    silhouette: Option<f64>,
    k_sweep: Vec<KSweep>,
    /// Per feature, buyers whose unknown value was imputed.
    imputed: Vec<u64>,
    /// Time the `auto` k sweep took (zero without one), for the bench.
    sweep_time: Duration,
}

/// Per-customer inputs shared by fitting and applying.
struct Inputs<'a> {
    feats: &'a [features::Features],
    demographics: &'a dyn Fn(usize) -> scale::Demographics,
    buyers: &'a [u32],
    scores: &'a [Option<rfm::Rfm>],
}

fn transform_with(
    mut joined: Joined,
    opts: &TransformOpts,
    models: &Models,
) -> Result<(Report, StepTimes), Error> {
    if joined.customers.is_empty() {
        return Err(Error::NoCustomers);
    }
    let plan = Plan::new(opts, models)?;
    let mut clock = Instant::now();
    let mut times: StepTimes = Vec::new();
    if let Some(spool) = joined.spool.take() {
        let mut people = std::mem::take(&mut joined.customers);
        let digest =
            spooled::digest(&mut joined, &mut people, &spool, opts.as_of).map_err(Error::Spool)?;
        drop(spool);
        lap(&mut clock, "clean_features_stores_trends", &mut times);
        let population = Population {
            customers: people,
            feats: digest.feats,
            truth: joined.truth.take(),
            quality: digest.quality,
            spill_rows: true,
        };
        drop(joined);
        let (mut report, more) = segment(population, &plan, opts, models)?;
        times.extend(more);
        report.store_names = digest.store_names;
        report.stores = digest.stores;
        report.trends = digest.trends;
        return Ok((report, times));
    }
    if let Some(repaired) = clean::normalize(&joined) {
        joined = repaired;
    }
    let cleaned = clean::clean(&joined, opts.as_of);
    lap(&mut clock, "clean", &mut times);
    let feats = features::features(&joined, &cleaned);
    lap(&mut clock, "features", &mut times);
    let (mut stores, mut trends) = aggregate::stores_and_trends(&joined, &cleaned);
    let ranks = crate::key_order::MobileRanks::of(&joined.customers);
    crate::key_order::sort(&mut stores, &ranks);
    crate::key_order::sort(&mut trends, &ranks);
    drop(ranks);
    lap(&mut clock, "stores_trends", &mut times);
    // Nothing below reads purchases: free them before the per-customer tables.
    let mut customers = std::mem::take(&mut joined.customers);
    customers.impute(cleaned.ages, cleaned.incomes);
    let population = Population {
        customers,
        feats,
        truth: joined.truth.take(),
        quality: cleaned.quality,
        spill_rows: false,
    };
    drop(joined);
    let (mut report, more) = segment(population, &plan, opts, models)?;
    times.extend(more);
    report.store_names = cleaned.store_names;
    report.stores = stores.into();
    report.trends = trends.into();
    Ok((report, times))
}

/// Record the time since `clock` as `step`, and restart the clock.
fn lap(clock: &mut Instant, step: &'static str, times: &mut StepTimes) {
    let now = Instant::now();
    times.push((step, now - *clock));
    tracing::debug!(
        message = "Transform step done.",
        step,
        elapsed_ms = (now - *clock).as_millis() as u64,
        rss_mib = crate::summary::rss_mib(),
        peak_mib = crate::summary::peak_rss_mib()
    );
    *clock = now;
}

/// What a run segments by, decided from the options and saved models before
/// any data is read (a bad feature list fails at once).
pub struct Plan {
    method: Method,
    names: Vec<&'static str>,
}

impl Plan {
    fn new(opts: &TransformOpts, models: &Models) -> Result<Plan, Error> {
        let requested = if opts.features.is_empty() {
            Vec::new()
        } else {
            scale::resolve(&opts.features)?
        };
        // A saved model decides the method and features; a previous KMeans
        // model decides the features unless they are configured.
        for (m, path) in models.apply.iter().chain(&models.previous) {
            assign::check(m, path, &requested)?;
        }
        let method = models.apply.as_ref().map_or(opts.method, |(m, _)| m.method);
        let names = match (&models.apply, &models.previous) {
            (Some((m, p)), _) | (None, Some((m, p)))
                if m.method == Method::Kmeans && method == Method::Kmeans =>
            {
                assign::check(m, p, &requested)?
            }
            _ if requested.is_empty() => scale::resolve(&[])?,
            _ => requested,
        };
        Ok(Plan { method, names })
    }
}

/// Every customer with what segmenting needs: the per-purchase work is done
/// (features), so nothing here grows with purchases. `fit` builds one from
/// every shard's features files; `transform` from its own purchases.
pub struct Population {
    /// Age and income already imputed ([`People::impute`]).
    pub customers: People,
    pub feats: Vec<features::Features>,
    pub truth: Option<Vec<Option<Persona>>>,
    /// Extract's and clean's counts, demographics included.
    pub quality: crate::model::Quality,
    /// Spill the behavior rows to disk as they are made (`run`'s spool
    /// path: memory set by customers, DESIGN §8).
    pub spill_rows: bool,
}

/// Segment a population: the per-customer half of transform. The report
/// has no store or trend rows (those come from purchases).
fn segment(
    population: Population,
    plan: &Plan,
    opts: &TransformOpts,
    models: &Models,
) -> Result<(Report, StepTimes), Error> {
    let Population {
        customers,
        feats,
        truth,
        quality: extract_quality,
        spill_rows,
    } = population;
    let n = customers.len();
    if n == 0 {
        return Err(Error::NoCustomers);
    }
    let (method, names) = (plan.method, &plan.names);
    let mut times: StepTimes = Vec::new();
    let mut clock = Instant::now();
    // Non-buyers get a rule-based segment: fed to KMeans, a mass of all-zero
    // rows dominates the geometry (DESIGN §4 measured ARI 0.03).
    let buyers: Vec<u32> = (0..n as u32)
        .filter(|&c| feats[c as usize].purchase_count() > 0)
        .collect();
    let demographics = |c: usize| scale::Demographics {
        age: customers.age(c),
        income: customers.income(c),
        gender: customers.gender(c),
    };
    let scores = rfm::scores(&feats, &buyers);
    let inputs = Inputs {
        feats: &feats,
        demographics: &demographics,
        buyers: &buyers,
        scores: &scores,
    };
    lap(&mut clock, "scale", &mut times);

    let mut seg = match (&models.apply, method) {
        (Some((m, _)), _) => apply_model(m, &inputs),
        (None, Method::Rfm) => fit_rfm(&inputs),
        (None, Method::Kmeans) => fit_kmeans(&inputs, names, opts, models.previous.as_ref()),
    };
    lap(&mut clock, "cluster", &mut times);
    // Split the sweep out of the clustering time, for the bench.
    if let Some((_, total)) = times.pop() {
        let sweep = seg.sweep_time.min(total);
        times.push(("k_sweep", sweep));
        times.push(("cluster", total - sweep));
    }

    let mut transitions = Vec::new();
    if let Some((prev, _)) = &models.previous {
        if models.apply.is_none() {
            keep_previous_ids(&mut seg, prev, method);
        }
        let before = apply_model(prev, &inputs);
        let mut moves: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for (&from, &to) in before.segment.iter().zip(&seg.segment) {
            *moves.entry((from, to)).or_default() += 1;
        }
        transitions = moves
            .into_iter()
            .map(|((from_segment, to_segment), customers)| Transition {
                from_segment,
                to_segment,
                customers,
            })
            .collect();
    }
    let mut quality = extract_quality;
    for (s, &count) in seg.scales.iter().zip(&seg.imputed) {
        if count > 0 {
            quality.add(&format!("{}_imputed_for_clustering", s.feature), count);
        }
    }
    let unknown_recency = buyers
        .iter()
        .filter(|&&c| feats[c as usize].days_since_last_purchase().is_none())
        .count() as u64;
    if unknown_recency > 0 {
        quality.add("r_score_of_unknown_recency_set_to_3", unknown_recency);
    }
    // A truth file of the wrong length cannot be aligned: skip the evaluation
    // rather than report agreement with the wrong customers.
    let evaluation = match &truth {
        // Agreement over nobody is not agreement: no evaluation then.
        Some(truth) if truth.len() == n && truth.iter().any(Option::is_some) => {
            Some(evaluate_truth(&seg.segment, truth))
        }
        Some(truth) if truth.len() != n => {
            tracing::warn!(
                message = "Ground truth does not match the customers; no evaluation.",
                truth = truth.len(),
                customers = n
            );
            None
        }
        _ => None,
    };
    lap(&mut clock, "label_evaluate", &mut times);

    drop(buyers);
    let tables = aggregate::aggregate(
        customers,
        feats,
        &seg.segment,
        &seg.labels,
        &scores,
        spill_rows,
    )
    .map_err(Error::Spool)?;
    lap(&mut clock, "aggregate", &mut times);

    let model = SegmentModel {
        version: MODEL_VERSION,
        method,
        run_id: opts.run_id.clone(),
        started_at: opts.started_at,
        as_of: opts.as_of,
        seed: opts.seed,
        k: seg.k as u32,
        features: seg.scales,
        centroids: seg.centroids,
        inertia: seg.inertia,
        silhouette: seg.silhouette,
        k_sweep: seg.k_sweep,
        labels: seg
            .labels
            .iter()
            .enumerate()
            .map(|(s, l)| (s as u32, l.clone()))
            .collect::<BTreeMap<_, _>>(),
        evaluation,
        holdout: None,
    };
    let report = Report {
        customers: tables.customers,
        behavior: tables.behavior,
        segments: tables.segments,
        store_names: Vec::new(),
        stores: Default::default(),
        trends: Default::default(),
        transitions,
        model,
        quality,
    };
    Ok((report, times))
}

/// Ids by descending mean CLV of `groups` (each buyer's group index, aligned
/// with `buyers`, `g` groups), then `no purchases` last when someone never
/// bought. Returns each group's id and the per-customer ids.
fn order_by_clv(
    inputs: &Inputs,
    groups: &[u32],
    g: usize,
) -> (Vec<u32>, Vec<u32>, Vec<label::Profile>) {
    let profiles: Vec<label::Profile> = (0..g as u32)
        .map(|cl| {
            label::Profile::of(
                inputs
                    .buyers
                    .iter()
                    .zip(groups)
                    .filter(|(_, l)| **l == cl)
                    .map(|(&c, _)| &inputs.feats[c as usize]),
            )
        })
        .collect();
    let rank = label::rank_by_clv(&profiles);
    let mut segment = vec![g as u32; inputs.feats.len()];
    for (&c, &l) in inputs.buyers.iter().zip(groups) {
        segment[c as usize] = rank[l as usize];
    }
    let mut seg_profiles = vec![label::Profile::default(); g];
    for cl in 0..g {
        seg_profiles[rank[cl] as usize] = profiles[cl].clone();
    }
    (rank, segment, seg_profiles)
}

/// Append the `no purchases` label when someone never bought, so
/// segment_metrics has no empty row (named RFM segments never use it).
fn with_no_purchases(mut labels: Vec<String>, inputs: &Inputs) -> Vec<String> {
    if has_non_buyers(inputs) {
        labels.push(label::NO_PURCHASES.to_owned());
    }
    labels
}

fn has_non_buyers(inputs: &Inputs) -> bool {
    inputs.buyers.len() < inputs.feats.len()
}

fn fit_kmeans(
    inputs: &Inputs,
    names: &[&str],
    opts: &TransformOpts,
    previous: Option<&(SegmentModel, PathBuf)>,
) -> Segmentation {
    let scaled = scale::scale(
        inputs.feats,
        inputs.demographics,
        inputs.buyers,
        names,
        opts.log1p,
    );
    // With a previous KMeans model, refit with its k so every id keeps a
    // meaning (the centroids are then matched one to one).
    let k = match previous {
        Some((m, _)) if m.method == Method::Kmeans && m.k > 0 => KChoice::Fixed(m.k),
        _ => opts.k,
    };
    let clustering = cluster::cluster(
        &scaled,
        &cluster::ClusterOpts {
            k,
            k_min: opts.k_min,
            k_max: opts.k_max,
            restarts: opts.restarts,
            max_iter: opts.max_iter,
            silhouette_sample: opts.silhouette_sample,
            seed: opts.seed,
        },
    );
    let k = clustering.fit.k;
    let (rank, segment, seg_profiles) = order_by_clv(inputs, &clustering.fit.labels, k);
    let mut centroids = vec![Vec::new(); k];
    for cl in 0..k {
        centroids[rank[cl] as usize] =
            clustering.fit.centroids[cl * scaled.d..(cl + 1) * scaled.d].to_vec();
    }
    let buyer_profile =
        label::Profile::of(inputs.buyers.iter().map(|&c| &inputs.feats[c as usize]));
    let mut seg_profiles = seg_profiles;
    if has_non_buyers(inputs) {
        // Labelled with the others so every label is unique.
        seg_profiles.push(label::Profile::of(
            inputs.feats.iter().filter(|f| f.purchase_count() == 0),
        ));
    }
    let labels = label::labels(&seg_profiles, &buyer_profile);
    Segmentation {
        segment,
        labels,
        k,
        scales: scaled.scales,
        centroids,
        inertia: clustering.fit.inertia,
        silhouette: clustering.silhouette,
        k_sweep: clustering.k_sweep,
        imputed: scaled.imputed,
        sweep_time: clustering.sweep_time,
    }
}

/// `--method rfm`: each buyer's named RFM segment; ids by descending mean CLV.
fn fit_rfm(inputs: &Inputs) -> Segmentation {
    let named: Vec<rfm::Named> = inputs
        .buyers
        .iter()
        .map(|&c| rfm::named(inputs.scores[c as usize].expect("every buyer has scores")))
        .collect();
    let present: Vec<rfm::Named> = rfm::Named::ALL
        .into_iter()
        .filter(|x| named.contains(x))
        .collect();
    let groups: Vec<u32> = named
        .iter()
        .map(|x| present.iter().position(|p| p == x).unwrap_or(0) as u32)
        .collect();
    let (rank, segment, _) = order_by_clv(inputs, &groups, present.len());
    let mut labels = vec![String::new(); present.len()];
    for (g, x) in present.iter().enumerate() {
        labels[rank[g] as usize] = x.label().to_owned();
    }
    Segmentation {
        segment,
        labels: with_no_purchases(labels, inputs),
        k: present.len(),
        scales: Vec::new(),
        centroids: Vec::new(),
        inertia: 0.0,
        silhouette: None,
        k_sweep: Vec::new(),
        imputed: Vec::new(),
        sweep_time: Duration::ZERO,
    }
}

/// Segment with a saved model (checked by `assign::check`): KMeans by the
/// nearest saved centroid after the saved scaling, RFM by the named segment
/// of the scores. Ids and labels are the model's; a segment the model does
/// not know (an RFM name, or `no purchases`) gets the next free id.
fn apply_model(m: &SegmentModel, inputs: &Inputs) -> Segmentation {
    let mut labels: Vec<String> = m.labels.values().cloned().collect();
    let id_of = |label: &str, labels: &mut Vec<String>| -> u32 {
        match labels.iter().position(|l| l == label) {
            Some(i) => i as u32,
            None => {
                labels.push(label.to_owned());
                (labels.len() - 1) as u32
            }
        }
    };
    let n = inputs.feats.len();
    let mut segment = vec![0u32; n];
    let (mut inertia, mut imputed, mut scales) = (0.0, Vec::new(), Vec::new());
    match m.method {
        Method::Kmeans => {
            let scaled = scale::apply(
                inputs.feats,
                inputs.demographics,
                inputs.buyers,
                &m.features,
            );
            let (ids, sse) = assign::nearest(&scaled.data, scaled.d, &m.centroids);
            for (&c, &id) in inputs.buyers.iter().zip(&ids) {
                segment[c as usize] = id;
            }
            inertia = sse;
            imputed = scaled.imputed;
            scales = scaled.scales;
        }
        Method::Rfm => {
            for &c in inputs.buyers {
                let name = rfm::named(inputs.scores[c as usize].expect("every buyer has scores"));
                segment[c as usize] = id_of(name.label(), &mut labels);
            }
        }
    }
    if inputs.buyers.len() < n {
        let none = id_of(label::NO_PURCHASES, &mut labels);
        let mut is_buyer = vec![false; n];
        for &c in inputs.buyers {
            is_buyer[c as usize] = true;
        }
        for (s, _) in segment.iter_mut().zip(&is_buyer).filter(|(_, b)| !**b) {
            *s = none;
        }
    }
    let k = match m.method {
        Method::Kmeans => m.k as usize,
        Method::Rfm => labels.iter().filter(|l| *l != label::NO_PURCHASES).count(),
    };
    Segmentation {
        segment,
        labels,
        k,
        scales,
        centroids: m.centroids.clone(),
        inertia,
        silhouette: None,
        k_sweep: Vec::new(),
        imputed,
        sweep_time: Duration::ZERO,
    }
}

/// `--previous-model` after a fit: give each new segment the id and label of
/// the previous segment it continues. KMeans centroids are matched one to
/// one by the Hungarian algorithm on their squared distances (in this fit's
/// scaled space); `no purchases` keeps the id after them. RFM segments are
/// matched by name: a name the previous model lacks gets the next free id,
/// and a previous name with no customers now stays as an empty row, so no id
/// changes meaning. A previous model of the other method, or with another
/// k, keeps nothing (logged).
fn keep_previous_ids(seg: &mut Segmentation, prev: &SegmentModel, method: Method) {
    if prev.method != method {
        tracing::warn!(
            message = "Previous model uses another method; segment ids are not kept.",
            previous = prev.method.as_str(),
            method = method.as_str()
        );
        return;
    }
    let old: Vec<String> = prev.labels.values().cloned().collect();
    let (ids, labels) = match method {
        Method::Kmeans => {
            let k = seg.centroids.len();
            let matched = if k == prev.centroids.len() {
                assign::match_centroids(
                    &seg.centroids,
                    &seg.scales,
                    &prev.centroids,
                    &prev.features,
                )
            } else {
                None
            };
            let Some(m) = matched else {
                tracing::warn!(
                    message = "Previous model has another k; segment ids are not kept.",
                    previous = prev.centroids.len(),
                    k
                );
                return;
            };
            let mut ids: Vec<u32> = (0..seg.labels.len() as u32).collect();
            let mut labels = seg.labels.clone();
            for (new, &o) in m.iter().enumerate() {
                ids[new] = o;
                labels[o as usize] = old[o as usize].clone();
            }
            let mut centroids = vec![Vec::new(); k];
            for (new, c) in std::mem::take(&mut seg.centroids).into_iter().enumerate() {
                centroids[ids[new] as usize] = c;
            }
            seg.centroids = centroids;
            (ids, labels)
        }
        Method::Rfm => {
            let mut labels = old;
            let ids = seg
                .labels
                .iter()
                .map(|l| match labels.iter().position(|o| o == l) {
                    Some(i) => i as u32,
                    None => {
                        labels.push(l.clone());
                        (labels.len() - 1) as u32
                    }
                })
                .collect();
            seg.k = labels.iter().filter(|l| *l != label::NO_PURCHASES).count();
            (ids, labels)
        }
    };
    for s in &mut seg.segment {
        *s = ids[*s as usize];
    }
    // The previous model's labels are unique and new ones are added only
    // when absent, so the merged list stays unique.
    seg.labels = labels;
}

/// ARI and NMI of the segments against the personas, over labelled customers.
fn evaluate_truth(segment: &[u32], truth: &[Option<Persona>]) -> Evaluation {
    let (ours, theirs): (Vec<u32>, Vec<u32>) = segment
        .iter()
        .zip(truth)
        .filter_map(|(&s, t)| {
            t.map(|p| {
                (
                    s,
                    Persona::ALL.iter().position(|x| *x == p).unwrap_or(0) as u32,
                )
            })
        })
        .unzip();
    Evaluation {
        ari: crate::model::round4(evaluate::ari(&ours, &theirs)),
        nmi: crate::model::round4(evaluate::nmi(&ours, &theirs)),
        labelled: ours.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::label::NO_PURCHASES;
    use super::*;
    use crate::config::TransformSettings;

    pub(crate) fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).expect("valid date")
    }

    pub(crate) fn opts() -> TransformOpts {
        let s = TransformSettings::default();
        TransformOpts {
            as_of: as_of(),
            seed: 42,
            k: s.k,
            k_min: s.k_min,
            k_max: s.k_max,
            features: s.features,
            log1p: s.log1p,
            restarts: s.restarts,
            max_iter: s.max_iter,
            silhouette_sample: s.silhouette_sample,
            run_id: "test".into(),
            started_at: DateTime::<Utc>::from_timestamp(1_772_000_000, 0).expect("valid timestamp"),
            method: Method::Kmeans,
            model: None,
            previous_model: None,
            holdout_from: None,
        }
    }

    fn world(n: usize) -> Joined {
        synthetic::joined(n, 42, as_of(), &synthetic::Dirt::default())
    }

    /// DESIGN §4 target: default settings recover the planted personas.
    #[test]
    fn default_settings_recover_personas_on_10k_dirty_customers() {
        let joined = world(10_000);
        let report = transform(joined.clone(), &opts()).expect("transform");
        let e = report.model.evaluation.clone().expect("truth given");
        assert_eq!(e.labelled, 10_000);
        assert!(
            e.ari >= 0.8,
            "ARI {} (NMI {}), k {}, sweep {:?}",
            e.ari,
            e.nmi,
            report.model.k,
            report.model.k_sweep
        );
        assert!(e.nmi >= 0.7, "NMI {}", e.nmi);
        // The dirt was seen and counted.
        for rule in [
            "duplicate_purchases_dropped",
            "date_dmy_parsed",
            "date_missing",
            "amount_missing",
            "store_missing_as_unknown",
            "age_imputed_median",
        ] {
            assert!(report.quality.get(rule) > 0, "{rule}");
        }
    }

    #[test]
    fn report_invariants_and_determinism() {
        let joined = world(3_000);
        let a = transform(joined.clone(), &opts()).expect("transform");
        let b = transform(joined.clone(), &opts()).expect("transform");
        assert_eq!(a, b, "same seed, same report");

        assert_eq!(a.customers.len(), 3_000);
        assert_eq!(a.behavior.len(), 3_000);
        let k = a.model.k as usize;
        assert_eq!(a.model.centroids.len(), k);
        assert_eq!(a.segments.len(), a.model.labels.len());
        assert_eq!(
            a.segments.iter().map(|s| s.num_customers).sum::<u64>(),
            3_000
        );
        let clv: f64 = a.customers.iter().map(|c| c.clv).sum();
        let spend: f64 = a.segments.iter().map(|s| s.total_spend).sum();
        assert!(
            (clv - spend).abs() < 0.01 * a.segments.len() as f64,
            "{clv} vs {spend}"
        );
        // Segments ordered by mean CLV, no-purchase segment last.
        for w in a.segments[..k].windows(2) {
            assert!(w[0].avg_clv >= w[1].avg_clv, "{:?}", a.segments);
        }
        let last = a.segments.last().expect("segments");
        assert_eq!(last.segment_label, NO_PURCHASES);
        assert_eq!(last.segment as usize, k);
        for c in &a.customers {
            assert_eq!(c.purchase_count == 0, c.segment as usize == k, "{c:?}");
            assert_eq!(*c.segment_label, *a.model.labels[&c.segment]);
        }
        let mut labels: Vec<&String> = a.model.labels.values().collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), a.segments.len(), "labels are unique");
        // Store and trend rows sorted, and visits add up to purchases.
        let names = &a.store_names;
        let (stores, trends) = (
            a.stores.to_vec().expect("stores"),
            a.trends.to_vec().expect("trends"),
        );
        assert!(
            stores
                .windows(2)
                .all(|w| (w[0].customer, &names[w[0].store as usize])
                    < (w[1].customer, &names[w[1].store as usize]))
        );
        assert!(
            trends
                .windows(2)
                .all(|w| (w[0].customer, w[0].month) < (w[1].customer, w[1].month))
        );
        let visits: u64 = stores.iter().map(|s| u64::from(s.visit_count)).sum();
        let purchases: u64 = a
            .customers
            .iter()
            .map(|c| u64::from(c.purchase_count))
            .sum();
        assert_eq!(visits, purchases);
        // Extract's counts come first.
        assert_eq!(a.quality.0[0].rule, "duplicate_purchases_dropped");
    }

    #[test]
    fn fixed_k_bad_features_and_empty_input() {
        let joined = world(500);
        let mut o = opts();
        o.k = KChoice::Fixed(3);
        let r = transform(joined.clone(), &o).expect("transform");
        assert_eq!(r.model.k, 3);
        assert_eq!(r.model.k_sweep.len(), 1);
        o.features = vec!["nope".into()];
        assert!(matches!(
            transform(joined.clone(), &o),
            Err(Error::Features { .. })
        ));
        assert!(matches!(
            transform(Joined::default(), &opts()),
            Err(Error::NoCustomers)
        ));
    }

    #[test]
    fn only_non_buyers_get_one_segment() {
        let mut joined = world(50);
        joined.purchases.clear();
        let r = transform(joined.clone(), &opts()).expect("transform");
        assert_eq!(r.model.k, 0);
        assert_eq!(r.segments.len(), 1);
        assert_eq!(r.segments[0].segment_label, NO_PURCHASES);
    }

    fn with_models(
        joined: Joined,
        o: &TransformOpts,
        apply: Option<&SegmentModel>,
        previous: Option<&SegmentModel>,
    ) -> Result<Report, Error> {
        let models = Models {
            apply: apply.map(|m| (m.clone(), PathBuf::from("model.json"))),
            previous: previous.map(|m| (m.clone(), PathBuf::from("previous.json"))),
        };
        transform_with(joined, o, &models).map(|(r, _)| r)
    }

    /// Majority segment (id, label) of each planted persona.
    fn persona_segments(r: &Report, joined: &Joined) -> BTreeMap<Persona, (u32, String)> {
        let truth = joined.truth.as_ref().expect("synthetic truth");
        let mut counts: BTreeMap<(Persona, u32), u64> = BTreeMap::new();
        for (c, t) in r.customers.iter().zip(truth) {
            if let Some(p) = t {
                *counts.entry((*p, c.segment)).or_default() += 1;
            }
        }
        let mut best: BTreeMap<Persona, (u32, u64)> = BTreeMap::new();
        for ((p, s), n) in counts {
            let e = best.entry(p).or_insert((s, 0));
            if n > e.1 {
                *e = (s, n);
            }
        }
        best.into_iter()
            .map(|(p, (s, _))| (p, (s, r.model.labels[&s].clone())))
            .collect()
    }

    #[test]
    fn rfm_scores_on_every_buyer_and_null_for_non_buyers() {
        let r = transform(world(2_000), &opts()).expect("transform");
        for c in &r.customers {
            let scores = [c.r_score, c.f_score, c.m_score];
            if c.purchase_count == 0 {
                assert_eq!(scores, [None; 3], "{c:?}");
            } else {
                assert!(scores.iter().all(|s| matches!(s, Some(1..=5))), "{c:?}");
            }
        }
        // Quintiles: each F score holds a fifth of the buyers (± 1).
        let buyers = r.customers.iter().filter(|c| c.purchase_count > 0).count();
        for score in 1..=5u8 {
            let n = r
                .customers
                .iter()
                .filter(|c| c.f_score == Some(score))
                .count();
            assert!(n.abs_diff(buyers / 5) <= 1, "f {score}: {n} of {buyers}");
        }
    }

    #[test]
    fn rfm_method_names_segments_by_the_documented_map_ordered_by_clv() {
        let mut o = opts();
        o.method = Method::Rfm;
        let r = transform(world(3_000), &o).expect("transform");
        assert_eq!(r.model.method, Method::Rfm);
        assert!(r.model.centroids.is_empty());
        let k = r.model.k as usize;
        assert!(k >= 5, "{:?}", r.model.labels);
        for w in r.segments[..k].windows(2) {
            assert!(w[0].avg_clv >= w[1].avg_clv, "{:?}", r.segments);
        }
        assert_eq!(r.segments[k].segment_label, NO_PURCHASES);
        for c in &r.customers {
            let want = match (c.r_score, c.f_score, c.m_score) {
                (Some(r), Some(f), Some(m)) => rfm::named(rfm::Rfm { r, f, m }).label(),
                _ => NO_PURCHASES,
            };
            assert_eq!(c.segment_label, want, "{c:?}");
            assert_eq!(*r.model.labels[&c.segment], *c.segment_label);
        }
        // Same data, same segments; and the saved RFM model reproduces them.
        let again = with_models(world(3_000), &opts(), Some(&r.model), None).expect("apply");
        assert_eq!(again.customers, r.customers);
        assert_eq!(again.model.method, Method::Rfm);
    }

    #[test]
    fn a_saved_model_assigns_the_same_segments_and_scores_new_customers() {
        let fitted = transform(world(3_000), &opts()).expect("fit");
        let mut o = opts();
        // The saved model wins over the configured method and k.
        o.method = Method::Rfm;
        o.k = KChoice::Fixed(2);
        let applied = with_models(world(3_000), &o, Some(&fitted.model), None).expect("apply");
        assert_eq!(applied.customers, fitted.customers);
        assert_eq!(applied.segments, fitted.segments);
        assert_eq!(applied.model.labels, fitted.model.labels);
        assert_eq!(applied.model.centroids, fitted.model.centroids);
        assert_eq!(applied.model.features, fitted.model.features);
        assert!((applied.model.inertia - fitted.model.inertia).abs() < 1e-6 * fitted.model.inertia);
        // A bigger world: the first 3,000 customers are the same people, the
        // rest are new; everyone lands in one of the model's segments.
        let bigger = with_models(world(4_000), &opts(), Some(&fitted.model), None).expect("apply");
        assert_eq!(bigger.model.labels, fitted.model.labels);
        assert!(
            bigger
                .customers
                .iter()
                .all(|c| fitted.model.labels.contains_key(&c.segment))
        );
        let e = bigger.model.evaluation.expect("truth");
        assert!(
            e.ari >= 0.9,
            "the saved centroids still recover the personas: {e:?}"
        );
    }

    #[test]
    fn a_model_that_does_not_fit_is_an_error_naming_the_difference() {
        let fitted = transform(world(500), &opts()).expect("fit");
        let mut m = fitted.model.clone();
        m.version = 99;
        let err = with_models(world(500), &opts(), Some(&m), None).expect_err("version");
        assert_eq!(
            err.to_string(),
            "model `model.json` does not fit: model version 99, this segpipe reads version 1"
        );
        let mut o = opts();
        o.features = vec!["clv".into(), "purchase_frequency".into()];
        let err = with_models(world(500), &o, None, Some(&fitted.model)).expect_err("features");
        assert_eq!(
            err.to_string(),
            "model `previous.json` does not fit: features clv, purchase_count, \
             days_since_last_purchase, configured features clv, purchase_frequency"
        );
    }

    // See: issue 10
    #[test]
    fn issue_10_refit_on_next_month_keeps_every_persona_on_its_id_and_label() {
        let this_month = world(5_000);
        let a = transform(this_month.clone(), &opts()).expect("fit this month");
        let next_as_of = as_of()
            .checked_add_months(chrono::Months::new(1))
            .expect("valid date");
        let next_month = synthetic::joined(5_000, 42, next_as_of, &synthetic::Dirt::default());
        let mut o = opts();
        o.as_of = next_as_of;
        // A different seed: the refit's clusters come out in another order.
        o.seed = 7;
        let b = with_models(next_month.clone(), &o, None, Some(&a.model)).expect("refit");
        let before = persona_segments(&a, &this_month);
        let after = persona_segments(&b, &next_month);
        assert_eq!(
            before, after,
            "labels {:?} → {:?}",
            a.model.labels, b.model.labels
        );
        assert_eq!(b.model.labels, a.model.labels);
        // Transitions: previous model on this data → refit, every customer once.
        assert_eq!(
            b.transitions.iter().map(|t| t.customers).sum::<u64>(),
            5_000
        );
        let stayed: u64 = b
            .transitions
            .iter()
            .filter(|t| t.from_segment == t.to_segment)
            .map(|t| t.customers)
            .sum();
        assert!(stayed >= 4_500, "{:?}", b.transitions);
        // The ids follow the matched centroids, not the refit's own order: a
        // previous model with its segments renumbered (centroids and labels
        // rotated together) renumbers the refit the same way.
        let k = a.model.k;
        let mut shuffled = a.model.clone();
        shuffled.centroids.rotate_left(1);
        let mut labels: Vec<String> = a.model.labels.values().cloned().collect();
        labels[..k as usize].rotate_left(1);
        shuffled.labels = labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u32, l))
            .collect();
        let c = with_models(next_month.clone(), &o, None, Some(&shuffled)).expect("refit");
        for (p, (id, label)) in persona_segments(&c, &next_month) {
            let (was, was_label) = &before[&p];
            let want = if *was < k { (was + k - 1) % k } else { *was };
            assert_eq!((id, &label), (want, was_label), "{p}");
        }
    }

    #[test]
    fn holdout_scores_segments_and_the_rfm_grid_on_the_later_purchases() {
        let mut o = opts();
        let from = as_of() - chrono::Days::new(90);
        o.holdout_from = Some(from);
        let r = transform(world(3_000), &o).expect("holdout");
        let h = r.model.holdout.clone().expect("holdout recorded");
        assert_eq!((h.from, h.to, h.customers), (from, as_of(), 3_000));
        assert_eq!(
            r.model.as_of,
            from - chrono::Days::new(1),
            "fit as of the day before"
        );
        assert!(h.eta2 > 0.0 && h.eta2 <= 1.0, "{h:?}");
        assert!(h.rfm_grid_eta2 > 0.0 && h.rfm_grid_eta2 <= 1.0, "{h:?}");
        assert_eq!(h.segments.len(), r.segments.len());
        assert!(h.rfm_grid.len() <= 126);
        assert_eq!(h.rfm_grid.iter().map(|g| g.customers).sum::<u64>(), 3_000);
        // The fit saw nothing from the holdout period.
        assert!(
            r.behavior
                .to_vec()
                .expect("behavior")
                .iter()
                .all(|b| b.last_purchase.is_none_or(|d| d < from))
        );
        assert!(r.quality.get("holdout_purchases_scored") > 0);
        assert!(r.quality.get("holdout_undated_purchases_excluded") > 0);
        // Best segment spends more next period than the lapsed ones.
        assert!(
            h.segments[0].next_spend_per_customer
                > h.segments[h.segments.len() - 1].next_spend_per_customer
        );
        o.holdout_from = Some(as_of() + chrono::Days::new(1));
        assert!(matches!(
            transform(world(50), &o),
            Err(Error::Holdout { .. })
        ));
    }

    /// Measures ARI/NMI of candidate feature sets (the table on
    /// `scale::DEFAULT_FEATURES`). Run: `cargo test --release --lib
    /// candidate_feature_sets -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, prints a table"]
    fn candidate_feature_sets() {
        let joined = world(10_000);
        let sets: &[&[&str]] = &[
            &["clv", "purchase_count", "days_since_last_purchase"],
            &[
                "clv",
                "purchase_count",
                "days_since_last_purchase",
                "purchase_frequency",
            ],
            &[
                "avg_purchase_amount",
                "purchase_count",
                "days_since_last_purchase",
            ],
            &[
                "avg_purchase_amount",
                "purchase_count",
                "days_since_last_purchase",
                "purchase_frequency",
            ],
            &[
                "clv",
                "purchase_count",
                "days_since_first_purchase",
                "days_since_last_purchase",
                "purchase_frequency",
            ],
            &[
                "clv",
                "avg_purchase_amount",
                "purchase_count",
                "days_since_last_purchase",
                "purchase_frequency",
            ],
            &[
                "clv",
                "purchase_count",
                "days_since_last_purchase",
                "purchase_frequency",
                "age",
                "income",
            ],
            &[
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
                "gender",
            ],
        ];
        for log1p in [true, false] {
            for set in sets {
                let mut o = opts();
                o.log1p = log1p;
                o.features = set.iter().map(|s| (*s).to_owned()).collect();
                let r = transform(joined.clone(), &o).expect("transform");
                let e = r.model.evaluation.expect("truth");
                println!(
                    "| {} | log1p={log1p} | ARI {:.4} | NMI {:.4} | k {} | sil {:.4} |",
                    set.join(", "),
                    e.ari,
                    e.nmi,
                    r.model.k,
                    r.model.silhouette.unwrap_or(0.0)
                );
            }
        }
    }
}
