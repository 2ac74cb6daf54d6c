//! The Magento 2 admin REST client. DESIGN.md section 7 lists the facts it is built on.

mod client;
mod error;
pub mod oauth1;
pub mod search;

pub use client::{MagentoClient, Scope, segment};
pub use error::{MagentoError, error_message, is_transient_400};
pub use search::{Condition, Filter, SearchCriteria};
