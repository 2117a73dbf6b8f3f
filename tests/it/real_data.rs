//! Real-shaped data with nothing synthetic: a CRM export with no
//! demographics and extra columns, and an orders log with order ids, equal
//! orders on one day, date-times, an undated and an amount-less customer,
//! from a file and from a hand-written server. Totals must match the input
//! to the cent.

use crate::hostile_upstream::{Hostile, ok_body};
use crate::util::{Workdir, ok};

const CUSTOMERS: &str = "customer_id,Mobile,signup_channel\r\n\
                         1,+91 98765 43210,web\r\n\
                         2,919876543211,store\r\n\
                         3,(91) 98765-43212,app\r\n\
                         4,+919876543213,web\r\n";

/// (order_id, mobile, date, amount, store)
const ORDERS: [(&str, &str, &str, &str, &str); 9] = [
    (
        "A-1",
        "919876543210",
        "2026-10-01T10:00:00Z",
        "100.10",
        "Main St",
    ),
    // Same day, same amount, same store, another order: both are real.
    (
        "A-2",
        "919876543210",
        "2026-10-01T10:00:00Z",
        "100.10",
        "Main St",
    ),
    // The same order sent twice: one purchase.
    (
        "A-2",
        "919876543210",
        "2026-10-01T10:00:00Z",
        "100.10",
        "Main St",
    ),
    (
        "A-3",
        "919876543210",
        "2026-10-02 11:30:00",
        "0.05",
        "Online",
    ),
    (
        "A-4",
        "919876543210",
        "2026-10-03T09:00:00+05:30",
        "12.34",
        "Online",
    ),
    ("A-5", "919876543210", "2026/10/05", "7.00", "NA"),
    // Customer 2: no usable date at all.
    ("B-1", "919876543211", "", "40.00", "Main St"),
    ("B-2", "919876543211", "null", "2.50", "Main St"),
    // Customer 3: no amount at all.
    ("C-1", "919876543212", "2026-11-01", "", "Online"),
];

fn purchases_csv() -> String {
    let mut s = String::from("order_id,mobile,date,amount,store,payment\n");
    for (o, m, d, a, st) in ORDERS {
        s.push_str(&format!("{o},{m},{d},{a},{st},card\n"));
    }
    s
}

fn purchases_json() -> String {
    let rows: Vec<serde_json::Value> = ORDERS
        .iter()
        .map(|(o, m, d, a, st)| {
            let null_if = |v: &str| {
                if v.is_empty() || v == "null" || v == "NA" {
                    serde_json::Value::Null
                } else {
                    serde_json::Value::from(v)
                }
            };
            serde_json::json!({
                "order_id": o,
                "mobile": format!("+{m}"),
                "date": null_if(d),
                "amount": a.parse::<f64>().ok(),
                "store": null_if(st),
                "payment": {"method": "card"},
            })
        })
        .collect();
    serde_json::json!({ "purchases": rows, "next_page": null }).to_string()
}

fn rows(db: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).expect("cell") {
                rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                rusqlite::types::ValueRef::Integer(x) => x.to_string(),
                rusqlite::types::ValueRef::Real(x) => format!("{x:.2}"),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(_) => "blob".to_owned(),
            })
            .collect())
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

// See: issue 9
#[test]
fn issue_9_real_shaped_files_load_honestly_and_to_the_cent() {
    let w = Workdir::new();
    w.write("crm.csv", CUSTOMERS);
    w.write("orders.csv", &purchases_csv());
    let out = ok(w.run(&[
        "run",
        "--customers",
        "crm.csv",
        "--purchases",
        "orders.csv",
        "--as-of",
        "2026-11-24",
        "--database-url",
        "sqlite://file.db",
        "--report",
        "none",
    ]));
    assert!(out.contains("(nothing synthetic)"), "{out}");
    // No planted personas here, so no agreement to claim.
    assert!(out.contains("ground truth: none to score against"), "{out}");
    let db = w.join("file.db");
    // Valid amounts after the repeated order is dropped: 100.10 twice, 0.05,
    // 12.34, 7.00, 40.00, 2.50 = 262.09.
    assert_eq!(
        rows(&db, "SELECT sum(clv) FROM customer_segments"),
        vec![vec!["262.09".to_owned()]]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT mobile, purchase_count, clv, avg_purchase_amount, days_since_last_purchase, \
             name, age, income, gender FROM customer_segments ORDER BY mobile"
        ),
        vec![
            vec![
                "919876543210",
                "5",
                "219.59",
                "43.92",
                "50",
                "NULL",
                "NULL",
                "NULL",
                "NULL"
            ],
            vec![
                "919876543211",
                "2",
                "42.50",
                "21.25",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL"
            ],
            vec![
                "919876543212",
                "1",
                "0.00",
                "NULL",
                "23",
                "NULL",
                "NULL",
                "NULL",
                "NULL"
            ],
            vec![
                "919876543213",
                "0",
                "0.00",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL"
            ],
        ]
        .into_iter()
        .map(|r| r.into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    // Averages over known values only; the no-purchases segment keeps NULLs.
    let none = rows(
        &db,
        "SELECT avg_days_since_last_purchase, avg_age, avg_income FROM segment_metrics \
         WHERE segment_label = 'no purchases'",
    );
    assert_eq!(none, vec![vec!["NULL", "NULL", "NULL"]]);
    let quality = rows(
        &db,
        "SELECT json_extract(data_quality, '$.date_iso_datetime_parsed'), \
         json_extract(data_quality, '$.date_slash_parsed'), \
         json_extract(data_quality, '$.duplicate_purchases_dropped') FROM pipeline_runs",
    );
    assert_eq!(quality, vec![vec!["4", "1", "1"]]);
    // The method and the whole k sweep are kept with the run.
    let run = rows(
        &db,
        "SELECT method, json_array_length(k_sweep) > 0, holdout IS NULL FROM pipeline_runs",
    );
    assert_eq!(run, vec![vec!["kmeans", "1", "1"]]);

    // The same orders from a hand-written API: the same tables.
    let server = Hostile::start(vec![ok_body(&purchases_json())]);
    ok(w.run(&[
        "run",
        "--customers",
        "crm.csv",
        "--api-url",
        &server.url(),
        "--as-of",
        "2026-11-24",
        "--database-url",
        "sqlite://api.db",
        "--report",
        "none",
    ]));
    for table in [
        "customer_segments ORDER BY mobile",
        "customer_behavior_metrics ORDER BY mobile",
        "customer_store_summary ORDER BY mobile, store",
        "customer_purchase_trends ORDER BY mobile, month",
    ] {
        let sql = format!("SELECT * FROM {table}");
        assert_eq!(rows(&db, &sql), rows(&w.join("api.db"), &sql), "{table}");
    }
}
