//! `connector status`: the life-cycle state, its history and the queue.

use anyhow::Context;
use serde::Serialize;

use crate::cli::ReportArgs;
use crate::config::Config;
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

pub fn run(args: ReportArgs, config: &Config) -> anyhow::Result<()> {
    let store = Store::open(&config.store.path)?;
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
