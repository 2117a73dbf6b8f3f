//! A purchase API that misbehaves on purpose, written on raw TCP so that it
//! can send what no HTTP library would: redirects on a POST, truncated or
//! HTML 200 bodies, `{"purchases": null}`, or no answer at all. It shares no
//! code with `segpipe::api` or the strict server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// What the server does with the n-th POST (1-based).
#[derive(Clone, Debug)]
pub enum Answer {
    /// Raw status line, headers and body, exactly as given.
    Raw(u16, Vec<(String, String)>, String),
    /// The contract's answer: two purchases per requested mobile.
    Good,
    /// Read the request, then never answer (until the test ends).
    Silent,
}

pub struct Hostile {
    pub addr: SocketAddr,
    pub posts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    /// Serve `script[n-1]` to the n-th POST; the last entry repeats.
    pub fn start(script: Vec<Answer>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile upstream");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let posts = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&posts), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(kept) = serve(stream, &script, &p) {
                            held.push(kept);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile {
            addr,
            posts,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answer one connection's request; a silent answer keeps the socket open.
fn serve(stream: TcpStream, script: &[Answer], posts: &AtomicU64) -> Option<TcpStream> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    if !request_line.starts_with("POST ") {
        write(&stream, 404, &[], r#"{"error":"not found"}"#);
        return None;
    }
    let n = posts.fetch_add(1, Ordering::SeqCst) as usize;
    let answer = script
        .get(n)
        .or(script.last())
        .cloned()
        .unwrap_or(Answer::Good);
    match answer {
        Answer::Raw(status, headers, text) => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            write(&stream, status, &headers, &text);
            None
        }
        Answer::Good => {
            let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut purchases = Vec::new();
            for m in parsed["mobiles"].as_array().into_iter().flatten() {
                for (i, amount) in [(1, 10.5), (2, 20.25)] {
                    purchases.push(json!({
                        "mobile": m, "date": format!("2026-0{i}-01"), "amount": amount,
                        "store": "Corner", "order_id": format!("{}-{i}", m.as_str().unwrap_or("")),
                    }));
                }
            }
            write(
                &stream,
                200,
                &[],
                &json!({ "purchases": purchases }).to_string(),
            );
            None
        }
        Answer::Silent => Some(stream),
    }
}

fn write(mut stream: &TcpStream, status: u16, headers: &[(&str, &str)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// A 200 whose body is `text`.
pub fn ok_body(text: &str) -> Answer {
    Answer::Raw(200, Vec::new(), text.to_owned())
}
