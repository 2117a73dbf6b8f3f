//! `segpipe extract` against hand-made files and a hand-written server.

use std::collections::BTreeMap;

use crate::strict_server::{StrictServer, purchase_count};
use crate::util::{Workdir, fail, ok};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|x| x.expect("csv row").iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn messy_file_against_a_strict_server() {
    let w = Workdir::new();
    let server = StrictServer::start();
    let out = ok(w.run(&[
        "extract",
        "--customers",
        &fixture("customers_messy.csv"),
        "--api-url",
        &server.url(),
        "--out",
        "x",
    ]));
    assert!(
        out.starts_with("read 12 rows: 5 customers, 6 rejected, 1 duplicates dropped;"),
        "{out}"
    );

    let customers = csv_rows(&w.read("x/customers_clean.csv"));
    let mobiles: Vec<&str> = customers.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        mobiles,
        [
            "919876543210",
            "919876543211",
            "919876543212",
            "919876543213",
            "919876543217"
        ]
    );
    // mobile,name,age,income,gender: nulls stay empty, numbers are parsed.
    assert_eq!(
        customers[0],
        ["919876543210", "Asha Rao", "34", "55000", "female"]
    );
    assert_eq!(customers[3], ["919876543213", "", "", "", "female"]);
    assert_eq!(
        customers[4],
        ["919876543217", "Quoted, Name", "29", "38000", "male"]
    );

    let rejects = w.read("x/rejects_customers.csv");
    let rejects = csv_rows(&rejects);
    let got: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("7", "invalid mobile: 5 digits, expected 10 to 15: `12345`"),
            (
                "8",
                "invalid mobile: unexpected character `O`: `+91987654321O`"
            ),
            ("9", "unknown gender `Robot`"),
            ("10", "unparseable income `lots`"),
            ("11", "unparseable age `abc`"),
            ("12", "missing mobile"),
        ]
    );
    // The original fields follow line and reason, under the original header.
    assert!(
        w.read("x/rejects_customers.csv")
            .starts_with("line,reason,Customer_ID,MOBILE,Gender,Income,Age,Name,signup_channel\n")
    );
    assert_eq!(
        rejects[0][2..],
        ["6", "12345", "Male", "40000", "30", "Too Short", "web"]
    );

    // Every purchase joined although the server echoes another mobile format.
    let purchases = csv_rows(&w.read("x/purchases_raw.csv"));
    let want: usize = mobiles.iter().map(|m| purchase_count(m)).sum();
    assert_eq!(purchases.len(), want);
    let mut per_mobile: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &purchases {
        *per_mobile.entry(p[0].as_str()).or_default() += 1;
    }
    for m in &mobiles {
        assert_eq!(per_mobile.get(m).copied(), Some(purchase_count(m)), "{m}");
    }
}

#[test]
fn a_413_splits_batches_until_the_server_accepts_them() {
    let w = Workdir::new();
    ok(w.run(&["generate", "--customers", "450", "--out", "c.csv"]));
    let server = StrictServer::start();
    ok(w.run(&[
        "extract",
        "--customers",
        "c.csv",
        "--api-url",
        &server.url(),
        "--out",
        "x",
        "--batch-size",
        "1000",
    ]));
    let customers = csv_rows(&w.read("x/customers_clean.csv"));
    let purchases = csv_rows(&w.read("x/purchases_raw.csv"));
    let want: usize = customers.iter().map(|c| purchase_count(&c[0])).sum();
    assert!(customers.len() > 400);
    assert_eq!(purchases.len(), want);
    // 1000 → 413 → halves until ≤ 100: more requests than batches.
    assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 8);
}

