//! The native executor: a host `python3` subprocess with a timeout and resource
//! limits, inside bubblewrap (namespaces of its own, no network, nothing of the
//! host but a read-only view of the interpreter, the working copy writable), and
//! with a seccomp filter that the driver installs against process starts. Without
//! bubblewrap it runs only code the user declared trusted.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::disk::DiskWatch;
use crate::warm::{
    Deadline, GuestPaths, Interpreter, START_LIMIT, WarmWorker, WorkerPool, worker_dirs,
};
use crate::{
    CPU_FILE, Executor, LINE_MAP_FILE, Limits, MEMORY_FILE, OUTPUT_HARD_CAP, RUNNING_FILE, RunEnd,
    TestRequest, TestRun, VIOLATIONS_FILE, driver_dir, finish_run, read_cpu_seconds, session_args,
};

/// Runs pytest in a native subprocess.
pub struct NativeExecutor {
    python: PathBuf,
    site_packages: PathBuf,
    driver: PathBuf,
    isolation: Isolation,
    /// Idle warm workers; `None` when every run gets a fresh process.
    workers: Option<WorkerPool>,
    spawner: Spawner,
}

/// How native runs are kept from the host.
enum Isolation {
    /// Inside bubblewrap: namespaces of its own (user, mount, pid, network, ipc,
    /// uts), a read-only view of what the interpreter needs and nothing else of the
    /// host; the working copy and the run's temporary directory are bound after
    /// `view`, then the root is made read-only.
    Bwrap { bwrap: PathBuf, view: Vec<OsString> },
    /// The host as the interpreter sees it, behind the driver's guard and the
    /// rlimits only: for code the user declared trusted.
    Trusted,
}

/// Starts worker processes from a thread that lives as long as the executor: a
/// process dies with the thread that started it (`PR_SET_PDEATHSIG`), and a worker
/// outlives the stage thread that asked for it.
struct Spawner {
    requests: Mutex<Option<mpsc::Sender<SpawnRequest>>>,
}

type SpawnRequest = (
    Command,
    mpsc::SyncSender<std::io::Result<std::process::Child>>,
);

impl Spawner {
    fn spawn(&self, command: Command) -> std::io::Result<std::process::Child> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            let sender = requests.get_or_insert_with(|| {
                let (sender, receiver) = mpsc::channel::<SpawnRequest>();
                std::thread::Builder::new()
                    .name("worker-spawner".into())
                    .spawn(move || {
                        for (mut command, reply) in receiver {
                            let _ = reply.send(command.spawn());
                        }
                    })
                    .expect("spawn the worker spawner thread");
                sender
            });
            sender
                .send((command, reply))
                .map_err(|_| std::io::Error::other("the worker spawner is gone"))?;
        }
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the worker spawner is gone"))?
    }
}

