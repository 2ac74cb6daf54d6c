//! `connector doctor`: run the checks of `crate::doctor` and print one line each.

use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::config;
use crate::doctor::{self, DoctorOptions};
use crate::error::Failure;

pub fn run(args: DoctorArgs, config_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let file = config::config_path(config_file);
    let report = doctor::run(
        &file,
        &DoctorOptions {
            push_test: args.push_test,
            timeout: Duration::from_secs(args.timeout),
        },
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let width = report
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(0);
        for c in &report.checks {
            let hint = c
                .hint
                .as_deref()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            println!(
                "{:<4}  {:<width$}  {}{hint}",
                c.level.as_str(),
                c.check,
                c.detail
            );
        }
        println!(
            "{} OK, {} WARN, {} FAIL",
            report.ok, report.warn, report.fail
        );
    }
    let failed = report.failed();
    if !failed.is_empty() {
        return Err(Failure::CheckFailed(format!(
            "doctor: {} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        ))
        .into());
    }
    Ok(())
}
