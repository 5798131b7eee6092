//! Reading JSONL records from files and stdin, with errors that point at the
//! file, line and field.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indicatif::ProgressBar;
use schemas::{AnyRecord, Record, RecordError};
use serde_json::Value;

use crate::error::BadInput;
use crate::shard::Shard;

/// Longest line accepted. A line past it is refused at once, before it is
/// buffered whole, so a corrupt file cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 32 << 20;

const STDIN_NAME: &str = "<stdin>";

/// The input files of a stage, opened up front so a missing file fails before
/// any work starts. No paths, or `-`, means stdin.
pub struct Inputs {
    sources: Vec<(Rc<str>, Box<dyn BufRead>)>,
    total_bytes: Option<u64>,
}

impl Inputs {
    /// Opens every path (`-` is stdin; an empty list reads stdin).
    pub fn open(paths: &[PathBuf]) -> Result<Inputs, BadInput> {
        let stdin_only = [PathBuf::from("-")];
        let paths = if paths.is_empty() {
            &stdin_only[..]
        } else {
            paths
        };
        let mut sources: Vec<(Rc<str>, Box<dyn BufRead>)> = Vec::new();
        let mut total_bytes = Some(0u64);
        for path in paths {
            if path == Path::new("-") {
                if io::stdin().is_terminal() {
                    tracing::info!("reading records from the terminal; end with Ctrl-D");
                }
                sources.push((STDIN_NAME.into(), Box::new(BufReader::new(io::stdin()))));
                total_bytes = None;
                continue;
            }
            let name = path.display().to_string();
            let file = File::open(path).map_err(|err| {
                BadInput::new(format!("cannot open: {err}")).in_source(name.clone())
            })?;
            let meta = file.metadata().ok().filter(|meta| meta.is_file());
            match (meta, total_bytes.as_mut()) {
                (Some(meta), Some(total)) => *total += meta.len(),
                _ => total_bytes = None,
            }
            sources.push((
                name.into(),
                Box::new(BufReader::with_capacity(1 << 16, file)),
            ));
        }
        Ok(Inputs {
            sources,
            total_bytes,
        })
    }

    /// Reads from any reader, named `name` in messages (for tests and embedding).
    pub fn from_reader(name: &str, reader: impl Read + 'static) -> Inputs {
        Inputs {
            sources: vec![(name.into(), Box::new(BufReader::new(reader)))],
            total_bytes: None,
        }
    }

    /// Total size of the inputs in bytes, when all of them are regular files.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// The parsed JSON lines, blank lines skipped.
    pub fn lines(self) -> Lines {
        let names = self
            .sources
            .iter()
            .map(|(name, _)| &**name)
            .collect::<Vec<_>>()
            .join(", ");
        Lines {
            names,
            sources: self.sources.into_iter().collect(),
            line: 0,
            bytes: 0,
            buf: Vec::new(),
        }
    }

    /// Records of one kind, checked against its schema.
    pub fn records<R: Record + 'static>(self) -> Records<R> {
        Records::new(self.lines(), Box::new(R::from_value), |record| record.id())
    }

    /// Records of any kind (or of `kind`, when given), each checked against the
    /// schema its tag names.
    pub fn any_records(self, kind: Option<&str>) -> Records<AnyRecord> {
        let kind = kind.map(str::to_string);
        let parse = move |value| AnyRecord::from_value_of_kind(value, kind.as_deref());
        Records::new(self.lines(), Box::new(parse), |record| record.id())
    }
}

/// One non-blank line of input, parsed as JSON.
#[derive(Debug, Clone)]
pub struct Line {
    pub source: Rc<str>,
    /// 1-based line number within `source`.
    pub number: u64,
    pub value: Value,
}

impl Line {
    /// The line as a record of kind `R`, checked against its schema; a bad one is a
    /// [`BadInput`] that points at this line and field.
    pub fn record<R: Record>(&self) -> Result<R, BadInput> {
        R::from_value(self.value.clone()).map_err(|err| self.error(err.field, err.message))
    }

    /// A [`BadInput`] that points at this line.
    pub fn error(&self, field: Option<String>, message: impl Into<String>) -> BadInput {
        BadInput::new(message)
            .in_source(&*self.source)
            .at_line(self.number)
            .in_field(field)
    }
}

