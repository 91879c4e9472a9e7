//! `If-Match` and `If-None-Match` values: `*`, or a list of entity tags, each maybe quoted and
//! maybe weak (`W/"…"`). One parser and two comparisons for the gateway's reads and writes
//! and the master's commit check.
//!
//! Comparisons, as Strata has always made them:
//! - [`ETagCondition::matches_weak`] (GET and HEAD conditions, the master's commit check):
//!   `W/` and quotes are ignored; `*` anywhere in the list matches any object.
//! - [`ETagCondition::matches_strong`] (the gateway's early check of a write's `If-Match`): a
//!   weak tag never matches; only a bare `*` is a wildcard.
//!
//! A write's conditions are [`WriteConditions`]: parsed from the proto's `if_match` string
//! (empty = none) and `if_none_match_any`, checked against the object the write replaces.
//! The master's `check_write_conditions(current, if_match, if_none_match_any)` is
//! `WriteConditions::from_wire(if_match, if_none_match_any)
//!     .check(current.map(|m| m.etag.as_str()), Compare::Weak)
//!     .map_err(WriteRefused::into_error)`.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// One entity tag of a list, its quotes and `W/` taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub value: String,
    /// Written `W/…`.
    pub weak: bool,
    /// Written in double quotes.
    pub quoted: bool,
}

impl EntityTag {
    fn parse(s: &str) -> EntityTag {
        let s = s.trim();
        let unweak = s.trim_start_matches("W/");
        let value = unweak.trim_matches('"');
        EntityTag { value: value.to_string(), weak: unweak.len() != s.len(), quoted: value.len() != unweak.len() }
    }

    /// `*` with neither quotes nor `W/`.
    fn is_bare_star(&self) -> bool {
        self.value == "*" && !self.weak && !self.quoted
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.weak { "W/" } else { "" };
        if self.quoted { write!(f, "{w}\"{}\"", self.value) } else { write!(f, "{w}{}", self.value) }
    }
}

/// An `If-Match` / `If-None-Match` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ETagCondition {
    /// The whole value is `*`: any existing object.
    Any,
    /// A comma-separated list of entity tags.
    Tags(Vec<EntityTag>),
}

impl ETagCondition {
    /// Never fails: a value that names no object's ETag simply matches none.
    pub fn parse(header: &str) -> ETagCondition {
        if header.trim() == "*" {
            return ETagCondition::Any;
        }
        ETagCondition::Tags(header.split(',').map(EntityTag::parse).collect())
    }

    /// A condition as the proto carries it: empty means none.
    pub fn from_wire(s: &str) -> Option<ETagCondition> {
        (!s.is_empty()).then(|| ETagCondition::parse(s))
    }

    pub fn is_any(&self) -> bool {
        matches!(self, ETagCondition::Any)
    }

    /// Whether an object of this ETag (unquoted) matches, `W/` and quotes ignored.
    pub fn matches_weak(&self, etag: &str) -> bool {
        match self {
            ETagCondition::Any => true,
            ETagCondition::Tags(tags) => tags.iter().any(|t| t.value == "*" || t.value == etag),
        }
    }

    /// Whether an object of this ETag (unquoted) matches by strong comparison: weak tags never do.
    pub fn matches_strong(&self, etag: &str) -> bool {
        match self {
            ETagCondition::Any => true,
            ETagCondition::Tags(tags) => tags.iter().any(|t| t.is_bare_star() || (!t.weak && t.value == etag)),
        }
    }
}

/// The value as a header (or the proto's string) again; [`ETagCondition::parse`] reads it back
/// as the same condition.
impl fmt::Display for ETagCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ETagCondition::Any => f.write_str("*"),
            ETagCondition::Tags(tags) => {
                for (i, t) in tags.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
        }
    }
}

/// How entity tags are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// [`ETagCondition::matches_weak`].
    Weak,
    /// [`ETagCondition::matches_strong`].
    Strong,
}

/// Why a write's conditions refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefused {
    /// An object exists under `If-None-Match: *`, or its ETag is not in `If-Match`.
    PreconditionFailed,
    /// `If-Match` on a key that has no object.
    NoSuchKey,
}

