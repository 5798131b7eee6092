//! Runs a repository's pytest suite in a sandbox and returns per-test outcomes.
//!
//! Candidate code is untrusted: it was generated. The [`Executor`] trait runs a
//! test command on a working copy of a repository and reports, per pytest node
//! id, passed / failed / error / skipped, with how the run ended, its duration and
//! its output (capped). Two executors:
//!
//! - [`wasm::WasmExecutor`] (default; the `wasm` feature): CPython for WASI inside wasmtime, embedded as
//!   a library. The guest sees only the working copy (read-write), the test
//!   dependencies (read-only), the driver script (read-only) and a private `/tmp`;
//!   no environment is inherited, and there is no network and no host process.
//!   Memory is capped by store limits and wall time by epoch interruption.
//! - [`native::NativeExecutor`] (opt-in): a host `python3` subprocess with a
//!   timeout and resource limits, for repositories that need C extensions and as
//!   the speed reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod bytecode;
mod disk;
pub mod junit;
pub mod line_map;
pub mod native;
pub mod testbed;
mod warm;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use line_map::{LineMap, Selection};

/// The driver that both executors run: `run_pytest.py REPO ARGS…`, or
/// `run_pytest.py --serve` in a warm worker.
pub(crate) const DRIVER: &str = include_str!("../python/run_pytest.py");

/// Output a run may write, per stream, before it is stopped. Only the tail of
/// [`Limits::output_bytes`] is kept in the result.
pub(crate) const OUTPUT_HARD_CAP: usize = 16 << 20;

/// Flags every run adds to the repository's own pytest arguments: WASI has no
/// `os.dup` (so `--capture=sys`), no faulthandler and no `/dev/null` for the
/// logging plugin; the cache plugin would write into the working copy. Both
/// executors use the same flags so their verdicts agree (python/run_pytest.py's warm-up
/// repeats the plugin and capture flags).
pub(crate) const PYTEST_FLAGS: &[&str] = &[
    "-p",
    "no:faulthandler",
    "-p",
    "no:cacheprovider",
    "--capture=sys",
    "-o",
    "junit_family=xunit1",
    "-q",
    "--tb=short",
    "-rN",
];

/// The arguments after the working copy of one pytest session: the request's own,
/// [`PYTEST_FLAGS`], and the JUnit report and log file in `tmp` as the guest sees it.
pub(crate) fn session_args(request: &TestRequest, tmp: &str) -> Vec<String> {
    let tmp = tmp.trim_end_matches('/');
    let mut args = request.pytest_args.clone();
    args.extend(PYTEST_FLAGS.iter().map(|flag| flag.to_string()));
    args.push(format!("--junitxml={tmp}/{JUNIT_FILE}"));
    args.extend(["-o".into(), format!("log_file={tmp}/pytest.log")]);
    args
}

/// The outcome of one test. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Passed,
    Skipped,
    Failed,
    Error,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// pytest exited with this code (0 all passed, 1 some failed, 2 interrupted,
    /// 3 internal error, 4 usage error, 5 no tests collected).
    Exited(i32),
    /// The wall-time limit was hit.
    TimedOut,
    /// The guest tried to use more memory than allowed.
    MemoryLimit,
    /// The guest wrote more output than allowed.
    OutputLimit,
    /// The working copy and the run's temporary directory grew past
    /// [`Limits::disk_bytes`].
    DiskLimit,
    /// The interpreter crashed (a trap other than the limits), with the reason.
    Crashed(String),
}

impl std::fmt::Display for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunEnd::Exited(0) => f.write_str("pytest passed"),
            RunEnd::Exited(1) => f.write_str("some tests failed"),
            RunEnd::Exited(2) => f.write_str("pytest was interrupted (exit 2)"),
            RunEnd::Exited(3) => f.write_str("pytest hit an internal error (exit 3)"),
            RunEnd::Exited(4) => {
                f.write_str("pytest usage error (exit 4): bad test command or path")
            }
            RunEnd::Exited(5) => f.write_str("no tests were collected (exit 5)"),
            RunEnd::Exited(code) => write!(f, "the test run exited with {code}"),
            RunEnd::TimedOut => f.write_str("time limit hit"),
            RunEnd::MemoryLimit => f.write_str("memory limit hit"),
            RunEnd::OutputLimit => f.write_str("output limit hit"),
            RunEnd::DiskLimit => f.write_str("disk limit hit (the run wrote too much)"),
            RunEnd::Crashed(why) => write!(f, "the interpreter crashed: {why}"),
        }
    }
}

