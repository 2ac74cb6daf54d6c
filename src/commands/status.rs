//! `connector status`: the life-cycle state, its history and the queue.

use anyhow::Context;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::error::Failure;
use crate::store::{Lifecycle, QueueCounts, RemoteObject, RunSummary, Store, Transition};

#[derive(Serialize)]
struct StatusReport {
    state: &'static str,
    since: String,
    transitions: Vec<Transition>,
    remote_objects: Vec<RemoteObject>,
    queue: QueueCounts,
    last_run: Option<RunSummary>,
    /// The push receiver's counters: accepted, duplicates, rejected_<reason>.
    receiver: std::collections::BTreeMap<String, u64>,
    store: String,
}

pub fn run(args: StatusArgs, config: &Config) -> anyhow::Result<()> {
    let store = Store::open_to_read(&config.store.path)?;
    let Lifecycle { state, since, .. } =
        store.lifecycle().context("reading the life-cycle state")?;
    let report = StatusReport {
        state: state.as_str(),
        since,
        transitions: store
            .transitions(5)
            .context("reading the life-cycle history")?,
        remote_objects: store
            .remote_objects()
            .context("reading the remote objects")?,
        queue: store.queue_counts().context("reading the queue")?,
        last_run: store.last_run().context("reading the last run")?,
        receiver: store
            .receiver_counts()
            .context("reading the receiver's counters")?,
        store: store.path().display().to_string(),
    };
    if args.check {
        return check(&store, &report, args.max_age);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("state:  {} (since {})", report.state, report.since);
    if report.state == "uninitialized" {
        println!("        run `connector init` to prepare Acumatica for sync");
    }
    let q = &report.queue;
    println!(
        "queue:  {} pending, {} held, {} failed, {} dead, {} skipped, {} delivered",
        q.pending, q.held, q.failed, q.dead, q.skipped, q.delivered
    );
    match &report.last_run {
        Some(run) => println!(
            "last sync: run {} started {}, {}",
            run.id,
            run.started_at,
            run.outcome.as_deref().unwrap_or("did not finish")
        ),
        None => println!("last sync: never"),
    }
    if !report.remote_objects.is_empty() {
        println!("objects in Acumatica (as last seen):");
        for o in &report.remote_objects {
            println!(
                "  {:<18} {:<24} {}",
                o.kind,
                o.name,
                if o.active { "active" } else { "inactive" }
            );
        }
    }
    if !report.receiver.is_empty() {
        let counts: Vec<String> = report
            .receiver
            .iter()
            .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
            .collect();
        println!("push:   {}", counts.join(", "));
    }
    if !report.transitions.is_empty() {
        println!("recent transitions:");
        for t in &report.transitions {
            println!("  {}  {} -> {}  ({})", t.at, t.from, t.to, t.command);
        }
    }
    println!("store:  {}", report.store);
    Ok(())
}

/// `status --check`: one line and exit 1 when something needs attention, for cron mail and
/// monitoring; "OK …" and exit 0 otherwise.
fn check(store: &Store, report: &StatusReport, max_age_minutes: u64) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if report.queue.dead > 0 {
        problems.push(format!(
            "{} dead record(s): see `connector failed`",
            report.queue.dead
        ));
    }
    match report.state {
        "stopped" => {
            problems.push("the connector is stopped: `connector activate` resumes it".into())
        }
        "uninitialized" => {
            problems.push("the connector is not initialized: run `connector init`".into())
        }
        _ => {}
    }
    if report.state == "active" || report.state == "paused" {
        match store.last_successful_run()? {
            None => problems.push("no sync has completed yet".into()),
            Some(run) => {
                let at = run.finished_at.as_deref().unwrap_or(&run.started_at);
                let age = chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .unwrap_or_default();
                if age > chrono::Duration::minutes(max_age_minutes as i64) {
                    problems.push(format!(
                        "the last successful sync finished {} minute(s) ago (limit {max_age_minutes})",
                        age.num_minutes()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        println!(
            "OK: {}, {} pending, {} failed, no dead records",
            report.state, report.queue.pending, report.queue.failed
        );
        return Ok(());
    }
    Err(Failure::CheckFailed(problems.join("; ")).into())
}
