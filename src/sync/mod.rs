//! `connector sync`: the engine shared by every flow, the batch path, and one file per flow.

pub mod bulk;
pub mod coalesce;
pub mod collect;
pub mod customers;
pub mod engine;
pub mod flows;
pub mod inventory;
pub mod items;
pub mod lock;
pub mod magento_collect;
pub mod orders;
pub mod prices;
pub mod shipments;

pub use engine::{EntityCounts, Progress, RunReport, Silent, SyncOptions, run};
