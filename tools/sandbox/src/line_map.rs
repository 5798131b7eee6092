//! Which lines each test executes: the basis of test selection.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Written by the driver's line-map plugin for one full run of a suite.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineMap {
    /// What recorded the lines in the driver: `sys.monitoring` (CPython 3.12 and later),
    /// `coverage` (coverage.py's C tracer, installed beside an older native interpreter by
    /// `just setup`) or `settrace` (a Python trace function, several times slower); empty
    /// in maps recorded before it was named.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracer: String,
    /// Node ids, in run order; `lines` refers to them by index.
    pub tests: Vec<String>,
    /// Tests whose tracing was lost partway (under `sys.settrace`, an error inside the
    /// trace function, such as a RecursionError deep in a test, unsets it): their lines
    /// are not all recorded, so every change selects them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untraced: Vec<u32>,
    /// Repository-relative file → 1-based line → indices of the tests that ran it.
    pub lines: BTreeMap<String, BTreeMap<u32, Vec<u32>>>,
    /// Lines that ran outside any test (imports, module and class bodies):
    /// a change there may affect every test.
    pub import_lines: BTreeMap<String, Vec<u32>>,
}

/// Which tests can see a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Only these tests execute a changed line.
    Tests(BTreeSet<String>),
    /// A changed line runs at import time: every test may see it.
    All,
}

impl LineMap {
    /// The tests that execute any of the changed lines (1-based) of each file.
    ///
    /// Tests whose tracing was lost are selected for every change.
    ///
    /// A line that never reports itself (a comment, a docstring, or the
    /// continuation of a statement whose constants Python folded into its
    /// first line) stands for the nearest recorded line above it: the start of
    /// its statement when the statement ran. A change above every recorded
    /// line selects everything.
    pub fn select(&self, changes: &BTreeMap<String, BTreeSet<u32>>) -> Selection {
        let mut selected: BTreeSet<String> = (self.untraced.iter())
            .filter_map(|&test| self.tests.get(test as usize).cloned())
            .collect();
        let no_lines = BTreeMap::new();
        for (path, lines) in changes {
            let import_lines: &[u32] = self.import_lines.get(path).map_or(&[], Vec::as_slice);
            let by_line = self.lines.get(path).unwrap_or(&no_lines);
            if import_lines.is_empty() && by_line.is_empty() {
                continue; // the file never ran: no test can see it
            }
            let recorded =
                |line: &u32| by_line.contains_key(line) || import_lines.binary_search(line).is_ok();
            for &line in lines {
                let Some(line) = (1..=line).rev().find(recorded) else {
                    return Selection::All;
                };
                if import_lines.binary_search(&line).is_ok() {
                    return Selection::All;
                }
                for &test in by_line.get(&line).into_iter().flatten() {
                    if let Some(id) = self.tests.get(test as usize) {
                        selected.insert(id.clone());
                    }
                }
            }
        }
        Selection::Tests(selected)
    }

    /// How many tests execute a line of `first..=last` (1-based) in `path`: every
    /// test when one of those lines runs at import time, none when none ran. Give
    /// the first line of the statement around a site, so that the line Python
    /// reports for a multi-line statement falls inside the range.
    pub fn tests_reaching(&self, path: &str, first: u32, last: u32) -> usize {
        if self
            .import_lines
            .get(path)
            .is_some_and(|lines| lines.iter().any(|line| (first..=last).contains(line)))
        {
            return self.tests.len();
        }
        let Some(by_line) = self.lines.get(path) else {
            return 0;
        };
        let tests: BTreeSet<u32> = by_line
            .range(first..=last)
            .flat_map(|(_, tests)| tests.iter().copied())
            .collect();
        tests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> LineMap {
        serde_json::from_str(
            r#"{"tests": ["t.py::a", "t.py::b"],
                "lines": {"pkg/m.py": {"10": [0], "11": [0, 1], "20": [1]}},
                "import_lines": {"pkg/m.py": [1, 9]}}"#,
        )
        .unwrap()
    }

    fn change(lines: &[u32]) -> BTreeMap<String, BTreeSet<u32>> {
        BTreeMap::from([("pkg/m.py".to_string(), lines.iter().copied().collect())])
    }

    #[test]
    fn selects_the_tests_that_run_a_changed_line() {
        let ids = |names: &[&str]| Selection::Tests(names.iter().map(|n| n.to_string()).collect());
        assert_eq!(map().select(&change(&[10])), ids(&["t.py::a"]));
        assert_eq!(map().select(&change(&[11])), ids(&["t.py::a", "t.py::b"]));
        assert_eq!(
            map().select(&change(&[21, 30])),
            ids(&["t.py::b"]),
            "both stand for line 20"
        );
        let other = BTreeMap::from([("pkg/unused.py".to_string(), [3].into())]);
        assert_eq!(map().select(&other), ids(&[]));
    }

    #[test]
    fn counts_the_tests_that_run_a_line_of_a_range() {
        let map = map();
        assert_eq!(map.tests_reaching("pkg/m.py", 10, 10), 1);
        assert_eq!(
            map.tests_reaching("pkg/m.py", 10, 20),
            2,
            "a and b, each once"
        );
        assert_eq!(
            map.tests_reaching("pkg/m.py", 12, 19),
            0,
            "no line there ran"
        );
        assert_eq!(
            map.tests_reaching("pkg/m.py", 8, 10),
            2,
            "line 9 runs at import"
        );
        assert_eq!(map.tests_reaching("pkg/unused.py", 1, 100), 0);
    }

    #[test]
    fn an_import_time_line_selects_everything() {
        assert_eq!(map().select(&change(&[9, 10])), Selection::All);
    }
}
