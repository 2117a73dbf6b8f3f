//! The sharded steps of DESIGN §8, over the same functions `transform` uses:
//!
//! - [`features()`]: one shard's purchases → its customers' features plus the
//!   per-purchase tables (store summary, monthly trends), which depend on
//!   nothing global.
//! - [`fit`]: every shard's features, put back in unsharded order (by
//!   position), → the model and every global decision: medians, RFM
//!   quintiles, segments, labels, segment_metrics, transitions, evaluation.
//!   Its input is exactly what an unsharded transform segments, so the fit
//!   is the same fit.
//! - [`assign`]: one shard's features plus the fit's decisions for it → its
//!   customer_segments and customer_behavior_metrics rows.

use std::collections::BTreeMap;

use crate::interchange::{Assignment, ShardFeatures};
use crate::model::{Joined, Quality, Report, SegmentModel};
use crate::shard::Shard;

use super::{Error, Plan, Population, TransformOpts, aggregate, clean, features};
use crate::key_order::{self, MobileRanks};

/// The purchase half of transform for one shard: its features, and a report
/// holding only the store and trend rows (with their customers' mobiles).
pub fn features(
    mut joined: Joined,
    shard: Shard,
    as_of: chrono::NaiveDate,
) -> (ShardFeatures, Report, Quality) {
    if let Some(repaired) = clean::normalize(&joined) {
        joined = repaired;
    }
    let cleaned = clean::clean(&joined, as_of);
    let feats = features::features(&joined, &cleaned);
    let (mut stores, mut trends) = aggregate::stores_and_trends(&joined, &cleaned);
    let ranks = MobileRanks::of(&joined.customers);
    key_order::sort(&mut stores, &ranks);
    key_order::sort(&mut trends, &ranks);
    let positions = if joined.positions.is_empty() {
        (0..joined.customers.len() as u64).collect()
    } else {
        std::mem::take(&mut joined.positions)
    };
    let rows = aggregate::mobiles_only(&joined.customers);
    let report = Report {
        customers: rows,
        store_names: cleaned.store_names,
        stores: stores.into(),
        trends: trends.into(),
        ..Report::default()
    };
    let shard_features = ShardFeatures {
        shard: Some(shard),
        positions,
        customers: joined.customers.iter().collect(),
        truth: joined.truth.take(),
        feats,
    };
    (shard_features, report, cleaned.quality)
}

/// One shard's assignments, in position order.
pub type ShardAssignments = (Shard, Vec<Assignment>);

