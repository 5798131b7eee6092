//! Per-test outcomes from pytest's JUnit XML report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

use crate::TestOutcome;

/// Outcomes and failure messages by pytest node id.
#[derive(Debug, Default)]
pub struct Results {
    pub outcomes: BTreeMap<String, TestOutcome>,
    /// The message pytest gave for each failed or errored test (e.g. the
    /// assertion), first line only.
    pub messages: BTreeMap<String, String>,
    /// pytest's own time inside the tests: setup, call and teardown of every
    /// testcase, summed (the report's `time` attributes).
    pub test_time: std::time::Duration,
}

/// Reads a JUnit XML report written by pytest with `-o junit_family=xunit1` and
/// returns the outcome of every test by pytest node id
/// (`tests/test_lru.py::LRUCacheTest::test_maxsize`). `repo` is the directory
/// pytest ran in; it resolves classnames whose test is defined in another file.
pub fn read(xml: &str, repo: &Path) -> anyhow::Result<Results> {
    // Subtests (`unittest`'s `subTest`, pytest's `subtests`) put one status element per
    // subtest into their test's testcase, which the JUnit schema does not allow.
    let report = Report::deserialize_from_str(xml)
        .or_else(|strict| {
            one_status_per_case(xml)
                .ok()
                .and_then(|fixed| Report::deserialize_from_str(&fixed).ok())
                .ok_or(strict)
        })
        .context("pytest wrote an unreadable JUnit XML report")?;
    let mut results = Results::default();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let classname = case.classname.as_ref().map(|c| c.as_str()).unwrap_or("");
            let file = case.extra.get("file").map(|f| f.as_str());
            let id = node_id(classname, case.name.as_str(), file, repo);
            results.test_time += case.time.unwrap_or_default();
            let outcome = match &case.status {
                TestCaseStatus::Success { .. } => TestOutcome::Passed,
                TestCaseStatus::Skipped { .. } => TestOutcome::Skipped,
                TestCaseStatus::NonSuccess { kind, message, .. } => {
                    let first_line = message
                        .as_ref()
                        .and_then(|m| m.as_str().lines().next())
                        .unwrap_or("");
                    results
                        .messages
                        .entry(id.clone())
                        .or_insert_with(|| first_line.chars().take(500).collect());
                    match kind {
                        NonSuccessKind::Failure => TestOutcome::Failed,
                        NonSuccessKind::Error => TestOutcome::Error,
                    }
                }
            };
            // A test that fails in its call and errors in teardown appears twice;
            // the worse outcome stands.
            let entry = results.outcomes.entry(id).or_insert(outcome);
            *entry = (*entry).max(outcome);
        }
    }
    Ok(results)
}

