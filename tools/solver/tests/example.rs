//! What the solver is shown: the problem statement and the buggy code, never the fix or
//! where the task came from.

use schemas::{Provenance, Task};
use solver::example::{ExampleOptions, RepairExample};

const CLEAN: &str = "\"\"\"Ranges.\"\"\"\n\n\ndef clamp(value, low, high):\n    if value < low:\n        return low\n    if value > high:\n        return high\n    return value\n\n\ndef span(items):\n    return max(items) - min(items)\n";

fn task(dir: &std::path::Path) -> Task {
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("pkg/ranges.py"), CLEAN).unwrap();
    let buggy = CLEAN.replace("value > high", "value >= high");
    let bug_patch = patches::unified_diff("pkg/ranges.py", CLEAN, &buggy);
    let gold_patch = patches::unified_diff("pkg/ranges.py", &buggy, CLEAN);
    Task {
        schema: "task/1".into(),
        instance_id: "ranges.cmp-swap.0001".into(),
        repo: "ranges-1.0".into(),
        bug_patch,
        gold_patch,
        problem_statement: "FAILED tests/test_ranges.py::test_clamp_at_high - assert 9 == 10"
            .into(),
        fail_to_pass: vec!["tests/test_ranges.py::test_clamp_at_high".into()],
        pass_to_pass: vec![],
        test_cmd: "pytest tests".into(),
        provenance: Provenance {
            strategy: "secret-strategy".into(),
            operator: Some("cmp-swap".into()),
            site: None,
            skill_ids: vec!["secret-skill".into()],
            round: 1,
            seed: 4242,
            extra: Default::default(),
        },
        rejection: None,
        extra: Default::default(),
    }
}

#[test]
fn the_prompt_holds_the_bug_and_the_problem_but_not_the_fix_or_the_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let example = RepairExample::from_task(&task, dir.path(), &ExampleOptions::default()).unwrap();
    let prompt = example.prompt.render(10_000);
    assert!(
        prompt.contains("value >= high"),
        "the buggy line is shown:\n{prompt}"
    );
    assert!(prompt.contains("test_clamp_at_high"));
    assert!(
        !prompt.contains("value > high"),
        "the fixed line leaks:\n{prompt}"
    );
    for secret in [
        "cmp-swap",
        "secret-strategy",
        "secret-skill",
        "4242",
        "@@",
        "+++",
        "---",
    ] {
        assert!(
            !prompt.contains(secret),
            "`{secret}` leaks into the prompt:\n{prompt}"
        );
    }
    let gold = &example.candidates[example.gold.unwrap()];
    assert!(
        example.gold_enumerated,
        "a comparison swap is undone by a template"
    );
    assert_eq!(gold.edit.new, vec!["    if value > high:\n"]);
    assert_eq!(
        gold.edit
            .apply(&CLEAN.replace("value > high", "value >= high"))
            .unwrap(),
        CLEAN
    );
    assert_eq!(
        example.prompt.first_line, 4,
        "the window is the enclosing function"
    );
    assert_eq!(example.prompt.last_line(), 9);
}

#[test]
fn the_same_task_and_seed_give_the_same_example() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let options = ExampleOptions {
        max_window_lines: 3,
        max_candidates: 5,
        seed: 9,
    };
    let a = RepairExample::from_task(&task, dir.path(), &options).unwrap();
    let b = RepairExample::from_task(&task, dir.path(), &options).unwrap();
    assert_eq!(a.prompt, b.prompt);
    assert_eq!(a.candidates, b.candidates);
    assert_eq!(a.candidates.len(), 5);
    assert!(a.prompt.first_line <= 7 && a.prompt.last_line() >= 7);
}

#[test]
fn a_repair_from_a_trace_becomes_the_target_in_place_of_the_gold_one() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let buggy = CLEAN.replace("value > high", "value >= high");
    let own = CLEAN.replace("value > high", "high < value");
    let patch = patches::unified_diff("pkg/ranges.py", &buggy, &own);
    let options = ExampleOptions::default();
    let example = RepairExample::from_repair(&task, dir.path(), &patch, &options).unwrap();
    let target = &example.candidates[example.gold.unwrap()];
    assert_eq!(target.edit.new, vec!["    if high < value:\n"]);
    assert_eq!(target.edit.apply(&buggy).unwrap(), own);
    assert!(
        !example.gold_enumerated,
        "no template writes the comparison the other way round"
    );
    let from_gold = RepairExample::from_task(&task, dir.path(), &options).unwrap();
    assert_eq!(
        example.prompt, from_gold.prompt,
        "the same buggy code is shown"
    );
    assert!(
        example
            .candidates
            .iter()
            .any(|c| c.edit.new == vec!["    if value > high:\n"]),
        "the gold repair stays among the candidates, as one of the others"
    );

    let elsewhere = patches::unified_diff("pkg/other.py", &buggy, &own);
    let error = RepairExample::from_repair(&task, dir.path(), &elsewhere, &options).unwrap_err();
    assert!(
        format!("{error:#}").contains("ranges.cmp-swap.0001"),
        "{error:#}"
    );
    let stale = patches::unified_diff("pkg/ranges.py", CLEAN, &own);
    let error = RepairExample::from_repair(&task, dir.path(), &stale, &options).unwrap_err();
    assert!(format!("{error:#}").contains("does not apply"), "{error:#}");
}