impl NativeExecutor {
    /// `python` is the host interpreter (e.g. `python3`); `site_packages` holds
    /// the test dependencies; the driver script is kept in `cache_dir`. `warm`:
    /// runs go to warm worker processes (see [`crate::warm`]) instead of a fresh
    /// process each. Runs are contained by bubblewrap; without a working `bwrap`
    /// this fails, unless `trusted` says the code under test may see the host.
    pub fn new(
        python: &Path,
        site_packages: &Path,
        cache_dir: &Path,
        warm: bool,
        trusted: bool,
    ) -> anyhow::Result<NativeExecutor> {
        crate::remove_stale_temp_dirs();
        let driver = driver_dir(cache_dir)?.join("run_pytest.py");
        // The child runs in the working copy, so relative paths would resolve
        // there. Made absolute without resolving links: a venv's python is one.
        let absolute = |path: &Path| -> anyhow::Result<PathBuf> {
            if path.components().count() == 1 {
                return Ok(path.to_path_buf()); // a bare name is looked up in PATH
            }
            std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))
        };
        let site_packages = absolute(site_packages)?;
        let driver = absolute(&driver)?;
        let host = HostPython::probe(&absolute(python)?)?;
        let isolation = if trusted {
            tracing::warn!(
                "native runs are not isolated (trusted code): the code under test sees this \
                 machine as your user does"
            );
            Isolation::Trusted
        } else {
            let mut read_only = host.prefixes.clone();
            read_only.push(site_packages.clone());
            read_only.push(driver.parent().unwrap_or(Path::new("/")).to_path_buf());
            bwrap_isolation(&host.executable, &read_only)?
        };
        Ok(NativeExecutor {
            python: host.executable,
            site_packages,
            driver,
            isolation,
            workers: warm.then(WorkerPool::default),
            spawner: Spawner {
                requests: Mutex::new(None),
            },
        })
    }

    /// Counts CPU time measured inside the sandbox as the stage's where the stage's own
    /// resource usage cannot hold it: bubblewrap's pid namespace keeps a run's processes
    /// from the stage's `wait` (trusted runs are children it waits for).
    fn count_cpu(&self, cpu: Option<Duration>) {
        if let (Isolation::Bwrap { .. }, Some(cpu)) = (&self.isolation, cpu) {
            stage_io::usage::add_hidden_cpu(cpu);
        }
    }

    /// pytest on `request` in a fresh process.
    fn command(&self, request: &TestRequest, tmp: &Path) -> Command {
        let mut args: Vec<std::ffi::OsString> = vec![request.repo_dir.clone().into()];
        args.extend(
            session_args(request, &tmp.to_string_lossy())
                .into_iter()
                .map(Into::into),
        );
        let mut command = self.driver_command(&request.repo_dir, tmp, args);
        command.env("SANDBOX_RUNNING", tmp.join(RUNNING_FILE));
        command.env("SANDBOX_MEMORY_LIMIT", tmp.join(MEMORY_FILE));
        command.env("SANDBOX_CPU", tmp.join(CPU_FILE));
        if request.trace_lines {
            command.env("SANDBOX_LINEMAP", tmp.join(LINE_MAP_FILE));
        }
        limit(
            &mut command,
            request.limits.memory_bytes,
            Some(request.limits.cpu_seconds()),
            request.limits.disk_bytes,
        );
        command
    }

    /// The driver with `args`, inside bwrap unless trusted, seeing `repo` and
    /// `tmp` read-write, with no environment but the sandbox's.
    fn driver_command(&self, repo: &Path, tmp: &Path, args: Vec<std::ffi::OsString>) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if let Isolation::Bwrap { bwrap, view } = &self.isolation {
            argv.push(bwrap.into());
            argv.extend(view.iter().cloned());
            for dir in [repo, tmp] {
                argv.extend(["--bind".into(), dir.into(), dir.into()]);
            }
            argv.extend(["--chdir".into(), repo.into()]);
            argv.extend(["--remount-ro", "/", "--"].map(OsString::from));
        }
        argv.push(self.python.clone().into());
        argv.push(self.driver.clone().into());
        argv.extend(args);

        let driver_dir = self.driver.parent().unwrap_or(Path::new("/"));
        let allowed =
            std::env::join_paths([repo, &self.site_packages, driver_dir, tmp]).unwrap_or_default();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(repo)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("PYTHONPATH", &self.site_packages)
            .env("PYTHONHASHSEED", "0")
            .env("SANDBOX_ALLOWED", allowed)
            .env(
                "SANDBOX_WRITABLE",
                std::env::join_paths([repo, tmp]).unwrap_or_default(),
            )
            .env("SANDBOX_VIOLATIONS", tmp.join(VIOLATIONS_FILE))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("HOME", tmp)
            .env("TMPDIR", tmp)
            .env("USER", "sandbox")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }

    /// A warm worker: the driver serving runs in a process of its own, with
    /// address space capped at `memory_bytes` and no CPU-time limit (its runs are
    /// timed by the wall clock).
    fn start_worker(&self, memory_bytes: usize) -> anyhow::Result<WarmWorker> {
        let dirs = worker_dirs()?;
        let guest = GuestPaths {
            repo: dirs.0.path().to_string_lossy().into_owned(),
            tmp: dirs.1.path().to_string_lossy().into_owned(),
        };
        let mut command = self.driver_command(dirs.0.path(), dirs.1.path(), vec!["--serve".into()]);
        command.stdin(Stdio::piped());
        limit(
            &mut command,
            memory_bytes,
            None,
            Limits::default().disk_bytes,
        );
        let mut child = self
            .spawner
            .spawn(command)
            .with_context(|| format!("cannot start {}", self.python.display()))?;
        let requests = child.stdin.take().expect("piped");
        let replies = child.stdout.take().expect("piped");
        let stderr = capture(child.stderr.take().expect("piped"), Arc::default());
        let deadline = Deadline::new(START_LIMIT);
        let timed_out = Arc::new(AtomicBool::new(false));
        let group = child.id() as libc::pid_t;
        let watchdog = {
            let (deadline, timed_out) = (deadline.clone(), timed_out.clone());
            let stopped = Arc::new(AtomicBool::new(false));
            let flag = stopped.clone();
            std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if deadline.passed() {
                        timed_out.store(true, Ordering::Relaxed);
                        // SAFETY: signals the process group that the child leads.
                        unsafe { libc::kill(-group, libc::SIGKILL) };
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            stopped
        };
        WarmWorker::new(
            Box::new(requests),
            Box::new(replies),
            Box::new(NativeInterpreter {
                child,
                stderr: Some(stderr),
                timed_out,
                watchdog,
            }),
            deadline,
            dirs,
            guest,
            memory_bytes,
            "native python",
        )
    }
}

