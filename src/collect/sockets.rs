//! Every socket of the current network namespace, from sock_diag or from /proc/net.

use super::sockdiag::bytecode::{self, Clause, Cmp, Side, Test};
use super::sockdiag::wire::{Extensions, ALL_STATES};
use super::sockdiag::Dumper;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::owners::{self, Owner, Want};
use super::socket_row::{Family, Protocol, SocketRow};
use super::{netns, proc_inet, proc_unix, CollectError, Root};

/// Which kernel interface to read sockets from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// sock_diag, falling back to /proc/net for any dump the kernel refuses.
    #[default]
    Auto,
    /// sock_diag only, except for a protocol the kernel has no sock_diag handler for
    /// (ENOENT: e.g. raw sockets without CONFIG_INET_RAW_DIAG), which is read from
    /// /proc/net as `ss` does; any other refusal is an error.
    Netlink,
    Proc,
}

/// How a large TCP table is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Walks {
    /// Two walks at once on two cores from [`SPLIT_AT`] sockets: the answer soonest, when
    /// the namespace has two cores to itself (`tables::sockets` decides).
    #[default]
    Parallel,
    /// One walk: the least CPU, for a recorder, an exporter or a server (two
    /// walks each visit the whole table; at 100k sockets they cost ~15 ms more of kernel
    /// time).
    Serial,
}

/// Every kind of socket the table holds, in netstat's order.
pub const KINDS: [(Protocol, Family); 9] = [
    (Protocol::Tcp, Family::Inet),
    (Protocol::Tcp, Family::Inet6),
    (Protocol::Udp, Family::Inet),
    (Protocol::Udp, Family::Inet6),
    (Protocol::UdpLite, Family::Inet),
    (Protocol::UdpLite, Family::Inet6),
    (Protocol::Raw, Family::Inet),
    (Protocol::Raw, Family::Inet6),
    (Protocol::Unix, Family::Unix),
];

/// What a scan needs: which kinds of socket, which states (bit `1 << sk_state`), and
/// port and address tests every row must pass. Narrowing it lets the kernel skip sockets
/// instead of us filtering them afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFilter {
    pub kinds: Vec<(Protocol, Family)>,
    pub states: u32,
    /// ANDed; sent to the kernel as INET_DIAG bytecode and applied to the rows again.
    pub clauses: Vec<Clause>,
}

impl SocketFilter {
    /// Whether the kernel answers with a few rows however many sockets there are: the
    /// sockets on one port (local or remote), or listeners alone.
    pub fn is_narrow(&self) -> bool {
        self.states & !(1 << 10) == 0 || bytecode::fixed_ports(&self.clauses) != [0; 2]
    }
}

/// What a scan needs besides the rows the filter selects; each costs a request
/// extension or a walk, so only what a query projects is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// sock_diag attributes to ask for and keep (tcp_info, congestion, memory, ...);
    /// each costs the kernel bytes per socket.
    pub ext: Extensions,
    /// The lowest-pid process holding each socket: a walk of every /proc/<pid>/fd.
    pub owners: bool,
    /// /proc/net/unix's RefCount and Flags of unix sockets (sock_diag has neither).
    pub unix_extras: bool,
}

/// One scan: the rows, and what [`Needs`] asked for besides.
#[derive(Debug, Default)]
pub struct Scanned {
    pub rows: Vec<SocketRow>,
    /// The lowest-pid holder of each socket that has one, sorted by inode.
    pub owners: Vec<Owner>,
    /// Processes whose descriptors could not be read (another user's, without root).
    pub denied: usize,
    /// Unix inode -> RefCount, from /proc/net/unix.
    pub unix: HashMap<u64, u32>,
}

/// Scans the sockets `filter` selects from `source`, with what `needs` asks for.
pub fn scan(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
    needs: Needs,
    walks: Walks,
    moment: Option<&SharedDump>,
) -> Result<Scanned, CollectError> {
    let mut sink = RowSink::whole();
    collect_into(root, source, filter, needs.ext, walks, moment, &mut sink)?;
    let rows = sink.into_rows();
    let mut scanned = Scanned::default();
    if needs.owners {
        (scanned.owners, scanned.denied) = lowest_owners(root, &rows)?;
    }
    if needs.unix_extras {
        scanned.unix = proc_unix::extras(root)?;
    }
    scanned.rows = rows;
    Ok(scanned)
}

/// The lowest-pid holder of each of `rows` that has one, sorted by inode, and how many
/// processes could not be looked at. Socket inodes are host-wide, so one walk serves
/// rows from every namespace.
pub fn lowest_owners(root: &Root, rows: &[SocketRow]) -> Result<(Vec<Owner>, usize), CollectError> {
    // TIME_WAIT and request sockets (inode 0) have no file, so no owner.
    let inodes: HashSet<u64> = rows.iter().map(|r| r.inode).filter(|&i| i != 0).collect();
    let walk = owners::walk(root, &Want::Lowest(inodes))?;
    // The walk sorts its owners, inode first.
    Ok((walk.owners, walk.denied))
}

