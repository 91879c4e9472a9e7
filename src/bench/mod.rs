//! `strata bench`: a load generator for any S3 endpoint (Strata or not). It uploads the objects
//! a workload needs, runs `--concurrency` connections for `--duration`, printing a progress line
//! each second, then prints ops/s, MiB/s, latency percentiles and errors per operation.

mod client;
pub mod sign;
pub mod stats;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use client::{Client, Op, Target};
pub use stats::OpReport;
use stats::Samples;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// GETs of random objects among --objects.
    Get,
    /// PUTs overwriting the --objects keys in turn.
    Put,
    /// HEADs of random objects.
    Head,
    /// ListObjectsV2 pages (1000 keys) over the --objects keys, again and again.
    List,
    /// 50 % GET, 30 % HEAD, 20 % PUT.
    Mixed,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(value_enum)]
    pub workload: Workload,
    /// The S3 endpoint (http only).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The bucket to use; created if missing.
    #[arg(long, default_value = "strata-bench")]
    pub bucket: String,
    /// Object size, e.g. 4KiB, 1MiB.
    #[arg(long, default_value = "4KiB", value_parser = stats::parse_size)]
    pub size: u64,
    /// How many objects (keys) the workload spreads over.
    #[arg(long, default_value_t = 1000)]
    pub objects: u64,
    /// Requests in flight (one connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long the measured part runs, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = stats::parse_duration)]
    pub duration: Duration,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Leave the objects in the bucket afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Do not upload: the objects are there from an earlier run with --keep (same --size and
    /// --objects).
    #[arg(long)]
    pub reuse: bool,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// get/head: read this one existing object (e.g. a large one) instead of uploading
    /// --objects; nothing is uploaded or deleted.
    #[arg(long)]
    pub key: Option<String>,
    /// get: each GET reads a random range of this many bytes (e.g. 1MiB) of the object.
    #[arg(long, value_parser = stats::parse_size)]
    pub range: Option<u64>,
    /// Stop after this many requests instead of --duration. The objects and ranges they read
    /// are then the same in every run (a cold run and a warm one read the same bytes).
    #[arg(long)]
    pub requests: Option<u64>,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub workload: String,
    pub endpoint: String,
    pub size: u64,
    pub objects: u64,
    pub concurrency: usize,
    pub results: Vec<OpReport>,
}

impl Report {
    pub fn op(&self, op: &str) -> Option<&OpReport> {
        self.results.iter().find(|r| r.op == op)
    }
    pub fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.errors).sum()
    }
}

/// Counters the progress line reads while the run goes.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// The key of object `i` (objects of different sizes do not share keys).
fn key(size: u64, i: u64) -> String {
    format!("bench-{size}/{i:08}")
}

/// `strata bench`: prints the report (text, or JSON with --json).
pub async fn main(args: BenchArgs) -> Result<()> {
    let report = run(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:?} against {}: {} B objects x {}, {} connections, {:.1} s",
            args.workload,
            args.endpoint,
            args.size,
            args.objects,
            args.concurrency,
            report.results.first().map(|r| r.seconds).unwrap_or(0.0)
        );
        for r in &report.results {
            println!("  {}", r.line());
        }
    }
    if report.results.iter().all(|r| r.ops == 0) {
        let first = report.results.iter().find_map(|r| r.first_error.as_deref()).unwrap_or("none sent");
        bail!("no request succeeded; the first error: {first}");
    }
    Ok(())
}

