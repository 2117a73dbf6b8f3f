//! The mock purchase-history API (DESIGN §3): server lifecycle.
//!
//! Owns binding, the worker pool, graceful shutdown and `serve`'s signal
//! handling. What a request gets back is decided in `routes.rs` (HTTP shape)
//! and `purchases.rs` (the data); `faults.rs` makes it flaky on purpose and
//! `openapi.rs` describes it.

mod faults;
mod openapi;
mod purchases;
mod routes;

use std::io::Write;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::NaiveDate;
use tracing::{debug, error, info, warn};

pub use purchases::{ApiPurchase, purchases_for};

use faults::Faults;
use routes::{Ctx, Reply, Route};

/// Rates of the dirt the API adds to clean planned purchases.
#[derive(Clone, Debug, PartialEq)]
pub struct Dirt {
    pub null_date_rate: f64,
    pub dmy_date_rate: f64,
    pub null_amount_rate: f64,
    pub null_store_rate: f64,
    pub duplicate_purchase_rate: f64,
}

/// Everything the server needs; built from `Settings`.
#[derive(Clone, Debug)]
pub struct ApiOpts {
    pub bind: String,
    pub seed: u64,
    pub as_of: NaiveDate,
    pub max_mobiles: usize,
    pub fail_rate: f64,
    pub latency_ms: u64,
    pub threads: usize,
    pub dirt: Dirt,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on `{addr}`: {message}")]
    Bind { addr: String, message: String },
    #[error("cannot install the Ctrl-C/SIGTERM handler")]
    Signal(#[source] ctrlc::Error),
    #[error("server i/o")]
    Io(#[source] std::io::Error),
}

/// State shared by the worker threads.
struct Shared {
    http: tiny_http::Server,
    ctx: Ctx,
    faults: Faults,
    /// Set before the workers are unblocked, so a worker woken by `recv`
    /// failing knows it is being stopped rather than seeing an accept error.
    stopping: AtomicBool,
    /// Requests taken by a worker and not yet answered.
    in_flight: AtomicUsize,
    content_type: tiny_http::Header,
}

/// A running server. Dropping it shuts it down as [`Server::shutdown`] does.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Bind `opts.bind` and start the worker pool; returns once the socket
    /// accepts connections, so callers never need to wait for readiness.
    pub fn start(opts: &ApiOpts) -> Result<Server, Error> {
        let http = tiny_http::Server::http(opts.bind.as_str()).map_err(|e| Error::Bind {
            addr: opts.bind.clone(),
            message: e.to_string(),
        })?;
        let addr = http.server_addr().to_ip().ok_or_else(|| Error::Bind {
            addr: opts.bind.clone(),
            message: "not an IP socket address".to_owned(),
        })?;
        let openapi =
            serde_json::to_vec_pretty(&openapi::document(opts.max_mobiles, routes::MAX_BODY_BYTES))
                .map_err(|e| Error::Io(e.into()))?;
        let shared = Arc::new(Shared {
            http,
            ctx: Ctx {
                seed: opts.seed,
                as_of: opts.as_of,
                dirt: opts.dirt.clone(),
                max_mobiles: opts.max_mobiles,
                openapi,
            },
            faults: Faults::new(opts.seed, opts.fail_rate, opts.latency_ms),
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            content_type: tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"application/json"[..],
            )
            .expect("a static ASCII header is valid"),
        });
        let threads = match opts.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            n => n,
        };
        let mut server = Server {
            addr,
            shared,
            workers: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let shared = Arc::clone(&server.shared);
            // On failure `server` is dropped here, which stops the workers
            // already started.
            let handle = std::thread::Builder::new()
                .name(format!("api-worker-{i}"))
                .spawn(move || work(&shared))
                .map_err(Error::Io)?;
            server.workers.push(handle);
        }
        debug!(message = "Started purchase API.", %addr, threads);
        Ok(server)
    }

    /// The address actually bound (the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests being answered right now; lets tests and callers observe a
    /// request in flight without sleeping.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Stop taking requests, let in-flight ones finish, join the workers.
    pub fn shutdown(self) {
        // The work is in `Drop`, so a server dropped by a panicking test or
        // an early `?` stops the same way.
        drop(self);
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Each `unblock` wakes one blocked `recv`; queued requests ahead of
        // the markers are still answered, since the queue is FIFO.
        for _ in &self.workers {
            self.shared.http.unblock();
        }
        for handle in self.workers.drain(..) {
            if handle.join().is_err() {
                error!(message = "Purchase API worker panicked.");
            }
        }
        // Requests that arrived on kept-alive connections after the markers
        // would otherwise wait forever; tell them to retry elsewhere.
        while let Ok(Some(rq)) = self.shared.http.try_recv() {
            respond(&self.shared, rq, Reply::error(503, "server shutting down"));
        }
        debug!(message = "Stopped purchase API.", addr = %self.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serve until Ctrl-C or SIGTERM, then shut down gracefully.
pub fn serve(opts: &ApiOpts) -> Result<(), Error> {
    // The handler goes in before the port is announced, so a script that
    // signals as soon as it reads the line is not lost.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        // A second signal while shutting down finds the receiver gone; that
        // is fine, shutdown is already under way.
        let _ = tx.send(());
    })
    .map_err(Error::Signal)?;
    let server = Server::start(opts)?;
    let url = server.url();
    info!(message = "Serving purchase API.", url = %url);
    // Scripts and tests read the port from this line, so it must reach a
    // pipe now, not when the buffer fills.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {url}")
        .and_then(|()| stdout.flush())
        .map_err(Error::Io)?;
    drop(stdout);
    // `recv` fails only if the handler's sender is gone, which also means
    // no signal can arrive any more: shut down either way.
    let _ = rx.recv();
    info!(message = "Shutting down purchase API.");
    server.shutdown();
    info!(message = "Purchase API stopped.");
    Ok(())
}