/// A warm worker's process.
struct NativeInterpreter {
    child: std::process::Child,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// Set by the watchdog when it killed the process at the deadline.
    timed_out: Arc<AtomicBool>,
    /// Tells the watchdog to end.
    watchdog: Arc<AtomicBool>,
}

impl Interpreter for NativeInterpreter {
    fn stop(&mut self) -> (RunEnd, Vec<u8>) {
        self.watchdog.store(true, Ordering::Relaxed);
        let group = self.child.id() as libc::pid_t;
        let status = match self.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => {
                // SAFETY: signals the process group that the child leads.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                self.child.wait().ok()
            }
        };
        // SAFETY: as above; grandchildren go with the group.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let err = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let end = if self.timed_out.load(Ordering::Relaxed) {
            RunEnd::TimedOut
        } else {
            match status {
                Some(status) => ended(status),
                None => RunEnd::Crashed("the worker process was lost".into()),
            }
        };
        (end, err)
    }
}

/// How a process that was not stopped by the host ended.
fn ended(status: std::process::ExitStatus) -> RunEnd {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        // bwrap passes on a signal death as 128 + the signal; pytest never exits so.
        Some(code) if code == 128 + libc::SIGXCPU => RunEnd::TimedOut,
        Some(code) if code > 128 && code < 128 + 65 => {
            RunEnd::Crashed(crate::signal_death(code - 128))
        }
        Some(code) => RunEnd::Exited(code),
        None => match status.signal() {
            Some(libc::SIGXCPU) => RunEnd::TimedOut,
            Some(signal) => RunEnd::Crashed(crate::signal_death(signal)),
            None => RunEnd::Crashed("ended without a status".into()),
        },
    }
}

/// Resource limits of a test process (address space, CPU seconds when given,
/// the size of a file, open files, processes, no core dumps); it dies with the
/// thread that started it.
fn limit(command: &mut Command, memory_bytes: usize, cpu_seconds: Option<u64>, disk_bytes: u64) {
    let memory = memory_bytes as libc::rlim_t;
    // One byte past the cap: a file that reaches it is past the disk limit.
    let file_size = disk_bytes.saturating_add(1) as libc::rlim_t;
    let cpu = cpu_seconds.map(|seconds| seconds as libc::rlim_t);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, setrlimit) between fork
    // and exec.
    unsafe {
        command.pre_exec(move || {
            // The child leads its own process group, so a killed stage would leave it
            // running; it dies with the thread that started it, which waits for it.
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "the stage died while starting pytest",
                    ));
                }
            }
            set_limit(libc::RLIMIT_AS, memory)?;
            if let Some(cpu) = cpu {
                // SIGXCPU at the soft limit (a time-out); SIGKILL a second later for a
                // process that ignores it. Equal limits would kill at once, a crash.
                set_limits(libc::RLIMIT_CPU, cpu, cpu.saturating_add(1))?;
            }
            set_limit(libc::RLIMIT_FSIZE, file_size)?;
            set_limit(libc::RLIMIT_NOFILE, 1024)?;
            set_limit(libc::RLIMIT_NPROC, 512)?;
            set_limit(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: libc::rlim_t) -> std::io::Result<()> {
    set_limits(resource, value, value)
}

