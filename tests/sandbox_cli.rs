//! `connector sandbox` as a process: the JSON line, the written config, Ctrl-C.
//! Budget: under 10 s.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use util::TestDir;

/// Starts `connector sandbox ARGS…`, returns the child and its first stdout line as JSON.
fn start_sandbox(dir: &TestDir, args: &[&str]) -> (std::process::Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector"))
        .current_dir(dir.path())
        .arg("sandbox")
        .args(args)
        .env_remove("CONNECTOR_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connector sandbox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the sandbox's JSON line");
    let json =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line:?}"));
    (child, json)
}

fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    child.wait().expect("wait for the sandbox")
}

#[test]
fn sandbox_prints_urls_and_credentials_writes_a_config_and_stops_on_ctrl_c() {
    let dir = TestDir::new();
    let (mut child, line) = start_sandbox(&dir, &["--write-config", "sandbox.toml", "--seed", "7"]);

    let acumatica = line["acumatica_url"].as_str().expect("acumatica_url");
    let magento = line["magento_url"].as_str().expect("magento_url");
    assert!(acumatica.starts_with("http://127.0.0.1:"), "{line}");
    assert!(magento.starts_with("http://127.0.0.1:"), "{line}");
    assert!(
        line["credentials"]["acumatica_password"].is_string(),
        "{line}"
    );
    assert!(
        line["credentials"]["magento_access_token"].is_string(),
        "{line}"
    );
    assert_eq!(line["config"], "sandbox.toml");

    // The written config is valid and names the running systems.
    let config = std::fs::read_to_string(dir.join("sandbox.toml")).unwrap();
    assert!(
        config.contains(acumatica) && config.contains(magento),
        "{config}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("sandbox.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the config holds credentials: owner only");
    }
    dir.command(&["--config", "sandbox.toml", "status", "--json"])
        .expect_exit(0)
        .stdout_has("\"state\":\"uninitialized\"");

    let status = interrupt(&mut child);
    assert_eq!(status.code(), Some(0), "Ctrl-C is a clean stop");
}

#[test]
fn sandbox_refuses_a_non_loopback_address_and_a_bad_rate() {
    let dir = TestDir::new();
    dir.command(&["sandbox", "--listen", "0.0.0.0:0"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("loopback only");
    dir.command(&["sandbox", "--error-rate", "1.5"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("--error-rate");
}
