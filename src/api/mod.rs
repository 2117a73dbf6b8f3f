//! The mock purchase-history API (DESIGN §3): server lifecycle.
//! STUB: being built in the api worktree.

use std::net::SocketAddr;

use chrono::NaiveDate;

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

/// A running server; dropping it without `shutdown` leaves threads running.
pub struct Server {
    addr: SocketAddr,
}

impl Server {
    pub fn start(opts: &ApiOpts) -> Result<Server, Error> {
        Err(Error::Bind {
            addr: opts.bind.clone(),
            message: "not implemented yet".into(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn shutdown(self) {}
}

/// Serve until Ctrl-C or SIGTERM.
pub fn serve(opts: &ApiOpts) -> Result<(), Error> {
    Server::start(opts).map(|_| ())
}
