//! Reversing a unified diff as text: the patch that undoes a patch.
//!
//! SWE-smith ships the diff that *introduces* a bug and SWE-bench the one that
//! *fixes* it; a Task holds both, each the exact inverse of the other. [`reverse`]
//! turns one into the other.
//!
//! Why not `diffy` (which `sandbox` uses to apply patches): `diffy::Patch::reverse`
//! works on one file, keeps the `+` lines of a change before its `-` lines (not what
//! `diff` writes), and its formatter drops git's extended headers (`diff --git`,
//! `index`, modes, renames). Here the text is rewritten line by line, so everything
//! that is not reversed stays byte for byte, each change block comes out in the
//! order `diff` itself would write (removals first), and reversing twice gives the
//! input back.

use std::fmt;

/// Why a patch cannot be reversed; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ReverseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} of the patch: {}", self.line, self.message)
    }
}

impl std::error::Error for ReverseError {}

/// The patch that undoes `patch`: old and new sides swapped in file headers,
/// git headers (`diff --git`, `index`, modes, renames, created/deleted files) and
/// hunks. Text around the file diffs (a commit message, say) is kept as it is.
///
/// ```
/// let fix = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(x):\n-    return x > 0\n+    return x >= 0\n";
/// let bug = records::unidiff::reverse(fix).unwrap();
/// assert_eq!(bug, "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(x):\n-    return x >= 0\n+    return x > 0\n");
/// assert_eq!(records::unidiff::reverse(&bug).unwrap(), fix);
/// ```
pub fn reverse(patch: &str) -> Result<String, ReverseError> {
    let lines: Vec<Line<'_>> = patch.split_inclusive('\n').map(Line::split).collect();
    let mut out = String::with_capacity(patch.len());
    let mut in_git_header = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).map(|line| line.body);
        let err = |message: String| ReverseError {
            line: i + 1,
            message,
        };
        if line.body.starts_with("@@ ") {
            in_git_header = false;
            i = reverse_hunk(&lines, i, &mut out)?;
            continue;
        }
        if let (Some(old), Some(new)) = (
            line.body.strip_prefix("--- "),
            next.and_then(|next| next.strip_prefix("+++ ")),
        ) {
            in_git_header = false;
            let (old, new) = if is_git_path(old, "a/") && is_git_path(new, "b/") {
                (swap_prefix(new, "b/", "a/"), swap_prefix(old, "a/", "b/"))
            } else {
                (new.to_string(), old.to_string())
            };
            line.push_with(&mut out, &format!("--- {old}"));
            lines[i + 1].push_with(&mut out, &format!("+++ {new}"));
            i += 2;
            continue;
        }
        if let Some(paths) = line.body.strip_prefix("diff --git ") {
            in_git_header = true;
            let swapped = swap_git_paths(paths).ok_or_else(|| {
                err(format!(
                    "cannot tell the two paths apart in `{}`",
                    line.body
                ))
            })?;
            line.push_with(&mut out, &format!("diff --git {swapped}"));
            i += 1;
            continue;
        }
        if line.body.starts_with("GIT binary patch") || line.body.starts_with("Binary files ") {
            return Err(err("binary patches cannot be reversed as text".into()));
        }
        if in_git_header {
            if let Some(rest) = line.body.strip_prefix("index ") {
                let (hashes, mode) = rest
                    .split_once(' ')
                    .map_or((rest, None), |(h, m)| (h, Some(m)));
                let (old, new) = hashes
                    .split_once("..")
                    .ok_or_else(|| err(format!("malformed `{}`", line.body)))?;
                let mode = mode.map(|mode| format!(" {mode}")).unwrap_or_default();
                line.push_with(&mut out, &format!("index {new}..{old}{mode}"));
                i += 1;
                continue;
            }
            if let Some(pair) = swap_pair(line.body, next, "old mode ", "new mode ")
                .or_else(|| swap_pair(line.body, next, "rename from ", "rename to "))
            {
                line.push_with(&mut out, &pair.0);
                lines[i + 1].push_with(&mut out, &pair.1);
                i += 2;
                continue;
            }
            if let Some(mode) = line.body.strip_prefix("new file mode ") {
                line.push_with(&mut out, &format!("deleted file mode {mode}"));
                i += 1;
                continue;
            }
            if let Some(mode) = line.body.strip_prefix("deleted file mode ") {
                line.push_with(&mut out, &format!("new file mode {mode}"));
                i += 1;
                continue;
            }
            if line.body.starts_with("copy from ") || line.body.starts_with("copy to ") {
                return Err(err("a copied file cannot be reversed".into()));
            }
            if line.body.starts_with("old mode ")
                || line.body.starts_with("new mode ")
                || line.body.starts_with("rename ")
            {
                return Err(err(format!("`{}` without its other half", line.body)));
            }
        }
        line.push_with(&mut out, line.body);
        i += 1;
    }
    Ok(out)
}

