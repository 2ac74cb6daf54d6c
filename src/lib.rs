//! connector: keeps an Acumatica ERP tenant and a Magento 2 store in sync.
//!
//! The binary (`src/main.rs`) parses the command line and maps errors to exit codes;
//! everything else lives here so tests and benches can call it directly.

pub mod acumatica;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod entities;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod magento;
pub mod push;
pub mod receiver;
pub mod sandbox;
pub mod secret;
pub mod signals;
pub mod store;
pub mod sync;
