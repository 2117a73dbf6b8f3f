//! Purchase API client: batches, concurrent workers, retries, 413 splits.
//!
//! Workers share nothing but a batch counter and a result slot per batch, so
//! the merged output is in batch order whatever finishes first: determinism
//! does not depend on scheduling. Each worker keeps one ureq `Agent`, i.e.
//! one keep-alive connection pool.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::{debug, warn};

use super::{Error, ExtractOpts};
use crate::error::one_line;
use crate::interner::Interner;
use crate::mobile;
use crate::model::{CustomerIdx, Purchase, RawDate, order_key};
use crate::odd_dates::OddDates;
use crate::people::{MobileIndex, People};
use crate::rng;

/// Purchases fetched for all customers, with local tables already merged.
#[derive(Debug, Default)]
pub struct Fetched {
    pub purchases: Vec<Purchase>,
    pub stores: Vec<String>,
    pub odd_dates: OddDates,
    /// Purchases whose echoed mobile matched no requested customer.
    pub unmatched: u64,
    pub requests: u64,
    pub retries: u64,
    /// Batches split in halves after a 413.
    pub splits: u64,
    /// Malformed rows of a purchases file (never from the API) and that
    /// file's header, for `rejects_purchases.csv`.
    pub rejects: Vec<crate::model::Reject>,
    pub reject_header: Vec<String>,
    /// With `ExtractOpts::spool`, where the purchases went instead of
    /// `purchases` (which then holds none).
    pub spool: Option<crate::spool::Spool>,
}

impl Fetched {
    /// Move the purchases held in memory to the spool, if there is one.
    pub fn spill(&mut self) -> Result<(), Error> {
        if let Some(spool) = &mut self.spool {
            for p in self.purchases.drain(..) {
                spool.push(&p).map_err(Error::Spool)?;
            }
        }
        Ok(())
    }
}

/// Why one request failed; the source of `Error::Batch`.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `body` is folded onto one line and cut (an HTML error page is long).
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// A POST is never re-sent elsewhere: following it as a GET is how an
    /// upstream's "moved" answer once became "nobody bought anything".
    #[error("HTTP {status} redirect to `{location}`, not followed for a POST")]
    Redirect { status: u16, location: String },
    #[error("request failed")]
    Transport(#[source] ureq::Error),
    #[error("HTTP 200 but the body is not the purchase-history JSON")]
    Json(#[source] serde_json::Error),
    #[error("the server refuses even a single mobile (413)")]
    TooLargeForOne,
}

impl RequestError {
    fn retryable(&self) -> bool {
        match self {
            RequestError::Status { status, .. } => *status == 429 || *status >= 500,
            // A cut connection or a truncated or garbled 200 body: a retry
            // may well get the real answer.
            RequestError::Transport(_) | RequestError::Json(_) => true,
            RequestError::Redirect { .. } | RequestError::TooLargeForOne => false,
        }
    }

    /// What the retry warning names: the status, or the kind of failure.
    fn short(&self) -> String {
        match self {
            RequestError::Status { status, .. } | RequestError::Redirect { status, .. } => {
                format!("HTTP {status}")
            }
            RequestError::Transport(e) => one_line(&e.to_string(), 120),
            RequestError::Json(_) => {
                "HTTP 200 with a body that is not the contract's JSON".to_owned()
            }
            RequestError::TooLargeForOne => "HTTP 413".to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    purchases: Vec<ApiPurchase<'a>>,
}

#[derive(Deserialize)]
struct ApiPurchase<'a> {
    #[serde(borrow)]
    mobile: Cow<'a, str>,
    #[serde(borrow, default)]
    date: Option<Cow<'a, str>>,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(borrow, default)]
    store: Option<Cow<'a, str>>,
    /// DESIGN §3: a string or an integer, optional.
    #[serde(borrow, default)]
    order_id: Option<OrderId<'a>>,
}

enum OrderId<'a> {
    Int(i64),
    Big(u64),
    Text(Cow<'a, str>),
}

/// By hand rather than `#[serde(untagged)]`: an untagged enum tries each
/// variant in turn and formats an error message for every miss, which was
/// 3% of a 10,000-customer run with text order ids.
impl<'de: 'a, 'a> Deserialize<'de> for OrderId<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderId<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an integer")
            }

            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(OrderId::Int(n))
            }

            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(n).map_or(OrderId::Big(n), OrderId::Int))
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(OrderId::Text(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OrderId::Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl OrderId<'_> {
    /// The same key for `"17"` and `17`: both spell order 17.
    fn key(&self) -> u64 {
        match self {
            OrderId::Int(n) => order_key(&n.to_string()),
            OrderId::Big(n) => order_key(&n.to_string()),
            OrderId::Text(t) => order_key(t),
        }
    }
}

/// One batch's purchases with batch-local store and odd-date tables.
#[derive(Default)]
struct BatchOut {
    purchases: Vec<Purchase>,
    stores: Vec<String>,
    odd_dates: OddDates,
    unmatched: u64,
}

impl BatchOut {
    /// Append one answer (of a batch split after a 413), re-numbering its
    /// local ids into this batch's tables.
    fn absorb(&mut self, piece: BatchOut, stores: &mut Interner) {
        let remap: Vec<u32> = piece
            .stores
            .iter()
            .map(|name| stores.id(&mut self.stores, name))
            .collect();
        let dates = self.odd_dates.absorb(piece.odd_dates);
        self.unmatched += piece.unmatched;
        let odd = &mut self.odd_dates;
        self.purchases.extend(piece.purchases.into_iter().map(|p| {
            let date = dates(p.date, odd);
            Purchase::new(
                p.customer,
                date,
                p.amount(),
                p.store().map(|s| remap[s as usize]),
            )
            .with_order(p.order().unwrap_or(0))
        }));
    }
}

struct Shared<'a> {
    customers: &'a People,
    index: MobileIndex,
    opts: &'a ExtractOpts,
    url: String,
    next: AtomicUsize,
    cancelled: AtomicBool,
    requests: AtomicU64,
    retries: AtomicU64,
    splits: AtomicU64,
}

