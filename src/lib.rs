//! The `strata` binary's roles: `local` (all three in one process), `master`, `worker`,
//! `gateway`. Each runs until its shutdown token fires.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strata_common::api::{MasterApi, WorkerApi};
use strata_common::config::{Config, DEFAULT_GATEWAY_ADDR, DEFAULT_MASTER_ADDR, DEFAULT_WORKER_ADDR, abs};
use strata_common::master_client::GrpcMaster;
use strata_common::ops::{Readiness, bind};
use strata_common::server::{Limits, serve_with};
use strata_common::tls::ServerTls;
use strata_common::worker_client::HttpWorker;
use strata_gateway::{Gateway, GatewayOptions, IN_PROCESS, LocalWorker};
use strata_master::ui::Dashboard;
use strata_master::{Jobs, Master, MasterOptions, RootCredentials};
use strata_worker::{PageStore, Worker, WorkerIdentity, register_and_heartbeat};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod admin;
pub mod admin_users;
pub mod alloc;
pub mod bench;

const REGION: &str = "us-east-1";

async fn open_master(cfg: &Config, address: &str, restore: Option<&Path>) -> Result<(Arc<Master>, RootCredentials)> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create the data folder {}", cfg.data_dir.display()))?;
    let url = cfg.metadata_url();
    if cfg.election.is_some() && (url.starts_with("embedded:") || url.starts_with("memory:")) {
        bail!(
            "election is set but the metadata store ({url}) is this master's own: masters that share the primary \
             role need a shared store (metadata = \"etcd://...\" or \"fdb:///path/fdb.cluster\")"
        );
    }
    let store = strata_master::store::open(&url).await?;
    if let Some(file) = restore {
        restore_into(store.as_ref(), file).await?;
    }
    strata_master::backup::check_not_restoring(store.as_ref()).await?;
    // Elected masters share a store: they seal users' secrets with one key, from their common secret.
    let shared = if cfg.election.is_some() { Some(cluster_secret(cfg, "master")?) } else { None };
    let creds = RootCredentials::load_or_create(
        &cfg.data_dir,
        cfg.root_access_key.as_deref(),
        cfg.root_secret_key.as_deref(),
        shared.as_deref(),
    )?;
    let master = Master::new(
        store,
        MasterOptions {
            root_ufs: cfg.root_ufs_url(),
            credentials: creds.clone(),
            worker_timeout: Duration::from_millis(cfg.worker_timeout_ms),
            address: address.to_string(),
            elected: cfg.election.is_some(),
            block_size: cfg.block_size,
            listing_sync_wait: Duration::from_millis(cfg.listing_sync_wait_ms),
        },
    )?;
    if cfg.election.is_none() {
        master.finish_publishes().await;
    }
    Ok((Arc::new(master), creds))
}

