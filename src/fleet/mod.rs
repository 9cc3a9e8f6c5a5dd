//! Fleet queries: `netsql --connect URL,... -e SQL` plans the statement once, here, with
//! DataFusion's distributed engine (datafusion-distributed): each host's scans, filters,
//! projections and partial aggregates run on that host (a `netsql serve`, which is a
//! worker), and only what they send (partial aggregates' states, or the rows asked for)
//! crosses the network; the rest (final aggregates, sorts, limits, joins) runs here.
//! Every fleet table has a `host` column: the server's `--name`, filled there.
//!
//! A host that does not answer before the query (down, too slow, the token refused)
//! costs one stderr line naming it, and the query answers from the others (exit 2), or
//! fails with `--all-hosts`. A host lost during the query fails the query, naming it:
//! never a partial aggregate without a word.

mod channels;
pub mod codec;
pub mod each;
mod joins;
mod placement;
pub mod scan;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    DistributedExt, GetWorkerInfoRequest, SessionStateBuilderExt, Worker, WorkerQueryContext,
    WorkerResolver,
};
use url::Url;

use crate::error::{Error, Exit};
use crate::tables::{self, TablesConfig};

use channels::Channels;
use codec::ScanCodec;
use scan::FleetProvider;

/// `--connect` and the options that go with it.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// As given: grpc://host:port or grpc+tls://host:port.
    pub hosts: Vec<String>,
    pub token: Option<String>,
    /// `--tls-ca`: a CA certificate (PEM) trusted besides the system's.
    pub ca: Option<Vec<u8>>,
    /// How long a host may take to connect and answer before the query.
    pub host_timeout: Duration,
    /// `--all-hosts`: a host that does not answer fails the query.
    pub all_hosts: bool,
}

/// Which hosts answered before the query (with their names), in the order given; kept
/// in the session.
#[derive(Debug, Default)]
pub struct Answered(pub Vec<(String, Result<String, String>)>);

/// The URL a `grpc://` or `grpc+tls://` address is dialled at.
pub fn url_of(host: &str) -> Result<Url, Error> {
    let (scheme, rest) = if let Some(rest) = host.strip_prefix("grpc+tls://") {
        ("https", rest)
    } else if let Some(rest) = host.strip_prefix("grpc://") {
        ("http", rest)
    } else {
        return Err(Error::Usage(format!(
            "--connect {host}: expected grpc://host:port or grpc+tls://host:port"
        )));
    };
    let rest = rest.trim_end_matches('/');
    let url = Url::parse(&format!("{scheme}://{rest}"))
        .map_err(|e| Error::Usage(format!("--connect {host}: {e}")))?;
    // (A URL drops a port that is its scheme's default: read it from the text.)
    let port = rest
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if !port || url.host_str().is_none() || url.path() != "/" {
        return Err(Error::Usage(format!(
            "--connect {host}: expected grpc://host:port or grpc+tls://host:port"
        )));
    }
    Ok(url)
}

/// The URL the client's own in-process worker answers to; never dialled.
fn client_url() -> Url {
    Url::parse("http://netsql-client.invalid:1/").expect("a valid URL")
}

/// The hosts a query runs on (those that answered).
struct Hosts(Vec<Url>);

impl WorkerResolver for Hosts {
    fn get_urls(&self) -> datafusion::error::Result<Vec<Url>> {
        Ok(self.0.clone())
    }
}

