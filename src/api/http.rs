//! The HTTP/1 transport of the purchase API: accepting, bounding and
//! closing connections, reading request bodies, writing answers.
//!
//! Built on hyper's HTTP/1 server over tokio, so a connection costs a task,
//! not a thread, and every wait has a deadline (see [`Limits`]). It owns no
//! routing or data: a request's head and body go to `routes.rs`, and fault
//! injection comes from `faults.rs`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{debug, error, warn};

use super::Limits;
use super::faults::Faults;
use super::routes::{self, Ctx, Reply, Route};

/// What an HTTP/2 client sends first. An HTTP/1 server that waits for it to
/// become a request head holds the client until a timeout; we answer 505.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0\r\n";

/// How long a refused HTTP/2 client gets to read the 505 before we close.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// Bytes of a refused body we read and discard so the client, which may
/// still be sending it, can read the 413 instead of a reset.
const DRAIN_LIMIT: u64 = 64 << 20;

/// State shared by the accept loop and every connection.
pub(super) struct Shared {
    ctx: Ctx,
    faults: Faults,
    limits: Limits,
    /// One permit per connection being served.
    connections: Arc<Semaphore>,
    /// Requests being handled, body read included.
    in_flight: AtomicUsize,
    /// Becomes true when the server stops.
    stop: watch::Receiver<bool>,
}

impl Shared {
    pub(super) fn new(
        ctx: Ctx,
        faults: Faults,
        limits: Limits,
        stop: watch::Receiver<bool>,
    ) -> Shared {
        Shared {
            ctx,
            faults,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            in_flight: AtomicUsize::new(0),
            stop,
        }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// Accept connections until `stop`, then wait until every connection has
/// closed: idle ones at once, busy ones after their answer.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stopping = shared.stop.clone();
    let max = u32::try_from(shared.limits.max_connections.max(1)).unwrap_or(u32::MAX);
    loop {
        // The permit is taken before `accept`, so over the limit new clients
        // wait in the kernel's backlog instead of costing us anything.
        let permit = tokio::select! {
            permit = Arc::clone(&shared.connections).acquire_owned() => permit,
            _ = stopped(&mut stopping) => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stopping) => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(stream, Arc::clone(&shared), permit));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause rather than
                // spin, and keep serving the connections already open.
                warn!(message = "Purchase API accept failed.", error = %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    // Every connection holds a permit until it closes.
    let _all = shared.connections.acquire_many(max).await;
}

/// Resolves once the server is stopping (or its handle is gone). Drops the
/// watch guard inside, so callers can hold the result across an await.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serve one connection: refuse HTTP/2, then HTTP/1.1 with keep-alive until
/// the client leaves, a deadline passes or the server stops.
async fn connection(mut stream: TcpStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    let mut stop = shared.stop.clone();
    // Small answers go out at once rather than waiting on Nagle.
    let _ = stream.set_nodelay(true);
    let limits = &shared.limits;
    let sniffed = tokio::select! {
        sniffed = tokio::time::timeout(limits.header_timeout, sniff(&mut stream)) => sniffed,
        _ = stopped(&mut stop) => return,
    };
    let head = match sniffed {
        Ok(Ok(Sniffed::Http1(head))) => head,
        Ok(Ok(Sniffed::Http2)) => return refuse_http2(stream).await,
        // Closed, failed or silent before sending anything: nothing to answer.
        Ok(Ok(Sniffed::Closed) | Err(_)) | Err(_) => return,
    };
    let service = {
        let shared = Arc::clone(&shared);
        service_fn(move |request| handle(Arc::clone(&shared), request))
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(ClientStream::new(head, stream, limits.send_timeout)),
            service,
        );
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        _ = stopped(&mut stop) => {
            // Closes the connection if idle, or after the answer in flight.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = served {
        // Timeouts, resets and garbage from clients are theirs to handle.
        debug!(message = "Connection ended with an error.", error = %e);
    }
}

/// What a connection's first bytes say it speaks.
enum Sniffed {
    /// The bytes read so far, to be replayed to the HTTP/1 parser.
    Http1(Vec<u8>),
    Http2,
    Closed,
}

/// Read until the first bytes either leave the HTTP/2 preface or complete
/// its first line. An HTTP/1 request differs from it by its second byte at
/// the latest, so this usually takes the one read hyper would have made.
async fn sniff(stream: &mut TcpStream) -> std::io::Result<Sniffed> {
    let mut head = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(Sniffed::Closed);
        }
        let n = head.len().min(H2_PREFACE_START.len());
        if head[..n] != H2_PREFACE_START[..n] {
            return Ok(Sniffed::Http1(head));
        }
        if n == H2_PREFACE_START.len() {
            return Ok(Sniffed::Http2);
        }
        if head.capacity() == head.len() {
            head.reserve(4096);
        }
    }
}