async fn restore_into(store: &dyn strata_common::kv::KvStore, file: &Path) -> Result<()> {
    eprintln!("checking {} ...", file.display());
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("restoring {bar:40} {pos}/{len} keys ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let n = strata_master::backup::restore(store, file, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await
    .with_context(|| format!("cannot restore {}", file.display()))?;
    bar.finish_and_clear();
    eprintln!("restored {n} keys from {} into the {} store", file.display(), store.name());
    Ok(())
}

/// Background jobs of a master: upload expiry, the election, TTL passes, checkpoints, held in
/// `jobs` so that shutdown waits for them (the election resigns).
fn spawn_master_jobs(master: &Arc<Master>, cfg: &Config, jobs: &Jobs) -> Result<()> {
    let max_age = Duration::from_secs(cfg.multipart_expiry_secs);
    let every = (max_age / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    jobs.spawn_upload_expiry(master.clone(), max_age, every);
    if let Some(url) = &cfg.election {
        #[cfg(feature = "etcd")]
        {
            let opts = strata_master::election::ElectionOptions::parse(url, Duration::from_millis(cfg.lease_ttl_ms))?;
            jobs.spawn_election(master.clone(), opts);
        }
        #[cfg(not(feature = "etcd"))]
        bail!("election = {url:?} needs a build with etcd support: cargo build --release --features etcd");
    }
    jobs.spawn_ttl(master.clone(), Duration::from_millis(cfg.ttl_check_interval_ms.max(100)));
    jobs.spawn_staging_sweep(master.clone(), Duration::from_secs(cfg.staging_grace_secs));
    if let Some(uri) = &cfg.checkpoint_uri {
        jobs.spawn_checkpoints(master.clone(), uri.clone(), Duration::from_secs(cfg.checkpoint_interval_secs.max(1)));
    }
    Ok(())
}

/// How long a shutdown waits for the master's background jobs (a resign takes up to 4 s).
const JOBS_DRAIN: Duration = Duration::from_secs(10);

fn open_cache(cfg: &Config) -> Result<PageStore> {
    use strata_common::cache_types::Medium;
    use strata_worker::TierSpec;
    let tiers: Vec<TierSpec> = if cfg.cache.tiers.is_empty() {
        vec![
            TierSpec { medium: Medium::Mem, dirs: vec![], quota: cfg.cache.mem_bytes },
            TierSpec { medium: Medium::Ssd, dirs: vec![cfg.disk_cache_dir()], quota: cfg.cache.disk_bytes },
        ]
    } else {
        cfg.cache.tiers.iter().map(|t| TierSpec { medium: t.medium, dirs: t.dirs.clone(), quota: t.quota }).collect()
    };
    let dirs: Vec<String> = tiers.iter().flat_map(|t| t.dirs.iter().map(|d| d.display().to_string())).collect();
    PageStore::open(cfg.cache.page_size, tiers, cfg.cache.eviction_policy())
        .with_context(|| format!("cannot open the cache tiers (folders: {})", dirs.join(", ")))
}

fn gateway_options(cfg: &Config) -> Result<GatewayOptions> {
    let limits = Limits {
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        max_connections: cfg.max_connections,
        max_buf: strata_common::server::CLIENT_MAX_BUF,
        tls: ServerTls::from_config(&cfg.tls, false)?,
        ..Default::default()
    };
    let access_log = match cfg.access_log.as_deref().filter(|p| !p.is_empty()) {
        Some(target) => Some(Arc::new(
            strata_gateway::AccessLog::open(target).with_context(|| format!("cannot open the access log {target}"))?,
        )),
        None => None,
    };
    Ok(GatewayOptions {
        domain: cfg.domain.clone(),
        region: REGION.into(),
        block_size: cfg.block_size,
        limits,
        access_log,
    })
}

/// Where `strata local` writes the address of its admin port, for `strata admin`.
const ADMIN_ADDRESS_FILE: &str = "admin_address";

/// `strata local`'s admin port: `admin_listen`, by default a free port of 127.0.0.1, `off` for
/// none. Its URL is written to `<data_dir>/admin_address`.
async fn local_admin(cfg: &Config) -> Result<Option<(String, TcpListener)>> {
    let addr = match cfg.admin_listen.as_deref() {
        Some("off") => return Ok(None),
        Some(a) => a,
        None => "127.0.0.1:0",
    };
    let listener = bind(addr).await.with_context(|| format!("cannot listen on {addr} for strata admin"))?;
    let url = format!("{}://{}", scheme(cfg), listener.local_addr()?);
    let file = cfg.data_dir.join(ADMIN_ADDRESS_FILE);
    std::fs::write(&file, format!("{url}\n")).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Some((url, listener)))
}

/// How long a gateway's shutdown waits for open requests.
const S3_DRAIN: Duration = Duration::from_secs(30);

/// Serves S3 on `listener` (HTTPS when `limits.tls`, its certificate reloaded), and plain HTTP
/// on `tls.http_listen` too when set.
async fn serve_s3(
    cfg: &Config,
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<()> {
    let plain = match (&limits.tls, &cfg.tls.http_listen) {
        (None, Some(_)) => bail!(
            "tls.http_listen is set without tls.cert and tls.key: the main port serves plain HTTP already; \
             set the certificate or drop http_listen"
        ),
        (Some(_), Some(addr)) => {
            let l = bind(addr).await?;
            tracing::info!(addr = %l.local_addr()?, "also serving S3 over plain HTTP");
            let plain_limits = Limits { tls: None, ..limits.clone() };
            Some(tokio::spawn(serve_with(l, router.clone(), shutdown.clone(), S3_DRAIN, plain_limits)))
        }
        _ => None,
    };
    if let Some(tls) = &limits.tls {
        tls.spawn_reload(Duration::from_secs(cfg.tls.reload_secs), shutdown.clone());
    }
    let served = serve_with(listener, router, shutdown.clone(), S3_DRAIN, limits).await;
    shutdown.cancel();
    if let Some(p) = plain {
        p.await??;
    }
    served?;
    Ok(())
}

/// The TLS of a master's or worker's port (mutual with `tls.require_client_cert`), reloaded.
fn internal_server_tls(cfg: &Config, shutdown: &CancellationToken) -> Result<Option<ServerTls>> {
    let tls = ServerTls::from_config(&cfg.tls, cfg.tls.require_client_cert)?;
    if let Some(t) = &tls {
        t.spawn_reload(Duration::from_secs(cfg.tls.reload_secs), shutdown.clone());
    }
    Ok(tls)
}

/// This process's client side of internal TLS to `https://` workers (with `tls.ca`); call it
/// once at start, before any worker client is made. Masters: see [`master_client`].
pub fn use_internal_tls(cfg: &Config) -> Result<()> {
    if let Some(c) = strata_common::tls::client_config(&cfg.tls)? {
        HttpWorker::use_tls(c);
    }
    Ok(())
}

/// What a started `strata local` tells its user.
pub struct LocalInfo {
    pub endpoint: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    pub data_dir: PathBuf,
    /// The endpoint serves HTTPS.
    pub tls: bool,
    /// The admin (master gRPC) URL, if served.
    pub admin: Option<String>,
}

/// `strata local`: master, worker and gateway in one process, talking without sockets.
pub async fn run_local(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    started: impl FnOnce(&LocalInfo),
) -> Result<()> {
    if cfg.election.is_some() {
        bail!("strata local runs one master: remove `election` from its configuration");
    }
    let (master, creds) = open_master(&cfg, IN_PROCESS, None).await?;
    // No write of this process is alive yet: every unclaimed staged file is a dead one's.
    if let Err(e) = master.reclaim_staging(Duration::ZERO).await {
        tracing::warn!("cannot reclaim staged files of writes that died: {e}");
    }
    master.meta_watch().serve_remote();
    let jobs = Jobs::new(shutdown.clone());
    spawn_master_jobs(&master, &cfg, &jobs)?;
    let worker = Worker::new(master.clone() as Arc<dyn MasterApi>, open_cache(&cfg)?, &cfg.data_dir.join("journal"))?;
    let me = WorkerIdentity {
        address: IN_PROCESS.into(),
        s3_address: String::new(),
        id_file: cfg.data_dir.join("worker_id"),
    };
    let registered = Readiness::default();
    let hb = tokio::spawn(register_and_heartbeat(
        worker.clone(),
        master.clone() as Arc<dyn MasterApi>,
        me,
        Duration::from_millis(cfg.heartbeat_interval_ms),
        registered.clone(),
        shutdown.clone(),
    ));
    // In-process registration takes a moment: serve only once the worker is in placement.
    while !registered.get() && !shutdown.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let opts = gateway_options(&cfg)?;
    // The admin port: the master's gRPC and the worker's data API (for `strata admin load`).
    let (admin_url, admin) = match local_admin(&cfg).await? {
        Some((url, listener)) => {
            let secret = cluster_secret(&cfg, "master")?;
            let (ready, data) = (Readiness::default(), strata_worker::api_router(worker.clone(), secret.clone()));
            ready.set(true);
            let router = strata_master::router(master.clone(), secret, ready).merge(data);
            let limits = Limits { tls: opts.limits.tls.clone(), ..Default::default() };
            (
                Some(url),
                Some(tokio::spawn(serve_with(listener, router, shutdown.clone(), Duration::from_secs(10), limits))),
            )
        }
        None => (None, None),
    };
    let limits = opts.limits.clone();
    let gw = Gateway::new(
        master.clone() as Arc<dyn MasterApi>,
        Some(LocalWorker { address: IN_PROCESS.into(), api: Arc::new(worker) as Arc<dyn WorkerApi> }),
        strata_common::ids::secret_key(),
        opts,
    );
    let ui = Dashboard::new(master.clone(), creds.clone(), cfg.dashboard_token.clone());
    jobs.spawn(ui.clone().sample_loop(shutdown.clone()));
    started(&LocalInfo {
        endpoint: listener.local_addr()?,
        access_key: creds.access_key,
        secret_key: creds.secret_key,
        data_dir: abs(&cfg.data_dir),
        tls: limits.tls.is_some(),
        admin: admin_url.clone(),
    });
    // The dashboard beside S3 on one port: `/ui` is no bucket (names have 3 characters or more).
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(addr = %listener.local_addr()?, "serving S3, and the dashboard at /ui");
    let router = strata_master::ui::in_front_of(ui, strata_gateway::router(gw, ready), cfg.domain.clone());
    let served = serve_s3(&cfg, listener, router, limits, shutdown.clone()).await;
    shutdown.cancel();
    let _ = hb.await;
    if let Some(a) = admin {
        let _ = a.await;
    }
    if admin_url.is_some() {
        let _ = std::fs::remove_file(cfg.data_dir.join(ADMIN_ADDRESS_FILE));
    }
    master.drain_commits(JOBS_DRAIN).await;
    jobs.join(JOBS_DRAIN).await;
    served?;
    Ok(())
}

/// The cluster secret: configured, or for a master kept in (and generated into) its data folder.
pub(crate) fn cluster_secret(cfg: &Config, role: &str) -> Result<String> {
    if let Some(s) = &cfg.cluster_secret {
        return Ok(s.clone());
    }
    let path = cfg.data_dir.join("cluster_secret");
    if role != "master" {
        if let Ok(s) = std::fs::read_to_string(&path) {
            return Ok(s.trim().to_string());
        }
        bail!(
            "no cluster secret: set cluster_secret in the config file or STRATA_CLUSTER_SECRET to the master's \
             (the master keeps it in <its data folder>/cluster_secret)"
        );
    }
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let secret = strata_common::ids::secret_key();
    write_private(&path, &secret)?;
    tracing::info!(file = %path.display(), "generated the cluster secret; give it to workers and gateways as STRATA_CLUSTER_SECRET");
    Ok(secret)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// How others reach this master or worker: `https` once it has a certificate.
fn scheme(cfg: &Config) -> &'static str {
    if cfg.tls.cert.is_some() { "https" } else { "http" }
}

/// The masters `strata admin` and the other roles ask: configured, else the admin port of a
/// `strata local` on this data folder, else the default address.
fn masters(cfg: &Config) -> Vec<String> {
    if !cfg.masters.is_empty() {
        return cfg.masters.clone();
    }
    match std::fs::read_to_string(cfg.data_dir.join(ADMIN_ADDRESS_FILE)) {
        Ok(url) if !url.trim().is_empty() => vec![url.trim().to_string()],
        _ => vec![format!("http://{DEFAULT_MASTER_ADDR}")],
    }
}

pub fn master_client(cfg: &Config, secret: &str) -> Result<Arc<GrpcMaster>> {
    let tls = strata_common::tls::grpc_client_config(&cfg.tls)?;
    Ok(Arc::new(GrpcMaster::with_tls(&masters(cfg), secret, tls)?))
}

pub fn listen_addr(cfg: &Config, default: &str) -> String {
    cfg.listen.clone().unwrap_or_else(|| default.to_string())
}

/// `restore`: a backup to load into the (empty) metadata store first.
pub async fn run_master(cfg: Config, restore: Option<PathBuf>, shutdown: CancellationToken) -> Result<()> {
    let secret = cluster_secret(&cfg, "master")?;
    let listener = bind(&listen_addr(&cfg, DEFAULT_MASTER_ADDR)).await?;
    let address = cfg.advertise.clone().unwrap_or(format!("{}://{}", scheme(&cfg), listener.local_addr()?));
    let (master, creds) = open_master(&cfg, &address, restore.as_deref()).await?;
    let jobs = Jobs::new(shutdown.clone());
    spawn_master_jobs(&master, &cfg, &jobs)?;
    tracing::info!(access_key = %creds.access_key, "root S3 credentials are in {}", cfg.data_dir.join("credentials").display());
    let ui = Dashboard::new(master.clone(), creds, cfg.dashboard_token.clone());
    jobs.spawn(ui.clone().sample_loop(shutdown.clone()));
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(addr = %listener.local_addr()?, store = master.store_name(), "master serving; the dashboard is at /ui");
    let router = strata_master::router(master.clone(), secret, ready).merge(strata_master::ui::router(ui));
    let limits = Limits { tls: internal_server_tls(&cfg, &shutdown)?, ..Default::default() };
    let (hub, stop) = (master.meta_watch().clone(), shutdown.clone());
    tokio::spawn(async move {
        stop.cancelled().await;
        hub.close_all();
    });
    let served = serve_with(listener, router, shutdown, Duration::from_secs(10), limits).await;
    master.drain_commits(JOBS_DRAIN).await;
    jobs.join(JOBS_DRAIN).await;
    served?;
    Ok(())
}

pub async fn run_worker(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let secret = cluster_secret(&cfg, "worker")?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let listener = bind(&listen_addr(&cfg, DEFAULT_WORKER_ADDR)).await?;
    // The S3 port's settings are checked before the worker registers.
    let s3 = match &cfg.s3_listen {
        Some(addr) => {
            let l = bind(addr).await.with_context(|| format!("cannot listen on {addr} for S3 (s3_listen)"))?;
            Some((l, gateway_options(&worker_s3_config(&cfg)?)?))
        }
        None => None,
    };
    let tls = internal_server_tls(&cfg, &shutdown)?;
    let address = cfg.advertise.clone().unwrap_or(format!("{}://{}", scheme(&cfg), listener.local_addr()?));
    let grpc = master_client(&cfg, &secret)?;
    let master: Arc<dyn MasterApi> = grpc.clone();
    let worker = Worker::new(master.clone(), open_cache(&cfg)?, &cfg.data_dir.join("journal"))?;
    let ready = Readiness::default();
    let s3_address = match &s3 {
        Some((l, opts)) => s3_url(l.local_addr()?, &address, opts.limits.tls.is_some()),
        None => String::new(),
    };
    let me = WorkerIdentity { address: address.clone(), s3_address, id_file: cfg.data_dir.join("worker_id") };
    let hb = tokio::spawn(register_and_heartbeat(
        worker.clone(),
        master,
        me,
        Duration::from_millis(cfg.heartbeat_interval_ms),
        ready.clone(),
        shutdown.clone(),
    ));
    let s3 = match s3 {
        Some((l, opts)) => {
            let limits = opts.limits.clone();
            let local = LocalWorker { address, api: Arc::new(worker.clone()) as Arc<dyn WorkerApi> };
            let gw = Gateway::new(gateway_master(grpc, &shutdown), Some(local), secret.clone(), opts);
            tracing::info!(addr = %l.local_addr()?, tls = limits.tls.is_some(), "worker serving S3 too");
            let router = strata_gateway::router(gw, ready.clone());
            let (cfg, stop) = (cfg.clone(), shutdown.clone());
            Some(tokio::spawn(async move {
                let served = serve_s3(&cfg, l, router, limits, stop.clone()).await;
                if let Err(e) = &served {
                    tracing::error!("the worker's S3 port failed, so the worker stops: {e:#}");
                    stop.cancel();
                }
                served
            }))
        }
        None => None,
    };
    let served = strata_worker::run(worker, secret, listener, tls, ready, shutdown.clone()).await;
    shutdown.cancel();
    let s3_served = match s3 {
        Some(task) => task.await.unwrap_or_else(|e| Err(anyhow::anyhow!("the worker's S3 server panicked: {e}"))),
        None => Ok(()),
    };
    let _ = hb.await;
    served?;
    s3_served
}

/// The settings a worker's S3 port serves with: its own certificate (`tls.s3_cert`/`s3_key`)
/// when it has one, else the worker's `tls.cert`/`key`.
fn worker_s3_config(cfg: &Config) -> Result<Config> {
    let mut s3 = cfg.clone();
    match (&cfg.tls.s3_cert, &cfg.tls.s3_key) {
        (Some(c), Some(k)) => (s3.tls.cert, s3.tls.key) = (Some(c.clone()), Some(k.clone())),
        (None, None) => {}
        _ => bail!("tls.s3_cert and tls.s3_key go together: set both (PEM files) or neither"),
    }
    Ok(s3)
}

/// The URL a worker's S3 port is reached at: the address it listens on, or on every address
/// (0.0.0.0, ::) its advertised host with the S3 port.
fn s3_url(listening: SocketAddr, advertise: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match advertise.parse::<axum::http::Uri>().ok().and_then(|u| u.host().map(str::to_string)) {
        Some(h) if listening.ip().is_unspecified() => h,
        _ => return format!("{scheme}://{listening}"),
    };
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    format!("{scheme}://{host}:{}", listening.port())
}

/// A gateway's view of the master: cached and kept exact by the master's watch, or with
/// STRATA_META_CACHE=off every lookup asking the master (for comparisons and diagnosis).
fn gateway_master(grpc: Arc<GrpcMaster>, shutdown: &CancellationToken) -> Arc<dyn MasterApi> {
    if std::env::var("STRATA_META_CACHE").is_ok_and(|v| v == "off") {
        grpc
    } else {
        strata_gateway::CachedMaster::start(grpc, shutdown.clone())
    }
}

pub async fn run_gateway(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let secret = cluster_secret(&cfg, "gateway")?;
    let listener = bind(&listen_addr(&cfg, DEFAULT_GATEWAY_ADDR)).await?;
    let master = gateway_master(master_client(&cfg, &secret)?, &shutdown);
    let opts = gateway_options(&cfg)?;
    let limits = opts.limits.clone();
    let gw = Gateway::new(master, None, secret, opts);
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(addr = %listener.local_addr()?, tls = limits.tls.is_some(), "gateway serving S3");
    serve_s3(&cfg, listener, strata_gateway::router(gw, ready), limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workers_s3_port_serves_its_own_certificate_when_it_has_one() {
        let mut cfg = Config::default();
        cfg.tls.cert = Some("/internal.crt".into());
        cfg.tls.key = Some("/internal.key".into());
        let s3 = worker_s3_config(&cfg).unwrap();
        assert_eq!(s3.tls.cert.as_deref(), Some(Path::new("/internal.crt")), "none of its own: the worker's");
        cfg.tls.s3_cert = Some("/s3.crt".into());
        assert!(worker_s3_config(&cfg).unwrap_err().to_string().contains("tls.s3_key"));
        cfg.tls.s3_key = Some("/s3.key".into());
        let s3 = worker_s3_config(&cfg).unwrap();
        assert_eq!(
            (s3.tls.cert.as_deref(), s3.tls.key.as_deref()),
            (Some(Path::new("/s3.crt")), Some(Path::new("/s3.key")))
        );
        assert_eq!(cfg.tls.cert.as_deref(), Some(Path::new("/internal.crt")), "the internal port keeps its own");
    }

    #[test]
    fn a_workers_s3_url_takes_its_advertised_host_when_it_listens_everywhere() {
        let any: SocketAddr = "0.0.0.0:9002".parse().unwrap();
        assert_eq!(s3_url(any, "http://10.1.2.3:9200", false), "http://10.1.2.3:9002");
        assert_eq!(
            s3_url(any, "https://w-0.strata-worker.data.svc:9200", true),
            "https://w-0.strata-worker.data.svc:9002"
        );
        let v6: SocketAddr = "[::]:9002".parse().unwrap();
        assert_eq!(s3_url(v6, "http://[fd00::7]:9200", false), "http://[fd00::7]:9002");
        let one: SocketAddr = "127.0.0.1:9002".parse().unwrap();
        assert_eq!(s3_url(one, "http://10.1.2.3:9200", false), "http://127.0.0.1:9002");
        assert_eq!(s3_url(any, "not a url", false), "http://0.0.0.0:9002");
    }
}
