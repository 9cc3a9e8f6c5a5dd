//! Builders that turn a slice of rows into one Arrow column.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, ListBuilder, StringBuilder,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};

pub fn utf8<'a, R>(rows: &'a [R], value: impl Fn(&'a R) -> Option<&'a str>) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for row in rows {
        builder.append_option(value(row));
    }
    Arc::new(builder.finish())
}

/// Text made per row (an address, a state name): formatted straight into the column's
/// buffer, with no String per row.
pub fn utf8_owned<R, T: std::fmt::Display>(
    rows: &[R],
    value: impl Fn(&R) -> Option<T>,
) -> ArrayRef {
    use std::fmt::Write;
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for row in rows {
        match value(row) {
            Some(v) => {
                // Writing fills the current value; appending "" ends it.
                let _ = write!(builder, "{v}");
                builder.append_value("");
            }
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

pub fn int32<R>(rows: &[R], value: impl Fn(&R) -> Option<i32>) -> ArrayRef {
    Arc::new(rows.iter().map(value).collect::<Int32Array>())
}

pub fn int64<R>(rows: &[R], value: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    Arc::new(rows.iter().map(value).collect::<Int64Array>())
}

pub fn uint32<R>(rows: &[R], value: impl Fn(&R) -> Option<u32>) -> ArrayRef {
    Arc::new(rows.iter().map(value).collect::<UInt32Array>())
}

pub fn uint64<R>(rows: &[R], value: impl Fn(&R) -> Option<u64>) -> ArrayRef {
    Arc::new(rows.iter().map(value).collect::<UInt64Array>())
}

pub fn utf8_list<'a, R>(rows: &'a [R], values: impl Fn(&'a R) -> Option<&'a [String]>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in rows {
        match values(row) {
            Some(items) => {
                for item in items {
                    builder.values().append_value(item);
                }
                builder.append(true);
            }
            None => builder.append(false),
        }
    }
    Arc::new(builder.finish())
}

/// Microseconds since the epoch, as a UTC timestamp.
pub fn timestamp_us<R>(rows: &[R], value: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(value)
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

pub fn boolean<R>(rows: &[R], value: impl Fn(&R) -> Option<bool>) -> ArrayRef {
    Arc::new(rows.iter().map(value).collect::<BooleanArray>())
}
