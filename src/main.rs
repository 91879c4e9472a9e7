//! The `strata` binary: flags and subcommands (local, master, worker, gateway, admin), tracing,
//! then one of the roles in `strata::`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use strata::{listen_addr, run_gateway, run_local, run_master, run_worker};
use strata_common::config::{Config, DEFAULT_GATEWAY_ADDR};
use tokio_util::sync::CancellationToken;

/// Strata: an S3 endpoint that caches the data of slower stores.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML config file (settings: see README); environment STRATA_* and flags override it.
    #[arg(long, global = true, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
    /// Where this process keeps its state.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// host:port to listen on.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// A master's address (worker, gateway); repeat for several.
    #[arg(long = "master", global = true)]
    masters: Vec<String>,
    /// The URL gateways reach this worker at.
    #[arg(long, global = true)]
    advertise: Option<String>,
    /// PEM certificate (chain) to serve HTTPS with (tls.cert); reloaded on change and SIGHUP.
    #[arg(long, global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (tls.key).
    #[arg(long, global = true)]
    tls_key: Option<PathBuf>,
    /// With --tls-cert: also serve plain HTTP on this host:port (tls.http_listen).
    #[arg(long, global = true)]
    http_listen: Option<String>,
    /// The cluster CA (PEM) that internal https:// masters and workers are verified with (tls.ca).
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    /// Gateways (and `local`): a JSON line per request to this file, or `-` for stdout.
    #[arg(long, global = true)]
    access_log: Option<String>,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Master, worker and gateway in one process on embedded defaults.
    Local {
        /// Serve the master's gRPC for `strata admin` here (host:port; default a free port of
        /// 127.0.0.1, written to <data folder>/admin_address; `off`: none).
        #[arg(long)]
        admin_listen: Option<String>,
    },
    /// The metadata master.
    Master {
        /// Load this backup (from `strata admin backup` or a checkpoint) into the empty
        /// metadata store before serving.
        #[arg(long)]
        restore: Option<PathBuf>,
    },
    /// A cache worker.
    Worker {
        /// Also serve S3 on this host:port, reading this worker's own blocks in process
        /// (s3_listen).
        #[arg(long)]
        s3_listen: Option<String>,
        /// PEM certificate (chain) the S3 port serves HTTPS with (tls.s3_cert; default
        /// --tls-cert); reloaded on change and SIGHUP.
        #[arg(long)]
        s3_tls_cert: Option<PathBuf>,
        /// PEM private key of --s3-tls-cert (tls.s3_key).
        #[arg(long)]
        s3_tls_key: Option<PathBuf>,
    },
    /// A stateless S3 gateway.
    Gateway,
    /// Load on any S3 endpoint: ops/s, MiB/s, latency percentiles (e.g. `strata bench get
    /// --endpoint http://127.0.0.1:9000 --concurrency 64 --duration 30s`).
    Bench(strata::bench::BenchArgs),
    /// Operator commands against the cluster's masters (`--master`, or `masters` in the config).
    Admin {
        #[command(subcommand)]
        cmd: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// The primary master, the standbys, and each worker with its tiers and last heartbeat.
    Report,
    /// Exposes an under store (s3://bucket/prefix, gs://, az://, file:///path) as a bucket.
    Mount {
        bucket: String,
        uri: String,
        /// An option of the under store, e.g. endpoint=http://10.0.0.5:9000, region=eu-west-1,
        /// access_key_id=..., secret_access_key=... (repeat for several).
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Refuse writes through Strata (AccessDenied).
        #[arg(long)]
        read_only: bool,
        /// How often a listing merges the under store's: 0 = every time, -1 = never, or e.g.
        /// 30s, 5m, 1h.
        #[arg(long, default_value = "1m", allow_hyphen_values = true)]
        sync_interval: String,
        /// Where writes go by default: CACHE_THROUGH, THROUGH, MUST_CACHE or ASYNC_THROUGH
        /// (a request's x-strata-write-type header overrides it).
        #[arg(long, default_value = "CACHE_THROUGH")]
        write_type: String,
    },
    /// Forgets a bucket's metadata; the under store keeps its data.
    Unmount { bucket: String },
    /// Every bucket and its under store (secrets masked).
    Mounts,
    /// Records what the under store of BUCKET[/PREFIX] holds (new, changed and gone keys), with
    /// progress, or follows the sync of it already running; do it before users list a large mount.
    Sync { target: String },
    /// Warms the cache with BUCKET[/PREFIX] across the workers, with progress.
    Load { target: String },
    /// Drops BUCKET[/PREFIX] from the workers' caches (the under store keeps it).
    Free { target: String },
    /// Keeps BUCKET[/PREFIX] in the cache: never evicted, across overwrites, until unpinned.
    Pin { target: String },
    /// Lets BUCKET[/PREFIX] be evicted again.
    Unpin { target: String },
    /// Objects under BUCKET[/PREFIX] older than TTL (e.g. 7d, 12h; `off` removes the rule) are
    /// freed from the cache, or with --action delete deleted (from the under store too).
    Ttl {
        target: String,
        ttl: String,
        #[arg(long, default_value = "free")]
        action: String,
    },
    /// The TTL rules.
    Ttls,
    /// S3 users (each has an id shown in ACLs, a display name and access keys).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// S3 access keys of users (the root key is in the master's credentials file).
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Gives USER rights on BUCKET (read, write, owner; several may be given).
    Grant {
        #[arg(long)]
        user: String,
        #[arg(long)]
        bucket: String,
        #[arg(value_enum, required = true)]
        access: Vec<Access>,
    },
    /// Takes rights of `grant` back (none named: all of them).
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        bucket: String,
        #[arg(value_enum)]
        access: Vec<Access>,
    },
    /// Writes a consistent snapshot of the metadata to a file (restore: `strata master --restore`).
    Backup {
        /// The file to write.
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Makes a user; ID is its canonical id in ACLs.
    Create {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    /// Deletes a user and its keys.
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Makes an access key for USER and prints it with its secret (shown only this once).
    Create { user: String },
    /// The keys (of USER, or everyone's), without secrets.
    List { user: Option<String> },
    /// Revokes (deletes) a key; returns once every gateway refuses it.
    Revoke { access_key: String },
    /// Disables a key (kept, refused as unknown) ; returns once every gateway refuses it.
    Disable { access_key: String },
    /// Enables a disabled key again.
    Enable { access_key: String },
}

/// What `strata admin grant`/`revoke` give or take: read (list, read objects), write (write and
/// delete objects), owner (the bucket's ACL, policy, CORS, tags and deletion).
#[derive(Clone, Copy, clap::ValueEnum)]
enum Access {
    Read,
    Write,
    Owner,
}

fn rights(access: &[Access]) -> strata::admin_users::Rights {
    let has = |a: Access| access.iter().any(|x| std::mem::discriminant(x) == std::mem::discriminant(&a));
    strata::admin_users::Rights { read: has(Access::Read), write: has(Access::Write), owner: has(Access::Owner) }
}

fn config(cli: &Cli) -> Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    if cli.listen.is_some() {
        cfg.listen = cli.listen.clone();
    }
    if !cli.masters.is_empty() {
        cfg.masters = cli.masters.clone();
    }
    if cli.advertise.is_some() {
        cfg.advertise = cli.advertise.clone();
    }
    let tls = &mut cfg.tls;
    for (flag, setting) in [(&cli.tls_cert, &mut tls.cert), (&cli.tls_key, &mut tls.key), (&cli.tls_ca, &mut tls.ca)] {
        if flag.is_some() {
            *setting = flag.clone();
        }
    }
    if cli.http_listen.is_some() {
        tls.http_listen = cli.http_listen.clone();
    }
    if cli.access_log.is_some() {
        cfg.access_log = cli.access_log.clone();
    }
    Ok(cfg)
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let term = async {
            match term.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

/// Cache pages (1 MiB) are allocated and freed all the time, by the system allocator (see
/// `strata::alloc`). glibc raises its mmap threshold past their size after the first free, and
/// from then on keeps freed pages in its arenas: about +450 MiB over a 512 MiB memory tier. A
/// fixed threshold (the size from which `Split` hands blocks to glibc) maps each page on its own
/// and gives it back on free.
/// `MALLOC_MMAP_THRESHOLD_` set by the operator wins.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets allocator parameters; no memory is touched.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, strata::alloc::LARGE as libc::c_int) };
    }
}

