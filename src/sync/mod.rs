//! The sync engine's parts (issue: sync part 1). Built so far: the run lock and coalescing;
//! the flows and the `sync` command come with that issue.

pub mod coalesce;
pub mod lock;
