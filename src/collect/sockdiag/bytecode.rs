//! Port and address filters as INET_DIAG bytecode (`INET_DIAG_REQ_BYTECODE`), so the
//! kernel skips sockets a query does not want, as `ss 'sport = :22'` has it do. The
//! format, from include/uapi/linux/inet_diag.h and net/ipv4/inet_diag.c:
//!
//! - an op is `{ u8 code; u8 yes; u16 no }`: after it runs, execution moves `yes` bytes
//!   on when its test holds, `no` bytes when not. Ending exactly at the program's end
//!   accepts the socket; jumping to end + 4 rejects it.
//! - the kernel's audit follows only the `yes` chain, and every `no` must land on that
//!   chain, so each `yes` is the op's own size; an OR needs a JMP (always takes `no`)
//!   after each test but the last.
//! - port tests take a second op whose `no` holds the port; address tests take an
//!   `inet_diag_hostcond` (family, prefix length, port -1 for any, address).
//!
//! Whatever is compiled here, the same tests are applied to the rows again
//! ([`Clause::holds`]): the kernel's answer is a saving, never the definition.

use std::net::IpAddr;

use crate::collect::socket_row::SocketRow;

const JMP: u8 = 1;
const S_GE: u8 = 2;
const S_LE: u8 = 3;
const D_GE: u8 = 4;
const D_LE: u8 = 5;
const S_COND: u8 = 7;
const D_COND: u8 = 8;
const S_EQ: u8 = 11;
const D_EQ: u8 = 12;

/// Which end of the connection a test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One comparison of a socket's port or address with a constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Port {
        side: Side,
        cmp: Cmp,
        value: i64,
    },
    /// `= address` (or `!=` when `equal` is false), compared as the column's text is.
    Address {
        side: Side,
        address: IpAddr,
        equal: bool,
    },
}

/// Tests ORed together; a filter is a list of clauses ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause(pub Vec<Test>);

impl Test {
    /// SQL's answer for this row: a unix socket (no port, no address) never passes.
    pub fn holds(&self, row: &SocketRow) -> bool {
        let end = |side: &Side| match side {
            Side::Local => row.local,
            Side::Remote => row.remote,
        };
        match self {
            Test::Port { side, cmp, value } => {
                let Some(port) = end(side).map(|a| i64::from(a.port())) else {
                    return false;
                };
                match cmp {
                    Cmp::Eq => port == *value,
                    Cmp::Ne => port != *value,
                    Cmp::Lt => port < *value,
                    Cmp::Le => port <= *value,
                    Cmp::Gt => port > *value,
                    Cmp::Ge => port >= *value,
                }
            }
            Test::Address {
                side,
                address,
                equal,
            } => match end(side) {
                Some(a) => (a.ip() == *address) == *equal,
                None => false,
            },
        }
    }

    /// The test as one kernel op (code, operand bytes) and whether its answer must be
    /// negated; `None` when the kernel cannot express it (or it can never hold).
    fn op(&self) -> Option<(u8, Vec<u8>, bool)> {
        match self {
            Test::Port { side, cmp, value } => {
                let (eq, ge, le) = match side {
                    Side::Local => (S_EQ, S_GE, S_LE),
                    Side::Remote => (D_EQ, D_GE, D_LE),
                };
                let (code, port, negate) = match cmp {
                    Cmp::Eq => (eq, *value, false),
                    Cmp::Ne => (eq, *value, true),
                    Cmp::Ge => (ge, *value, false),
                    Cmp::Le => (le, *value, false),
                    Cmp::Gt => (ge, value.checked_add(1)?, false),
                    Cmp::Lt => (le, value.checked_sub(1)?, false),
                };
                let port = u16::try_from(port).ok()?;
                // The second op: { code 0, yes 0, no = port }.
                let mut operand = vec![0, 0];
                operand.extend_from_slice(&port.to_ne_bytes());
                Some((code, operand, negate))
            }
            Test::Address {
                side,
                address,
                equal,
            } => {
                // The kernel's IPv4 test also holds for an IPv6 socket's v4-mapped address
                // (`::ffff:a.b.c.d`), which the column's text tells apart: negated, it
                // would drop those sockets, which `<>` keeps. `=` only lets them through,
                // and the rows are tested again.
                if !equal && address.is_ipv4() {
                    return None;
                }
                let code = match side {
                    Side::Local => S_COND,
                    Side::Remote => D_COND,
                };
                let (family, bytes): (u8, Vec<u8>) = match address {
                    IpAddr::V4(v4) => (libc::AF_INET as u8, v4.octets().to_vec()),
                    IpAddr::V6(v6) => (libc::AF_INET6 as u8, v6.octets().to_vec()),
                };
                // struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; be32 addr[] }
                let mut operand = vec![family, (bytes.len() * 8) as u8, 0, 0];
                operand.extend_from_slice(&(-1i32).to_ne_bytes());
                operand.extend_from_slice(&bytes);
                Some((code, operand, !equal))
            }
        }
    }
}

