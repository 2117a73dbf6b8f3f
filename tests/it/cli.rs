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
        "report",
        "completions",
        "man",
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
        "report",
        "completions",
        "man",
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
fn compose_file_runs_the_pipeline_against_a_healthy_postgres_off_port_5432() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/compose.yaml"))
        .expect("compose.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let services = doc
        .get("services")
        .and_then(|s| s.as_mapping())
        .expect("services map");
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for name in ["postgres", "api", "pipeline"] {
        assert!(names.contains(&name), "{names:?}");
    }
    for name in ["postgres", "api"] {
        assert!(
            services[name].get("healthcheck").is_some(),
            "{name} has no healthcheck"
        );
    }
    // A local PostgreSQL usually holds host port 5432.
    let ports: Vec<&str> = services["postgres"]["ports"]
        .as_sequence()
        .expect("postgres ports")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(!ports.is_empty());
    for p in &ports {
        let host_port = p.rsplit(':').nth(1).expect("host:container");
        assert_ne!(host_port, "5432", "{p}");
    }
    let pipeline = &services["pipeline"];
    for dep in ["postgres", "api"] {
        assert_eq!(
            pipeline["depends_on"][dep]["condition"].as_str(),
            Some("service_healthy"),
            "pipeline must wait for a healthy {dep}"
        );
    }
    let command: Vec<&str> = pipeline["command"]
        .as_sequence()
        .expect("pipeline command")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(command.first(), Some(&"run"), "{command:?}");
    let env = &pipeline["environment"];
    assert!(
        env["SEGPIPE_DATABASE_URL"]
            .as_str()
            .is_some_and(|u| u.starts_with("postgres://") && u.contains("@postgres:5432/")),
        "{env:?}"
    );
    assert_eq!(env["SEGPIPE_API_URL"].as_str(), Some("http://api:8000"));
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    let w = Workdir::new();
    // A broken config file must not stop them: they need no settings.
    w.write("segpipe.toml", "bogus = 1\n");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ok(w.run(&["completions", shell]));
        for sub in ["run", "extract", "transform", "load", "report", "serve-api"] {
            assert!(out.contains(sub), "{shell} completions lack {sub}");
        }
        // fish spells long options `-l database-url`.
        assert!(out.contains("database-url"), "{shell}");
    }
    let man = ok(w.run(&["man"]));
    assert!(
        man.starts_with(".ie") || man.contains(".TH segpipe 1"),
        "{man}"
    );
    assert!(man.contains(".TH segpipe 1"), "{man}");
    for sub in [
        "generate",
        "serve\\-api",
        "extract",
        "transform",
        "load",
        "report",
        "run",
    ] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    // Per-subcommand options are documented, not only the top level.
    assert!(man.contains("checkpoint\\-dir"), "{man}");
    let (code, err) = fail(w.run(&["completions", "tcsh"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn errors_under_json_logs_are_one_json_object() {
    let w = Workdir::new();
    let out = w.run(&["--log-format", "json", "load", "--input", "missing"]);
    let (code, err) = fail(out);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&err).unwrap_or_else(|e| panic!("{err}: {e}"));
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("missing")),
        "{v}"
    );
    // Text logs keep the one `error: …` line.
    let (_, err) = fail(w.run(&["load", "--input", "missing"]));
    assert!(err.starts_with("error: "), "{err}");
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

/// Regression: with EnvFilter replaced by `Targets`, the fmt builder's own
/// INFO ceiling silently swallowed `-vv`'s debug lines.
#[test]
fn debug_logs_appear_with_vv_and_with_rust_log_but_not_by_default() {
    let w = Workdir::new();
    let run = [
        "run",
        "--customers",
        "50",
        "--as-of",
        "2026-11-24",
        "--report",
        "none",
    ];
    let stderr = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("spawn segpipe");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = stderr(w.segpipe().args(run));
    assert!(
        !quiet.contains("INFO") && !quiet.contains("DEBUG"),
        "{quiet}"
    );
    let vv = stderr(w.segpipe().arg("-vv").args(run));
    assert!(vv.contains("Started purchase API."), "{vv}");
    let env = stderr(w.segpipe().env("RUST_LOG", "debug").args(run));
    assert!(env.contains("Started purchase API."), "{env}");
    let info = stderr(w.segpipe().env("RUST_LOG", "info").args(run));
    assert!(
        info.contains("Extracting.") && !info.contains("DEBUG"),
        "{info}"
    );
}
