//! The OpenAPI 3.0 document served at `GET /openapi.json`.
//!
//! Owns the machine-readable contract of DESIGN §3 and nothing else. It is
//! built once at server start (it names the configured `max_mobiles`), so
//! serving it costs one copy of a byte buffer.

use serde_json::{Value, json};

/// The document, with the request limit the server actually enforces.
pub(crate) fn document(max_mobiles: usize, max_body_bytes: usize) -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "segpipe purchase-history API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Mock purchase history for customer segmentation. The purchases of a mobile \
                depend only on (seed, normalized mobile, as-of date), never on batching, order or retries."
        },
        "paths": {
            "/purchase-history": {
                "post": {
                    "operationId": "purchaseHistory",
                    "summary": "Purchases of a batch of mobiles",
                    "description": "Each mobile is echoed exactly as sent. A mobile that does not normalize \
                        (10-15 digits after removing spaces, `-`, `(`, `)`, `.` and a leading `+`) gets no \
                        purchases. A number sent twice in one request is answered once, under its first spelling.",
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": { "schema": { "$ref": "#/components/schemas/PurchaseHistoryRequest" } }
                        }
                    },
                    "responses": {
                        "200": {
                            "description": "Purchases of the requested mobiles",
                            "content": {
                                "application/json": {
                                    "schema": { "$ref": "#/components/schemas/PurchaseHistoryResponse" }
                                }
                            }
                        },
                        "400": error("Malformed JSON body"),
                        "413": error(&format!(
                            "More than {max_mobiles} mobiles, or a body over {max_body_bytes} bytes"
                        )),
                        "422": error("Valid JSON of the wrong shape (no `mobiles` array of strings)"),
                        "408": error("The body did not arrive before the body deadline; the connection is closed"),
                        "503": error("Injected failure (fault injection); retry"),
                        "405": error("Method not allowed; see the `Allow` header")
                    }
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness check",
                    "responses": {
                        "200": {
                            "description": "The service is up",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Health" } } }
                        }
                    }
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": { "description": "OpenAPI 3.0 document", "content": { "application/json": {} } }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "PurchaseHistoryRequest": {
                    "type": "object",
                    "required": ["mobiles"],
                    "properties": {
                        "mobiles": {
                            "type": "array",
                            "maxItems": max_mobiles,
                            "items": { "type": "string", "example": "+919876543210" }
                        }
                    }
                },
                "PurchaseHistoryResponse": {
                    "type": "object",
                    "required": ["purchases"],
                    "properties": {
                        "purchases": { "type": "array", "items": { "$ref": "#/components/schemas/Purchase" } }
                    }
                },
                "Purchase": {
                    "type": "object",
                    "required": ["mobile", "date", "amount", "store"],
                    "properties": {
                        "mobile": { "type": "string", "description": "The mobile exactly as sent" },
                        "date": {
                            "type": "string",
                            "nullable": true,
                            "description": "`YYYY-MM-DD`, sometimes `DD-MM-YYYY`; within two years before the as-of date",
                            "example": "2026-03-01"
                        },
                        "amount": { "type": "number", "nullable": true, "example": 1234.5 },
                        "store": { "type": "string", "nullable": true, "example": "DMart" },
                        "order_id": {
                            "type": "string",
                            "description": "Optional in the contract (a string or an integer); this mock sends one on every purchase, and a duplicated row repeats it",
                            "example": "9f2c1a7b3e4d5c60"
                        }
                    }
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": { "status": { "type": "string", "enum": ["ok"] } }
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "string" } }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_every_path_and_the_limit() {
        let doc = document(10_000, 1 << 25);
        assert_eq!(doc["openapi"], "3.0.3");
        for path in ["/purchase-history", "/health", "/openapi.json"] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
        let post = &doc["paths"]["/purchase-history"]["post"];
        for code in ["200", "400", "413", "422", "503"] {
            assert!(post["responses"][code].is_object(), "{code}");
        }
        assert_eq!(
            doc["components"]["schemas"]["PurchaseHistoryRequest"]["properties"]["mobiles"]["maxItems"],
            10_000
        );
    }
}