impl RunEnd {
    /// Whether the run hit a limit of the sandbox rather than ending by itself.
    pub fn hit_limit(&self) -> bool {
        matches!(
            self,
            RunEnd::TimedOut | RunEnd::MemoryLimit | RunEnd::OutputLimit | RunEnd::DiskLimit
        )
    }
}

/// Limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall time of the run.
    pub timeout: Duration,
    /// CPU time of the code under test, where the executor can count it (natively:
    /// `RLIMIT_CPU` of the test process); a run past it ends [`RunEnd::TimedOut`]. Unlike
    /// the wall time it does not grow when other work shares the machine. `None`: only
    /// the wall time limits the run.
    pub cpu_time: Option<Duration>,
    /// Linear memory of the guest (wasm) or address space (native), in bytes.
    pub memory_bytes: usize,
    /// Output kept in [`TestRun::output`]; the tail is kept, the head dropped.
    pub output_bytes: usize,
    /// What the working copy and the run's temporary directory may grow by, in
    /// bytes; natively also the size of any one file written.
    pub disk_bytes: u64,
}

impl Limits {
    /// The whole CPU seconds a test process may use (`RLIMIT_CPU`): the CPU limit, else a
    /// second past the wall limit (which stops a process of one thread first).
    pub fn cpu_seconds(&self) -> u64 {
        match self.cpu_time {
            Some(cpu) => cpu.as_secs() + u64::from(cpu.subsec_nanos() > 0),
            None => self.timeout.as_secs().saturating_add(1),
        }
        .max(1)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(300),
            cpu_time: None,
            memory_bytes: 2 << 30,
            output_bytes: 64 << 10,
            disk_bytes: 512 << 20,
        }
    }
}

/// One test run: run pytest with `pytest_args` in `repo_dir`.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The working copy; tests may write into it.
    pub repo_dir: PathBuf,
    /// Arguments after `pytest` (see [`pytest_args`]).
    pub pytest_args: Vec<String>,
    pub limits: Limits,
    /// Record which lines each test executes ([`TestRun::line_map`]).
    pub trace_lines: bool,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestRun {
    /// Outcome per pytest node id; empty when pytest never wrote its report.
    pub outcomes: BTreeMap<String, TestOutcome>,
    /// First line of pytest's message for each failed or errored test.
    pub messages: BTreeMap<String, String>,
    /// What the code under test tried and the sandbox refused (reading or
    /// writing outside the working copy, sockets, processes), in order.
    #[serde(default)]
    pub violations: Vec<String>,
    /// Lines each test executed, when the request asked for it.
    #[serde(default)]
    pub line_map: Option<LineMap>,
    /// The test that was running when a run ended without finishing its session (a crash,
    /// a limit): the driver's last word.
    #[serde(default)]
    pub running: Option<String>,
    pub end: RunEnd,
    pub duration: Duration,
    /// pytest's own time inside the tests (setup, call and teardown, summed): what the
    /// run would cost without start-up, collection and reporting.
    #[serde(default)]
    pub test_time: Duration,
    /// CPU time (user + system) of the run's processes, measured inside the sandbox: a
    /// native run's interpreter and what it waited for (a warm worker's share since its
    /// last run). `None` where it was not measured: a wasm run (this process's own CPU
    /// time), a run killed before it could tell.
    #[serde(default)]
    pub cpu_time: Option<Duration>,
    /// stdout then stderr, at most [`Limits::output_bytes`] (the tail).
    pub output: String,
    pub output_truncated: bool,
}

impl TestRun {
    /// Node ids of the tests with this outcome.
    pub fn with_outcome(&self, outcome: TestOutcome) -> impl Iterator<Item = &str> {
        self.outcomes
            .iter()
            .filter(move |(_, o)| **o == outcome)
            .map(|(id, _)| id.as_str())
    }
}

/// Runs test suites in some sandbox.
pub trait Executor: Send + Sync {
    /// `wasm` or `native`.
    fn name(&self) -> &'static str;

    /// Identifies everything besides the repository and the arguments that can
    /// change a verdict (executor kind, interpreter build): part of result cache keys.
    fn fingerprint(&self) -> String;

