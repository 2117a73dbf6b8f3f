//! `segpipe generate` through the binary: determinism and file shape.

use crate::util::{Workdir, ok};

#[test]
fn same_seed_is_byte_identical_other_seed_differs() {
    let w = Workdir::new();
    ok(w.run(&[
        "generate",
        "--customers",
        "3000",
        "--seed",
        "9",
        "--out",
        "a/c.csv",
    ]));
    ok(w.run(&[
        "generate",
        "--customers",
        "3000",
        "--seed",
        "9",
        "--out",
        "b/c.csv",
    ]));
    ok(w.run(&[
        "generate",
        "--customers",
        "3000",
        "--seed",
        "10",
        "--out",
        "d/c.csv",
    ]));
    assert_eq!(w.read("a/c.csv"), w.read("b/c.csv"));
    assert_eq!(w.read("a/c.truth.csv"), w.read("b/c.truth.csv"));
    assert_ne!(w.read("a/c.csv"), w.read("d/c.csv"));
}

#[test]
fn header_counts_and_configured_rates() {
    let w = Workdir::new();
    let out = ok(w.run(&[
        "generate",
        "--customers",
        "2000",
        "--duplicate-rate",
        "0",
        "--malformed-mobile-rate",
        "0",
        "--missing-age-rate",
        "0",
        "--out",
        "c.csv",
    ]));
    assert!(
        out.starts_with(
            "wrote 2000 rows (2000 customers, 0 duplicate rows, 0 malformed mobiles, 0 missing ages"
        ),
        "{out}"
    );
    let text = w.read("c.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("name,age,income,mobile,gender"));
    assert_eq!(lines.count(), 2000);
    assert_eq!(w.read("c.truth.csv").lines().count(), 2001);
}
