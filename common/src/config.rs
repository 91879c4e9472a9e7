//! Configuration: defaults, then a TOML file, then `STRATA_*` environment variables (nested
//! keys joined by `__`, e.g. `STRATA_CACHE__MEM_BYTES`), then command-line flags. Cache tier
//! media and the eviction policy load as the types of `cache_types`: a bad one fails loading.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cache_types::{EvictionKind, EvictionPolicy, Medium};
use crate::error::{Error, Result};

pub const DEFAULT_GATEWAY_ADDR: &str = "127.0.0.1:9000";
pub const DEFAULT_MASTER_ADDR: &str = "127.0.0.1:9100";
pub const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:9200";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where this process keeps its state (metadata, credentials, disk cache, local under store).
    pub data_dir: PathBuf,
    /// host:port this process listens on; the default depends on the role.
    pub listen: Option<String>,
    /// URL others reach this process at (workers: their data server), default from `listen`.
    pub advertise: Option<String>,
    /// Shared by every process of a cluster; every internal call carries it.
    pub cluster_secret: Option<String>,
    /// Master addresses for workers and gateways, e.g. `http://10.0.0.1:9100`.
    #[serde(deserialize_with = "list")]
    pub masters: Vec<String>,
    /// Metadata store: `embedded:///path/meta.redb` (default `<data_dir>/meta.redb`), `memory://`,
    /// `etcd://host:port[,host:port]/prefix` (feature `etcd`) or `fdb:///path/fdb.cluster` (feature `fdb`).
    pub metadata: Option<String>,
    /// The cluster's root under store, where `CreateBucket` makes folders (default `<data_dir>/ufs`).
    pub root_ufs: Option<String>,
    /// Override the generated root S3 credentials.
    pub root_access_key: Option<String>,
    pub root_secret_key: Option<String>,
    #[serde(deserialize_with = "size")]
    pub block_size: u64,
    pub heartbeat_interval_ms: u64,
    /// A worker silent this long is dropped from placement.
    pub worker_timeout_ms: u64,
    pub cache: CacheConfig,
    /// Multipart uploads left unfinished this long are aborted and their parts deleted.
    pub multipart_expiry_secs: u64,
    /// Virtual-hosted-style addressing: requests to `BUCKET.<domain>` address BUCKET.
    pub domain: Option<String>,
    /// Masters: campaign for the primary role in etcd, `etcd://host:port[,host:port]/cluster`.
    /// Needs a shared metadata store (etcd or FoundationDB).
    pub election: Option<String>,
    /// The primary's lease: a primary that cannot renew it for 3/4 of this steps down, and a
    /// standby takes over at most this long after the primary died.
    pub lease_ttl_ms: u64,
    /// Masters: an under-store folder (`file:///backups/strata`) for periodic checkpoints.
    pub checkpoint_uri: Option<String>,
    pub checkpoint_interval_secs: u64,
    /// Masters: how often TTL rules are applied.
    pub ttl_check_interval_ms: u64,
    /// `strata local`: serve the master's gRPC on this host:port for `strata admin` (behind the
    /// cluster secret kept in the data folder). Unset: a free port of 127.0.0.1, written to
    /// `<data_dir>/admin_address` where `strata admin` finds it; `off`: no admin port.
    pub admin_listen: Option<String>,
    /// Workers: also serve S3 on this host:port, the worker's own blocks read in process (no
    /// socket between gateway and worker for them); unset: the worker serves no S3.
    pub s3_listen: Option<String>,
    /// Masters: a staged file (`%strata/` of a mount) untouched this long and claimed by no
    /// part or commit is a dead write's and is deleted; checked every half of it.
    pub staging_grace_secs: u64,
    /// Masters: how long a client's listing of a mount waits for the sync of its under store;
    /// past it, a first sync (the range never recorded: every key of a large mount) answers 503
    /// saying how far it got, a later one lets the listing see the metadata as it stands, and
    /// the sync goes on (`strata admin sync` shows it). Under the gateways' 60 s call.
    pub listing_sync_wait_ms: u64,
    /// Masters: a token that opens the web dashboard (`/ui?token=...`) besides the root keys.
    pub dashboard_token: Option<String>,
    /// Gateways: a client must send a request's headers (or, idle, its next request) within
    /// this, and never pause a request body this long (400 RequestTimeout).
    pub request_timeout_ms: u64,
    /// Gateways: open client connections at most; more are answered 503 SlowDown.
    pub max_connections: usize,
    /// HTTPS (`[tls]`, `STRATA_TLS__CERT`, ...).
    pub tls: TlsConfig,
    /// Gateways: a JSON line per request (time, request id, access key, op, bucket, key,
    /// status, bytes, ms, source) to this file, or `-` for stdout; per-request lines then leave
    /// the main log.
    pub access_log: Option<String>,
}