/// Prepares, runs and cleans up one workload; the report of the measured part.
pub async fn run(args: &BenchArgs) -> Result<Report> {
    if args.concurrency == 0 || args.objects == 0 || args.requests == Some(0) || args.range == Some(0) {
        bail!("--concurrency, --objects, --requests and --range must be at least 1");
    }
    if args.key.is_some() && !matches!(args.workload, Workload::Get | Workload::Head) {
        bail!("--key reads one existing object: it goes with get or head only");
    }
    if args.range.is_some() && args.workload != Workload::Get {
        bail!("--range goes with get only");
    }
    let mut client = Client::new(args)?;
    if let Some(k) = &args.key {
        client.target = Some(Target { key: k.clone(), size: client.object_size(k).await? });
    }
    if let (Some(r), Some(t)) = (args.range, &client.target)
        && r > t.size
    {
        bail!("--range {r} is larger than {} ({} bytes)", t.key, t.size);
    }
    let client = Arc::new(client);
    let fixed = client.target.is_some();
    if !args.reuse && !fixed {
        client.create_bucket().await?;
    }
    if args.workload != Workload::Put && !args.reuse && !fixed {
        each_object(&client, args, "uploading", |c, i| async move { c.put(&key(c.size, i)).await }).await?;
    }
    let results = measure(&client, args).await;
    if !args.keep && !fixed {
        each_object(&client, args, "deleting", |c, i| async move { c.delete(&key(c.size, i)).await }).await?;
    }
    Ok(Report {
        workload: format!("{:?}", args.workload).to_lowercase(),
        endpoint: args.endpoint.clone(),
        size: args.size,
        objects: args.objects,
        concurrency: args.concurrency,
        results,
    })
}

/// Runs `f` on every object index with --concurrency in flight, with progress; fails on the
/// first error.
async fn each_object<F, Fut>(client: &Arc<Client>, args: &BenchArgs, what: &str, f: F) -> Result<()>
where
    F: Fn(Arc<Client>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let progress = Progress::new(args.quiet);
    let mut done = 0u64;
    let mut results =
        futures::stream::iter(0..args.objects).map(|i| f(client.clone(), i)).buffer_unordered(args.concurrency);
    while let Some(r) = results.next().await {
        r?;
        done += 1;
        progress.maybe(|| format!("{what} {done}/{} objects", args.objects));
    }
    progress.done();
    Ok(())
}

/// How long the run waits after --duration for the requests in flight.
const GRACE: Duration = Duration::from_secs(5);

