//! Warm workers: one interpreter (a python.wasm instance, or a native python
//! process) imports pytest once and then runs many pytest sessions
//! (`run_pytest.py --serve`), one request line on its stdin per run.
//!
//! Start-up (interpreter, `import pytest` and its plugins) and compiling the code
//! under test are most of a run's cost on suites this small (see
//! `shared/notes/python-wasm.md`), so a worker pays start-up once and keeps what it
//! compiled. The worker's directories are fixed when it starts: its own working
//! copy and temporary directory, emptied before every run, with the request's
//! working copy copied in. Before each session the guest forgets every module
//! imported since its start-up (the code under test, its tests and conftests,
//! what they imported) and puts back the interpreter-wide state they may change
//! (`_Baseline` in the driver). A run that hits a limit or crashes ends the
//! worker; the next run starts a fresh one.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::disk::DiskWatch;
use crate::{
    LINE_MAP_FILE, Limits, MEMORY_FILE, OUTPUT_HARD_CAP, RUNNING_FILE, RunEnd, TestRequest,
    TestRun, copy_tree, finish_run, session_args,
};

/// The guest's answer to a finished run: `DONE <id> <exit code>` (python/run_pytest.py
/// writes the same bytes).
const DONE: &[u8] = b"\x1esocratic-done ";
/// The guest's line once pytest is imported and it waits for runs.
const READY: &[u8] = b"\x1esocratic-ready\n";
/// pytest's own stdout and stderr during a run, in the worker's temporary directory.
const OUTPUT_FILE: &str = ".socratic-output";
/// Created by the guest when pytest's output went past its cap.
const OUTPUT_FULL_FILE: &str = ".socratic-output-full";
/// Interpreter start-up and `import pytest` may take this long on a loaded machine.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(300);
/// A worker is replaced after this many runs, so state that outlives the purge
/// (caches of third-party modules, a growing heap) cannot build up for long.
const MAX_RUNS: u32 = 200;

/// The interpreter behind a worker: a wasm instance on a thread or a native process.
pub(crate) trait Interpreter: Send {
    /// Stops it (at once if it is running; its stdin is closed) and waits: how it
    /// ended, and what it wrote to stderr.
    fn stop(&mut self) -> (RunEnd, Vec<u8>);
}

/// A wall-clock deadline that a watchdog enforces: milliseconds after `epoch`.
#[derive(Clone)]
pub(crate) struct Deadline {
    epoch: Instant,
    at: Arc<AtomicU64>,
}

impl Deadline {
    pub(crate) fn new(after: Duration) -> Deadline {
        let deadline = Deadline {
            epoch: Instant::now(),
            at: Arc::new(AtomicU64::new(u64::MAX)),
        };
        deadline.set(after);
        deadline
    }

