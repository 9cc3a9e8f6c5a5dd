//! `netsql netstat [FLAGS]`: the classic netstat views. Each view's rows come from a saved
//! query (`netstat_inet`, `netstat_unix`, `netstat_programs`, `netstat_routes`,
//! `netstat_interfaces`, `netstat_statistics`, `netstat_groups`); this module parses the
//! flags, sets the views' parameters and projection, and reads their rows; `layout`
//! prints them as net-tools netstat 2.10 does.

pub mod flags;
#[cfg(feature = "sql")]
pub mod layout;
#[cfg(feature = "sql")]
pub mod rows;
mod sentences;
pub mod stats;
#[cfg(feature = "sql")]
mod views;

pub use flags::Flags;
#[cfg(feature = "sql")]
pub use views::{run, Rendering};
