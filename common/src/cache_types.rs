//! The worker cache's domain values as the config file spells them: a tier's `Medium` and the
//! eviction policy (`cache.eviction`, with `cache.lrfu_step` for LRFU). Both are parsed once,
//! when the configuration loads; a bad value fails there, naming the value and the allowed ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a cache tier is made of. Only the first (highest) tier may be `Mem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Medium {
    Mem,
    Ssd,
    Hdd,
}

impl Medium {
    /// The name in config files, reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Mem => "MEM",
            Medium::Ssd => "SSD",
            Medium::Hdd => "HDD",
        }
    }
}

impl FromStr for Medium {
    type Err = String;
    /// Any case: `MEM`, `ssd`, `Hdd`.
    fn from_str(s: &str) -> Result<Medium, String> {
        match s.to_ascii_uppercase().as_str() {
            "MEM" => Ok(Medium::Mem),
            "SSD" => Ok(Medium::Ssd),
            "HDD" => Ok(Medium::Hdd),
            _ => Err(format!("{s:?} is not a cache tier medium: use MEM, SSD or HDD")),
        }
    }
}

/// The `cache.eviction` setting: which policy orders the pages of a full tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionKind {
    Lru,
    Lrfu,
}

impl EvictionKind {
    /// The name in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionKind::Lru => "lru",
            EvictionKind::Lrfu => "lrfu",
        }
    }
}

impl FromStr for EvictionKind {
    type Err = String;
    /// Any case: `lru`, `LRFU`.
    fn from_str(s: &str) -> Result<EvictionKind, String> {
        match s.to_ascii_lowercase().as_str() {
            "lru" => Ok(EvictionKind::Lru),
            "lrfu" => Ok(EvictionKind::Lrfu),
            _ => Err(format!("{s:?} is not an eviction policy: use lru or lrfu")),
        }
    }
}

/// An eviction policy with its parameters, as the worker's page store takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvictionPolicy {
    /// Least recently used.
    Lru,
    /// Least recently/frequently used: each access adds 1 to a score that halves every
    /// `1 / step` accesses to the cache, so a page read often outlives one read once lately.
    Lrfu { step: f64 },
}

macro_rules! serde_by_name {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_by_name!(Medium);
serde_by_name!(EvictionKind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_parse_in_any_case() {
        for (s, m) in [("MEM", Medium::Mem), ("mem", Medium::Mem), ("Ssd", Medium::Ssd), ("hdd", Medium::Hdd)] {
            assert_eq!(s.parse::<Medium>(), Ok(m), "{s}");
        }
    }

    #[test]
    fn unknown_media_are_refused_naming_the_value_and_the_choices() {
        for bad in ["NVME", "", "MEMORY", "ssd "] {
            let e = bad.parse::<Medium>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")) && e.contains("MEM, SSD or HDD"), "{e}");
        }
    }

    #[test]
    fn eviction_kinds_parse_in_any_case_and_name_the_choices_when_bad() {
        assert_eq!("LRU".parse::<EvictionKind>(), Ok(EvictionKind::Lru));
        assert_eq!("Lrfu".parse::<EvictionKind>(), Ok(EvictionKind::Lrfu));
        let e = "fifo".parse::<EvictionKind>().unwrap_err();
        assert!(e.contains("\"fifo\"") && e.contains("lru or lrfu"), "{e}");
    }

    #[test]
    fn names_round_trip_through_serde() {
        for m in [Medium::Mem, Medium::Ssd, Medium::Hdd] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Medium>(&json).unwrap(), m);
        }
        for k in [EvictionKind::Lru, EvictionKind::Lrfu] {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<EvictionKind>(&json).unwrap(), k);
        }
        assert_eq!(serde_json::from_str::<Medium>("\"hdd\"").unwrap(), Medium::Hdd);
        assert!(serde_json::from_str::<Medium>("3").is_err(), "a medium is a name, not a number");
    }
}
