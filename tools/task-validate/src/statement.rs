//! The problem statement of a validated task: what a user would report.

use std::collections::BTreeMap;

/// How many failing tests the statement lists before summarizing the rest.
const MAX_LISTED: usize = 10;

/// Describes the failing tests and pytest's message for each, never the fix:
/// the statement is built from the test run alone, not from either patch.
pub fn problem_statement(fail_to_pass: &[String], messages: &BTreeMap<String, String>) -> String {
    let count = fail_to_pass.len();
    let mut text = if count == 1 {
        "1 test fails:\n".to_string()
    } else {
        format!("{count} tests fail:\n")
    };
    for id in fail_to_pass.iter().take(MAX_LISTED) {
        text.push('\n');
        text.push_str(id);
        text.push('\n');
        match messages.get(id).map(|m| m.trim()).filter(|m| !m.is_empty()) {
            Some(message) => {
                text.push_str("    ");
                text.push_str(&mask_addresses(message));
                text.push('\n');
            }
            None => text.push_str("    (no message)\n"),
        }
    }
    if count > MAX_LISTED {
        text.push_str(&format!("\n… and {} more\n", count - MAX_LISTED));
    }
    text
}

/// Replaces the memory addresses in Python reprs (`<function f at 0x7f3a…>`) by
/// `0x…`: they say nothing about the bug and differ from one interpreter to the next.
fn mask_addresses(message: &str) -> String {
    const MARK: &str = " at 0x";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_hexdigit())
                .len();
        out.push_str(&rest[..at + MARK.len()]);
        if digits > 0 {
            out.push('…');
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_addresses_are_masked() {
        let ids = vec!["t.py::a".to_string()];
        let messages = BTreeMap::from([(
            "t.py::a".to_string(),
            "assert 'x' not in M(<function <lambda> at 0x1ad49a8>, 0x10 at 0xZ)".to_string(),
        )]);
        assert_eq!(
            problem_statement(&ids, &messages),
            "1 test fails:\n\nt.py::a\n    assert 'x' not in M(<function <lambda> at 0x…>, 0x10 at 0xZ)\n"
        );
    }

    #[test]
    fn lists_tests_with_their_messages() {
        let ids = vec!["t.py::a".to_string(), "t.py::b".to_string()];
        let messages = BTreeMap::from([(
            "t.py::a".to_string(),
            "AssertionError: assert 'C' == 'B'".to_string(),
        )]);
        assert_eq!(
            problem_statement(&ids, &messages),
            "2 tests fail:\n\nt.py::a\n    AssertionError: assert 'C' == 'B'\n\nt.py::b\n    (no message)\n"
        );
    }
}
