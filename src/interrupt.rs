//! Ctrl-C as a flag that a running query polls, so dropping the query (and any
//! half-written file) is ordinary control flow. Not tokio's signal driver: it opens a unix
//! socket pair, which netsql would then list among the host's sockets.
//!
//! A query over `socket_events` runs until Ctrl-C; there the interrupt is the normal end,
//! not a failure. While such a stream is open it claims the interrupt: [`raised`] does
//! not fire, and the stream [`take`]s the flag and ends, so what the query made of the
//! rows so far (the rows themselves, or an aggregate) is still printed, with exit 0.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static CLAIMS: AtomicUsize = AtomicUsize::new(0);
/// Set by [`end_streams`]: every claiming stream ends as on Ctrl-C.
static ENDING: AtomicBool = AtomicBool::new(false);
/// Set when a stream takes Ctrl-C as its end ([`stream_interrupted`]).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Ends every stream that claims the interrupt as Ctrl-C would, after what it has
/// queued: a recording that stops (its count reached, SIGTERM) still writes the events
/// the kernel delivered before that.
pub fn end_streams() {
    ENDING.store(true, Ordering::Relaxed);
}

/// The flag SIGINT sets from now on (instead of ending the process); one per process.
pub fn flag() -> std::io::Result<Arc<AtomicBool>> {
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone())?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

/// [`flag`], set by SIGTERM and SIGHUP too, for a one-shot run: `timeout`, `kill` or a
/// closed terminal end its query as Ctrl-C does (a stream ends with what it has; any
/// other query fails, and its `-o` file is not left half-written). A second SIGTERM or
/// SIGHUP ends the process at once. The REPL keeps their default: they end it.
pub fn one_shot_flag() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGTERM};
    static REGISTERED: OnceLock<()> = OnceLock::new();
    let flag = flag()?;
    if REGISTERED.get().is_none() {
        for signal in [SIGTERM, SIGHUP] {
            // The shutdown first: it sees the flag as the signal before left it.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, flag.clone())?;
            signal_hook::flag::register(signal, flag.clone())?;
        }
        let _ = REGISTERED.set(());
    }
    Ok(flag)
}

/// SIGINT or SIGTERM, for the long-running modes (`record`, `serve`, `metrics`) that end
/// cleanly on either: a flag to check between steps, and [`Termination::raised`] to wait
/// for it. The wait polls nothing (an idle exporter would otherwise wake 50 times a
/// second): the signal handler writes a byte to a pipe, not a socket, which a thread of
/// its own reads.
#[derive(Clone)]
pub struct Termination {
    flag: Arc<AtomicBool>,
    raised: tokio::sync::watch::Receiver<bool>,
}

pub fn termination() -> std::io::Result<Termination> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, flag.clone())?;
    signal_hook::flag::register(SIGTERM, flag.clone())?;
    let (mut reader, writer) = std::io::pipe()?;
    signal_hook::low_level::pipe::register(SIGINT, writer.try_clone()?)?;
    signal_hook::low_level::pipe::register(SIGTERM, writer)?;
    let (raise, raised) = tokio::sync::watch::channel(false);
    std::thread::Builder::new()
        .name("netsql-signals".into())
        .spawn(move || loop {
            use std::io::Read;
            // The handlers set the flag before they write. Read on after the first
            // signal: a second one finds the pipe drained.
            match reader.read(&mut [0u8; 64]) {
                Ok(n) if n > 0 => {
                    let _ = raise.send(true);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                // Cannot happen while the handlers hold the write end; `raised` then
                // falls back to checking the flag.
                _ => return,
            }
        })?;
    Ok(Termination { flag, raised })
}

impl Termination {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Resolves once SIGINT or SIGTERM has come.
    pub async fn raised(&self) {
        let mut raised = self.raised.clone();
        if raised.wait_for(|raised| *raised).await.is_err() {
            until_set(&self.flag).await;
        }
    }
}

/// Resolves once `flag` is set.
async fn until_set(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resolves once `flag` is set and no stream claims the interrupt.
pub async fn raised(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) || CLAIMS.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Held by a stream that ends on Ctrl-C by itself.
pub struct Claim(());

impl Claim {
    pub fn new() -> Claim {
        CLAIMS.fetch_add(1, Ordering::Relaxed);
        Claim(())
    }

    /// Whether Ctrl-C was pressed (it is consumed, so the rest of the query runs on) or
    /// [`end_streams`] was called.
    pub fn take(&self) -> bool {
        if ENDING.load(Ordering::Relaxed) {
            return true;
        }
        let pressed = FLAG
            .get()
            .is_some_and(|flag| flag.swap(false, Ordering::Relaxed));
        if pressed {
            TAKEN.store(true, Ordering::Relaxed);
        }
        pressed
    }
}

/// Whether a stream has ended on Ctrl-C since the last call: the REPL's `\watch`, which
/// repeats a statement until Ctrl-C, stops then too (the stream took the press as its
/// own end, and the watch ran it again, for good).
pub fn stream_interrupted() -> bool {
    TAKEN.swap(false, Ordering::Relaxed)
}

impl Default for Claim {
    fn default() -> Self {
        Claim::new()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMS.fetch_sub(1, Ordering::Relaxed);
    }
}