/// Asks every host who it is, at once; each that fails within the timeout costs one line.
async fn probe(fleet: &Fleet, urls: &[Url], channels: &Channels) -> Answered {
    let asks = urls.iter().map(|url| async move {
        let ask = async {
            let mut client = channels.unnamed(url)?;
            client.get_worker_info(GetWorkerInfoRequest {}).await
        };
        match tokio::time::timeout(fleet.host_timeout, ask).await {
            Ok(Ok(info)) => match worker::parse_identity(&info.version) {
                Some((env!("CARGO_PKG_VERSION"), name)) => Ok(name.to_string()),
                Some((version, _)) => Err(format!(
                    "runs netsql {version}, this client {}: a fleet runs one version",
                    env!("CARGO_PKG_VERSION")
                )),
                None => Err("not a netsql server".to_string()),
            },
            Ok(Err(err)) => Err(channels::one_line(&err)),
            Err(_) => Err(format!(
                "no answer within {} s (--host-timeout)",
                fleet.host_timeout.as_secs_f64()
            )),
        }
    });
    let mut results = futures::future::join_all(asks).await;
    // Two hosts by one name would be one host in every answer: the later ones refused.
    let mut named: HashMap<String, &str> = HashMap::new();
    for (host, result) in fleet.hosts.iter().zip(results.iter_mut()) {
        if let Ok(name) = result {
            if let Some(first) = named.get(name.as_str()) {
                *result = Err(format!(
                    "named {name:?} like {first}: give each server its own --name"
                ));
            } else {
                named.insert(name.clone(), host);
            }
        }
    }
    Answered(fleet.hosts.iter().cloned().zip(results).collect())
}

/// The client's session over the fleet: every live table with a `host` column, planned
/// by the distributed engine over the hosts that answered.
pub async fn connect(fleet: &Fleet, config: &TablesConfig) -> Result<SessionContext, Error> {
    let urls: Vec<Url> = fleet
        .hosts
        .iter()
        .map(|h| url_of(h))
        .collect::<Result<_, _>>()?;
    let mut labels: HashMap<Url, String> = HashMap::new();
    for (url, given) in urls.iter().zip(&fleet.hosts) {
        if let Some(first) = labels.insert(url.clone(), given.clone()) {
            return Err(Error::Usage(format!(
                "--connect names {url} twice ({first} and {given})"
            )));
        }
    }
    let channels = Channels::new(
        fleet.token.as_deref(),
        fleet.ca.clone(),
        fleet.host_timeout,
        labels,
    )
    .map_err(Error::Usage)?;
    let answered = probe(fleet, &urls, &channels).await;
    let mut live = Vec::new();
    for ((host, result), url) in answered.0.iter().zip(&urls) {
        match result {
            Ok(name) => live.push((url.clone(), name.clone())),
            Err(why) => crate::error::report(&format!("{host}: {why}")),
        }
    }
    if live.is_empty() {
        return Err(Error::Usage("no host answered".into()));
    }
    channels.know(&live);
    if fleet.all_hosts && live.len() != urls.len() {
        return Err(Error::Usage(format!(
            "{} of {} hosts did not answer (--all-hosts)",
            urls.len() - live.len(),
            urls.len()
        )));
    }
    let reached = Reached {
        config: config.clone(),
        channels,
        live,
        all_hosts: fleet.all_hosts,
    };
    let ctx = reached.session(reached.live.iter().map(|(url, _)| url.clone()).collect())?;
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        state.config_mut().set_extension(Arc::new(answered));
        state.config_mut().set_extension(Arc::new(reached));
    }
    Ok(ctx)
}

/// The hosts that answered, and what a session over some of them is made from; kept in
/// the fleet's session, so that work that must not mix hosts' rows makes a session per
/// host without asking the hosts again.
struct Reached {
    config: TablesConfig,
    channels: Channels,
    /// Each host's URL and `--name`, in the order given.
    live: Vec<(Url, String)>,
    /// `--all-hosts`: a host that fails the work run host by host fails it all.
    all_hosts: bool,
}

