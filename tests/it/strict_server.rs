//! A hand-written purchase API, stricter and odder than segpipe's mock:
//! 413 above 100 mobiles, extra JSON fields everywhere, mobiles echoed in
//! another format, and a few transient 503/429 answers. It shares no code
//! with `segpipe::api`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use serde_json::{Value, json};

pub struct StrictServer {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    pub requests: Arc<AtomicU64>,
    pub addr: SocketAddr,
}

/// Purchases this server returns for a normalized mobile: 1 to 3 of them.
pub fn purchase_count(digits: &str) -> usize {
    let last = digits.bytes().last().map_or(0, |b| (b - b'0') as usize);
    last % 3 + 1
}

/// "+91 98765 43210" for "919876543210".
fn reformat(digits: &str) -> String {
    let (cc, rest) = digits.split_at(digits.len() - 10);
    format!("+{cc} {} {}", &rest[..5], &rest[5..])
}

fn respond(req: tiny_http::Request, status: u16, body: Value, extra: &[(&str, &str)]) {
    let mut resp = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
    for (k, v) in extra {
        resp.add_header(
            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header"),
        );
    }
    let _ = req.respond(resp);
}

fn handle(mut req: tiny_http::Request, n: u64) {
    if req.method() != &tiny_http::Method::Post || req.url() != "/purchase-history" {
        return respond(req, 404, json!({"detail": "Not Found"}), &[]);
    }
    // Transient trouble a real upstream has: a 503, then a 429 with Retry-After.
    if n == 1 {
        return respond(req, 503, json!({"error": "warming up"}), &[]);
    }
    if n == 3 {
        return respond(
            req,
            429,
            json!({"error": "slow down"}),
            &[("Retry-After", "0")],
        );
    }
    let mut body = String::new();
    if req.as_reader().read_to_string(&mut body).is_err() {
        return respond(req, 400, json!({"detail": "bad body"}), &[]);
    }
    let Ok(parsed) = serde_json::from_str::<Value>(&body) else {
        return respond(req, 400, json!({"detail": "bad json"}), &[]);
    };
    let Some(mobiles) = parsed.get("mobiles").and_then(Value::as_array) else {
        return respond(req, 422, json!({"detail": "mobiles required"}), &[]);
    };
    if mobiles.len() > 100 {
        return respond(req, 413, json!({"detail": "at most 100 mobiles"}), &[]);
    }
    let mut purchases = Vec::new();
    for m in mobiles.iter().filter_map(Value::as_str) {
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        for i in 0..purchase_count(&digits) {
            purchases.push(json!({
                "mobile": reformat(&digits),
                "date": format!("2026-0{}-15", i + 1),
                "amount": 100.5 * (i + 1) as f64,
                "store": format!("Shop {i}"),
                "currency": "INR",
                "channel": {"kind": "web", "campaign": null},
            }));
        }
    }
    respond(
        req,
        200,
        json!({"purchases": purchases, "page": 1, "generated_by": "strict"}),
        &[],
    )
}

impl StrictServer {
    pub fn start() -> StrictServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind strict server"));
        let addr = server.server_addr().to_ip().expect("ip listener");
        let requests = Arc::new(AtomicU64::new(0));
        let threads = (0..4)
            .map(|_| {
                let server = Arc::clone(&server);
                let requests = Arc::clone(&requests);
                std::thread::spawn(move || {
                    while let Ok(req) = server.recv() {
                        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                        handle(req, n);
                    }
                })
            })
            .collect();
        StrictServer {
            server,
            threads,
            requests,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StrictServer {
    fn drop(&mut self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