impl Default for SocketFilter {
    fn default() -> Self {
        SocketFilter {
            kinds: KINDS.to_vec(),
            states: ALL_STATES,
            clauses: Vec::new(),
        }
    }
}

/// Takes one part of a scan's rows; `false` stops the reading.
pub type Taker<'a> = dyn FnMut(Rows) -> bool + 'a;

/// A part of a scan's rows: its own, or a run of a moment's shared TCP dump, which a scan
/// handing on parts reads in place rather than copying row by row (a scrape's `sockets`
/// and `tcp_info` both read the one dump; each `tcp_info` copy boxed its extras anew).
#[derive(Clone)]
pub enum Rows {
    Own(Vec<SocketRow>),
    Shared(Arc<Vec<SocketRow>>, std::ops::Range<usize>),
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rows::Own(rows) => write!(f, "Own({} rows)", rows.len()),
            Rows::Shared(_, range) => write!(f, "Shared({range:?})"),
        }
    }
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Own(Vec::new())
    }
}

impl std::ops::Deref for Rows {
    type Target = [SocketRow];

    fn deref(&self) -> &[SocketRow] {
        match self {
            Rows::Own(rows) => rows,
            Rows::Shared(all, range) => &all[range.clone()],
        }
    }
}

impl Rows {
    /// The rows to change: a shared run is copied first.
    pub fn to_mut(&mut self) -> &mut Vec<SocketRow> {
        if let Rows::Shared(..) = self {
            *self = Rows::Own(self.to_vec());
        }
        let Rows::Own(rows) = self else {
            unreachable!("made own above")
        };
        rows
    }

    /// The rows as a list of one's own: moved when they are, else copied.
    pub fn into_vec(self) -> Vec<SocketRow> {
        match self {
            Rows::Own(rows) => rows,
            shared => shared.to_vec(),
        }
    }
}

/// Where a scan's rows go: all kept in one list, or handed on in parts as they are read,
/// so a query can build and write one part while the kernel dumps the next.
pub struct RowSink<'a> {
    rows: Vec<SocketRow>,
    /// The part size and who takes each part.
    parts: Option<(usize, &'a mut Taker<'a>)>,
    /// Rows already handed on.
    handed: usize,
    stopped: bool,
}

impl<'a> RowSink<'a> {
    /// Keeps every row, for [`RowSink::into_rows`].
    pub fn whole() -> RowSink<'a> {
        RowSink {
            rows: Vec::new(),
            parts: None,
            handed: 0,
            stopped: false,
        }
    }

    /// Hands rows on `size` at a time to `part`; [`RowSink::finish`] hands on the rest.
    pub fn parts(size: usize, part: &'a mut Taker<'a>) -> RowSink<'a> {
        RowSink {
            rows: Vec::with_capacity(size),
            parts: Some((size.max(1), part)),
            handed: 0,
            stopped: false,
        }
    }

    /// Takes one row if it passes `clauses` (the definition of the tests: what the kernel
    /// let through, or /proc gave, is checked); `false` once the taker wants no more.
    fn offer(&mut self, row: SocketRow, clauses: &[Clause]) -> bool {
        if !clauses.iter().all(|c| c.holds(&row)) {
            return !self.stopped;
        }
        self.rows.push(row);
        if let Some((size, part)) = &mut self.parts {
            if self.rows.len() >= *size {
                let full = std::mem::replace(&mut self.rows, Vec::with_capacity(*size));
                self.handed += full.len();
                self.stopped = !part(Rows::Own(full));
            }
        }
        !self.stopped
    }

    /// Takes every row of a moment's shared dump (which passed the scan's tests when it
    /// was made): handed on as runs of it, read in place, when the sink hands on parts;
    /// copied into a whole sink, with their extras only when `extras`. `false` once the
    /// taker wants no more.
    fn offer_shared(&mut self, parts: &[Arc<Vec<SocketRow>>], extras: bool) -> bool {
        let Some((size, part)) = &mut self.parts else {
            let rows = parts.iter().flat_map(|part| part.iter());
            self.rows.extend(rows.map(|row| row.copy(extras)));
            return true;
        };
        // The rows taken before come first.
        if !self.rows.is_empty() && !self.stopped {
            let before = std::mem::replace(&mut self.rows, Vec::with_capacity(*size));
            self.handed += before.len();
            self.stopped = !part(Rows::Own(before));
        }
        for all in parts {
            let mut start = 0;
            while start < all.len() && !self.stopped {
                let end = all.len().min(start + *size);
                self.handed += end - start;
                self.stopped = !part(Rows::Shared(all.clone(), start..end));
                start = end;
            }
        }
        !self.stopped
    }

    /// How many rows have been taken so far.
    fn len(&self) -> usize {
        self.handed + self.rows.len()
    }

    /// Drops the rows taken after the first `len`, if none of them was handed on yet.
    fn rewind(&mut self, len: usize) -> bool {
        if len < self.handed {
            return false;
        }
        self.rows.truncate(len - self.handed);
        true
    }

    /// Hands on the last, partly filled part.
    pub fn finish(mut self) {
        if let Some((_, part)) = &mut self.parts {
            if !self.rows.is_empty() && !self.stopped {
                part(Rows::Own(std::mem::take(&mut self.rows)));
            }
        }
    }

    /// Every row, from a [`RowSink::whole`].
    pub fn into_rows(self) -> Vec<SocketRow> {
        self.rows
    }
}

