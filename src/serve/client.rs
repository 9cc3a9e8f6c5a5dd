//! `netsql --connect grpc[+tls]://host:port[,...] -e SQL`: one statement on each server at
//! once, their rows printed as one result with a leading `host` column. A host that
//! fails costs one stderr line naming it; the others' rows still print.

use std::sync::Arc;

use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::error::{Error, Exit};
use crate::exec::Destination;

/// One server's answer: its rows, or why not.
type Answer = Result<(SchemaRef, Vec<RecordBatch>), String>;

/// `host:port` of a `grpc://` or `grpc+tls://` URL, and whether it wants TLS.
fn parse(url: &str) -> Result<(String, bool), Error> {
    if let Some(rest) = url.strip_prefix("grpc+tls://") {
        Ok((rest.trim_end_matches('/').to_string(), true))
    } else if let Some(rest) = url.strip_prefix("grpc://") {
        Ok((rest.trim_end_matches('/').to_string(), false))
    } else {
        Err(Error::Usage(format!(
            "--connect {url}: expected grpc://host:port or grpc+tls://host:port"
        )))
    }
}

/// Runs `sql` on every server in `urls` and writes the union to `to`; exit 2 if any
/// server failed.
pub async fn run(
    urls: &[String],
    token: Option<String>,
    ca: Option<Vec<u8>>,
    sql: &str,
    to: &mut dyn Destination,
) -> Result<Exit, Error> {
    let targets: Vec<(String, bool)> = urls.iter().map(|u| parse(u)).collect::<Result<_, _>>()?;
    let asks = targets.iter().map(|(host, tls)| {
        let token = token.clone();
        let ca = ca.clone();
        async move { ask(host, *tls, token, ca, sql).await }
    });
    let answers: Vec<Answer> = futures::future::join_all(asks).await;
    let mut failed = false;
    let mut schema: Option<SchemaRef> = None;
    let mut rows: Vec<RecordBatch> = Vec::new();
    for ((host, _), answer) in targets.iter().zip(answers) {
        let (theirs, batches) = match answer {
            Ok(answer) => answer,
            Err(why) => {
                eprintln!("netsql: {host}: {why}");
                failed = true;
                continue;
            }
        };
        let with_host = Arc::new(Schema::new(
            std::iter::once(Arc::new(Field::new("host", DataType::Utf8, false)))
                .chain(theirs.fields().iter().cloned())
                .collect::<Vec<_>>(),
        ));
        match &schema {
            None => schema = Some(with_host.clone()),
            Some(first) if first.fields() != with_host.fields() => {
                eprintln!("netsql: {host}: its result has other columns than the first host's");
                failed = true;
                continue;
            }
            Some(_) => {}
        }
        for batch in batches {
            let hosts: ArrayRef =
                Arc::new(StringArray::from(vec![host.as_str(); batch.num_rows()]));
            let mut columns = vec![hosts];
            columns.extend(batch.columns().iter().cloned());
            rows.push(RecordBatch::try_new(with_host.clone(), columns)?);
        }
    }
    if let Some(schema) = schema {
        let mut sink = to.open(schema)?;
        for batch in &rows {
            sink.write(batch)?;
        }
        sink.finish()?;
    }
    Ok(if failed { Exit::Error } else { Exit::Success })
}

/// One server's rows for `sql`.
async fn ask(
    host: &str,
    tls: bool,
    token: Option<String>,
    ca: Option<Vec<u8>>,
    sql: &str,
) -> Answer {
    let scheme = if tls { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}"))
        .map_err(|e| format!("bad address: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    if tls {
        let mut config = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = ca {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {}", with_causes(&e)))?;
    let mut client = FlightSqlServiceClient::new(channel);
    if let Some(token) = token {
        client.set_header("authorization", format!("Bearer {token}"));
    }
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(message)?;
    let schema = Arc::new(
        info.clone()
            .try_decode_schema()
            .map_err(|e| e.to_string())?,
    );
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else {
            continue;
        };
        let stream = client.do_get(ticket).await.map_err(message)?;
        let mut got: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| e.to_string())?;
        batches.append(&mut got);
    }
    Ok((schema, batches))
}

/// A client error as one line: the server's own message when it sent one.
fn message(err: arrow_flight::error::FlightError) -> String {
    match err {
        arrow_flight::error::FlightError::Tonic(status) => status.message().to_string(),
        other => other.to_string(),
    }
}

/// An error and what caused it, one line ("transport error: connection refused").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // tonic's transport error says its kind again as the text of its cause.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
