//! The same pure-Python tests under each executor (warm workers), three runs each: the wall
//! time of a run and pytest's own time inside its tests. What bounds the wasm executor
//! (docs/speed.md): `cargo run --release -p sandbox --example interpreter_speed [WORKDIR]`.

use std::path::PathBuf;
use std::time::Duration;

use sandbox::testbed::{ExecutorKind, make_executor};
use sandbox::{Limits, TestRequest};

const TESTS: &str = "\
def test_arithmetic():
    s = 0
    for i in range(3_000_000):
        s += i * i % 7
    assert s

def test_calls():
    def f(x):
        return x + 1
    y = 0
    for _ in range(1_000_000):
        y = f(y)
    assert y

def test_dicts():
    d = {}
    for i in range(500_000):
        d[str(i)] = i
    assert sum(d.values())
";

fn main() -> anyhow::Result<()> {
    let workdir = PathBuf::from(std::env::args().nth(1).unwrap_or(".socratic".into()));
    let repo = tempfile::tempdir()?;
    std::fs::write(repo.path().join("test_speed.py"), TESTS)?;
    let request = TestRequest {
        repo_dir: repo.path().to_path_buf(),
        pytest_args: vec!["test_speed.py".into()],
        limits: Limits {
            timeout: Duration::from_secs(300),
            ..Limits::default()
        },
        trace_lines: false,
    };
    println!("| executor | run | wall s | inside the tests s |");
    println!("|---|---:|---:|---:|");
    for kind in [ExecutorKind::Native, ExecutorKind::Wasm] {
        let executor = make_executor(kind, &workdir, &workdir.join("cache"), false, false)?;
        for run in 1..=3 {
            let result = executor.run(&request)?;
            anyhow::ensure!(
                result.end == sandbox::RunEnd::Exited(0),
                "{}: {}",
                executor.name(),
                result.output
            );
            println!(
                "| {} | {run} | {:.2} | {:.2} |",
                executor.name(),
                result.duration.as_secs_f64(),
                result.test_time.as_secs_f64()
            );
        }
    }
    Ok(())
}
