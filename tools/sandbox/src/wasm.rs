//! The default executor: CPython for WASI (`python.wasm`) inside wasmtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::fs::File;
use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::disk::DiskWatch;
use crate::warm::{
    Deadline, GuestPaths, Interpreter, START_LIMIT, WarmWorker, WorkerPool, worker_dirs,
};
use crate::{
    Executor, LINE_MAP_FILE, Limits, OUTPUT_HARD_CAP, RUNNING_FILE, RunEnd, TestOutcome,
    TestRequest, TestRun, VIOLATIONS_FILE, driver_dir, finish_run, hex, session_args, tail_text,
};

/// Must match the pinned `wasmtime` dependency: compiled modules are only valid
/// for the wasmtime that wrote them.
const WASMTIME_VERSION: &str = "48.0.8";

/// Epoch tick of the watchdog; the time limit is enforced to this resolution.
const TICK: Duration = Duration::from_millis(10);

/// Where the pieces of the guest come from.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// `python.wasm` (CPython 3.12 for wasm32-wasip1, standard library inside).
    pub python_wasm: PathBuf,
    /// Pure-Python test dependencies, mounted read-only at `/site`.
    pub site_packages: PathBuf,
    /// Compiled modules and the driver script are kept here.
    pub cache_dir: PathBuf,
    /// Run tests in warm workers (one interpreter serves many runs, see
    /// [`crate::warm`]) instead of a fresh interpreter per run.
    pub warm: bool,
}

struct Guest {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Runs pytest inside CPython for WASI. Cheap to share across threads: one
/// engine, one compiled module, one watchdog thread, and idle warm workers.
pub struct WasmExecutor {
    engine: Engine,
    pre: InstancePre<Guest>,
    site_packages: PathBuf,
    driver_dir: PathBuf,
    fingerprint: String,
    /// Idle warm workers; `None` when every run gets a fresh interpreter.
    workers: Option<WorkerPool>,
}

impl WasmExecutor {
    /// Loads the interpreter, compiling it on first use and caching the compiled
    /// module in `cache_dir` (keyed by wasmtime version and interpreter hash).
    pub fn new(config: &WasmConfig) -> anyhow::Result<WasmExecutor> {
        let bytes = std::fs::read(&config.python_wasm).with_context(|| {
            format!(
                "cannot read the WASI interpreter {}; run `just setup` to install it",
                config.python_wasm.display()
            )
        })?;
        if !config.site_packages.is_dir() {
            bail!(
                "test dependencies {} are missing; run `just setup`",
                config.site_packages.display()
            );
        }
        let mut engine_config = Config::new();
        engine_config.epoch_interruption(true);
        let engine = Engine::new(&engine_config)?;
        let digest = hex(&Sha256::digest(&bytes));
        let module = load_module(
            &engine,
            &bytes,
            &digest,
            &config.python_wasm,
            &config.cache_dir,
        )?;
        let mut linker: Linker<Guest> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |guest| &mut guest.wasi)?;
        let pre = linker.instantiate_pre(&module)?;
        let driver_dir = driver_dir(&config.cache_dir)?;
        start_watchdog(&engine);
        let executor = WasmExecutor {
            engine,
            pre,
            site_packages: config.site_packages.clone(),
            fingerprint: format!(
                "wasm-{}{}-{}",
                if config.warm { "warm-" } else { "" },
                &digest[..16],
                driver_dir.file_name().unwrap_or_default().to_string_lossy()
            ),
            driver_dir,
            workers: config.warm.then(WorkerPool::default),
        };
        executor.precompile_site_packages(&digest)?;
        Ok(executor)
    }
}

impl Executor for WasmExecutor {
    fn name(&self) -> &'static str {
        "wasm"
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn compile(&self, repo_dir: &Path, limits: &Limits) -> anyhow::Result<()> {
        if let Some(workers) = &self.workers {
            return workers
                .compile(repo_dir, limits, |memory| self.start_worker(memory))?
                .outcome;
        }
        let tmp = crate::temp_dir("tmp").context("cannot create the guest's /tmp")?;
        let args = ["python", "/sandbox/run_pytest.py", "--compile", "/repo"].map(String::from);
        let guest = self.run_guest(&args, &self.mounts(repo_dir, tmp.path()), &[], limits)?;
        anyhow::ensure!(
            guest.end == RunEnd::Exited(0),
            "compiling {} ended with {}: {}",
            repo_dir.display(),
            guest.end,
            crate::tail_text(&guest.output, 2048).0
        );
        Ok(())
    }

    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        let mut request = std::borrow::Cow::Borrowed(request);
        let mut overflowed: Vec<(String, Duration)> = Vec::new();
        loop {
            let run = match &self.workers {
                Some(workers) => workers.run(&request, |memory| self.start_worker(memory))?,
                None => self.run_fresh(&request)?,
            };
            // A test that overflows the C stack is, natively, a RecursionError inside that
            // test: run the session again without it and report it failed.
            match (&run.end, &run.running) {
                (RunEnd::Crashed(why), Some(test))
                    if why == STACK_OVERFLOW && overflowed.len() < MAX_OVERFLOW_RERUNS =>
                {
                    tracing::debug!("{test} overflowed the C stack: running the rest again");
                    overflowed.push((test.clone(), run.duration));
                    // One argument: whatever the guest wrote cannot become an option.
                    request
                        .to_mut()
                        .pytest_args
                        .push(format!("--deselect={test}"));
                }
                _ => return Ok(with_overflowed(run, &overflowed)),
            }
        }
    }
}

