//! What the executor tests share: the work directory, the executors, small repositories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sandbox::native::NativeExecutor;
use sandbox::wasm::{WasmConfig, WasmExecutor};
use sandbox::{Executor, Limits, TestRequest, TestRun, pytest_args};

pub fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"));
    assert!(
        dir.join("python/python.wasm").is_file(),
        "{} has no python.wasm: run `just setup` first",
        dir.display()
    );
    dir
}

pub fn wasm_executor(warm: bool) -> WasmExecutor {
    let work = workdir();
    WasmExecutor::new(&WasmConfig {
        python_wasm: work.join("python/python.wasm"),
        site_packages: work.join("site-packages"),
        cache_dir: work.join("cache/sandbox"),
        warm,
    })
    .unwrap()
}

/// A fresh interpreter per run.
pub fn wasm() -> &'static WasmExecutor {
    static EXECUTOR: OnceLock<WasmExecutor> = OnceLock::new();
    EXECUTOR.get_or_init(|| wasm_executor(false))
}

/// Warm workers, one interpreter for many runs (the default of the stages).
pub fn warm() -> &'static WasmExecutor {
    static EXECUTOR: OnceLock<WasmExecutor> = OnceLock::new();
    EXECUTOR.get_or_init(|| wasm_executor(true))
}

pub fn native_executor(warm: bool) -> NativeExecutor {
    let work = workdir();
    NativeExecutor::new(
        Path::new("python3"),
        &work.join("site-packages"),
        &work.join("cache/sandbox"),
        warm,
        false,
    )
    .unwrap()
}

pub fn native() -> NativeExecutor {
    native_executor(false)
}

/// Warm native workers on the work directory's venv, as the stages run them: `just setup`
/// puts coverage.py's C tracer beside that interpreter where it lacks sys.monitoring.
pub fn venv_executor() -> NativeExecutor {
    let work = workdir();
    NativeExecutor::new(
        &work.join("venv/bin/python"),
        &work.join("site-packages"),
        &work.join("cache/sandbox"),
        true,
        false,
    )
    .unwrap()
}

/// A host directory whose paths mean nothing inside the guest. Not a
/// temporary directory: under /tmp a path would name the guest's own private
/// /tmp, where writing is allowed and harmless.
pub fn host_home() -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    for guest_root in ["/tmp", "/repo", "/site", "/sandbox"] {
        assert!(
            !home.starts_with(guest_root),
            "HOME={} shadows the guest's {guest_root}",
            home.display()
        );
    }
    home
}

pub fn executors() -> Vec<Box<dyn Executor>> {
    vec![
        Box::new(WasmRef(wasm())),
        Box::new(WasmRef(warm())),
        Box::new(native()),
        Box::new(native_executor(true)),
    ]
}

/// The executors that serve many runs from one worker: where a run could leave
/// state for the next.
pub fn warm_executors() -> Vec<Box<dyn Executor>> {
    vec![Box::new(WasmRef(warm())), Box::new(native_executor(true))]
}

pub struct WasmRef(pub &'static WasmExecutor);

impl Executor for WasmRef {
    fn name(&self) -> &'static str {
        if self.0.fingerprint().starts_with("wasm-warm") {
            "wasm (warm)"
        } else {
            "wasm"
        }
    }
    fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }
    fn run(&self, request: &TestRequest) -> anyhow::Result<sandbox::TestRun> {
        self.0.run(request)
    }
    fn compile(&self, repo_dir: &std::path::Path, limits: &sandbox::Limits) -> anyhow::Result<()> {
        self.0.compile(repo_dir, limits)
    }
}

pub fn mini_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// `test_cmd` on `repo` under `executor`, with a time limit no test here comes near.
pub fn run_tests(executor: &dyn Executor, repo: &Path, test_cmd: &str) -> TestRun {
    executor
        .run(&request(repo, test_cmd, Duration::from_secs(120)))
        .unwrap()
}

pub fn request(repo: &Path, test_cmd: &str, timeout: Duration) -> TestRequest {
    TestRequest {
        repo_dir: repo.to_path_buf(),
        pytest_args: pytest_args(test_cmd).unwrap(),
        limits: Limits {
            timeout,
            ..Limits::default()
        },
        trace_lines: false,
    }
}
