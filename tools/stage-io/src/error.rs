//! Bad input versus failure, and the exit code each gets.

use std::fmt;
use std::process::ExitCode;

/// Input that the stage cannot accept: a record that does not parse, a file that
/// does not exist, an empty stream. Exit code 2.
///
/// Displays as `tasks.jsonl:17: field FAIL_TO_PASS: expected a list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput {
    /// The file as the user named it, or `<stdin>`.
    pub source: Option<String>,
    /// 1-based line number.
    pub line: Option<u64>,
    pub field: Option<String>,
    pub message: String,
}

impl BadInput {
    pub fn new(message: impl Into<String>) -> Self {
        BadInput {
            source: None,
            line: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn in_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    pub fn in_field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}:")?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
            }
            f.write_str(" ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadInput {}

/// The three ways a stage ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Ok = 0,
    Failed = 1,
    BadInput = 2,
}

impl From<ExitKind> for ExitCode {
    fn from(kind: ExitKind) -> ExitCode {
        ExitCode::from(kind as u8)
    }
}

/// Marks an error that another library raised on the user's input (a checkpoint
/// that does not load, a corpus entry that does not match) as [`BadInput`], with its
/// whole message. A stage's own checks return `BadInput::new(..)` and let `?` convert it.
pub fn bad_input(err: anyhow::Error) -> anyhow::Error {
    if is_bad_input(&err) {
        return err;
    }
    BadInput::new(format!("{err:#}")).into()
}

fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<BadInput>())
}

/// Exit code for an error: 2 when any cause in its chain is [`BadInput`], else 1.
pub fn exit_kind(err: &anyhow::Error) -> ExitKind {
    if is_bad_input(err) {
        ExitKind::BadInput
    } else {
        ExitKind::Failed
    }
}
