//! Filters on `sockets` that the kernel applies: `state` into sock_diag's state bitmask,
//! `proto` and `family` into which dumps are requested at all. Each is applied exactly
//! (by the kernel, or by the /proc reader the same way), so DataFusion need not re-check
//! it and can push LIMIT down too.

use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::scalar::ScalarValue;

use crate::collect::socket::State;
use crate::collect::sockets::{SocketFilter, KINDS};

/// What one supported filter allows: a set of states, or a set of socket kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allows {
    States(u32),
    Kinds(Vec<usize>),
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
            "proto" => protocol.proto_name(*family) == value,
            _ => family.name() == value,
        })
        .map(|(i, _)| i)
        .collect()
}

fn literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

fn allows(column: &str, values: &[&str]) -> Option<Allows> {
    match column {
        "state" => Some(Allows::States(
            values.iter().fold(0, |m, v| m | state_bits(v)),
        )),
        "proto" | "family" => {
            let mut selected: Vec<usize> = values.iter().flat_map(|v| kinds(column, v)).collect();
            selected.sort_unstable();
            selected.dedup();
            Some(Allows::Kinds(selected))
        }
        _ => None,
    }
}

/// `col = 'x'`, `'x' = col`, `col IN ('x', ...)` and ORs of those on one column.
fn translate(expr: &Expr) -> Option<(String, Allows)> {
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
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::socket::{Family, Protocol};
    use datafusion::prelude::{col, lit};

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
            col("local_port").eq(lit(22)),
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