impl WriteRefused {
    /// As Strata's error, with S3's messages.
    pub fn into_error(self) -> Error {
        match self {
            WriteRefused::PreconditionFailed => Error::new(
                ErrorKind::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ),
            WriteRefused::NoSuchKey => Error::new(ErrorKind::NoSuchKey, "The specified key does not exist."),
        }
    }
}

/// A write's `If-Match` and `If-None-Match` (`*`, or entity tags the object must not have).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match_any: bool,
    /// `If-None-Match` with entity tags (never [`ETagCondition::Any`]: that is the flag above).
    pub if_none_match: Option<ETagCondition>,
}

impl WriteConditions {
    /// As the proto carries them: `if_match` empty means none.
    pub fn from_wire(if_match: &str, if_none_match_any: bool) -> WriteConditions {
        WriteConditions { if_match: ETagCondition::from_wire(if_match), if_none_match_any, if_none_match: None }
    }

    /// Adds an `If-None-Match` value (as the proto's `if_none_match` carries it: "" = none).
    pub fn with_if_none_match(mut self, wire: &str) -> WriteConditions {
        match ETagCondition::from_wire(wire) {
            Some(ETagCondition::Any) => self.if_none_match_any = true,
            c => self.if_none_match = c,
        }
        self
    }

    /// The `If-None-Match` entity tags as the proto's `if_none_match` carries them.
    pub fn if_none_match_wire(&self) -> String {
        self.if_none_match.as_ref().map(|c| c.to_string()).unwrap_or_default()
    }

    /// As the proto carries them; [`WriteConditions::from_wire`] reads them back the same.
    pub fn to_wire(&self) -> (String, bool) {
        (self.if_match.as_ref().map(|c| c.to_string()).unwrap_or_default(), self.if_none_match_any)
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && !self.if_none_match_any && self.if_none_match.is_none()
    }

