//! A tiny repository with one arithmetic bug, its task, and an executor that judges the
//! task's two tests by reading the working copy instead of running Python: the rollout loop
//! end to end through the real test bed, in milliseconds and without `just setup`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sandbox::testbed::{RepoTree, ResultCache, TestBed};
use sandbox::{Executor, Limits, LineMap, RunEnd, TestOutcome, TestRequest, TestRun};
use schemas::{Record, Task};
use solver::example::RepairExample;

use crate::environment::{Harness, RepoEntry};
use crate::solvers::scorer::EditScorer;

/// The repository's only source module, repaired.
pub const CLEAN: &str = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n";
/// The same with the bug: `add` subtracts.
pub const BUGGY: &str = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n";
/// The line of `add` that the bug changes.
pub const FIXED_LINE: &str = "    return a + b";
pub const TEST_ADD: &str = "tests/test_calc.py::test_add";
pub const TEST_SUB: &str = "tests/test_calc.py::test_sub";
const TESTS: &str = "from pkg.calc import add, sub\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n";

/// The task: `test_add` fails on the buggy code, `test_sub` passes.
pub fn task() -> Task {
    let bug_patch = patches::unified_diff("pkg/calc.py", CLEAN, BUGGY);
    let gold_patch = patches::unified_diff("pkg/calc.py", BUGGY, CLEAN);
    Task::from_value(serde_json::json!({
        "schema": "task/1",
        "instance_id": "calc-1.0.arith-swap.0001",
        "repo": "calc-1.0",
        "bug_patch": bug_patch,
        "gold_patch": gold_patch,
        "problem_statement": "add(1, 2) returns -1",
        "FAIL_TO_PASS": [TEST_ADD],
        "PASS_TO_PASS": [TEST_SUB],
        "test_cmd": "pytest tests",
        "provenance": {"strategy": "random", "operator": "arith-swap"},
    }))
    .expect("a valid task")
}

/// Writes the clean repository under `dir` and returns a harness whose test bed runs its
/// tests with [`FakePytest`] (its runs counted in `runs`).
pub fn harness(dir: &Path, runs: Arc<AtomicUsize>) -> Harness {
    let root = dir.join("calc-1.0");
    for (path, text) in [
        ("pkg/__init__.py", ""),
        ("pkg/calc.py", CLEAN),
        ("tests/test_calc.py", TESTS),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let entry = RepoEntry::Ready {
        tree: RepoTree::new(root).unwrap(),
        sources: ["pkg/__init__.py", "pkg/calc.py"].map(String::from).into(),
    };
    let bed = TestBed::new(
        Box::new(FakePytest { runs }),
        ResultCache::new(None),
        Limits::default(),
    );
    Harness {
        repos: [("calc-1.0".to_string(), entry)].into(),
        bed,
    }
}

/// Judges `test_add` by line 2 of `pkg/calc.py` and `test_sub` by line 6, as pytest would
/// on this repository; runs only the tests named in the arguments (all when none is), and
/// records the lines each runs when asked to.
pub struct FakePytest {
    pub runs: Arc<AtomicUsize>,
}

impl Executor for FakePytest {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn fingerprint(&self) -> String {
        "fake".into()
    }

    fn run(&self, request: &TestRequest) -> anyhow::Result<TestRun> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let calc = std::fs::read_to_string(request.repo_dir.join("pkg/calc.py"))?;
        let lines: Vec<&str> = calc.lines().collect();
        let named: Vec<&String> = request
            .pytest_args
            .iter()
            .filter(|arg| arg.contains("::"))
            .collect();
        let mut outcomes = BTreeMap::new();
        let mut messages = BTreeMap::new();
        for (id, line, want) in [(TEST_ADD, 1, FIXED_LINE), (TEST_SUB, 5, "    return a - b")] {
            if !named.is_empty() && !named.iter().any(|n| *n == id) {
                continue;
            }
            if lines.get(line) == Some(&want) {
                outcomes.insert(id.to_string(), TestOutcome::Passed);
            } else {
                outcomes.insert(id.to_string(), TestOutcome::Failed);
                messages.insert(id.to_string(), "AssertionError".to_string());
            }
        }
        let line_map = request.trace_lines.then(|| LineMap {
            tests: vec![TEST_ADD.into(), TEST_SUB.into()],
            lines: [(
                "pkg/calc.py".to_string(),
                BTreeMap::from([(2, vec![0]), (6, vec![1])]),
            )]
            .into(),
            import_lines: [("pkg/calc.py".to_string(), vec![1, 5])].into(),
            ..LineMap::default()
        });
        let all_passed = outcomes.values().all(|o| *o == TestOutcome::Passed);
        Ok(TestRun {
            outcomes,
            messages,
            violations: Vec::new(),
            line_map,
            running: None,
            end: RunEnd::Exited(if all_passed { 0 } else { 1 }),
            duration: Duration::from_millis(10),
            test_time: Duration::ZERO,
            cpu_time: None,
            output: String::new(),
            output_truncated: false,
        })
    }
}

/// Scores the edit that restores [`FIXED_LINE`] `fix` and every other edit 0.
pub struct FixScore(pub f64);

impl EditScorer for FixScore {
    fn score(&self, example: &RepairExample) -> (Vec<f64>, u64) {
        let scores = example
            .candidates
            .iter()
            .map(|c| {
                let restores = c.edit.new.iter().any(|l| l.trim_end() == FIXED_LINE);
                if restores { self.0 } else { 0.0 }
            })
            .collect();
        (scores, 7)
    }

    fn prior_log_probs(&self, example: &RepairExample) -> Vec<f64> {
        vec![0.0; example.candidates.len()]
    }
}
