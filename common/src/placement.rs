//! Rendezvous (highest random weight) hashing of (version id, block index) over live workers,
//! weighted by capacity: each worker scores `-w / ln(u)` with `u` a hash in (0, 1), the highest
//! score wins, and the ranking gives the fallback order when a worker is down.

use crate::proto::WorkerInfo;

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a cheap, well-distributed 64-bit hash.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn score(worker: &WorkerInfo, version: u64, block: u64) -> f64 {
    let h = mix(mix(version ^ mix(block)) ^ worker.id);
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let weight = (worker.capacity_bytes.max(1) as f64).max(1.0);
    -weight / u.ln()
}

/// Workers in the order a block should be tried: the owner first.
pub fn rank(workers: &[WorkerInfo], version: u64, block: u64) -> Vec<&WorkerInfo> {
    let mut scored: Vec<(f64, &WorkerInfo)> = workers.iter().map(|w| (score(w, version, block), w)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    scored.into_iter().map(|(_, w)| w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: u64, cap: u64) -> WorkerInfo {
        WorkerInfo { id, capacity_bytes: cap, ..Default::default() }
    }

    #[test]
    fn spreads_by_capacity_and_moves_little() {
        let ws = vec![w(1, 100), w(2, 100), w(3, 200)];
        let mut counts = [0usize; 4];
        for b in 0..20_000 {
            counts[rank(&ws, 7, b)[0].id as usize] += 1;
        }
        // Weighted 1:1:2 -> about 5000/5000/10000.
        assert!((4_500..5_500).contains(&counts[1]), "{counts:?}");
        assert!((9_000..11_000).contains(&counts[3]), "{counts:?}");
        // Removing worker 2 only moves the blocks it owned.
        let fewer = vec![w(1, 100), w(3, 200)];
        for b in 0..2_000 {
            let before = rank(&ws, 7, b)[0].id;
            if before != 2 {
                assert_eq!(rank(&fewer, 7, b)[0].id, before);
            }
        }
    }
}
