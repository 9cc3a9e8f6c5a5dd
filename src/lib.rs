//! netsql: a host's sockets, processes and services as SQL tables.
//!
//! Layers, data flowing one way: [`collect`] reads the OS, [`tables`] turns its rows into
//! Arrow, [`catalog`] serves them to DataFusion, [`exec`] runs SQL, [`output`] writes results.
//!
//! Without the default `sql` feature only the readers and parsers build (no DataFusion):
//! that is what the fuzz targets under `fuzz/` link against.

#[cfg(feature = "sql")]
pub mod access;
#[cfg(feature = "sql")]
pub mod audit;
#[cfg(feature = "sql")]
pub mod builtins;
#[cfg(feature = "sql")]
pub mod catalog;
#[cfg(feature = "sql")]
pub mod cli;
pub mod collect;
pub mod doctor;
#[cfg(feature = "sql")]
pub mod error;
#[cfg(feature = "sql")]
pub mod exec;
#[cfg(feature = "sql")]
pub mod fleet;
#[cfg(feature = "sql")]
pub mod functions;
#[cfg(feature = "sql")]
pub mod history;
#[cfg(feature = "sql")]
pub mod interrupt;
#[cfg(feature = "sql")]
pub mod kill;
#[cfg(feature = "sql")]
pub mod metrics;
pub mod netstat;
#[cfg(feature = "sql")]
pub mod output;
pub mod queries;
#[cfg(feature = "sql")]
pub mod repl;
#[cfg(feature = "sql")]
pub mod serve;
#[cfg(feature = "sql")]
pub mod tables;
