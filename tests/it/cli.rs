//! The command line as a user meets it: help, config layering, exit codes.

use crate::util::{Workdir, fail, ok};

#[test]
fn every_subcommand_has_help() {
    let w = Workdir::new();
    for sub in [
        "generate",
        "serve-api",
        "extract",
        "transform",
        "load",
        "run",
        "config",
    ] {
        let out = ok(w.run(&[sub, "--help"]));
        assert!(out.contains("Usage: segpipe"), "{sub}: {out}");
    }
    let top = ok(w.run(&["--help"]));
    for sub in [
        "generate",
        "serve-api",
        "extract",
        "transform",
        "load",
        "run",
    ] {
        assert!(top.contains(sub), "{top}");
    }
}

#[test]
fn config_shows_layers_and_masks_the_password() {
    let w = Workdir::new();
    w.write("segpipe.toml", "seed = 7\n[generate]\ncustomers = 123\n");
    let out = ok(w
        .segpipe()
        .args(["config"])
        .env("SEGPIPE_GENERATE_CUSTOMERS", "456")
        .env(
            "DATABASE_URL",
            "postgres://alice:s3cret@db.example:5432/shop",
        )
        .output()
        .expect("spawn"));
    assert!(out.contains("seed = 7"), "{out}");
    assert!(out.contains("customers = 456"), "{out}");
    assert!(
        out.contains("postgres://alice:***@db.example:5432/shop"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");
}

#[test]
fn unknown_config_key_exits_2_naming_it() {
    let w = Workdir::new();
    w.write("segpipe.toml", "[extract]\nbatchsize = 10\n");
    let (code, err) = fail(w.run(&["config"]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: config file `segpipe.toml`: unknown field `batchsize`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn explicit_config_file_must_exist() {
    let w = Workdir::new();
    let (code, err) = fail(w.run(&["--config", "nope.toml", "config"]));
    assert_eq!(code, 2);
    assert_eq!(err, "error: config file `nope.toml` not found\n");
}

#[test]
fn bad_flag_values_exit_2() {
    let w = Workdir::new();
    let (code, err) = fail(w.run(&["transform", "--k", "many"]));
    assert_eq!(code, 2);
    assert!(err.contains("`many` is not `auto` or a number"), "{err}");
    let (code, err) = fail(w.run(&["run", "--database-url", "mysql://x/y"]));
    assert_eq!(code, 2);
    assert!(err.contains("database_url"), "{err}");
    let (code, _) = fail(w.run(&["generate", "--customers", "-3"]));
    assert_eq!(code, 2);
}

#[test]
fn compose_file_parses_and_names_both_services() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/compose.yaml"))
        .expect("compose.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let services = doc
        .get("services")
        .and_then(|s| s.as_mapping())
        .expect("services map");
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert!(names.contains(&"postgres"), "{names:?}");
    assert!(names.contains(&"api"), "{names:?}");
    for name in ["postgres", "api"] {
        assert!(
            services[name].get("healthcheck").is_some(),
            "{name} has no healthcheck"
        );
    }
}

#[test]
fn serve_api_on_a_taken_port_exits_2_naming_it() {
    let w = Workdir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, err) = fail(w.run(&["serve-api", "--bind", &addr]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!("error: cannot listen on `{addr}`")),
        "{err}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let w = Workdir::new();
    let out = w.run(&[
        "-v",
        "--log-format",
        "json",
        "generate",
        "--customers",
        "10",
        "--out",
        "c.csv",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}