impl Clause {
    pub fn holds(&self, row: &SocketRow) -> bool {
        self.0.iter().any(|test| test.holds(row))
    }
}

/// Where a jump goes: the start of an op, past the end of a clause, or reject.
#[derive(Debug, Clone, Copy)]
enum Target {
    Op(usize),
    Reject,
}

struct Op {
    code: u8,
    operand: Vec<u8>,
    no: Target,
}

impl Op {
    fn len(&self) -> usize {
        4 + self.operand.len()
    }
}

/// The local and remote port every socket `clauses` accept must have (0: any), for the
/// request's socket id: the kernel compares those with each socket before it runs the
/// bytecode, a fifth of a port-filtered walk's time. Set from a clause that is one
/// `= port` test (the bytecode keeps it too). Only the TCP request carries it: its walk
/// of the hash shared by every namespace is the cost; UDP's and raw's tables are small,
/// and a raw socket's "port" is its protocol number.
pub fn fixed_ports(clauses: &[Clause]) -> [u16; 2] {
    let mut ports = [0; 2];
    for clause in clauses {
        if let [Test::Port {
            side,
            cmp: Cmp::Eq,
            value,
        }] = clause.0.as_slice()
        {
            if let Ok(port @ 1..) = u16::try_from(*value) {
                ports[usize::from(*side == Side::Remote)] = port;
            }
        }
    }
    ports
}

/// The bytecode for `clauses` (ANDed), leaving out any clause the kernel cannot express
/// (the rows are filtered again anyway); `None` when nothing is left.
pub fn compile(clauses: &[Clause]) -> Option<Vec<u8>> {
    let mut ops: Vec<Op> = Vec::new();
    for clause in clauses {
        let Some(tests) = clause.0.iter().map(Test::op).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let start = ops.len();
        // Op indices are final here; `end` marks "the op after this clause", fixed below.
        let mut to_end = Vec::new();
        for (i, (code, operand, negate)) in tests.into_iter().enumerate() {
            let last = i + 1 == clause.0.len();
            // A test falls through (its `yes`) to the op after it. Plain: fail -> the
            // next test (or reject); pass -> a JMP to the clause's end. Negated: the
            // other way round.
            let test_at = ops.len();
            ops.push(Op {
                code,
                operand,
                no: Target::Reject, // fixed below
            });
            match (negate, last) {
                (false, true) => ops[test_at].no = Target::Reject,
                (false, false) => {
                    ops[test_at].no = Target::Op(test_at + 2);
                    to_end.push(ops.len());
                    ops.push(Op {
                        code: JMP,
                        operand: Vec::new(),
                        no: Target::Reject,
                    });
                }
                (true, _) => {
                    to_end.push(test_at);
                    let next = if last {
                        Target::Reject
                    } else {
                        Target::Op(test_at + 2)
                    };
                    ops.push(Op {
                        code: JMP,
                        operand: Vec::new(),
                        no: next,
                    });
                }
            }
        }
        let end = ops.len();
        for at in to_end {
            ops[at].no = Target::Op(end);
        }
        debug_assert!(ops.len() > start);
    }
    if ops.is_empty() {
        return None;
    }
    let mut offsets = Vec::with_capacity(ops.len() + 1);
    let mut at = 0;
    for op in &ops {
        offsets.push(at);
        at += op.len();
    }
    offsets.push(at); // Target::Op(ops.len()): the end, accept
    let total = at;
    let mut code = Vec::with_capacity(total);
    for (i, op) in ops.iter().enumerate() {
        let target = match op.no {
            Target::Op(j) => offsets[j],
            Target::Reject => total + 4,
        };
        let no = u16::try_from(target - offsets[i]).ok()?;
        code.push(op.code);
        code.push(u8::try_from(op.len()).ok()?);
        code.extend_from_slice(&no.to_ne_bytes());
        code.extend_from_slice(&op.operand);
    }
    Some(code)
}

