//! How a write and a read use the cache: [`WriteType`] (a mount's default and the
//! `x-strata-write-type` header) and [`ReadType`] (the `x-strata-read-type` header).
//! Parsed once where they enter (CLI flag, header, the proto's string), typed after.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a write's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WriteType {
    /// Only the cache (a worker's journal): fast, never in the under store.
    MustCache,
    /// The cache and the under store, before the answer.
    #[default]
    CacheThrough,
    /// Only the under store.
    Through,
    /// The cache now, the under store soon after (a background job of the worker).
    AsyncThrough,
}

/// The names every [`WriteType`] is written as, for error messages.
pub const WRITE_TYPES: &str = "MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH";

impl WriteType {
    pub const ALL: [WriteType; 4] =
        [WriteType::MustCache, WriteType::CacheThrough, WriteType::Through, WriteType::AsyncThrough];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteType::MustCache => "MUST_CACHE",
            WriteType::CacheThrough => "CACHE_THROUGH",
            WriteType::Through => "THROUGH",
            WriteType::AsyncThrough => "ASYNC_THROUGH",
        }
    }

    /// The write type of a mount as the proto carries it: empty means the default; an
    /// unknown value (never stored by `strata admin mount`) falls back to the default too.
    pub fn from_wire(s: &str) -> WriteType {
        WriteType::from_header(s).unwrap_or_default()
    }

    /// A header value: case and surrounding blanks do not matter, empty means the default.
    pub fn from_header(s: &str) -> Option<WriteType> {
        let s = s.trim();
        if s.is_empty() { Some(WriteType::default()) } else { s.parse().ok() }
    }

    /// Whether the bytes go to a worker's journal first (the under store has them later or never).
    pub fn journaled(self) -> bool {
        matches!(self, WriteType::MustCache | WriteType::AsyncThrough)
    }
}

/// A name that is none of the types; says which ones there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType {
    pub given: String,
    pub expected: &'static str,
}

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: use {}", self.given, self.expected)
    }
}

impl std::error::Error for UnknownType {}

/// Exactly one of the names, in any case (no blanks around it).
impl FromStr for WriteType {
    type Err = UnknownType;
    fn from_str(s: &str) -> Result<WriteType, UnknownType> {
        let upper = s.to_ascii_uppercase();
        WriteType::ALL
            .into_iter()
            .find(|t| t.as_str() == upper)
            .ok_or_else(|| UnknownType { given: s.to_string(), expected: WRITE_TYPES })
    }
}

impl fmt::Display for WriteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a read uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadType {
    /// Misses are cached.
    #[default]
    Cache,
    /// Misses are cached and hot pages move to the top tier.
    CachePromote,
    /// The cache is read but not filled.
    NoCache,
}

/// The names every [`ReadType`] is written as, for error messages.
pub const READ_TYPES: &str = "CACHE, CACHE_PROMOTE or NO_CACHE";

impl ReadType {
    pub const ALL: [ReadType; 3] = [ReadType::Cache, ReadType::CachePromote, ReadType::NoCache];

    pub fn as_str(self) -> &'static str {
        match self {
            ReadType::Cache => "CACHE",
            ReadType::CachePromote => "CACHE_PROMOTE",
            ReadType::NoCache => "NO_CACHE",
        }
    }

    /// Whether a miss is kept in the cache.
    pub fn cache(self) -> bool {
        !matches!(self, ReadType::NoCache)
    }

    /// Whether hot pages move up a tier.
    pub fn promote(self) -> bool {
        matches!(self, ReadType::CachePromote)
    }
}

/// Exactly one of the names, in any case (no blanks around it).
impl FromStr for ReadType {
    type Err = UnknownType;
    fn from_str(s: &str) -> Result<ReadType, UnknownType> {
        let upper = s.to_ascii_uppercase();
        ReadType::ALL
            .into_iter()
            .find(|t| t.as_str() == upper)
            .ok_or_else(|| UnknownType { given: s.to_string(), expected: READ_TYPES })
    }
}

impl fmt::Display for ReadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_types_parse_in_any_case_and_print_back() {
        for t in WriteType::ALL {
            assert_eq!(t.as_str().parse::<WriteType>(), Ok(t));
            assert_eq!(t.as_str().to_ascii_lowercase().parse::<WriteType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("Async_Through".parse::<WriteType>(), Ok(WriteType::AsyncThrough));
    }

    #[test]
    fn write_type_refuses_unknown_blank_and_padded_names() {
        let e = "CACHE".parse::<WriteType>().unwrap_err();
        assert_eq!(e.to_string(), "\"CACHE\": use MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH");
        assert!("".parse::<WriteType>().is_err());
        assert!(" THROUGH".parse::<WriteType>().is_err());
    }

    #[test]
    fn write_type_header_trims_and_defaults_when_empty() {
        assert_eq!(WriteType::from_header(" must_cache "), Some(WriteType::MustCache));
        assert_eq!(WriteType::from_header(""), Some(WriteType::CacheThrough));
        assert_eq!(WriteType::from_header("  "), Some(WriteType::CacheThrough));
        assert_eq!(WriteType::from_header("SOMETIMES"), None);
    }

    #[test]
    fn write_type_from_the_wire_falls_back_to_cache_through() {
        assert_eq!(WriteType::from_wire(""), WriteType::CacheThrough);
        assert_eq!(WriteType::from_wire("THROUGH"), WriteType::Through);
        assert_eq!(WriteType::from_wire("bogus"), WriteType::CacheThrough);
    }

    #[test]
    fn only_must_cache_and_async_through_are_journaled() {
        let journaled: Vec<WriteType> = WriteType::ALL.into_iter().filter(|t| t.journaled()).collect();
        assert_eq!(journaled, vec![WriteType::MustCache, WriteType::AsyncThrough]);
    }

    #[test]
    fn types_serialize_as_their_names() {
        assert_eq!(serde_json::to_string(&WriteType::AsyncThrough).unwrap(), "\"ASYNC_THROUGH\"");
        assert_eq!(serde_json::from_str::<WriteType>("\"MUST_CACHE\"").unwrap(), WriteType::MustCache);
        assert_eq!(serde_json::to_string(&ReadType::CachePromote).unwrap(), "\"CACHE_PROMOTE\"");
        assert_eq!(serde_json::from_str::<ReadType>("\"NO_CACHE\"").unwrap(), ReadType::NoCache);
    }

    #[test]
    fn read_types_parse_and_say_what_they_do() {
        for t in ReadType::ALL {
            assert_eq!(t.as_str().to_ascii_lowercase().parse::<ReadType>(), Ok(t));
        }
        assert!((ReadType::Cache.cache(), ReadType::Cache.promote()) == (true, false));
        assert!((ReadType::CachePromote.cache(), ReadType::CachePromote.promote()) == (true, true));
        assert!((ReadType::NoCache.cache(), ReadType::NoCache.promote()) == (false, false));
        let e = "FAST".parse::<ReadType>().unwrap_err();
        assert_eq!(e.to_string(), "\"FAST\": use CACHE, CACHE_PROMOTE or NO_CACHE");
        assert_eq!(ReadType::default(), ReadType::Cache);
    }
}