    /// Runs the request. `Err` means the sandbox itself failed (a missing
    /// interpreter, an unreadable directory); a failing, crashing or runaway test
    /// suite is an `Ok` run that says so in [`TestRun::end`].
    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun>;

    /// Writes bytecode for the Python files under `repo_dir` beside them
    /// (checked-hash pycs: the interpreter's own and pytest's rewritten test
    /// modules), running nothing from the repository, so that runs on copies
    /// that carry them skip compiling what did not change. The default writes
    /// none.
    fn compile(&self, _repo_dir: &std::path::Path, _limits: &Limits) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The arguments after `pytest` in a test command such as
/// `pytest tests -k "not slow"` or `python -m pytest tests`.
pub fn pytest_args(test_cmd: &str) -> anyhow::Result<Vec<String>> {
    let words = shlex::split(test_cmd)
        .ok_or_else(|| anyhow::anyhow!("test command `{test_cmd}` has unbalanced quotes"))?;
    let rest = match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["pytest" | "py.test", ..] => &words[1..],
        ["python" | "python3", "-m", "pytest", ..] => &words[3..],
        _ => anyhow::bail!(
            "test command `{test_cmd}` does not start with `pytest` or `python -m pytest`"
        ),
    };
    if let Some(flag) = rest.iter().find(|word| stops_early(word)) {
        anyhow::bail!(
            "test command `{test_cmd}`: `{flag}` stops or skips tests by an earlier run, and every \
             verdict needs each selected test's outcome: remove it"
        );
    }
    Ok(rest.to_vec())
}

/// pytest flags after which a run no longer reports every selected test.
fn stops_early(word: &str) -> bool {
    const FLAGS: [&str; 9] = [
        "-x",
        "--exitfirst",
        "--maxfail",
        "--lf",
        "--last-failed",
        "--ff",
        "--failed-first",
        "--sw",
        "--stepwise",
    ];
    FLAGS.contains(&word)
        || word.starts_with("--maxfail=")
        || word.starts_with("--stepwise")
        || (word.starts_with('-') && !word.starts_with("--") && word.len() > 2 && {
            // Short flags run together (`-xq`); `-k`, `-m`, `-o`, `-p` take a value.
            let letters = &word[1..];
            letters
                .chars()
                .take_while(|c| !"kmopcr".contains(*c))
                .any(|c| c == 'x')
        })
}

/// Writes the driver script into `cache_dir` (once per driver version) and
/// returns the directory that holds it.
pub(crate) fn driver_dir(cache_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let digest = hex(&Sha256::digest(DRIVER.as_bytes()));
    let dir = cache_dir.join(format!("driver-{}", &digest[..12]));
    let script = dir.join("run_pytest.py");
    if !script.is_file() {
        stage_io::output::write_atomic(&script, DRIVER.as_bytes())?;
    }
    Ok(dir)
}

/// Stands for the working copy's folder in node ids (a test parametrized with paths under
/// the repository would otherwise be named after the folder it ran in): the driver reports
/// `<repo>/data/a.txt` for such a path and turns the token back into its own folder in the
/// arguments it is given, under every executor.
pub const REPO_TOKEN: &str = "<repo>";

/// Name of the JUnit report in a run's private temporary directory.
pub(crate) const JUNIT_FILE: &str = "junit.xml";
/// Name of the driver's violation log in a run's private temporary directory.
pub(crate) const VIOLATIONS_FILE: &str = ".sandbox-violations";
/// Name of the driver's line map in a run's private temporary directory.
pub(crate) const LINE_MAP_FILE: &str = "linemap.json";
/// Name of the file in a run's private temporary directory where the driver keeps the
/// node id of the test that is running (`SANDBOX_RUNNING`).
pub(crate) const RUNNING_FILE: &str = "running-test";
/// Name of the file in a run's private temporary directory that the driver leaves when a
/// MemoryError (natively: the address-space limit) ended the run (`SANDBOX_MEMORY_LIMIT`).
pub(crate) const MEMORY_FILE: &str = "memory-limit-hit";
/// Where a fresh native run writes its CPU seconds as it ends (`SANDBOX_CPU`).
pub(crate) const CPU_FILE: &str = "cpu-seconds";

