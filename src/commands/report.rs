//! Printing a life-cycle command's report: a summary for people, one JSON object for scripts.

use crate::acumatica::admin::Action;
use crate::lifecycle::LifecycleReport;

pub fn print(report: &LifecycleReport, json: bool, quiet: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    if quiet {
        return Ok(());
    }
    for o in &report.objects {
        if o.action == Action::Unchanged && !report.dry_run {
            continue;
        }
        let action = serde_json::to_value(o.action)?
            .as_str()
            .unwrap_or_default()
            .replace('_', " ");
        let drift = if o.drift.is_empty() {
            String::new()
        } else {
            format!(" ({} differed)", o.drift.join(", "))
        };
        println!("  {action:<13} {:<18} {}{drift}", o.kind.as_str(), o.name);
    }
    if report.command == "init" {
        println!(
            "{}{} created, {} repaired, {} unchanged; state: {}",
            if report.dry_run {
                "dry run, nothing changed: would be "
            } else {
                ""
            },
            report.created,
            report.repaired,
            report.unchanged,
            report.state
        );
    } else {
        println!("state: {}", report.state);
    }
    if report.released > 0 {
        println!(
            "released {} held message(s) for the next sync",
            report.released
        );
    }
    if !report.catch_up.is_empty() {
        println!(
            "queued a catch-up of what changed while stopped: {}",
            report.catch_up.join(", ")
        );
    }
    Ok(())
}