/// One worker: answer requests until told to stop.
fn work(shared: &Shared) {
    loop {
        match shared.http.recv() {
            Ok(rq) => {
                let _counted = InFlight::enter(&shared.in_flight);
                // A bug in a handler must not shrink the pool; tiny_http
                // answers 500 when an unanswered request is dropped.
                if catch_unwind(AssertUnwindSafe(|| handle(shared, rq))).is_err() {
                    error!(message = "Purchase API handler panicked.");
                }
            }
            Err(_) if shared.stopping.load(Ordering::Acquire) => return,
            // tiny_http's accept loop failed and ended; keep answering the
            // connections already open until shutdown.
            Err(e) => warn!(message = "Purchase API accept failed.", error = %e),
        }
    }
}

/// Counts a request as in flight until dropped, even on a panic.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn handle(shared: &Shared, mut rq: tiny_http::Request) {
    let started = Instant::now();
    let route = routes::route(rq.method(), rq.url());
    let reply = match route {
        Err(reply) => reply,
        Ok(Route::Health) => routes::health(),
        Ok(Route::OpenApi) => Reply::json(200, shared.ctx.openapi.clone()),
        Ok(Route::Purchases) => {
            shared.faults.delay();
            if shared.faults.next_fails() {
                Reply::error(503, "injected failure")
            } else {
                let len = rq.body_length();
                routes::purchase_history(&shared.ctx, len, rq.as_reader())
            }
        }
    };
    debug!(
        message = "Answered request.",
        method = %rq.method(),
        url = rq.url(),
        status = reply.status,
        bytes = reply.body.len(),
        elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    respond(shared, rq, reply);
}

fn respond(shared: &Shared, rq: tiny_http::Request, reply: Reply) {
    let mut response = tiny_http::Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(shared.content_type.clone());
    if let Some(allow) = reply.allow {
        response.add_header(
            tiny_http::Header::from_bytes(&b"Allow"[..], allow.as_bytes())
                .expect("a static ASCII header is valid"),
        );
    }
    // The client hanging up mid-answer is its business, not a server error.
    if let Err(e) = rq.respond(response) {
        debug!(message = "Could not send answer.", error = %e);
    }
}
