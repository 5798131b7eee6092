//! Fault localization from one run of a task's tests on the buggy code: spectrum-based
//! (Ochiai over which failing and which passing tests execute each line) plus the failing
//! tests' tracebacks (the frames inside the repository's source, innermost first).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sandbox::LineMap;
use schemas::{SuspiciousFunction, SuspiciousLine};

/// Weight of a traceback frame against the Ochiai score (which lies in `[0, 1]`): the
/// innermost source frame of a failing test adds this much, the next one out half of it.
const TRACEBACK_WEIGHT: f64 = 0.5;

/// Ochiai suspiciousness of every executed line: `ef / sqrt(F * (ef + ep))`, where `ef` and
/// `ep` count the failing and passing tests that execute the line and `F` all failing tests.
/// Lines no failing test executes are left out (their score is 0).
pub fn ochiai(map: &LineMap, failing: &BTreeSet<String>) -> BTreeMap<(String, u32), f64> {
    let total_failed = failing.len() as f64;
    let mut scores = BTreeMap::new();
    if total_failed == 0.0 {
        return scores;
    }
    let is_failing: Vec<bool> = map.tests.iter().map(|t| failing.contains(t)).collect();
    for (path, lines) in &map.lines {
        for (&line, tests) in lines {
            let ef = tests
                .iter()
                .filter(|&&t| is_failing.get(t as usize).copied().unwrap_or(false))
                .count() as f64;
            if ef == 0.0 {
                continue;
            }
            let executed = tests.len() as f64;
            scores.insert((path.clone(), line), ef / (total_failed * executed).sqrt());
        }
    }
    scores
}

/// The `path:line` frames of each failing test's traceback in pytest's output (`--tb=short`
/// prints `path.py:12: in name`; Python's own `File "path.py", line 12` is read too), outer
/// frames first. Each failure section (`____ test ____`) is one traceback; the warnings
/// summary (`path.py:12: DeprecationWarning`) is not read.
pub fn traceback_frames(output: &str) -> Vec<Vec<(String, u32)>> {
    let mut sections: Vec<Vec<(String, u32)>> = vec![Vec::new()];
    let mut in_warnings = false;
    for line in output.lines() {
        if line.starts_with("____") || line.starts_with("====") {
            in_warnings = line.starts_with("====") && line.contains("warnings summary");
            if !sections.last().is_some_and(Vec::is_empty) {
                sections.push(Vec::new());
            }
            continue;
        }
        if in_warnings {
            continue;
        }
        if let Some(frame) = short_frame(line).or_else(|| python_frame(line)) {
            sections.last_mut().expect("one section").push(frame);
        }
    }
    sections.retain(|s| !s.is_empty());
    sections
}

/// `path.py:12: in name` or `path.py:12: Error`.
fn short_frame(line: &str) -> Option<(String, u32)> {
    let (path, rest) = line.split_once(".py:")?;
    let (number, rest) = rest.split_once(':')?;
    if path.is_empty() || path.contains(' ') || !rest.starts_with(' ') {
        return None;
    }
    Some((format!("{path}.py"), number.parse().ok()?))
}

/// `  File "path.py", line 12, in name`.
fn python_frame(line: &str) -> Option<(String, u32)> {
    let rest = line.trim_start().strip_prefix("File \"")?;
    let (path, rest) = rest.split_once("\", line ")?;
    let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
    path.ends_with(".py")
        .then(|| Some((path.to_string(), number.parse().ok()?)))?
}

/// Resolves a path as printed by pytest (relative to its rootdir, or absolute inside the
/// working copy) to one of the repository's source files, if it is one.
fn resolve<'a>(printed: &str, sources: &'a BTreeSet<String>) -> Option<&'a String> {
    if let Some(found) = sources.get(printed) {
        return Some(found);
    }
    sources.iter().find(|source| {
        printed.ends_with(&format!("/{source}")) || source.ends_with(&format!("/{printed}"))
    })
}

/// Suspicious source lines, most suspicious first: Ochiai plus a bonus for the lines in the
/// failing tests' tracebacks. Only lines of `sources` (the repository's non-test Python
/// files) are ranked. Ties break by path and line, so the ranking is deterministic.
pub fn rank_lines(
    spectrum: &BTreeMap<(String, u32), f64>,
    tracebacks: &[Vec<(String, u32)>],
    sources: &BTreeSet<String>,
) -> Vec<SuspiciousLine> {
    let mut scores: HashMap<(String, u32), f64> = HashMap::new();
    for ((path, line), score) in spectrum {
        if sources.contains(path) {
            scores.insert((path.clone(), *line), *score);
        }
    }
    let mut bonus: HashMap<(String, u32), f64> = HashMap::new();
    for frames in tracebacks {
        let inside = frames
            .iter()
            .rev()
            .filter_map(|(path, line)| Some((resolve(path, sources)?.clone(), *line)));
        let mut weight = TRACEBACK_WEIGHT;
        for key in inside {
            let entry = bonus.entry(key).or_default();
            *entry = entry.max(weight);
            weight /= 2.0;
        }
    }
    for (key, extra) in bonus {
        *scores.entry(key).or_default() += extra;
    }
    let mut ranked: Vec<SuspiciousLine> = scores
        .into_iter()
        .map(|((path, line), score)| SuspiciousLine { path, line, score })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
            .then(a.line.cmp(&b.line))
    });
    ranked
}