/// Fit on every shard at once. `shards[i]` comes with `quality[i]` (its
/// features step's counts). Returns the report of the global tables
/// (segment_metrics, transitions; customer rows too, in unsharded order) and
/// each shard's assignments.
pub fn fit(
    shards: Vec<ShardFeatures>,
    quality: Vec<Quality>,
    opts: &TransformOpts,
) -> Result<(Report, Vec<ShardAssignments>), Error> {
    if opts.holdout_from.is_some() {
        return Err(Error::Holdout {
            message: "--holdout-from is not supported by a sharded fit; run `transform` on one \
                      extract"
                .to_owned(),
        });
    }
    let models = super::read_models(opts)?;
    let plan = Plan::new(opts, &models)?;
    // Unsharded order: by position. Positions are unique across shards.
    let mut order: Vec<(u64, usize, usize)> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, sh)| {
            sh.positions
                .iter()
                .enumerate()
                .map(move |(i, &p)| (p, s, i))
        })
        .collect();
    order.sort_unstable();
    let has_truth = shards.iter().all(|s| s.truth.is_some()) && !shards.is_empty();
    let mut customers = Vec::with_capacity(order.len());
    let mut feats = Vec::with_capacity(order.len());
    let mut truth = Vec::new();
    let mut slots: Vec<Vec<Option<crate::model::Customer>>> = Vec::new();
    let mut feat_slots: Vec<Vec<Option<features::Features>>> = Vec::new();
    let mut truth_slots: Vec<Vec<Option<crate::model::Persona>>> = Vec::new();
    let mut ids = Vec::new();
    for sh in shards {
        ids.push(sh.shard.unwrap_or(Shard::WHOLE));
        slots.push(sh.customers.into_iter().map(Some).collect());
        feat_slots.push(sh.feats.into_iter().map(Some).collect());
        truth_slots.push(sh.truth.unwrap_or_default());
    }
    for &(_, s, i) in &order {
        customers.extend(slots[s][i].take());
        feats.extend(feat_slots[s][i].take());
        if has_truth {
            truth.push(truth_slots[s].get(i).copied().flatten());
        }
    }
    drop(slots);
    drop(feat_slots);
    let mut total = Quality::default();
    for q in &quality {
        for rule in &q.0 {
            total.add(&rule.rule, rule.rows);
        }
    }
    let demo = clean::demographics(&customers);
    for (rule, rows) in demo.rules {
        total.set(rule, rows);
    }
    let (ages, incomes) = (demo.ages.clone(), demo.incomes.clone());
    let mut people = crate::customer_segments::People::from(customers);
    people.impute(demo.ages, demo.incomes);
    let population = Population {
        customers: people,
        feats,
        truth: has_truth.then_some(truth),
        quality: total,
        spill_rows: false,
    };
    let (report, _) = super::segment(population, &plan, opts, &models)?;
    let mut per_shard: BTreeMap<usize, Vec<Assignment>> = BTreeMap::new();
    for (c, &(position, s, _)) in order.iter().enumerate() {
        let row = report.customers.row(c);
        per_shard.entry(s).or_default().push(Assignment {
            position,
            segment: row.segment,
            r: row.r_score,
            f: row.f_score,
            m: row.m_score,
            age: ages[c],
            income: incomes[c],
        });
    }
    let assignments = ids
        .into_iter()
        .enumerate()
        .map(|(s, id)| (id, per_shard.remove(&s).unwrap_or_default()))
        .collect();
    Ok((report, assignments))
}

/// One shard's customer rows from its features and the fit's assignments
/// (both in position order; a mismatch is an error naming the position).
pub fn assign(
    shard: ShardFeatures,
    assignments: &[Assignment],
    model: &SegmentModel,
) -> Result<Report, String> {
    if shard.positions.len() != assignments.len() {
        return Err(format!(
            "{} customers in the features, {} in the assignments",
            shard.positions.len(),
            assignments.len()
        ));
    }
    if let Some((p, a)) = shard
        .positions
        .iter()
        .zip(assignments)
        .find(|(p, a)| **p != a.position)
    {
        return Err(format!(
            "customer at position {p} in the features meets position {} in the assignments",
            a.position
        ));
    }
    let labels: Vec<String> = model.labels.values().cloned().collect();
    if let Some(a) = assignments
        .iter()
        .find(|a| a.segment as usize >= labels.len())
    {
        return Err(format!(
            "segment {} at position {} is not in the model",
            a.segment, a.position
        ));
    }
    let segment: Vec<u32> = assignments.iter().map(|a| a.segment).collect();
    let ages: Vec<Option<u16>> = assignments.iter().map(|a| a.age).collect();
    let incomes: Vec<Option<f64>> = assignments.iter().map(|a| a.income).collect();
    let scores: Vec<Option<super::rfm::Rfm>> = assignments
        .iter()
        .map(|a| match (a.r, a.f, a.m) {
            (Some(r), Some(f), Some(m)) => Some(super::rfm::Rfm { r, f, m }),
            _ => None,
        })
        .collect();
    let mut people = crate::customer_segments::People::from(shard.customers);
    people.impute(ages, incomes);
    let tables = aggregate::aggregate(people, shard.feats, &segment, &labels, &scores, false)
        .map_err(|e| e.to_string())?;
    Ok(Report {
        customers: tables.customers,
        behavior: tables.behavior,
        model: model.clone(),
        ..Report::default()
    })
}
