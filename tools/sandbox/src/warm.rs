//! Warm workers for the wasm executor: one python.wasm instance imports pytest
//! once and then runs many pytest sessions (`run_pytest.py --serve`).
//!
//! Start-up (interpreter, `import pytest` and its plugins) is most of a run's
//! cost under wasm on suites this small (see `shared/notes/python-wasm.md`), so a
//! worker pays it once. The worker's mounts are fixed when it starts: its own
//! `/repo` and `/tmp` directories, emptied before every run, with the request's
//! working copy copied into `/repo`. Before each session the guest forgets every
//! module loaded from `/repo` or `/tmp` (the code under test, its tests and
//! conftests) and restores the working directory, the import path, the
//! environment and the recursion limit. A run that hits a limit or crashes ends
//! the worker; the next run starts a fresh one.

use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasmtime::{InstancePre, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::wasm::{Guest, OUTPUT_HARD_CAP, WasmExecutor, classify};
use crate::{RunEnd, TestRequest, TestRun, copy_tree, finish_run};

/// The guest's answer to a finished run: `DONE <id> <exit code>`.
const DONE: &[u8] = b"\x1esocratic-done ";
/// The guest's line once pytest is imported and it waits for runs.
const READY: &[u8] = b"\x1esocratic-ready\n";
/// pytest's own stdout and stderr during a run, in the worker's `/tmp`.
const OUTPUT_FILE: &str = ".socratic-output";
/// Created by the guest when pytest's output went past its cap.
const OUTPUT_FULL_FILE: &str = ".socratic-output-full";
/// Interpreter start-up and `import pytest` may take this long on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(300);
/// A worker is replaced after this many runs, so state that outlives the purge
/// (caches of third-party modules, a growing heap) cannot build up for long.
pub(crate) const MAX_RUNS: u32 = 200;

pub(crate) struct WarmWorker {
    requests: Option<File>,
    replies: BufReader<File>,
    /// Milliseconds after `epoch` at which running guest code traps.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    guest: Option<JoinHandle<(RunEnd, Vec<u8>)>>,
    repo: tempfile::TempDir,
    tmp: tempfile::TempDir,
    pub(crate) memory_bytes: usize,
    pub(crate) runs: u32,
    /// Whether the guest is still serving (no trap, no exit).
    pub(crate) alive: bool,
    nonce: u64,
}

impl WarmWorker {
    /// Starts a worker whose guest memory is capped at `memory_bytes` and waits
    /// until it has imported pytest.
    pub(crate) fn start(
        executor: &WasmExecutor,
        pre: &InstancePre<Guest>,
        memory_bytes: usize,
    ) -> anyhow::Result<WarmWorker> {
        let repo = tempfile::tempdir().context("cannot create a worker's working copy")?;
        let tmp = tempfile::tempdir().context("cannot create a worker's /tmp")?;
        let (request_reader, request_writer) = std::io::pipe()?;
        let (reply_reader, reply_writer) = std::io::pipe()?;
        let stderr = MemoryOutputPipe::new(OUTPUT_HARD_CAP);
        let args: Vec<String> = ["python", "/sandbox/run_pytest.py", "--serve"]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        let mounts = [
            (repo.path(), "/repo", FsPerms::ReadWrite),
            (executor.site_packages.as_path(), "/site", FsPerms::ReadOnly),
            (executor.driver_dir.as_path(), "/sandbox", FsPerms::ReadOnly),
            (tmp.path(), "/tmp", FsPerms::ReadWrite),
        ];
        let mut wasi = executor.wasi_builder(&args, &mounts, &[])?;
        wasi.stdin(InputFile::new(File::from(OwnedFd::from(request_reader))))
            .stdout(OutputFile::new(File::from(OwnedFd::from(reply_writer))))
            .stderr(stderr.clone());
        let mut store = Store::new(
            executor.engine(),
            Guest {
                wasi: wasi.build_p1(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
            },
        );
        store.limiter(|guest| &mut guest.limits);
        let epoch = Instant::now();
        let deadline = Arc::new(AtomicU64::new(millis(START_LIMIT)));
        let watched = Arc::clone(&deadline);
        store.epoch_deadline_callback(move |_| {
            Ok(
                if millis(epoch.elapsed()) >= watched.load(Ordering::Relaxed) {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Continue(1)
                },
            )
        });
        store.set_epoch_deadline(1);
        let pre = pre.clone();
        let guest = std::thread::Builder::new()
            .name("wasm-worker".into())
            .spawn(move || {
                let result = pre
                    .instantiate(&mut store)
                    .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
                    .and_then(|start| start.call(&mut store, ()))
                    .map_err(anyhow::Error::from);
                // Closes the guest's stdout: the host sees the end of its replies.
                drop(store);
                let err = stderr.contents().to_vec();
                let end = match result {
                    Ok(()) => RunEnd::Exited(0),
                    Err(error) => classify(&error, err.len()),
                };
                (end, err)
            })?;
        let mut worker = WarmWorker {
            requests: Some(File::from(OwnedFd::from(request_writer))),
            replies: BufReader::new(File::from(OwnedFd::from(reply_reader))),
            deadline,
            epoch,
            guest: Some(guest),
            repo,
            tmp,
            memory_bytes,
            runs: 0,
            alive: true,
            nonce: std::collections::hash_map::RandomState::new().hash_one(0u8),
        };
        let mut greeting = Vec::new();
        worker.replies.read_until(b'\n', &mut greeting)?;
        tracing::debug!(
            "warm python.wasm worker started in {:.1} s",
            epoch.elapsed().as_secs_f64()
        );
        if greeting != READY {
            let (end, err) = worker.stop();
            bail!(
                "the warm python.wasm worker did not start ({end}): {}",
                crate::tail_text(&[greeting, err].concat(), 4096).0
            );
        }
        Ok(worker)
    }

    /// Runs pytest with `pytest_args` (everything after the working copy) on a
    /// copy of the request's working copy. `Err` means the worker could not be
    /// used (it died while idle, its directories failed): start another.
    pub(crate) fn run(
        &mut self,
        request: &TestRequest,
        pytest_args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<TestRun> {
        empty_dir(self.repo.path())?;
        empty_dir(self.tmp.path())?;
        copy_tree(&request.repo_dir, self.repo.path()).with_context(|| {
            format!("cannot copy {} for the worker", request.repo_dir.display())
        })?;
        self.runs += 1;
        let id = format!("{:016x}-{}", self.nonce, self.runs);
        let line = serde_json::json!({
            "id": id,
            "repo": "/repo",
            "args": pytest_args,
            "env": env.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
            "output": format!("/tmp/{OUTPUT_FILE}"),
            "output_full": format!("/tmp/{OUTPUT_FULL_FILE}"),
            "output_cap": OUTPUT_HARD_CAP,
        });
        let started = Instant::now();
        self.deadline.store(
            millis(self.epoch.elapsed() + request.limits.timeout),
            Ordering::Relaxed,
        );
        let requests = self.requests.as_mut().context("the worker was stopped")?;
        writeln!(requests, "{line}")
            .and_then(|()| requests.flush())
            .context("the warm worker is gone")?;

        let done = [b"\n", DONE, id.as_bytes(), b" "].concat();
        let (reply, stray) = self.read_reply(&done)?;
        let duration = started.elapsed();
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        tracing::debug!(
            "warm run {} took {:.2} s ({})",
            self.runs,
            duration.as_secs_f64(),
            if reply.is_some() {
                "served"
            } else {
                "worker ended"
            }
        );
        let mut output = std::fs::read(self.tmp.path().join(OUTPUT_FILE)).unwrap_or_default();
        output.extend_from_slice(&stray);
        let end = match reply {
            Some(_) if self.tmp.path().join(OUTPUT_FULL_FILE).exists() => RunEnd::OutputLimit,
            Some(_) if stray.len() >= OUTPUT_HARD_CAP => RunEnd::OutputLimit,
            Some(code) => RunEnd::Exited(code),
            None => {
                let (end, err) = self.stop();
                output.extend_from_slice(&err);
                if stray.len() >= OUTPUT_HARD_CAP {
                    RunEnd::OutputLimit
                } else {
                    end
                }
            }
        };
        finish_run(request, self.tmp.path(), end, duration, &output)
    }

    /// Reads the guest's stdout until the reply `done` (then the exit code) or
    /// the end of the guest. Other bytes are what the tests wrote to the file
    /// descriptor directly: kept as output, the tail of at most
    /// [`OUTPUT_HARD_CAP`]; past that the guest is stopped.
    fn read_reply(&mut self, done: &[u8]) -> anyhow::Result<(Option<i32>, Vec<u8>)> {
        let mut stray: Vec<u8> = Vec::new();
        let mut overflowed = false;
        loop {
            let chunk = self.replies.fill_buf()?;
            if chunk.is_empty() {
                if overflowed {
                    stray.resize(stray.len().max(OUTPUT_HARD_CAP), b' ');
                }
                return Ok((None, stray));
            }
            let searched_from = stray.len().saturating_sub(done.len());
            stray.extend_from_slice(chunk);
            let read = chunk.len();
            self.replies.consume(read);
            if let Some(at) = find(&stray[searched_from..], done) {
                let at = searched_from + at;
                let mut rest = stray.split_off(at)[done.len()..].to_vec();
                if !rest.contains(&b'\n') {
                    self.replies.read_until(b'\n', &mut rest)?;
                }
                let code = String::from_utf8_lossy(&rest);
                let code = code.trim().parse::<i32>().unwrap_or(3);
                return Ok((Some(code), stray));
            }
            if stray.len() > 2 * OUTPUT_HARD_CAP {
                // Keep the tail; the run has already hit the limit.
                overflowed = true;
                self.deadline.store(0, Ordering::Relaxed);
                stray.drain(..stray.len() - OUTPUT_HARD_CAP);
            }
        }
    }

    /// Ends the guest (at its next tick if it is running) and waits for it.
    fn stop(&mut self) -> (RunEnd, Vec<u8>) {
        self.alive = false;
        self.requests = None;
        self.deadline.store(0, Ordering::Relaxed);
        // Drain what the guest still writes, so it cannot block on a full pipe.
        let _ = std::io::copy(
            &mut self.replies.get_mut().take(u64::MAX),
            &mut std::io::sink(),
        );
        match self.guest.take().map(JoinHandle::join) {
            Some(Ok(ended)) => ended,
            Some(Err(_)) => (
                RunEnd::Crashed("the worker thread panicked".into()),
                Vec::new(),
            ),
            None => (RunEnd::Crashed("the worker had stopped".into()), Vec::new()),
        }
    }
}

impl Drop for WarmWorker {
    fn drop(&mut self) {
        if self.guest.is_some() {
            self.stop();
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Deletes everything inside `dir`, keeping `dir`.
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
