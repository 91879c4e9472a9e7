//! Metadata store throughput: `cargo run --release --features etcd -p strata-master --example
//! kvbench -- URL [TXNS] [CONCURRENCY]`. Each transaction reads one key and writes one (an
//! object commit's shape); the keys are spread so that transactions rarely conflict.

use std::sync::Arc;
use std::time::Instant;

use strata_common::kv::transact;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(url) = args.get(1) else {
        eprintln!(
            "usage: kvbench URL [TXNS] [CONCURRENCY]   (URL: embedded:///tmp/x.redb, etcd://127.0.0.1:2379/bench, memory://)"
        );
        std::process::exit(2);
    };
    let txns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let conc: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(16);
    let store = match strata_master::store::open(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open {url}: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (w..txns).step_by(conc) {
                let key = format!("bench/{:08}", i * 7919 % 1_000_003).into_bytes();
                transact(store.as_ref(), |t| {
                    let key = key.clone();
                    Box::pin(async move {
                        let old = t.get(&key).await?;
                        t.set(&key, &[old.map(|v| v.len() as u8).unwrap_or(0); 200]);
                        Ok(())
                    })
                })
                .await
                .expect("transaction");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  {:<12} {txns} read+write transactions, {conc} at a time: {:8.0} txn/s",
        store.name(),
        txns as f64 / secs
    );
}