/// Collects the sockets `filter` asks for from `source`, with the attributes `ext` names
/// (sock_diag only; /proc has none of them but UDP's drops).
pub fn collect(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
    ext: Extensions,
) -> Result<Vec<SocketRow>, CollectError> {
    let mut sink = RowSink::whole();
    collect_into(root, source, filter, ext, Walks::default(), None, &mut sink)?;
    Ok(sink.into_rows())
}

/// [`collect`], each row handed to `sink` as it is read (and passes the filter's tests).
/// Inside a `moment`, TCP rows come from the moment's one dump of them.
pub fn collect_into(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
    ext: Extensions,
    walks: Walks,
    moment: Option<&SharedDump>,
    sink: &mut RowSink,
) -> Result<(), CollectError> {
    let mut dumper = match source {
        Source::Proc => None,
        Source::Netlink => Some(Dumper::open()?),
        Source::Auto => match Dumper::open() {
            Ok(dumper) => Some(dumper),
            Err(CollectError::NetlinkRefused { .. }) => None,
            Err(other) => return Err(other),
        },
    };
    let clauses = &filter.clauses;
    let program = bytecode::compile(&filter.clauses);
    let ports = bytecode::fixed_ports(&filter.clauses);
    // TCP of both families in one walk of the kernel's table, when it answers that
    // request; otherwise (or for one family) a dump per family below.
    let tcp = |family| filter.kinds.contains(&(Protocol::Tcp, family));
    let mut tcp_done = false;
    if let Some(dumper) = dumper
        .as_mut()
        .filter(|_| tcp(Family::Inet) && tcp(Family::Inet6))
    {
        let before = sink.len();
        // Two walks pay when most sockets come back: not for a port or address filter
        // (the kernel's bytecode drops nearly all, so the walk itself is the cost) nor
        // for listeners alone (a table of their own, walked apart).
        let bulk = filter.clauses.is_empty() && !filter.is_narrow();
        let split = if bulk && walks == Walks::Parallel {
            split_port(root)
        } else {
            None
        };
        let mut dump = |sink: &mut RowSink<'_>, ext| match split {
            Some(port) => tcp_split(dumper, filter, ext, port, SPLIT_PART, sink),
            None => dumper.tcp_both_families(
                filter.states,
                program.as_deref(),
                ports,
                ext,
                &mut |row| sink.offer(row, clauses),
            ),
        };
        let shared = moment.and_then(|moment| {
            moment.tcp_rows(root, filter, ext, |asked| {
                // Kept in parts as read: no list of every row grown (and moved) as it
                // fills, and the parts are those a scan hands on.
                let mut parts = Vec::new();
                let mut keep = |rows: Rows| {
                    let mut rows = rows.into_vec();
                    // The last part, held as long as the moment, at its length.
                    rows.shrink_to_fit();
                    parts.push(Arc::new(rows));
                    true
                };
                let mut sink = RowSink::parts(SHARED_PART, &mut keep);
                dump(&mut sink, asked)?;
                sink.finish();
                Ok(parts)
            })
        });
        let result = match shared {
            Some(Ok(rows)) => {
                sink.offer_shared(&rows, ext.keeps());
                Ok(())
            }
            Some(Err(err)) => Err(err),
            None => dump(sink, ext),
        };
        match result {
            Ok(()) => tcp_done = true,
            Err(err @ CollectError::NetlinkRefused { .. }) => {
                if !sink.rewind(before) {
                    return Err(err);
                }
            }
            Err(err) => return Err(err),
        }
    }
    for &(protocol, family) in &filter.kinds {
        if sink.stopped {
            break;
        }
        // A port or address test never holds for a unix socket (it has neither).
        if protocol == Protocol::Unix && !filter.clauses.is_empty() {
            continue;
        }
        if protocol == Protocol::Tcp && tcp_done {
            continue;
        }
        if let Some(dumper) = dumper.as_mut() {
            let before = sink.len();
            let result = match protocol {
                Protocol::Unix => {
                    dumper.unix(filter.states, ext, &mut |row| sink.offer(row, clauses))
                }
                _ => dumper.inet(
                    protocol,
                    family,
                    filter.states,
                    program.as_deref(),
                    ext,
                    &mut |row| sink.offer(row, clauses),
                ),
            };
            match result {
                Ok(()) => continue,
                // Rows of a dump that failed part way would come again from /proc (unless
                // some were handed on already: then the error stands).
                Err(err) if may_fall_back(source, &err) => {
                    if !sink.rewind(before) {
                        return Err(err);
                    }
                }
                Err(err) => return Err(err),
            }
        }
        read_proc(root, protocol, family, filter.states, ext, &mut |row| {
            sink.offer(row, clauses)
        })?;
    }
    Ok(())
}

