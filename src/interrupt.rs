//! Ctrl-C as a flag that a running query polls, so dropping the query (and any
//! half-written file) is ordinary control flow. Not tokio's signal driver: it opens a unix
//! socket pair, which netsql would then list among the host's sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A flag SIGINT sets from now on (instead of ending the process).
pub fn flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone())?;
    Ok(flag)
}

/// Resolves once `flag` is set.
pub async fn raised(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