/// One line of the patch: its text and its terminator (`\n`, `\r\n` or none).
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    body: &'a str,
    eol: &'a str,
}

impl<'a> Line<'a> {
    fn split(raw: &'a str) -> Line<'a> {
        let cut = if raw.ends_with("\r\n") {
            raw.len() - 2
        } else if raw.ends_with('\n') {
            raw.len() - 1
        } else {
            raw.len()
        };
        Line {
            body: &raw[..cut],
            eol: &raw[cut..],
        }
    }

    fn push_with(&self, out: &mut String, body: &str) {
        out.push_str(body);
        out.push_str(self.eol);
    }
}

/// `path` as git writes it on that side: `/dev/null` or under `prefix`.
fn is_git_path(path: &str, prefix: &str) -> bool {
    path == "/dev/null" || path.starts_with(prefix)
}

fn swap_prefix(path: &str, from: &str, to: &str) -> String {
    match path.strip_prefix(from) {
        Some(rest) => format!("{to}{rest}"),
        None => path.to_string(),
    }
}

/// `a/X b/Y` → `a/Y b/X`; `None` when the split point is ambiguous.
fn swap_git_paths(paths: &str) -> Option<String> {
    // The same path on both sides (all but renames): nothing to swap.
    let half = paths.len() / 2;
    // A space byte is never inside a multi-byte character, so both slices are safe.
    if paths.len() % 2 == 1 && paths.as_bytes()[half] == b' ' {
        let (old, new) = (&paths[..half], &paths[half + 1..]);
        let unprefixed = old.strip_prefix("a/").zip(new.strip_prefix("b/"));
        if old == new || unprefixed.is_some_and(|(old, new)| old == new) {
            return Some(paths.to_string());
        }
    }
    let rest = paths.strip_prefix("a/")?;
    let mut splits = rest.match_indices(" b/");
    let (at, _) = splits.next()?;
    if splits.next().is_some() {
        return None;
    }
    Some(format!("a/{} b/{}", &rest[at + 3..], &rest[..at]))
}

/// Two header lines `first X` / `second Y` → `first Y` / `second X`.
fn swap_pair(
    line: &str,
    next: Option<&str>,
    first: &str,
    second: &str,
) -> Option<(String, String)> {
    let old = line.strip_prefix(first)?;
    let new = next?.strip_prefix(second)?;
    Some((format!("{first}{new}"), format!("{second}{old}")))
}

/// One line inside a hunk, with the `\ No newline at end of file` marker that
/// belongs to it.
struct HunkLine<'a> {
    line: Line<'a>,
    marker: Option<Line<'a>>,
}

