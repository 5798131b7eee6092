//! `scripts/eval-weights.toml`: the operator weights task-gen reads are the ones the
//! TSSB-3M pattern table beside them gives, and task-gen accepts the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyast::operators;
use task_gen::OperatorWeights;

fn weights_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/eval-weights.toml")
}

fn table() -> toml::Table {
    let text = std::fs::read_to_string(weights_file()).unwrap();
    text.parse().unwrap()
}

#[test]
fn operator_weights_are_the_pattern_counts_split_over_their_operators() {
    let table = table();
    let patterns = table["pattern"].as_array().unwrap();
    let total: i64 = patterns
        .iter()
        .map(|p| p["thousands"].as_integer().unwrap())
        .sum();
    let mut derived: BTreeMap<String, f64> = BTreeMap::new();
    let mut mapped = 0.0;
    for p in patterns {
        let name = p["name"].as_str().unwrap();
        let count = p["thousands"].as_integer().unwrap() as f64;
        let share = p["share"].as_float().unwrap();
        assert!(
            (share - count / total as f64).abs() < 5e-5,
            "{name}: share {share} is not {count}/{total}"
        );
        let ops = p["operators"].as_array().unwrap();
        assert_eq!(p.get("match").is_some(), !ops.is_empty(), "{name}: match");
        assert!(p["why"].as_str().is_some_and(|w| !w.is_empty()), "{name}");
        if ops.is_empty() {
            continue;
        }
        mapped += count;
        for op in ops {
            let op = op.as_str().unwrap();
            assert!(operators::by_id(op).is_some(), "{name}: unknown {op}");
            *derived.entry(op.to_string()).or_default() += count / ops.len() as f64;
        }
    }
    let weights = OperatorWeights::read(&weights_file()).unwrap();
    let listed = table["operators"].as_table().unwrap();
    for op in operators::ALL.iter() {
        assert!(
            listed.contains_key(op.id),
            "[operators] lists every operator: {}",
            op.id
        );
        let want = derived.get(op.id).map_or(0.0, |w| w / mapped);
        assert!(
            (weights.weight(op.id) - want).abs() < 1e-6,
            "{}: weight {} but the table gives {want:.6}",
            op.id,
            weights.weight(op.id)
        );
    }
}
