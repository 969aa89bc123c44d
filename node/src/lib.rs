//! mpic-node: a remote network perspective for Multi-Perspective Issuance Corroboration
//! (CA/Browser Forum BR 3.2.2.9). See `ARCHITECTURE.md` for the map of modules.
#![forbid(unsafe_code)]

pub mod audit;
pub mod check;
pub mod checks;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod dispatch;
pub mod dns;
pub mod doctor;
pub mod egress;
pub mod http;
#[cfg(test)]
mod layering;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod openmpic;
pub mod quic;
pub mod reload;
pub mod service;
pub mod shutdown;
pub mod signing;
