//! Every command the documentation shows exists and runs.
//!
//! Runnable lines are those in fenced blocks tagged `sh`, `shell`, `bash` or `console` (in
//! README.md and docs/*.md) that start with `connector `, `$ connector ` or `cargo run -- `.
//! A `text` block is a synopsis or an output and is not run. Each line is first parsed with
//! the real clap definition (a command or flag that does not exist fails here, whatever
//! block it is in), then run, in document order, through the binary against one sandbox in
//! a temporary folder, and must exit as expected: 0 unless [`EXPECTED`] says otherwise. A
//! line ending in `&` runs in the background until the end (README's `listen &`). In
//! `console` blocks, the lines after a `$ connector … --json` line are its documented output:
//! the real output must have the same keys. Budget: under 30 s.

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use util::sandbox::SandboxEnv;

/// Commands not run (still parsed): they need a terminal's Ctrl-C or run a second sandbox.
/// `connector sandbox` runs until Ctrl-C (tests/sandbox_cli.rs runs it); `connector demo` is
/// tests/cli.rs's. Keep this list short.
const NOT_RUN: &[&str] = &["sandbox", "demo"];

/// Documented lines whose exit code is not 0 against the test's sandbox, and why.
const EXPECTED: &[(&str, i32, &str)] = &[(
    "connector history show 42",
    2,
    "an example id: the test's store has a handful of runs, and a missing run is exit 2",
)];

#[derive(Debug)]
struct DocCommand {
    place: String,
    /// The line as written (prompt and `cargo run --` replaced by `connector`).
    text: String,
    args: Vec<String>,
    background: bool,
    /// In a `console` block: the lines printed after it.
    output: String,
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    let mut files = vec![root.join("README.md")];
    files.extend(docs);
    files
}

/// Splits a shell line into words: quotes respected, stops at a comment, a redirection, a
/// pipe or a list operator; says whether it ends with `&`.
fn shell_words(line: &str) -> (Vec<String>, bool) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut background = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '>' | '<' | '|' | ';' => break,
            '&' => {
                background = chars.peek() != Some(&'&');
                break;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    (words, background)
}

fn extract(file: &Path) -> Vec<DocCommand> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(file)
        .display()
        .to_string();
    let mut commands: Vec<DocCommand> = Vec::new();
    let mut block: Option<String> = None;
    let mut last_in_block: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(tag) = trimmed.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(tag.trim().to_string()),
            };
            last_in_block = None;
            continue;
        }
        let Some(tag) = &block else { continue };
        if !["sh", "shell", "bash", "console"].contains(&tag.as_str()) {
            continue;
        }
        let unprompted = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        let command = if let Some(rest) = unprompted.strip_prefix("cargo run -- ") {
            Some(format!("connector {rest}"))
        } else if unprompted.starts_with("connector ") || unprompted == "connector" {
            Some(unprompted.to_string())
        } else {
            None
        };
        match command {
            Some(command) => {
                let (args, background) = shell_words(&command);
                commands.push(DocCommand {
                    place: format!("{name}:{}", n + 1),
                    text: args.join(" "),
                    args,
                    background,
                    output: String::new(),
                });
                last_in_block = Some(commands.len() - 1);
            }
            None if tag == "console" && !trimmed.starts_with("$ ") => {
                if let Some(i) = last_in_block {
                    commands[i].output.push_str(line);
                    commands[i].output.push('\n');
                }
            }
            None => last_in_block = None,
        }
    }
    commands
}

fn all_commands() -> Vec<DocCommand> {
    doc_files().iter().flat_map(|f| extract(f)).collect()
}

#[test]
fn the_extractor_reads_shell_lines() {
    assert_eq!(
        shell_words(r#"connector failed skip 19 --reason "fixed by hand"  # why"#),
        (
            vec![
                "connector".into(),
                "failed".into(),
                "skip".into(),
                "19".into(),
                "--reason".into(),
                "fixed by hand".into()
            ],
            false
        )
    );
    assert_eq!(
        shell_words("connector listen &          # receive"),
        (vec!["connector".into(), "listen".into()], true)
    );
    assert_eq!(
        shell_words("connector completions zsh  > \"${fpath[1]}/_connector\"").0,
        vec!["connector", "completions", "zsh"]
    );
}

/// A command or flag the docs show that does not exist fails here, with its place.
#[test]
fn every_documented_command_parses() {
    let commands = all_commands();
    assert!(
        commands.len() >= 30,
        "only {} documented commands found: is the extractor broken?",
        commands.len()
    );
    let mut errors = Vec::new();
    for c in &commands {
        if let Err(e) = connector::cli::Cli::try_parse_from(&c.args) {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            errors.push(format!("{}: `{}`: {first}", c.place, c.text));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // And the other way round: every subcommand is shown somewhere.
    use clap::CommandFactory;
    for sub in connector::cli::Cli::command().get_subcommands() {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        assert!(
            commands
                .iter()
                .any(|c| c.args.get(1).map(String::as_str) == Some(name)),
            "no document shows `connector {name}` in a runnable block"
        );
    }
}

/// The keys of a JSON document: an object's, or its first element's for an array.
fn keys(v: &Value) -> Option<Vec<String>> {
    let object = match v {
        Value::Array(items) => items.first()?.as_object()?,
        Value::Object(map) => map,
        _ => return None,
    };
    let mut keys: Vec<String> = object.keys().cloned().collect();
    keys.sort();
    Some(keys)
}

#[test]
fn every_documented_command_runs_against_a_sandbox() {
    let env = SandboxEnv::start();
    let mut background = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in all_commands() {
        let sub = c.args.get(1).map(String::as_str).unwrap_or_default();
        if NOT_RUN.contains(&sub) {
            continue;
        }
        let args: Vec<&str> = c.args[1..].iter().map(String::as_str).collect();
        if c.background {
            let mut command = env.connector(&args).cmd;
            command.stderr(std::process::Stdio::piped());
            let mut child = command.spawn().expect("start a background command");
            // Its stderr stays open (a closed pipe would end it at its next log line).
            let mut stderr = BufReader::new(child.stderr.take().unwrap());
            let mut first = String::new();
            stderr.read_line(&mut first).unwrap();
            background.push((child, stderr));
            continue;
        }
        let expected = EXPECTED
            .iter()
            .find(|(text, _, _)| *text == c.text)
            .map_or(0, |(_, code, _)| *code);
        let started = std::time::Instant::now();
        let out = env.connector(&args).output();
        eprintln!("{:>6} ms  {}", started.elapsed().as_millis(), c.text);
        ran += 1;
        if out.output.status.code() != Some(expected) {
            failures.push(format!(
                "{}: `{}` expected exit {expected}\n{}",
                c.place,
                c.text,
                out.report()
            ));
            continue;
        }
        if c.args.iter().any(|a| a == "--json") && !c.output.trim().is_empty() {
            let documented: Value = match serde_json::from_str(&c.output) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!(
                        "{}: the documented output is not JSON: {e}",
                        c.place
                    ));
                    continue;
                }
            };
            let real: Value = match serde_json::from_str(&out.stdout()) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{}: not JSON ({e})\n{}", c.place, out.report()));
                    continue;
                }
            };
            if let (Some(doc), Some(real)) = (keys(&documented), keys(&real))
                && doc != real
            {
                failures.push(format!(
                    "{}: `{}` documents keys {doc:?}, the real output has {real:?}",
                    c.place, c.text
                ));
            }
        }
    }
    for (mut child, _stderr) in background {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(ran >= 25, "only {ran} documented commands ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
