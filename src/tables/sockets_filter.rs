//! Filters on `sockets` that the kernel applies: `state` into sock_diag's state bitmask,
//! `proto` and `family` into which dumps are requested at all, comparisons of
//! `local_port`/`remote_port` with numbers and of `local_address`/`remote_address` with
//! addresses into INET_DIAG bytecode. Each is applied exactly (by the kernel, by the /proc
//! reader the same way, or, for ports and addresses, by the collector again on every
//! row), so DataFusion need not re-check it and can push LIMIT down too.

use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};

use crate::collect::sockdiag::bytecode::{Clause, Cmp, Side, Test};
use crate::collect::socket_row::State;
use crate::collect::sockets::{SocketFilter, KINDS};

use super::literals::{address_literal, int_literal, literal};
use super::socket_names as col;

/// What one supported filter allows: a set of states, or a set of socket kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allows {
    States(u32),
    Kinds(Vec<usize>),
    /// Port and address tests, ANDed clauses of ORed tests.
    Clauses(Vec<Clause>),
}

/// The pseudo-column all port and address tests share, so ORs across them combine.
const ENDPOINT: &str = "local_port/remote_port/local_address/remote_address";

/// `local_port` or `remote_port`, also under a cast to an integer type that holds every
/// port (a widening one DataFusion adds to compare with a literal); not under one that
/// does not (`CAST(local_port AS TINYINT)` fails for port 9000, which the filter must
/// not pass).
fn port_side(expr: &Expr) -> Option<Side> {
    use datafusion::arrow::datatypes::DataType;
    let holds_every_port = |t: &DataType| {
        matches!(
            t,
            DataType::UInt16
                | DataType::Int32
                | DataType::UInt32
                | DataType::Int64
                | DataType::UInt64
        )
    };
    match super::literals::column_under(expr, holds_every_port)? {
        col::LOCAL_PORT => Some(Side::Local),
        col::REMOTE_PORT => Some(Side::Remote),
        _ => None,
    }
}

fn address_side(expr: &Expr) -> Option<Side> {
    match expr {
        Expr::Column(c) if c.name == col::LOCAL_ADDRESS => Some(Side::Local),
        Expr::Column(c) if c.name == col::REMOTE_ADDRESS => Some(Side::Remote),
        _ => None,
    }
}

/// One comparison of a port or address column with a constant.
fn endpoint_test(op: Operator, left: &Expr, right: &Expr) -> Option<Test> {
    let cmp = |op: Operator| match op {
        Operator::Eq => Some(Cmp::Eq),
        Operator::NotEq => Some(Cmp::Ne),
        Operator::Lt => Some(Cmp::Lt),
        Operator::LtEq => Some(Cmp::Le),
        Operator::Gt => Some(Cmp::Gt),
        Operator::GtEq => Some(Cmp::Ge),
        _ => None,
    };
    if let (Some(side), Some(value)) = (port_side(left), int_literal(right)) {
        return Some(Test::Port {
            side,
            cmp: cmp(op)?,
            value,
        });
    }
    if let (Some(value), Some(side)) = (int_literal(left), port_side(right)) {
        return Some(Test::Port {
            side,
            cmp: cmp(op.swap()?)?,
            value,
        });
    }
    let (side, address) = match (address_side(left), address_side(right)) {
        (Some(side), None) => (side, address_literal(right)?),
        (None, Some(side)) => (side, address_literal(left)?),
        _ => return None,
    };
    let equal = match op {
        Operator::Eq => true,
        Operator::NotEq => false,
        _ => return None,
    };
    Some(Test::Address {
        side,
        address,
        equal,
    })
}

/// `col IN (...)` on a port or address column: one clause of `=`, or (NOT IN) a clause
/// of `!=` per value.
fn endpoint_list(list: &datafusion::logical_expr::expr::InList) -> Option<Vec<Clause>> {
    let op = if list.negated {
        Operator::NotEq
    } else {
        Operator::Eq
    };
    let tests: Vec<Test> = list
        .list
        .iter()
        .map(|value| endpoint_test(op, &list.expr, value))
        .collect::<Option<_>>()?;
    if tests.is_empty() {
        return None;
    }
    Some(if list.negated {
        tests.into_iter().map(|t| Clause(vec![t])).collect()
    } else {
        vec![Clause(tests)]
    })
}

/// The bit of a state name in sock_diag's mask; SYN_RECV also asks for request sockets
/// (TCP_NEW_SYN_RECV, 12), which the kernel reports as SYN_RECV.
fn state_bits(name: &str) -> u32 {
    match State::NAMES.iter().position(|n| *n == name) {
        Some(i) if State::NAMES[i] == "SYN_RECV" => (1 << (i + 1)) | (1 << 12),
        Some(i) => 1 << (i + 1),
        None => 0, // no socket has that state
    }
}