/// TLS: what this process serves with, and how it calls `https://` masters and workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and private key: the gateway's S3 port (and a master's or worker's
    /// port) serves HTTPS with them. Reloaded when the files change and on SIGHUP.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Gateways and `strata local` with a certificate: also serve plain HTTP on this host:port.
    pub http_listen: Option<String>,
    /// How often the certificate files are checked for a change (0: only on SIGHUP).
    pub reload_secs: u64,
    /// The cluster CA (PEM): internal calls to `https://` masters and workers verify them with
    /// it; masters and workers verify client certificates with it.
    pub ca: Option<PathBuf>,
    /// Presented on internal calls (mutual TLS); default `cert` and `key`.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Masters and workers: refuse internal callers without a certificate signed by `ca`.
    pub require_client_cert: bool,
    /// A worker's S3 port (`s3_listen`): serve HTTPS with this pair, the certificate S3 clients
    /// trust, instead of `cert`/`key` (which also make its internal port HTTPS). Reloaded too.
    pub s3_cert: Option<PathBuf>,
    pub s3_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(deserialize_with = "size")]
    pub page_size: u64,
    #[serde(deserialize_with = "size")]
    pub mem_bytes: u64,
    /// Disk tier folder (default `<data_dir>/cache`); pages evicted from memory go here.
    pub disk_dir: Option<PathBuf>,
    #[serde(deserialize_with = "size")]
    pub disk_bytes: u64,
    /// Tiers, highest first (`[[cache.tiers]]`); when given, `mem_bytes` and `disk_*` are unused.
    pub tiers: Vec<TierConfig>,
    /// `lru` or `lrfu` (any case).
    pub eviction: EvictionKind,
    /// LRFU: a page's score halves every `1 / lrfu_step` cache accesses.
    pub lrfu_step: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// MEM, SSD or HDD (any case).
    pub medium: Medium,
    /// Folders of a disk tier.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    #[serde(deserialize_with = "size")]
    pub quota: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from(".strata"),
            listen: None,
            advertise: None,
            cluster_secret: None,
            masters: Vec::new(),
            metadata: None,
            root_ufs: None,
            root_access_key: None,
            root_secret_key: None,
            block_size: 64 << 20,
            heartbeat_interval_ms: 2000,
            worker_timeout_ms: 10_000,
            cache: CacheConfig::default(),
            multipart_expiry_secs: 7 * 24 * 3600,
            domain: None,
            election: None,
            lease_ttl_ms: 3000,
            checkpoint_uri: None,
            checkpoint_interval_secs: 3600,
            ttl_check_interval_ms: 60_000,
            admin_listen: None,
            s3_listen: None,
            staging_grace_secs: 3600,
            listing_sync_wait_ms: 20_000,
            dashboard_token: None,
            request_timeout_ms: 20_000,
            max_connections: 1024,
            tls: TlsConfig::default(),
            access_log: None,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            cert: None,
            key: None,
            http_listen: None,
            reload_secs: 10,
            ca: None,
            client_cert: None,
            client_key: None,
            require_client_cert: false,
            s3_cert: None,
            s3_key: None,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            page_size: 1 << 20,
            mem_bytes: 512 << 20,
            disk_dir: None,
            disk_bytes: 4 << 30,
            tiers: Vec::new(),
            eviction: EvictionKind::Lru,
            lrfu_step: 0.001,
        }
    }
}

const SETTINGS: &[&str] = &[
    "data_dir",
    "listen",
    "advertise",
    "cluster_secret",
    "masters",
    "metadata",
    "root_ufs",
    "root_access_key",
    "root_secret_key",
    "block_size",
    "heartbeat_interval_ms",
    "worker_timeout_ms",
    "cache",
    "multipart_expiry_secs",
    "domain",
    "election",
    "lease_ttl_ms",
    "checkpoint_uri",
    "checkpoint_interval_secs",
    "ttl_check_interval_ms",
    "staging_grace_secs",
    "listing_sync_wait_ms",
    "admin_listen",
    "s3_listen",
    "dashboard_token",
    "request_timeout_ms",
    "max_connections",
    "tls",
    "access_log",
];