/// Reverses the hunk whose header is `lines[start]`; returns the index after it.
fn reverse_hunk(lines: &[Line<'_>], start: usize, out: &mut String) -> Result<usize, ReverseError> {
    let header = lines[start];
    let err = |line: usize, message: String| ReverseError { line, message };
    let malformed = || {
        err(
            start + 1,
            format!("malformed hunk header `{}`", header.body),
        )
    };
    let ranges = header.body.strip_prefix("@@ -").ok_or_else(malformed)?;
    let (old, rest) = ranges.split_once(" +").ok_or_else(malformed)?;
    let (new, tail) = rest.split_once(" @@").ok_or_else(malformed)?;
    let (mut old_left, mut new_left) = (
        range_len(old).ok_or_else(malformed)?,
        range_len(new).ok_or_else(malformed)?,
    );
    header.push_with(out, &format!("@@ -{new} +{old} @@{tail}"));

    let mut i = start + 1;
    let mut items: Vec<(u8, HunkLine<'_>)> = Vec::new();
    while old_left > 0 || new_left > 0 {
        let line = *lines
            .get(i)
            .ok_or_else(|| err(i + 1, "the hunk ends before its line counts say".into()))?;
        // Some tools drop the space of an empty context line.
        let kind = line.body.as_bytes().first().copied().unwrap_or(b' ');
        let (old_use, new_use) = match kind {
            b' ' => (1, 1),
            b'-' => (1, 0),
            b'+' => (0, 1),
            b'\\' => (0, 0),
            _ => {
                return Err(err(
                    i + 1,
                    format!("unexpected line in a hunk: `{}`", line.body),
                ));
            }
        };
        if kind == b'\\' {
            attach_marker(&mut items, line).map_err(|message| err(i + 1, message))?;
        } else {
            if old_left < old_use || new_left < new_use {
                return Err(err(
                    i + 1,
                    "more lines in the hunk than its header counts".into(),
                ));
            }
            old_left -= old_use;
            new_left -= new_use;
            items.push((kind, HunkLine { line, marker: None }));
        }
        i += 1;
    }
    if let Some(line) = lines.get(i).filter(|line| line.body.starts_with('\\')) {
        attach_marker(&mut items, *line).map_err(|message| err(i + 1, message))?;
        i += 1;
    }

    // Swap `-` and `+`; within each run of changes, removals come first again.
    let mut removed: Vec<&HunkLine<'_>> = Vec::new();
    let mut added: Vec<&HunkLine<'_>> = Vec::new();
    let flush =
        |removed: &mut Vec<&HunkLine<'_>>, added: &mut Vec<&HunkLine<'_>>, out: &mut String| {
            for item in removed.drain(..) {
                push_hunk_line(out, '-', item);
            }
            for item in added.drain(..) {
                push_hunk_line(out, '+', item);
            }
        };
    for (kind, item) in &items {
        match kind {
            b'+' => removed.push(item),
            b'-' => added.push(item),
            _ => {
                flush(&mut removed, &mut added, out);
                item.line.push_with(out, item.line.body);
                if let Some(marker) = item.marker {
                    marker.push_with(out, marker.body);
                }
            }
        }
    }
    flush(&mut removed, &mut added, out);
    Ok(i)
}

fn attach_marker<'a>(items: &mut [(u8, HunkLine<'a>)], marker: Line<'a>) -> Result<(), String> {
    match items.last_mut() {
        Some((_, item)) if item.marker.is_none() => {
            item.marker = Some(marker);
            Ok(())
        }
        _ => Err(format!("`{}` follows no line", marker.body)),
    }
}

fn push_hunk_line(out: &mut String, sign: char, item: &HunkLine<'_>) {
    out.push(sign);
    out.push_str(&item.line.body[1..]);
    out.push_str(item.line.eol);
    if let Some(marker) = item.marker {
        marker.push_with(out, marker.body);
    }
}

