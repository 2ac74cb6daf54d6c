//! No secret in anything the connector writes (DESIGN.md section 3): every command runs
//! against the sandbox at trace level (`-vv`) and with `--json`, and stdout, stderr and the
//! store's bytes (with its -wal) are scanned for the Acumatica password, the Magento access
//! token and the receiver secret, as written and in base64 and percent-encoded form.
//! Budget: under 30 s.

mod util;

use base64::Engine;
use util::sandbox::SandboxEnv;

/// Every form a secret could leak in.
fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![
        secret.to_string(),
        b64.encode(secret),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ];
    // Basic credentials as OData sends them (user:password).
    forms.push(b64.encode(format!("admin:{secret}")));
    forms.retain(|f| f.len() >= 6);
    forms
}

#[test]
fn no_command_writes_a_secret_to_output_logs_json_or_the_store() {
    let env = SandboxEnv::with(connector::sandbox::SandboxOptions {
        items: 3,
        orders: 0,
        ..Default::default()
    });
    let credentials = env.sandbox.credentials();
    let secrets = [
        credentials.acumatica_password.clone(),
        credentials.magento_access_token.clone(),
        "sandbox-receiver-secret".to_string(),
    ];
    let all_forms: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();

    let runs: &[&[&str]] = &[
        &["-vv", "init", "--yes"],
        &["-vv", "init", "--yes", "--json"],
        &["-vv", "status"],
        &["-vv", "status", "--json"],
        &["-vv", "sync"],
        &["-vv", "sync", "--json"],
        &["-vv", "failed", "--json"],
        &["-vv", "history", "--json"],
        &["-vv", "doctor"],
        &["-vv", "doctor", "--json"],
        &["-vv", "sync", "--full", "--bulk", "--json"],
        &["-vv", "mappings", "--entity", "items", "--json"],
        &["-vv", "resync", "--entity", "items"],
        &["-vv", "sync", "--json"],
        &["-vv", "deactivate", "--pause", "--yes"],
        &["-vv", "activate", "--yes"],
        &["-vv", "deactivate", "--stop", "--yes"],
        &["-vv", "uninstall", "--yes"],
        &["-vv", "status", "--json"],
    ];
    let mut scanned = 0usize;
    for args in runs {
        let out = env.connector(args).env("RUST_LOG", "trace").output();
        assert!(
            out.output.status.code().is_some(),
            "killed by a signal\n{}",
            out.report()
        );
        for text in [out.stdout(), out.stderr()] {
            scanned += text.len();
            for form in &all_forms {
                assert!(
                    !text.contains(form.as_str()),
                    "`connector {}` wrote a secret ({form})\n{}",
                    args.join(" "),
                    out.report()
                );
            }
        }
    }

    // `listen` briefly, at trace level, with one accepted and one refused notification.
    let mut child = env.connector(&["-vv", "listen"]).cmd;
    child
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = child.spawn().expect("listen starts");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let url = format!("http://{}/push", env.receiver);
    env.block_on(async {
        let client = reqwest::Client::new();
        for secret in ["wrong", "sandbox-receiver-secret"] {
            let _ = client
                .post(&url)
                .header("X-Connector-Secret", secret)
                .body(r#"{"Query":"MC-items","Id":"1","Inserted":[]}"#)
                .send()
                .await;
        }
    });
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        scanned += text.len();
        for form in &all_forms {
            assert!(
                !text.contains(form.as_str()),
                "listen wrote a secret:\n{text}"
            );
        }
    }

    // The store's bytes, WAL included.
    for name in ["connector.db", "connector.db-wal"] {
        let Ok(bytes) = std::fs::read(env.dir.join(name)) else {
            continue;
        };
        scanned += bytes.len();
        for form in &all_forms {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "{name} holds a secret ({form})"
            );
        }
    }
    println!(
        "secrets: {} runs, {scanned} bytes scanned for {} forms of 3 secrets",
        runs.len() + 1,
        all_forms.len()
    );
}

#[test]
fn a_config_readable_by_others_gets_a_warning_and_a_private_one_none() {
    use std::os::unix::fs::PermissionsExt;
    let dir = util::TestDir::new();
    let path = dir.write("connector.toml", util::example_config());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.command(&["status"]).expect_exit(0);
    out.stderr_has("connector.toml: readable by other users (mode 644)")
        .stderr_has("chmod 600");
    assert!(!out.stderr().contains("change-me"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = dir.command(&["status"]).expect_exit(0);
    assert!(
        !out.stderr().contains("readable by other users"),
        "{}",
        out.report()
    );
}
