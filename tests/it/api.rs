//! The purchase API over real HTTP: contract, determinism, errors, faults,
//! concurrency and shutdown. Each test starts its own server on 127.0.0.1:0.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use segpipe::api::{ApiOpts, ApiPurchase, Dirt, Server, purchases_for};
use serde::Deserialize;
use serde_json::{Value, json};

fn opts() -> ApiOpts {
    ApiOpts {
        bind: "127.0.0.1:0".to_owned(),
        seed: 42,
        as_of: NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date"),
        max_mobiles: 10_000,
        fail_rate: 0.0,
        latency_ms: 0,
        threads: 4,
        dirt: Dirt {
            null_date_rate: 0.10,
            dmy_date_rate: 0.10,
            null_amount_rate: 0.05,
            null_store_rate: 0.05,
            duplicate_purchase_rate: 0.02,
        },
    }
}

fn start(opts: &ApiOpts) -> Server {
    Server::start(opts).expect("start server on loopback")
}

/// A keep-alive agent that returns non-2xx answers instead of erroring, with
/// a timeout so a hung server fails the test instead of hanging it.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status, `Allow` header, `Content-Type` and parsed JSON body.
struct Answer {
    status: u16,
    allow: Option<String>,
    content_type: Option<String>,
    json: Value,
}

fn read(resp: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, allow, content_type) = (
        resp.status().as_u16(),
        header("allow"),
        header("content-type"),
    );
    let text = resp
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("read body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"));
    Answer {
        status,
        allow,
        content_type,
        json,
    }
}

fn post(agent: &ureq::Agent, base: &str, body: &str) -> Answer {
    let resp = agent
        .post(format!("{base}/purchase-history"))
        .header("Content-Type", "application/json")
        .send(body)
        .expect("POST /purchase-history");
    read(resp)
}

fn post_mobiles(agent: &ureq::Agent, base: &str, mobiles: &[String]) -> Vec<ApiPurchase> {
    let a = post(agent, base, &json!({ "mobiles": mobiles }).to_string());
    assert_eq!(a.status, 200, "{}", a.json);
    #[derive(Deserialize)]
    struct Body {
        purchases: Vec<ApiPurchase>,
    }
    let body: Body = serde_json::from_value(a.json).expect("200 body has the contract shape");
    body.purchases
}

fn get(agent: &ureq::Agent, base: &str, path: &str) -> Answer {
    read(agent.get(format!("{base}{path}")).call().expect("GET"))
}

fn mobiles(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("+91{}", 9_000_000_000 + i * 104_729))
        .collect()
}

/// Purchases grouped by echoed mobile, each group in answer order.
fn by_mobile(rows: Vec<ApiPurchase>) -> BTreeMap<String, Vec<ApiPurchase>> {
    let mut map: BTreeMap<String, Vec<ApiPurchase>> = BTreeMap::new();
    for r in rows {
        map.entry(r.mobile.clone()).or_default().push(r);
    }
    map
}

