//! Unified diffs applied to working copies, checked before anything runs.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use diffy::patch_set::{FileOperation, ParseOptions, PatchSet};

/// Why a patch cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the patch is empty")]
    Empty,
    #[error("the patch does not parse: {0}")]
    Malformed(String),
    #[error("{0}: creating, deleting or renaming files is not supported")]
    Unsupported(String),
    #[error("{0}: the path leaves the repository")]
    UnsafePath(String),
    #[error("{0}: no such file in the repository")]
    MissingFile(String),
    #[error("{0}: the patch does not apply (its context does not match the file)")]
    DoesNotApply(String),
    #[error("{0}: the file is not UTF-8 text")]
    NotText(String),
}

/// The files a patch changes, by repository-relative path, as (old, new) text.
pub type FileChanges = BTreeMap<String, (String, String)>;

/// Applies `patch` (with `a/` and `b/` prefixes) to the files under `root`, in
/// memory: returns the old and new text of every file it touches and writes
/// nothing. Files must exist; paths must stay inside `root`.
pub fn apply_in_memory(root: &Path, patch: &str) -> Result<FileChanges, PatchError> {
    apply_to(patch, |path| apply_in_memory_one(root, path))
}

/// Applies `patch` to texts given by `read(path)`.
pub fn apply_to(
    patch: &str,
    read: impl FnMut(&str) -> Result<String, PatchError>,
) -> Result<FileChanges, PatchError> {
    apply_with(patch, read, None)
}

/// Applies a test patch (SWE-bench's `test_patch`, which may add test files) over `base`,
/// changes already made to the files under `root`: returns the files it touches, each as
/// (its clean text: `base`'s original, the file under `root`, or "" for a file it adds;
/// its new text). Paths must stay inside `root` and pass through no link; a file it adds
/// must not exist yet.
pub fn apply_over(root: &Path, base: &FileChanges, patch: &str) -> Result<FileChanges, PatchError> {
    let mut changes = apply_with(
        patch,
        |path| match base.get(path) {
            Some((_, new)) => Ok(new.clone()),
            None => apply_in_memory_one(root, path),
        },
        Some(&mut |path: &str| {
            if base.contains_key(path) || find(root, path)?.is_some() {
                return Err(PatchError::DoesNotApply(format!(
                    "{path} (it exists already)"
                )));
            }
            Ok(())
        }),
    )?;
    for (path, (original, _)) in changes.iter_mut() {
        if let Some((clean, _)) = base.get(path) {
            *original = clean.clone();
        }
    }
    Ok(changes)
}

/// `changes` with `over` laid on top: a file in both keeps its original text from
/// `changes` and takes its new text from `over`.
pub fn overlay(changes: &FileChanges, over: &FileChanges) -> FileChanges {
    let mut out = changes.clone();
    for (path, (original, new)) in over {
        let original = changes.get(path).map_or(original, |(first, _)| first);
        out.insert(path.clone(), (original.clone(), new.clone()));
    }
    out
}

/// `root`/`path` if it exists, walked component by component: a symbolic link anywhere on
/// the way (a linked folder, not only the file) could lead out of the repository.
fn find(root: &Path, path: &str) -> Result<Option<std::path::PathBuf>, PatchError> {
    let mut full = root.to_path_buf();
    for part in Path::new(path).components() {
        full.push(part);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(PatchError::UnsafePath(path.to_string()));
            }
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(full))
}

fn apply_in_memory_one(root: &Path, path: &str) -> Result<String, PatchError> {
    let full = find(root, path)?.ok_or_else(|| PatchError::MissingFile(path.to_string()))?;
    if !full.is_file() {
        return Err(PatchError::MissingFile(path.to_string()));
    }
    let bytes = std::fs::read(&full).map_err(|_| PatchError::MissingFile(path.to_string()))?;
    String::from_utf8(bytes).map_err(|_| PatchError::NotText(path.to_string()))
}

type CreateCheck<'a> = &'a mut dyn FnMut(&str) -> Result<(), PatchError>;