/// mimalloc asks for transparent huge pages on its arenas: each first touch of one zeroes 2 MiB
/// (a sixth of the master's CPU under small PUTs), and a huge page counts whole in RSS however
/// little of it is used. Small blocks do as well on 4 KiB pages. `MIMALLOC_ALLOW_THP` set by
/// the operator wins.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; no memory is touched.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[global_allocator]
static GLOBAL: strata::alloc::Split = strata::alloc::Split;

#[tokio::main]
async fn main() -> Result<()> {
    fixed_mmap_threshold();
    no_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    strata_common::ops::metrics_handle();
    let cli = Cli::parse();
    let cfg = config(&cli)?;
    strata::use_internal_tls(&cfg)?;
    let shutdown = shutdown_on_signal();
    if cfg.s3_listen.is_some() && matches!(cli.role, Role::Local { .. } | Role::Master { .. } | Role::Gateway) {
        tracing::warn!(
            "s3_listen is a worker's setting; this process ignores it (it serves S3 on `listen`, or not at all)"
        );
    }
    match cli.role {
        Role::Local { admin_listen } => {
            let mut cfg = cfg;
            if admin_listen.is_some() {
                cfg.admin_listen = admin_listen;
            }
            let listener = strata_common::ops::bind(&listen_addr(&cfg, DEFAULT_GATEWAY_ADDR)).await?;
            run_local(cfg, listener, shutdown, |info| {
                let scheme = if info.tls { "https" } else { "http" };
                println!("Strata is running (local mode: master, worker and gateway in one process).");
                println!("  S3 endpoint:  {scheme}://{}", info.endpoint);
                println!("  access key:   {}", info.access_key);
                println!("  secret key:   {}", info.secret_key);
                println!("  data folder:  {}", info.data_dir.display());
                println!(
                    "  dashboard:    {scheme}://{}/ui  (user: the access key, password: the secret key)",
                    info.endpoint
                );
                if let Some(admin) = &info.admin {
                    println!("  admin:        {admin}  (behind the cluster secret in the data folder)");
                    println!(
                        "  strata admin --master {admin} --data-dir {} report   (in this folder: strata admin report)",
                        info.data_dir.display()
                    );
                }
                println!();
                println!("  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}", info.access_key, info.secret_key);
                println!("  aws --endpoint-url {scheme}://{} s3 mb s3://my-bucket", info.endpoint);
            })
            .await
        }
        Role::Master { restore } => run_master(cfg, restore, shutdown).await,
        Role::Worker { s3_listen, s3_tls_cert, s3_tls_key } => {
            let mut cfg = cfg;
            if s3_listen.is_some() {
                cfg.s3_listen = s3_listen;
            }
            if s3_tls_cert.is_some() {
                cfg.tls.s3_cert = s3_tls_cert;
            }
            if s3_tls_key.is_some() {
                cfg.tls.s3_key = s3_tls_key;
            }
            if cfg.s3_listen.is_none() && cfg.tls.s3_cert.is_some() {
                tracing::warn!("tls.s3_cert is for the S3 port of a worker, and this worker has none (s3_listen)");
            }
            run_worker(cfg, shutdown).await
        }
        Role::Gateway => run_gateway(cfg, shutdown).await,
        Role::Bench(args) => strata::bench::main(args).await,
        Role::Admin { cmd: Admin::Report } => strata::admin::report(&cfg).await,
        Role::Admin { cmd: Admin::Mount { bucket, uri, options, read_only, sync_interval, write_type } } => {
            strata::admin::mount(&cfg, &bucket, &uri, &options, read_only, &sync_interval, &write_type).await
        }
        Role::Admin { cmd: Admin::Unmount { bucket } } => strata::admin::unmount(&cfg, &bucket).await,
        Role::Admin { cmd: Admin::Mounts } => strata::admin::mounts(&cfg).await,
        Role::Admin { cmd: Admin::Sync { target } } => strata::admin::sync(&cfg, &target).await,
        Role::Admin { cmd: Admin::Load { target } } => strata::admin::load(&cfg, &target).await,
        Role::Admin { cmd: Admin::Free { target } } => strata::admin::free(&cfg, &target).await,
        Role::Admin { cmd: Admin::Pin { target } } => strata::admin::pin(&cfg, &target, true).await,
        Role::Admin { cmd: Admin::Unpin { target } } => strata::admin::pin(&cfg, &target, false).await,
        Role::Admin { cmd: Admin::Ttl { target, ttl, action } } => {
            strata::admin::ttl(&cfg, &target, &ttl, &action).await
        }
        Role::Admin { cmd: Admin::User { cmd: UserCmd::Create { id, display_name } } } => {
            strata::admin_users::user_create(&cfg, &id, display_name.as_deref()).await
        }
        Role::Admin { cmd: Admin::User { cmd: UserCmd::List } } => strata::admin_users::user_list(&cfg).await,
        Role::Admin { cmd: Admin::User { cmd: UserCmd::Delete { id } } } => {
            strata::admin_users::user_delete(&cfg, &id).await
        }
        Role::Admin { cmd: Admin::Key { cmd: KeyCmd::Create { user } } } => {
            strata::admin_users::key_create(&cfg, &user).await
        }
        Role::Admin { cmd: Admin::Key { cmd: KeyCmd::List { user } } } => {
            strata::admin_users::key_list(&cfg, user.as_deref()).await
        }
        Role::Admin { cmd: Admin::Key { cmd: KeyCmd::Revoke { access_key } } } => {
            strata::admin_users::key_revoke(&cfg, &access_key).await
        }
        Role::Admin { cmd: Admin::Key { cmd: KeyCmd::Disable { access_key } } } => {
            strata::admin_users::key_disable(&cfg, &access_key, true).await
        }
        Role::Admin { cmd: Admin::Key { cmd: KeyCmd::Enable { access_key } } } => {
            strata::admin_users::key_disable(&cfg, &access_key, false).await
        }
        Role::Admin { cmd: Admin::Grant { user, bucket, access } } => {
            strata::admin_users::grant(&cfg, &user, &bucket, &rights(&access), true).await
        }
        Role::Admin { cmd: Admin::Revoke { user, bucket, access } } => {
            let all = [Access::Read, Access::Write, Access::Owner];
            let access = if access.is_empty() { &all[..] } else { &access[..] };
            strata::admin_users::grant(&cfg, &user, &bucket, &rights(access), false).await
        }
        Role::Admin { cmd: Admin::Ttls } => strata::admin::ttls(&cfg).await,
        Role::Admin { cmd: Admin::Backup { output } } => strata::admin::backup(&cfg, &output).await,
    }
}
