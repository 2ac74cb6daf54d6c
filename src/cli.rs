//! The command tree and its flags (clap derive). Parsing only: the work is in `commands`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "connector",
    version,
    about = "Keep an Acumatica ERP tenant and a Magento 2 / Adobe Commerce store in sync.",
    long_about = "Keep an Acumatica ERP tenant and a Magento 2 / Adobe Commerce store in sync.\n\n\
Items, inventory, prices and shipments flow from Acumatica to Magento; customers and orders \
flow from Magento to Acumatica. Start with `connector sandbox` to try it on simulated systems, \
then `connector init` against your own.",
    after_help = "Exit codes: 0 done · 1 a remote system refused or failed · 2 could not start \
(usage, configuration, state) · 3 done, but some records failed · 4 another sync holds the lock."
)]
pub struct Cli {
    /// Configuration file [default: $CONNECTOR_CONFIG, then ./connector.toml]
    #[arg(long, global = true, value_name = "PATH", env = "CONNECTOR_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail on stderr (-v debug, -vv trace); RUST_LOG works too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create in Acumatica the Generic Inquiries, Push Notifications and Automation Schedules
    /// the sync needs (idempotent: repairs drift, never duplicates)
    Init(InitArgs),
    /// Pause sync to Magento (keep monitoring, hold messages) or stop it (turn notifications off)
    Deactivate(DeactivateArgs),
    /// Resume sync after `deactivate`: release held messages, or re-enable notifications and
    /// catch up on what changed while stopped
    Activate(ActivateArgs),
    /// Delete every object `init` created in Acumatica (only from the stopped state)
    Uninstall(ConfirmArgs),
    /// Move changed data between the systems (run it from cron)
    Sync(SyncArgs),
    /// Show the connector's state, remote objects, queue and last run
    Status(StatusArgs),
    /// Receive Acumatica's push notifications into the durable queue
    Listen(ListenArgs),
    /// Run a simulated Acumatica and Magento on loopback until Ctrl-C
    Sandbox(SandboxArgs),
    /// Walk the whole life cycle against a sandbox, in one command
    Demo,
    /// List failed and dead records; retry or skip them
    Failed(FailedArgs),
    /// Past sync runs with their counts and outcome
    History(HistoryArgs),
    /// Which Acumatica record is which Magento record
    Mappings(MappingsArgs),
    /// Queue a full or dated re-read of one entity
    Resync(ResyncArgs),
    /// Check the configuration, the store, both logins, the objects in Acumatica, the lock,
    /// the clocks and (with --push-test) a push notification end to end
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also change the connector's test stock item in Acumatica and wait for its push
    /// notification to reach the store (needs `connector listen` running)
    #[arg(long)]
    pub push_test: bool,
    /// With --push-test: how long to wait for the notification, in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        requires = "push_test"
    )]
    pub timeout: u64,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Exit 1 with one line saying why when something needs attention (dead records, no
    /// successful sync within --max-age, the connector stopped): for cron mail and monitoring
    #[arg(long)]
    pub check: bool,
    /// With --check: the oldest acceptable last successful sync, in minutes
    #[arg(long, value_name = "MINUTES", default_value_t = 60, requires = "check")]
    pub max_age: u64,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FailedArgs {
    #[command(subcommand)]
    pub action: Option<FailedAction>,
    /// Only this entity
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum FailedAction {
    /// Send failed or dead records back to the queue, attempts reset
    Retry {
        /// Message ids (from `connector failed`)
        ids: Vec<i64>,
        /// Every failed and dead record (of --entity)
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Only this entity
        #[arg(long, value_name = "NAME")]
        entity: Option<String>,
    },
    /// Give up on records for good; they are kept, with the reason, for audit
    Skip {
        /// Message ids (from `connector failed`)
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Why (kept with the record)
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub action: Option<HistoryAction>,
    /// How many runs
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// One run, with the records that failed during it
    Show {
        /// The run id (from `connector history`)
        run: i64,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MappingsArgs {
    #[command(subcommand)]
    pub action: Option<MappingsAction>,
    /// Only this entity
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// Only the pair with this key (either side)
    #[arg(long, value_name = "KEY")]
    pub find: Option<String>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MappingsAction {
    /// Forget one pair: the record is sent in full by the next sync that sees it
    Forget {
        /// The entity (items, prices, inventory, …)
        entity: String,
        /// Its key on either side
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The entity to re-read
    #[arg(long, value_name = "NAME")]
    pub entity: String,
    /// Re-read what changed since then (RFC 3339, e.g. 2026-11-01T00:00:00Z); default: everything
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Answer yes to the confirmation (for scripts)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    /// Print what would be created or repaired, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DeactivateMode {
    /// Keep monitoring and hold every message bound for Magento until `activate`
    #[arg(long)]
    pub pause: bool,
    /// Turn push notifications and schedules off until `activate`
    #[arg(long)]
    pub stop: bool,
}

#[derive(Debug, Args)]
pub struct DeactivateArgs {
    #[command(flatten)]
    pub mode: DeactivateMode,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// From `stopped`: do not queue the catch-up of what changed while stopped
    #[arg(long)]
    pub no_catch_up: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this entity (items, inventory, prices, customers, orders, shipments); repeatable
    #[arg(long = "entity", value_name = "NAME")]
    pub entities: Vec<String>,
    /// Deliver at most N records per entity
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Show what would be sent; send nothing, change no state
    #[arg(long)]
    pub dry_run: bool,
    /// Re-read everything, not only what changed since the last run
    #[arg(long)]
    pub full: bool,
    /// With --full: send product saves through Magento's asynchronous bulk API
    /// (`/async/bulk/V1/products`, `[magento] bulk_size` per request) and poll their status;
    /// needs the store's `async.operations.all` consumer running. For initial loads.
    #[arg(long, requires = "full")]
    pub bulk: bool,
    /// Print the run's counts as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to bind [default: receiver.listen from the config]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (loopback only); port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Also write a ready-to-use connector.toml for the sandbox here
    #[arg(long, value_name = "PATH")]
    pub write_config: Option<PathBuf>,
    /// Answer every API request N milliseconds after it arrives (handled at once)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction (0 to 1) of API requests answered with a server error
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Seed for generated data and faults (same seed, same run)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Number of stock items / products to generate
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub items: usize,
    /// Number of Magento orders to generate at start. Their SKUs (SB-0001…) are in Magento's
    /// seeded catalogue only, so `connector sync` fails them as unknown in Acumatica — a way to
    /// see failed records; for orders that import, sync once, then place one with
    /// `POST /__sandbox/orders` naming a synced SKU (see docs/sandbox.md)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub orders: usize,
}
