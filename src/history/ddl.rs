//! `netsql snapshot --print-ddl hive|trino`: the statements that make the dataset's
//! tables known to Hive, Spark's metastore, Athena or Trino, with the types the files
//! store (see output::parquet) and `date`, `host` as partition columns.

use datafusion::arrow::datatypes::DataType;

use crate::tables::TableInfo;

/// Which engine's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Hive,
    Trino,
}

/// A column's type as the engine declares what the files hold.
fn column_type(data_type: &DataType, dialect: Dialect) -> String {
    let (text, int, bigint, boolean, timestamp) = match dialect {
        Dialect::Hive => ("STRING", "INT", "BIGINT", "BOOLEAN", "TIMESTAMP"),
        Dialect::Trino => ("VARCHAR", "INTEGER", "BIGINT", "BOOLEAN", "TIMESTAMP(6)"),
    };
    match data_type {
        DataType::Int32 => int.into(),
        // UINT32 widens to a 64-bit integer in every reader; UINT64 is stored as INT64.
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => bigint.into(),
        DataType::Boolean => boolean.into(),
        DataType::Timestamp(_, _) => timestamp.into(),
        DataType::List(item) => match dialect {
            Dialect::Hive => format!("ARRAY<{}>", column_type(item.data_type(), dialect)),
            Dialect::Trino => format!("ARRAY({})", column_type(item.data_type(), dialect)),
        },
        _ => text.into(),
    }
}

/// The statements for `tables` of the dataset at `location` (a path or URL).
pub fn statements(tables: &[TableInfo], location: &str, dialect: Dialect) -> String {
    // A relative folder means nothing to Spark or Trino: the absolute one.
    let absolute = match location.contains("://") {
        true => None,
        false => std::path::absolute(location).ok(),
    };
    let location = absolute
        .as_deref()
        .and_then(|p| p.to_str())
        .unwrap_or(location)
        .trim_end_matches('/');
    // In a string literal: Spark SQL escapes with a backslash, Trino doubles the quote.
    let location = match dialect {
        Dialect::Hive => location.replace('\\', "\\\\").replace('\'', "\\'"),
        Dialect::Trino => location.replace('\'', "''"),
    };
    let mut out = String::new();
    for table in tables {
        let timestamp =
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None);
        let mut columns = vec![("taken", timestamp)];
        columns.extend(
            table
                .columns
                .iter()
                .map(|(name, data_type, _)| (*name, data_type.clone())),
        );
        let quote = |name: &str| match dialect {
            Dialect::Hive => format!("`{name}`"),
            Dialect::Trino => format!("\"{name}\""),
        };
        let body: Vec<String> = columns
            .iter()
            .map(|(name, data_type)| {
                format!("  {} {}", quote(name), column_type(data_type, dialect))
            })
            .collect();
        let name = table.name;
        match dialect {
            Dialect::Hive => out.push_str(&format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{}\n)\nPARTITIONED BY (`date` STRING, `host` STRING)\nSTORED AS PARQUET\nLOCATION '{location}/{name}';\nMSCK REPAIR TABLE {name};\n\n",
                body.join(",\n")
            )),
            Dialect::Trino => out.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS hive.netsql.{name} (\n{},\n  \"date\" VARCHAR,\n  \"host\" VARCHAR\n)\nWITH (external_location = '{location}/{name}', format = 'PARQUET', partitioned_by = ARRAY['date', 'host']);\nCALL hive.system.sync_partition_metadata('netsql', '{name}', 'FULL');\n\n",
                body.join(",\n")
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_and_trino_declare_the_stored_types_and_partitions() {
        let sockets: Vec<TableInfo> = crate::tables::infos()
            .into_iter()
            .filter(|t| t.name == "sockets")
            .collect();
        let hive = statements(&sockets, "s3://bucket/netsql/", Dialect::Hive);
        assert!(hive.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS sockets (\n  `taken` TIMESTAMP,\n  `proto` STRING,"), "{hive}");
        assert!(hive.contains("  `local_port` INT,\n"));
        assert!(hive.contains("  `inode` BIGINT,\n"));
        assert!(hive.contains("PARTITIONED BY (`date` STRING, `host` STRING)\nSTORED AS PARQUET\nLOCATION 's3://bucket/netsql/sockets';"));
        let trino = statements(&sockets, "/data/netsql", Dialect::Trino);
        assert!(trino.contains("  \"taken\" TIMESTAMP(6),\n"));
        assert!(trino.contains("  \"local_port\" INTEGER,\n"));
        assert!(trino.contains("  \"date\" VARCHAR,\n  \"host\" VARCHAR\n)\nWITH (external_location = '/data/netsql/sockets'"));
        // Partition columns come last and once: the files have no date or host.
        assert_eq!(trino.matches("\"host\"").count(), 1);
        // A quote in the path is escaped as each dialect escapes it; a relative path is
        // made absolute.
        let hive = statements(&sockets, "/data/it's", Dialect::Hive);
        assert!(hive.contains("LOCATION '/data/it\\'s/sockets';"), "{hive}");
        let trino = statements(&sockets, "/data/it's", Dialect::Trino);
        assert!(
            trino.contains("external_location = '/data/it''s/sockets'"),
            "{trino}"
        );
        let relative = statements(&sockets, "ds1", Dialect::Trino);
        let cwd = std::env::current_dir().unwrap();
        assert!(
            relative.contains(&format!(
                "external_location = '{}/ds1/sockets'",
                cwd.display()
            )),
            "{relative}"
        );
    }
}