/// Indices into [`KINDS`] a `proto` or `family` value selects.
fn kinds(column: &str, value: &str) -> Vec<usize> {
    KINDS
        .iter()
        .enumerate()
        .filter(|(_, (protocol, family))| match column {
            col::PROTO => protocol.proto_name(*family) == value,
            _ => family.name() == value,
        })
        .map(|(i, _)| i)
        .collect()
}

fn allows(column: &str, values: &[&str]) -> Option<Allows> {
    match column {
        col::STATE => Some(Allows::States(
            values.iter().fold(0, |m, v| m | state_bits(v)),
        )),
        col::PROTO | col::FAMILY => {
            let mut selected: Vec<usize> = values.iter().flat_map(|v| kinds(column, v)).collect();
            selected.sort_unstable();
            selected.dedup();
            Some(Allows::Kinds(selected))
        }
        _ => None,
    }
}

/// A port or address comparison, IN list or BETWEEN.
fn endpoint(expr: &Expr) -> Option<Vec<Clause>> {
    match expr {
        Expr::BinaryExpr(b) => Some(vec![Clause(vec![endpoint_test(b.op, &b.left, &b.right)?])]),
        Expr::InList(list) => endpoint_list(list),
        Expr::Between(between) if !between.negated => {
            let side = port_side(&between.expr)?;
            let (low, high) = (int_literal(&between.low)?, int_literal(&between.high)?);
            Some(vec![
                Clause(vec![Test::Port {
                    side,
                    cmp: Cmp::Ge,
                    value: low,
                }]),
                Clause(vec![Test::Port {
                    side,
                    cmp: Cmp::Le,
                    value: high,
                }]),
            ])
        }
        _ => None,
    }
}

/// `col = 'x'`, `'x' = col`, `col IN ('x', ...)` and ORs of those on one column.
fn translate(expr: &Expr) -> Option<(String, Allows)> {
    if let Some(clauses) = endpoint(expr) {
        return Some((ENDPOINT.to_string(), Allows::Clauses(clauses)));
    }
    match expr {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            let (column, value) = match (b.left.as_ref(), b.right.as_ref()) {
                (Expr::Column(c), v) | (v, Expr::Column(c)) => (c, literal(v)?),
                _ => return None,
            };
            Some((column.name.clone(), allows(&column.name, &[value])?))
        }
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            let (left_column, left) = translate(&b.left)?;
            let (right_column, right) = translate(&b.right)?;
            if left_column != right_column {
                return None;
            }
            let union = match (left, right) {
                (Allows::States(a), Allows::States(b)) => Allows::States(a | b),
                (Allows::Kinds(mut a), Allows::Kinds(b)) => {
                    a.extend(b);
                    a.sort_unstable();
                    a.dedup();
                    Allows::Kinds(a)
                }
                // (a OR b): one clause each side, or it is no longer a clause.
                (Allows::Clauses(mut a), Allows::Clauses(b)) if a.len() == 1 && b.len() == 1 => {
                    a[0].0.extend(b.into_iter().flat_map(|c| c.0));
                    Allows::Clauses(a)
                }
                _ => return None,
            };
            Some((left_column, union))
        }
        Expr::InList(list) if !list.negated => {
            let Expr::Column(column) = list.expr.as_ref() else {
                return None;
            };
            let values: Vec<&str> = list.list.iter().map(literal).collect::<Option<_>>()?;
            Some((column.name.clone(), allows(&column.name, &values)?))
        }
        _ => None,
    }
}

/// DataFusion asks which filters the sockets table applies itself.
pub fn pushdown(expr: &Expr) -> TableProviderFilterPushDown {
    // Namespace filters choose which namespaces are read at all (tables::netns).
    if let Some(pushdown) = super::netns::namespace_pushdown(expr) {
        return pushdown;
    }
    match translate(expr) {
        Some(_) => TableProviderFilterPushDown::Exact,
        None => TableProviderFilterPushDown::Unsupported,
    }
}