/// Assembles a [`TestRun`] from how the run ended, its output, and what the
/// driver left in the run's temporary directory `tmp`: the JUnit report (none
/// when pytest never got that far) and the violation log.
pub(crate) fn finish_run(
    request: &TestRequest,
    tmp: &std::path::Path,
    end: RunEnd,
    duration: Duration,
    output: &[u8],
) -> anyhow::Result<TestRun> {
    let (output, output_truncated) = tail_text(output, request.limits.output_bytes);
    let mut end = end;
    if matches!(end, RunEnd::Exited(_)) && tmp.join(MEMORY_FILE).exists() {
        end = RunEnd::MemoryLimit;
    }
    let results = match std::fs::read_to_string(tmp.join(JUNIT_FILE)) {
        Ok(xml) => junit::read(&xml, &request.repo_dir).unwrap_or_else(|err| {
            // The code under test can write anything, pytest's report included.
            if matches!(end, RunEnd::Exited(_)) {
                end = RunEnd::Crashed(format!("{err:#}"));
            }
            junit::Results::default()
        }),
        Err(_) => Default::default(),
    };
    let mut violations: Vec<String> = std::fs::read_to_string(tmp.join(VIOLATIONS_FILE))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(20)
        .map(str::to_string)
        .collect();
    violations.extend(missing_process_calls(&results.messages));
    let line_map = if request.trace_lines {
        let text = std::fs::read_to_string(tmp.join(LINE_MAP_FILE)).ok();
        text.and_then(|text| serde_json::from_str(&text).ok())
    } else {
        None
    };
    let running = match end {
        RunEnd::Exited(_) => None,
        _ => std::fs::read_to_string(tmp.join(RUNNING_FILE))
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty()),
    };
    Ok(TestRun {
        outcomes: results.outcomes,
        messages: results.messages,
        violations,
        line_map,
        running,
        end,
        duration,
        test_time: results.test_time,
        cpu_time: None,
        output,
        output_truncated,
    })
}

/// The CPU seconds a run wrote to `path`. The code under test could have written it too:
/// only a finite, non-negative number of at most a day is believed.
pub(crate) fn read_cpu_seconds(path: &std::path::Path) -> Option<Duration> {
    let seconds: f64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds))
        .then(|| Duration::from_secs_f64(seconds))
}

/// Why a process killed by `signal` died, in words.
pub(crate) fn signal_death(signal: i32) -> String {
    if signal == libc::SIGSYS {
        // The driver's seccomp filter kills a run that starts a process.
        "killed by SIGSYS: the code under test tried to start a process, which the sandbox \
         forbids"
            .into()
    } else {
        format!("killed by signal {signal}")
    }
}

/// Calls that start processes and that WASI's `os` lacks: a test that fails on
/// one of them tried what the native sandbox refuses, and is named as such.
const PROCESS_CALLS: &[&str] = &[
    "fork",
    "forkpty",
    "system",
    "execv",
    "execve",
    "execvp",
    "execl",
    "execlp",
    "spawnv",
    "spawnl",
    "posix_spawn",
    "posix_spawnp",
    "popen",
];