/// The kernel's interpreter (inet_diag_bc_run), for the tests: runs `code` on a socket's
/// ports and addresses and says whether it is accepted.
#[cfg(test)]
pub fn run(code: &[u8], row: &SocketRow) -> bool {
    let mut at = 0usize;
    let len = code.len();
    while at < len {
        let (op, yes, no) = (
            code[at],
            usize::from(code[at + 1]),
            usize::from(u16::from_ne_bytes([code[at + 2], code[at + 3]])),
        );
        let port_arg = || i64::from(u16::from_ne_bytes([code[at + 6], code[at + 7]]));
        let local = row.local.map(|a| i64::from(a.port()));
        let remote = row.remote.map(|a| i64::from(a.port()));
        let cond = |end: Option<std::net::SocketAddr>| {
            let family = code[at + 4];
            let bytes = if i32::from(family) == libc::AF_INET {
                4
            } else {
                16
            };
            let wanted = &code[at + 12..at + 12 + bytes];
            match end.map(|a| a.ip()) {
                Some(IpAddr::V4(v4)) => bytes == 4 && v4.octets() == wanted,
                // An IPv4 test holds for a v4-mapped address too.
                Some(IpAddr::V6(v6)) if bytes == 4 => {
                    v6.to_ipv4_mapped().is_some_and(|v4| v4.octets() == wanted)
                }
                Some(IpAddr::V6(v6)) => v6.octets() == wanted,
                None => false,
            }
        };
        let holds = match op {
            JMP => false,
            S_EQ => local == Some(port_arg()),
            S_GE => local >= Some(port_arg()),
            S_LE => local.is_some_and(|p| p <= port_arg()),
            D_EQ => remote == Some(port_arg()),
            D_GE => remote >= Some(port_arg()),
            D_LE => remote.is_some_and(|p| p <= port_arg()),
            S_COND => cond(row.local),
            D_COND => cond(row.remote),
            other => panic!("op {other}"),
        };
        at += if holds { yes } else { no };
    }
    at == len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::socket_row::{Family, Protocol, SockType, State};

    fn row(local: &str, remote: &str) -> SocketRow {
        SocketRow {
            protocol: Protocol::Tcp,
            family: Family::Inet,
            sock_type: SockType::Stream,
            state: State::Established,
            local: Some(local.parse().unwrap()),
            remote: Some(remote.parse().unwrap()),
            inode: 1,
            ..SocketRow::default()
        }
    }

    fn port(side: Side, cmp: Cmp, value: i64) -> Test {
        Test::Port { side, cmp, value }
    }

    /// The compiled program, run as the kernel runs it, agrees with the SQL meaning on
    /// every socket of a small grid, for ANDs of ORs with negations.
    #[test]
    fn compiled_programs_agree_with_the_tests() {
        let filters: Vec<Vec<Clause>> = vec![
            vec![Clause(vec![port(Side::Local, Cmp::Eq, 22)])],
            vec![Clause(vec![port(Side::Local, Cmp::Ne, 22)])],
            vec![Clause(vec![
                port(Side::Local, Cmp::Eq, 22),
                port(Side::Remote, Cmp::Eq, 80),
            ])],
            vec![Clause(vec![
                port(Side::Local, Cmp::Ne, 22),
                port(Side::Remote, Cmp::Ne, 80),
            ])],
            vec![
                Clause(vec![port(Side::Local, Cmp::Gt, 1000)]),
                Clause(vec![
                    port(Side::Remote, Cmp::Lt, 1000),
                    port(Side::Remote, Cmp::Eq, 8080),
                ]),
            ],
            vec![Clause(vec![
                port(Side::Local, Cmp::Ge, 80),
                port(Side::Local, Cmp::Le, 22),
            ])],
            vec![Clause(vec![Test::Address {
                side: Side::Remote,
                address: "10.0.0.2".parse().unwrap(),
                equal: true,
            }])],
            vec![
                Clause(vec![Test::Address {
                    side: Side::Local,
                    address: "fe80::1".parse().unwrap(),
                    equal: false,
                }]),
                Clause(vec![
                    port(Side::Local, Cmp::Ne, 80),
                    port(Side::Local, Cmp::Eq, 7),
                ]),
            ],
        ];
        let mut checked = 0;
        for clauses in &filters {
            let code = compile(clauses).expect("all expressible");
            for local in ["10.0.0.1:22", "10.0.0.1:80", "10.0.0.3:7", "10.0.0.1:2000"] {
                for remote in ["10.0.0.2:80", "10.0.0.2:8080", "10.0.0.4:500", "0.0.0.0:0"] {
                    let r = row(local, remote);
                    let wanted = clauses.iter().all(|c| c.holds(&r));
                    assert_eq!(run(&code, &r), wanted, "{clauses:?} on {local} -> {remote}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 8 * 16);
    }

    /// The kernel's IPv4 address test holds for an IPv6 socket's v4-mapped address too,
    /// which `local_address <> '127.0.0.1'` keeps (its text is `::ffff:127.0.0.1`):
    /// negated, the kernel would drop it, so a negated IPv4 test is not compiled.
    #[test]
    fn a_negated_ipv4_address_stays_out_of_the_program() {
        let test = |equal| {
            vec![Clause(vec![Test::Address {
                side: Side::Local,
                address: "127.0.0.1".parse().unwrap(),
                equal,
            }])]
        };
        let mapped = row("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:5000");
        let equal = compile(&test(true)).expect("= is compiled");
        assert!(run(&equal, &mapped), "the kernel's IPv4 test holds");
        assert!(!test(true)[0].holds(&mapped), "the row test does not");
        assert!(test(false)[0].holds(&mapped));
        assert_eq!(compile(&test(false)), None);
    }

    /// The kernel runs what we compile: a dump with `sport = P` returns only our
    /// listener, one with `sport != P AND dport = 0` leaves it out, with no row filter.
    #[test]
    fn the_kernel_filters_with_our_program() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = i64::from(listener.local_addr().unwrap().port());
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut dumper = match super::super::Dumper::open() {
            Ok(dumper) => dumper,
            // CI sets this: there a missing sock_diag is a failure, not a skip.
            Err(err) if std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
                panic!("NETSQL_REQUIRE_NETNS=1 but sock_diag cannot be opened: {err}")
            }
            Err(err) => {
                crate::warn!("skipped: no sock_diag here: {err}");
                return;
            }
        };
        let dump = |dumper: &mut super::super::Dumper, clauses: &[Clause]| {
            let code = compile(clauses).unwrap();
            let mut rows = Vec::new();
            dumper
                .inet(
                    Protocol::Tcp,
                    Family::Inet,
                    super::super::wire::ALL_STATES,
                    Some(&code),
                    super::super::wire::Extensions::default(),
                    &mut |row| {
                        rows.push(row);
                        true
                    },
                )
                .unwrap();
            rows
        };
        // Another address's sockets may use port P too: ours are counted by address.
        let at = listener.local_addr().unwrap();
        let only = dump(&mut dumper, &[Clause(vec![port(Side::Local, Cmp::Eq, p)])]);
        assert!(only.iter().all(|r| r.local.unwrap().port() as i64 == p));
        let mine = only.iter().filter(|r| r.local == Some(at)).count();
        assert_eq!(mine, 2, "the listener and the accepted end: {only:?}");
        let others = dump(
            &mut dumper,
            &[
                Clause(vec![port(Side::Local, Cmp::Ne, p)]),
                Clause(vec![port(Side::Remote, Cmp::Eq, p)]),
            ],
        );
        assert!(others.iter().all(|r| {
            r.local.unwrap().port() as i64 != p && r.remote.unwrap().port() as i64 == p
        }));
        let mine = others.iter().filter(|r| r.remote == Some(at)).count();
        assert_eq!(mine, 1, "only the client end: {others:?}");
    }

    #[test]
    fn layout_matches_the_kernel_header() {
        // sport = 22: { S_EQ, yes 8, no 12 } { 0, 0, 22 }
        let code = compile(&[Clause(vec![port(Side::Local, Cmp::Eq, 22)])]).unwrap();
        let mut want = vec![S_EQ, 8];
        want.extend_from_slice(&12u16.to_ne_bytes());
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&22u16.to_ne_bytes());
        assert_eq!(code, want);
        // What cannot be expressed is left to the row filter.
        assert_eq!(
            compile(&[Clause(vec![port(Side::Local, Cmp::Eq, 70000)])]),
            None
        );
        assert_eq!(
            compile(&[Clause(vec![port(Side::Local, Cmp::Lt, 0)])]),
            None
        );
    }

    #[test]
    fn fixed_ports_come_only_from_a_lone_equal_test() {
        let one = |t: Test| Clause(vec![t]);
        assert_eq!(fixed_ports(&[one(port(Side::Local, Cmp::Eq, 22))]), [22, 0]);
        assert_eq!(
            fixed_ports(&[
                one(port(Side::Remote, Cmp::Eq, 443)),
                one(port(Side::Local, Cmp::Ge, 1024)),
            ]),
            [0, 443]
        );
        // An OR of two ports, a port that is not equal, port 0 (unbound) and one out of
        // range leave the kernel's id open.
        let either = Clause(vec![
            port(Side::Local, Cmp::Eq, 22),
            port(Side::Local, Cmp::Eq, 80),
        ]);
        assert_eq!(fixed_ports(&[either]), [0, 0]);
        assert_eq!(fixed_ports(&[one(port(Side::Local, Cmp::Ne, 22))]), [0, 0]);
        assert_eq!(fixed_ports(&[one(port(Side::Local, Cmp::Eq, 0))]), [0, 0]);
        assert_eq!(
            fixed_ports(&[one(port(Side::Local, Cmp::Eq, 70000))]),
            [0, 0]
        );
    }
}
