//! The opt-in executor: a host `python3` subprocess with a timeout, resource
//! limits and, when `bwrap` is installed, no network and a read-only system.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{
    Executor, JUNIT_FILE, LINE_MAP_FILE, PYTEST_FLAGS, RunEnd, TestRequest, TestRun,
    VIOLATIONS_FILE, driver_dir, finish_run,
};

/// Output the child may write before it is killed, per stream.
const OUTPUT_HARD_CAP: usize = 16 << 20;

/// Runs pytest in a native subprocess.
pub struct NativeExecutor {
    python: PathBuf,
    site_packages: PathBuf,
    driver: PathBuf,
    bwrap: Option<PathBuf>,
}

impl NativeExecutor {
    /// `python` is the host interpreter (e.g. `python3`); `site_packages` holds
    /// the test dependencies; the driver script is kept in `cache_dir`.
    pub fn new(
        python: &Path,
        site_packages: &Path,
        cache_dir: &Path,
    ) -> anyhow::Result<NativeExecutor> {
        let driver = driver_dir(cache_dir)?.join("run_pytest.py");
        let bwrap = find_in_path("bwrap");
        if bwrap.is_none() {
            tracing::debug!("bwrap not installed: native runs are not isolated from the network");
        }
        // The child runs in the working copy, so relative paths would resolve
        // there. Made absolute without resolving links: a venv's python is one.
        let absolute = |path: &Path| -> anyhow::Result<PathBuf> {
            if path.components().count() == 1 {
                return Ok(path.to_path_buf()); // a bare name is looked up in PATH
            }
            std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))
        };
        Ok(NativeExecutor {
            python: absolute(python)?,
            site_packages: absolute(site_packages)?,
            driver: absolute(&driver)?,
            bwrap,
        })
    }

    fn command(&self, request: &TestRequest, tmp: &Path) -> Command {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(bwrap) = &self.bwrap {
            argv.push(bwrap.into());
            for arg in ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"] {
                argv.push(arg.into());
            }
            for dir in [request.repo_dir.as_path(), tmp] {
                argv.extend(["--bind".into(), dir.into(), dir.into()]);
            }
            for arg in ["--unshare-net", "--unshare-pid", "--die-with-parent", "--"] {
                argv.push(arg.into());
            }
        }
        argv.push(self.python.clone().into());
        argv.push(self.driver.clone().into());
        argv.push(request.repo_dir.clone().into());
        argv.extend(request.pytest_args.iter().map(Into::into));
        argv.extend(PYTEST_FLAGS.iter().map(Into::into));
        argv.push(format!("--junitxml={}", tmp.join(JUNIT_FILE).display()).into());
        argv.push("-o".into());
        argv.push(format!("log_file={}", tmp.join("pytest.log").display()).into());

        let driver_dir = self.driver.parent().unwrap_or(Path::new("/"));
        let allowed = std::env::join_paths([
            request.repo_dir.as_path(),
            &self.site_packages,
            driver_dir,
            tmp,
        ])
        .unwrap_or_default();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&request.repo_dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("PYTHONPATH", &self.site_packages)
            .env("PYTHONHASHSEED", "0")
            .env("SANDBOX_ALLOWED", allowed)
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
        if request.trace_lines {
            command.env("SANDBOX_LINEMAP", tmp.join(LINE_MAP_FILE));
        }
        let memory = request.limits.memory_bytes as libc::rlim_t;
        let cpu = request.limits.timeout.as_secs().saturating_add(1) as libc::rlim_t;
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
                set_limit(libc::RLIMIT_CPU, cpu)?;
                set_limit(libc::RLIMIT_NOFILE, 1024)?;
                set_limit(libc::RLIMIT_NPROC, 512)?;
                set_limit(libc::RLIMIT_CORE, 0)?;
                Ok(())
            });
        }
        command
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: libc::rlim_t) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
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
        format!("native-{}-{}", self.python.display(), self.driver.display())
    }

    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        let started = Instant::now();
        let mut child = self
            .command(request, tmp.path())
            .spawn()
            .with_context(|| format!("cannot start {}", self.python.display()))?;
        let overflow = Arc::new(AtomicBool::new(false));
        let stdout = capture(child.stdout.take().expect("piped"), overflow.clone());
        let stderr = capture(child.stderr.take().expect("piped"), overflow.clone());
        let group = child.id() as libc::pid_t;
        let kill_group = || {
            // SAFETY: signals the process group that the child leads.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        };
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
        let mut combined = stdout.join().unwrap_or_default();
        combined.extend(stderr.join().unwrap_or_default());
        let end = end.unwrap_or_else(|| match status.code() {
            Some(code) => RunEnd::Exited(code),
            None => {
                use std::os::unix::process::ExitStatusExt;
                match status.signal() {
                    Some(libc::SIGXCPU) => RunEnd::TimedOut,
                    Some(signal) => RunEnd::Crashed(format!("killed by signal {signal}")),
                    None => RunEnd::Crashed("ended without a status".into()),
                }
            }
        });
        finish_run(request, tmp.path(), end, duration, &combined)
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

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