    /// From now.
    pub(crate) fn set(&self, after: Duration) {
        self.at
            .store(millis(self.epoch.elapsed() + after), Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        self.at.store(u64::MAX, Ordering::Relaxed);
    }

    pub(crate) fn expire(&self) {
        self.at.store(0, Ordering::Relaxed);
    }

    pub(crate) fn passed(&self) -> bool {
        millis(self.epoch.elapsed()) >= self.at.load(Ordering::Relaxed)
    }
}

/// Where the guest sees the worker's directories.
pub(crate) struct GuestPaths {
    pub(crate) repo: String,
    pub(crate) tmp: String,
}

pub(crate) struct WarmWorker {
    requests: Option<Box<dyn Write + Send>>,
    replies: BufReader<Box<dyn Read + Send>>,
    interpreter: Option<Box<dyn Interpreter>>,
    deadline: Deadline,
    repo: tempfile::TempDir,
    tmp: tempfile::TempDir,
    guest: GuestPaths,
    pub(crate) memory_bytes: usize,
    pub(crate) runs: u32,
    /// Whether the guest is still serving (no trap, no exit).
    pub(crate) alive: bool,
    nonce: u64,
    /// The guest's CPU seconds at its last reply (a forking worker reports its own and
    /// its runs' so far): a run's CPU time is the difference.
    cpu_seconds: f64,
}

/// The two directories of a new worker: its working copy and its temporary directory.
pub(crate) fn worker_dirs() -> anyhow::Result<(tempfile::TempDir, tempfile::TempDir)> {
    Ok((
        crate::temp_dir("worker").context("cannot create a worker's working copy")?,
        crate::temp_dir("worker-tmp").context("cannot create a worker's temporary directory")?,
    ))
}

impl WarmWorker {
    /// A worker around a started interpreter that reads requests from `requests`
    /// and answers on `replies`; waits until it has imported pytest. `deadline`
    /// is the one the interpreter's watchdog enforces.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        requests: Box<dyn Write + Send>,
        replies: Box<dyn Read + Send>,
        interpreter: Box<dyn Interpreter>,
        deadline: Deadline,
        (repo, tmp): (tempfile::TempDir, tempfile::TempDir),
        guest: GuestPaths,
        memory_bytes: usize,
        kind: &str,
    ) -> anyhow::Result<WarmWorker> {
        let started = Instant::now();
        let mut worker = WarmWorker {
            requests: Some(requests),
            replies: BufReader::new(replies),
            interpreter: Some(interpreter),
            deadline,
            repo,
            tmp,
            guest,
            memory_bytes,
            runs: 0,
            alive: true,
            nonce: std::collections::hash_map::RandomState::new().hash_one(0u8),
            cpu_seconds: 0.0,
        };
        // Whatever start-up printed before the greeting is skipped (up to a point).
        let mut greeting = Vec::new();
        let mut skipped = Vec::new();
        while worker.replies.read_until(b'\n', &mut greeting)? > 0
            && greeting != READY
            && skipped.len() < OUTPUT_HARD_CAP
        {
            skipped.append(&mut greeting);
        }
        worker.deadline.clear();
        tracing::debug!(
            "warm {kind} worker started in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if greeting != READY {
            let (end, err) = worker.stop();
            bail!(
                "the warm {kind} worker did not start ({end}): {}",
                crate::tail_text(&[skipped, greeting, err].concat(), 4096).0
            );
        }
        Ok(worker)
    }

    /// Runs the request on a copy of its working copy. `Err` means the worker
    /// could not be used (it died while idle, its directories failed): start
    /// another.
    pub(crate) fn run(&mut self, request: &TestRequest) -> anyhow::Result<TestRun> {
        let tmp = self.guest.tmp.trim_end_matches('/').to_string();
        let mut env = BTreeMap::new();
        env.insert("SANDBOX_RUNNING", format!("{tmp}/{RUNNING_FILE}"));
        env.insert("SANDBOX_MEMORY_LIMIT", format!("{tmp}/{MEMORY_FILE}"));
        if request.trace_lines {
            env.insert("SANDBOX_LINEMAP", format!("{tmp}/{LINE_MAP_FILE}"));
        }
        let line = serde_json::json!({
            "args": session_args(request, &tmp),
            "env": env,
            "output_full": format!("{tmp}/{OUTPUT_FULL_FILE}"),
            "output_cap": OUTPUT_HARD_CAP,
        });
        let exchange = self.exchange(&request.repo_dir, line, &request.limits)?;
        tracing::debug!(
            "warm run {} took {:.2} s ({})",
            self.runs,
            exchange.duration.as_secs_f64(),
            match &exchange.reply {
                Some(reply) => format!("served: {}", reply.timing),
                None => "worker ended".into(),
            }
        );
        let tainted = exchange
            .reply
            .as_ref()
            .and_then(|reply| reply.tainted.as_deref());
        if let Some(changed) = tainted {
            // The run itself started clean; the next one would not.
            tracing::debug!(
                "warm run {} changed the interpreter ({changed}): worker discarded",
                self.runs
            );
            self.stop();
        }
        let (end, output) = self.ended(&exchange);
        let run =
            finish_run(request, self.tmp.path(), end, exchange.duration, &output).map(|mut run| {
                run.cpu_time = exchange.cpu_time;
                run
            });
        // An idle worker holds no copy of anything.
        empty_dir(self.repo.path())?;
        empty_dir(self.tmp.path())?;
        run
    }

