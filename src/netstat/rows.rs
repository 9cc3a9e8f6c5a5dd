//! What a netstat view returned: its rows, read by column name and type, and the names
//! (/etc files, the resolver) netstat would show for their numbers.

use std::collections::HashMap;
use std::net::IpAddr;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};

use crate::collect::{hosts, netdb, passwd, services, CollectError, Root};

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

/// Names for numbers, as netstat finds them: /etc/hosts then the resolver for addresses,
/// /etc/services (its last line for a port wins, as netstat keeps them in a prepended
/// list), /etc/protocols for raw sockets, /etc/networks for routes, /etc/passwd for uids.
#[derive(Default)]
pub struct NameTables {
    pub(crate) hosts: HashMap<IpAddr, Option<String>>,
    pub(crate) services: HashMap<(String, u16), String>,
    pub(crate) networks: HashMap<u32, String>,
    pub(crate) users: HashMap<u32, String>,
}

impl NameTables {
    /// Loads what the view needs: names for `addresses` (text, as the query gives them;
    /// wildcards and unparsable ones need none), service and protocol names, user names.
    pub fn load<'a>(
        root: &Root,
        addresses: impl IntoIterator<Item = &'a Option<String>>,
        ports: bool,
        users: bool,
    ) -> Result<NameTables, CollectError> {
        let mut names = NameTables::default();
        let mut wanted: Vec<IpAddr> = addresses
            .into_iter()
            .flatten()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .filter(|a| !a.is_unspecified())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if !wanted.is_empty() {
            let file = hosts::read(root)?;
            names
                .hosts
                .extend(crate::functions::names_of(&file, wanted));
        }
        if ports {
            for service in services::read(root)?.entries {
                names
                    .services
                    .insert((service.protocol, service.port), service.name);
            }
            for (number, name) in netdb::protocols(root)? {
                names.services.insert(("raw".into(), number), name);
            }
        }
        if users {
            names.users = passwd::read_names(root)?;
        }
        Ok(names)
    }

    pub fn load_networks(&mut self, root: &Root) -> Result<(), CollectError> {
        for (number, name) in netdb::networks(root)? {
            self.networks.entry(number).or_insert(name);
        }
        Ok(())
    }

    pub fn host(&self, address: IpAddr) -> Option<&str> {
        self.hosts.get(&address).and_then(|n| n.as_deref())
    }
}
