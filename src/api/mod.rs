//! The mock purchase-history API (DESIGN §3): server lifecycle.
//!
//! Owns the options, binding, the runtime the server runs on, graceful
//! shutdown and `serve`'s signal handling. How connections are taken and
//! bounded is in `http.rs`; what a request gets back is decided in
//! `routes.rs` (HTTP shape) and `purchases.rs` (the data); `faults.rs` makes
//! it flaky on purpose and `openapi.rs` describes it.

mod faults;
mod http;
mod openapi;
mod purchases;
mod routes;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::NaiveDate;
use tracing::{debug, error, info};

pub use purchases::{ApiPurchase, purchases_for};

use faults::Faults;
use http::Shared;
use routes::Ctx;

/// Rates of the dirt the API adds to clean planned purchases.
#[derive(Clone, Debug, PartialEq)]
pub struct Dirt {
    pub null_date_rate: f64,
    pub dmy_date_rate: f64,
    pub null_amount_rate: f64,
    pub null_store_rate: f64,
    pub duplicate_purchase_rate: f64,
}

impl Default for Dirt {
    /// DESIGN §3's defaults; config, tests and benches all start from these.
    fn default() -> Self {
        Dirt {
            null_date_rate: 0.10,
            dmy_date_rate: 0.10,
            null_amount_rate: 0.05,
            null_store_rate: 0.05,
            duplicate_purchase_rate: 0.02,
        }
    }
}

/// How much any one client may take from the server, so that no client,
/// however slow or malformed, can stall it for the others (DESIGN §3).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Longest wait for a request's head, counted from when the connection
    /// opens or goes idle after an answer; so it is also the idle keep-alive
    /// timeout (hyper runs one timer for both). A connection's first head
    /// may take up to twice this: once to tell HTTP/1 from HTTP/2.
    pub header_timeout: Duration,
    /// Longest time to receive a request body once its head is in; then 408.
    pub body_timeout: Duration,
    /// Longest a client may leave an answer unread while it is being sent;
    /// then the connection is dropped.
    pub send_timeout: Duration,
    /// Largest request body read; more is refused with 413.
    pub max_body_bytes: usize,
    /// Connections served at once; more wait in the listen backlog until one
    /// closes, so memory and tasks stay bounded whatever clients do.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // Clients of this API send a whole batch in one write; 10 s is
            // far beyond any loopback or LAN upload of the 32 MiB limit.
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            // Ten thousand mobiles take well under 1 MiB; the cap only stops
            // a client from making us buffer without bound.
            max_body_bytes: 32 << 20,
            max_connections: 1024,
        }
    }
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
    /// Runtime worker threads; 0 means one per CPU (at least 2).
    pub threads: usize,
    pub dirt: Dirt,
    pub limits: Limits,
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

/// A running server. Dropping it shuts it down as [`Server::shutdown`] does.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Tells the accept loop and every connection to wind down.
    stop: tokio::sync::watch::Sender<bool>,
    /// Owns the runtime: runs the accept loop, then waits for the
    /// connections, then drops the runtime. A thread of its own, so the
    /// server can be started and stopped from any thread, async or not.
    main: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `opts.bind` and start serving; returns once the socket accepts
    /// connections, so callers never need to wait for readiness.
    pub fn start(opts: &ApiOpts) -> Result<Server, Error> {
        let bind_error = |message: String| Error::Bind {
            addr: opts.bind.clone(),
            message,
        };
        if opts.bind.parse::<std::net::SocketAddr>().is_err()
            && opts
                .bind
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(bind_error(
                "expected HOST:PORT, e.g. 127.0.0.1:8000 (port 0 picks a free one)".to_owned(),
            ));
        }
        let listener = std::net::TcpListener::bind(opts.bind.as_str())
            .map_err(|e| bind_error(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| bind_error(e.to_string()))?;
        listener.set_nonblocking(true).map_err(Error::Io)?;
        let threads = match opts.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            n => n,
        };
        // Answers are computed on the blocking pool, at most `threads` at a
        // time; the workers only move bytes, so a burst of big requests
        // never delays `/health` and the thread count stays fixed.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads)
            .thread_name("api-worker")
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Io)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(Error::Io)?
        };
        let openapi = serde_json::to_vec_pretty(&openapi::document(
            opts.max_mobiles,
            opts.limits.max_body_bytes,
        ))
        .map_err(|e| Error::Io(e.into()))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared::new(
            Ctx {
                seed: opts.seed,
                as_of: opts.as_of,
                dirt: opts.dirt.clone(),
                max_mobiles: opts.max_mobiles,
                openapi,
            },
            Faults::new(opts.seed, opts.fail_rate, opts.latency_ms),
            opts.limits.clone(),
            stopped,
        ));
        let main = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("api-main".to_owned())
                .spawn(move || {
                    runtime.block_on(http::serve(listener, shared));
                    // Connections are all closed; what is left (a drain of
                    // a refused body) is not worth waiting for.
                    runtime.shutdown_timeout(Duration::from_millis(100));
                })
                .map_err(Error::Io)?
        };
        debug!(message = "Started purchase API.", %addr, threads);
        Ok(Server {
            addr,
            shared,
            stop,
            main: Some(main),
        })
    }

    /// The address actually bound (the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests being answered right now (body read included); lets tests
    /// and callers observe a request in flight without sleeping.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Stop taking connections, close idle ones, let in-flight requests
    /// finish, then stop the runtime.
    pub fn shutdown(self) {
        // The work is in `Drop`, so a server dropped by a panicking test or
        // an early `?` stops the same way.
        drop(self);
    }

    fn stop(&mut self) {
        // Fails only when every receiver is gone, i.e. the server is
        // already down.
        let _ = self.stop.send(true);
        if let Some(main) = self.main.take()
            && main.join().is_err()
        {
            error!(message = "Purchase API runtime panicked.");
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
