//! The five report tables of DESIGN §5, each declared once: columns, key,
//! parent, and how a row's cells come out of (and back into) the model.
//!
//! Adding a column is: its entry here (column + cell + read), the feature
//! that computes it, and one migration per backend. Order matters twice:
//! `TABLES` is load order (parents first), and each `cells`/`read` pair
//! follows its `columns` position by position (a test checks the lengths).

use std::collections::BTreeMap;

use crate::model::{
    CustomerBehavior, CustomerIdx, CustomerSegment, PurchaseTrend, Report, SegmentMetrics,
    StoreSummary, Transition,
};
use crate::table::{Cell, ForeignKey, Kind, Table, col, nullable};

/// The report tables in load order: parents before children.
pub const TABLES: [&Table; 5] = [
    &SEGMENT_METRICS,
    &CUSTOMER_SEGMENTS,
    &CUSTOMER_BEHAVIOR_METRICS,
    &CUSTOMER_STORE_SUMMARY,
    &CUSTOMER_PURCHASE_TRENDS,
];

/// History tables: appended per run (keyed by run id), never replaced. A
/// load first removes the rows of its own run id, so loading a report twice
/// does not duplicate them.
pub const HISTORY: [&Table; 1] = [&SEGMENT_TRANSITIONS];

/// Rows per table, as recorded in `pipeline_runs.row_counts`.
pub fn row_counts(report: &Report) -> BTreeMap<String, u64> {
    TABLES
        .iter()
        .map(|t| (t.name.to_owned(), (t.len)(report) as u64))
        .collect()
}

/// The mobile of a row's customer.
fn mobile(r: &Report, c: CustomerIdx) -> Cell<'_> {
    match r.customers.mobile(c.index()) {
        Some(mobile) => Cell::Text(mobile),
        None => Cell::Dangling {
            what: "customer",
            index: c.index(),
            of: r.customers.len(),
        },
    }
}

/// A row of a spilled table that could not be read back (logged by
/// `Rows::get`): a dangling first cell, which every sink refuses with the
/// table and row, so the load fails and the previous tables stay.
fn spilled_row_lost(of: usize, index: usize, columns: usize, out: &mut Vec<Cell<'_>>) {
    out.push(Cell::Dangling {
        what: "spilled row",
        index,
        of,
    });
    out.extend(std::iter::repeat_n(Cell::Null, columns - 1));
}

const MOBILE_FK: Option<ForeignKey> = Some(ForeignKey {
    column: "mobile",
    parent: "customer_segments",
});

pub const SEGMENT_METRICS: Table = Table {
    name: "segment_metrics",
    columns: &[
        col("segment", Kind::Int),
        col("segment_label", Kind::Text),
        col("num_customers", Kind::BigInt),
        col("total_spend", Kind::Total),
        col("avg_clv", Kind::Money),
        nullable("avg_age", Kind::Float),
        nullable("avg_income", Kind::Money),
        col("avg_purchase_count", Kind::Float),
        nullable("avg_days_since_last_purchase", Kind::Float),
        nullable("avg_purchase_frequency", Kind::Float),
        col("share_of_customers", Kind::Float),
        col("share_of_spend", Kind::Float),
    ],
    key: &["segment"],
    parent: None,
    len: |r| r.segments.len(),
    cells: |r, i, out| {
        let s = &r.segments[i];
        out.extend([
            Cell::Int(i64::from(s.segment)),
            Cell::Text(&s.segment_label),
            i64::try_from(s.num_customers).map_or(Cell::Null, Cell::Int),
            Cell::Float(s.total_spend),
            Cell::Float(s.avg_clv),
            Cell::opt(s.avg_age, Cell::Float),
            Cell::opt(s.avg_income, Cell::Float),
            Cell::Float(s.avg_purchase_count),
            Cell::opt(s.avg_days_since_last_purchase, Cell::Float),
            Cell::opt(s.avg_purchase_frequency, Cell::Float),
            Cell::Float(s.share_of_customers),
            Cell::Float(s.share_of_spend),
        ]);
    },
    read: |p, f| {
        p.segments.push(SegmentMetrics {
            segment: f.int(0)?,
            segment_label: f.text(1)?,
            num_customers: f.int(2)?,
            total_spend: f.float(3)?,
            avg_clv: f.float(4)?,
            avg_age: f.opt_float(5)?,
            avg_income: f.opt_float(6)?,
            avg_purchase_count: f.float(7)?,
            avg_days_since_last_purchase: f.opt_float(8)?,
            avg_purchase_frequency: f.opt_float(9)?,
            share_of_customers: f.float(10)?,
            share_of_spend: f.float(11)?,
        });
        Ok(())
    },
};