/// How many tests of one run may overflow the C stack and be run apart before the run is
/// left a crash.
const MAX_OVERFLOW_RERUNS: usize = 3;

/// The run without the tests that overflowed the C stack, with them failed as the
/// RecursionError they are natively.
fn with_overflowed(mut run: TestRun, overflowed: &[(String, Duration)]) -> TestRun {
    if overflowed.is_empty() || !matches!(run.end, RunEnd::Exited(0 | 1 | 5)) {
        return run;
    }
    for (test, duration) in overflowed {
        run.outcomes.insert(test.clone(), TestOutcome::Failed);
        run.messages
            .insert(test.clone(), OVERFLOW_MESSAGE.to_string());
        run.duration += *duration;
    }
    run.end = RunEnd::Exited(1);
    run
}

/// The failure message of a test that overflowed the C stack under wasm.
const OVERFLOW_MESSAGE: &str = "RecursionError: maximum recursion depth exceeded (through C code: \
    the WASI interpreter's C stack overflowed; the other tests ran without this one)";

impl WasmExecutor {
    /// What a test guest sees: the working copy at `/repo` and its own `/tmp`
    /// (read-write), the test dependencies at `/site` and the driver at `/sandbox`.
    fn mounts<'a>(
        &'a self,
        repo: &'a Path,
        tmp: &'a Path,
    ) -> [(&'a Path, &'static str, FsPerms); 4] {
        [
            (repo, "/repo", FsPerms::ReadWrite),
            (self.site_packages.as_path(), "/site", FsPerms::ReadOnly),
            (self.driver_dir.as_path(), "/sandbox", FsPerms::ReadOnly),
            (tmp, "/tmp", FsPerms::ReadWrite),
        ]
    }

    fn run_fresh(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        let tmp = crate::temp_dir("tmp").context("cannot create the guest's /tmp")?;
        let mut args: Vec<String> = vec![
            "python".into(),
            "/sandbox/run_pytest.py".into(),
            "/repo".into(),
        ];
        args.extend(session_args(request, "/tmp"));
        let line_map = format!("/tmp/{LINE_MAP_FILE}");
        let running = format!("/tmp/{RUNNING_FILE}");
        let mut extra_env: Vec<(&str, &str)> = vec![("SANDBOX_RUNNING", running.as_str())];
        if request.trace_lines {
            extra_env.push(("SANDBOX_LINEMAP", line_map.as_str()));
        }
        let mounts = self.mounts(&request.repo_dir, tmp.path());
        let guest = self.run_guest(&args, &mounts, &extra_env, &request.limits)?;
        finish_run(
            request,
            tmp.path(),
            guest.end,
            guest.duration,
            &guest.output,
        )
    }
}

