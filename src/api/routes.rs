//! Routing, request parsing and the JSON answers of the purchase API.
//!
//! Owns the mapping from (method, path, body) to (status, JSON body, `Allow`)
//! as pure functions over a [`Ctx`], so every status code can be unit-tested
//! without a socket. It does not own sockets, body reading, limits or fault
//! injection; `http.rs` wraps these functions in the server.

use std::collections::HashSet;

use chrono::NaiveDate;
use hyper::Method;
use serde::Deserialize;

use super::Dirt;
use super::purchases::{self, PurchasesBody, Row};
use crate::mobile;

/// What the handlers need to answer; immutable while serving.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub seed: u64,
    pub as_of: NaiveDate,
    pub dirt: Dirt,
    pub max_mobiles: usize,
    /// The serialized OpenAPI document, built once.
    pub openapi: Vec<u8>,
}

/// The known endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Purchases,
    Health,
    OpenApi,
}

/// An answer: status, JSON body, and the `Allow` header for 405s.
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body,
            allow: None,
        }
    }

    /// `{"error": message}`; serde_json escapes whatever the message quotes.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
            .unwrap_or_else(|_| br#"{"error":"internal error"}"#.to_vec());
        Reply::json(status, body)
    }
}

/// Match a request's method and path (no query string) to a route, or
/// answer 404/405 straight away.
pub(crate) fn route(method: &Method, path: &str) -> Result<Route, Reply> {
    let (route, allow) = match path {
        "/purchase-history" => (Route::Purchases, "POST"),
        "/health" => (Route::Health, "GET, HEAD"),
        "/openapi.json" => (Route::OpenApi, "GET, HEAD"),
        _ => return Err(Reply::error(404, &format!("no such endpoint `{path}`"))),
    };
    let allowed = match route {
        Route::Purchases => *method == Method::POST,
        Route::Health | Route::OpenApi => *method == Method::GET || *method == Method::HEAD,
    };
    if allowed {
        Ok(route)
    } else {
        let mut reply = Reply::error(
            405,
            &format!("method {method} not allowed on `{path}`, use {allow}"),
        );
        reply.allow = Some(allow);
        Err(reply)
    }
}

/// `GET /health`.
pub(crate) fn health() -> Reply {
    Reply::json(200, br#"{"status":"ok"}"#.to_vec())
}

/// The request body of `POST /purchase-history`; unknown fields are ignored
/// so clients may send more than we read.
#[derive(Deserialize)]
struct HistoryRequest {
    mobiles: Vec<String>,
}

/// `POST /purchase-history`: validate the body (read whole, within the size
/// limit, by `http.rs`) and answer.
pub(crate) fn purchase_history(ctx: &Ctx, body: &[u8]) -> Reply {
    let request: HistoryRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    if request.mobiles.len() > ctx.max_mobiles {
        return Reply::error(
            413,
            &format!(
                "too many mobiles: {} in one request, the limit is {}; split the batch",
                request.mobiles.len(),
                ctx.max_mobiles
            ),
        );
    }
    answer(ctx, &request.mobiles)
}

/// Broken JSON is the client's syntax error (400); JSON that parses but is not
/// `{"mobiles": [string, ...]}` is a semantic one (422), as FastAPI answers.
fn parse_error(e: &serde_json::Error) -> Reply {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => Reply::error(
            422,
            &format!(
                r#"invalid request body: {e}; expected {{"mobiles": ["+919876543210", ...]}}"#
            ),
        ),
        Category::Syntax | Category::Eof | Category::Io => {
            Reply::error(400, &format!("malformed JSON: {e}"))
        }
    }
}

