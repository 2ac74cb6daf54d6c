//! `connector sync`: one run of every enabled flow; progress on a terminal, a summary or one
//! JSON object, and the exit code cron and CI act on.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::entities::Entity;
use crate::error::Failure;
use crate::sync::{Progress, SyncOptions};

/// One bar per entity on stderr, when it is a terminal.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Entity, ProgressBar>>,
}

impl Progress for Bars {
    fn shown(&self) -> bool {
        !self.multi.is_hidden()
    }
    fn start(&self, entity: Entity, records: u64) {
        let bar = self.multi.add(ProgressBar::new(records));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(entity.name());
        self.bars.lock().unwrap().insert(entity, bar);
    }
    fn more(&self, entity: Entity, records: u64) {
        if let Some(bar) = self.bars.lock().unwrap().get(&entity) {
            bar.inc_length(records);
        }
    }
    fn advance(&self, entity: Entity, records: u64) {
        if let Some(bar) = self.bars.lock().unwrap().get(&entity) {
            bar.inc(records);
        }
    }
    fn finish(&self, entity: Entity) {
        if let Some(bar) = self.bars.lock().unwrap().get(&entity) {
            bar.finish();
        }
    }
}

pub fn run(args: SyncArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    let mut entities = Vec::new();
    for name in &args.entities {
        let entity = Entity::parse(name).ok_or_else(|| {
            Failure::CannotStart(format!(
                "--entity {name}: not an entity; use items, inventory, prices, shipments, customers or orders"
            ))
        })?;
        entities.push(entity);
    }
    let options = SyncOptions {
        entities,
        limit: args.limit,
        dry_run: args.dry_run,
        full: args.full,
        bulk: args.bulk,
    };
    let multi = MultiProgress::new();
    if quiet || args.json || !std::io::stderr().is_terminal() {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let bars = Bars {
        multi,
        bars: Mutex::new(HashMap::new()),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(crate::sync::run(config, &options, &bars))?;

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if !quiet {
        if let Some(note) = &report.note {
            println!("{note}");
        }
        for (entity, c) in &report.entities {
            if args.dry_run {
                println!(
                    "{entity:>10}: {} read, would send {}, {} skipped",
                    c.collected, c.would_send, c.skipped
                );
            } else {
                println!(
                    "{entity:>10}: {} read, {} delivered, {} skipped, {} failed, {} dead, {} held",
                    c.collected, c.delivered, c.skipped, c.failed, c.dead, c.held
                );
            }
        }
        if report.state == "paused" {
            println!("paused: changes bound for Magento are held until `connector activate`");
        }
    }
    let failed = report.failed_records();
    if failed > 0 {
        return Err(Failure::Partial(format!(
            "{failed} record(s) failed this run; they are retried by later runs (see the log for each error)"
        ))
        .into());
    }
    Ok(())
}