impl WasmExecutor {
    /// A warm worker: a python.wasm instance on its own thread serving runs, its
    /// directories mounted at `/repo` and `/tmp`, memory capped at `memory_bytes`.
    fn start_worker(&self, memory_bytes: usize) -> anyhow::Result<WarmWorker> {
        let dirs = worker_dirs()?;
        let (request_reader, request_writer) = std::io::pipe()?;
        let (reply_reader, reply_writer) = std::io::pipe()?;
        let stderr = MemoryOutputPipe::new(OUTPUT_HARD_CAP);
        let args: Vec<String> = ["python", "/sandbox/run_pytest.py", "--serve"]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        let mut wasi = self.wasi_builder(&args, &self.mounts(dirs.0.path(), dirs.1.path()), &[])?;
        wasi.stdin(InputFile::new(File::from(OwnedFd::from(request_reader))))
            .stdout(OutputFile::new(File::from(OwnedFd::from(reply_writer))))
            .stderr(stderr.clone());
        let mut store = Store::new(
            &self.engine,
            Guest {
                wasi: wasi.build_p1(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
            },
        );
        store.limiter(|guest| &mut guest.limits);
        let deadline = Deadline::new(START_LIMIT);
        interrupt_at(&mut store, &deadline);
        let pre = self.pre.clone();
        let thread = std::thread::Builder::new()
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
        WarmWorker::new(
            Box::new(File::from(OwnedFd::from(request_writer))),
            Box::new(File::from(OwnedFd::from(reply_reader))),
            Box::new(WasmInterpreter {
                thread: Some(thread),
                deadline: deadline.clone(),
            }),
            deadline,
            dirs,
            GuestPaths {
                repo: "/repo".into(),
                tmp: "/tmp".into(),
            },
            memory_bytes,
            "python.wasm",
        )
    }
}

/// A warm worker's instance, running `_start` on its own thread.
struct WasmInterpreter {
    thread: Option<std::thread::JoinHandle<(RunEnd, Vec<u8>)>>,
    deadline: Deadline,
}

impl Interpreter for WasmInterpreter {
    fn stop(&mut self) -> (RunEnd, Vec<u8>) {
        // Traps guest code that is still running; a guest waiting for a request
        // sees its stdin closed and returns.
        self.deadline.expire();
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(ended)) => ended,
            Some(Err(_)) => (
                RunEnd::Crashed("the worker thread panicked".into()),
                Vec::new(),
            ),
            None => (RunEnd::Crashed("the worker had stopped".into()), Vec::new()),
        }
    }
}

struct GuestRun {
    end: RunEnd,
    duration: Duration,
    /// stdout, then stderr.
    output: Vec<u8>,
}

impl WasmExecutor {
    /// Runs the interpreter with `args` and only the given directories mounted.
    fn run_guest(
        &self,
        args: &[String],
        mounts: &[(&Path, &str, FsPerms)],
        extra_env: &[(&str, &str)],
        limits: &Limits,
    ) -> anyhow::Result<GuestRun> {
        let stdout = MemoryOutputPipe::new(OUTPUT_HARD_CAP);
        let stderr = MemoryOutputPipe::new(OUTPUT_HARD_CAP);
        let mut wasi = self.wasi_builder(args, mounts, extra_env)?;
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            Guest {
                wasi: wasi.build_p1(),
                limits: store_limits,
            },
        );
        store.limiter(|guest| &mut guest.limits);
        // The wall-time limit, and an early stop when the guest fills the disk.
        let deadline = Deadline::new(limits.timeout);
        interrupt_at(&mut store, &deadline);
        let writable: Vec<&Path> = mounts
            .iter()
            .filter(|(_, _, perms)| matches!(perms, FsPerms::ReadWrite))
            .map(|(host, _, _)| *host)
            .collect();
        let disk = {
            let deadline = deadline.clone();
            DiskWatch::start(&writable, limits.disk_bytes, move || deadline.expire())
        };

        let started = Instant::now();
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()))
            .map_err(anyhow::Error::from);
        let duration = started.elapsed();
        drop(store);
        let disk_full = disk.finish();

        let out = stdout.contents();
        let err = stderr.contents();
        // A full pipe refuses further writes instead of trapping, so the guest
        // may go on; it still hit the limit.
        let end = match result {
            _ if disk_full => RunEnd::DiskLimit,
            _ if out.len().max(err.len()) >= OUTPUT_HARD_CAP => RunEnd::OutputLimit,
            Ok(()) => RunEnd::Exited(0),
            Err(error) => classify(&error, out.len().max(err.len())),
        };
        let mut output = out.to_vec();
        output.extend_from_slice(&err);
        Ok(GuestRun {
            end,
            duration,
            output,
        })
    }

    /// The guest's arguments, environment and mounts; no inherited environment,
    /// no network. Standard streams are the caller's to set.
    fn wasi_builder(
        &self,
        args: &[String],
        mounts: &[(&Path, &str, FsPerms)],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<WasiCtxBuilder> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(args)
            .envs(&[
                ("PYTHONPATH", "/sandbox:/site"),
                ("SANDBOX_ALLOWED", "/repo:/site:/sandbox:/tmp"),
                ("SANDBOX_WRITABLE", "/repo:/tmp"),
                ("SANDBOX_VIOLATIONS", &format!("/tmp/{VIOLATIONS_FILE}")),
                ("PYTHONHASHSEED", "0"),
                ("HOME", "/tmp"),
                ("TMPDIR", "/tmp"),
                ("USER", "sandbox"),
                ("LANG", "C.UTF-8"),
            ])
            .envs(extra_env)
            .allow_blocking_current_thread(true);
        for (host, guest, perms) in mounts {
            wasi.preopened_dir(host, guest, *perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot mount {} at {guest}", host.display()))?;
        }
        Ok(wasi)
    }

    /// Compiles the test dependencies to CPython 3.12 bytecode once (the host
    /// Python cannot: its bytecode is another version). Without it every run
    /// recompiles pytest's ~80 modules, which costs seconds per run. Later runs
    /// mount the directory read-only and only read the bytecode.
    fn precompile_site_packages(&self, interpreter_digest: &str) -> anyhow::Result<()> {
        let stamp = self
            .site_packages
            .join(format!(".socratic-bytecode-{}", &interpreter_digest[..16]));
        if stamp.is_file() {
            return Ok(());
        }
        tracing::info!(
            "compiling {} to python.wasm bytecode (once)",
            self.site_packages.display()
        );
        let args: Vec<String> = ["python", "-m", "compileall", "-q", "/site"]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        let tmp = tempfile::tempdir()?;
        let mounts = [
            (self.site_packages.as_path(), "/site", FsPerms::ReadWrite),
            (tmp.path(), "/tmp", FsPerms::ReadWrite),
        ];
        let limits = Limits {
            timeout: Duration::from_secs(600),
            ..Limits::default()
        };
        let guest = self.run_guest(&args, &mounts, &[], &limits)?;
        if guest.end != RunEnd::Exited(0) {
            bail!(
                "compiling {} under python.wasm failed ({:?}): {}",
                self.site_packages.display(),
                guest.end,
                tail_text(&guest.output, 4096).0
            );
        }
        stage_io::output::write_atomic(&stamp, b"")?;
        Ok(())
    }
}

