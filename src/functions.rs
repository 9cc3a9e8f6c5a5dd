//! Scalar functions: `service_name(port, proto)`, `user_name(uid)`, `host_name(address)`,
//! `protocol_name(number)`, `network_name(address)`, and `hostname()`, which stamps rows
//! gathered from many hosts. netstat's views name numbers with these too, so one rule
//! holds everywhere.
//!
//! Each reads its file (or asks the resolver) only when a query calls it. A fresh set is
//! registered for every statement, so caches live exactly as long as one query.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::collect::{hosts, netdb, passwd, services, Root};

/// How long one reverse lookup may take before its answer is NULL.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(200);
/// Lookups run at once, at most.
const LOOKUP_THREADS: usize = 64;

/// A session extension: the session's rows come from other machines (a fleet's client),
/// so lookups in this machine's files (and `hostname()`) would answer for the wrong one;
/// they refuse instead.
#[derive(Debug, Default)]
pub struct NotHere;

/// Registers every function, with fresh caches, on `ctx`.
pub fn register(ctx: &SessionContext, root: &Root) {
    let not_here = ctx
        .state_ref()
        .read()
        .config()
        .get_extension::<NotHere>()
        .is_some();
    for kind in [
        Function::Service,
        Function::User,
        Function::Host,
        Function::Protocol,
        Function::Network,
        Function::ThisHost,
    ] {
        let mut lookup = Lookup::new(kind, root.clone());
        lookup.not_here = not_here;
        ctx.register_udf(ScalarUDF::new_from_impl(lookup));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    Service,
    User,
    Host,
    /// `protocol_name(n)`: /etc/protocols.
    Protocol,
    /// `network_name(address)`: /etc/networks.
    Network,
    /// `hostname()`: this machine's name.
    ThisHost,
}

/// One of the lookup functions.
#[derive(Debug)]
struct Lookup {
    kind: Function,
    root: Root,
    signature: Signature,
    /// host_name's answers for this query (`None`: no name, or no answer in time).
    hosts: Mutex<HashMap<IpAddr, Option<String>>>,
    /// The /etc files, each read at most once per query (not once per batch).
    /// protocol -> port -> service name
    services: OnceLock<HashMap<String, HashMap<i64, String>>>,
    users: OnceLock<HashMap<u32, String>>,
    hosts_file: OnceLock<HashMap<IpAddr, String>>,
    protocols: OnceLock<HashMap<i64, String>>,
    networks: OnceLock<HashMap<u32, String>>,
    /// Refuse: this machine is not the one the rows come from (see [`NotHere`]).
    not_here: bool,
}

/// The value in `slot`, loading it on first use; a failed load is not kept.
fn cached<T>(slot: &OnceLock<T>, load: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(value) = slot.get() {
        return Ok(value);
    }
    let value = load()?;
    Ok(slot.get_or_init(|| value))
}

impl Lookup {
    fn new(kind: Function, root: Root) -> Self {
        let signature = match kind {
            Function::Service => Signature::any(2, Volatility::Volatile),
            Function::ThisHost => Signature::nullary(Volatility::Stable),
            _ => Signature::any(1, Volatility::Volatile),
        };
        Lookup {
            kind,
            root,
            signature,
            hosts: Mutex::new(HashMap::new()),
            services: OnceLock::new(),
            users: OnceLock::new(),
            hosts_file: OnceLock::new(),
            protocols: OnceLock::new(),
            networks: OnceLock::new(),
            not_here: false,
        }
    }
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.root == other.root
    }
}

impl Eq for Lookup {}

impl Hash for Lookup {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.root.hash(state);
    }
}

impl ScalarUDFImpl for Lookup {
    fn name(&self) -> &str {
        match self.kind {
            Function::Service => "service_name",
            Function::User => "user_name",
            Function::Host => "host_name",
            Function::Protocol => "protocol_name",
            Function::Network => "network_name",
            Function::ThisHost => "hostname",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if self.not_here {
            return Err(DataFusionError::Execution(format!(
                "{}() looks in this machine's files, and here it would answer for the client, not the row's host: in a fleet query use the host column, or ask the hosts themselves",
                self.name()
            )));
        }
        if self.kind == Function::ThisHost {
            let name = dns_lookup::get_hostname()
                .map_err(|e| DataFusionError::Execution(format!("hostname(): {e}")))?;
            return Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::Utf8(Some(name)),
            ));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = match self.kind {
            Function::Service => self.service_names(&arrays[0], &arrays[1])?,
            Function::User => self.user_names(&arrays[0])?,
            Function::Host => self.host_names(&arrays[0])?,
            Function::Protocol => self.protocol_names(&arrays[0])?,
            Function::Network => self.network_names(&arrays[0])?,
            Function::ThisHost => unreachable!("answered above"),
        };
        let array: ArrayRef = Arc::new(names);
        // All-scalar arguments give a scalar back.
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::try_from_array(&array, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(array))
    }
}

fn external(err: crate::collect::CollectError) -> DataFusionError {
    DataFusionError::External(Box::new(err))
}

