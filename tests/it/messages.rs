//! Errors that tell the user what to do: one line, exit 2 (or 1 for a
//! runtime failure), naming the setting, the variable or the fix.

use crate::pg::{self, pg_url};
use crate::util::{Workdir, fail};

fn err_of(w: &Workdir, args: &[&str]) -> (i32, String) {
    fail(w.run(args))
}

// See: issue 8
#[test]
fn issue_8_a_fractional_batch_size_in_the_file_names_line_and_key() {
    let w = Workdir::new();
    w.write("segpipe.toml", "seed = 7\n[extract]\nbatch_size = 1.5\n");
    let (code, err) = err_of(&w, &["config"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: config file `segpipe.toml`: invalid type: floating point `1.5`, expected usize (line 3, key `extract.batch_size`)\n"
    );
}

// See: issue 8
#[test]
fn issue_8_a_toml_syntax_error_prints_on_one_line() {
    let w = Workdir::new();
    w.write("segpipe.toml", "[extract]\nbatch_size = \n");
    let (code, err) = err_of(&w, &["config"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: config file `segpipe.toml`: ")
            && err.ends_with("(line 2, key `extract.batch_size`)\n"),
        "{err}"
    );
}

// See: issue 8
#[test]
fn issue_8_an_absurd_customer_count_is_refused_before_any_work() {
    let w = Workdir::new();
    let (code, err) = err_of(&w, &["generate", "--customers", "18446744073709551615"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: invalid value for `generate.customers`: 18446744073709551615 is more than the most allowed, 100000000\n"
    );
}

// See: issue 12
#[test]
fn issue_12_a_negative_count_in_the_environment_names_the_variable() {
    let w = Workdir::new();
    let out = w
        .segpipe()
        .args(["generate"])
        .env("SEGPIPE_GENERATE_CUSTOMERS", "-5")
        .output()
        .expect("spawn");
    let (code, err) = fail(out);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: environment variable `SEGPIPE_GENERATE_CUSTOMERS=-5`: expected a whole number, 0 or more\n"
    );
}

// See: issue 12
#[test]
fn issue_12_a_day_first_as_of_says_yyyy_mm_dd() {
    let w = Workdir::new();
    let (code, err) = err_of(&w, &["run", "--as-of", "24-11-2026"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(
            "error: invalid value '24-11-2026' for '--as-of <DATE>': `24-11-2026` is not a date in the form YYYY-MM-DD (e.g. 2026-11-24)"
        ),
        "{err}"
    );
}

// See: issue 12
#[test]
fn issue_12_a_bind_without_port_says_host_port() {
    let w = Workdir::new();
    let (code, err) = err_of(&w, &["serve-api", "--bind", "localhost"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: cannot listen on `localhost`: expected HOST:PORT, e.g. 127.0.0.1:8000 (port 0 picks a free one)\n"
    );
}

// See: issue 12
#[test]
fn issue_12_a_missing_database_gets_the_createdb_command() {
    let w = Workdir::new();
    let base = pg_url();
    let url = format!(
        "{}/segpipe_no_such_db_{}",
        base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b),
        std::process::id()
    );
    let (code, err) = err_of(&w, &["run", "--customers", "50", "--database-url", &url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist at `"), "{err}");
    assert!(err.contains("create it with `createdb "), "{err}");
    assert!(!w.join("segpipe-report.html").exists());
    drop(pg::scalar(&base, "SELECT 1"));
}

// See: issue 12
#[test]
fn issue_12_run_with_zero_customers_leaves_no_database() {
    let w = Workdir::new();
    let (code, err) = err_of(&w, &["run", "--customers", "0"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: invalid value for `generate.customers`: must be at least 1\n"
    );
    assert!(!w.join("segpipe.db").exists());
}

// See: issue 8
#[test]
fn issue_8_passwords_never_print_in_errors_logs_or_config() {
    let w = Workdir::new();
    let port = crate::util::closed_port();
    for url in [
        format!("postgres://app:pa/ssW0rd@127.0.0.1:{port}/shop"),
        format!("host=127.0.0.1 port={port} user=app password=pa/ssW0rd dbname=shop"),
    ] {
        let out = w
            .segpipe()
            .args([
                "--log-format",
                "json",
                "-v",
                "run",
                "--customers",
                "20",
                "--database-url",
                &url,
            ])
            .output()
            .expect("spawn");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success());
        assert!(!all.contains("pa/ssW0rd"), "{all}");
        let config = w
            .segpipe()
            .args(["config"])
            .env("SEGPIPE_DATABASE_URL", &url)
            .env("SEGPIPE_API_URL", "https://user:t0k3n@api.example/v1")
            .output()
            .expect("spawn config");
        let text = String::from_utf8_lossy(&config.stdout);
        assert!(config.status.success(), "{text}");
        assert!(
            !text.contains("pa/ssW0rd") && !text.contains("t0k3n"),
            "{text}"
        );
    }
    let out = w
        .segpipe()
        .args([
            "extract",
            "--customers",
            "nothing.csv",
            "--api-url",
            "http://127.0.0.1:9",
            "--api-header",
            "Authorization: Bearer s3cr3t-t0ken",
        ])
        .output()
        .expect("spawn");
    let all = String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains("s3cr3t-t0ken"), "{all}");
}
