//! [`AnyRecord`]: a record of whatever kind its schema tag names.

use std::borrow::Cow;

use serde_json::Value;

use crate::record::{Record, RecordError, schema_field};
use crate::tag::{SchemaTag, TagError};
use crate::{Checkpoint, Repo, RoundReport, Score, Skill, Task, Trace};

macro_rules! any_record {
    ($($variant:ident),+ $(,)?) => {
        /// A record of any kind, chosen by its `schema` tag; for tools such as
        /// `records check` that accept every kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyRecord {
            $($variant($variant)),+
        }

        impl AnyRecord {
            /// Reads a record of the kind its `schema` field names.
            pub fn from_value(value: Value) -> Result<Self, RecordError> {
                Self::from_value_of_kind(value, None)
            }

            /// Reads a record of the kind its `schema` field names, which must be
            /// `kind` when one is given.
            pub fn from_value_of_kind(value: Value, kind: Option<&str>) -> Result<Self, RecordError> {
                let found = schema_field(&value)?;
                let tag = SchemaTag::known(found)
                    .map_err(|err| RecordError::field("schema", err.to_string()))?;
                if let Some(kind) = kind.filter(|kind| *kind != tag.kind) {
                    let err = TagError::WrongKind { expected: kind.to_string(), found: found.to_string() };
                    return Err(RecordError::field("schema", err.to_string()));
                }
                $(
                    if tag.kind == $variant::KIND {
                        return $variant::from_value(value).map(AnyRecord::$variant);
                    }
                )+
                unreachable!("KINDS lists a kind without a type: {}", tag.kind)
            }

            /// The kind of the record, e.g. `task`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(AnyRecord::$variant(_) => $variant::KIND),+
                }
            }

            /// The record's id (see [`Record::id`]).
            pub fn id(&self) -> Cow<'_, str> {
                match self {
                    $(AnyRecord::$variant(record) => record.id()),+
                }
            }

            /// The record as one JSON line, unknown fields included.
            pub fn to_json_line(&self) -> String {
                match self {
                    $(AnyRecord::$variant(record) => record.to_json_line()),+
                }
            }
        }
    };
}

any_record!(Repo, Task, Trace, Skill, Score, Checkpoint, RoundReport);