impl Config {
    /// Defaults < `file` (if any) < `STRATA_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(Error::invalid(format!("config file {} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        // Only the names of settings: other STRATA_* variables (STRATA_CONFIG, ...) are not ours.
        let env = Env::prefixed("STRATA_").filter(|k| {
            let top = k.as_str().split("__").next().unwrap_or_default();
            SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(top))
        });
        fig = fig.merge(env.split("__"));
        let cfg: Config = fig.extract().map_err(|e| Error::invalid(format!("bad configuration: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        if !self.cache.page_size.is_power_of_two() || self.cache.page_size < 4096 {
            return Err(Error::invalid("cache.page_size must be a power of two of at least 4096"));
        }
        if !(self.cache.lrfu_step > 0.0 && self.cache.lrfu_step <= 1.0) {
            return Err(Error::invalid("cache.lrfu_step must be in (0, 1]"));
        }
        if self.listing_sync_wait_ms >= 55_000 {
            return Err(Error::invalid(
                "listing_sync_wait_ms must be under 55000: a gateway's call to the master gives up at 60 s",
            ));
        }
        if self.block_size < self.cache.page_size || !self.block_size.is_multiple_of(self.cache.page_size) {
            return Err(Error::invalid("block_size must be a multiple of cache.page_size"));
        }
        Ok(())
    }

    pub fn metadata_url(&self) -> String {
        self.metadata
            .clone()
            .unwrap_or_else(|| format!("embedded://{}", abs(&self.data_dir.join("meta.redb")).display()))
    }

    pub fn root_ufs_url(&self) -> String {
        self.root_ufs.clone().unwrap_or_else(|| format!("file://{}", abs(&self.data_dir.join("ufs")).display()))
    }

    pub fn disk_cache_dir(&self) -> PathBuf {
        self.cache.disk_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }
}

impl CacheConfig {
    /// `eviction` with its parameters.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        match self.eviction {
            EvictionKind::Lru => EvictionPolicy::Lru,
            EvictionKind::Lrfu => EvictionPolicy::Lrfu { step: self.lrfu_step },
        }
    }
}

/// An absolute form of `p` (relative to the current folder), without touching the disk.
pub fn abs(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Parses a size: a number of bytes, or a number with K/M/G/T (powers of 1024, `KiB` too).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        N(u64),
        S(String),
    }
    match Size::deserialize(d)? {
        Size::N(n) => Ok(n),
        Size::S(s) => parse_size(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a size (use e.g. 1048576, 512MiB, 4GiB)"))),
    }
}