    /// Compiles the bytecode of `repo_dir` in the worker (`_compiling` in the driver:
    /// the interpreter has pytest's rewriter imported already, where a fresh one
    /// would import it for this alone) and copies the pycs back beside their
    /// sources in `repo_dir`. `Err` means the worker could not be used, as for
    /// [`WarmWorker::run`]; a compile that failed is [`Compiled::outcome`].
    pub(crate) fn compile(&mut self, repo_dir: &Path, limits: &Limits) -> anyhow::Result<Compiled> {
        let line = serde_json::json!({ "compile": self.guest.repo });
        let exchange = self.exchange(repo_dir, line, limits)?;
        let (end, output) = self.ended(&exchange);
        let outcome = match end {
            RunEnd::Exited(0) => {
                crate::bytecode::keep_bytecode(self.repo.path(), self.repo.path(), repo_dir)
                    .map(|_| ())
                    .with_context(|| format!("cannot copy the bytecode to {}", repo_dir.display()))
            }
            end => Err(anyhow::anyhow!(
                "compiling {} ended with {end}: {}",
                repo_dir.display(),
                crate::tail_text(&output, 2048).0
            )),
        };
        empty_dir(self.repo.path())?;
        empty_dir(self.tmp.path())?;
        Ok(Compiled {
            outcome,
            cpu_time: exchange.cpu_time,
        })
    }

    /// Copies `repo_dir` into the worker's working copy, sends `line` (with the
    /// request's id, the working copy and the output file added) and waits for the
    /// guest's reply under `limits`. `Err`: the worker could not be used.
    fn exchange(
        &mut self,
        repo_dir: &Path,
        mut line: serde_json::Value,
        limits: &Limits,
    ) -> anyhow::Result<Exchange> {
        empty_dir(self.repo.path())?;
        empty_dir(self.tmp.path())?;
        copy_tree(repo_dir, self.repo.path())
            .with_context(|| format!("cannot copy {} for the worker", repo_dir.display()))?;
        self.runs += 1;
        let id = format!("{:016x}-{}", self.nonce, self.runs);
        let tmp = self.guest.tmp.trim_end_matches('/');
        line["id"] = id.clone().into();
        line["repo"] = self.guest.repo.clone().into();
        line["output"] = format!("{tmp}/{OUTPUT_FILE}").into();
        if limits.cpu_time.is_some() {
            // A worker that forks limits its child's CPU time; one that does not (WASI)
            // has only the wall time.
            line["cpu_seconds"] = limits.cpu_seconds().into();
        }
        let started = Instant::now();
        self.deadline.set(limits.timeout);
        let disk = {
            let deadline = self.deadline.clone();
            DiskWatch::start(
                &[self.repo.path(), self.tmp.path()],
                limits.disk_bytes,
                move || deadline.expire(),
            )
        };
        let requests = self.requests.as_mut().context("the worker was stopped")?;
        writeln!(requests, "{line}")
            .and_then(|()| requests.flush())
            .context("the warm worker is gone")?;

        let done = [b"\n", DONE, id.as_bytes(), b" "].concat();
        let (reply, mut stray) = self.read_reply(&done)?;
        let duration = started.elapsed();
        self.deadline.clear();
        let disk_full = disk.finish();
        let cpu_time = self.cpu_since_last_reply(reply.as_ref());
        if disk_full {
            // A worker the disk watcher stopped mid-run is gone: it must not serve the
            // next run (which would find it dead and end at once, "time limit hit").
            let (_, err) = self.stop();
            if reply.is_none() {
                stray.extend_from_slice(&err);
            }
        }
        Ok(Exchange {
            reply,
            stray,
            duration,
            disk_full,
            cpu_time,
        })
    }