impl Lookup {
    /// The service for a port and protocol; `tcp6`, `udp6` look up `tcp`, `udp`.
    fn service_names(&self, ports: &ArrayRef, protos: &ArrayRef) -> Result<StringArray> {
        let ports = cast(ports, &DataType::Int64)?;
        let protos = cast(protos, &DataType::Utf8)?;
        let (ports, protos) = (ports.as_primitive::<Int64Type>(), protos.as_string::<i32>());
        let by_port = cached(&self.services, || {
            let table = services::read(&self.root).map_err(external)?;
            let mut by_port: HashMap<String, HashMap<i64, String>> = HashMap::new();
            // The last line naming a port wins, as netstat has it (it prepends each
            // line to its list). getservbyport takes the first; the two differ only for
            // a file that names one port twice, which stock /etc/services never does.
            for s in table.entries {
                by_port
                    .entry(s.protocol)
                    .or_default()
                    .insert(i64::from(s.port), s.name);
            }
            Ok(by_port)
        })?;
        Ok((0..ports.len())
            .map(|i| {
                if ports.is_null(i) || protos.is_null(i) {
                    return None;
                }
                // `tcp6` is tcp; one 6 only (`udp66` is no protocol).
                let proto = protos.value(i);
                let proto = proto.strip_suffix('6').unwrap_or(proto);
                by_port.get(proto)?.get(&ports.value(i)).map(String::as_str)
            })
            .collect())
    }

    fn user_names(&self, uids: &ArrayRef) -> Result<StringArray> {
        let uids = cast(uids, &DataType::Int64)?;
        let uids = uids.as_primitive::<Int64Type>();
        let names = cached(&self.users, || {
            passwd::read_names(&self.root).map_err(external)
        })?;
        Ok((0..uids.len())
            .map(|i| {
                let uid = u32::try_from(uids.value(i))
                    .ok()
                    .filter(|_| !uids.is_null(i))?;
                names.get(&uid).map(String::as_str)
            })
            .collect())
    }

    /// /etc/protocols: the last line for a number wins, as in netstat.
    fn protocol_names(&self, numbers: &ArrayRef) -> Result<StringArray> {
        let numbers = cast(numbers, &DataType::Int64)?;
        let numbers = numbers.as_primitive::<Int64Type>();
        let names = cached(&self.protocols, || {
            let pairs = netdb::protocols(&self.root).map_err(external)?;
            Ok(pairs
                .into_iter()
                .map(|(n, name)| (i64::from(n), name))
                .collect())
        })?;
        Ok((0..numbers.len())
            .map(|i| {
                (!numbers.is_null(i))
                    .then(|| names.get(&numbers.value(i)).map(String::as_str))
                    .flatten()
            })
            .collect())
    }

    /// /etc/networks, for an IPv4 network address: the first line for a number wins, as
    /// getnetbyaddr(3) reads the file.
    fn network_names(&self, addresses: &ArrayRef) -> Result<StringArray> {
        let addresses = cast(addresses, &DataType::Utf8)?;
        let addresses = addresses.as_string::<i32>();
        let names = cached(&self.networks, || {
            let mut names = HashMap::new();
            for (number, name) in netdb::networks(&self.root).map_err(external)? {
                names.entry(number).or_insert(name);
            }
            Ok(names)
        })?;
        Ok(addresses
            .iter()
            .map(|a| {
                let ip: Ipv4Addr = a?.parse().ok()?;
                names.get(&u32::from(ip)).map(String::as_str)
            })
            .collect())
    }

    /// /etc/hosts first, then the system resolver, each address at most once per query.
    /// A wildcard address (0.0.0.0, ::) names no host: NULL, without asking.
    fn host_names(&self, addresses: &ArrayRef) -> Result<StringArray> {
        let addresses = cast(addresses, &DataType::Utf8)?;
        let addresses = addresses.as_string::<i32>();
        let parsed: Vec<Option<IpAddr>> = (0..addresses.len())
            .map(|i| {
                addresses
                    .is_valid(i)
                    .then(|| addresses.value(i).parse::<IpAddr>().ok())
                    .flatten()
                    .filter(|a| !a.is_unspecified())
            })
            .collect();
        let mut cache = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut missing: Vec<IpAddr> = parsed
            .iter()
            .flatten()
            .filter(|a| !cache.contains_key(a))
            .copied()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let from_file = cached(&self.hosts_file, || {
                hosts::read(&self.root).map_err(external)
            })?;
            cache.extend(names_of(from_file, missing));
        }
        Ok(parsed
            .iter()
            .map(|a| a.and_then(|a| cache.get(&a).cloned().flatten()))
            .collect::<Vec<Option<String>>>()
            .into())
    }
}

/// Names for distinct `addresses`: /etc/hosts (`from_file`) first, then the resolver
/// (see [`resolve`]) for the rest. host_name() and the netstat views share it.
pub(crate) fn names_of(
    from_file: &HashMap<IpAddr, String>,
    addresses: impl IntoIterator<Item = IpAddr>,
) -> Vec<(IpAddr, Option<String>)> {
    let mut answers = Vec::new();
    let mut ask = Vec::new();
    for address in addresses {
        match from_file.get(&address) {
            Some(name) => answers.push((address, Some(name.clone()))),
            None => ask.push(address),
        }
    }
    answers.extend(resolve(&ask));
    answers
}

/// Reverse-resolves `addresses`, [`LOOKUP_THREADS`] at a time; an address without an
/// answer within [`LOOKUP_TIMEOUT`] of its round's start gets `None`. Threads still
/// waiting on the resolver are left to finish on their own.
fn resolve(addresses: &[IpAddr]) -> Vec<(IpAddr, Option<String>)> {
    let mut answers = Vec::with_capacity(addresses.len());
    for round in addresses.chunks(LOOKUP_THREADS) {
        let (tx, rx) = mpsc::channel();
        for &address in round {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send((address, dns_lookup::lookup_addr(&address).ok()));
            });
        }
        drop(tx);
        let deadline = Instant::now() + LOOKUP_TIMEOUT;
        let mut got: HashMap<IpAddr, Option<String>> = HashMap::new();
        while got.len() < round.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((address, name)) => {
                    got.insert(address, name);
                }
                Err(_) => break,
            }
        }
        answers.extend(round.iter().map(|a| (*a, got.remove(a).flatten())));
    }
    answers
}
