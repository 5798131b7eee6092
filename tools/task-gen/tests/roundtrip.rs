//! The property of every operator on the real corpus: the bug patch applied to
//! the clean file, then the gold patch, gives the clean file back byte for byte,
//! and the buggy file parses. Needs `just setup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use patches::apply_to;
use pyast::operators;
use schemas::Split;
use task_gen::{make_task, parse_repo, read_corpus};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"),
        PathBuf::from,
    );
    let corpus = dir.join("corpus.jsonl");
    assert!(corpus.is_file(), "run `just setup` first");
    corpus
}

/// Every STRIDE-th edit of the corpus (in split, repository, file and site
/// order) is checked: all of them take several minutes in a debug build (every
/// 7th took ~60 s). A prime stride still reaches every operator and every
/// alternative of a site; the test fails if an operator is never reached.
const STRIDE: usize = 11;

#[test]
fn bug_then_gold_patch_restores_every_file_and_the_bug_parses() {
    let corpus = corpus();
    let ops = operators::all();
    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    let mut index = 0usize;
    for split in [Split::Train, Split::Dev, Split::Test] {
        for tree in read_corpus(&corpus, split).unwrap() {
            for (path, module) in parse_repo(&tree).unwrap() {
                for site in module.sites(&ops) {
                    for edit in &site.edits {
                        index += 1;
                        if !index.is_multiple_of(STRIDE) {
                            continue;
                        }
                        let Some(task) = make_task(&tree, &path, &module, &site, edit, 0) else {
                            // Dropped: the buggy file would not parse.
                            assert!(!pyast::parses(&module.apply(edit)));
                            continue;
                        };
                        let clean = module.source().to_string();
                        let buggy = module.apply(edit);
                        let bugged = apply_to(&task.bug_patch, |_| Ok(clean.clone()))
                            .unwrap_or_else(|e| panic!("{}: bug patch: {e}", task.instance_id));
                        assert_eq!(bugged[&path].1, buggy, "{}", task.instance_id);
                        assert!(pyast::parses(&buggy), "{}", task.instance_id);
                        let restored = apply_to(&task.gold_patch, |_| Ok(buggy.clone()))
                            .unwrap_or_else(|e| panic!("{}: gold patch: {e}", task.instance_id));
                        assert!(
                            restored[&path].1 == clean,
                            "{}: gold patch does not restore {path}",
                            task.instance_id
                        );
                        *checked.entry(site.operator.id).or_default() += 1;
                    }
                }
            }
        }
    }
    for op in &operators::ALL {
        assert!(
            checked.get(op.id).copied().unwrap_or(0) > 0,
            "operator {} never applied in the corpus: {checked:?}",
            op.id
        );
    }
}
