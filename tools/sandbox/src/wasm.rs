//! The default executor: CPython for WASI (`python.wasm`) inside wasmtime.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::warm::{self, WarmWorker};
use crate::{
    Executor, JUNIT_FILE, LINE_MAP_FILE, Limits, PYTEST_FLAGS, RunEnd, TestRequest, TestRun,
    VIOLATIONS_FILE, driver_dir, finish_run, hex, tail_text,
};

/// Must match the pinned `wasmtime` dependency: compiled modules are only valid
/// for the wasmtime that wrote them.
const WASMTIME_VERSION: &str = "48.0.8";

/// Epoch tick of the watchdog; the time limit is enforced to this resolution.
const TICK: Duration = Duration::from_millis(10);

/// Output the guest may write before it is stopped, per stream. Only the tail of
/// [`crate::Limits::output_bytes`] is kept in the result.
pub(crate) const OUTPUT_HARD_CAP: usize = 16 << 20;

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

pub(crate) struct Guest {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limits: StoreLimits,
}

/// Runs pytest inside CPython for WASI. Cheap to share across threads: one
/// engine, one compiled module, one watchdog thread, and idle warm workers.
pub struct WasmExecutor {
    engine: Engine,
    pre: InstancePre<Guest>,
    pub(crate) site_packages: PathBuf,
    pub(crate) driver_dir: PathBuf,
    fingerprint: String,
    /// Idle warm workers; `None` when every run gets a fresh interpreter.
    workers: Option<Mutex<Vec<WarmWorker>>>,
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
            workers: config.warm.then(|| Mutex::new(Vec::new())),
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

    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        let mut pytest_args = request.pytest_args.clone();
        pytest_args.extend(PYTEST_FLAGS.iter().map(|flag| flag.to_string()));
        pytest_args.push(format!("--junitxml=/tmp/{JUNIT_FILE}"));
        pytest_args.extend(["-o".into(), "log_file=/tmp/pytest.log".into()]);
        let line_map = format!("/tmp/{LINE_MAP_FILE}");
        let extra_env: Vec<(&str, &str)> = if request.trace_lines {
            vec![("SANDBOX_LINEMAP", line_map.as_str())]
        } else {
            Vec::new()
        };
        match &self.workers {
            Some(workers) => self.run_warm(workers, request, &pytest_args, &extra_env),
            None => self.run_fresh(request, &pytest_args, &extra_env),
        }
    }
}

impl WasmExecutor {
    fn run_fresh(
        &self,
        request: &TestRequest,
        pytest_args: &[String],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<TestRun> {
        let tmp = tempfile::tempdir().context("cannot create the guest's /tmp")?;
        let mut args: Vec<String> = vec![
            "python".into(),
            "/sandbox/run_pytest.py".into(),
            "/repo".into(),
        ];
        args.extend(pytest_args.iter().cloned());
        let mounts = [
            (request.repo_dir.as_path(), "/repo", FsPerms::ReadWrite),
            (self.site_packages.as_path(), "/site", FsPerms::ReadOnly),
            (self.driver_dir.as_path(), "/sandbox", FsPerms::ReadOnly),
            (tmp.path(), "/tmp", FsPerms::ReadWrite),
        ];
        let guest = self.run_guest(&args, &mounts, extra_env, &request.limits)?;
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
    /// Runs the request in an idle warm worker with the same memory cap, or in a
    /// new one (also when the idle one turns out to be gone). Healthy workers go
    /// back to the pool; one that hit a limit, crashed or served
    /// [`warm::MAX_RUNS`] runs is dropped.
    fn run_warm(
        &self,
        workers: &Mutex<Vec<WarmWorker>>,
        request: &TestRequest,
        pytest_args: &[String],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<TestRun> {
        let memory = request.limits.memory_bytes;
        let idle = {
            let mut idle = workers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            idle.iter()
                .position(|worker| worker.memory_bytes == memory)
                .map(|at| idle.swap_remove(at))
        };
        let mut worker = match idle {
            Some(worker) => worker,
            None => WarmWorker::start(self, &self.pre, memory)?,
        };
        let run = match worker.run(request, pytest_args, extra_env) {
            Ok(run) => run,
            Err(error) => {
                tracing::debug!("warm worker unusable ({error:#}); starting another");
                worker = WarmWorker::start(self, &self.pre, memory)?;
                worker.run(request, pytest_args, extra_env)?
            }
        };
        if worker.alive && worker.runs < warm::MAX_RUNS {
            workers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(worker);
        }
        Ok(run)
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
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
        let ticks = (limits.timeout.as_millis() / TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let started = Instant::now();
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()))
            .map_err(anyhow::Error::from);
        let duration = started.elapsed();
        drop(store);

        let out = stdout.contents();
        let err = stderr.contents();
        // A full pipe refuses further writes instead of trapping, so the guest
        // may go on; it still hit the limit.
        let end = match result {
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
    pub(crate) fn wasi_builder(
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

/// Names how a guest that did not return normally ended.
pub(crate) fn classify(error: &anyhow::Error, output_len: usize) -> RunEnd {
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
