//! Validated Tasks as Harbor task directories (Terminal-Bench 2.0, Repo2RLEnv), one per task:
//!
//! ```text
//! <instance_id>/
//!   instruction.md         the problem statement, and what counts as done
//!   task.toml              timeouts, resources, where the task came from
//!   environment/Dockerfile a Python image with the Repo's test dependencies, the buggy
//!   environment/repo/      repository copied to /app
//!   solution/solve.sh      the reference solution: writes the repaired files (solution/files/)
//!   tests/test.sh          the verifier: tests/verify.py runs exactly FAIL_TO_PASS and
//!   tests/verify.py        PASS_TO_PASS (tests/config.json) after laying the task's test
//!   tests/config.json      files (tests/files/, a SWE-bench test patch applied) over the tree;
//!   tests/files/           reward 1 when all pass, in /logs/verifier/reward.txt
//! ```
//!
//! Each directory is written beside its place and renamed there, so a crash leaves whole
//! tasks only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use patches::FileChanges;
use schemas::{Repo, Task};

const VERIFY_PY: &str = include_str!("../harbor/verify.py");

/// The Python image the environment starts from: the CPython our corpus suites run under.
pub const BASE_IMAGE: &str = "python:3.12-slim";

/// Writes the Harbor directory of `task` (from `repo`, whose clean tree is at `root`) as
/// `out/<instance_id>`, replacing one that is there.
pub fn export_task(task: &Task, repo: &Repo, root: &Path, out: &Path) -> Result<PathBuf> {
    anyhow::ensure!(
        !task.fail_to_pass.is_empty(),
        "{}: no FAIL_TO_PASS tests: export validated tasks (task-validate's output)",
        task.instance_id
    );
    let bug = patches::apply_in_memory(root, &task.bug_patch)
        .with_context(|| format!("{}: bug_patch", task.instance_id))?;
    let tests = match task.test_patch() {
        Some(test_patch) => patches::apply_over(root, &bug, test_patch)
            .with_context(|| format!("{}: test_patch", task.instance_id))?,
        None => FileChanges::new(),
    };
    let test_cmd = task.test_cmd_or(&repo.test_cmd);
    let base_args = sandbox::pytest_args(test_cmd)
        .with_context(|| format!("{}: test_cmd", task.instance_id))?;
    let ids: Vec<String> = task
        .fail_to_pass
        .iter()
        .chain(&task.pass_to_pass)
        .cloned()
        .collect();

    let dest = out.join(&task.instance_id);
    let staging = out.join(format!(".{}.{}.tmp", task.instance_id, std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = staging.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };

    // The environment: the buggy repository under /app.
    let repo_dir = staging.join("environment/repo");
    sandbox::copy_tree_without(root, &repo_dir, &["__pycache__", ".pytest_cache"])
        .with_context(|| format!("cannot copy {}", root.display()))?;
    patches::write_changes(&repo_dir, &bug)?;
    write("environment/Dockerfile", &dockerfile(repo))?;
    write("instruction.md", &instruction(task))?;
    write("task.toml", &task_toml(task, repo))?;

    // The reference solution: the clean text of every file the bug changed.
    for (path, (clean, _)) in &bug {
        write(&format!("solution/files/{path}"), clean)?;
    }
    write("solution/solve.sh", SOLVE_SH)?;

    // The verifier restores every test file and pytest configuration (with the test patch, if
    // any) before it runs, and removes conftest.py files the tree did not have: an agent
    // that edits or adds tests earns nothing by it.
    let mut restored = judged_files(root)?;
    for (path, (_, with_tests)) in &tests {
        restored.insert(path.clone(), with_tests.clone());
    }
    for (path, text) in &restored {
        write(&format!("tests/files/{path}"), text)?;
    }
    let conftests: Vec<&String> = restored
        .keys()
        .filter(|path| path.rsplit('/').next() == Some("conftest.py"))
        .collect();
    let mut pytest_args = sandbox::select_tests(&base_args, &ids);
    if !pytest_args
        .windows(2)
        .any(|w| w[0] == "-p" && w[1] == "no:cacheprovider")
    {
        pytest_args.extend(["-p".into(), "no:cacheprovider".into()]);
    }
    let config = serde_json::json!({
        "pytest_args": pytest_args,
        "fail_to_pass": task.fail_to_pass,
        "pass_to_pass": task.pass_to_pass,
        "conftests": conftests,
    });
    write("tests/config.json", &format!("{config:#}\n"))?;
    write("tests/verify.py", VERIFY_PY)?;
    write("tests/test.sh", TEST_SH)?;
    for script in ["solution/solve.sh", "tests/test.sh"] {
        set_executable(&staging.join(script))?;
    }
    if dest.exists() {
        std::fs::remove_dir_all(&dest)?;
    }
    std::fs::rename(&staging, &dest)?;
    Ok(dest)
}

/// The text of every test file and pytest configuration file under `root`, by relative
/// path: what the verifier judges by, so the agent cannot change it.
fn judged_files(root: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    const CONFIG: [&str; 4] = ["pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml"];
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && name != "__pycache__" {
                stack.push(entry.path());
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .expect("walked from the root")
                .to_string_lossy()
                .replace('\\', "/");
            let judged = (rel.ends_with(".py") && stage_io::corpus::is_test_path(&rel))
                || (!rel.contains('/') && CONFIG.contains(&name.as_str()));
            if kind.is_file() && judged {
                // A file that is not text (a fixture) stays as the environment has it.
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    files.insert(rel, text);
                }
            }
        }
    }
    Ok(files)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<()> {
    Ok(())
}

