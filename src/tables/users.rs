//! `users`: accounts from /etc/passwd.

use datafusion::error::DataFusionError;

use super::columns::{uint32, utf8};
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::passwd::{self, User};

pub struct Users(pub Vec<User>);

impl Snapshot for Users {
    fn num_rows(&self) -> usize {
        self.0.len()
    }
}

pub static SPEC: TableSpec<Users> = TableSpec {
    name: "users",
    doc: "User accounts, one row per line of /etc/passwd",
    columns: &[
        Column {
            name: "uid",
            kind: Kind::UInt32,
            doc: "User id (joins sockets.uid, processes.uid)",
            needs: &[],
            build: |s, range| uint32(&s.0[range.clone()], |u| Some(u.uid)),
        },
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Login name",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |u| Some(&u.name)),
        },
        Column {
            name: "gid",
            kind: Kind::UInt32,
            doc: "Primary group id",
            needs: &[],
            build: |s, range| uint32(&s.0[range.clone()], |u| Some(u.gid)),
        },
        Column {
            name: "gecos",
            kind: Kind::Utf8,
            doc: "Full name or comment field",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |u| Some(&u.gecos)),
        },
        Column {
            name: "home",
            kind: Kind::Utf8,
            doc: "Home directory",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |u| Some(&u.home)),
        },
        Column {
            name: "shell",
            kind: Kind::Utf8,
            doc: "Login shell",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |u| Some(&u.shell)),
        },
    ],
};

/// Reads /etc/passwd.
pub fn collect(config: &TablesConfig, _scan: &Scan) -> Result<Users, DataFusionError> {
    Ok(Users(passwd::read(&config.root).map_err(external)?))
}