/// Answer an HTTP/2 preface with a 505 and close. The client may not parse
/// HTTP/1, but it learns at once instead of after a timeout.
async fn refuse_http2(mut stream: TcpStream) {
    let body = Reply::error(505, "HTTP/2 is not supported; use HTTP/1.1").body;
    let mut answer = format!(
        "HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes too: closing with
        // unread bytes would reset the connection and could discard the
        // 505 before the client reads it.
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 1 << 16 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

/// The accepted socket as hyper sees it: first the bytes `sniff` already
/// read, then the socket; and a send deadline, since hyper has none: a
/// client that stops reading an answer would otherwise hold its connection,
/// and a graceful shutdown, for ever.
struct ClientStream {
    head: Vec<u8>,
    at: usize,
    stream: TcpStream,
    send_timeout: Duration,
    /// Running while a write waits for the client to read.
    send_stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ClientStream {
    fn new(head: Vec<u8>, stream: TcpStream, send_timeout: Duration) -> ClientStream {
        ClientStream {
            head,
            at: 0,
            stream,
            send_timeout,
            send_stall: None,
        }
    }

    /// Pass a write's result through, failing it once the client has read
    /// nothing for `send_timeout`.
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.send_stall = None;
            return polled;
        }
        let timeout = self.send_timeout;
        let stall = self
            .send_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client stopped reading the answer",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.at);
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                // The replayed head is not needed twice; free it.
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.deadline(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.deadline(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.deadline(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.deadline(cx, polled)
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

/// An answer, and whether the connection must close after it (the request
/// body was not read to its end, so the next request cannot be found).
struct Answer {
    reply: Reply,
    close: bool,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer {
            reply,
            close: false,
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _counted = InFlight::enter(&shared.in_flight);
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let answer = match routes::route(&parts.method, parts.uri.path()) {
        Err(reply) => reply.into(),
        Ok(Route::Health) => routes::health().into(),
        Ok(Route::OpenApi) => Reply::json(200, shared.ctx.openapi.clone()).into(),
        Ok(Route::Purchases) => purchases(&shared, body).await,
    };
    debug!(
        message = "Answered request.",
        method = %parts.method,
        path = parts.uri.path(),
        status = answer.reply.status,
        bytes = answer.reply.body.len(),
        elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    Ok(response(answer))
}

/// `POST /purchase-history`: body within its limits, faults, then the answer
/// computed on the blocking pool.
async fn purchases(shared: &Arc<Shared>, body: Incoming) -> Answer {
    let bytes = match read_body(shared, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    if let Some(latency) = shared.faults.latency() {
        tokio::time::sleep(latency).await;
    }
    if shared.faults.next_fails() {
        return Reply::error(503, "injected failure").into();
    }
    let shared = Arc::clone(shared);
    match tokio::task::spawn_blocking(move || routes::purchase_history(&shared.ctx, &bytes)).await {
        Ok(reply) => reply.into(),
        // A bug in a handler must not take the server down with it.
        Err(e) => {
            error!(message = "Purchase API handler panicked.", error = %e);
            Reply::error(500, "internal error").into()
        }
    }
}

/// Read the whole body within the size limit and the body deadline.
async fn read_body(shared: &Shared, mut body: Incoming) -> Result<Bytes, Answer> {
    let limits = &shared.limits;
    let max = limits.max_body_bytes;
    let too_big = |body: Incoming| {
        drain(body, limits.body_timeout);
        Answer {
            reply: Reply::error(413, &format!("request body over the limit of {max} bytes")),
            close: true,
        }
    };
    // A declared length over the limit is refused before reading a byte.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(too_big(body));
    }
    let capacity = declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    let deadline = tokio::time::Instant::now() + limits.body_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return Ok(Bytes::from(bytes)),
            Ok(Some(Err(e))) => {
                return Err(Answer {
                    reply: Reply::error(400, &format!("cannot read request body: {e}")),
                    close: true,
                });
            }
            Err(_) => {
                let secs = limits.body_timeout.as_secs_f64();
                return Err(Answer {
                    reply: Reply::error(408, &format!("request body not received within {secs} s")),
                    close: true,
                });
            }
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max {
                return Err(too_big(body));
            }
            bytes.extend_from_slice(&data);
        }
    }
}

/// Read and discard the rest of a refused body for a while, on its own task,
/// so a client that writes the whole body before reading gets our 413
/// rather than a reset. Shutdown does not wait for it: hyper's graceful
/// shutdown closes at once a connection whose last answer is out.
fn drain(mut body: Incoming, within: Duration) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(within, async {
            let mut read = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > DRAIN_LIMIT {
                    break;
                }
            }
        })
        .await;
    });
}

fn response(answer: Answer) -> Response<Full<Bytes>> {
    let Answer { reply, close } = answer;
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(allow) = reply.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
