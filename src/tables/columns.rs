//! Builders that turn a slice of rows into one Arrow column.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, StringBuilder, UInt32Array, UInt64Array,
};

pub fn utf8<R>(rows: &[R], value: impl Fn(&R) -> Option<&str>) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for row in rows {
        builder.append_option(value(row));
    }
    Arc::new(builder.finish())
}

pub fn utf8_owned<R>(rows: &[R], value: impl Fn(&R) -> Option<String>) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for row in rows {
        builder.append_option(value(row));
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