/// [`apply_to`]; with `create`, a file the patch adds is allowed where `create(path)` is.
fn apply_with(
    patch: &str,
    mut read: impl FnMut(&str) -> Result<String, PatchError>,
    mut create: Option<CreateCheck<'_>>,
) -> Result<FileChanges, PatchError> {
    if patch.trim().is_empty() {
        return Err(PatchError::Empty);
    }
    // git's header-only operations carry no hunk, so the parser would pass over them.
    if let Some(line) = patch.lines().find(|line| {
        [
            "rename from ",
            "copy from ",
            "deleted file mode",
            "old mode ",
        ]
        .iter()
        .any(|op| line.starts_with(op))
    }) {
        return Err(PatchError::Unsupported(line.trim().to_string()));
    }
    let mut changes = FileChanges::new();
    for file in PatchSet::parse(patch, ParseOptions::unidiff()) {
        let file = file.map_err(|err| PatchError::Malformed(err.to_string()))?;
        let (path, new_file) = match file.operation().strip_prefix(1) {
            FileOperation::Modify { original, modified } if original == modified => {
                (original.into_owned(), false)
            }
            FileOperation::Modify { original, .. } => {
                return Err(PatchError::Unsupported(original.into_owned()));
            }
            FileOperation::Create(path) if create.is_some() => (path.into_owned(), true),
            FileOperation::Create(path) | FileOperation::Delete(path) => {
                return Err(PatchError::Unsupported(path.into_owned()));
            }
            other => return Err(PatchError::Unsupported(format!("{other:?}"))),
        };
        if !is_safe(&path) {
            return Err(PatchError::UnsafePath(path));
        }
        let text_patch = file
            .patch()
            .as_text()
            .ok_or_else(|| PatchError::Unsupported(path.clone()))?;
        let old = match changes.get(&path) {
            Some((_, new)) => new.clone(),
            None if new_file => {
                if let Some(check) = create.as_mut() {
                    check(&path)?;
                }
                String::new()
            }
            None => read(&path)?,
        };
        let new =
            diffy::apply(&old, text_patch).map_err(|_| PatchError::DoesNotApply(path.clone()))?;
        let original = changes.remove(&path).map_or(old, |(original, _)| original);
        changes.insert(path, (original, new));
    }
    if changes.is_empty() {
        return Err(PatchError::Empty);
    }
    Ok(changes)
}

/// Writes the new text of every changed file under `root`, making the folders of a file
/// a test patch adds.
pub fn write_changes(root: &Path, changes: &FileChanges) -> std::io::Result<()> {
    for (path, (_, new)) in changes {
        let full = root.join(path);
        if let Some(parent) = full.parent().filter(|parent| !parent.exists()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(full, new)?;
    }
    Ok(())
}

/// A relative path with no `..`, root or prefix components.
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
}

/// The 1-based lines of `old` that a change to `new` touches: every removed or
/// replaced line, and for a pure insertion the lines on both sides of it.
pub fn changed_lines(old: &str, new: &str) -> std::collections::BTreeSet<u32> {
    let mut lines = std::collections::BTreeSet::new();
    let patch = diffy::create_patch(old, new);
    for hunk in patch.hunks() {
        let mut line = hunk.old_range().start() as u32;
        let mut replacing = false;
        for change in hunk.lines() {
            match change {
                diffy::Line::Context(_) => {
                    line += 1;
                    replacing = false;
                }
                diffy::Line::Delete(_) => {
                    lines.insert(line);
                    line += 1;
                    replacing = true;
                }
                // Inserted lines replace the deleted ones before them, or else
                // sit between two old lines, which both see the change.
                diffy::Line::Insert(_) if replacing => {}
                diffy::Line::Insert(_) => {
                    lines.insert(line.saturating_sub(1).max(1));
                    lines.insert(line);
                }
            }
        }
    }
    lines
}

