//! The `"schema": "<kind>/<major>[.<minor>]"` tag every record carries.

use std::fmt;
use std::str::FromStr;

/// Every record kind this build knows, in pipeline order.
pub const KINDS: &[&str] = &[
    "repo",
    "task",
    "trace",
    "skill",
    "score",
    "checkpoint",
    "round-report",
];

/// A parsed schema tag such as `task/1` or `task/1.2`.
///
/// A minor version only adds optional fields, so a reader accepts any minor of its
/// major; a newer major changed meaning and is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaTag {
    pub kind: String,
    pub major: u32,
    pub minor: u32,
}

/// Why a schema tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("malformed schema tag `{0}`: expected `<kind>/<major>[.<minor>]`, e.g. `task/1`")]
    Malformed(String),
    #[error("unknown record kind `{kind}` (known: {})", KINDS.join(", "))]
    UnknownKind { kind: String },
    #[error("expected a {expected} record, found `{found}`")]
    WrongKind { expected: String, found: String },
    #[error(
        "`{found}` is newer than this build understands ({expected}/{supported}); upgrade socratic-swe"
    )]
    TooNew {
        found: String,
        expected: String,
        supported: u32,
    },
    #[error(
        "`{found}` is older than this build supports ({expected}/{supported}) and no migration exists"
    )]
    TooOld {
        found: String,
        expected: String,
        supported: u32,
    },
}

impl FromStr for SchemaTag {
    type Err = TagError;

    fn from_str(tag: &str) -> Result<Self, TagError> {
        let malformed = || TagError::Malformed(tag.to_string());
        let (kind, version) = tag.split_once('/').ok_or_else(malformed)?;
        let (major, minor) = match version.split_once('.') {
            Some((major, minor)) => (major, minor),
            None => (version, "0"),
        };
        let number = |s: &str| -> Result<u32, TagError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            s.parse().map_err(|_| malformed())
        };
        if kind.is_empty() {
            return Err(malformed());
        }
        Ok(SchemaTag {
            kind: kind.to_string(),
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for SchemaTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{}/{}", self.kind, self.major)
        } else {
            write!(f, "{}/{}.{}", self.kind, self.major, self.minor)
        }
    }
}

impl SchemaTag {
    /// Parses `tag` and checks that a reader of `kind` at `major` may read it.
    pub fn check(tag: &str, kind: &str, major: u32) -> Result<SchemaTag, TagError> {
        let parsed: SchemaTag = tag.parse()?;
        if !KINDS.contains(&parsed.kind.as_str()) {
            return Err(TagError::UnknownKind { kind: parsed.kind });
        }
        if parsed.kind != kind {
            return Err(TagError::WrongKind {
                expected: kind.to_string(),
                found: tag.to_string(),
            });
        }
        let refusal = |found: &str| (found.to_string(), kind.to_string(), major);
        if parsed.major > major {
            let (found, expected, supported) = refusal(tag);
            return Err(TagError::TooNew {
                found,
                expected,
                supported,
            });
        }
        if parsed.major < major {
            let (found, expected, supported) = refusal(tag);
            return Err(TagError::TooOld {
                found,
                expected,
                supported,
            });
        }
        Ok(parsed)
    }

    /// Parses `tag` and checks only that its kind is one this build knows.
    pub fn known(tag: &str) -> Result<SchemaTag, TagError> {
        let parsed: SchemaTag = tag.parse()?;
        if KINDS.contains(&parsed.kind.as_str()) {
            Ok(parsed)
        } else {
            Err(TagError::UnknownKind { kind: parsed.kind })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_minor_of_the_supported_major() {
        assert_eq!(SchemaTag::check("task/1", "task", 1).unwrap().minor, 0);
        assert_eq!(SchemaTag::check("task/1.7", "task", 1).unwrap().minor, 7);
    }

    #[test]
    fn rejects_a_newer_major_and_says_to_upgrade() {
        let err = SchemaTag::check("task/2", "task", 1).unwrap_err();
        assert!(matches!(err, TagError::TooNew { .. }));
        assert!(err.to_string().contains("upgrade"), "{err}");
    }

    #[test]
    fn rejects_unknown_kinds_and_lists_the_known_ones() {
        let err = SchemaTag::check("patch/1", "task", 1).unwrap_err();
        assert!(
            err.to_string().contains("unknown record kind `patch`"),
            "{err}"
        );
        assert!(err.to_string().contains("round-report"), "{err}");
    }

    #[test]
    fn rejects_a_record_of_another_kind() {
        let err = SchemaTag::check("trace/1", "task", 1).unwrap_err();
        assert_eq!(err.to_string(), "expected a task record, found `trace/1`");
    }

    #[test]
    fn rejects_malformed_tags() {
        for tag in [
            "task",
            "task/",
            "/1",
            "task/one",
            "task/1.",
            "task/-1",
            "task/1.2.3",
        ] {
            assert!(
                matches!(tag.parse::<SchemaTag>(), Err(TagError::Malformed(_))),
                "{tag} was accepted"
            );
        }
    }

    #[test]
    fn displays_without_a_zero_minor() {
        assert_eq!(
            "task/1.0".parse::<SchemaTag>().unwrap().to_string(),
            "task/1"
        );
        assert_eq!(
            "task/1.3".parse::<SchemaTag>().unwrap().to_string(),
            "task/1.3"
        );
    }
}