fn dockerfile(repo: &Repo) -> String {
    let deps: Vec<String> = repo
        .test_deps
        .iter()
        .map(|dep| format!("\"{}\"", dep.replace('"', "")))
        .collect();
    let install = if deps.is_empty() {
        "RUN pip install --no-cache-dir pytest\n".to_string()
    } else {
        format!(
            "RUN pip install --no-cache-dir --no-deps {}\n",
            deps.join(" ")
        )
    };
    format!(
        "# The buggy repository {} under /app, with its pinned test dependencies.\n\
         FROM {BASE_IMAGE}\n\
         WORKDIR /app\n\
         {install}\
         COPY repo/ /app/\n",
        repo.id
    )
}

fn instruction(task: &Task) -> String {
    let statement = task.problem_statement.trim();
    format!(
        "# Fix the bug\n\n\
         The Python repository in the working directory has a bug. What a user reports:\n\n\
         {statement}\n\n\
         Change the repository's source so that the failing tests pass and every other test \
         still passes. Do not change the tests: the verifier runs its own copy of them.\n"
    )
}

fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn task_toml(task: &Task, repo: &Repo) -> String {
    let tags = ["python", "bug-fix", task.provenance.strategy.as_str()];
    let operator = task.provenance.operator.as_deref().unwrap_or("");
    format!(
        "version = \"1.0\"\n\n\
         [metadata]\n\
         author_name = \"socratic-swe\"\n\
         difficulty = \"medium\"\n\
         category = \"programming\"\n\
         tags = [{}]\n\
         instance_id = {}\n\
         repo = {}\n\
         operator = {}\n\
         fail_to_pass = {}\n\n\
         [verifier]\n\
         timeout_sec = 600.0\n\n\
         [agent]\n\
         timeout_sec = 1800.0\n\n\
         [environment]\n\
         build_timeout_sec = 600.0\n\
         cpus = 1\n\
         memory_mb = 2048\n\
         storage_mb = 10240\n",
        tags.map(toml_string).join(", "),
        toml_string(&task.instance_id),
        toml_string(&repo.id),
        toml_string(operator),
        task.fail_to_pass.len()
    )
}

const SOLVE_SH: &str = "#!/bin/bash
# The reference solution: writes the repaired files over the working tree.
set -euo pipefail
here=\"$(cd \"$(dirname \"$0\")\" && pwd)\"
cp -R \"$here/files/.\" .
";

const TEST_SH: &str = "#!/bin/bash
# The verifier: reward 1 in $LOGS_DIR/reward.txt (default /logs/verifier) when every
# FAIL_TO_PASS and PASS_TO_PASS test passes. Run from the repository's root.
set -uo pipefail
here=\"$(cd \"$(dirname \"$0\")\" && pwd)\"
logs=\"${LOGS_DIR:-/logs/verifier}\"
mkdir -p \"$logs\"
\"${PYTHON:-python3}\" \"$here/verify.py\" \"$here/config.json\" \"$logs\"
";