/// A unified diff from `old` to `new` for `path`, with `a/` and `b/` prefixes.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    let patch = diffy::create_patch(old, new);
    let body = patch.to_string();
    // diffy writes `--- original` / `+++ modified`; name the file instead.
    let hunks = body
        .split_once('\n')
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map_or("", |(_, rest)| rest);
    let mut diff = format!("--- a/{path}\n+++ b/{path}\n");
    // diffy writes an empty context line as an empty line; `patch` and `git
    // apply` expect its one-space prefix.
    for line in hunks.split_inclusive('\n') {
        if line == "\n" {
            diff.push(' ');
        }
        diff.push_str(line);
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str =
        "def second(seq):\n    seq = iter(seq)\n    next(seq)\n    return next(seq)\n";
    const NEW: &str = "def second(seq):\n    seq = iter(seq)\n    return next(seq)\n";

    fn read_one(path: &str) -> Result<String, PatchError> {
        match path {
            "toolz/itertoolz.py" => Ok(OLD.to_string()),
            other => Err(PatchError::MissingFile(other.to_string())),
        }
    }

    #[test]
    fn a_diff_applies_and_its_inverse_restores_the_file() {
        let bug = unified_diff("toolz/itertoolz.py", OLD, NEW);
        let changes = apply_to(&bug, read_one).unwrap();
        assert_eq!(
            changes["toolz/itertoolz.py"],
            (OLD.to_string(), NEW.to_string())
        );
        let gold = unified_diff("toolz/itertoolz.py", NEW, OLD);
        let restored = apply_to(&gold, |_| Ok(NEW.to_string())).unwrap();
        assert_eq!(restored["toolz/itertoolz.py"].1, OLD);
    }

    #[test]
    fn changed_lines_name_the_old_lines_a_change_touches() {
        let old = "a\nb\nc\nd\n";
        assert_eq!(changed_lines(old, "a\nB\nc\nd\n"), [2].into());
        assert_eq!(changed_lines(old, "a\nb\nx\nc\nd\n"), [2, 3].into());
        assert_eq!(changed_lines(old, "a\nc\nd\n"), [2].into());
    }

    #[test]
    fn unified_diffs_apply_with_git() {
        let dir = tempfile::tempdir().unwrap();
        let old = "def f(a):\n\n    x = a\n    return x < 3\n";
        let new = "def f(a):\n\n    x = a\n    return x <= 3\n";
        std::fs::write(dir.path().join("m.py"), old).unwrap();
        let diff = unified_diff("m.py", old, new);
        assert!(
            diff.contains("\n \n"),
            "empty context line without its prefix:\n{diff}"
        );
        std::fs::write(dir.path().join("bug.diff"), &diff).unwrap();
        let status = std::process::Command::new("git")
            .args(["apply", "bug.diff"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "git apply refused:\n{diff}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("m.py")).unwrap(),
            new
        );
    }

    #[test]
    fn refuses_what_cannot_be_applied_safely() {
        let bug = unified_diff("toolz/itertoolz.py", OLD, NEW);
        assert_eq!(apply_to("", read_one), Err(PatchError::Empty));
        assert_eq!(
            apply_to(
                &bug.replace("toolz/itertoolz.py", "toolz/missing.py"),
                read_one
            ),
            Err(PatchError::MissingFile("toolz/missing.py".into()))
        );
        assert_eq!(
            apply_to(
                &bug.replace("toolz/itertoolz.py", "../etc/passwd"),
                read_one
            ),
            Err(PatchError::UnsafePath("../etc/passwd".into()))
        );
        assert!(matches!(
            apply_to(&bug, |_| Ok("something else entirely\n".into())),
            Err(PatchError::DoesNotApply(_))
        ));
    }

    #[test]
    fn a_path_through_a_linked_folder_is_refused() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("toolz")).unwrap();
        std::fs::write(host.path().join("toolz/itertoolz.py"), OLD).unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path().join("toolz"), repo.path().join("toolz")).unwrap();
        let bug = unified_diff("toolz/itertoolz.py", OLD, NEW);
        assert_eq!(
            apply_in_memory(repo.path(), &bug),
            Err(PatchError::UnsafePath("toolz/itertoolz.py".into()))
        );
        std::fs::remove_file(repo.path().join("toolz")).unwrap();
        std::fs::create_dir_all(repo.path().join("toolz")).unwrap();
        std::fs::write(repo.path().join("toolz/itertoolz.py"), OLD).unwrap();
        assert!(apply_in_memory(repo.path(), &bug).is_ok());
    }

    #[test]
    fn a_test_patch_adds_files_and_lays_over_the_bug() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("tests")).unwrap();
        std::fs::write(
            root.path().join("tests/test_a.py"),
            "def test_a():\n    pass\n",
        )
        .unwrap();
        let test_patch = "diff --git a/tests/test_a.py b/tests/test_a.py\n\
            --- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@ -1,2 +1,4 @@\n def test_a():\n     pass\n\
            +def test_b():\n+    pass\n\
            diff --git a/tests/new/test_c.py b/tests/new/test_c.py\nnew file mode 100644\n\
            --- /dev/null\n+++ b/tests/new/test_c.py\n@@ -0,0 +1,2 @@\n+def test_c():\n+    pass\n";
        let bug: FileChanges = [(
            "m.py".to_string(),
            ("x = 1\n".to_string(), "x = 2\n".to_string()),
        )]
        .into_iter()
        .collect();
        let tests = apply_over(root.path(), &bug, test_patch).unwrap();
        assert_eq!(
            tests.keys().collect::<Vec<_>>(),
            ["tests/new/test_c.py", "tests/test_a.py"]
        );
        assert_eq!(
            tests["tests/new/test_c.py"],
            (String::new(), "def test_c():\n    pass\n".into())
        );
        let both = overlay(&bug, &tests);
        assert_eq!(both.len(), 3);
        assert_eq!(both["m.py"], bug["m.py"]);

        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir(copy.path().join("tests")).unwrap();
        write_changes(copy.path(), &both).unwrap();
        assert!(copy.path().join("tests/new/test_c.py").is_file());

        // A file it adds must be new; bug and gold patches still may not add files.
        std::fs::create_dir_all(root.path().join("tests/new")).unwrap();
        std::fs::write(root.path().join("tests/new/test_c.py"), "").unwrap();
        assert!(matches!(
            apply_over(root.path(), &bug, test_patch),
            Err(PatchError::DoesNotApply(_))
        ));
        assert!(matches!(
            apply_in_memory(root.path(), test_patch),
            Err(PatchError::Unsupported(_))
        ));
        // A pure rename has no hunk: refused, not passed over.
        let rename = "diff --git a/tests/test_a.py b/tests/test_b.py\nsimilarity index 100%\n\
                      rename from tests/test_a.py\nrename to tests/test_b.py\n";
        assert!(matches!(
            apply_over(root.path(), &bug, rename),
            Err(PatchError::Unsupported(_))
        ));
    }
}