#[test]
fn structural_errors_exit_2_naming_file_and_line() {
    let w = Workdir::new();
    let server = StrictServer::start();
    let url = server.url();
    let cases = [
        (
            fixture("customers_no_mobile.csv"),
            ":1: missing required column `mobile` (header: name,age,income,gender)",
        ),
        (fixture("customers_not_utf8.csv"), ":3: not valid UTF-8"),
    ];
    for (path, want) in cases {
        let (code, err) = fail(w.run(&[
            "extract",
            "--customers",
            &path,
            "--api-url",
            &url,
            "--out",
            "x",
        ]));
        assert_eq!(code, 2, "{err}");
        assert_eq!(err, format!("error: {path}{want}\n"));
    }
    w.write("empty.csv", "");
    let (code, err) = fail(w.run(&[
        "extract",
        "--customers",
        "empty.csv",
        "--api-url",
        &url,
        "--out",
        "x",
    ]));
    assert_eq!(
        (code, err.as_str()),
        (2, "error: empty.csv:1: no header row\n")
    );
    let (code, err) = fail(w.run(&[
        "extract",
        "--customers",
        "missing.csv",
        "--api-url",
        &url,
        "--out",
        "x",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: cannot open `missing.csv`: "),
        "{err}"
    );
}

#[test]
fn an_unreachable_api_fails_with_exit_1_naming_the_batch() {
    let w = Workdir::new();
    let port = crate::util::closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = w
        .segpipe()
        .args([
            "extract",
            "--customers",
            &fixture("customers_messy.csv"),
            "--api-url",
            &url,
            "--out",
            "x",
            "--max-attempts",
            "2",
        ])
        .output()
        .expect("spawn");
    let (code, err) = fail(out);
    assert_eq!(code, 1, "{err}");
    // Retry warnings come first; the error is one last line.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: batch 0 (5 mobiles from `+919876543210`) failed after 2 attempts at {url}/purchase-history: request failed")),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    // Rejects are kept even though the fetch failed; no purchases were written.
    assert!(w.join("x/rejects_customers.csv").exists());
    assert!(!w.join("x/purchases_raw.csv").exists());
}

/// `segpipe extract` of `customers` into `x/` against `server`.
fn extract_to_x(w: &Workdir, server: &StrictServer, customers: &str) -> std::process::Output {
    w.run(&[
        "-v",
        "extract",
        "--customers",
        customers,
        "--api-url",
        &server.url(),
        "--out",
        "x",
    ])
}

/// (line, reason) of every row of the rejects file.
fn reject_reasons(w: &Workdir) -> Vec<(String, String)> {
    csv_rows(&w.read("x/rejects_customers.csv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn issue_8_a_row_with_the_wrong_number_of_fields_is_a_reject() {
    // See: issue 8 (item 2: `UnequalLengths`, exit 1, a partial rejects file)
    let w = Workdir::new();
    let server = StrictServer::start();
    let out = ok(extract_to_x(&w, &server, &fixture("customers_ragged.csv")));
    assert!(
        out.starts_with("read 4 rows: 2 customers, 2 rejected, 0 duplicates dropped;"),
        "{out}"
    );
    // Every row has as many cells as the header: short rows padded, the
    // surplus of long rows kept under extra columns.
    let text = w.read("x/rejects_customers.csv");
    assert_eq!(
        text,
        "line,reason,name,age,income,mobile,gender,extra_field_1,extra_field_2\n\
         3,\"expected 5 fields, found 7\",Too Many,40,1000,+919876543211,m,extra,\"more, quoted\"\n\
         4,\"expected 5 fields, found 3\",Too Few,41,+919876543212,,,,\n"
    );
}

#[test]
fn issue_8_an_unbalanced_quote_is_reported_and_swallows_no_rows() {
    // See: issue 8 (item 6: `read 2 rows` for a 4-row file, exit 0)
    let w = Workdir::new();
    let server = StrictServer::start();
    let out = ok(extract_to_x(
        &w,
        &server,
        &fixture("customers_unbalanced_quote.csv"),
    ));
    assert!(
        out.starts_with("read 5 rows: 4 customers, 1 rejected, 0 duplicates dropped;"),
        "{out}"
    );
    assert_eq!(
        reject_reasons(&w),
        pairs(&[("3", "unbalanced quote swallows lines 3-5")])
    );
    let rejects = csv_rows(&w.read("x/rejects_customers.csv"));
    assert_eq!(
        rejects[0][2..],
        ["Vikram,41,60000,+919876543211,m", "", "", "", ""]
    );
    let names: Vec<String> = csv_rows(&w.read("x/customers_clean.csv"))
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(names, ["Asha", "Kiran", "Quoted, Name", "Meera"]);
    let quality = w.read("x/data_quality_extract.csv");
    assert!(
        quality.contains("rejected_unbalanced_quote,1\n"),
        "{quality}"
    );
    assert!(quality.contains("unbalanced_quote_lines,3\n"), "{quality}");

    // A quote that never closes covers the rest of the file; a line break
    // inside quotes (a multi-line field) is a reject too (DESIGN §3).
    w.write(
        "open.csv",
        "name,age,income,mobile,gender\n\
         \"Asha\nRao\",34,55000,+919876543210,f\n\
         Kiran,29,70000,+919876543212,f\n\
         Vikram,41,60000,\"+919876543211,m\n\
         Meera,52,80000,+919876543214,f\n",
    );
    let out = ok(extract_to_x(&w, &server, "open.csv"));
    assert!(
        out.starts_with("read 5 rows: 3 customers, 2 rejected, 0 duplicates dropped;"),
        "{out}"
    );
    assert_eq!(
        reject_reasons(&w),
        pairs(&[
            ("2", "unbalanced quote swallows lines 2-3"),
            (
                "5",
                "unbalanced quote swallows lines 5-6 (to the end of the file)"
            ),
        ])
    );
}

#[test]
fn issue_8_line_numbers_count_crlf_and_blank_lines_as_an_editor_does() {
    // See: issue 8 (item 7: a bad row on line 4 reported as 3)
    let w = Workdir::new();
    let server = StrictServer::start();
    w.write(
        "crlf.csv",
        "name,age,income,mobile,gender\r\n\
         Asha,34,55000,+919876543210,f\r\n\
         \r\n\
         Bad Age,abc,55000,+919876543211,f\r\n\
         \n\
         Old Mac,30,1000,12345,m\r\
         Kiran,29,70000,+919876543212,f",
    );
    let out = ok(extract_to_x(&w, &server, "crlf.csv"));
    assert!(
        out.starts_with("read 4 rows: 2 customers, 2 rejected, 0 duplicates dropped;"),
        "{out}"
    );
    assert_eq!(
        reject_reasons(&w),
        pairs(&[
            ("4", "unparseable age `abc`"),
            ("6", "invalid mobile: 5 digits, expected 10 to 15: `12345`"),
        ])
    );

    // A structural error names the physical line too.
    let mut bytes = b"name,age,income,mobile,gender\r\nA,30,100,+919876543210,m\r\n\r\n".to_vec();
    bytes.extend_from_slice(b"B,31,200,+91987654\xff3211,f\r\n");
    std::fs::write(w.join("bad.csv"), bytes).expect("write");
    let (code, err) = fail(extract_to_x(&w, &server, "bad.csv"));
    assert_eq!(
        (code, err.as_str()),
        (2, "error: bad.csv:4: not valid UTF-8\n")
    );
}

#[test]
fn issue_8_a_huge_line_is_a_reject_not_an_abort() {
    // See: issue 8 (item 8: nothing panics or aborts on a huge input line)
    let w = Workdir::new();
    let server = StrictServer::start();
    let huge = "x".repeat(3 << 20);
    w.write(
        "huge.csv",
        &format!(
            "name,age,income,mobile,gender\n\
             Asha,34,55000,+919876543210,f\n\
             {huge}\n\
             Kiran,29,70000,+919876543212,f\n"
        ),
    );
    let out = ok(extract_to_x(&w, &server, "huge.csv"));
    assert!(
        out.starts_with("read 3 rows: 2 customers, 1 rejected, 0 duplicates dropped;"),
        "{out}"
    );
    assert_eq!(
        reject_reasons(&w),
        pairs(&[(
            "3",
            "line is 3145728 bytes, longer than the limit of 1048576"
        )])
    );
    // A header that long is an input error.
    w.write("huge_header.csv", &format!("{huge}\n"));
    let (code, err) = fail(extract_to_x(&w, &server, "huge_header.csv"));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: huge_header.csv:1: header line is 3145728 bytes, longer than the limit of 1048576\n"
        )
    );
}

#[test]
fn issue_12_a_semicolon_or_tab_separated_file_is_detected_and_said() {
    // See: issue 12 (item 4: detect the delimiter and say so)
    let w = Workdir::new();
    let server = StrictServer::start();
    let out = extract_to_x(&w, &server, &fixture("customers_semicolon.csv"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = ok(out);
    assert!(
        stdout.starts_with("read 3 rows: 3 customers, 0 rejected, 0 duplicates dropped;"),
        "{stdout}"
    );
    assert!(
        err.contains("Detected the delimiter from the header.") && err.contains("semicolon"),
        "{err}"
    );
    let names: Vec<String> = csv_rows(&w.read("x/customers_clean.csv"))
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(names, ["Asha Rao", "Vikram", "Kiran; Das"]);

    w.write(
        "tabs.csv",
        "name\tage\tincome\tmobile\tgender\nAsha\t34\t55000\t+919876543210\tf\n",
    );
    let out = extract_to_x(&w, &server, "tabs.csv");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(ok(out).starts_with("read 1 rows: 1 customers,"));
    assert!(err.contains("delimiter") && err.contains("tab"), "{err}");

    // Without every column, the error says how the header was read.
    w.write("semi_no_mobile.csv", "name;age;income;gender\nA;1;2;m\n");
    let (code, err) = fail(extract_to_x(&w, &server, "semi_no_mobile.csv"));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: semi_no_mobile.csv:1: missing required column `mobile` (header: name,age,income,gender), read as semicolon-separated\n"
        )
    );
}

/// SplitMix64: a tiny seeded generator, so the damage is the same every run.
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Physical lines as an editor counts them (`\r\n`, `\n`, `\r`).
fn editor_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if b[i] == b'\n' || b[i] == b'\r' {
            out.push(&text[start..i]);
            i += if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// Damage a generated customers file: wrong field counts, stray quotes,
/// multi-line quoted fields, blank lines, CRLF and lone CR, repeated rows.
fn damage(clean: &str, seed: u64) -> String {
    let mut rng = Mix(seed);
    let mut lines = clean.lines();
    let mut out = format!("{}\n", lines.next().unwrap_or_default());
    for line in lines {
        let mut row = line.to_owned();
        match rng.below(12) {
            0 => row.push_str(",extra"),
            1 => row.truncate(row.rfind(',').unwrap_or(0)),
            2 => row.insert(0, '"'),
            3 => out.push('\n'),
            4 => {
                // A name split over two lines inside quotes.
                let comma = row.find(',').unwrap_or(0);
                row = format!("\"{}\nnote\"{}", &row[..comma], &row[comma..]);
            }
            5 => row.push_str(",\"quoted, tail"),
            6 => out.push_str(&format!("{row}\n")),
            _ => {}
        }
        out.push_str(&row);
        out.push_str(match rng.below(4) {
            0 => "\r\n",
            1 => "\r",
            _ => "\n",
        });
    }
    out
}

#[test]
fn issue_8_rows_in_equal_valid_plus_duplicates_plus_rejects() {
    // See: issue 8 (every physical row is counted exactly once, whatever the damage)
    let w = Workdir::new();
    let server = StrictServer::start();
    ok(w.run(&[
        "generate",
        "--customers",
        "300",
        "--seed",
        "7",
        "--out",
        "c.csv",
    ]));
    let clean = w.read("c.csv");
    for seed in 1..=6 {
        let text = damage(&clean, seed);
        w.write("d.csv", &text);
        let out = ok(extract_to_x(&w, &server, "d.csv"));
        let nums: Vec<u64> = out
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(4)
            .map(|s| s.parse().expect("a count"))
            .collect();
        let [rows, customers, rejected, duplicates] = nums[..] else {
            panic!("unexpected summary: {out}");
        };
        let physical = editor_lines(&text);
        let non_blank: Vec<u64> = (2..=physical.len() as u64)
            .filter(|n| !physical[*n as usize - 1].is_empty())
            .collect();
        assert_eq!(rows, non_blank.len() as u64, "seed {seed}: {out}");
        assert_eq!(
            rows,
            customers + rejected + duplicates,
            "seed {seed}: {out}"
        );
        assert_eq!(
            csv_rows(&w.read("x/customers_clean.csv")).len() as u64,
            customers,
            "seed {seed}"
        );
        let rejects = csv_rows(&w.read("x/rejects_customers.csv"));
        assert_eq!(rejects.len() as u64, rejected, "seed {seed}");
        // Each reject names a distinct non-blank physical line, in file order.
        let lines: Vec<u64> = rejects
            .iter()
            .map(|r| r[0].parse().expect("a line number"))
            .collect();
        assert!(
            lines.windows(2).all(|p| p[0] < p[1]),
            "seed {seed}: {lines:?}"
        );
        assert!(
            lines.iter().all(|n| non_blank.binary_search(n).is_ok()),
            "seed {seed}: {lines:?}"
        );
        assert!(rejected > 0 && customers > 200, "seed {seed}: {out}");
    }
}
