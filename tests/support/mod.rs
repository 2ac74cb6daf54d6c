//! Helpers shared by the integration tests (`mod support;` in a file under `tests/`).
//!
//! Each test binary compiles this module on its own and uses a different part of it, so
//! unused-item warnings would be noise here.
#![allow(dead_code)]

pub mod openapi;
pub mod proxy;