async fn measure(client: &Arc<Client>, args: &BenchArgs) -> Vec<OpReport> {
    let live = Arc::new(Live::default());
    let started = Instant::now();
    // With --requests the run ends when they are done (a day is only a bound).
    let deadline = started + if args.requests.is_some() { Duration::from_secs(86_400) } else { args.duration };
    let plan = Arc::new(Plan {
        workload: args.workload,
        objects: args.objects,
        range: args.range,
        requests: args.requests,
        issued: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|t| tokio::spawn(worker(client.clone(), plan.clone(), t as u64, deadline, live.clone())))
        .collect();
    let ticker = tokio::spawn(progress(live.clone(), started, args.duration, args.requests, args.quiet));
    let mut merged: Vec<(Op, Samples)> = Vec::new();
    for mut t in tasks {
        // A request still in flight after the grace is dropped (and not counted).
        let grace = tokio::time::Instant::from_std(deadline + GRACE);
        let Ok(Ok(samples)) = tokio::time::timeout_at(grace, &mut t).await else {
            t.abort();
            continue;
        };
        for (op, s) in samples {
            match merged.iter_mut().find(|(o, _)| *o == op) {
                Some((_, m)) => m.merge(s),
                None => merged.push((op, s)),
            }
        }
    }
    let elapsed = started.elapsed();
    ticker.abort();
    Progress::new(args.quiet).done();
    merged.sort_by_key(|(op, _)| *op as u8);
    merged.into_iter().map(|(op, s)| OpReport::new(op.name(), s, elapsed)).collect()
}

fn pick(workload: Workload, rng: &mut StdRng) -> Op {
    match workload {
        Workload::Get => Op::Get,
        Workload::Put => Op::Put,
        Workload::Head => Op::Head,
        Workload::List => Op::List,
        Workload::Mixed => match rng.random_range(0..100) {
            0..50 => Op::Get,
            50..80 => Op::Head,
            _ => Op::Put,
        },
    }
}

/// What the connections share of a run.
struct Plan {
    workload: Workload,
    objects: u64,
    range: Option<u64>,
    requests: Option<u64>,
    /// Requests taken so far (with --requests).
    issued: AtomicU64,
}

/// One connection's loop until the deadline (or the last of --requests).
async fn worker(
    client: Arc<Client>,
    plan: Arc<Plan>,
    task: u64,
    deadline: Instant,
    live: Arc<Live>,
) -> Vec<(Op, Samples)> {
    let mut rng = StdRng::seed_from_u64(task);
    let mut samples: Vec<(Op, Samples)> = Vec::new();
    let mut next_put = task;
    let mut list_token: Option<String> = None;
    while Instant::now() < deadline {
        if let Some(n) = plan.requests {
            // Request number r draws from its own seed: the same objects and ranges each run.
            let r = plan.issued.fetch_add(1, Ordering::Relaxed);
            if r >= n {
                break;
            }
            rng = StdRng::seed_from_u64(r);
        }
        let op = pick(plan.workload, &mut rng);
        let i = match op {
            Op::Put => {
                next_put += client.concurrency;
                next_put % plan.objects
            }
            _ => rng.random_range(0..plan.objects),
        };
        let k = match &client.target {
            Some(t) => t.key.clone(),
            None => key(client.size, i),
        };
        let t = Instant::now();
        let result = match op {
            Op::Get => match (plan.range, &client.target) {
                (Some(len), Some(target)) => {
                    let start = rng.random_range(0..=target.size - len);
                    client.get_range(&k, start, len).await.map(|b| (b, 0))
                }
                (Some(len), None) => {
                    let start = rng.random_range(0..=client.size.saturating_sub(len));
                    client.get_range(&k, start, len.min(client.size)).await.map(|b| (b, 0))
                }
                (None, _) => client.get(&k).await.map(|b| (b, 0)),
            },
            Op::Head => client.head(&k).await.map(|_| (0, 0)),
            Op::Put => client.put(&k).await.map(|b| (b, 0)),
            Op::List => client.list_page(&mut list_token).await.map(|n| (0, n)),
        };
        let took = t.elapsed();
        let s = match samples.iter_mut().find(|(o, _)| *o == op) {
            Some((_, s)) => s,
            None => {
                samples.push((op, Samples::default()));
                &mut samples.last_mut().expect("just pushed").1
            }
        };
        match result {
            Ok((bytes, keys)) => {
                s.ok(took, bytes, keys);
                live.ops.fetch_add(1, Ordering::Relaxed);
                live.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(e) => {
                s.err(format!("{e:#}"));
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    samples
}

/// A progress line each second: in place on a terminal, one line each otherwise.
struct Progress {
    quiet: bool,
    tty: bool,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        Progress { quiet, tty: std::io::stderr().is_terminal(), last: std::sync::Mutex::new(Instant::now()) }
    }

    fn maybe(&self, line: impl FnOnce() -> String) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if !self.quiet && last.elapsed() >= Duration::from_secs(1) {
            *last = Instant::now();
            self.print(&line());
        }
    }

    fn print(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn done(&self) {
        if self.tty && !self.quiet {
            eprint!("\r\x1b[2K");
        }
    }
}

async fn progress(live: Arc<Live>, started: Instant, duration: Duration, requests: Option<u64>, quiet: bool) {
    let p = Progress::new(quiet);
    let (mut ops, mut bytes) = (0u64, 0u64);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tick.tick().await;
        let (o, b) = (live.ops.load(Ordering::Relaxed), live.bytes.load(Ordering::Relaxed));
        if !quiet {
            let part = match requests {
                Some(n) => format!("{:>4.0}s {}/{n} requests", started.elapsed().as_secs_f64(), o),
                None => format!("{:>4.0}s/{}s", started.elapsed().as_secs_f64(), duration.as_secs()),
            };
            p.print(&format!(
                "{part} {:>9} ops/s {:>9.1} MiB/s  errors {}",
                o - ops,
                (b - bytes) as f64 / (1u64 << 20) as f64,
                live.errors.load(Ordering::Relaxed)
            ));
        }
        (ops, bytes) = (o, b);
    }
}