/// Why a guest whose stack ran out crashed. python.wasm keeps its C stack at the
/// bottom of linear memory: a recursion through C code (`__getattr__` or
/// `__repr__` calling itself) runs the stack pointer below zero before CPython's
/// own limit stops it, where natively it is a RecursionError.
const STACK_OVERFLOW: &str = "stack overflow: a recursion through C code went deeper than the \
    WASI interpreter's stack (natively a RecursionError)";

/// A memory fault at an address past 4 GiB: the stack pointer wrapped below zero.
fn is_stack_overflow(text: &str) -> bool {
    let Some(rest) = text.split("memory fault at wasm address 0x").nth(1) else {
        return false;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).is_ok_and(|address| address >= 1 << 32)
}

/// Interrupts the guest of `store` once `deadline` has passed (checked at every
/// epoch tick): the wall-time limit, or an early stop that the host asks for.
fn interrupt_at(store: &mut Store<Guest>, deadline: &Deadline) {
    let watched = deadline.clone();
    store.epoch_deadline_callback(move |_| {
        Ok(if watched.passed() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        })
    });
    store.set_epoch_deadline(1);
}

/// Names how a guest that did not return normally ended.
fn classify(error: &anyhow::Error, output_len: usize) -> RunEnd {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return RunEnd::Exited(exit.0);
    }
    let text = format!("{error:#}");
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RunEnd::TimedOut,
        _ if text.contains("forcing a memory growth failure")
            || text.contains("growing memory") =>
        {
            RunEnd::MemoryLimit
        }
        _ if output_len >= OUTPUT_HARD_CAP || text.contains("beyond capacity") => {
            RunEnd::OutputLimit
        }
        _ if is_stack_overflow(&text) => RunEnd::Crashed(STACK_OVERFLOW.into()),
        _ => RunEnd::Crashed(text),
    }
}

fn load_module(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    path: &Path,
    cache_dir: &Path,
) -> anyhow::Result<Module> {
    let cached = cache_dir.join(format!(
        "python-{}-wasmtime-{WASMTIME_VERSION}.cwasm",
        &digest[..16]
    ));
    if cached.is_file() {
        // SAFETY: the file was written by `Module::serialize` of this wasmtime
        // version (its name says so) into the project's own cache; wasmtime
        // also checks that it matches this engine's configuration.
        match unsafe { Module::deserialize_file(engine, &cached) } {
            Ok(module) => return Ok(module),
            Err(err) => tracing::warn!(
                "recompiling: cached module {} is unusable: {err}",
                cached.display()
            ),
        }
    }
    tracing::info!(
        "compiling {} (once; cached in {})",
        path.display(),
        cache_dir.display()
    );
    let module = Module::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "cannot compile {}: is it corrupt? rerun `just setup`",
                path.display()
            )
        })?;
    let serialized = module.serialize()?;
    stage_io::output::write_atomic(&cached, &serialized)?;
    Ok(module)
}

/// Advances the engine's epoch every [`TICK`] while the engine lives.
fn start_watchdog(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-watchdog".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn the watchdog thread");
}
