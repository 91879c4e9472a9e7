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
//! The master's `check_write_conditions(current, if_match, if_none_match_any)` maps onto it as
//! `ETagCondition::from_wire(if_match)` (empty = no condition) and
//! `cond.matches_weak(&current.etag)`; `if_none_match_any` is
//! `ETagCondition::parse(header).is_any()`.

use std::fmt;

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
}
