//! Throughput of the purchase API over loopback HTTP, as extract uses it:
//! 4 keep-alive clients posting batches of 1,000 mobiles to an in-process
//! server with default dirt. Run with `cargo bench --bench api_throughput`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use segpipe::api::{ApiOpts, Dirt, Limits, Server};

const MOBILES: u64 = 100_000;
const BATCH: usize = 1_000;
const CLIENTS: usize = 4;

/// What one client thread saw.
#[derive(Default)]
struct Totals {
    requests: u64,
    purchases: u64,
    bytes: u64,
}

/// Rows in an answer, counted without a full parse so the client threads
/// spend as little CPU as possible next to the server they measure.
fn count_rows(answer: &[u8]) -> u64 {
    answer.windows(9).filter(|w| *w == b"\"mobile\":").count() as u64
}

fn main() {
    let opts = ApiOpts {
        bind: "127.0.0.1:0".to_owned(),
        seed: 42,
        as_of: NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date"),
        max_mobiles: 10_000,
        fail_rate: 0.0,
        latency_ms: 0,
        threads: 0,
        dirt: Dirt::default(),
        limits: Limits::default(),
    };
    let server = Server::start(&opts).expect("start server");
    let url = format!("{}/purchase-history", server.url());
    let mobiles: Vec<String> = (0..MOBILES)
        .map(|i| format!("+91{}", 7_000_000_000 + i * 29_989))
        .collect();
    // Bodies are built before the clock starts: we measure the server.
    let bodies: Vec<String> = mobiles
        .chunks(BATCH)
        .map(|b| serde_json::json!({ "mobiles": b }).to_string())
        .collect();

    let started = Instant::now();
    let totals: Vec<Totals> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (url, bodies) = (&url, &bodies);
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(60)))
                        .build()
                        .into();
                    let mut t = Totals::default();
                    for body in bodies.iter().skip(c).step_by(CLIENTS) {
                        let resp = agent
                            .post(url)
                            .header("Content-Type", "application/json")
                            .send(body.as_str())
                            .expect("POST /purchase-history");
                        let bytes = resp
                            .into_body()
                            .with_config()
                            .limit(256 << 20)
                            .read_to_vec()
                            .expect("read answer");
                        if t.requests == 0 {
                            // Check the shape once; a broken server must not look fast.
                            let v: serde_json::Value =
                                serde_json::from_slice(&bytes).expect("JSON answer");
                            let rows =
                                v["purchases"].as_array().expect("purchases array").len() as u64;
                            assert_eq!(rows, count_rows(&bytes));
                        }
                        t.requests += 1;
                        t.bytes += bytes.len() as u64;
                        t.purchases += count_rows(&bytes);
                    }
                    t
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    server.shutdown();

    let requests: u64 = totals.iter().map(|t| t.requests).sum();
    let purchases: u64 = totals.iter().map(|t| t.purchases).sum();
    let bytes: u64 = totals.iter().map(|t| t.bytes).sum();
    println!("api_throughput: {MOBILES} mobiles, batches of {BATCH}, {CLIENTS} clients");
    println!("  requests     {requests}");
    println!("  purchases    {purchases}");
    println!("  total        {secs:.3} s");
    println!("  requests/s   {:.1}", requests as f64 / secs);
    println!("  purchases/s  {:.0}", purchases as f64 / secs);
    println!("  MB/s         {:.1}", bytes as f64 / 1e6 / secs);
}