/// The report with each testcase's status elements (`failure`, `error`, `skipped`) cut to
/// the worst one: error, then failure, then skipped (a test whose subtests were all skipped
/// counts as skipped).
fn one_status_per_case(xml: &str) -> anyhow::Result<String> {
    use quick_xml::events::Event;
    let severity = |name: &[u8]| match name {
        b"error" => Some(3),
        b"failure" => Some(2),
        b"skipped" => Some(1),
        _ => None,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    // Inside a testcase: the worst status element so far, its events whole.
    let mut case: Option<(u8, Vec<Event<'static>>)> = None;
    let mut in_case = false;
    // Depth inside the status element being read (0: none), and its events.
    let (mut depth, mut current, mut current_severity) = (0usize, Vec::new(), 0u8);
    loop {
        let event = reader.read_event()?.into_owned();
        match &event {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == b"testcase" && !in_case => {
                in_case = true;
                case = Some((0, Vec::new()));
            }
            Event::End(e) if e.name().as_ref() == b"testcase" && in_case && depth == 0 => {
                if let Some((_, worst)) = case.take() {
                    for kept in worst {
                        writer.write_event(kept)?;
                    }
                }
                in_case = false;
            }
            Event::Start(e) if in_case && depth == 0 && severity(e.name().as_ref()).is_some() => {
                current_severity = severity(e.name().as_ref()).unwrap_or(0);
                depth = 1;
                current = vec![event];
                continue;
            }
            Event::Empty(e) if in_case && depth == 0 && severity(e.name().as_ref()).is_some() => {
                let s = severity(e.name().as_ref()).unwrap_or(0);
                if let Some(worst) = case.as_mut().filter(|w| s > w.0) {
                    *worst = (s, vec![event]);
                }
                continue;
            }
            _ if depth > 0 => {
                match &event {
                    Event::Start(_) => depth += 1,
                    Event::End(_) => depth -= 1,
                    _ => {}
                }
                current.push(event);
                if depth == 0
                    && let Some(worst) = case.as_mut().filter(|w| current_severity > w.0)
                {
                    *worst = (current_severity, std::mem::take(&mut current));
                }
                continue;
            }
            _ => {}
        }
        writer.write_event(event)?;
    }
    Ok(String::from_utf8(writer.into_inner())?)
}

/// Undoes pytest's `mangle_test_address`: the classname is the node id's file
/// path with `/` → `.` and `.py` dropped, followed by the class names.
fn node_id(classname: &str, name: &str, file: Option<&str>, repo: &Path) -> String {
    if classname.is_empty() {
        // A collection error: the "name" is the mangled module path.
        return file.map_or_else(|| name.to_string(), str::to_string);
    }
    let module_of = |path: &str| path.trim_end_matches(".py").replace('/', ".");
    let split = file
        .filter(|file| {
            let module = module_of(file);
            classname == module || classname.starts_with(&format!("{module}."))
        })
        .map(|file| {
            (
                file.to_string(),
                classname[module_of(file).len()..]
                    .trim_start_matches('.')
                    .to_string(),
            )
        })
        .or_else(|| split_by_existing_file(classname, repo));
    match split {
        Some((path, classes)) if classes.is_empty() => format!("{path}::{name}"),
        Some((path, classes)) => format!("{path}::{}::{name}", classes.replace('.', "::")),
        None => format!("{}::{name}", classname.replace('.', "/")),
    }
}

/// Finds the longest prefix of the dotted classname that names a `.py` file in
/// `repo`, for tests inherited from a class defined in another module.
fn split_by_existing_file(classname: &str, repo: &Path) -> Option<(String, String)> {
    let parts: Vec<&str> = classname.split('.').collect();
    (1..=parts.len()).rev().find_map(|n| {
        let path = format!("{}.py", parts[..n].join("/"));
        repo.join(&path)
            .is_file()
            .then(|| (path, parts[n..].join(".")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.1" timestamp="2026-11-25T14:00:00.123456+00:00" hostname="sandbox"><testcase classname="tests.test_lru.LRUCacheTest" name="test_maxsize" file="tests/__init__.py" line="10" time="0.001" /><testcase classname="tests.test_keys" name="test_hashkey[a.b-1]" file="tests/test_keys.py" line="3" time="0.001"><failure message="AssertionError: 1 != 2">trace</failure></testcase><testcase classname="tests.test_keys" name="test_skip" file="tests/test_keys.py" line="9" time="0"><skipped type="pytest.skip" message="no">why</skipped></testcase><testcase classname="" name="tests.test_broken" file="tests/test_broken.py" time="0"><error message="collection failure">ImportError</error></testcase><testcase classname="pkg.tests.test_a.Outer.Inner" name="test_x" file="pkg/tests/test_a.py" line="1" time="0" /></testsuite></testsuites>"#;

    #[test]
    fn a_testcase_with_one_status_per_subtest_takes_the_worst() {
        let case = |name: &str, body: &str| {
            format!(
                r#"<testcase classname="tests.test_s.T" name="{name}" file="tests/test_s.py" line="1" time="0">{body}<system-out>out</system-out></testcase>"#
            )
        };
        let skip = r#"<skipped type="pytest.skip" message="no re2">why</skipped>"#;
        let fail = r#"<failure message="AssertionError: subtest 2">trace</failure>"#;
        let xml = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="3" tests="3" time="0.1">{}{}{}</testsuite></testsuites>"#,
            case("test_all_skipped", &format!("{skip}{skip}")),
            case("test_one_failed", &format!("{skip}{fail}{skip}")),
            case("test_plain", ""),
        );
        assert!(
            Report::deserialize_from_str(&xml).is_err(),
            "quick-junit got lenient"
        );
        let repo = tempfile::tempdir().unwrap();
        let results = read(&xml, repo.path()).unwrap();
        let outcome = |name: &str| results.outcomes[&format!("tests/test_s.py::T::{name}")];
        assert_eq!(outcome("test_all_skipped"), TestOutcome::Skipped);
        assert_eq!(outcome("test_one_failed"), TestOutcome::Failed);
        assert_eq!(outcome("test_plain"), TestOutcome::Passed);
        assert_eq!(
            results.messages["tests/test_s.py::T::test_one_failed"],
            "AssertionError: subtest 2"
        );
    }

    #[test]
    fn maps_junit_cases_to_pytest_node_ids() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("tests")).unwrap();
        std::fs::write(repo.path().join("tests/test_lru.py"), "").unwrap();
        let results = read(REPORT, repo.path()).unwrap();
        assert_eq!(
            results.messages["tests/test_keys.py::test_hashkey[a.b-1]"],
            "AssertionError: 1 != 2"
        );
        let outcomes = results.outcomes;
        let expected = [
            (
                "pkg/tests/test_a.py::Outer::Inner::test_x",
                TestOutcome::Passed,
            ),
            ("tests/test_broken.py", TestOutcome::Error),
            (
                "tests/test_keys.py::test_hashkey[a.b-1]",
                TestOutcome::Failed,
            ),
            ("tests/test_keys.py::test_skip", TestOutcome::Skipped),
            (
                "tests/test_lru.py::LRUCacheTest::test_maxsize",
                TestOutcome::Passed,
            ),
        ];
        let got: Vec<(&str, TestOutcome)> =
            outcomes.iter().map(|(id, o)| (id.as_str(), *o)).collect();
        assert_eq!(got, expected);
    }
}
