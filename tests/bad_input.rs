//! Bad input the binary must refuse with one line (what, where, what to do), its exit code,
//! and no damage to the store: what tests/cli.rs does not already cover (it has TOML syntax,
//! unknown keys, wrong types, missing keys, bad values, a file that is not SQLite, a store from
//! a newer schema version). Here: a missing secret, an unreadable config path, a config that
//! is not UTF-8, a store path that is a folder or under a file, a read-only folder and a full
//! disk. Plus property tests of the config loader (arbitrary TOML text, arbitrary values for
//! every known key). Budget: under 20 s.
//!
//! The full disk and the read-only folder are real: when this process may mount (root, as in
//! the project's sandbox and CI container), the store lives on a tmpfs of 512 KiB that a filler
//! file fills to the last byte, or that is remounted read-only. Without that right the same
//! tests fall back to what an unprivileged user can do faithfully: RLIMIT_FSIZE of 0 (the kernel refuses every write that would grow a file, EFBIG, as a full disk
//! refuses it with ENOSPC) and a folder of mode 0555. The test prints which one it used.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use util::{TestDir, example_config, example_config_with};

/// Every row of every table, in order: the store's content, compared before and after.
fn content(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("the store still opens");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "the store is damaged");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut rows = Vec::new();
    for table in tables {
        let mut statement = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .unwrap();
        let n = statement.column_count();
        let mut query = statement.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

#[test]
fn a_missing_secret_is_named_with_its_environment_variable_and_exit_2() {
    let dir = TestDir::new();
    dir.write(
        "connector.toml",
        example_config_with("password = \"change-me\"", "password = \"\""),
    );
    // init talks to Acumatica: it needs the password before anything is sent.
    dir.command(&["init", "--yes"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("connector.toml: `acumatica.password`: missing required secret")
        .stderr_has("CONNECTOR_ACUMATICA_PASSWORD");
    let dir = TestDir::new();
    dir.write(
        "connector.toml",
        example_config_with("access_token = \"change-me\"", ""),
    );
    dir.command(&["init", "--yes"])
        .env("CONNECTOR_ACUMATICA_PASSWORD", "x")
        .expect_exit(2);
    // The receiver cannot run without its shared secret.
    let dir = TestDir::new();
    dir.write(
        "connector.toml",
        example_config_with("secret = \"change-me\"", ""),
    );
    dir.command(&["listen"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("`receiver.secret`")
        .stderr_has("CONNECTOR_RECEIVER_SECRET");
}

#[test]
fn an_unreadable_config_path_or_a_config_that_is_not_text_is_one_line_exit_2() {
    let dir = TestDir::new();
    std::fs::create_dir(dir.join("folder.toml")).unwrap();
    dir.command(&["--config", "folder.toml", "status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("folder.toml: cannot read the config file");
    dir.write("binary.toml", [0xff, 0xfe, 0x00, 0x5b, 0x80, 0x0a]);
    dir.command(&["--config", "binary.toml", "status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("binary.toml: cannot read the config file");
    dir.command(&["--config", "missing/connector.toml", "status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("config file not found");
    assert!(!dir.join("connector.db").exists());
}

#[test]
fn a_store_path_that_is_a_folder_or_under_a_file_is_one_line_exit_2() {
    let dir = TestDir::new();
    std::fs::create_dir(dir.join("state")).unwrap();
    dir.write(
        "connector.toml",
        example_config_with("path = \"connector.db\"", "path = \"state\""),
    );
    let out = dir.command(&["status"]).expect_exit(2);
    out.one_line_error().stderr_has("state");
    dir.write("plain-file", "not a folder");
    dir.write(
        "connector.toml",
        example_config_with(
            "path = \"connector.db\"",
            "path = \"plain-file/connector.db\"",
        ),
    );
    dir.command(&["status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("plain-file");
    assert_eq!(
        std::fs::read_to_string(dir.join("plain-file")).unwrap(),
        "not a folder"
    );
}

/// A small file system for the store: a tmpfs when mounting is allowed, else a plain folder
/// (the caller then uses the unprivileged fallback). Unmounted on drop.
struct SmallFs {
    _dir: TestDir,
    root: PathBuf,
    mounted: bool,
}

impl SmallFs {
    fn new() -> SmallFs {
        let dir = TestDir::new();
        let root = dir.join("fs");
        std::fs::create_dir(&root).unwrap();
        // CONNECTOR_TEST_NO_MOUNT=1 exercises the unprivileged fallback where mounting works.
        let mounted = std::env::var_os("CONNECTOR_TEST_NO_MOUNT").is_none()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
                .arg(&root)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        SmallFs {
            _dir: dir,
            root,
            mounted,
        }
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only");
    }

    /// Fills the file system to its last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.root.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&[0]).is_ok() {}
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.root).status();
        }
    }
}

/// A config and a store with some content (a queued catch-up) on `fs`.
fn store_with_content(fs: &SmallFs) -> (TestDir, PathBuf) {
    let dir = TestDir::new();
    let db = fs.root.join("connector.db");
    dir.write(
        "connector.toml",
        example_config_with(
            "path = \"connector.db\"",
            &format!("path = \"{}\"", db.display()),
        ),
    );
    dir.command(&["resync", "--entity", "items"]).expect_exit(0);
    // Checkpointed, so the content is in the main file and the WAL is empty.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    (dir, db)
}

/// Runs `resync --entity prices` (a write) with the store's files unable to grow.
fn refused_write(dir: &TestDir, db: &Path, limit_file_size: bool) -> util::RunOutput {
    let mut command = dir.command(&["resync", "--entity", "prices"]);
    if limit_file_size {
        // No file may grow by a byte: the WAL (where every write goes first) and the -shm
        // index start empty, so nothing new fits, as on a disk without a free block.
        let _ = db;
        let limit: libc::rlim_t = 0;
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command.output()
}

#[test]
fn a_full_disk_fails_the_command_with_one_line_and_leaves_the_store_as_it_was() {
    let fs = SmallFs::new();
    println!(
        "full disk simulated with {}",
        if fs.mounted {
            "a 512 KiB tmpfs filled to the last byte"
        } else {
            "RLIMIT_FSIZE 0 (mount not permitted)"
        }
    );
    let (dir, db) = store_with_content(&fs);
    let before = content(&db);
    assert!(!before.is_empty());
    if fs.mounted {
        fs.fill();
    }
    let out = refused_write(&dir, &db, !fs.mounted);
    assert_ne!(out.output.status.code(), Some(0), "{}", out.report());
    assert!(
        out.output.status.code().is_some(),
        "killed by a signal\n{}",
        out.report()
    );
    out.one_line_error().stderr_has("connector.db");
    let stderr = out.stderr();
    println!("exit {:?}: {}", out.output.status.code(), stderr.trim());
    assert!(
        stderr.contains("free space") || stderr.contains("full"),
        "the error does not say what to do\n{}",
        out.report()
    );
    if fs.mounted {
        std::fs::remove_file(fs.root.join("filler")).unwrap();
    }
    assert_eq!(content(&db), before, "the failed command changed the store");
    // With space again, the same command works.
    dir.command(&["resync", "--entity", "prices"])
        .expect_exit(0);
}

#[test]
fn a_read_only_folder_fails_the_command_with_one_line_and_leaves_the_store_as_it_was() {
    let fs = SmallFs::new();
    let (dir, db) = store_with_content(&fs);
    let before = content(&db);
    let before_bytes = std::fs::read(&db).unwrap();
    if fs.mounted {
        fs.remount_read_only();
    } else if unsafe { libc::geteuid() } == 0 {
        // SAFETY (above): geteuid cannot fail. Root ignores file modes: nothing to simulate.
        println!("skipped: root ignores file modes and mounting is not permitted");
        return;
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(&fs.root, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let out = dir.command(&["resync", "--entity", "prices"]).output();
    assert_eq!(out.output.status.code(), Some(2), "{}", out.report());
    println!("exit 2: {}", out.stderr().trim());
    out.one_line_error()
        .stderr_has("connector.db")
        .stderr_has("writable");
    assert_eq!(std::fs::read(&db).unwrap(), before_bytes);
    assert_eq!(content(&db), before);
}

// ---- the config loader, property tests ----

/// Every key the loader knows, with a plausible value, as in connector.toml.example.
fn known_keys() -> Vec<(&'static str, &'static str)> {
    vec![
        ("store", "path"),
        ("store", "retention_days"),
        ("acumatica", "url"),
        ("acumatica", "tenant"),
        ("acumatica", "branch"),
        ("acumatica", "auth"),
        ("acumatica", "username"),
        ("acumatica", "password"),
        ("acumatica", "client_id"),
        ("acumatica", "client_secret"),
        ("acumatica", "endpoint"),
        ("acumatica", "timezone"),
        ("acumatica", "prefix"),
        ("acumatica", "max_sessions"),
        ("acumatica", "max_concurrent_requests"),
        ("acumatica", "requests_per_minute"),
        ("magento", "url"),
        ("magento", "store_code"),
        ("magento", "auth"),
        ("magento", "access_token"),
        ("magento", "inventory_api"),
        ("magento", "max_concurrent_requests"),
        ("receiver", "listen"),
        ("receiver", "public_url"),
        ("receiver", "header_name"),
        ("receiver", "secret"),
        ("receiver", "max_body_bytes"),
        ("sync", "batch_size"),
        ("sync", "max_attempts"),
        ("sync", "overlap_seconds"),
        ("entities", "items"),
        ("items", "visibility"),
        ("items", "website_ids"),
        ("items", "create_only"),
        ("inventory", "quantity"),
        ("orders", "order_type"),
        ("orders", "page_size"),
        ("orders", "tax_mode"),
        ("customers", "guests"),
        ("customers", "id_prefix"),
        ("shipments", "default_carrier"),
    ]
}

/// A TOML value of any kind, including the awkward ones.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        ".{0,40}".prop_map(|s| toml_string(&s)),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        proptest::collection::vec(any::<u32>(), 0..4).prop_map(|v| format!("{v:?}")),
        Just("[\"a\", 1]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("\"http://\"".to_string()),
        Just("\"0.0.0.0:0\"".to_string()),
        Just("\"https://[::1]:99999\"".to_string()),
    ]
}

fn toml_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\u{:04X}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The loader's contract for any input: no panic; a refusal is one line naming the file.
fn check_loader(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/etc/connector/connector.toml");
    let outcome = std::panic::catch_unwind(|| {
        connector::config::Config::parse(text, file, &|_| None).map(|c| format!("{c:?}"))
    });
    let outcome = outcome.map_err(|_| TestCaseError::fail(format!("panicked on:\n{text}")))?;
    match outcome {
        Ok(debug) => {
            prop_assert!(!debug.contains("change-me"), "Debug shows a secret");
        }
        Err(e) => {
            let line = e.to_string();
            prop_assert!(!line.contains('\n'), "more than one line: {line:?}");
            prop_assert!(
                line.starts_with("/etc/connector/connector.toml"),
                "does not name the file: {line}"
            );
            prop_assert!(line.len() < 2000, "too long: {line}");
        }
    }
    Ok(())
}

/// Sets `key` in `[table]` of the example (replacing it when present, else adding it).
fn with_value(table: &str, key: &str, value: &str) -> String {
    let example = example_config();
    let mut out = String::new();
    let mut in_table = false;
    let mut done = false;
    for line in example.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if in_table && !done {
                out.push_str(&format!("{key} = {value}\n"));
                done = true;
            }
            in_table = trimmed.trim_end() == format!("[{table}]");
        }
        if in_table && !done && trimmed.starts_with(&format!("{key} =")) {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !done {
        if !in_table {
            out.push_str(&format!("\n[{table}]\n"));
        }
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_value_for_a_known_key_is_accepted_or_refused_in_one_line(
        index in 0..known_keys().len(),
        value in toml_value(),
    ) {
        let (table, key) = known_keys()[index];
        check_loader(&with_value(table, key, &value))?;
    }

    #[test]
    fn arbitrary_text_is_accepted_or_refused_in_one_line(text in "(?s).{0,400}") {
        check_loader(&text)?;
    }

    #[test]
    fn the_example_cut_or_spliced_anywhere_is_refused_in_one_line(
        cut in 0usize..7000,
        insert in "[\\[\\]=\"{}#\\n a-z0-9.]{0,12}",
    ) {
        let example = example_config();
        let mut at = cut.min(example.len());
        while !example.is_char_boundary(at) {
            at -= 1;
        }
        let text = format!("{}{insert}{}", &example[..at], &example[at..]);
        check_loader(&text)?;
    }
}

// ---- the clients' reply decoders, property tests ----

/// What the fake server answers to every API call (logins and logouts always succeed).
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

struct FakeServer {
    runtime: tokio::runtime::Runtime,
    url: String,
    answer: std::sync::Arc<std::sync::Mutex<Answer>>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let answer = std::sync::Arc::new(std::sync::Mutex::new(Answer {
            status: 200,
            content_type: "application/json",
            body: b"{}".to_vec(),
        }));
        let shared = answer.clone();
        let url = runtime.block_on(async move {
            let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                let shared = shared.clone();
                async move {
                    use axum::response::IntoResponse;
                    if uri.path().ends_with("/entity/auth/login")
                        || uri.path().ends_with("/entity/auth/logout")
                    {
                        return axum::http::StatusCode::NO_CONTENT.into_response();
                    }
                    let a = shared.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(a.status).unwrap(),
                        [(axum::http::header::CONTENT_TYPE, a.content_type)],
                        a.body,
                    )
                        .into_response()
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}")
        });
        FakeServer {
            runtime,
            url,
            answer,
        }
    }

    fn config(&self) -> connector::config::Config {
        let text = example_config()
            .replacen(
                "url = \"https://erp.example.com/AcumaticaERP\"",
                &format!("url = \"{}/AcumaticaERP\"", self.url),
                1,
            )
            // Unpaced: the per-minute pace would make each case wait.
            .replacen(
                "requests_per_minute = 300",
                "requests_per_minute = 1000000",
                1,
            )
            .replacen(
                "url = \"https://shop.example.com\"",
                &format!("url = \"{}\"", self.url),
                1,
            );
        connector::config::Config::parse(&text, Path::new("connector.toml"), &|_| None).unwrap()
    }
}

fn one_try() -> connector::http::Backoff {
    connector::http::Backoff {
        base: std::time::Duration::from_millis(1),
        max: std::time::Duration::from_millis(1),
        attempts: 1,
    }
}

/// A reply body: arbitrary bytes, arbitrary JSON, or JSON shaped like each system's errors
/// with hostile parameters.
fn reply_body() -> impl Strategy<Value = Vec<u8>> {
    let json = any_json().prop_map(|v| v.to_string().into_bytes());
    let bytes = proptest::collection::vec(any::<u8>(), 0..4096);
    let magento_error = (
        "[%a-z0-9 \"\n]{0,60}",
        proptest::collection::vec("[%0-9a-z]{0,12}", 0..12),
        any::<bool>(),
    )
        .prop_map(|(message, params, named)| {
            let parameters = if named {
                serde_json::Value::Object(
                    params
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (format!("p{i}"), serde_json::Value::String(p.clone())))
                        .collect(),
                )
            } else {
                serde_json::json!(params)
            };
            serde_json::json!({"message": message, "parameters": parameters,
                               "errors": [{"message": message, "parameters": parameters}]})
            .to_string()
            .into_bytes()
        });
    let acumatica_error = any_json().prop_map(|v| {
        serde_json::json!({"message": "An error has occurred.", "exceptionMessage": v,
                           "modelState": {"a": [v.to_string()]}, "Field": {"error": v}})
        .to_string()
        .into_bytes()
    });
    prop_oneof![json, bytes, magento_error, acumatica_error]
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z%_]{0,10}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn reply_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(400),
        Just(401),
        Just(404),
        Just(412),
        Just(422),
        Just(429),
        Just(500),
        Just(502),
        Just(503),
    ]
}

/// A client's error, as the binary prints it: one line, bounded, naming the call.
fn check_error(error: &str, path: &str) -> Result<(), TestCaseError> {
    prop_assert!(!error.contains('\n'), "more than one line: {error:?}");
    prop_assert!(
        error.chars().count() < 3000,
        "{} characters",
        error.chars().count()
    );
    prop_assert!(error.contains(path), "does not name the call: {error}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_magento_reply_is_a_value_or_one_clear_error(
        status in reply_status(),
        body in reply_body(),
        html in any::<bool>(),
    ) {
        thread_local!(static SERVER: FakeServer = FakeServer::start());
        SERVER.with(|server| -> Result<(), TestCaseError> {
            *server.answer.lock().unwrap() = Answer {
                status,
                content_type: if html { "text/html" } else { "application/json" },
                body,
            };
            let client = connector::magento::MagentoClient::new(&server.config())
                .unwrap()
                .with_backoff(one_try());
            let outcome = server.runtime.block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    client.get(connector::magento::Scope::Store, "/V1/products", &[]),
                )
                .await
            });
            let outcome = outcome.map_err(|_| TestCaseError::fail("hung"))?;
            if let Err(e) = outcome {
                check_error(&e.to_string(), "/V1/products")?;
            } else {
                prop_assert!((200..300).contains(&status));
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_acumatica_reply_is_a_value_or_one_clear_error(
        status in reply_status(),
        body in reply_body(),
    ) {
        thread_local!(static SERVER: FakeServer = FakeServer::start());
        SERVER.with(|server| -> Result<(), TestCaseError> {
            *server.answer.lock().unwrap() = Answer {
                status,
                content_type: "application/json",
                body,
            };
            let client = connector::acumatica::AcumaticaClient::new(&server.config())
                .unwrap()
                .with_backoff(one_try());
            let outcome = server.runtime.block_on(async {
                let got = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    client.get("/StockItem?$top=1"),
                )
                .await;
                client.close().await;
                got
            });
            let outcome = outcome.map_err(|_| TestCaseError::fail("hung"))?;
            if let Err(e) = outcome {
                check_error(&e.to_string(), "/StockItem")?;
            } else {
                prop_assert!((200..400).contains(&status));
            }
            Ok(())
        })?;
    }
}
