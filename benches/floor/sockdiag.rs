//! The kernel's floor for a socket dump: sends the sock_diag request netsql sends for a
//! query and walks the reply messages without decoding them. Usage:
//!
//!   sockdiag_floor [all|listen] [sport PORT] [info|skmem] [split PORT]
//!
//! `all` is every TCP state (the default), `listen` the LISTEN state only; `sport PORT`
//! adds the INET_DIAG bytecode netsql compiles for `local_port = PORT`; `info` and
//! `skmem` ask for the attributes `tcp_info` and the `skmem_*` columns need. `split PORT`
//! sends the two requests netsql sends from 20k TCP sockets, at once on two threads:
//! the sockets whose ports are both below PORT, and the rest. Prints the number of
//! sockets to stderr.

use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netsql::collect::sockdiag::bytecode::{self, Clause, Cmp, Side, Test};
use netsql::collect::sockdiag::wire::{self, Extensions, ALL_STATES};

mod replies;

fn main() {
    let mut states = ALL_STATES;
    let mut ext = Extensions::default();
    let mut clauses = Vec::new();
    let mut split = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "all" => states = ALL_STATES,
            "listen" => states = 1 << 10,
            "info" => ext.tcp_info = true,
            "skmem" => ext.skmem = true,
            "sport" | "sport-lt" | "sport-ge" => {
                let port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("sport PORT");
                let cmp = match arg.as_str() {
                    "sport-lt" => Cmp::Lt,
                    "sport-ge" => Cmp::Ge,
                    _ => Cmp::Eq,
                };
                clauses.push(Clause(vec![Test::Port {
                    side: Side::Local,
                    cmp,
                    value: port,
                }]));
            }
            "split" => {
                split = Some(
                    args.next()
                        .and_then(|p| p.parse().ok())
                        .expect("split PORT"),
                )
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let sockets = match split {
        None => dump(&clauses, states, ext),
        Some(at) => {
            let (low, high) = netsql::collect::sockets::split_clauses(&clauses, at);
            let other = std::thread::spawn(move || dump(&high, states, ext));
            dump(&low, states, ext) + other.join().unwrap()
        }
    };
    eprintln!("{sockets} sockets");
}

/// One dump, its messages counted.
fn dump(clauses: &[Clause], states: u32, ext: Extensions) -> u64 {
    let program = bytecode::compile(clauses);
    let ports = bytecode::fixed_ports(clauses);
    let request = wire::tcp_request_both_families(states, program.as_deref(), ports, ext, 1);
    replies::count(NETLINK_SOCK_DIAG, &request)
}