    /// Whether the write may replace the object of ETag `current` (None: there is none).
    pub fn check(&self, current: Option<&str>, compare: Compare) -> Result<(), WriteRefused> {
        if self.if_none_match_any && current.is_some() {
            return Err(WriteRefused::PreconditionFailed);
        }
        let matches = |c: &ETagCondition, etag: &str| match compare {
            Compare::Weak => c.matches_weak(etag),
            Compare::Strong => c.matches_strong(etag),
        };
        if let (Some(c), Some(etag)) = (&self.if_none_match, current)
            && c.matches_weak(etag)
        {
            return Err(WriteRefused::PreconditionFailed);
        }
        match (&self.if_match, current) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(WriteRefused::NoSuchKey),
            (Some(c), Some(etag)) if !matches(c, etag) => Err(WriteRefused::PreconditionFailed),
            (Some(_), Some(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "5d41402abc4b2a76b9719d911017c592";

    #[test]
    fn a_lone_star_is_any_and_matches_everything() {
        for s in ["*", " * "] {
            let c = ETagCondition::parse(s);
            assert!(c.is_any());
            assert!(c.matches_weak(E) && c.matches_strong(E));
        }
        assert!(!ETagCondition::parse("\"*\"").is_any());
    }

    #[test]
    fn lists_are_split_trimmed_and_unquoted() {
        let c = ETagCondition::parse(" \"a\" ,W/\"b\", c");
        let ETagCondition::Tags(tags) = &c else { panic!("not a list: {c:?}") };
        let got: Vec<(&str, bool, bool)> = tags.iter().map(|t| (t.value.as_str(), t.weak, t.quoted)).collect();
        assert_eq!(got, vec![("a", false, true), ("b", true, true), ("c", false, false)]);
    }

    #[test]
    fn weak_comparison_ignores_w_and_quotes() {
        assert!(ETagCondition::parse(&format!("\"{E}\"")).matches_weak(E));
        assert!(ETagCondition::parse(&format!("W/\"{E}\"")).matches_weak(E));
        assert!(ETagCondition::parse(&format!("\"x\", {E}")).matches_weak(E));
        assert!(!ETagCondition::parse("\"x\", \"y\"").matches_weak(E));
        // A star inside a list, quoted or not, still matches.
        assert!(ETagCondition::parse("\"x\", \"*\"").matches_weak(E));
    }

    #[test]
    fn strong_comparison_refuses_weak_tags_and_quoted_stars() {
        assert!(ETagCondition::parse(&format!("\"{E}\"")).matches_strong(E));
        assert!(!ETagCondition::parse(&format!("W/\"{E}\"")).matches_strong(E));
        assert!(ETagCondition::parse("\"x\", *").matches_strong(E));
        assert!(!ETagCondition::parse("\"x\", \"*\"").matches_strong(E));
    }

    #[test]
    fn an_empty_value_matches_nothing_but_is_no_condition_on_the_wire() {
        assert!(!ETagCondition::parse("").matches_weak(E));
        assert_eq!(ETagCondition::from_wire(""), None);
        assert_eq!(ETagCondition::from_wire("*"), Some(ETagCondition::Any));
    }

    #[test]
    fn printing_reads_back_as_the_same_condition() {
        for s in ["*", "\"a\"", "W/\"b\", c", "W/W/\"d\",\"*\"", " x , , \"y\""] {
            let c = ETagCondition::parse(s);
            assert_eq!(ETagCondition::parse(&c.to_string()), c, "{s:?} printed as {c}");
        }
    }

    #[test]
    fn write_conditions_on_the_wire() {
        let none = WriteConditions::from_wire("", false);
        assert!(none.is_empty());
        assert_eq!(none.to_wire(), (String::new(), false));
        let c = WriteConditions::from_wire("\"a\", W/\"b\"", true);
        assert_eq!(WriteConditions::from_wire(&c.to_wire().0, c.to_wire().1), c);
    }

    #[test]
    fn if_none_match_star_refuses_any_existing_object() {
        let c = WriteConditions::from_wire("", true);
        assert_eq!(c.check(None, Compare::Weak), Ok(()));
        assert_eq!(c.check(Some("a"), Compare::Weak), Err(WriteRefused::PreconditionFailed));
    }

    #[test]
    fn if_none_match_with_tags_refuses_only_an_object_it_names() {
        let c = WriteConditions::default().with_if_none_match("\"a\", \"b\"");
        assert!(!c.is_empty());
        assert_eq!(c.check(None, Compare::Strong), Ok(()));
        assert_eq!(c.check(Some("c"), Compare::Strong), Ok(()));
        assert_eq!(c.check(Some("b"), Compare::Strong), Err(WriteRefused::PreconditionFailed));
        let back = WriteConditions::default().with_if_none_match(&c.if_none_match_wire());
        assert_eq!(back, c);
        let any = WriteConditions::default().with_if_none_match("*");
        assert!(any.if_none_match_any && any.if_none_match.is_none());
        assert_eq!(WriteConditions::default().with_if_none_match(""), WriteConditions::default());
    }

    #[test]
    fn if_match_needs_an_object_whose_etag_it_names() {
        let c = WriteConditions::from_wire("\"a\", \"b\"", false);
        assert_eq!(c.check(Some("b"), Compare::Strong), Ok(()));
        assert_eq!(c.check(Some("c"), Compare::Weak), Err(WriteRefused::PreconditionFailed));
        assert_eq!(c.check(None, Compare::Weak), Err(WriteRefused::NoSuchKey));
    }

    #[test]
    fn a_weak_if_match_passes_the_master_but_not_the_gateway() {
        let c = WriteConditions::from_wire("W/\"b\"", false);
        assert_eq!(c.check(Some("b"), Compare::Weak), Ok(()));
        assert_eq!(c.check(Some("b"), Compare::Strong), Err(WriteRefused::PreconditionFailed));
    }

    #[test]
    fn refusals_become_s3_errors_with_s3_messages() {
        let e = WriteRefused::PreconditionFailed.into_error();
        assert_eq!(e.kind, ErrorKind::PreconditionFailed);
        assert_eq!(e.message, "At least one of the pre-conditions you specified did not hold");
        assert_eq!(WriteRefused::NoSuchKey.into_error().kind, ErrorKind::NoSuchKey);
    }
}