fn error_text(a: &Answer) -> &str {
    a.json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` string in {}", a.json))
}

#[test]
fn purchase_history_follows_the_contract() {
    let server = start(&opts());
    let o = opts();
    let sent = [
        "+91 98765 43210".to_owned(),
        "(+91) 98123-45679".to_owned(),
        "+919812345678".to_owned(),
        "not a mobile".to_owned(),
    ];
    let agent = agent();
    let a = post(
        &agent,
        &server.url(),
        &json!({ "mobiles": sent }).to_string(),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type.as_deref(), Some("application/json"));
    let rows = a.json["purchases"].as_array().expect("purchases array");
    assert!(!rows.is_empty());
    for row in rows {
        let obj = row.as_object().expect("purchase object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{row}");
        for k in ["mobile", "date", "amount", "store"] {
            assert!(obj.contains_key(k), "{k} missing in {row}");
        }
        assert!(
            sent[..3].iter().any(|m| row["mobile"] == m.as_str()),
            "{row}"
        );
        match &row["date"] {
            Value::Null => {}
            Value::String(d) => {
                let b = d.as_bytes();
                let ymd = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
                let dmy = b.len() == 10 && b[2] == b'-' && b[5] == b'-';
                assert!(ymd || dmy, "{d}");
            }
            other => panic!("date {other}"),
        }
        assert!(
            row["amount"].is_null() || row["amount"].as_f64().is_some_and(|x| x > 0.0),
            "{row}"
        );
        assert!(row["store"].is_null() || row["store"].is_string(), "{row}");
    }
    let mut want = Vec::new();
    for m in &sent {
        want.extend(purchases_for(o.seed, o.as_of, &o.dirt, m));
    }
    let got: Vec<ApiPurchase> =
        serde_json::from_value(a.json["purchases"].clone()).expect("typed purchases");
    assert_eq!(got, want);
    server.shutdown();
}

#[test]
fn a_number_sent_twice_is_answered_once_under_its_first_spelling() {
    let server = start(&opts());
    let o = opts();
    let got = post_mobiles(
        &agent(),
        &server.url(),
        &["+91 98765 43210".to_owned(), "919876543210".to_owned()],
    );
    assert_eq!(
        got,
        purchases_for(o.seed, o.as_of, &o.dirt, "+91 98765 43210")
    );
    assert!(got.iter().all(|p| p.mobile == "+91 98765 43210"));
}

#[test]
fn answers_do_not_depend_on_batching_or_order() {
    let server = start(&opts());
    let agent = agent();
    let all = mobiles(300);
    let whole = by_mobile(post_mobiles(&agent, &server.url(), &all));

    // Reversed, in uneven batches, with each batch asked twice (a retry).
    let mut reversed = all.clone();
    reversed.reverse();
    let mut pieces = Vec::new();
    for batch in reversed.chunks(7) {
        let first = post_mobiles(&agent, &server.url(), batch);
        assert_eq!(
            first,
            post_mobiles(&agent, &server.url(), batch),
            "retry differs"
        );
        pieces.extend(first);
    }
    assert_eq!(by_mobile(pieces), whole);
    assert!(whole.len() > 250, "most mobiles buy: {}", whole.len());
}

#[test]
fn errors_are_json_with_the_right_status() {
    let server = start(&ApiOpts {
        max_mobiles: 10,
        ..opts()
    });
    let agent = agent();

    let a = post(&agent, &server.url(), r#"{"mobiles": ["+919876543210",}"#);
    assert_eq!(a.status, 400);
    assert!(error_text(&a).contains("malformed JSON"), "{}", a.json);

    for body in [
        r#"{}"#,
        r#"{"mobiles": "+919876543210"}"#,
        r#"{"mobiles": ["+919876543210", 5]}"#,
    ] {
        let a = post(&agent, &server.url(), body);
        assert_eq!(a.status, 422, "{body}");
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
        assert!(!error_text(&a).is_empty());
    }

    let a = post(
        &agent,
        &server.url(),
        &json!({ "mobiles": mobiles(11) }).to_string(),
    );
    assert_eq!(a.status, 413);
    assert!(error_text(&a).contains("limit is 10"), "{}", a.json);
    // Exactly at the limit is fine.
    assert_eq!(
        post(
            &agent,
            &server.url(),
            &json!({ "mobiles": mobiles(10) }).to_string()
        )
        .status,
        200
    );

    let a = get(&agent, &server.url(), "/no-such-thing");
    assert_eq!(a.status, 404);
    assert!(error_text(&a).contains("/no-such-thing"));

    let a = get(&agent, &server.url(), "/purchase-history");
    assert_eq!((a.status, a.allow.as_deref()), (405, Some("POST")));
    assert!(!error_text(&a).is_empty());
    let resp = agent
        .post(format!("{}/health", server.url()))
        .send("{}")
        .expect("POST /health");
    let a = read(resp);
    assert_eq!((a.status, a.allow.as_deref()), (405, Some("GET, HEAD")));

    // The server still answers normally after all of that.
    assert_eq!(get(&agent, &server.url(), "/health").status, 200);
}

#[test]
fn an_oversized_body_gets_413() {
    let server = start(&opts());
    let mut body = String::with_capacity(33 << 20);
    body.push_str(r#"{"mobiles": [""#);
    body.push_str(&"9".repeat(33 << 20));
    body.push_str(r#""]}"#);
    let a = post(&agent(), &server.url(), &body);
    assert_eq!(a.status, 413);
    assert!(error_text(&a).contains("bytes"), "{}", a.json);
}

#[test]
fn health_and_openapi() {
    let server = start(&opts());
    let agent = agent();
    let a = get(&agent, &server.url(), "/health");
    assert_eq!((a.status, a.json), (200, json!({ "status": "ok" })));

    let a = get(&agent, &server.url(), "/openapi.json");
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type.as_deref(), Some("application/json"));
    let version = a.json["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    let post = &a.json["paths"]["/purchase-history"]["post"];
    assert!(post.is_object(), "{}", a.json["paths"]);
    for code in ["200", "400", "413", "422"] {
        assert!(post["responses"][code].is_object(), "response {code}");
    }
    assert!(a.json["paths"]["/health"]["get"].is_object());
}

#[test]
fn concurrent_clients_all_get_correct_answers() {
    let server = start(&opts());
    let o = opts();
    let all = mobiles(800);
    let base = server.url();
    std::thread::scope(|s| {
        for chunk in all.chunks(100) {
            let (base, o) = (&base, &o);
            s.spawn(move || {
                let agent = agent();
                for batch in chunk.chunks(25) {
                    let got = post_mobiles(&agent, base, batch);
                    let want: Vec<ApiPurchase> = batch
                        .iter()
                        .flat_map(|m| purchases_for(o.seed, o.as_of, &o.dirt, m))
                        .collect();
                    assert_eq!(got, want);
                }
            });
        }
    });
    server.shutdown();
}

#[test]
fn fault_injection_fails_the_configured_share() {
    let server = start(&ApiOpts {
        fail_rate: 0.2,
        ..opts()
    });
    let agent = agent();
    let body = json!({ "mobiles": ["+919876543210"] }).to_string();
    let n = 400;
    let mut failed = 0;
    for _ in 0..n {
        let a = post(&agent, &server.url(), &body);
        match a.status {
            200 => {}
            503 => {
                assert_eq!(a.json, json!({ "error": "injected failure" }));
                failed += 1;
            }
            other => panic!("unexpected status {other}: {}", a.json),
        }
    }
    let share = f64::from(failed) / f64::from(n);
    assert!((share - 0.2).abs() < 0.05, "failed share {share}");
    // Health is never failed on purpose.
    for _ in 0..50 {
        assert_eq!(get(&agent, &server.url(), "/health").status, 200);
    }
}

#[test]
fn latency_delays_purchase_answers() {
    let server = start(&ApiOpts {
        latency_ms: 120,
        ..opts()
    });
    let agent = agent();
    let t = Instant::now();
    post_mobiles(&agent, &server.url(), &mobiles(1));
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn shutdown_finishes_the_request_in_flight() {
    let server = start(&ApiOpts {
        latency_ms: 300,
        ..opts()
    });
    let o = opts();
    let sent = mobiles(5);
    std::thread::scope(|s| {
        let (url, batch) = (server.url(), sent.clone());
        let client = s.spawn(move || post_mobiles(&agent(), &url, &batch));
        // Observe the request inside a worker, rather than sleeping and hoping.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.in_flight() == 0 {
            assert!(Instant::now() < deadline, "request never reached a worker");
            std::thread::yield_now();
        }
        // Still sleeping in the injected latency: shutdown must wait for it.
        let t = Instant::now();
        server.shutdown();
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "shutdown did not wait: {:?}",
            t.elapsed()
        );
        let got = client.join().expect("client thread");
        let want: Vec<ApiPurchase> = sent
            .iter()
            .flat_map(|m| purchases_for(o.seed, o.as_of, &o.dirt, m))
            .collect();
        assert_eq!(got, want);
    });
}

#[test]
fn shutdown_joins_while_clients_hold_keep_alive_connections() {
    let server = start(&opts());
    let agent = agent();
    post_mobiles(&agent, &server.url(), &mobiles(3));
    assert_eq!(get(&agent, &server.url(), "/health").status, 200);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.shutdown();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("shutdown joined its workers");
}

#[test]
fn binding_a_taken_address_names_it() {
    let server = start(&opts());
    let taken = server.addr().to_string();
    let err = Server::start(&ApiOpts {
        bind: taken.clone(),
        ..opts()
    })
    .err()
    .expect("port is taken");
    assert!(matches!(err, segpipe::api::Error::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains(&taken), "{err}");
}