impl Reached {
    /// A session whose tables are the fleet's over `hosts`.
    fn session(&self, hosts: Vec<Url>) -> Result<SessionContext, Error> {
        let (config, channels) = (&self.config, &self.channels);
        let client = client_url();
        let codec = Arc::new(ScanCodec::client());
        let root = config.root.clone();
        let here = {
            let (codec, channels) = (codec.clone(), channels.clone());
            Worker::from_session_builder(move |ctx: WorkerQueryContext| {
                let (codec, channels, root) = (codec.clone(), channels.clone(), root.clone());
                async move {
                    let mut builder = ctx.builder.with_distributed_channel_resolver(channels);
                    builder
                        .config()
                        .get_or_insert_default()
                        .set_extension(Arc::new(crate::functions::NotHere));
                    let ctx = WorkerQueryContext {
                        builder,
                        headers: ctx.headers,
                    };
                    Ok(worker::session(ctx, codec, &root, false))
                }
            })
        };
        let tasks = hosts.len().max(2);
        let mut state = crate::exec::state(config)?;
        // Joins hash both sides by their keys (no build side broadcast to every host,
        // which would make hosts pull from one another).
        if let Some(session) = state.config() {
            let options = session.options_mut();
            options.optimizer.hash_join_single_partition_threshold = 0;
            options.optimizer.hash_join_single_partition_threshold_rows = 0;
            // A scan's parts are its hosts: dealt round-robin into more parts (where the
            // client has more cores than the fleet has hosts) they would be hosts no
            // longer, and a join on host could not run on each host.
            options.optimizer.enable_round_robin_repartition = false;
        }
        let state = state
            .with_distributed_worker_resolver(Hosts(hosts.clone()))
            .with_physical_optimizer_rule(Arc::new(joins::PerHost))
            .with_distributed_planner()
            .with_distributed_broadcast_joins(false)?
            .with_distributed_channel_resolver(channels.clone())
            .with_distributed_user_codec_arc(codec)
            .with_distributed_max_tasks_per_stage(tasks)?
            .with_distributed_desired_task_count_handler(placement::task_count)
            .with_distributed_scale_up_leaf_node_handler(placement::scale_up)
            .with_distributed_route_tasks_handler(placement::route(client.clone()))
            .with_distributed_children_isolator_unions(false)?
            .build();
        // The client's own stages run in process, within the client's memory limit.
        let here = here.with_runtime_env(state.runtime_env().clone());
        let mut state = state;
        state
            .config_mut()
            .set_distributed_local_worker_context(here.to_local_worker_context(client.clone()));
        // Lookups in this machine's files would answer for the client, not the hosts.
        state
            .config_mut()
            .set_extension(Arc::new(crate::functions::NotHere));
        state.config_mut().set_extension(Arc::new(InFleet));
        let ctx = SessionContext::new_with_state(state);
        let hosts: Arc<[Url]> = hosts.into();
        crate::catalog::register_lazy_as(
            &ctx,
            tables::makers(config),
            Box::new(move |table| Ok(Arc::new(FleetProvider::new(table, hosts.clone())))),
        )?;
        Ok(ctx)
    }
}

/// Marks a session whose tables are a fleet's.
struct InFleet;

/// Whether `ctx`'s tables are a fleet's (each with a `host` column).
pub fn is_fleet(ctx: &SessionContext) -> bool {
    ctx.state_ref()
        .read()
        .config()
        .get_extension::<InFleet>()
        .is_some()
}

/// The sessions whose rows must not be mixed (a saved query or an audit joining tables on
/// pid, a snapshot's partitions): with `--connect`, one per host that answered with its
/// `--name`; otherwise `ctx` itself, unnamed.
pub fn sessions(ctx: &SessionContext) -> Result<Vec<(Option<String>, SessionContext)>, Error> {
    let Some(reached) = ctx.state_ref().read().config().get_extension::<Reached>() else {
        return Ok(vec![(None, ctx.clone())]);
    };
    reached
        .live
        .iter()
        .map(|(url, name)| Ok((Some(name.clone()), reached.session(vec![url.clone()])?)))
        .collect()
}