/// Iterator over the JSON lines of all inputs in order.
pub struct Lines {
    /// All input names, for messages about the input as a whole.
    names: String,
    sources: std::collections::VecDeque<(Rc<str>, Box<dyn BufRead>)>,
    line: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl Lines {
    /// Bytes consumed so far, over all inputs.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn parse(&self, name: &Rc<str>) -> Result<Option<Value>, BadInput> {
        let at = |message: String| BadInput::new(message).in_source(&**name).at_line(self.line);
        let text = std::str::from_utf8(&self.buf).map_err(|err| {
            at(format!(
                "not UTF-8 text (invalid byte at column {}): is this a JSONL file?",
                err.valid_up_to() + 1
            ))
        })?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(text).map(Some).map_err(|err| {
            let message = err.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(head, _)| head);
            let hint = if err.is_eof() {
                " (truncated line?)"
            } else {
                ""
            };
            at(format!(
                "invalid JSON at column {}: {message}{hint}",
                err.column()
            ))
        })
    }
}

impl Iterator for Lines {
    type Item = Result<Line, BadInput>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (name, reader) = self.sources.front_mut()?;
            let name = name.clone();
            self.buf.clear();
            let read = match read_line_capped(reader, &mut self.buf, MAX_LINE_BYTES) {
                Ok(read) => read,
                Err(LineError::TooLong) => {
                    self.sources.clear();
                    return Some(Err(BadInput::new(format!(
                        "line is longer than {} MiB; is this a JSONL file?",
                        MAX_LINE_BYTES >> 20
                    ))
                    .in_source(&*name)
                    .at_line(self.line + 1)));
                }
                Err(LineError::Io(err)) => {
                    self.sources.clear();
                    return Some(Err(BadInput::new(format!("cannot read: {err}"))
                        .in_source(&*name)
                        .at_line(self.line + 1)));
                }
            };
            if read == 0 {
                self.sources.pop_front();
                self.line = 0;
                continue;
            }
            self.line += 1;
            self.bytes += read as u64;
            match self.parse(&name) {
                Ok(None) => continue,
                Ok(Some(value)) => {
                    return Some(Ok(Line {
                        source: name,
                        number: self.line,
                        value,
                    }));
                }
                Err(err) => {
                    self.sources.clear();
                    return Some(Err(err));
                }
            }
        }
    }
}

enum LineError {
    TooLong,
    Io(io::Error),
}

/// Reads one line (without its `\n`) into `buf`, refusing lines over `max` bytes.
/// Returns the bytes consumed, 0 at the end of input.
fn read_line_capped(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, LineError> {
    let mut consumed = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(LineError::Io(err)),
        };
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > max {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        consumed += used;
        if done.is_some() {
            return Ok(consumed);
        }
    }
}

type Parse<T> = Box<dyn Fn(Value) -> Result<T, RecordError>>;
type IdOf<T> = for<'a> fn(&'a T) -> Cow<'a, str>;

/// Iterator over typed records; stops at the first bad line.
///
/// An input with no records at all is bad input unless [`Records::allow_empty`]
/// says otherwise: an empty file in a pipeline is almost always an upstream failure.
pub struct Records<T> {
    lines: Lines,
    parse: Parse<T>,
    id_of: IdOf<T>,
    shard: Option<Shard>,
    allow_empty: bool,
    seen: u64,
    done: bool,
    progress: Option<ProgressBar>,
}

impl<T> Records<T> {
    fn new(lines: Lines, parse: Parse<T>, id_of: IdOf<T>) -> Self {
        Records {
            lines,
            parse,
            id_of,
            shard: None,
            allow_empty: false,
            seen: 0,
            done: false,
            progress: None,
        }
    }

    /// Keeps only the records of one shard (`None` keeps all).
    pub fn shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// Accepts an input without records.
    pub fn allow_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Advances `bar` by the bytes read (make it with [`crate::progress::bytes`]).
    pub fn progress(mut self, bar: &ProgressBar) -> Self {
        self.progress = Some(bar.clone());
        self
    }

    /// Records read so far, before sharding.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

impl<T> Iterator for Records<T> {
    type Item = Result<T, BadInput>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let line = match self.lines.next() {
                Some(Ok(line)) => line,
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                None => {
                    self.done = true;
                    if self.seen == 0 && !self.allow_empty {
                        return Some(Err(BadInput::new(
                            "empty input: no records (did an earlier stage fail?)",
                        )
                        .in_source(self.lines.names.clone())));
                    }
                    return None;
                }
            };
            if let Some(bar) = &self.progress {
                bar.set_position(self.lines.bytes_read());
            }
            self.seen += 1;
            let record = match (self.parse)(line.value) {
                Ok(record) => record,
                Err(err) => {
                    self.done = true;
                    return Some(Err(BadInput::new(err.message)
                        .in_source(&*line.source)
                        .at_line(line.number)
                        .in_field(err.field)));
                }
            };
            if self
                .shard
                .is_none_or(|shard| shard.contains(&(self.id_of)(&record)))
            {
                return Some(Ok(record));
            }
        }
    }
}
