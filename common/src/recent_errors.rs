//! A bounded ring of this process's recent error events (under-store errors, lost workers,
//! requests answered 5xx), for the dashboard's errors page. Older events fall off.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Events kept.
pub const KEPT: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEvent {
    pub at_ms: i64,
    /// `under_store`, `worker_lost`, `request`.
    pub kind: &'static str,
    pub message: String,
}

static RING: Mutex<VecDeque<ErrorEvent>> = Mutex::new(VecDeque::new());

/// Records an event (and counts it in `strata_error_events_total{kind}`).
pub fn record(kind: &'static str, message: impl Into<String>) {
    metrics::counter!("strata_error_events_total", "kind" => kind).increment(1);
    let e = ErrorEvent { at_ms: crate::ids::now_ms(), kind, message: message.into() };
    let mut ring = RING.lock().unwrap_or_else(|p| p.into_inner());
    if ring.len() >= KEPT {
        ring.pop_front();
    }
    ring.push_back(e);
}

/// The events kept, newest first.
pub fn recent() -> Vec<ErrorEvent> {
    RING.lock().unwrap_or_else(|p| p.into_inner()).iter().rev().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_events_only() {
        for i in 0..KEPT + 5 {
            record("request", format!("event {i}"));
        }
        let r = recent();
        assert!(r.len() <= KEPT);
        assert!(r.iter().any(|e| e.message == format!("event {}", KEPT + 4)));
        assert!(!r.iter().any(|e| e.message == "event 0"));
        assert_eq!(r.iter().position(|e| e.message == format!("event {}", KEPT + 4)), Some(0), "newest first");
    }
}