fn set_limits(
    resource: libc::__rlimit_resource_t,
    soft: libc::rlim_t,
    hard: libc::rlim_t,
) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a plain syscall on a valid struct.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Executor for NativeExecutor {
    fn name(&self) -> &'static str {
        "native"
    }

    fn fingerprint(&self) -> String {
        format!(
            "native-{}{}{}-{}",
            if self.workers.is_some() { "warm-" } else { "" },
            if matches!(self.isolation, Isolation::Trusted) {
                "trusted-"
            } else {
                ""
            },
            self.python.display(),
            self.driver.display()
        )
    }

    fn compile(&self, repo_dir: &Path, limits: &Limits) -> anyhow::Result<()> {
        if let Some(workers) = &self.workers {
            let compiled = workers.compile(repo_dir, limits, |memory| self.start_worker(memory))?;
            self.count_cpu(compiled.cpu_time);
            return compiled.outcome;
        }
        let tmp = crate::temp_dir("tmp").context("cannot create a temporary directory")?;
        let mut command = self.driver_command(
            repo_dir,
            tmp.path(),
            vec!["--compile".into(), repo_dir.into()],
        );
        command.env("SANDBOX_CPU", tmp.path().join(CPU_FILE));
        limit(
            &mut command,
            limits.memory_bytes,
            Some(limits.timeout.as_secs().saturating_add(1)),
            limits.disk_bytes,
        );
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.python.display()))?;
        let stdout = capture(child.stdout.take().expect("piped"), Arc::default());
        let stderr = capture(child.stderr.take().expect("piped"), Arc::default());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > limits.timeout {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // SAFETY: signals the process group that the child leads.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = child.wait();
        self.count_cpu(read_cpu_seconds(&tmp.path().join(CPU_FILE)));
        let mut output = stdout.join().unwrap_or_default();
        output.extend(stderr.join().unwrap_or_default());
        match status {
            Some(status) if status.success() => Ok(()),
            _ => anyhow::bail!(
                "compiling {} ended with {}: {}",
                repo_dir.display(),
                status.map_or(RunEnd::TimedOut, ended),
                crate::tail_text(&output, 2048).0
            ),
        }
    }

    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        if let Some(workers) = &self.workers {
            let run = workers.run(request, |memory| self.start_worker(memory))?;
            self.count_cpu(run.cpu_time);
            return Ok(run);
        }
        let tmp = crate::temp_dir("tmp").context("cannot create a temporary directory")?;
        let started = Instant::now();
        let mut child = self
            .command(request, tmp.path())
            .spawn()
            .with_context(|| format!("cannot start {}", self.python.display()))?;
        let overflow = Arc::new(AtomicBool::new(false));
        let stdout = capture(child.stdout.take().expect("piped"), overflow.clone());
        let stderr = capture(child.stderr.take().expect("piped"), overflow.clone());
        let group = child.id() as libc::pid_t;
        let kill_group = move || {
            // SAFETY: signals the process group that the child leads.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        };
        let disk = DiskWatch::start(
            &[&request.repo_dir, tmp.path()],
            request.limits.disk_bytes,
            kill_group,
        );
        let mut end = None;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if end.is_none() {
                if started.elapsed() > request.limits.timeout {
                    end = Some(RunEnd::TimedOut);
                    kill_group();
                } else if overflow.load(Ordering::Relaxed) {
                    end = Some(RunEnd::OutputLimit);
                    kill_group();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Tests may leave grandchildren behind; they go with the group.
        kill_group();
        let duration = started.elapsed();
        if disk.finish() {
            end = Some(RunEnd::DiskLimit);
        }
        let mut combined = stdout.join().unwrap_or_default();
        combined.extend(stderr.join().unwrap_or_default());
        let end = end.unwrap_or_else(|| ended(status));
        let mut run = finish_run(request, tmp.path(), end, duration, &combined)?;
        run.cpu_time = read_cpu_seconds(&tmp.path().join(CPU_FILE));
        self.count_cpu(run.cpu_time);
        Ok(run)
    }
}

/// Reads a stream to its end on a thread, keeping the last [`OUTPUT_HARD_CAP`]
/// bytes and raising `overflow` once more than that arrived.
fn capture(
    mut stream: impl Read + Send + 'static,
    overflow: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0usize;
        let mut chunk = [0u8; 1 << 16];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            total += n;
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > OUTPUT_HARD_CAP {
                kept.drain(..kept.len() - OUTPUT_HARD_CAP);
            }
            if total > OUTPUT_HARD_CAP {
                overflow.store(true, Ordering::Relaxed);
            }
        }
        kept
    })
}

