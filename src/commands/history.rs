//! `connector history`: past sync runs.

use crate::cli::{HistoryAction, HistoryArgs};
use crate::config::Config;
use crate::error::Failure;
use crate::store::Store;

pub fn run(args: HistoryArgs, config: &Config) -> anyhow::Result<()> {
    let store = Store::open_to_read(&config.store.path)?;
    match args.action {
        None => {
            let runs = store.runs(args.limit)?;
            if args.json {
                println!("{}", serde_json::to_string(&runs)?);
                return Ok(());
            }
            if runs.is_empty() {
                println!("No sync has run yet.");
            }
            for run in &runs {
                let totals = totals(&run.counts);
                println!(
                    "{:>5}  {}  {:<8}  {}",
                    run.id,
                    run.started_at,
                    run.outcome.as_deref().unwrap_or("running?"),
                    totals
                );
            }
        }
        Some(HistoryAction::Show { run, json }) => {
            let Some((summary, failures)) = store.run_failures(run)? else {
                return Err(Failure::CannotStart(format!(
                    "no run {run}: `connector history` lists them"
                ))
                .into());
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "run": summary, "failures": failures })
                );
                return Ok(());
            }
            println!(
                "run {}: {} to {}, {}",
                summary.id,
                summary.started_at,
                summary.finished_at.as_deref().unwrap_or("(did not finish)"),
                summary.outcome.as_deref().unwrap_or("running?")
            );
            println!("{}", serde_json::to_string_pretty(&summary.counts)?);
            for m in &failures {
                println!(
                    "  failed {} {} {}: {}",
                    m.id,
                    m.entity,
                    m.key,
                    m.last_error.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// "12 delivered, 1 failed" over every entity of a run.
fn totals(counts: &serde_json::Value) -> String {
    let mut sums = std::collections::BTreeMap::new();
    for entity in counts.as_object().into_iter().flatten() {
        for (k, v) in entity.1.as_object().into_iter().flatten() {
            *sums.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
        }
    }
    sums.iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}