/// Fetch the purchases of every customer.
pub fn fetch(customers: &People, opts: &ExtractOpts) -> Result<Fetched, Error> {
    let base = opts.api_url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::ApiUrl {
            url: crate::secret::mask_url(&opts.api_url),
            message: "expected http://HOST:PORT or https://…".to_owned(),
        });
    }
    let shared = Shared {
        customers,
        index: customers.index_by_mobile(),
        opts,
        url: format!("{base}/purchase-history"),
        next: AtomicUsize::new(0),
        cancelled: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        splits: AtomicU64::new(0),
    };
    let batch = opts.batch_size.max(1);
    let ranges: Vec<Range<usize>> = (0..customers.len())
        .step_by(batch)
        .map(|s| s..(s + batch).min(customers.len()))
        .collect();
    let slots: Vec<Mutex<Option<BatchOut>>> = ranges.iter().map(|_| Mutex::new(None)).collect();
    let merger = Mutex::new(Merger {
        spool: if opts.spool {
            Some(crate::spool::Spool::new(customers.len()).map_err(Error::Spool)?)
        } else {
            None
        },
        ..Merger::default()
    });
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let bar = crate::progress::bar(ranges.len() as u64, "fetch");
    std::thread::scope(|scope| {
        for _ in 0..opts.workers.clamp(1, ranges.len().max(1)) {
            scope.spawn(|| {
                let agent = agent(opts);
                loop {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= ranges.len() || shared.cancelled.load(Ordering::Relaxed) {
                        break;
                    }
                    match fetch_batch(&shared, &agent, i, ranges[i].clone()) {
                        Ok(out) => {
                            *lock(&slots[i]) = Some(out);
                            lock(&merger).drain_ready(&slots);
                            bar.inc(1);
                        }
                        Err(e) => {
                            shared.cancelled.store(true, Ordering::Relaxed);
                            lock(&failure).get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut merger = merger.into_inner().unwrap_or_else(|p| p.into_inner());
    merger.drain_ready(&slots);
    if let Some(e) = merger.failed.take() {
        return Err(Error::Spool(e));
    }
    Ok(Fetched {
        purchases: merger.out.purchases,
        stores: merger.out.stores,
        odd_dates: merger.out.odd_dates,
        unmatched: merger.out.unmatched,
        requests: shared.requests.load(Ordering::Relaxed),
        retries: shared.retries.load(Ordering::Relaxed),
        splits: shared.splits.load(Ordering::Relaxed),
        rejects: Vec::new(),
        reject_header: Vec::new(),
        spool: merger.spool,
    })
}

/// Appends finished batches in batch order as soon as they are ready, so
/// only out-of-order batches wait in their slots: memory stays near the
/// size of the result instead of twice it.
#[derive(Default)]
struct Merger {
    next: usize,
    out: BatchOut,
    store_ids: Interner,
    /// Spill each absorbed batch here (`ExtractOpts::spool`).
    spool: Option<crate::spool::Spool>,
    failed: Option<std::io::Error>,
}

impl Merger {
    fn drain_ready(&mut self, slots: &[Mutex<Option<BatchOut>>]) {
        while let Some(slot) = slots.get(self.next) {
            let Some(batch) = lock(slot).take() else {
                return;
            };
            self.out.absorb(batch, &mut self.store_ids);
            self.next += 1;
            if let Some(spool) = &mut self.spool
                && self.failed.is_none()
            {
                for p in self.out.purchases.drain(..) {
                    if let Err(e) = spool.push(&p) {
                        self.failed = Some(e);
                        break;
                    }
                }
                self.out.purchases.clear();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker cannot leave a slot half-written: take it anyway.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn agent(opts: &ExtractOpts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .timeout_recv_body(Some(opts.read_timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn fetch_batch(
    shared: &Shared<'_>,
    agent: &ureq::Agent,
    index: usize,
    range: Range<usize>,
) -> Result<BatchOut, Error> {
    let mut out = BatchOut::default();
    let mut stores = Interner::default();
    let mut pending = vec![range.clone()];
    let deadline = Instant::now() + shared.opts.batch_deadline;
    // Depth-first over halves keeps the purchases in customer order.
    while let Some(r) = pending.pop() {
        let mobiles: Vec<String> = r
            .clone()
            .map(|i| format!("+{}", shared.customers.mobile_at(i)))
            .collect();
        let parse = |body: &[u8]| parse_batch(shared, body);
        match post_with_retries(shared, agent, index, &mobiles, deadline, parse) {
            Ok(piece) => out.absorb(piece, &mut stores),
            Err((_, RequestError::Status { status: 413, .. })) if r.len() > 1 => {
                shared.splits.fetch_add(1, Ordering::Relaxed);
                let mid = r.start + r.len() / 2;
                debug!(
                    message = "Splitting batch after 413.",
                    batch = index,
                    size = r.len()
                );
                pending.push(mid..r.end);
                pending.push(r.start..mid);
            }
            Err((_, RequestError::Status { status: 413, .. })) => {
                return Err(batch_error(
                    shared,
                    index,
                    &range,
                    1,
                    RequestError::TooLargeForOne,
                ));
            }
            Err((attempts, e)) => return Err(batch_error(shared, index, &range, attempts, e)),
        }
    }
    out.purchases.sort_by_key(|p| p.customer);
    Ok(out)
}

fn batch_error(
    shared: &Shared<'_>,
    index: usize,
    range: &Range<usize>,
    attempts: u32,
    e: RequestError,
) -> Error {
    Error::Batch {
        index,
        mobiles: range.len(),
        first: format!("+{}", shared.customers.mobile_at(range.start)),
        attempts,
        url: crate::secret::mask_url(&shared.url),
        source: Box::new(e),
    }
}

/// POST one request and parse its answer, retrying transient failures
/// (including a 200 whose body does not parse) with backoff and jitter,
/// until `max_attempts` or the batch's deadline. The error carries the
/// number of attempts really made.
fn post_with_retries<T>(
    shared: &Shared<'_>,
    agent: &ureq::Agent,
    index: usize,
    mobiles: &[String],
    deadline: Instant,
    mut parse: impl FnMut(&[u8]) -> Result<T, RequestError>,
) -> Result<T, (u32, RequestError)> {
    let opts = shared.opts;
    let body = serde_json::json!({ "mobiles": mobiles }).to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (err, retry_after) = match post(agent, shared, &body, remaining) {
            Ok(bytes) => match parse(&bytes) {
                Ok(parsed) => return Ok(parsed),
                Err(e) => (e, None),
            },
            Err(e) => e,
        };
        let wait = backoff(opts, index, attempt, retry_after);
        if !err.retryable()
            || attempt >= opts.max_attempts
            || shared.cancelled.load(Ordering::Relaxed)
            || Instant::now() + wait >= deadline
        {
            return Err((attempt, err));
        }
        shared.retries.fetch_add(1, Ordering::Relaxed);
        warn!(
            message = format!(
                "Retrying batch {index}: attempt {attempt} of {} failed ({}), next try in {} ms.",
                opts.max_attempts,
                err.short(),
                wait.as_millis()
            ),
            batch = index,
            attempt,
            max_attempts = opts.max_attempts,
            error = %one_line(&crate::error::chain(&err), 200),
        );
        std::thread::sleep(wait);
    }
}

/// Exponential backoff with equal jitter (half fixed, half random, so
/// waits still grow); a server's Retry-After is a floor.
fn backoff(
    opts: &ExtractOpts,
    index: usize,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let cap = opts
        .backoff_base
        .saturating_mul(1u32 << attempt.min(16))
        .min(opts.backoff_max);
    let u = rng::unit(rng::hash(&[
        &(index as u64).to_le_bytes(),
        &attempt.to_le_bytes(),
    ]));
    let jittered = cap.mul_f64(0.5 + 0.5 * u);
    match retry_after {
        Some(r) => jittered.max(r.min(Duration::from_secs(30))),
        None => jittered,
    }
}

fn post(
    agent: &ureq::Agent,
    shared: &Shared<'_>,
    body: &str,
    remaining: Duration,
) -> Result<Vec<u8>, (RequestError, Option<Duration>)> {
    let mut req = agent
        .post(&shared.url)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    for (name, value) in &shared.opts.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let mut resp = req
        .config()
        .timeout_global(Some(remaining))
        .build()
        .send(body)
        .map_err(|e| (RequestError::Transport(e), None))?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if (300..400).contains(&status) {
        let location = header("location").unwrap_or_default();
        return Err((
            RequestError::Redirect {
                status,
                location: one_line(&crate::secret::mask_url(&location), 200),
            },
            None,
        ));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .map_err(|e| (RequestError::Transport(e), None))?;
    if status == 200 {
        return Ok(bytes);
    }
    let body = one_line(&String::from_utf8_lossy(&bytes), 200);
    Err((RequestError::Status { status, body }, retry_after))
}

/// One answer's purchases, with answer-local store and date tables.
fn parse_batch(shared: &Shared<'_>, body: &[u8]) -> Result<BatchOut, RequestError> {
    // One UTF-8 check of the whole body, then `from_str`, which trusts it:
    // `from_slice` validated every string on its own, 4% of the extract's
    // CPU. A body that is not UTF-8 takes the old path, so it is accepted
    // or refused, with the same error, exactly as before.
    let purchases = match std::str::from_utf8(body) {
        Ok(text) => match compact_purchases(text) {
            Some(purchases) => purchases,
            None => {
                serde_json::from_str::<Response<'_>>(text)
                    .map_err(RequestError::Json)?
                    .purchases
            }
        },
        Err(_) => {
            serde_json::from_slice::<Response<'_>>(body)
                .map_err(RequestError::Json)?
                .purchases
        }
    };
    let mut out = BatchOut::default();
    let mut stores = Interner::default();
    out.purchases.reserve(purchases.len());
    // A customer's purchases come one after another under one echoed
    // spelling, so the last spelling's answer (a customer or none) is
    // reused: normalize, key and lookup run about once a customer, not
    // once a purchase. Any other spelling still goes the full way.
    let mut last: Option<(Cow<'_, str>, Option<CustomerIdx>)> = None;
    for p in purchases {
        let customer = match &last {
            Some((raw, customer)) if *raw == p.mobile => *customer,
            _ => {
                let customer = mobile::normalize(&p.mobile)
                    .ok()
                    .and_then(|m| shared.index.get(&mobile::key(&m)).copied());
                last = Some((p.mobile, customer));
                customer
            }
        };
        let Some(customer) = customer else {
            out.unmatched += 1;
            continue;
        };
        let store = p.store.map(|s| stores.id(&mut out.stores, &s));
        let date = RawDate::classify(p.date.as_deref(), &mut out.odd_dates);
        let order = p.order_id.as_ref().map_or(0, OrderId::key);
        out.purchases
            .push(Purchase::new(customer, date, p.amount, store).with_order(order));
    }
    Ok(out)
}

/// The purchases of an answer written exactly as segpipe's mock writes it
/// (compact, keys in `ApiPurchase` order, no escapes, a string order id),
/// read without serde; `None` for anything else, which then goes through
/// serde_json whole. Why: serde's per-field map access, key matching and
/// string scans were over half the client's CPU at 1M customers, and the
/// in-process mock is what `run` talks to by default. What this accepts,
/// serde reads to the same values (a test holds the two together); numbers
/// are still parsed by serde_json, so their rounding and range are its own.
fn compact_purchases(text: &str) -> Option<Vec<ApiPurchase<'_>>> {
    let mut c = Compact { text, at: 0 };
    c.eat(r#"{"purchases":["#)?;
    // ~100 bytes a row in this form.
    let mut out = Vec::with_capacity(text.len() / 96);
    if c.eat("]}").is_none() {
        loop {
            c.eat(r#"{"mobile":"#)?;
            let mobile = c.string()?;
            c.eat(r#","date":"#)?;
            let date = c.nullable(Compact::string)?;
            c.eat(r#","amount":"#)?;
            let amount = c.nullable(Compact::number)?;
            c.eat(r#","store":"#)?;
            let store = c.nullable(Compact::string)?;
            c.eat(r#","order_id":"#)?;
            let order_id = c.string()?;
            c.eat("}")?;
            out.push(ApiPurchase {
                mobile: Cow::Borrowed(mobile),
                date: date.map(Cow::Borrowed),
                amount,
                store: store.map(Cow::Borrowed),
                order_id: Some(OrderId::Text(Cow::Borrowed(order_id))),
            });
            if c.eat(",").is_none() {
                c.eat("]}")?;
                break;
            }
        }
    }
    (c.at == text.len()).then_some(out)
}

/// A cursor over [`compact_purchases`]'s input; every step is `None` when
/// the text is not what it expects.
struct Compact<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Compact<'a> {
    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.at..).unwrap_or_default()
    }

    fn eat(&mut self, literal: &str) -> Option<()> {
        self.rest().starts_with(literal.as_bytes()).then(|| {
            self.at += literal.len();
        })
    }

    /// A string without escapes or control characters (serde's business).
    fn string(&mut self) -> Option<&'a str> {
        self.eat("\"")?;
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        // Both ends sit next to an ASCII quote: char boundaries.
        let s = self.text.get(self.at..self.at + len)?;
        self.at += len + 1;
        Some(s)
    }

    fn number(&mut self) -> Option<f64> {
        let len = self
            .rest()
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))?;
        let x = serde_json::from_str(self.text.get(self.at..self.at + len)?).ok()?;
        self.at += len;
        Some(x)
    }

    fn nullable<T>(&mut self, value: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.eat("null") {
            Some(()) => Some(None),
            None => value(self).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ExtractOpts {
        ExtractOpts {
            purchases_file: None,
            api_url: "http://127.0.0.1:1".into(),
            batch_size: 10,
            workers: 2,
            max_attempts: 3,
            connect_timeout: Duration::from_millis(200),
            read_timeout: Duration::from_millis(200),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            batch_deadline: Duration::from_secs(60),
            headers: Vec::new(),
            shard: crate::shard::Shard::WHOLE,
            spool: false,
        }
    }

    /// DESIGN §3: `order_id` is a string or an integer; `"17"` and `17` are
    /// one order, an escaped string is read whole, a float or a list is not
    /// an order id.
    #[test]
    fn order_ids_are_strings_or_integers() {
        let parse = |json: &str| {
            serde_json::from_str::<Response<'_>>(&format!(
                r#"{{"purchases": [{{"mobile": "1", "order_id": {json}}}]}}"#
            ))
            .map(|r| r.purchases[0].order_id.as_ref().map(OrderId::key))
        };
        let text = parse(r#""17""#).expect("text");
        assert_eq!(text, Some(order_key("17")));
        assert_eq!(parse("17").expect("int"), text);
        assert_eq!(
            parse("18446744073709551615").expect("u64"),
            Some(order_key("18446744073709551615"))
        );
        assert_eq!(parse("-3").expect("negative"), Some(order_key("-3")));
        assert_eq!(
            parse(r#""a\"b""#).expect("escaped"),
            Some(order_key("a\"b"))
        );
        assert_eq!(parse("null").expect("null"), None);
        for bad in ["1.5", "[1]", "true"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains("a string or an integer"), "{bad}: {err}");
        }
    }

    fn shared<'a>(customers: &'a People, opts: &'a ExtractOpts) -> Shared<'a> {
        Shared {
            customers,
            index: customers.index_by_mobile(),
            opts,
            url: String::new(),
            next: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            splits: AtomicU64::new(0),
        }
    }

    fn people(mobiles: &[&str]) -> People {
        mobiles
            .iter()
            .map(|m| crate::model::Customer {
                mobile: (*m).into(),
                name: None,
                age: None,
                income: None,
                gender: None,
            })
            .collect()
    }

    /// parse_batch reuses the previous purchase's customer when the echoed
    /// mobile is the same text; these answers break that run in every way
    /// DESIGN §3 allows, and each purchase must still find its customer.
    #[test]
    fn each_spelling_of_a_mobile_finds_its_customer() {
        let customers = people(&["919876543210", "919876500001"]);
        let o = opts();
        let shared = shared(&customers, &o);
        let body = r#"{"purchases": [
            {"mobile": "+919876543210", "amount": 1},
            {"mobile": "+91 98765 43210", "amount": 2},
            {"mobile": "+919876500001", "amount": 3},
            {"amount": 4, "extra": [1], "mobile": "\u002b919876543210"},
            {"mobile": "+919876543210", "amount": 5},
            {"mobile": "+1 555 0100 999", "amount": 6},
            {"mobile": "+1 555 0100 999", "amount": 7},
            {"mobile": "not a mobile", "amount": 8},
            {"mobile": "not a mobile", "amount": 9},
            {"mobile": "(+91) 98765.00001", "amount": 10, "store": null, "date": null}
        ], "next": null}"#;
        let out = parse_batch(&shared, body.as_bytes()).expect("parses");
        let got: Vec<(usize, Option<f64>)> = out
            .purchases
            .iter()
            .map(|p| (p.customer.index(), p.amount()))
            .collect();
        assert_eq!(
            got,
            [
                (0, Some(1.0)),
                (0, Some(2.0)),
                (1, Some(3.0)),
                (0, Some(4.0)),
                (0, Some(5.0)),
                (1, Some(10.0))
            ]
        );
        assert_eq!(out.unmatched, 4);
    }

    /// What serde makes of a body, and what the compact reader makes of
    /// it, as comparable rows.
    type Row = (
        String,
        Option<String>,
        Option<u64>,
        Option<String>,
        Option<u64>,
    );

    fn rows(purchases: &[ApiPurchase<'_>]) -> Vec<Row> {
        purchases
            .iter()
            .map(|p| {
                (
                    p.mobile.to_string(),
                    p.date.as_deref().map(str::to_owned),
                    p.amount.map(f64::to_bits),
                    p.store.as_deref().map(str::to_owned),
                    p.order_id.as_ref().map(OrderId::key),
                )
            })
            .collect()
    }

    /// The compact reader takes the mock's real answers, reads them as serde
    /// does, and passes everything else to serde: other key orders,
    /// whitespace, escapes, integer or missing order ids, unknown keys,
    /// numbers serde reads its own way (`-0`, out of range) and broken text.
    #[test]
    fn the_compact_reader_agrees_with_serde_or_steps_aside() {
        #[derive(serde::Serialize)]
        struct Body {
            purchases: Vec<crate::api::ApiPurchase>,
        }
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let dirt = crate::api::Dirt::default();
        let purchases: Vec<_> = (0..300)
            .flat_map(|i| {
                let m = format!("+91{}", 9_000_000_000u64 + i * 7919);
                crate::api::purchases_for(42, as_of, &dirt, &m)
            })
            .collect();
        assert!(
            purchases
                .iter()
                .any(|p| p.date.is_none() && p.store.is_some())
        );
        let mock = serde_json::to_string(&Body { purchases }).expect("serialize");
        let serde =
            |text: &str| serde_json::from_str::<Response<'_>>(text).map(|r| rows(&r.purchases));
        let fast = compact_purchases(&mock).expect("the mock's own form");
        assert_eq!(Ok(rows(&fast)), serde(&mock).map_err(|e| e.to_string()));
        assert_eq!(
            compact_purchases(r#"{"purchases":[]}"#).map(|p| p.len()),
            Some(0)
        );

        let row = r#"{"mobile":"+919876543210","date":"2026-03-01","amount":12.5,"store":"DMart","order_id":"00ff"}"#;
        let one = |row: &str| format!(r#"{{"purchases":[{row}]}}"#);
        let odd_amounts = [
            "1",
            "-0",
            "-0.0",
            "1e21",
            "1E-7",
            "123456789012345678901234",
            "0.30000000000000004",
        ];
        for amount in odd_amounts {
            let text = one(&row.replace("12.5", amount));
            let fast = compact_purchases(&text).map(|p| rows(&p));
            assert_eq!(fast, serde(&text).ok(), "{text}");
        }
        let aside = [
            one(&row.replace(r#""date":"2026-03-01","#, "")),
            one(&row.replace(r#","order_id":"00ff""#, "")),
            one(&row.replace(r#""00ff""#, "255")),
            one(&row.replace(r#""00ff""#, "null")),
            one(&row.replace("DMart", r#"D\"Mart"#)),
            one(&row.replace("+91", r#"\u002b91"#)),
            one(&row.replace("DMart", "D\tMart")),
            one(&row.replace(",", ", ")),
            one(&row.replace("}", r#","extra":1}"#)),
            one(&row.replace("12.5", "1e400")),
            one(&row.replace("12.5", "01")),
            one(&row.replace("12.5", "1.")),
            one(&row.replace("12.5", "--1")),
            format!(r#"{{"purchases":[{row},{row}],"next":null}}"#),
            format!(r#"{{"purchases":[{row}]}} "#),
            format!(r#"{{"purchases":[{row}]}}x"#),
            format!(r#"{{"purchases":[{row},]}}"#),
            format!(r#"{{"purchases":[{row}]"#),
            format!(r#"{{"purchases":[{row}]}}{{"purchases":[]}}"#),
        ];
        for text in aside {
            assert!(compact_purchases(&text).is_none(), "{text}");
        }
        // Where serde itself reads these, parse_batch still gets the rows.
        let customers = people(&["919876543210"]);
        let o = opts();
        let shared = shared(&customers, &o);
        let body = one(&row.replace(r#""00ff""#, "255").replace(",", ", "));
        let out = parse_batch(&shared, body.as_bytes()).expect("serde reads it");
        assert_eq!(out.purchases.len(), 1);
        assert_eq!(out.purchases[0].order(), Some(order_key("255")));
    }

    /// The one UTF-8 check of a body must not change what is accepted: a
    /// stray byte in an ignored field passed before (serde_json does not
    /// look inside skipped strings), and one in a mobile is a JSON error.
    #[test]
    fn bodies_that_are_not_utf8_are_judged_as_before() {
        let customers = people(&["919876543210"]);
        let o = opts();
        let shared = shared(&customers, &o);
        let ignored = b"{\"purchases\": [{\"mobile\": \"+919876543210\", \"note\": \"\xff\"}]}";
        let out = parse_batch(&shared, ignored).expect("a skipped string is not read");
        assert_eq!(out.purchases.len(), 1);
        let in_mobile = b"{\"purchases\": [{\"mobile\": \"+91987654321\xff\"}]}";
        let Err(err) = parse_batch(&shared, in_mobile) else {
            panic!("a mobile that is not UTF-8 parsed");
        };
        assert!(matches!(err, RequestError::Json(_)), "{err:?}");
        assert!(
            crate::error::chain(&err).contains("invalid unicode"),
            "{}",
            crate::error::chain(&err)
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let o = opts();
        let waits: Vec<Duration> = (1..=6).map(|a| backoff(&o, 0, a, None)).collect();
        for (a, w) in waits.iter().enumerate() {
            let cap = Duration::from_millis(100 * (1 << (a + 1))).min(Duration::from_millis(1000));
            assert!(*w <= cap && *w >= cap / 2, "attempt {}: {w:?}", a + 1);
        }
        assert!(backoff(&o, 0, 1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn retry_classification() {
        let s = |status| RequestError::Status {
            status,
            body: String::new(),
        };
        assert!(s(503).retryable() && s(500).retryable() && s(429).retryable());
        assert!(!s(400).retryable() && !s(404).retryable() && !s(413).retryable());
    }

    #[test]
    fn unreachable_server_names_the_batch() {
        let customers = People::from(vec![crate::model::Customer {
            mobile: "919876543210".into(),
            name: None,
            age: None,
            income: None,
            gender: None,
        }]);
        let err = fetch(&customers, &opts()).expect_err("nothing listens on port 1");
        let msg = crate::error::chain(&err);
        assert!(
            msg.starts_with("batch 0 (1 mobiles from `+919876543210`) failed after 3 attempts"),
            "{msg}"
        );
    }

    #[test]
    fn bad_url_is_a_usage_error() {
        let mut o = opts();
        o.api_url = "localhost:8000".into();
        assert!(matches!(
            fetch(&People::default(), &o),
            Err(Error::ApiUrl { .. })
        ));
    }
}