/// The kernel request the pushed filters allow: every filter narrows it (they are ANDed).
pub fn socket_filter(filters: &[Expr]) -> SocketFilter {
    let mut filter = SocketFilter::default();
    for (_, allows) in filters.iter().filter_map(translate) {
        match allows {
            Allows::States(mask) => filter.states &= mask,
            Allows::Kinds(kinds) => {
                filter
                    .kinds
                    .retain(|k| kinds.iter().any(|&i| KINDS[i] == *k));
            }
            Allows::Clauses(clauses) => filter.clauses.extend(clauses),
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::socket_row::{Family, Protocol};
    use datafusion::prelude::{col, lit};

    #[test]
    fn port_and_address_comparisons_become_clauses() {
        let exact = |e: Expr| pushdown(&e) == TableProviderFilterPushDown::Exact;
        assert!(exact(col("local_port").eq(lit(80))));
        assert!(exact(lit(80).lt(col("remote_port"))));
        assert!(exact(col("local_address").eq(lit("::1"))));
        assert!(exact(
            col("local_port").in_list(vec![lit(22), lit(80)], true)
        ));
        assert!(exact(col("local_port").between(lit(1), lit(1023))));
        assert!(exact(
            col("local_port")
                .eq(lit(22))
                .or(col("remote_address").not_eq(lit("10.0.0.1")))
        ));
        // Text the column never holds, or no constant: DataFusion filters.
        assert!(!exact(col("local_address").eq(lit("::FFFF:10.0.0.1"))));
        assert!(!exact(col("local_port").eq(col("remote_port"))));
        assert!(!exact(col("local_address").lt(lit("10.0.0.1"))));
        let f = socket_filter(&[
            lit(1024).gt_eq(col("local_port")),
            col("remote_port").in_list(vec![lit(80), lit(443)], false),
        ]);
        assert_eq!(
            f.clauses,
            vec![
                Clause(vec![Test::Port {
                    side: Side::Local,
                    cmp: Cmp::Le,
                    value: 1024
                }]),
                Clause(vec![
                    Test::Port {
                        side: Side::Remote,
                        cmp: Cmp::Eq,
                        value: 80
                    },
                    Test::Port {
                        side: Side::Remote,
                        cmp: Cmp::Eq,
                        value: 443
                    },
                ]),
            ]
        );
    }

    #[test]
    fn one_port_or_listeners_alone_are_narrow() {
        let few = |filters: &[Expr]| socket_filter(filters).is_narrow();
        assert!(few(&[col("local_port").eq(lit(9999))]));
        assert!(few(&[
            col("proto").eq(lit("tcp")),
            lit(443).eq(col("remote_port"))
        ]));
        assert!(few(&[col("state").eq(lit("LISTEN"))]));
        // Most sockets may match: a range, another state, either of two ports, nothing.
        assert!(!few(&[col("local_port").gt(lit(1024))]));
        assert!(!few(&[col("state").eq(lit("ESTABLISHED"))]));
        assert!(!few(&[col("local_port")
            .eq(lit(80))
            .or(col("local_port").eq(lit(443)))]));
        assert!(!few(&[col("local_address").eq(lit("127.0.0.1"))]));
        assert!(!few(&[]));
    }

    #[test]
    fn state_and_proto_filters_become_a_kernel_request() {
        let f = socket_filter(&[col("state").eq(lit("LISTEN"))]);
        assert_eq!(f.states, 1 << 10);
        assert_eq!(f.kinds.len(), KINDS.len());
        let f = socket_filter(&[
            col("proto").in_list(vec![lit("tcp"), lit("tcp6")], false),
            col("state").eq(lit("SYN_RECV")),
        ]);
        assert_eq!(
            f.kinds,
            vec![
                (Protocol::Tcp, Family::Inet),
                (Protocol::Tcp, Family::Inet6)
            ]
        );
        assert_eq!(f.states, (1 << 3) | (1 << 12));
        let f = socket_filter(&[lit("unix").eq(col("family"))]);
        assert_eq!(f.kinds, vec![(Protocol::Unix, Family::Unix)]);
        let f = socket_filter(&[col("state")
            .eq(lit("LISTEN"))
            .or(col("state").eq(lit("CLOSE")))]);
        assert_eq!(f.states, (1 << 10) | (1 << 7));
        // ANDed filters intersect; an impossible value selects nothing.
        let f = socket_filter(&[
            col("state").eq(lit("LISTEN")),
            col("state").eq(lit("CLOSE")),
        ]);
        assert_eq!(f.states, 0);
        assert!(socket_filter(&[col("proto").eq(lit("sctp"))])
            .kinds
            .is_empty());
    }

    #[test]
    fn only_what_the_kernel_can_do_is_exact() {
        assert_eq!(
            pushdown(&col("state").eq(lit("LISTEN"))),
            TableProviderFilterPushDown::Exact
        );
        for unsupported in [
            col("state").not_eq(lit("LISTEN")),
            col("local_port").eq(col("remote_port")),
            col("state")
                .eq(lit("LISTEN"))
                .or(col("local_port").eq(lit(22))),
            col("state").in_list(vec![lit("LISTEN")], true),
            col("state")
                .eq(lit("LISTEN"))
                .or(col("proto").eq(lit("tcp"))),
            col("state").like(lit("L%")),
        ] {
            assert_eq!(
                pushdown(&unsupported),
                TableProviderFilterPushDown::Unsupported,
                "{unsupported}"
            );
        }
    }
}