    /// How the exchanged request ended, and its output: the output file's tail
    /// and what the guest wrote to its stdout around the protocol (and, where the
    /// guest ended, its stderr).
    fn ended(&mut self, exchange: &Exchange) -> (RunEnd, Vec<u8>) {
        let (mut output, output_overflowed) = read_tail(&self.tmp.path().join(OUTPUT_FILE));
        let stray = &exchange.stray;
        output.extend_from_slice(stray);
        let end = match &exchange.reply {
            // Writes to the standard streams' file descriptors land in the output file, in
            // the run's directory: output, even where they filled the disk.
            _ if exchange.disk_full && output_overflowed => RunEnd::OutputLimit,
            _ if exchange.disk_full => RunEnd::DiskLimit,
            Some(_) if self.tmp.path().join(OUTPUT_FULL_FILE).exists() => RunEnd::OutputLimit,
            Some(_) if output_overflowed || stray.len() >= OUTPUT_HARD_CAP => RunEnd::OutputLimit,
            Some(Reply {
                signal: Some(libc::SIGXCPU),
                ..
            }) => RunEnd::TimedOut,
            Some(Reply {
                signal: Some(signal),
                ..
            }) => RunEnd::Crashed(crate::signal_death(*signal)),
            Some(reply) => RunEnd::Exited(reply.code),
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
        (end, output)
    }

    /// The CPU time the guest reports since its previous reply.
    fn cpu_since_last_reply(&mut self, reply: Option<&Reply>) -> Option<Duration> {
        let cpu = reply.and_then(|reply| reply.cpu_seconds)?;
        let spent = cpu - self.cpu_seconds;
        self.cpu_seconds = cpu;
        (spent >= 0.0).then(|| Duration::from_secs_f64(spent))
    }

    /// Reads the guest's stdout until the reply `done` (then the exit code) or
    /// the end of the guest. Other bytes are what the tests wrote to the file
    /// descriptor directly: kept as output, the tail of at most
    /// [`OUTPUT_HARD_CAP`]; past that the guest is stopped.
    fn read_reply(&mut self, done: &[u8]) -> anyhow::Result<(Option<Reply>, Vec<u8>)> {
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
                return Ok((Some(Reply::parse(&rest)), stray));
            }
            if stray.len() > 2 * OUTPUT_HARD_CAP {
                // Keep the tail; the run has already hit the limit.
                overflowed = true;
                self.deadline.expire();
                stray.drain(..stray.len() - OUTPUT_HARD_CAP);
            }
        }
    }

    /// Ends the guest (at once if it is running) and waits for it.
    fn stop(&mut self) -> (RunEnd, Vec<u8>) {
        self.alive = false;
        self.requests = None;
        let Some(mut interpreter) = self.interpreter.take() else {
            return (RunEnd::Crashed("the worker had stopped".into()), Vec::new());
        };
        // Read what the guest still writes while it stops: a guest blocked on a
        // full pipe would never get to its end.
        let mut replies = std::mem::replace(
            &mut self.replies,
            BufReader::new(Box::new(std::io::empty())),
        );
        let drain = std::thread::spawn(move || {
            let _ = std::io::copy(&mut replies, &mut std::io::sink());
        });
        let ended = interpreter.stop();
        let _ = drain.join();
        ended
    }
}

impl Drop for WarmWorker {
    fn drop(&mut self) {
        if self.interpreter.is_some() {
            self.stop();
        }
    }
}

/// Idle warm workers, shared by the threads of a stage.
#[derive(Default)]
pub(crate) struct WorkerPool {
    idle: Mutex<Vec<WarmWorker>>,
}

impl WorkerPool {
    /// Runs the request in an idle worker with the same memory cap, or in one
    /// that `start` makes (also when the idle one turns out to be gone). Healthy
    /// workers go back to the pool; one that hit a limit, crashed or served
    /// [`MAX_RUNS`] runs is dropped.
    pub(crate) fn run(
        &self,
        request: &TestRequest,
        start: impl Fn(usize) -> anyhow::Result<WarmWorker>,
    ) -> anyhow::Result<TestRun> {
        self.serve(request.limits.memory_bytes, start, |worker| {
            worker.run(request)
        })
    }

