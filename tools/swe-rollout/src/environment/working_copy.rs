//! The working copy a chat model's tools act on: the buggy repository plus the edits so far,
//! kept in memory; tests run on it in the sandbox.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use anyhow::{Context, Result, anyhow, bail};
use sandbox::TestRun;
use serde_json::Value;

use super::Environment;

/// Most lines one `view` shows.
const MAX_VIEW_LINES: usize = 200;
/// Most hits one `search` lists.
const MAX_HITS: usize = 50;

/// The buggy repository of an [`Environment`] plus the edits so far. Its tools take their
/// arguments as the JSON object of a tool call; a bad call is an `Err` that says what went
/// wrong.
pub struct WorkingCopy<'e, 'h, 't> {
    env: &'e Environment<'h, 't>,
    /// Edited files: path → current text.
    edited: BTreeMap<String, String>,
}

impl<'e, 'h, 't> WorkingCopy<'e, 'h, 't> {
    /// The buggy repository of `env`, not edited yet.
    pub fn new(env: &'e Environment<'h, 't>) -> Self {
        WorkingCopy {
            env,
            edited: BTreeMap::new(),
        }
    }

    /// The environment it is a copy of.
    pub fn env(&self) -> &'e Environment<'h, 't> {
        self.env
    }

    /// Whether no file has been edited.
    pub fn is_unedited(&self) -> bool {
        self.edited.is_empty()
    }

    /// Runs the task's tests on the copy (see [`Environment::run_edits`]).
    pub fn run_tests(&self) -> Result<TestRun> {
        Ok(self.env.run_edits(&self.edited)?.0)
    }

    /// The edits as a unified diff against the buggy files.
    pub fn diff(&self) -> Result<String> {
        let mut diff = String::new();
        for (path, text) in &self.edited {
            let buggy = self.env.buggy_text(path)?;
            if &buggy != text {
                diff.push_str(&patches::unified_diff(path, &buggy, text));
            }
        }
        Ok(diff)
    }

    /// The canonical repository-relative form (`a/b.py`) of a path to an existing regular
    /// file of the repository, or why not. `.` and doubled `/` are dropped, so the same file
    /// always has the same key; `..`, absolute paths and symbolic links are refused.
    fn checked_path(&self, path: &str) -> Result<String> {
        let mut parts = Vec::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().to_string()),
                Component::CurDir => {}
                _ => bail!("`{path}` is not a path inside the repository"),
            }
        }
        if parts.is_empty() {
            bail!("`{path}` is not a file");
        }
        let mut on_disk = self.env.repo.root.clone();
        for part in &parts {
            on_disk.push(part);
            match std::fs::symlink_metadata(&on_disk) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    bail!("`{path}` goes through a symbolic link")
                }
                Ok(_) => {}
                Err(_) => bail!("no file `{}` in the repository", parts.join("/")),
            }
        }
        if !on_disk.is_file() {
            bail!("`{}` is not a file", parts.join("/"));
        }
        Ok(parts.join("/"))
    }

    fn text(&self, path: &str) -> Result<String> {
        match self.edited.get(path) {
            Some(text) => Ok(text.clone()),
            None => self.env.buggy_text(path),
        }
    }

    /// `view {path, start?, end?}`: lines of a file with their numbers.
    pub fn view(&self, args: &Value) -> Result<String> {
        let path = self.checked_path(str_arg(args, "path")?)?;
        let text = self.text(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        let start = args
            .get("start")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1) as usize;
        let end = args
            .get("end")
            .and_then(Value::as_u64)
            .map_or(lines.len(), |e| e as usize)
            .min(lines.len())
            .min(start.saturating_add(MAX_VIEW_LINES - 1));
        if start > lines.len() {
            bail!("{path} has {} lines", lines.len());
        }
        if end < start {
            bail!("`end` ({end}) comes before `start` ({start})");
        }
        Ok((start..=end)
            .map(|n| format!("{n:>5} {}", lines[n - 1]))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// `search {text, path?}`: the lines of Python files that contain a text.
    pub fn search(&self, args: &Value) -> Result<String> {
        let needle = str_arg(args, "text")?;
        if needle.is_empty() {
            bail!("empty search text");
        }
        let scope = args.get("path").and_then(Value::as_str).unwrap_or("");
        let root = &self.env.repo.root;
        let mut files = Vec::new();
        python_files(root, root, &mut files)?;
        files.sort();
        let mut hits = Vec::new();
        for path in files
            .iter()
            .filter(|p| p.starts_with(scope.trim_start_matches("./")))
        {
            for (n, line) in self.text(path)?.lines().enumerate() {
                if line.contains(needle) {
                    hits.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        if hits.is_empty() {
            return Ok(format!("no line contains `{needle}`"));
        }
        let total = hits.len();
        hits.truncate(MAX_HITS);
        if total > MAX_HITS {
            hits.push(format!("… {} more", total - MAX_HITS));
        }
        Ok(hits.join("\n"))
    }

    /// `edit {path, search, replace}`: replaces the one occurrence of `search` in a source
    /// file; refused when it occurs more or less often, or would break valid Python.
    pub fn edit(&mut self, args: &Value) -> Result<String> {
        let path = self.checked_path(str_arg(args, "path")?)?;
        if !editable(&path) {
            bail!(
                "{path} is not a source file of the project: tests and their configuration \
                 stay as they are"
            );
        }
        let search = str_arg(args, "search")?;
        let replace = str_arg(args, "replace")?;
        let text = self.text(&path)?;
        let found = if search.is_empty() {
            0
        } else {
            text.matches(search).count()
        };
        if found != 1 {
            bail!(
                "the search text occurs {found} times in {path}; it must occur exactly once \
                 (copy it exactly, with more lines around it if needed)"
            );
        }
        let new = text.replacen(search, replace, 1);
        if !pyast::parses(&new) && pyast::parses(&text) {
            bail!("after this edit {path} is no longer valid Python; nothing was changed");
        }
        self.edited.insert(path.clone(), new);
        Ok(format!("edited {path}"))
    }
}

/// Whether the model may edit `path`: a Python file of the project, not a test or a
/// `conftest.py` (the verdict must come from the task's own tests).
fn editable(path: &str) -> bool {
    path.ends_with(".py") && !pyast::files::is_test_path(path)
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing string argument `{name}`"))
}

fn python_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            python_files(root, &path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
            let relative = path.strip_prefix(root).expect("under root");
            out.push(relative.to_string_lossy().to_string());
        }
    }
    Ok(())
}