pub const CUSTOMER_SEGMENTS: Table = Table {
    name: "customer_segments",
    columns: &[
        col("mobile", Kind::Text),
        nullable("name", Kind::Text),
        nullable("age", Kind::Int),
        nullable("income", Kind::Money),
        nullable("gender", Kind::Text),
        col("clv", Kind::Money),
        nullable("avg_purchase_amount", Kind::Money),
        col("purchase_count", Kind::Int),
        nullable("days_since_last_purchase", Kind::Int),
        nullable("purchase_frequency", Kind::Float),
        col("segment", Kind::Int),
        col("segment_label", Kind::Text),
        nullable("r_score", Kind::Int),
        nullable("f_score", Kind::Int),
        nullable("m_score", Kind::Int),
    ],
    key: &["mobile"],
    parent: Some(ForeignKey {
        column: "segment",
        parent: "segment_metrics",
    }),
    len: |r| r.customers.len(),
    cells: |r, i, out| {
        let Some(c) = r.customers.get(i) else {
            out.push(Cell::Dangling {
                what: "customer",
                index: i,
                of: r.customers.len(),
            });
            return out.extend(std::iter::repeat_n(Cell::Null, 14));
        };
        out.extend([
            Cell::Text(c.mobile),
            Cell::opt(c.name, Cell::Text),
            Cell::opt(c.age, |a| Cell::Int(i64::from(a))),
            Cell::opt(c.income, Cell::Float),
            Cell::opt(c.gender, |g| Cell::Text(g.as_str())),
            Cell::Float(c.clv),
            Cell::opt(c.avg_purchase_amount, Cell::Float),
            Cell::Int(i64::from(c.purchase_count)),
            Cell::opt(c.days_since_last_purchase, |d| Cell::Int(i64::from(d))),
            Cell::opt(c.purchase_frequency, Cell::Float),
            Cell::Int(i64::from(c.segment)),
            Cell::Text(c.segment_label),
            Cell::opt(c.r_score, |s| Cell::Int(i64::from(s))),
            Cell::opt(c.f_score, |s| Cell::Int(i64::from(s))),
            Cell::opt(c.m_score, |s| Cell::Int(i64::from(s))),
        ]);
    },
    read: |p, f| {
        p.push_customer(CustomerSegment {
            mobile: f.text(0)?,
            name: f.opt_text(1)?,
            age: f.opt_int(2)?,
            income: f.opt_float(3)?,
            gender: f.opt_gender(4)?,
            clv: f.float(5)?,
            avg_purchase_amount: f.opt_float(6)?,
            purchase_count: f.int(7)?,
            days_since_last_purchase: f.opt_int(8)?,
            purchase_frequency: f.opt_float(9)?,
            segment: f.int(10)?,
            segment_label: f.text(11)?,
            r_score: f.opt_int(12)?,
            f_score: f.opt_int(13)?,
            m_score: f.opt_int(14)?,
        });
        Ok(())
    },
};

pub const CUSTOMER_BEHAVIOR_METRICS: Table = Table {
    name: "customer_behavior_metrics",
    columns: &[
        col("mobile", Kind::Text),
        col("total_spent", Kind::Money),
        nullable("avg_transaction_value", Kind::Money),
        nullable("max_purchase_amount", Kind::Money),
        nullable("min_purchase_amount", Kind::Money),
        col("purchase_count", Kind::Int),
        nullable("first_purchase", Kind::Date),
        nullable("last_purchase", Kind::Date),
        nullable("days_since_first_purchase", Kind::Int),
        nullable("days_since_last_purchase", Kind::Int),
    ],
    key: &["mobile"],
    parent: MOBILE_FK,
    len: |r| r.behavior.len(),
    cells: |r, i, out| {
        let Some(b) = r.behavior.get(i) else {
            return spilled_row_lost(r.behavior.len(), i, 10, out);
        };
        out.extend([
            mobile(r, b.customer),
            Cell::Float(b.total_spent),
            Cell::opt(b.avg_transaction_value, Cell::Float),
            Cell::opt(b.max_purchase_amount, Cell::Float),
            Cell::opt(b.min_purchase_amount, Cell::Float),
            Cell::Int(i64::from(b.purchase_count)),
            Cell::opt(b.first_purchase, Cell::Date),
            Cell::opt(b.last_purchase, Cell::Date),
            Cell::opt(b.days_since_first_purchase, |d| Cell::Int(i64::from(d))),
            Cell::opt(b.days_since_last_purchase, |d| Cell::Int(i64::from(d))),
        ]);
    },
    read: |p, f| {
        let customer = f.customer(0, p)?;
        p.behavior.push(CustomerBehavior {
            customer,
            total_spent: f.float(1)?,
            avg_transaction_value: f.opt_float(2)?,
            max_purchase_amount: f.opt_float(3)?,
            min_purchase_amount: f.opt_float(4)?,
            purchase_count: f.int(5)?,
            first_purchase: f.opt_date(6)?,
            last_purchase: f.opt_date(7)?,
            days_since_first_purchase: f.opt_int(8)?,
            days_since_last_purchase: f.opt_int(9)?,
        });
        Ok(())
    },
};