/// With `--connect --all-hosts`: a host that fails fails the run, whatever the others found.
pub fn all_hosts(ctx: &SessionContext) -> bool {
    ctx.state_ref()
        .read()
        .config()
        .get_extension::<Reached>()
        .is_some_and(|reached| reached.all_hosts)
}

/// With `--connect`: each host, and whether it answered before the session's queries.
pub fn hosts(ctx: &SessionContext) -> Option<Vec<(String, Result<String, String>)>> {
    let answered = ctx
        .state_ref()
        .read()
        .config()
        .get_extension::<Answered>()?;
    Some(answered.0.clone())
}

/// A run's exit once its statements are done: an error when a host did not answer,
/// whatever the others found.
pub fn exit(ctx: &SessionContext, exit: Exit) -> Exit {
    let answered = ctx.state_ref().read().config().get_extension::<Answered>();
    match answered {
        Some(a) if a.0.iter().any(|(_, r)| r.is_err()) => Exit::Error,
        _ => exit,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::*;

    /// A session over `hosts`, planning only: no host is asked.
    fn planning(hosts: &[&str]) -> SessionContext {
        let channels = Channels::new(
            None,
            None,
            std::time::Duration::from_secs(1),
            HashMap::new(),
        );
        let reached = Reached {
            config: TablesConfig::default(),
            channels: channels.unwrap(),
            live: Vec::new(),
            all_hosts: false,
        };
        reached
            .session(hosts.iter().map(|h| url_of(h).unwrap()).collect())
            .unwrap()
    }

    async fn explained(ctx: &SessionContext, sql: &str) -> String {
        let explained = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&explained).unwrap().to_string()
    }

    /// A client with more cores than the fleet has hosts still runs a join on host on
    /// each host: dealt round-robin into more parts (under a filter the scan does not
    /// take, here), a scan's parts would be hosts no longer, and the join would ship
    /// both tables.
    #[tokio::test]
    async fn more_cores_than_hosts_keep_joins_on_the_hosts() {
        let ctx = planning(&["grpc://web1:50051", "grpc://db1:50051"]);
        let cores = 8;
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .target_partitions = cores;
        let sql = "EXPLAIN SELECT s.local_port, p.name FROM sockets s JOIN processes p \
                   ON s.host = p.host AND s.pid = p.pid WHERE s.local_port % 2 = 0";
        let text = explained(&ctx, sql).await;
        assert!(text.contains("HostJoinExec"), "{text}");
        assert!(!text.contains("RoundRobin"), "{text}");
    }

    /// A join on pid alone runs on the host when the session is one host's (a saved
    /// query's, host by host), and stays the planner's over two hosts, where it pairs
    /// one host's rows with the other's as SQL says.
    #[tokio::test]
    async fn one_hosts_joins_run_there_whatever_their_keys() {
        let sql = "EXPLAIN SELECT s.local_port, p.name FROM sockets s \
                   LEFT JOIN processes p ON s.pid = p.pid";
        let one = explained(&planning(&["grpc://web1:50051"]), sql).await;
        assert!(one.contains("HostJoinExec"), "{one}");
        assert!(!one.contains("RepartitionExec"), "{one}");
        let two = explained(&planning(&["grpc://web1:50051", "grpc://db1:50051"]), sql).await;
        assert!(!two.contains("HostJoinExec"), "{two}");
    }

    #[test]
    fn hosts_are_grpc_urls_with_a_port() {
        assert_eq!(
            url_of("grpc://web1:50051").unwrap().as_str(),
            "http://web1:50051/"
        );
        assert_eq!(
            url_of("grpc+tls://10.0.0.1:443/").unwrap().as_str(),
            "https://10.0.0.1/"
        );
        for bad in [
            "http://web1:50051",
            "grpc://web1",
            "grpc://web1:50051/x",
            "web1:1",
        ] {
            let err = url_of(bad).unwrap_err().to_string();
            assert!(err.contains("expected grpc://host:port"), "{bad}: {err}");
        }
    }
}
