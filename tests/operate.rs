//! The operator's commands against the sandbox: failed, history, mappings, resync,
//! status --check, completions and the man page. Budget: under 20 s.

mod util;

use serde_json::{Value, json};
use util::sandbox::SandboxEnv;

fn json_of(out: &util::RunOutput) -> Value {
    serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.report()))
}

#[test]
fn a_failed_record_is_listed_with_its_reason_retried_and_skipped() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.connector(&["sync"]).expect_exit(0);
    // A price Magento refuses: negative.
    let item = env.acumatica_state()["entities"]["stock_items"][0]["InventoryID"]
        .as_str()
        .unwrap()
        .to_string();
    env.acumatica_control(&format!("items/{item}"), json!({"price": -5.0}));
    env.connector(&["sync", "--entity", "prices"])
        .expect_exit(3);

    let failed = json_of(&env.connector(&["failed", "--json"]).expect_exit(0));
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["entity"], "prices");
    assert_eq!(failed[0]["key"], item.as_str());
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains(&item),
        "{failed:?}"
    );
    env.connector(&["failed"])
        .expect_exit(0)
        .stdout_has("1 record(s)");
    let id = failed[0]["id"].as_i64().unwrap().to_string();

    env.connector(&["failed", "retry", &id])
        .expect_exit(0)
        .stdout_has("1 record(s) queued again");
    let status = json_of(&env.connector(&["status", "--json"]).expect_exit(0));
    assert_eq!(status["queue"]["pending"], 1);
    env.connector(&["sync", "--entity", "prices"])
        .expect_exit(3);
    env.connector(&["failed", "skip", &id, "--reason", "price fixed by hand"])
        .expect_exit(0);
    assert!(
        json_of(&env.connector(&["failed", "--json"]).expect_exit(0))
            .as_array()
            .unwrap()
            .is_empty()
    );
    env.connector(&["failed", "retry"])
        .expect_exit(2)
        .stderr_has("--all");

    // The history shows the partial runs and one of them lists the failure.
    let runs = json_of(&env.connector(&["history", "--json"]).expect_exit(0));
    let runs = runs.as_array().unwrap();
    assert_eq!(runs[0]["outcome"], "partial");
    assert_eq!(runs.last().unwrap()["outcome"], "done");
    let run_id = runs[1]["id"].as_i64().unwrap().to_string();
    env.connector(&["history", "show", &run_id])
        .expect_exit(0)
        .stdout_has("run ");
    env.connector(&["history", "show", "999"])
        .expect_exit(2)
        .stderr_has("no run 999");
}

#[test]
fn mappings_are_listed_found_and_forgotten_and_resync_queues_a_reread() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.connector(&["sync"]).expect_exit(0);
    let all = json_of(
        &env.connector(&["mappings", "--entity", "items", "--json"])
            .expect_exit(0),
    );
    assert_eq!(all.as_array().unwrap().len(), 20);
    let sku = all[0]["acumatica_key"].as_str().unwrap().to_string();
    let one = json_of(
        &env.connector(&["mappings", "--find", &sku, "--json"])
            .expect_exit(0),
    );
    assert!(
        one.as_array()
            .unwrap()
            .iter()
            .all(|m| m["acumatica_key"] == sku.as_str())
    );
    env.connector(&["mappings", "forget", "items", &sku])
        .expect_exit(0);
    env.connector(&["mappings", "forget", "items", &sku])
        .expect_exit(2)
        .stderr_has("no items mapping");

    env.connector(&["resync", "--entity", "items"])
        .expect_exit(0)
        .stdout_has("re-reads items in full");
    let report = json_of(
        &env.connector(&["sync", "--entity", "items", "--json"])
            .expect_exit(0),
    );
    // The full re-read sends only the forgotten item: the rest are unchanged.
    assert_eq!(report["entities"]["items"]["delivered"], 1, "{report}");
    env.connector(&["resync", "--entity", "items", "--since", "yesterday"])
        .expect_exit(2)
        .stderr_has("--since yesterday");
}

#[test]
fn status_check_raises_the_alarm_for_dead_records_a_stop_and_a_stale_sync() {
    let env = SandboxEnv::start();
    env.connector(&["status", "--check"])
        .expect_exit(1)
        .one_line_error()
        .stderr_has("not initialized");
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.connector(&["status", "--check"])
        .expect_exit(1)
        .stderr_has("no sync has completed yet");
    env.connector(&["sync"]).expect_exit(0);
    env.connector(&["status", "--check", "--max-age", "60"])
        .expect_exit(0)
        .stdout_has("OK: active");
    env.connector(&["deactivate", "--stop", "--yes"])
        .expect_exit(0);
    env.connector(&["status", "--check"])
        .expect_exit(1)
        .stderr_has("the connector is stopped");
}

#[test]
fn completions_are_generated_for_each_shell() {
    let dir = util::TestDir::new();
    for shell in ["bash", "zsh", "fish"] {
        dir.command(&["completions", shell])
            .expect_exit(0)
            .stdout_has("connector");
    }
    dir.command(&["completions", "tcsh"]).expect_exit(2);
}

