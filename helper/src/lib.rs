//! hermes-s6-helper: the only privileged part of hermes-s6. `main.rs` reads
//! top to bottom in the order the helper runs; these modules are its steps.
//! The library exists so the grammar and the payload parser can be tested
//! and fuzzed on their own.

pub mod audit;
pub mod config;
pub mod exit;
pub mod fsx;
pub mod payload;
pub mod process;
pub mod request;
pub mod slot;
