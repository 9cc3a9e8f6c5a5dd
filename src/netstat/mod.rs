//! `netsql netstat [FLAGS]`: the classic netstat views. Each view's rows come from a saved
//! query (`netstat_inet`, `netstat_unix`, `netstat_programs`, `netstat_routes`,
//! `netstat_interfaces`, `netstat_statistics`, `netstat_groups`); this module only picks
//! the query, turns the flags into a projection and filters around it, and prints the
//! rows in net-tools netstat 2.10's layout.

pub mod flags;
#[cfg(feature = "sql")]
mod render;
mod sentences;
pub mod stats;
#[cfg(feature = "sql")]
mod views;

pub use flags::Flags;
#[cfg(feature = "sql")]
pub use views::{run, Out};