/// Build the 200 body for the (already validated) mobiles.
fn answer(ctx: &Ctx, mobiles: &[String]) -> Reply {
    // By `mobile::key` (one per normalized number) with foldhash: no
    // String kept and no SipHash per mobile.
    let mut seen: HashSet<u64, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(mobiles.len(), Default::default());
    let mut echoes: Vec<&str> = Vec::with_capacity(mobiles.len());
    let mut rows: Vec<(u32, Row)> = Vec::with_capacity(mobiles.len() * 16);
    let mut scratch: Vec<Row> = Vec::with_capacity(64);
    for sent in mobiles {
        let Ok(normalized) = mobile::normalize(sent) else {
            continue;
        };
        purchases::append_rows(ctx.seed, ctx.as_of, &ctx.dirt, &normalized, &mut scratch);
        // A number repeated in one request (maybe spelled differently) is
        // answered once, under the first spelling, so clients that join on
        // the echoed mobile do not double its purchases.
        if !seen.insert(mobile::key(&normalized)) {
            scratch.clear();
            continue;
        }
        // At most `max_mobiles` distinct echoes, which the 413 check keeps
        // far below u32::MAX.
        let index = u32::try_from(echoes.len()).unwrap_or(u32::MAX);
        echoes.push(sent);
        rows.extend(scratch.drain(..).map(|r| (index, r)));
    }
    let body = PurchasesBody {
        mobiles: &echoes,
        rows: &rows,
    };
    // ~90 bytes a row; one allocation for the whole answer in the usual case.
    let mut out = Vec::with_capacity(rows.len() * 96 + 16);
    match body.write_json(&mut out) {
        Ok(()) => Reply::json(200, out),
        Err(e) => Reply::error(500, &format!("cannot serialize purchases: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::purchases::{ApiPurchase, purchases_for};

    fn ctx() -> Ctx {
        Ctx {
            seed: 42,
            as_of: NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date"),
            dirt: Dirt::default(),
            max_mobiles: 5,
            openapi: b"{}".to_vec(),
        }
    }

    fn post(body: &str) -> Reply {
        purchase_history(&ctx(), body.as_bytes())
    }

    fn error_of(r: &Reply) -> String {
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("error body is JSON");
        v["error"].as_str().expect("error is a string").to_owned()
    }

    #[test]
    fn routes_known_paths_and_refuses_the_rest() {
        assert_eq!(
            route(&Method::POST, "/purchase-history"),
            Ok(Route::Purchases)
        );
        assert_eq!(route(&Method::GET, "/health"), Ok(Route::Health));
        assert_eq!(route(&Method::HEAD, "/health"), Ok(Route::Health));
        assert_eq!(route(&Method::GET, "/openapi.json"), Ok(Route::OpenApi));

        let r = route(&Method::GET, "/nope").expect_err("404");
        assert_eq!((r.status, r.allow), (404, None));
        assert!(error_of(&r).contains("/nope"));

        let r = route(&Method::GET, "/purchase-history").expect_err("405");
        assert_eq!((r.status, r.allow), (405, Some("POST")));
        let r = route(&Method::DELETE, "/health").expect_err("405");
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
        assert!(error_of(&r).contains("DELETE"));
    }

    #[test]
    fn classifies_bad_bodies() {
        let cases = [
            ("", 400),
            ("{", 400),
            ("not json", 400),
            (r#"{"mobiles": ["a",]}"#, 400),
            ("{}", 422),
            ("[]", 422),
            ("null", 422),
            (r#"{"mobiles": "919876543210"}"#, 422),
            (r#"{"mobiles": [919876543210]}"#, 422),
            (r#"{"mobiles": ["919876543210", null]}"#, 422),
            (r#"{"mobile": []}"#, 422),
            (r#"{"mobiles": ["1","2","3","4","5","6"]}"#, 413),
        ];
        for (body, want) in cases {
            let r = post(body);
            assert_eq!(r.status, want, "body {body:?}: {}", error_of(&r));
            assert!(!error_of(&r).is_empty());
        }
        assert!(
            error_of(&post(r#"{"mobiles": ["1","2","3","4","5","6"]}"#)).contains("limit is 5")
        );
        assert!(error_of(&post("{}")).contains("mobiles"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            r#"{"mobiles": []}"#,
            r#"{"mobiles": [""], "extra": {"deep": [1, 2]}}"#,
            r#"{"mobiles": ["\u0000", "+", "\ud83d\ude00", "9999999999999999999999"]}"#,
            "\u{feff}{}",
            r#"{"mobiles": ["919876543210"], "mobiles": []}"#,
        ];
        for body in odd {
            let r = post(body);
            assert!([200, 400, 422].contains(&r.status), "{body}: {}", r.status);
        }
        let r = purchase_history(&ctx(), &[0xff, 0xfe, 0x00]);
        assert_eq!(r.status, 400);
    }

    #[test]
    fn answers_each_number_once_under_its_first_spelling() {
        let r = post(r#"{"mobiles": ["+91 98765 43210", "919876543210", "bad", "+919876500001"]}"#);
        assert_eq!(r.status, 200);
        #[derive(Deserialize)]
        struct Body {
            purchases: Vec<ApiPurchase>,
        }
        let got: Body = serde_json::from_slice(&r.body).expect("200 body");
        let c = ctx();
        let mut want = purchases_for(c.seed, c.as_of, &c.dirt, "+91 98765 43210");
        want.extend(purchases_for(c.seed, c.as_of, &c.dirt, "+919876500001"));
        assert!(!want.is_empty());
        assert_eq!(got.purchases, want);
    }

    #[test]
    fn health_is_ok() {
        assert_eq!(health().body, br#"{"status":"ok"}"#);
    }
}