fn missing_process_calls(messages: &BTreeMap<String, String>) -> Vec<String> {
    let mut found: Vec<String> = messages
        .values()
        .filter_map(|message| {
            let name = message
                .split("module 'os' has no attribute '")
                .nth(1)?
                .split('\'')
                .next()?;
            PROCESS_CALLS
                .contains(&name)
                .then(|| format!("start a process (os.{name}, which WASI lacks)"))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// pytest options whose value is the next word (`-k EXPR`, `--deselect ID`).
const VALUE_OPTIONS: &[&str] = &[
    "-k",
    "-m",
    "-o",
    "-p",
    "-c",
    "-W",
    "-r",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--rootdir",
    "--confcutdir",
    "--override-ini",
    "--basetemp",
    "--import-mode",
    "--tb",
    "--maxfail",
    "--durations",
    "--junitxml",
    "--log-level",
    "--pythonwarnings",
    "--capture",
];

/// The options of `args` (as from [`pytest_args`]) with its positional test paths
/// replaced by `node_ids`, in that order: runs exactly those tests.
pub fn select_tests(args: &[String], node_ids: &[String]) -> Vec<String> {
    let mut options = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if !word.starts_with('-') {
            continue;
        }
        options.push(word.clone());
        if VALUE_OPTIONS.contains(&word.as_str())
            && let Some(value) = words.next()
        {
            options.push(value.clone());
        }
    }
    options.extend(node_ids.iter().cloned());
    options
}

/// Keeps the last `cap` bytes of `bytes` as text (cut at a character boundary).
pub(crate) fn tail_text(bytes: &[u8], cap: usize) -> (String, bool) {
    if bytes.len() <= cap {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let mut start = bytes.len() - cap;
    while start < bytes.len() && (bytes[start] & 0b1100_0000) == 0b1000_0000 {
        start += 1;
    }
    (String::from_utf8_lossy(&bytes[start..]).into_owned(), true)
}

/// A new temporary directory named after this process (`socratic-PID-WHAT-…`),
/// so that a later stage can tell the leftovers of a killed one.
pub(crate) fn temp_dir(what: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("socratic-{}-{what}-", std::process::id()))
        .tempdir()
}

/// Removes the temporary directories of stages that were killed (their process
/// is gone), left in the system's temporary directory by [`temp_dir`].
pub(crate) fn remove_stale_temp_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(remove_stale_temp_dirs_now);
}

fn remove_stale_temp_dirs_now() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("socratic-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Copies the directory tree `from` into `to` (created), regular files and
/// directories only; symbolic links are not followed or copied, so a repository
/// cannot smuggle a link to a host path into a working copy.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    copy_tree_without(from, to, &[])
}

/// [`copy_tree`], leaving out the entries (files or folders, at any depth) named in `skip`.
pub fn copy_tree_without(
    from: &std::path::Path,
    to: &std::path::Path,
    skip: &[&str],
) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if skip.iter().any(|name| entry.file_name() == *name) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree_without(&entry.path(), &target, skip)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_and_the_host_name_the_working_copy_alike() {
        assert!(DRIVER.contains(&format!("REPO_TOKEN = \"{REPO_TOKEN}\"")));
    }

    #[test]
    fn pytest_args_accepts_the_usual_spellings() {
        assert_eq!(
            pytest_args("pytest tests -k 'not slow'").unwrap(),
            ["tests", "-k", "not slow"]
        );
        assert_eq!(
            pytest_args("python -m pytest").unwrap(),
            Vec::<String>::new()
        );
        assert!(pytest_args("make test").is_err());
        for early in ["-x", "-vx", "--maxfail=2", "--lf", "--stepwise-skip"] {
            let err = pytest_args(&format!("pytest tests {early}")).unwrap_err();
            assert!(err.to_string().contains("remove it"), "{early}: {err}");
        }
        assert!(pytest_args("pytest tests -rxX -p no:cacheprovider").is_ok());
        assert!(pytest_args("pytest 'unbalanced").is_err());
    }

    #[test]
    fn select_tests_keeps_options_and_replaces_paths() {
        let args =
            pytest_args("pytest tests -k 'not slow' -o pythonpath=src --deselect tests/a.py::t -q")
                .unwrap();
        let ids = vec!["tests/b.py::test_x[1]".to_string()];
        assert_eq!(
            select_tests(&args, &ids),
            [
                "-k",
                "not slow",
                "-o",
                "pythonpath=src",
                "--deselect",
                "tests/a.py::t",
                "-q",
                "tests/b.py::test_x[1]"
            ]
        );
    }

    #[test]
    fn the_temporary_folders_of_gone_stages_are_removed() {
        // A pid above the kernel's maximum (2^22) never runs.
        let stale = std::env::temp_dir().join("socratic-4999999-copy-test");
        std::fs::create_dir_all(stale.join("inner")).unwrap();
        let mine = temp_dir("copy").unwrap();
        let unrelated = std::env::temp_dir().join("socratic-copy-unrelated-test");
        std::fs::create_dir_all(&unrelated).unwrap();
        remove_stale_temp_dirs_now();
        assert!(!stale.exists());
        assert!(mine.path().is_dir(), "a live stage's folder stays");
        assert!(
            unrelated.is_dir(),
            "a name without a pid is not ours to judge"
        );
        std::fs::remove_dir_all(unrelated).unwrap();
    }

    #[test]
    fn tail_text_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail_text(b"abc", 5), ("abc".to_string(), false));
        assert_eq!(tail_text("xxé!".as_bytes(), 2), ("!".to_string(), true));
    }
}