/// The host interpreter as it reports itself: the executable to run (a venv's
/// own, or the binary behind a shim) and the prefixes it reads from.
struct HostPython {
    executable: PathBuf,
    prefixes: Vec<PathBuf>,
}

impl HostPython {
    fn probe(python: &Path) -> anyhow::Result<HostPython> {
        let script = "import sys, json; print(json.dumps([sys.executable, sys.prefix, \
                      sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))";
        let output = Command::new(python)
            .args(["-I", "-c", script])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()
            .with_context(|| {
                format!("cannot start {} (run `just setup` first)", python.display())
            })?;
        anyhow::ensure!(
            output.status.success(),
            "{} does not run: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let paths: Vec<PathBuf> = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("{} did not say where it lives", python.display()))?;
        let executable = paths.first().cloned().context("no sys.executable")?;
        anyhow::ensure!(
            executable.is_absolute(),
            "{} does not know its own path",
            python.display()
        );
        let mut prefixes: Vec<PathBuf> = paths[1..].to_vec();
        prefixes.push(executable.parent().unwrap_or(Path::new("/")).to_path_buf());
        prefixes.sort();
        prefixes.dedup();
        Ok(HostPython {
            executable,
            prefixes,
        })
    }
}

/// Host files that a Python interpreter and its tests may read besides its own
/// prefix: the dynamic loader's cache, time zones, user and group names.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/mime.types",
];

/// bwrap and the mounts of a run's view, checked by starting `python` in it once:
/// `/usr` and the top-level links or folders of the system libraries, a few
/// files of `/etc`, the `read_only` folders (the interpreter's prefixes, the test
/// dependencies, the driver), `/dev` and `/proc`; as user `nobody` in a user
/// namespace where the kernel allows one.
fn bwrap_isolation(python: &Path, read_only: &[PathBuf]) -> anyhow::Result<Isolation> {
    let Some(bwrap) = find_in_path("bwrap") else {
        anyhow::bail!(
            "native runs need bubblewrap (`bwrap`) to keep the code under test from this \
             machine, and it is not installed: install it (`just setup` does as root; \
             otherwise `apt-get install bubblewrap`), use the wasm executor, or pass \
             --trusted-code if you trust every candidate"
        );
    };
    let mut base: Vec<OsString> = ["--unshare-all", "--die-with-parent", "--new-session"]
        .map(OsString::from)
        .to_vec();
    let mut mount = |how: &str, from: &std::ffi::OsStr, to: &std::ffi::OsStr| {
        base.extend([how.into(), from.into(), to.into()]);
    };
    mount("--ro-bind", "/usr".as_ref(), "/usr".as_ref());
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let Ok(meta) = std::fs::symlink_metadata(top) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(top) {
                mount("--symlink", target.as_os_str(), top.as_ref());
            }
        } else if meta.is_dir() {
            mount("--ro-bind", top.as_ref(), top.as_ref());
        }
    }
    for file in ETC_FILES {
        mount("--ro-bind-try", file.as_ref(), file.as_ref());
    }
    for dir in read_only {
        mount("--ro-bind", dir.as_os_str(), dir.as_os_str());
    }
    base.extend(["--dev", "/dev", "--proc", "/proc"].map(OsString::from));
    let as_nobody = ["--uid", "65534", "--gid", "65534"].map(OsString::from);
    let mut failures = Vec::new();
    for view in [[base.clone(), as_nobody.to_vec()].concat(), base] {
        let output = Command::new(&bwrap)
            .args(&view)
            .args(["--remount-ro", "/", "--"])
            .arg(python)
            .args(["-I", "-c", "pass"])
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot start {}", bwrap.display()))?;
        if output.status.success() {
            return Ok(Isolation::Bwrap { bwrap, view });
        }
        failures.push(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    anyhow::bail!(
        "bubblewrap cannot start {} here ({}): native runs need it to keep the code under \
         test from this machine; use the wasm executor, or pass --trusted-code if you trust \
         every candidate",
        python.display(),
        failures.join("; ")
    )
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