/// docs/man/connector.1 is generated from the clap definitions; this keeps it current.
/// Regenerate with `UPDATE_MAN=1 cargo test --test operate man_page`.
#[test]
fn the_man_page_is_current() {
    use clap::CommandFactory;
    let mut rendered = Vec::new();
    clap_mangen::Man::new(connector::cli::Cli::command())
        .render(&mut rendered)
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man/connector.1");
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/man/connector.1 is out of date: run `UPDATE_MAN=1 cargo test --test operate man_page`"
    );
}

#[test]
fn the_store_stays_small_over_many_runs() {
    let env = SandboxEnv::start();
    // Keep nothing delivered: every run purges what the last one delivered.
    let config = std::fs::read_to_string(env.dir.join("connector.toml")).unwrap();
    env.dir.write(
        "connector.toml",
        config.replace("retention_days = 30", "retention_days = 0"),
    );
    env.connector(&["init", "--yes"]).expect_exit(0);
    env.connector(&["sync"]).expect_exit(0);
    let items: Vec<String> = env.acumatica_state()["entities"]["stock_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InventoryID"].as_str().unwrap().to_string())
        .collect();
    let size = |env: &SandboxEnv| {
        let db = std::fs::metadata(env.dir.join("connector.db"))
            .unwrap()
            .len();
        let wal = std::fs::metadata(env.dir.join("connector.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        db + wal
    };
    let mut sizes = Vec::new();
    for round in 0..12 {
        let prices: serde_json::Map<String, Value> = items
            .iter()
            .map(|i| (i.clone(), json!(10.0 + round as f64)))
            .collect();
        env.acumatica_control("mass-price-update", json!({ "prices": prices }));
        env.connector(&["sync", "--full"]).expect_exit(0);
        sizes.push(size(&env));
    }
    let status = json_of(&env.connector(&["status", "--json"]).expect_exit(0));
    assert_eq!(
        status["queue"]["delivered"], 0,
        "delivered messages are purged"
    );
    // After the first rounds fill the pages, the file stops growing.
    assert!(
        sizes[11] <= sizes[3] + 64 * 1024,
        "the store grew: {sizes:?}"
    );
}

#[test]
fn a_queue_larger_than_one_read_chunk_is_delivered_whole() {
    let env = SandboxEnv::with(connector::sandbox::SandboxOptions {
        items: 1500,
        ..Default::default()
    });
    env.connector(&["init", "--yes"]).expect_exit(0);
    // Items first: a price needs its product.
    let report = json_of(
        &env.connector(&["sync", "--entity", "items", "--entity", "prices", "--json"])
            .expect_exit(0),
    );
    assert_eq!(report["entities"]["items"]["delivered"], 1500, "{report}");
    assert_eq!(report["entities"]["prices"]["collected"], 1500, "{report}");
    assert_eq!(report["entities"]["prices"]["delivered"], 1500, "{report}");
    let status = json_of(&env.connector(&["status", "--json"]).expect_exit(0));
    assert_eq!(status["queue"]["pending"], 0);
}

/// Colour only on a terminal and never with NO_COLOR: piped output has no escape codes, with
/// or without NO_COLOR — the help, a usage error, the debug log and a command's output.
#[test]
fn piped_output_has_no_colour_codes() {
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    for no_color in [false, true] {
        for (args, code) in [
            (&["--help"][..], 0),
            (&["frobnicate"][..], 2),
            (&["status", "--frobnicate"][..], 2),
            (&["-v", "status"][..], 0),
            (&["-vv", "doctor"][..], 0),
        ] {
            let mut command = env.connector(args);
            if !no_color {
                command.cmd.env_remove("NO_COLOR");
            }
            let out = command.expect_exit(code);
            if args[0].starts_with("-v") {
                assert!(
                    out.stderr().contains("DEBUG"),
                    "the debug log is on stderr\n{}",
                    out.report()
                );
            }
            assert!(
                !out.stdout().contains("\x1b[") && !out.stderr().contains("\x1b["),
                "escape codes in piped output (NO_COLOR set: {no_color})\n{}",
                out.report()
            );
        }
    }
}

/// On a terminal (util-linux `script` gives the command one) the log and clap's errors are
/// coloured, and NO_COLOR turns every colour off.
#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);
    let on_terminal = |args: &str, no_color: bool| -> String {
        let mut cmd = std::process::Command::new("script");
        cmd.current_dir(env.dir.path())
            .args([
                "-qec",
                &format!("{} {args}", env!("CARGO_BIN_EXE_connector")),
                "/dev/null",
            ])
            .stdin(std::process::Stdio::null())
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("CONNECTOR_CONFIG");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("run script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in ["-v status", "frobnicate"] {
        let coloured = on_terminal(args, false);
        assert!(
            coloured.contains("\x1b["),
            "no colour on a terminal: {coloured:?}"
        );
        let plain = on_terminal(args, true);
        assert!(
            !plain.contains("\x1b["),
            "colour despite NO_COLOR: {plain:?}"
        );
        assert!(!plain.trim().is_empty());
    }
}