/// A list, or a string of comma-separated items (handy in an environment variable).
fn list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        L(Vec<String>),
        S(String),
    }
    Ok(match List::deserialize(d)? {
        List::L(l) => l,
        List::S(s) => s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2 G"), Some(2 << 30));
        assert_eq!(parse_size("2X"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("strata-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("strata.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\n[cache]\nmem_bytes = \"64MiB\"\n").unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(cfg.cache.mem_bytes, 64 << 20);
        let tiers = "[cache]\neviction = \"lrfu\"\n[[cache.tiers]]\nmedium = \"MEM\"\nquota = \"1GiB\"\n\
                     [[cache.tiers]]\nmedium = \"HDD\"\ndirs = [\"/a\", \"/b\"]\nquota = \"2TiB\"\n";
        std::fs::write(&f, tiers).unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.cache.tiers.len(), 2);
        assert_eq!((cfg.cache.tiers[1].dirs.len(), cfg.cache.tiers[1].quota), (2, 2 << 40));
        std::fs::write(&f, "[cache]\neviction = \"fifo\"\n").unwrap();
        assert!(Config::load(Some(&f)).is_err(), "unknown eviction policies are rejected");
        std::fs::write(&f, "nonsense = 1\n").unwrap();
        assert!(Config::load(Some(&f)).is_err(), "unknown keys are rejected");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Loads `toml` as a config file of its own (tests run in parallel: one file each).
    fn load_toml(name: &str, toml: &str) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("strata-cfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("strata.toml");
        std::fs::write(&f, toml).unwrap();
        let cfg = Config::load(Some(&f));
        std::fs::remove_dir_all(&dir).ok();
        cfg
    }

    #[test]
    fn the_readme_tier_example_loads_into_typed_values() {
        let toml = "[cache]\neviction = \"lrfu\"\n[[cache.tiers]]\nmedium = \"MEM\"\nquota = \"4GiB\"\n\
                    [[cache.tiers]]\nmedium = \"SSD\"\ndirs = [\"/mnt/nvme0/strata\", \"/mnt/nvme1/strata\"]\n\
                    quota = \"800GiB\"\n";
        let cfg = load_toml("readme", toml).unwrap();
        let media: Vec<Medium> = cfg.cache.tiers.iter().map(|t| t.medium).collect();
        assert_eq!(media, vec![Medium::Mem, Medium::Ssd]);
        assert_eq!(cfg.cache.tiers[1].quota, 800 << 30);
        assert_eq!(cfg.cache.eviction_policy(), EvictionPolicy::Lrfu { step: 0.001 });
    }

    #[test]
    fn media_and_policies_load_in_any_case() {
        let toml = "[cache]\neviction = \"LRFU\"\nlrfu_step = 0.5\n[[cache.tiers]]\nmedium = \"mem\"\nquota = 1\n\
                    [[cache.tiers]]\nmedium = \"Ssd\"\ndirs = [\"/a\"]\nquota = 1\n\
                    [[cache.tiers]]\nmedium = \"hdd\"\ndirs = [\"/b\"]\nquota = 1\n";
        let cfg = load_toml("case", toml).unwrap();
        let media: Vec<Medium> = cfg.cache.tiers.iter().map(|t| t.medium).collect();
        assert_eq!(media, vec![Medium::Mem, Medium::Ssd, Medium::Hdd]);
        assert_eq!(cfg.cache.eviction_policy(), EvictionPolicy::Lrfu { step: 0.5 });
        let cfg = load_toml("lru-upper", "[cache]\neviction = \"LRU\"\n").unwrap();
        assert_eq!(cfg.cache.eviction_policy(), EvictionPolicy::Lru);
    }

    #[test]
    fn the_default_policy_is_lru_and_the_step_only_matters_to_lrfu() {
        let cfg = Config::default();
        assert_eq!(cfg.cache.eviction_policy(), EvictionPolicy::Lru);
        let cfg = load_toml("lru-step", "[cache]\neviction = \"lru\"\nlrfu_step = 0.25\n").unwrap();
        assert_eq!(cfg.cache.eviction_policy(), EvictionPolicy::Lru);
    }

    #[test]
    fn a_bad_medium_fails_loading_naming_it_and_the_choices() {
        let toml = "[[cache.tiers]]\nmedium = \"NVME\"\ndirs = [\"/a\"]\nquota = 1\n";
        let e = load_toml("bad-medium", toml).unwrap_err().to_string();
        assert!(e.contains("\"NVME\"") && e.contains("MEM, SSD or HDD"), "{e}");
    }

    #[test]
    fn a_bad_policy_fails_loading_naming_it_and_the_choices() {
        let e = load_toml("bad-policy", "[cache]\neviction = \"S3FIFO\"\n").unwrap_err().to_string();
        assert!(e.contains("\"S3FIFO\"") && e.contains("lru or lrfu"), "{e}");
        let e = load_toml("num-policy", "[cache]\neviction = 3\n").unwrap_err().to_string();
        assert!(e.contains("eviction"), "{e}");
    }

    #[test]
    fn lrfu_steps_outside_zero_to_one_are_refused() {
        for step in ["0.0", "-0.5", "1.5"] {
            let toml = format!("[cache]\neviction = \"lrfu\"\nlrfu_step = {step}\n");
            let e = load_toml(&format!("step{step}"), &toml).unwrap_err().to_string();
            assert!(e.contains("lrfu_step"), "{step}: {e}");
        }
        assert!(load_toml("step1", "[cache]\neviction = \"lrfu\"\nlrfu_step = 1.0\n").is_ok(), "1 is allowed");
    }

    #[test]
    fn tls_settings_load_from_the_file_with_the_reload_default() {
        let toml = "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\nca = \"/ca.pem\"\nrequire_client_cert = true\n";
        let cfg = load_toml("tls", toml).unwrap();
        assert_eq!(cfg.tls.cert.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(cfg.tls.ca.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(cfg.tls.reload_secs, 10);
        assert!(cfg.tls.require_client_cert);
        assert_eq!(cfg.tls.s3_cert, None);
        let cfg = load_toml("s3-tls", "[tls]\ns3_cert = \"/s3.pem\"\ns3_key = \"/s3.key\"\n").unwrap();
        assert_eq!((cfg.tls.cert, cfg.tls.s3_key.as_deref()), (None, Some(Path::new("/s3.key"))));
        assert!(load_toml("tls-typo", "[tls]\ncertificate = \"/c\"\n").is_err(), "unknown tls keys are rejected");
    }

    #[test]
    fn a_tier_without_a_medium_or_quota_is_refused() {
        assert!(load_toml("no-medium", "[[cache.tiers]]\nquota = 1\n").is_err());
        assert!(load_toml("no-quota", "[[cache.tiers]]\nmedium = \"MEM\"\n").is_err());
    }
}
