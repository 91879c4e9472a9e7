//! What a benchmark measures and prints: latencies, rates, percentiles.

use std::time::Duration;

use serde::Serialize;

/// The `p`th percentile (0 < p <= 100) of sorted samples, by nearest rank.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `30s`, `2m`, `500ms`, `1h`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let ms = crate::admin::parse_interval(s).map_err(|e| e.to_string())?;
    if ms <= 0 {
        return Err(format!("{s:?} is not a positive duration (use e.g. 30s, 2m)"));
    }
    Ok(Duration::from_millis(ms as u64))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    strata_common::config::parse_size(s).ok_or_else(|| format!("{s:?} is not a size (use e.g. 4KiB, 1MiB, 65536)"))
}

/// One operation's samples, as a task gathers them.
#[derive(Default)]
pub struct Samples {
    /// Latencies of the successful requests, in microseconds.
    pub micros: Vec<u32>,
    pub errors: u64,
    pub bytes: u64,
    pub keys: u64,
    pub first_error: Option<String>,
}

impl Samples {
    pub fn ok(&mut self, took: Duration, bytes: u64, keys: u64) {
        self.micros.push(took.as_micros().min(u32::MAX as u128) as u32);
        self.bytes += bytes;
        self.keys += keys;
    }

    pub fn err(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.keys += other.keys;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The figures of one operation over a run.
#[derive(Serialize, Debug, Clone)]
pub struct OpReport {
    pub op: &'static str,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub mib_per_sec: f64,
    /// Listed keys per second (list only).
    pub keys_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
}

impl OpReport {
    pub fn new(op: &'static str, mut s: Samples, elapsed: Duration) -> OpReport {
        s.micros.sort_unstable();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ms = |p: f64| percentile(&s.micros, p).map(|us| us as f64 / 1000.0).unwrap_or(0.0);
        let ops = s.micros.len() as u64;
        OpReport {
            op,
            ops,
            errors: s.errors,
            seconds: secs,
            ops_per_sec: ops as f64 / secs,
            mib_per_sec: s.bytes as f64 / secs / (1u64 << 20) as f64,
            keys_per_sec: s.keys as f64 / secs,
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
            first_error: s.first_error,
        }
    }

    pub fn line(&self) -> String {
        let mut l = format!(
            "{:<6} {:>10.0} ops/s {:>9.1} MiB/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  errors {}",
            self.op,
            self.ops_per_sec,
            self.mib_per_sec,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors
        );
        if self.keys_per_sec > 0.0 {
            l.push_str(&format!("  ({:.0} keys/s)", self.keys_per_sec));
        }
        if let Some(e) = &self.first_error {
            l.push_str(&format!("\n       first error: {e}"));
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("4 parsecs").is_err());
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn report_rates_and_merge() {
        let mut a = Samples::default();
        a.ok(Duration::from_millis(2), 4096, 0);
        a.ok(Duration::from_millis(4), 4096, 0);
        let mut b = Samples::default();
        b.err("503".into());
        b.ok(Duration::from_millis(1), 4096, 0);
        a.merge(b);
        let r = OpReport::new("get", a, Duration::from_secs(2));
        assert_eq!((r.ops, r.errors), (3, 1));
        assert_eq!(r.ops_per_sec, 1.5);
        assert_eq!(r.p50_ms, 2.0);
        assert_eq!(r.max_ms, 4.0);
        assert_eq!(r.first_error.as_deref(), Some("503"));
        assert!((r.mib_per_sec - 3.0 * 4096.0 / 2.0 / 1048576.0).abs() < 1e-12);
    }
}