/// The TCP rows of one moment (a snapshot, a metrics scrape), dumped once for all its
/// scans: `sockets` and `tcp_info` in one scrape were otherwise two walks of the kernel's
/// whole TCP table (at 100k sockets, about 100 ms of CPU each), and two moments. The
/// moment's dump asks for every extension its scans want together, declared at
/// [`SharedDump::begin`]; a scan that asks for more than that dumps afresh, as does every
/// scan outside a moment.
#[derive(Debug, Default)]
pub struct SharedDump {
    moment: Mutex<Option<Moment>>,
}

#[derive(Debug)]
struct Moment {
    /// What the moment's scans ask for together.
    ext: Extensions,
    dumps: Vec<Dumped>,
}

/// One TCP dump of a moment: its namespace, what it selected and asked for, its rows.
#[derive(Debug)]
struct Dumped {
    netns: u64,
    states: u32,
    clauses: Vec<Clause>,
    ext: Extensions,
    rows: Arc<Parts>,
}

/// A moment's TCP dump, in the parts it was read in, which its scans read in place.
type Parts = Vec<Arc<Vec<SocketRow>>>;

/// Rows in a part of a moment's dump: a query's batch (`catalog::BATCH_ROWS`, which
/// `tables::sockets` checks), so a scan hands each part on whole. Any size gives the
/// same rows.
pub const SHARED_PART: usize = 8192;

impl SharedDump {
    /// Scans from now on share their TCP dumps, asked for `ext`, until [`SharedDump::end`].
    pub fn begin(&self, ext: Extensions) {
        *self.moment.lock().unwrap_or_else(|e| e.into_inner()) = Some(Moment {
            ext,
            dumps: Vec::new(),
        });
    }

    /// Scans dump afresh again; the moment's rows are dropped.
    pub fn end(&self) {
        *self.moment.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The moment's TCP rows of the calling thread's namespace that `filter` selects,
    /// with at least `ext`: made by `dump` (given what to ask for) the first time.
    /// `None` outside a moment, or when the namespace cannot be told.
    fn tcp_rows(
        &self,
        root: &Root,
        filter: &SocketFilter,
        ext: Extensions,
        dump: impl FnOnce(Extensions) -> Result<Parts, CollectError>,
    ) -> Option<Result<Arc<Parts>, CollectError>> {
        let (netns, asked) = {
            let moment = self.moment.lock().unwrap_or_else(|e| e.into_inner());
            // Outside a moment (every query's scan) no namespace is looked up.
            let moment = moment.as_ref()?;
            let netns = netns::of_thread(root)?;
            let same = |d: &&Dumped| {
                d.netns == netns
                    && d.states == filter.states
                    && d.clauses == filter.clauses
                    && ext.within(d.ext)
            };
            if let Some(dumped) = moment.dumps.iter().find(same) {
                return Some(Ok(dumped.rows.clone()));
            }
            (netns, ext.union(moment.ext))
        };
        // Dumped unlocked: namespaces read on several threads at once dump at once, and
        // a moment that ends meanwhile (a scrape past its time) does not wait for it.
        let rows = match dump(asked) {
            Ok(rows) => Arc::new(rows),
            Err(err) => return Some(Err(err)),
        };
        let mut moment = self.moment.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(moment) = moment.as_mut() {
            moment.dumps.push(Dumped {
                netns,
                states: filter.states,
                clauses: filter.clauses.clone(),
                ext: asked,
                rows: rows.clone(),
            });
        }
        Some(Ok(rows))
    }
}

/// From this many TCP sockets in the namespace, the dump is split in two walks, one
/// per core; below it a second thread and socket cost more than they save.
const SPLIT_AT: u64 = 20_000;

/// The port that splits a large namespace's TCP sockets in two halves for two walks, or
/// `None` for one walk. Nearly every connection has an ephemeral port at one end and a
/// service port below the ephemeral range at the other, so splitting on the larger of
/// the two ports at the middle of `ip_local_port_range` halves clients, servers and
/// loopback pairs alike. Any port gives the same rows: the halves are complements.
fn split_port(root: &Root) -> Option<i64> {
    // The calling thread's namespace (not the process's), also after setns.
    let sockstat = netns::thread_paths(root, "net/sockstat")
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())?;
    let tcp = sockstat.lines().find_map(|l| l.strip_prefix("TCP: "))?;
    let field = |name: &str| -> Option<u64> {
        let mut words = tcp.split_whitespace();
        words.position(|w| w == name)?;
        words.next()?.parse().ok()
    };
    if field("inuse")? + field("tw").unwrap_or(0) < SPLIT_AT {
        return None;
    }
    // A root entered through /proc/thread-self has no sys/: the default range's middle,
    // which only balances the halves less well where the range was changed.
    let range = root.proc.join("sys/net/ipv4/ip_local_port_range");
    let range = std::fs::read_to_string(range).unwrap_or_default();
    let ends: Vec<i64> = range
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some(match ends.as_slice() {
        [low, high] if low < high => (low + high) / 2,
        _ => 46883,
    })
}

