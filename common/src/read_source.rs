//! Where a request's bytes came from, noted by whoever reads them (a worker's cache, a fill
//! from the under store, the gateway reading the under store itself) into a cell the gateway
//! scopes around the request and its answer's body. A worker in another process cannot note
//! into it: the gateway then knows only that a worker served the bytes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub const WORKER: u8 = 1;
pub const CACHE_HIT: u8 = 2;
pub const UNDER_STORE: u8 = 4;

tokio::task_local! {
    static SOURCE: Arc<AtomicU8>;
}

/// Notes `flag` for the request being served, if any.
pub fn note(flag: u8) {
    let _ = SOURCE.try_with(|s| s.fetch_or(flag, Ordering::Relaxed));
}

/// Runs `f` with notes going into `cell`.
pub async fn scope<F: Future>(cell: Arc<AtomicU8>, f: F) -> F::Output {
    SOURCE.scope(cell, f).await
}

/// Runs `f` (a poll) with notes going into `cell`.
pub fn sync_scope<R>(cell: Arc<AtomicU8>, f: impl FnOnce() -> R) -> R {
    SOURCE.sync_scope(cell, f)
}

/// The access log's `source`: `under_store` if any byte came from there, `cache` if every page
/// was a hit, `worker` if a worker in another process served it; None: no object bytes read.
pub fn label(flags: u8) -> Option<&'static str> {
    if flags & UNDER_STORE != 0 {
        Some("under_store")
    } else if flags & CACHE_HIT != 0 {
        Some("cache")
    } else if flags & WORKER != 0 {
        Some("worker")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_reach_the_cell_of_their_scope_only() {
        let cell = Arc::new(AtomicU8::new(0));
        note(UNDER_STORE); // outside any scope: dropped
        scope(cell.clone(), async { note(CACHE_HIT) }).await;
        assert_eq!(label(cell.load(Ordering::Relaxed)), Some("cache"));
        sync_scope(cell.clone(), || note(UNDER_STORE));
        assert_eq!(label(cell.load(Ordering::Relaxed)), Some("under_store"));
        assert_eq!(label(WORKER), Some("worker"));
        assert_eq!(label(0), None);
    }
}
