//! Damaged checkpoint files are input errors: exit 2 and one line naming
//! `FILE:LINE:` and the column.

use crate::util::{Workdir, fail, ok};

/// A small run with every stage's checkpoint under `ck/`.
fn checkpoints() -> Workdir {
    let w = Workdir::new();
    ok(w.run(&[
        "run",
        "--customers",
        "60",
        "--as-of",
        "2026-11-24",
        "--checkpoint-dir",
        "ck",
        "--database-url",
        "sqlite://first.db",
    ]));
    w
}

/// Replace field `column` of physical line `line` (1-based) of a CSV.
fn damage(w: &Workdir, file: &str, line: usize, column: &str, value: &str) {
    let text = w.read(file);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = header.iter().position(|h| *h == column).expect("column");
    let mut fields: Vec<String> = lines[line - 1].split(',').map(str::to_owned).collect();
    fields[at] = value.to_owned();
    lines[line - 1] = fields.join(",");
    w.write(file, &(lines.join("\n") + "\n"));
}

fn load(w: &Workdir) -> (i32, String) {
    fail(w.run(&[
        "load",
        "--input",
        "ck/transform",
        "--database-url",
        "sqlite://second.db",
    ]))
}

// See: issue 7
#[test]
fn issue_7_a_bad_number_in_a_report_checkpoint_names_file_line_and_column() {
    let w = checkpoints();
    damage(&w, "ck/transform/customer_segments.csv", 3, "clv", "12.5x");
    let (code, err) = load(&w);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: ck/transform/customer_segments.csv:3: column `clv`: `12.5x`: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

// See: issue 7
#[test]
fn issue_7_an_unknown_mobile_in_a_child_table_is_named() {
    let w = checkpoints();
    damage(
        &w,
        "ck/transform/customer_behavior_metrics.csv",
        2,
        "mobile",
        "910000000000",
    );
    let (code, err) = load(&w);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: ck/transform/customer_behavior_metrics.csv:2: column `mobile`: unknown mobile `910000000000`\n"
    );
}

// See: issue 7
#[test]
fn issue_7_a_missing_column_is_named_on_line_1() {
    let w = checkpoints();
    let text = w.read("ck/transform/segment_metrics.csv");
    w.write(
        "ck/transform/segment_metrics.csv",
        &text.replacen("avg_clv", "average_clv", 1),
    );
    let (code, err) = load(&w);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: ck/transform/segment_metrics.csv:1: missing column `avg_clv`\n"
    );
}

// See: issue 7
#[test]
fn issue_7_a_bad_extract_checkpoint_fails_transform_with_exit_2() {
    let w = checkpoints();
    damage(&w, "ck/extract/customers_clean.csv", 4, "age", "old");
    let (code, err) = fail(w.run(&[
        "transform",
        "--input",
        "ck/extract",
        "--out",
        "t",
        "--as-of",
        "2026-11-24",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: ck/extract/customers_clean.csv:4: column `age`: `old`: "),
        "{err}"
    );
}
