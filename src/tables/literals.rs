//! Literal values in the filters DataFusion pushes into a scan, as the tables that apply
//! filters themselves (sockets, the namespace columns) read them.

use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;

/// An integer literal of any width.
pub fn int_literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int64(Some(v)) => Some(*v),
            ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A text literal.
pub fn literal(expr: &Expr) -> Option<&str> {
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

/// An integer literal, also under a cast DataFusion added to compare it with a column.
pub fn cast_int_literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Cast(cast) => cast_int_literal(&cast.expr),
        other => int_literal(other),
    }
}

/// The column an expression names, also under a cast that keeps every value this
/// table's columns hold (to a 64-bit integer: inodes, marks, zones and ports all fit;
/// or to text), as DataFusion adds to compare a column with a literal.
/// A narrowing cast (`CAST(netns AS INT)`) fails or wraps where the column would not:
/// such a filter is not ours to apply (taken as the column's, it read every namespace
/// and its rows were never checked).
pub fn column_name(expr: &Expr) -> Option<&str> {
    use datafusion::arrow::datatypes::DataType;
    column_under(expr, |t| {
        matches!(
            t,
            DataType::Int64
                | DataType::UInt64
                | DataType::Utf8
                | DataType::Utf8View
                | DataType::LargeUtf8
        )
    })
}

/// The column an expression names, also under casts to types `keeps` accepts (those
/// that hold every value the column may have).
pub fn column_under(
    expr: &Expr,
    keeps: impl Fn(&datafusion::arrow::datatypes::DataType) -> bool + Copy,
) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(&c.name),
        Expr::Cast(cast) if keeps(cast.field.data_type()) => column_under(&cast.expr, keeps),
        _ => None,
    }
}

/// An address literal, only when it is written exactly as address columns write
/// addresses: a pushed filter compares addresses, SQL compares text, and they must agree.
pub fn address_literal(expr: &Expr) -> Option<std::net::IpAddr> {
    let text = literal(expr)?;
    let address: std::net::IpAddr = text.parse().ok()?;
    (address.to_string() == text).then_some(address)
}
