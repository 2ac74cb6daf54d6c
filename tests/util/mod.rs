//! A small harness that runs the real `connector` binary in a temporary folder and, when an
//! expectation fails, prints everything needed to understand why: the command, its folder,
//! its exit code, stdout and stderr (after ripgrep's tests/util.rs).
#![allow(dead_code)] // each test binary uses a different part of it

pub mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Environment variables the connector reads: cleared so the caller's shell cannot leak in.
const CONNECTOR_ENV: &[&str] = &[
    "CONNECTOR_CONFIG",
    "CONNECTOR_ACUMATICA_PASSWORD",
    "CONNECTOR_ACUMATICA_CLIENT_SECRET",
    "CONNECTOR_MAGENTO_ACCESS_TOKEN",
    "CONNECTOR_MAGENTO_CONSUMER_KEY",
    "CONNECTOR_MAGENTO_CONSUMER_SECRET",
    "CONNECTOR_MAGENTO_ACCESS_TOKEN_SECRET",
    "CONNECTOR_RECEIVER_SECRET",
    "RUST_LOG",
];

pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("connector-test-")
                .tempdir()
                .expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write test file");
        if name.ends_with(".toml") {
            // As `connector sandbox --write-config` writes it: a config with secrets readable
            // by other users gets a warning on stderr (tests/secrets.rs checks it).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
        path
    }

    /// `connector ARGS…` run in this folder with a clean connector environment.
    pub fn command(&self, args: &[&str]) -> TestCommand {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connector"));
        cmd.current_dir(self.path()).args(args).stdin(Stdio::null());
        for var in CONNECTOR_ENV {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        TestCommand {
            cmd,
            cwd: self.path().to_path_buf(),
        }
    }
}

pub struct TestCommand {
    pub cmd: Command,
    cwd: PathBuf,
}

impl TestCommand {
    pub fn env(mut self, key: &str, value: &str) -> TestCommand {
        self.cmd.env(key, value);
        self
    }

    pub fn output(mut self) -> RunOutput {
        let output = self.cmd.output().expect("run connector");
        RunOutput {
            description: format!("{:?}", self.cmd),
            cwd: self.cwd,
            output,
        }
    }

    /// Starts it in the background, its output discarded: for a test that kills it, or
    /// watches the simulated systems while it runs.
    pub fn spawn_quiet(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start connector")
    }

    /// Runs and checks the exit code, printing everything when it differs.
    pub fn expect_exit(self, code: i32) -> RunOutput {
        let out = self.output();
        if out.output.status.code() != Some(code) {
            panic!("expected exit {code}\n{}", out.report());
        }
        out
    }
}

pub struct RunOutput {
    description: String,
    cwd: PathBuf,
    pub output: Output,
}

impl RunOutput {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn report(&self) -> String {
        format!(
            "command: {}\ncwd: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.description,
            self.cwd.display(),
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts stderr contains `needle`, printing everything otherwise.
    pub fn stderr_has(&self, needle: &str) -> &RunOutput {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.report()
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &RunOutput {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.report()
        );
        self
    }

    /// Asserts the error is one line (plus nothing else on stderr).
    pub fn one_line_error(&self) -> &RunOutput {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "expected exactly one `error:` line\n{}",
            self.report()
        );
        self
    }
}

/// The example configuration shipped with the crate, with one line replaced.
pub fn example_config_with(from: &str, to: &str) -> String {
    let example = include_str!("../../connector.toml.example");
    assert!(example.contains(from), "example config lacks {from:?}");
    example.replacen(from, to, 1)
}

pub fn example_config() -> String {
    include_str!("../../connector.toml.example").to_string()
}