/// `clauses` twice, for the two walks of a split dump: with both ports below `port`, and
/// with either at or above it. Every socket passes exactly one.
pub fn split_clauses(clauses: &[Clause], port: i64) -> (Vec<Clause>, Vec<Clause>) {
    let test = |side, cmp| Test::Port {
        side,
        cmp,
        value: port,
    };
    let mut low = clauses.to_vec();
    low.push(Clause(vec![test(Side::Local, Cmp::Lt)]));
    low.push(Clause(vec![test(Side::Remote, Cmp::Lt)]));
    let mut high = clauses.to_vec();
    high.push(Clause(vec![
        test(Side::Local, Cmp::Ge),
        test(Side::Remote, Cmp::Ge),
    ]));
    (low, high)
}

/// Rows per part the second walk of [`tcp_split`] hands over.
const SPLIT_PART: usize = 4096;

/// The TCP dump of both families as two walks at once: this thread takes the sockets
/// whose ports are both below `port`, a second thread (and netlink socket) the rest,
/// and its rows join the sink between this thread's own.
fn tcp_split(
    dumper: &mut Dumper,
    filter: &SocketFilter,
    ext: Extensions,
    port: i64,
    part_rows: usize,
    sink: &mut RowSink,
) -> Result<(), CollectError> {
    let (low, high) = split_clauses(&filter.clauses, port);
    let (low, high) = (bytecode::compile(&low), bytecode::compile(&high));
    let clauses = &filter.clauses;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Rows>(4);
        // A thread starts in its parent thread's namespace, also one entered with setns:
        // both walks dump the same namespace.
        let other = scope.spawn(move || -> Result<(), CollectError> {
            let mut dumper = Dumper::open()?;
            let mut hand = |rows| tx.send(rows).is_ok();
            let mut theirs = RowSink::parts(part_rows, &mut hand);
            dumper.tcp_both_families(filter.states, high.as_deref(), [0; 2], ext, &mut |row| {
                theirs.offer(row, clauses)
            })?;
            theirs.finish();
            Ok(())
        });
        let forward = |sink: &mut RowSink, part: Rows| {
            for row in part.into_vec() {
                if !sink.offer(row, &[]) {
                    return false;
                }
            }
            true
        };
        let ours =
            dumper.tcp_both_families(filter.states, low.as_deref(), [0; 2], ext, &mut |row| {
                while let Ok(part) = rx.try_recv() {
                    if !forward(sink, part) {
                        return false;
                    }
                }
                sink.offer(row, clauses)
            });
        // The other half's rest, unless the taker wants no more. Either way the channel
        // closes before the join: a thread blocked on a full channel learns from it that
        // no more is wanted, and ends.
        if ours.is_ok() && !sink.stopped {
            for part in rx.iter() {
                if !forward(sink, part) {
                    break;
                }
            }
        }
        drop(rx);
        let theirs = other
            .join()
            .unwrap_or_else(|_| Err(CollectError::Netlink("the second dump panicked".into())));
        ours.and(theirs)
    })
}

/// Whether a failed dump may be read from /proc/net instead: any refusal under `auto`;
/// under `netlink` only a protocol the kernel has no sock_diag handler for (ENOENT).
fn may_fall_back(source: Source, err: &CollectError) -> bool {
    match err {
        CollectError::NetlinkRefused { errno, .. } => {
            source == Source::Auto || errno.raw_os_error() == Some(libc::ENOENT)
        }
        _ => false,
    }
}

