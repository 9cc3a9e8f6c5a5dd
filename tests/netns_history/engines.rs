//! The other engines that read the dataset (DuckDB, pyarrow, Spark) as Python scripts,
//! and an S3-compatible server for the object-store tests.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{netsql, Kid};

/// rows of the same query: prints "same N" or the difference.
pub const DUCKDB_COMPARE: &str = r#"
import datetime, duckdb, json, sys
dest, sql_file, ours_file = sys.argv[1:]
con = duckdb.connect()
con.execute("CREATE SCHEMA history")
con.execute(f"CREATE VIEW history.sockets AS SELECT * FROM read_parquet('{dest}/sockets/*/*/*.parquet', hive_partitioning = true)")
sql = open(sql_file).read()
cur = con.execute(sql)
names = [d[0] for d in cur.description]
def norm(v):
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    return v
theirs = [tuple(norm(v) for v in row) for row in cur.fetchall()]
ours = []
for line in open(ours_file):
    if line.strip():
        row = json.loads(line)
        values = []
        for n in names:
            v = row.get(n)
            if isinstance(v, str) and n in ("taken", "first_seen", "last_seen", "hour"):
                v = datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(datetime.timezone.utc).isoformat()
            values.append(v)
        ours.append(tuple(values))
print(f"same {len(ours)}" if ours == theirs else f"DIFFERENT\nours   {ours}\ntheirs {theirs}")
"#;

/// Spark's view, by the README's command: rows as `host port inode` lines, then types.
pub const SPARK_READ: &str = r#"
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.parquet(sys.argv[1] + "/sockets")
for r in sorted(df.select("host", "local_port", "inode").collect(), key=str):
    print(r.host, r.local_port, r.inode)
types = dict(df.dtypes)
print("types", types["taken"], types["local_port"], types["inode"], types["host"], types["date"])
"#;

/// pyarrow's view of the dataset: rows, and the types of a few columns.
pub const PYARROW_READ: &str = r#"
import sys, pyarrow.dataset as ds
d = ds.dataset(sys.argv[1] + "/sockets", format="parquet", partitioning="hive")
t = d.to_table()
s = t.schema
print(t.num_rows, s.field("taken").type, s.field("local_port").type, s.field("inode").type, s.field("host").type, s.field("date").type)
"#;

/// The printed Hive DDL, run by Spark with its Hive metastore, then queried.
pub const SPARK_DDL: &str = r#"
import sys
from pyspark.sql import SparkSession
ddl, warehouse = sys.argv[1:]
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC").config("spark.sql.warehouse.dir", warehouse)
         .config("javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={warehouse}/metastore;create=true")
         .enableHiveSupport().getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for statement in open(ddl).read().split(";"):
    if statement.strip():
        spark.sql(statement)
for table in ("sockets", "processes"):
    row = spark.sql(f"SELECT count(*) AS n, count(DISTINCT host) AS hosts FROM {table}").collect()[0]
    print(table, row.n, row.hosts)
"#;

/// An S3-compatible server (moto's server mode) on a loopback port, stopped on drop.
pub struct S3 {
    pub server: Kid,
    pub endpoint: String,
}

impl S3 {
    /// moto binds the port well after it was chosen, and another test may take it
    /// meanwhile: the server is ready when it answers as S3 does, and started again on
    /// another port if it died.
    pub fn start() -> S3 {
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = Kid::spawn(
                Command::new("moto_server")
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let started = std::time::Instant::now();
            while server.try_wait().expect("wait").is_none() {
                if answers_as_s3(port) {
                    let endpoint = format!("http://127.0.0.1:{port}");
                    return S3 { server, endpoint };
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "moto_server did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto_server exited three times: its ports were taken?");
    }

    /// netsql with this store's endpoint and test credentials.
    pub fn netsql(&self) -> Command {
        let mut command = netsql();
        for (key, value) in self.env() {
            command.env(key, value);
        }
        command
    }

    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
    }
}

/// Whether the server on `port` lists buckets as S3 does (moto's answer to `GET /`).
fn answers_as_s3(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).contains("ListAllMyBucketsResult")
}
