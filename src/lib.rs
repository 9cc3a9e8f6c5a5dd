//! netsql: a host's sockets, processes and services as SQL tables.
//!
//! Layers, data flowing one way: [`collect`] reads the OS, [`tables`] turns its rows into
//! Arrow, [`catalog`] serves them to DataFusion, [`exec`] runs SQL, [`output`] writes results.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod collect;
pub mod error;
pub mod exec;
pub mod functions;
pub mod interrupt;
pub mod netstat;
pub mod output;
pub mod queries;
pub mod repl;
pub mod tables;