/// The line count of a hunk range `start[,count]` (1 when the count is left out).
fn range_len(range: &str) -> Option<usize> {
    let (start, count) = range.split_once(',').unwrap_or((range, "1"));
    start.parse::<usize>().ok()?;
    count.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reverses `patch`, checks the result against `expected` and that reversing
    /// again gives `patch` back.
    fn assert_reverses(patch: &str, expected: &str) {
        let reversed = reverse(patch).unwrap();
        assert_eq!(reversed, expected);
        assert_eq!(reverse(&reversed).unwrap(), patch, "not an involution");
    }

    fn example_tasks() -> Vec<serde_json::Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/task.jsonl");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn reverses_the_bug_patches_of_the_examples_into_their_gold_patches() {
        for task in example_tasks() {
            let (bug, gold) = (
                task["bug_patch"].as_str().unwrap(),
                task["gold_patch"].as_str().unwrap(),
            );
            assert_reverses(bug, gold);
        }
    }

    #[test]
    fn reordered_change_blocks_put_removals_first() {
        let patch = "\
--- a/m.py
+++ b/m.py
@@ -1,5 +1,5 @@
 a
-b
-c
+B
 d
-e
+E1
+E2
";
        let expected = "\
--- a/m.py
+++ b/m.py
@@ -1,5 +1,5 @@
 a
-B
+b
+c
 d
-E1
-E2
+e
";
        assert_reverses(patch, expected);
    }

    #[test]
    fn git_headers_swap_sides() {
        let patch = "\
diff --git a/old name.py b/new name.py
old mode 100644
new mode 100755
similarity index 90%
rename from old name.py
rename to new name.py
index 1234567..89abcde
--- a/old name.py
+++ b/new name.py
@@ -1 +1 @@
-x = 1
+x = 2
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 1111111..0000000
--- a/gone.py
+++ /dev/null
@@ -1,2 +0,0 @@
-a
-b
";
        let expected = "\
diff --git a/new name.py b/old name.py
old mode 100755
new mode 100644
similarity index 90%
rename from new name.py
rename to old name.py
index 89abcde..1234567
--- a/new name.py
+++ b/old name.py
@@ -1 +1 @@
-x = 2
+x = 1
diff --git a/gone.py b/gone.py
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/gone.py
@@ -0,0 +1,2 @@
+a
+b
";
        assert_reverses(patch, expected);
    }

    #[test]
    fn paths_with_spaces_and_non_ascii_characters() {
        let same =
            "diff --git a/d/ä b.py b/d/ä b.py\nindex 1..2 100644\n--- a/d/ä b.py\n+++ b/d/ä b.py\n";
        assert_reverses(
            same,
            "diff --git a/d/ä b.py b/d/ä b.py\nindex 2..1 100644\n--- a/d/ä b.py\n+++ b/d/ä b.py\n",
        );
        let renamed = "diff --git a/é.py b/ö.py\nrename from é.py\nrename to ö.py\n";
        assert_reverses(
            renamed,
            "diff --git a/ö.py b/é.py\nrename from ö.py\nrename to é.py\n",
        );
    }

    #[test]
    fn no_newline_markers_stay_with_their_lines() {
        let patch = "\
--- a/m.py
+++ b/m.py
@@ -1,2 +1,3 @@
 x
-y
\\ No newline at end of file
+y
+z
\\ No newline at end of file
";
        let expected = "\
--- a/m.py
+++ b/m.py
@@ -1,3 +1,2 @@
 x
-y
-z
\\ No newline at end of file
+y
\\ No newline at end of file
";
        assert_reverses(patch, expected);
    }

    #[test]
    fn lines_that_look_like_headers_inside_a_hunk_are_content() {
        let patch = "\
--- a/notes.txt
+++ b/notes.txt
@@ -1 +1 @@
--- a/
+++ b/
";
        let expected = "\
--- a/notes.txt
+++ b/notes.txt
@@ -1 +1 @@
-++ b/
+-- a/
";
        assert_reverses(patch, expected);
    }

    #[test]
    fn keeps_crlf_text_around_and_the_empty_patch() {
        assert_reverses("", "");
        let patch = "Subject: fix\r\n\r\n--- a/m.py\r\n+++ b/m.py\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n";
        let expected =
            "Subject: fix\r\n\r\n--- a/m.py\r\n+++ b/m.py\r\n@@ -1 +1 @@\r\n-b\r\n+a\r\n";
        assert_reverses(patch, expected);
    }

    #[test]
    fn undoes_what_diffy_applies() {
        let old = "def f(x):\n    if x > 0:\n        return 1\n    return 0\n\nprint(f(2))\n";
        let new = "def f(x):\n    if x >= 0:\n        return 1\n    return -1\n\nprint(f(2))\nprint(f(0))";
        let patch = diffy::create_patch(old, new).to_string();
        let undo = reverse(&patch).unwrap();
        let applied = diffy::apply(old, &diffy::Patch::from_str(&patch).unwrap()).unwrap();
        assert_eq!(applied, new);
        assert_eq!(
            diffy::apply(new, &diffy::Patch::from_str(&undo).unwrap()).unwrap(),
            old
        );
    }

    #[test]
    fn refuses_what_text_cannot_reverse() {
        let cases = [
            (
                "diff --git a/x.png b/x.png\nindex 1..2\nGIT binary patch\nliteral 3\n",
                3,
                "binary",
            ),
            (
                "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n",
                5,
                "ends before",
            ),
            (
                "--- a/m.py\n+++ b/m.py\n@@ -x +1 @@\n",
                3,
                "malformed hunk header",
            ),
            ("diff --git a/x b/y\ncopy from x\ncopy to y\n", 2, "copied"),
        ];
        for (patch, line, fragment) in cases {
            let err = reverse(patch).unwrap_err();
            assert_eq!(err.line, line, "{patch:?}: {err}");
            assert!(err.message.contains(fragment), "{patch:?}: {err}");
        }
    }
}
