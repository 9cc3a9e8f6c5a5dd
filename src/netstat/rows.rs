//! What a netstat view returned: its rows, read by column name and type.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};

/// A query's result, its columns read by name.
pub struct Rows {
    batch: RecordBatch,
}

impl Rows {
    pub fn new(
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<Rows, datafusion::arrow::error::ArrowError> {
        Ok(Rows {
            batch: concat_batches(&schema, batches)?,
        })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column `name`, cast to `to` from a type of the same family. A view without
    /// the column, or with one of another type, is an error: never a column of NULLs.
    fn column(
        &self,
        name: &str,
        to: &DataType,
        family: fn(&DataType) -> bool,
    ) -> Result<std::sync::Arc<dyn Array>, ViewError> {
        let column = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| ViewError(format!("the view has no column {name}")))?;
        if !family(column.data_type()) {
            return Err(ViewError(format!(
                "the view's column {name} is {}, not {to}",
                column.data_type()
            )));
        }
        cast(column, to).map_err(|e| ViewError(format!("column {name}: {e}")))
    }

    /// A text column, `None` per NULL.
    pub fn text(&self, name: &str) -> Result<Vec<Option<String>>, ViewError> {
        let is_text = |t: &DataType| {
            matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            )
        };
        let array = self.column(name, &DataType::Utf8, is_text)?;
        Ok(array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    }

    /// An integer column as i64.
    pub fn int(&self, name: &str) -> Result<Vec<Option<i64>>, ViewError> {
        let is_int = |t: &DataType| t.is_integer() || *t == DataType::Null;
        let array = self.column(name, &DataType::Int64, is_int)?;
        Ok(array.as_primitive::<Int64Type>().iter().collect())
    }

    /// [`Rows::text`] when the flags asked the query for the column; otherwise the query
    /// has no such column and every row reads NULL.
    pub fn text_if(&self, asked: bool, name: &str) -> Result<Vec<Option<String>>, ViewError> {
        match asked {
            true => self.text(name),
            false => Ok(vec![None; self.len()]),
        }
    }

    /// [`Rows::int`] when the flags asked the query for the column, else NULLs.
    pub fn int_if(&self, asked: bool, name: &str) -> Result<Vec<Option<i64>>, ViewError> {
        match asked {
            true => self.int(name),
            false => Ok(vec![None; self.len()]),
        }
    }
}

/// A netstat view that does not return the columns its renderer reads.
#[derive(Debug, thiserror::Error)]
#[error("netstat view: {0}")]
pub struct ViewError(String);

impl From<ViewError> for crate::error::Error {
    fn from(err: ViewError) -> Self {
        crate::error::Error::Usage(err.to_string())
    }
}
