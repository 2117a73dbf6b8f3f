//! Shared helpers: a temp workdir per test, the real binary, loopback waits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary working directory, removed on drop.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("create temp workdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// The segpipe binary, run in this directory with a clean SEGPIPE_* env.
    pub fn segpipe(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_segpipe"));
        cmd.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("SEGPIPE_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// Run segpipe with `args`, returning its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.segpipe().args(args).output().expect("spawn segpipe")
    }
}

/// Stdout of a successful run, or a panic showing stderr.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "segpipe failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code and stderr of a failed run.
pub fn fail(out: Output) -> (i32, String) {
    assert!(
        !out.status.success(),
        "expected failure, got success:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback port that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