fn read_proc(
    root: &Root,
    protocol: Protocol,
    family: Family,
    states: u32,
    ext: Extensions,
    push: &mut dyn FnMut(SocketRow) -> bool,
) -> Result<(), CollectError> {
    let wanted = |row: &SocketRow| states & (1 << row.state.kernel_value().min(31)) != 0;
    if protocol == Protocol::Unix {
        for entry in proc_unix::read(root)? {
            if wanted(&entry.row) && !push(entry.row) {
                break;
            }
        }
        return Ok(());
    }
    let (rel, _, _) = proc_inet::FILES
        .iter()
        .find(|(_, p, f)| *p == protocol && *f == family)
        .expect("every inet kind has a /proc/net file");
    let parsed = proc_inet::read(root, rel, protocol, family, procfs::ticks_per_second())?;
    // /proc has no extension but the drops of datagram sockets, which it always prints.
    let keep_drops = ext.skmem && protocol != Protocol::Tcp;
    for mut row in parsed.into_iter().filter(wanted) {
        if !keep_drops {
            row.extras = None;
        }
        if !push(row) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(errno: i32) -> CollectError {
        CollectError::NetlinkRefused {
            what: "raw".into(),
            errno: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn which_failures_fall_back_to_proc() {
        assert!(may_fall_back(Source::Auto, &refused(libc::EPERM)));
        assert!(may_fall_back(Source::Auto, &refused(libc::ENOENT)));
        assert!(may_fall_back(Source::Netlink, &refused(libc::ENOENT)));
        assert!(!may_fall_back(Source::Netlink, &refused(libc::EPERM)));
        let broken = CollectError::Netlink("bad reply".into());
        assert!(!may_fall_back(Source::Auto, &broken));
    }

    /// The one-walk TCP dump of both families gives exactly the rows of a dump per
    /// family, IPv4 first, and parts hand on every row once, in the same order.
    #[test]
    fn one_walk_for_both_families_matches_a_dump_per_family() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let Ok(v6) = std::net::TcpListener::bind("[::1]:0") else {
            crate::warn!("skipped: no IPv6 loopback here");
            return;
        };
        let _c4 = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let _c6 = std::net::TcpStream::connect(v6.local_addr().unwrap()).unwrap();
        // Ours by the listeners' whole addresses: a port alone can be another address's.
        let listening = [v4.local_addr().unwrap(), v6.local_addr().unwrap()];
        let ports = listening.map(|a| a.port());
        let ours = |rows: Vec<SocketRow>| -> Vec<(bool, Option<std::net::SocketAddr>, u64)> {
            rows.into_iter()
                .filter(|r| {
                    listening
                        .iter()
                        .any(|&a| r.local == Some(a) || r.remote == Some(a))
                })
                .map(|r| (r.family == Family::Inet6, r.local, r.inode))
                .collect()
        };
        let tcp = |families: &[Family]| SocketFilter {
            kinds: families.iter().map(|&f| (Protocol::Tcp, f)).collect(),
            ..SocketFilter::default()
        };
        let root = Root::default();
        let both = match collect(
            &root,
            Source::Netlink,
            &tcp(&[Family::Inet, Family::Inet6]),
            Extensions::default(),
        ) {
            Ok(rows) => ours(rows),
            Err(err) if std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
                panic!("NETSQL_REQUIRE_NETNS=1 but sock_diag fails: {err}")
            }
            Err(err) => {
                crate::warn!("skipped: no sock_diag here: {err}");
                return;
            }
        };
        let mut each = Vec::new();
        for family in [Family::Inet, Family::Inet6] {
            let rows = collect(
                &root,
                Source::Netlink,
                &tcp(&[family]),
                Extensions::default(),
            );
            each.extend(ours(rows.unwrap()));
        }
        // Two listeners, two clients, two accepted ends.
        assert_eq!(both.len(), 6, "{both:?}");
        let sorted = |mut v: Vec<_>| {
            v.sort();
            v
        };
        assert_eq!(sorted(both.clone()), sorted(each));
        let first_v6 = both.iter().position(|r| r.0).unwrap();
        assert!(
            both[first_v6..].iter().all(|r| r.0),
            "IPv4 rows first: {both:?}"
        );

        // In parts of two: the same rows, each once, in order.
        let mut handed = Vec::new();
        let mut take = |part: Rows| {
            assert!(part.len() <= 2);
            handed.extend(part.into_vec());
            true
        };
        let mut sink = RowSink::parts(2, &mut take);
        let filter = tcp(&[Family::Inet, Family::Inet6]);
        collect_into(
            &root,
            Source::Netlink,
            &filter,
            Extensions::default(),
            Walks::default(),
            None,
            &mut sink,
        )
        .unwrap();
        sink.finish();
        let handed = ours(handed);
        assert_eq!(sorted(handed), sorted(both.clone()));

        // Two walks split at a port between ours: each row once, none lost.
        let mut split = RowSink::whole();
        let mut dumper = Dumper::open().unwrap();
        let at = i64::from(ports[0].max(ports[1]));
        tcp_split(
            &mut dumper,
            &filter,
            Extensions::default(),
            at,
            SPLIT_PART,
            &mut split,
        )
        .unwrap();
        assert_eq!(sorted(ours(split.into_rows())), sorted(both));
    }

    /// A taker that stops while the second walk still hands over parts (split at port 1,
    /// this thread's walk has no rows, so every row comes from the other) ends the split:
    /// the other thread, blocked on the full channel, is told, not waited for forever.
    #[test]
    fn a_stop_while_the_other_walk_still_sends_ends_both() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _clients: Vec<_> = (0..8)
            .map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap())
            .collect();
        let filter = SocketFilter {
            kinds: vec![
                (Protocol::Tcp, Family::Inet),
                (Protocol::Tcp, Family::Inet6),
            ],
            ..SocketFilter::default()
        };
        for _ in 0..20 {
            let (done, ended) = std::sync::mpsc::channel();
            let filter = filter.clone();
            let split = std::thread::spawn(move || {
                let mut dumper = match Dumper::open() {
                    Ok(dumper) => dumper,
                    Err(err) if std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
                        panic!("NETSQL_REQUIRE_NETNS=1 but sock_diag cannot be opened: {err}")
                    }
                    Err(_) => return done.send(None).unwrap(),
                };
                let mut taken = 0;
                let mut take = |part: Rows| {
                    taken += part.len();
                    false
                };
                let mut sink = RowSink::parts(1, &mut take);
                // Parts of one row: the other walk's 17 and more fill the channel's 4 slots.
                let result =
                    tcp_split(&mut dumper, &filter, Extensions::default(), 1, 1, &mut sink);
                drop(sink);
                done.send(Some((result.is_ok(), taken))).unwrap();
            });
            let ended = match ended.recv_timeout(std::time::Duration::from_secs(20)) {
                Ok(ended) => ended,
                // The thread panicked (its own message says why): pass that on.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::panic::resume_unwind(split.join().unwrap_err())
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the split did not end after its taker stopped")
                }
            };
            let Some((ok, taken)) = ended else {
                crate::warn!("skipped: no sock_diag here");
                return;
            };
            assert!(ok);
            assert_eq!(taken, 1, "one part taken, then no more");
        }
    }

    #[test]
    fn proc_source_reads_the_fixture_tree() {
        let root = Root {
            proc: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc").into(),
            etc: "/nonexistent".into(),
            run: "/nonexistent".into(),
        };
        let rows = collect(
            &root,
            Source::Proc,
            &SocketFilter::default(),
            Extensions::default(),
        )
        .unwrap();
        assert_eq!(rows.len(), 7, "fixtures/proc/ss.txt lists 7 sockets");
        let listeners = SocketFilter {
            states: 1 << 10,
            ..SocketFilter::default()
        };
        let rows = collect(&root, Source::Proc, &listeners, Extensions::default()).unwrap();
        assert_eq!(rows.len(), 3, "two tcp listeners and a unix one");
    }

    #[test]
    fn a_moment_dumps_tcp_once_for_what_its_scans_ask_together() {
        let root = Root::default();
        let info = Extensions {
            tcp_info: true,
            ..Extensions::default()
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let dump = |ext: Extensions| -> Result<Parts, CollectError> {
            asked.borrow_mut().push(ext);
            Ok(Vec::new())
        };
        let all = SocketFilter::default();
        let shared = SharedDump::default();
        // Outside a moment: no rows kept, the caller dumps.
        assert!(shared.tcp_rows(&root, &all, info, dump).is_none());
        shared.begin(info);
        // The first scan asks for nothing, its dump for what the moment's scans want.
        shared
            .tcp_rows(&root, &all, Extensions::default(), dump)
            .unwrap()
            .unwrap();
        assert_eq!(*asked.borrow(), [info]);
        // The second takes those rows.
        shared.tcp_rows(&root, &all, info, dump).unwrap().unwrap();
        assert_eq!(asked.borrow().len(), 1);
        // Other states, or more than was asked for: a dump of their own.
        let listening = SocketFilter {
            states: 1 << 10,
            ..SocketFilter::default()
        };
        shared
            .tcp_rows(&root, &listening, info, dump)
            .unwrap()
            .unwrap();
        let memory = Extensions {
            skmem: true,
            ..Extensions::default()
        };
        shared.tcp_rows(&root, &all, memory, dump).unwrap().unwrap();
        assert_eq!(*asked.borrow(), [info, info, info.union(memory)]);
        // A failed dump is not kept.
        let failing = |_| Err(CollectError::Netlink("no".into()));
        let port = SocketFilter {
            clauses: vec![Clause(vec![Test::Port {
                side: Side::Local,
                cmp: Cmp::Eq,
                value: 22,
            }])],
            ..SocketFilter::default()
        };
        assert!(shared
            .tcp_rows(&root, &port, info, failing)
            .unwrap()
            .is_err());
        shared.tcp_rows(&root, &port, info, dump).unwrap().unwrap();
        assert_eq!(asked.borrow().len(), 4);
        shared.end();
        assert!(shared.tcp_rows(&root, &all, info, dump).is_none());
    }

    #[test]
    fn a_namespace_read_after_setns_is_told_apart_like_ours() {
        // netns.rs reads an entered namespace through /proc/thread-self.
        let ours = netns::of_thread(&Root::default());
        assert!(ours.is_some());
        let entered = Root {
            proc: "/proc/thread-self".into(),
            ..Root::default()
        };
        assert_eq!(netns::of_thread(&entered), ours);
        let fixture = Root {
            proc: "/nonexistent".into(),
            ..Root::default()
        };
        assert_eq!(netns::of_thread(&fixture), None);
    }

    #[test]
    fn a_copy_keeps_extras_only_when_asked() {
        let row = SocketRow {
            extras: Some(Box::default()),
            path: Some("/run/x".into()),
            ..SocketRow::default()
        };
        assert_eq!(row.copy(true), row);
        let bare = row.copy(false);
        assert_eq!(bare.extras, None);
        assert_eq!(bare.path, row.path);
    }

    #[test]
    fn a_moments_rows_are_handed_on_in_place_and_in_order() {
        let row = |inode| SocketRow {
            inode,
            extras: Some(Box::default()),
            ..SocketRow::default()
        };
        let dump: Parts = vec![
            Arc::new(vec![row(1), row(2), row(3)]),
            Arc::new(vec![row(4)]),
        ];
        // In parts of two, after a row of the scan's own.
        let mut handed: Vec<Rows> = Vec::new();
        let mut take = |rows: Rows| {
            handed.push(rows);
            true
        };
        let mut sink = RowSink::parts(2, &mut take);
        assert!(sink.offer(row(9), &[]));
        assert!(sink.offer_shared(&dump, false));
        assert_eq!(sink.len(), 5);
        // Runs handed on cannot be taken back.
        assert!(!sink.rewind(0));
        sink.finish();
        let inodes = |rows: &Rows| rows.iter().map(|r| r.inode).collect::<Vec<_>>();
        let runs: Vec<Vec<u64>> = handed.iter().map(inodes).collect();
        assert_eq!(runs, [vec![9], vec![1, 2], vec![3], vec![4]]);
        // Read where the moment keeps them, not copied.
        let kept = |rows: &Rows, part: &Arc<Vec<SocketRow>>| match rows {
            Rows::Shared(all, _) => Arc::ptr_eq(all, part),
            Rows::Own(_) => false,
        };
        assert!(kept(&handed[1], &dump[0]) && kept(&handed[2], &dump[0]));
        assert!(kept(&handed[3], &dump[1]));
        // A taker that wants no more gets no more.
        let mut count = 0;
        let mut enough = |_: Rows| {
            count += 1;
            false
        };
        let mut sink = RowSink::parts(2, &mut enough);
        assert!(!sink.offer_shared(&dump, false));
        assert_eq!(count, 1);
        // A whole sink copies them, without the extras it did not ask for.
        let mut whole = RowSink::whole();
        assert!(whole.offer_shared(&dump, false));
        let rows = whole.into_rows();
        assert_eq!(
            rows.iter().map(|r| r.inode).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(rows.iter().all(|r| r.extras.is_none()));
        // A shared run changed is copied first; the moment's rows stay as they were.
        drop(handed);
        let mut run = Rows::Shared(dump[0].clone(), 1..3);
        run.to_mut().push(row(5));
        assert_eq!(inodes(&run), [2, 3, 5]);
        assert_eq!(Arc::strong_count(&dump[0]), 1, "the run let go of the part");
        let part: Vec<u64> = dump[0].iter().map(|r| r.inode).collect();
        assert_eq!(part, [1, 2, 3]);
    }

    #[test]
    fn a_moments_scans_read_its_one_tcp_dump_in_place() {
        // At least one TCP socket in the dump.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let root = Root::default();
        let shared = SharedDump::default();
        shared.begin(Extensions::default());
        let filter = SocketFilter {
            kinds: vec![
                (Protocol::Tcp, Family::Inet),
                (Protocol::Tcp, Family::Inet6),
            ],
            ..SocketFilter::default()
        };
        let scan = || {
            let mut runs = Vec::new();
            let mut take = |rows: Rows| {
                runs.push(rows);
                true
            };
            let mut sink = RowSink::parts(SHARED_PART, &mut take);
            let moment = Some(&shared);
            let none = Extensions::default();
            collect_into(
                &root,
                Source::Netlink,
                &filter,
                none,
                Walks::Serial,
                moment,
                &mut sink,
            )
            .unwrap();
            sink.finish();
            runs
        };
        let (first, second) = (scan(), scan());
        assert!(!first.is_empty());
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            match (a, b) {
                (Rows::Shared(a, ra), Rows::Shared(b, rb)) => {
                    assert!(Arc::ptr_eq(a, b) && ra == rb, "{ra:?} {rb:?}");
                }
                other => panic!("copied, not read in place: {other:?}"),
            }
        }
        shared.end();
    }
}