pub const CUSTOMER_STORE_SUMMARY: Table = Table {
    name: "customer_store_summary",
    columns: &[
        col("mobile", Kind::Text),
        col("store", Kind::Text),
        col("total_spent", Kind::Money),
        col("visit_count", Kind::Int),
    ],
    key: &["mobile", "store"],
    parent: MOBILE_FK,
    len: |r| r.stores.len(),
    cells: |r, i, out| {
        let Some(s) = r.stores.get(i) else {
            return spilled_row_lost(r.stores.len(), i, 4, out);
        };
        out.extend([
            mobile(r, s.customer),
            match r.store_names.get(s.store as usize) {
                Some(name) => Cell::Text(name),
                None => Cell::Dangling {
                    what: "store",
                    index: s.store as usize,
                    of: r.store_names.len(),
                },
            },
            Cell::Float(s.total_spent),
            Cell::Int(i64::from(s.visit_count)),
        ]);
    },
    read: |p, f| {
        let customer = f.customer(0, p)?;
        let name = f.text(1)?;
        let store = p.store_ids.id(&mut p.store_names, &name);
        p.stores.push(StoreSummary {
            customer,
            store,
            total_spent: f.float(2)?,
            visit_count: f.int(3)?,
        });
        Ok(())
    },
};

pub const CUSTOMER_PURCHASE_TRENDS: Table = Table {
    name: "customer_purchase_trends",
    columns: &[
        col("mobile", Kind::Text),
        col("month", Kind::Month),
        col("total_spent", Kind::Money),
        col("num_purchases", Kind::Int),
    ],
    key: &["mobile", "month"],
    parent: MOBILE_FK,
    len: |r| r.trends.len(),
    cells: |r, i, out| {
        let Some(t) = r.trends.get(i) else {
            return spilled_row_lost(r.trends.len(), i, 4, out);
        };
        out.extend([
            mobile(r, t.customer),
            Cell::Month(t.month),
            Cell::Float(t.total_spent),
            Cell::Int(i64::from(t.num_purchases)),
        ]);
    },
    read: |p, f| {
        let customer = f.customer(0, p)?;
        p.trends.push(PurchaseTrend {
            customer,
            month: f.month(1)?,
            total_spent: f.float(2)?,
            num_purchases: f.int(3)?,
        });
        Ok(())
    },
};

pub const SEGMENT_TRANSITIONS: Table = Table {
    name: "segment_transitions",
    columns: &[
        col("run_id", Kind::Text),
        col("from_segment", Kind::Int),
        col("to_segment", Kind::Int),
        col("customers", Kind::BigInt),
    ],
    key: &["run_id", "from_segment", "to_segment"],
    parent: None,
    len: |r| r.transitions.len(),
    cells: |r, i, out| {
        let t = &r.transitions[i];
        out.extend([
            Cell::Text(&r.model.run_id),
            Cell::Int(i64::from(t.from_segment)),
            Cell::Int(i64::from(t.to_segment)),
            i64::try_from(t.customers).map_or(Cell::Null, Cell::Int),
        ]);
    },
    read: |p, f| {
        p.transitions.push(Transition {
            from_segment: f.int(1)?,
            to_segment: f.int(2)?,
            customers: f.int(3)?,
        });
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_and_parent_among_its_columns() {
        for t in TABLES {
            for k in t.key {
                assert!(t.column_names().any(|c| c == *k), "{}: key {k}", t.name);
            }
            if let Some(fk) = t.parent {
                assert!(t.column_names().any(|c| c == fk.column), "{}", t.name);
                let parent = TABLES
                    .iter()
                    .position(|p| p.name == fk.parent)
                    .expect("parent declared");
                let me = TABLES.iter().position(|p| p.name == t.name).expect("self");
                assert!(parent < me, "{} loads before its parent", t.name);
            }
        }
    }
}
