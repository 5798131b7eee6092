//! Writing records to stdout or, atomically, to a file.

use std::fs;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use schemas::{AnyRecord, Record};
use tempfile::NamedTempFile;

/// A file written under a temporary name in the same directory and renamed over
/// `path` only by [`AtomicFile::commit`]: a crash or an error leaves the old file
/// (or none), never a half-written one. Dropping it without commit removes the
/// temporary file. A path that is not a regular file (`/dev/null`, a FIFO,
/// `/dev/stdout`) is written in place: renaming over it would replace the device.
pub struct AtomicFile {
    sink: Target,
    path: PathBuf,
}

enum Target {
    Temp(NamedTempFile),
    Special(fs::File),
}

impl AtomicFile {
    /// Starts writing `path`; creates missing parent directories.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        if fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
            return Ok(AtomicFile {
                sink: Target::Special(fs::OpenOptions::new().write(true).open(path)?),
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir)?;
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("output path names no file"))?
            .to_string_lossy();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            sink: Target::Temp(temp),
            path: path.to_path_buf(),
        })
    }

    /// Makes the content durable and moves it into place.
    pub fn commit(self) -> io::Result<()> {
        let temp = match self.sink {
            Target::Temp(temp) => temp,
            Target::Special(mut file) => return file.flush(),
        };
        temp.as_file().sync_all()?;
        let file = temp.persist(&self.path).map_err(|err| err.error)?;
        drop(file);
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            // The rename is durable only once the directory entry is.
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Target::Temp(temp) => temp.write(buf),
            Target::Special(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Target::Temp(temp) => temp.flush(),
            Target::Special(file) => file.flush(),
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.commit())
        .with_context(|| format!("cannot write {}", path.display()))
}

enum Sink {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<AtomicFile>),
}

/// Where a stage writes its records: stdout, or `-o FILE` atomically.
pub struct Output {
    sink: Sink,
    written: u64,
}

impl Output {
    /// `None` or `-` writes to stdout.
    pub fn create(path: Option<&Path>) -> anyhow::Result<Output> {
        let sink = match path {
            None => Sink::Stdout(BufWriter::new(io::stdout())),
            Some(path) if path == Path::new("-") => Sink::Stdout(BufWriter::new(io::stdout())),
            Some(path) => Sink::File(BufWriter::new(
                AtomicFile::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
        };
        Ok(Output { sink, written: 0 })
    }

    /// Writes one record as one line.
    pub fn write<R: Record>(&mut self, record: &R) -> anyhow::Result<()> {
        self.write_line(&record.to_json_line())
    }

    /// Writes a record of any kind as one line.
    pub fn write_any(&mut self, record: &AnyRecord) -> anyhow::Result<()> {
        self.write_line(&record.to_json_line())
    }

    /// Writes one line of JSON (the newline is added).
    pub fn write_line(&mut self, json: &str) -> anyhow::Result<()> {
        let writer: &mut dyn Write = match &mut self.sink {
            Sink::Stdout(out) => out,
            Sink::File(out) => out,
        };
        writer
            .write_all(json.as_bytes())
            .and_then(|()| writer.write_all(b"\n"))
            .context("cannot write output")?;
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes stdout, or moves the finished file into place. Without this call the
    /// output file is not created (or the old one is left as it was).
    pub fn finish(self) -> anyhow::Result<()> {
        match self.sink {
            Sink::Stdout(mut out) => out.flush().context("cannot write output"),
            Sink::File(out) => {
                let file = out
                    .into_inner()
                    .map_err(|err| err.into_error())
                    .context("cannot write output")?;
                let path = file.path().to_path_buf();
                file.commit()
                    .with_context(|| format!("cannot write {}", path.display()))
            }
        }
    }
}
