//! The binary as a user meets it: help, version, exit codes, every configuration mistake,
//! store refusals. Budget: under 10 s.

mod util;

use util::{TestDir, example_config, example_config_with};

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let dir = TestDir::new();
    let out = dir.command(&["--help"]).expect_exit(0);
    for command in [
        "init",
        "deactivate",
        "activate",
        "uninstall",
        "sync",
        "status",
        "listen",
        "sandbox",
        "demo",
    ] {
        out.stdout_has(&format!("  {command} "));
    }
    out.stdout_has("Exit codes");
}

#[test]
fn every_subcommand_has_help_text() {
    let dir = TestDir::new();
    for command in [
        "init",
        "deactivate",
        "activate",
        "uninstall",
        "sync",
        "status",
        "listen",
        "sandbox",
        "demo",
    ] {
        let out = dir.command(&[command, "--help"]).expect_exit(0);
        out.stdout_has("Usage: connector");
        assert!(
            out.stdout().lines().next().is_some_and(|l| l.len() > 10),
            "{}",
            out.report()
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let dir = TestDir::new();
    dir.command(&["--version"])
        .expect_exit(0)
        .stdout_has(&format!("connector {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn deactivate_needs_exactly_one_of_pause_and_stop() {
    let dir = TestDir::new();
    dir.command(&["deactivate"])
        .expect_exit(2)
        .stderr_has("--pause");
    dir.command(&["deactivate", "--pause", "--stop"])
        .expect_exit(2)
        .stderr_has("cannot be used with");
}

#[test]
fn unknown_command_and_flag_are_usage_errors() {
    let dir = TestDir::new();
    dir.command(&["frobnicate"]).expect_exit(2);
    dir.command(&["status", "--frobnicate"]).expect_exit(2);
}

#[test]
fn the_demo_walks_the_life_cycle_and_exits_0_leaving_nothing_running() {
    let dir = TestDir::new();
    let out = dir.command(&["demo"]).expect_exit(0);
    for line in [
        "connector init --yes: 10 objects created",
        "a push notification arrives",
        "connector sync: Acumatica sales order",
        "has 1 shipment with tracking number",
        "connector deactivate --pause",
        "message(s) held",
        "connector activate",
        "connector deactivate --stop",
        "nothing is left running",
    ] {
        out.stdout_has(line);
    }
}

#[test]
fn status_on_a_new_store_reports_uninitialized() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    let out = dir.command(&["status", "--json"]).expect_exit(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout()).expect("status --json");
    assert_eq!(report["state"], "uninitialized", "{}", out.report());
    assert_eq!(report["queue"]["pending"], 0);
    // The store path resolves against the config file's folder, not the working directory.
    assert!(dir.join("connector.db").exists(), "{}", out.report());
    dir.command(&["status"])
        .expect_exit(0)
        .stdout_has("state:  uninitialized");
}

#[test]
fn config_defaults_to_the_environment_then_the_working_directory() {
    let dir = TestDir::new();
    dir.write("elsewhere/my.toml", example_config());
    dir.command(&["status", "--json"])
        .env(
            "CONNECTOR_CONFIG",
            dir.join("elsewhere/my.toml").to_str().unwrap(),
        )
        .expect_exit(0);
    assert!(dir.join("elsewhere/connector.db").exists());
    // Neither: ./connector.toml, which is missing here.
    let empty = TestDir::new();
    empty
        .command(&["status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("connector.toml: config file not found");
}

/// Each mistake: (replace this, with that) in the example → the one line it must produce;
/// `{line}` stands for the line the replaced text is on, so new example keys move nothing.
const CONFIG_MISTAKES: &[(&str, &str, &str)] = &[
    // TOML syntax, with its line.
    (
        "[sync]",
        "[sync",
        "connector.toml:{line}: TOML syntax error",
    ),
    // Unknown key, with the closest known key.
    (
        "password = \"change-me\"",
        "pasword = \"x\"",
        "connector.toml:{line}: `acumatica.pasword`: unknown key; did you mean `password`?",
    ),
    (
        "[entities]",
        "[entitie]",
        "`entitie`: unknown key; did you mean `entities`?",
    ),
    // Wrong type.
    (
        "batch_size = 100",
        "batch_size = \"ten\"",
        "connector.toml:{line}: `sync.batch_size`: invalid type: string \"ten\"",
    ),
    (
        "items = true",
        "items = 1",
        "`entities.items`: invalid type: integer `1`, expected a boolean",
    ),
    // Missing required key.
    (
        "tenant = \"Company\"",
        "",
        "`acumatica.tenant`: missing required key",
    ),
    (
        "public_url = \"https://connector.example.com/push\"",
        "",
        "`receiver.public_url`: missing required key",
    ),
    // Not an http(s) URL.
    (
        "url = \"https://erp.example.com/AcumaticaERP\"",
        "url = \"ftp://erp.example.com\"",
        "`acumatica.url`: \"ftp://erp.example.com\" is not an http(s) URL",
    ),
    (
        "url = \"https://shop.example.com\"",
        "url = \"shop.example.com\"",
        "`magento.url`: \"shop.example.com\" is not an http(s) URL",
    ),
    // Unknown time zone.
    (
        "timezone = \"America/New_York\"",
        "timezone = \"Mars/Olympus\"",
        "`acumatica.timezone`: unknown time zone \"Mars/Olympus\"",
    ),
    // Enumerations and ranges.
    (
        "auth = \"session\"",
        "auth = \"sesion\"",
        "`acumatica.auth`: unknown variant `sesion`, expected `session` or `oauth2`",
    ),
    (
        "inventory_api = \"msi\"",
        "inventory_api = \"both\"",
        "`magento.inventory_api`: unknown variant `both`",
    ),
    (
        "bulk_size = 100",
        "bulk_size = 0",
        "connector.toml:{line}: `magento.bulk_size`: must be at least 1",
    ),
    (
        "max_sessions = 2",
        "max_sessions = 0",
        "connector.toml:{line}: `acumatica.max_sessions`: must be at least 1",
    ),
    (
        "prefix = \"MC\"",
        "prefix = \"M-C\"",
        "`acumatica.prefix`: \"M-C\" must be 1 to 8 letters or digits",
    ),
    (
        "listen = \"127.0.0.1:8700\"",
        "listen = \"localhost\"",
        "`receiver.listen`: \"localhost\" is not an address and port",
    ),
    (
        "header_name = \"X-Connector-Secret\"",
        "header_name = \"X Secret\"",
        "`receiver.header_name`: \"X Secret\" is not a valid HTTP header name",
    ),
];

#[test]
fn every_config_mistake_gets_one_line_naming_file_line_and_key_and_exit_2() {
    for (from, to, expected) in CONFIG_MISTAKES {
        let dir = TestDir::new();
        dir.write("connector.toml", example_config_with(from, to));
        let line = example_config()
            .lines()
            .position(|l| l.contains(from))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("the example lacks {from}"));
        let expected = expected.replace("{line}", &line.to_string());
        let expected = expected.as_str();
        // `status` reads the config first; so does every command that talks to a system.
        for command in [&["status"][..], &["sync"][..]] {
            let out = dir.command(command).expect_exit(2);
            out.one_line_error().stderr_has(expected);
            assert!(
                !dir.join("connector.db").exists(),
                "a bad config must not create the store\n{}",
                out.report()
            );
        }
    }
}

#[test]
fn secrets_never_appear_in_errors_or_verbose_output() {
    let dir = TestDir::new();
    let config = example_config_with("password = \"change-me\"", "password = \"pw-SECRET-1\"")
        .replacen(
            "access_token = \"change-me\"",
            "access_token = \"tok-SECRET-2\"",
            1,
        )
        .replacen("secret = \"change-me\"", "secret = \"rcv-SECRET-3\"", 1)
        // A mistake after the secrets, so the error path runs with them loaded.
        .replacen("batch_size = 100", "batch_size = -5", 1);
    dir.write("connector.toml", &config);
    let out = dir.command(&["-vv", "status"]).expect_exit(2);
    let good = config.replacen("batch_size = -5", "batch_size = 100", 1);
    dir.write("connector.toml", &good);
    let ok = dir.command(&["-vv", "status", "--json"]).expect_exit(0);
    for text in [out.stdout(), out.stderr(), ok.stdout(), ok.stderr()] {
        assert!(!text.contains("SECRET"), "a secret leaked:\n{text}");
    }
}

#[test]
fn a_secret_from_the_environment_wins_and_a_missing_one_is_named() {
    // The library resolves secrets; this checks the rule through its public API.
    use connector::config::Config;
    let text = example_config();
    let file = std::path::Path::new("/etc/connector.toml");
    let env = |name: &str| (name == "CONNECTOR_ACUMATICA_PASSWORD").then(|| "from-env".to_string());
    let config = Config::parse(&text, file, &env).expect("example parses");
    assert_eq!(
        config.acumatica.password.as_ref().unwrap().expose(),
        "from-env"
    );
    assert_eq!(
        config.magento.access_token.as_ref().unwrap().expose(),
        "change-me"
    );
    assert_eq!(config.store.path, std::path::Path::new("/etc/connector.db"));

    let without = text.replacen("password = \"change-me\"", "", 1);
    let config = Config::parse(&without, file, &|_| None).expect("parses without password");
    let err = config
        .require(&config.acumatica.password, "acumatica.password")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`acumatica.password`") && err.contains("CONNECTOR_ACUMATICA_PASSWORD"),
        "{err}"
    );
    assert!(
        !format!("{config:?}").contains("change-me"),
        "Debug shows a secret"
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    let junk = b"this is a spreadsheet, not a database\n".repeat(100);
    dir.write("connector.db", &junk);
    dir.command(&["status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("not a connector state store (not an SQLite database)");
    assert_eq!(std::fs::read(dir.join("connector.db")).unwrap(), junk);
}

#[test]
fn a_store_from_a_newer_version_is_refused_naming_both_versions_and_left_untouched() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    // Create a current store, then make it look like one from a future release.
    dir.command(&["status"]).expect_exit(0);
    let db = dir.join("connector.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let out = dir.command(&["status"]).expect_exit(2);
    out.one_line_error().stderr_has(&format!(
        "schema version 99, newer than this connector's {}",
        connector::store::SCHEMA_VERSION
    ));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the newer store was modified"
    );
}

#[test]
fn sync_before_init_refuses_with_exit_2() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    dir.command(&["sync"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("run `connector init` first");
}

#[test]
fn a_second_sync_exits_4_at_once_while_another_holds_the_lock() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    let held = connector::sync::lock::acquire(&dir.join("connector.db")).unwrap();
    dir.command(&["sync"])
        .expect_exit(4)
        .one_line_error()
        .stderr_has("another `connector sync` is running");
    drop(held);
    dir.command(&["sync"]).expect_exit(2);
}

#[test]
fn sync_rejects_an_unknown_entity() {
    let dir = TestDir::new();
    dir.write("connector.toml", example_config());
    dir.command(&["sync", "--entity", "widgets"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("--entity widgets: not an entity");
}