    /// Compiles `repo_dir`'s bytecode in a worker, as [`WorkerPool::run`] runs.
    pub(crate) fn compile(
        &self,
        repo_dir: &Path,
        limits: &Limits,
        start: impl Fn(usize) -> anyhow::Result<WarmWorker>,
    ) -> anyhow::Result<Compiled> {
        self.serve(limits.memory_bytes, start, |worker| {
            worker.compile(repo_dir, limits)
        })
    }

    fn serve<T>(
        &self,
        memory: usize,
        start: impl Fn(usize) -> anyhow::Result<WarmWorker>,
        work: impl Fn(&mut WarmWorker) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let idle = {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            idle.iter()
                .position(|worker| worker.memory_bytes == memory)
                .map(|at| idle.swap_remove(at))
        };
        let mut worker = match idle {
            Some(worker) => worker,
            None => start(memory)?,
        };
        let served = match work(&mut worker) {
            Ok(served) => served,
            Err(error) => {
                tracing::debug!("warm worker unusable ({error:#}); starting another");
                worker = start(memory)?;
                work(&mut worker)?
            }
        };
        if worker.alive && worker.runs < MAX_RUNS {
            self.idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(worker);
        }
        Ok(served)
    }
}

/// A request sent and answered: the reply (`None` when the guest ended first), what the
/// guest wrote to its stdout around the protocol, the wall time, whether the disk
/// watcher stopped it, and the CPU time the guest reports for it.
struct Exchange {
    reply: Option<Reply>,
    stray: Vec<u8>,
    duration: Duration,
    disk_full: bool,
    cpu_time: Option<Duration>,
}

/// A worker's compile: whether it worked, and the CPU time it took where the guest
/// measures it.
pub(crate) struct Compiled {
    pub(crate) outcome: anyhow::Result<()>,
    pub(crate) cpu_time: Option<Duration>,
}

/// The guest's answer to a run: pytest's exit code, or the signal that killed a
/// forked run (sent as minus its number); what the run changed in the
/// interpreter beyond what the worker puts back, if anything.
struct Reply {
    code: i32,
    signal: Option<i32>,
    tainted: Option<String>,
    /// What the guest says it spent: the session, and putting its state back after it.
    timing: String,
    /// The guest's CPU seconds so far (`cpu=S`), where it measures them.
    cpu_seconds: Option<f64>,
}

impl Reply {
    fn parse(rest: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(rest);
        let mut words = text.split_whitespace();
        let code = words
            .next()
            .and_then(|w| w.parse::<i32>().ok())
            .unwrap_or(3);
        let rest: Vec<&str> = words.collect();
        Reply {
            code,
            signal: (code < 0).then_some(-code),
            tainted: rest.first().and_then(|word| {
                let changed = word.strip_prefix("tainted")?;
                Some(changed.trim_start_matches(':').to_string())
            }),
            timing: rest
                .iter()
                .filter(|word| word.contains('=') && !word.starts_with("tainted"))
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            cpu_seconds: rest
                .iter()
                .find_map(|word| word.strip_prefix("cpu="))
                .and_then(|cpu| cpu.parse::<f64>().ok())
                .filter(|cpu| cpu.is_finite() && *cpu >= 0.0),
        }
    }
}

/// The last [`OUTPUT_HARD_CAP`] bytes of a file, and whether it held more.
fn read_tail(path: &Path) -> (Vec<u8>, bool) {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), false);
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let cap = OUTPUT_HARD_CAP as u64;
    if size > cap && file.seek(SeekFrom::Start(size - cap)).is_err() {
        return (Vec::new(), true);
    }
    let mut tail = Vec::new();
    let _ = file.take(cap).read_to_end(&mut tail);
    (tail, size > cap)
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