/// The suspicious lines grouped by their innermost enclosing function (or `<module>` code
/// between functions), each scored by its most suspicious line; most suspicious first.
/// `definitions` gives each file's functions.
pub fn rank_functions(
    lines: &[SuspiciousLine],
    definitions: &HashMap<String, Vec<pyast::Definition>>,
) -> Vec<SuspiciousFunction> {
    let mut best: Vec<SuspiciousFunction> = Vec::new();
    let mut index: HashMap<(String, u32, u32), usize> = HashMap::new();
    // `lines` is sorted, so the first line that reaches a function sets its score.
    for line in lines {
        let defs = definitions.get(&line.path).map_or(&[][..], Vec::as_slice);
        let (name, start, end) = defs
            .iter()
            .filter(|d| {
                d.kind == "function"
                    && d.start_line <= line.line as usize
                    && line.line as usize <= d.end_line
            })
            .min_by_key(|d| d.end_line - d.start_line)
            .map(|d| (d.qualname.clone(), d.start_line as u32, d.end_line as u32))
            .unwrap_or_else(|| ("<module>".to_string(), line.line, line.line));
        let key = (line.path.clone(), start, end);
        if name == "<module>" || !index.contains_key(&key) {
            index.insert(key, best.len());
            best.push(SuspiciousFunction {
                path: line.path.clone(),
                name,
                start_line: start,
                end_line: end,
                score: line.score,
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> LineMap {
        // t0 and t1 fail, t2 and t3 pass. Line 10 runs in both failing tests only;
        // line 20 in every test; line 30 in one failing and one passing test.
        let mut lines = BTreeMap::new();
        lines.insert(
            "pkg/m.py".to_string(),
            BTreeMap::from([(10, vec![0, 1]), (20, vec![0, 1, 2, 3]), (30, vec![1, 2])]),
        );
        lines.insert(
            "tests/test_m.py".to_string(),
            BTreeMap::from([(5, vec![0, 1])]),
        );
        LineMap {
            tests: ["t0", "t1", "t2", "t3"].map(String::from).to_vec(),
            lines,
            import_lines: BTreeMap::new(),
            ..LineMap::default()
        }
    }

    fn failing() -> BTreeSet<String> {
        ["t0", "t1"].map(String::from).into()
    }

    #[test]
    fn ochiai_ranks_the_line_only_failing_tests_run_first() {
        let scores = ochiai(&map(), &failing());
        let at = |line| scores[&("pkg/m.py".to_string(), line)];
        assert!((at(10) - 1.0).abs() < 1e-9);
        assert!((at(20) - 2.0 / 8f64.sqrt()).abs() < 1e-9);
        assert!((at(30) - 1.0 / 4f64.sqrt()).abs() < 1e-9);
        assert!(at(10) > at(30) && at(30) == at(20).min(at(30)));
    }

    #[test]
    fn test_files_are_not_ranked_and_tracebacks_add_to_the_spectrum() {
        let sources: BTreeSet<String> = ["pkg/m.py".to_string()].into();
        let scores = ochiai(&map(), &failing());
        let plain = rank_lines(&scores, &[], &sources);
        assert_eq!(plain[0].line, 10);
        assert!(plain.iter().all(|l| l.path == "pkg/m.py"));
        // The traceback of a failing test ends at line 20: it overtakes line 10.
        let frames = vec![vec![
            ("tests/test_m.py".to_string(), 5),
            ("pkg/m.py".to_string(), 20),
        ]];
        let ranked = rank_lines(&scores, &frames, &sources);
        assert_eq!(ranked[0].line, 20);
        assert_eq!(ranked[1].line, 10);
    }

    #[test]
    fn frames_are_read_from_pytest_short_tracebacks_per_failure() {
        let output = "\
________________________________ test_a ________________________________
tests/test_m.py:5: in test_a
    assert f(1) == 2
src/pkg/m.py:30: in f
    return g(x)
src/pkg/m.py:12: in g
    return x +
E   AssertionError: assert 1 == 2
________________________________ test_b ________________________________
  File \"/work/src/pkg/m.py\", line 40, in h
=============================== warnings summary ===============================
src/pkg/m.py:7: DeprecationWarning: old
=========================== short test summary info ============================
FAILED tests/test_m.py::test_a - AssertionError
";
        let frames = traceback_frames(output);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            vec![
                ("tests/test_m.py".to_string(), 5),
                ("src/pkg/m.py".to_string(), 30),
                ("src/pkg/m.py".to_string(), 12)
            ]
        );
        assert_eq!(frames[1], vec![("/work/src/pkg/m.py".to_string(), 40)]);
        let sources: BTreeSet<String> = ["src/pkg/m.py".to_string()].into();
        let ranked = rank_lines(&BTreeMap::new(), &frames, &sources);
        let order: Vec<u32> = ranked.iter().map(|l| l.line).collect();
        assert_eq!(order, [12, 40, 30]);
    }

    #[test]
    fn functions_take_their_best_line() {
        let module = pyast::Module::parse(
            "def f(x):\n    y = x\n    return y\n\n\ndef g():\n    return 1\n",
        )
        .unwrap();
        let defs = HashMap::from([("m.py".to_string(), module.definitions())]);
        let line = |line, score| SuspiciousLine {
            path: "m.py".into(),
            line,
            score,
        };
        let ranked = rank_functions(&[line(7, 0.9), line(3, 0.8), line(2, 0.5)], &defs);
        let names: Vec<&str> = ranked.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["g", "f"]);
        assert_eq!((ranked[1].start_line, ranked[1].end_line), (1, 3));
        assert_eq!(ranked[1].score, 0.8);
    }
}
