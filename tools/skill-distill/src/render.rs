//! A cluster in words: its name, the template description, the ordered operations and the
//! evidence of a Skill, and its Agent Skills folder (`<name>/SKILL.md`).

use std::collections::BTreeSet;

use pyast::operators;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use schemas::{Evidence, Operation, Phase, Record, Skill};
use sha2::{Digest, Sha256};

use crate::analysis::{Analysed, FailureMode};
use crate::cluster::{Cluster, Level, covers, median_rank, value_words};

/// Example trace ids kept in a skill's evidence.
pub const EXAMPLES: usize = 5;
const MAX_NAME: usize = 64;
pub(crate) const MAX_DESCRIPTION: usize = 1024;

/// The kebab-case name of a cluster: its pattern, its context at the finest level, its mode.
pub fn name(cluster: &Cluster) -> String {
    let ids: Vec<&str> = cluster.operators.iter().copied().collect();
    let pattern = match (cluster.level, ids.as_slice()) {
        (Level::Family, _) | (_, []) => format!("{}-bugs", cluster.family),
        (_, [one]) => one.to_string(),
        (_, many) => {
            let joined = many.join("-or-");
            if joined.len() <= 40 {
                joined
            } else {
                format!("{}-bugs", cluster.family)
            }
        }
    };
    let context = match (cluster.level, condition_value(cluster, "construct")) {
        // `none` is the feature's value for code outside every construct; a name says so.
        (Level::OperatorInContext, Some(construct)) if construct == "none" => {
            "-in-plain-statement".to_string()
        }
        (Level::OperatorInContext, Some(construct)) => format!("-in-{construct}"),
        _ => String::new(),
    };
    let mut name = format!("{pattern}{context}-{}", cluster.mode.as_str());
    while name.len() > MAX_NAME {
        match name.rfind('-') {
            Some(cut) => name.truncate(cut),
            None => name.truncate(MAX_NAME),
        }
    }
    name
}

/// A stable id for a skill name, so a skill keeps its id across rounds.
pub fn skill_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("skill-{hex}")
}

/// The words of one condition's value, when the cluster has it with `eq`.
fn condition_value(cluster: &Cluster, feature: &str) -> Option<String> {
    cluster
        .conditions
        .iter()
        .find(|c| c.feature == feature && c.op == schemas::ConditionOp::Eq)
        .map(|c| value_words(&c.value))
}

fn condition_words(cluster: &Cluster, feature: &str) -> Option<String> {
    cluster
        .conditions
        .iter()
        .find(|c| c.feature == feature)
        .map(|c| value_words(&c.value))
}

/// Where the bug sits, from the `construct` condition: " in a condition", " in a loop or
/// a call"…
fn construct_words(cluster: &Cluster) -> String {
    let Some(condition) = cluster.conditions.iter().find(|c| c.feature == "construct") else {
        return String::new();
    };
    let one = |c: &str| match c {
        "loop" => "a loop",
        "condition" => "a condition",
        "return" => "a return statement",
        "call" => "a call",
        "comprehension" => "a comprehension",
        _ => "a plain statement",
    };
    let words: Vec<&str> = match &condition.value {
        serde_json::Value::Array(items) => {
            items.iter().filter_map(|v| v.as_str()).map(one).collect()
        }
        serde_json::Value::String(c) => vec![one(c)],
        _ => Vec::new(),
    };
    if words.is_empty() {
        String::new()
    } else {
        format!(" in {}", words.join(" or "))
    }
}

fn operator_names(cluster: &Cluster) -> String {
    let names: Vec<&str> = cluster
        .operators
        .iter()
        .filter_map(|id| operators::by_id(id).map(|op| op.name))
        .collect();
    if names.is_empty() {
        format!("a {} bug no operator reproduces", cluster.family)
    } else {
        names.join(" / ")
    }
}

fn mode_words(mode: FailureMode, within: u32, median: Option<u32>) -> String {
    let rank = median.map_or("unranked".to_string(), |r| format!("median rank {r}"));
    match mode {
        FailureMode::NotLocalized => format!(
            "did not localize the bug: its function was not among the top {within} suspects ({rank})"
        ),
        FailureMode::WrongEdit => format!(
            "found the buggy function ({rank}) but no edit it tried made the failing tests pass"
        ),
        FailureMode::BrokePassing => {
            "submitted an edit that broke tests that passed before".to_string()
        }
        FailureMode::Timeout => "ran out of its time or turn budget".to_string(),
        FailureMode::Resolved => "resolved the task".to_string(),
    }
}

fn localize_words(mode: FailureMode, within: u32, median: Option<u32>, kinds: &str) -> String {
    let rank = median.map_or("unranked".to_string(), |r| format!("median rank {r}"));
    match mode {
        FailureMode::NotLocalized => format!(
            "The test spectrum and the tracebacks rank the buggy function low ({rank}): look past \
             the top {within} suspects and follow the failing assertion's values back through the \
             functions that compute them."
        ),
        FailureMode::WrongEdit => format!(
            "Localization finds the function ({rank}); the edit is what goes wrong: check each \
             `{kinds}` in it against what the failing test expects."
        ),
        FailureMode::BrokePassing => "The first plausible edit breaks tests that passed before: \
                                      run the tests that passed as well as the failing ones \
                                      before submitting."
            .to_string(),
        FailureMode::Timeout | FailureMode::Resolved => "Start from the innermost traceback frame \
                                                         inside the repository and test one \
                                                         edit at a time."
            .to_string(),
    }
}

fn repair_words(family: &str) -> &'static str {
    match family {
        "operator" => {
            "put the original operator back (`<`/`<=`, `==`/`!=`, `+`/`-`, `and`/`or`, a dropped or added `not`)"
        }
        "constant" => {
            "restore the constant: a bound or literal one off in either direction, a True/False/None swap, a changed default"
        }
        "control-flow" => {
            "restore the control flow: the dropped condition or loop, the swapped branches, the removed return value"
        }
        "statement" => {
            "restore the removed or reordered statement: an assignment, a call, the order of two statements"
        }
        "data-flow" => "use the intended value: the right variable, the arguments in their order",
        "class" => "restore the super() call or the base class",
        _ => "undo the change at the site",
    }
}

/// Cuts `text` to at most `max` characters, at a word boundary, with an ellipsis.
pub(crate) fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    cut.push('…');
    cut
}

/// What a Skill needs besides its cluster.
pub struct Context<'a> {
    pub analysed: &'a [Analysed],
    pub round: u32,
    pub seed: u64,
    pub localized_within: u32,
}

/// The Skill of a cluster, with evidence over every analysed trace whose bug it covers.
pub fn skill(cluster: &Cluster, cx: &Context) -> Skill {
    let name = name(cluster);
    let covered: Vec<&Analysed> = cx
        .analysed
        .iter()
        .enumerate()
        .filter(|(i, a)| cluster.members.binary_search(i).is_ok() || covers(cluster, a))
        .map(|(_, a)| a)
        .collect();
    let failed = covered.iter().filter(|a| a.mode.failed()).count();
    let support = covered.len();
    let failure_rate = failed as f64 / support.max(1) as f64;
    let mut ranks: Vec<u32> = cluster
        .members
        .iter()
        .filter_map(|&i| cx.analysed[i].function_rank)
        .collect();
    let median = median_rank(&mut ranks);
    let kinds = condition_words(cluster, "node_kind").unwrap_or_else(|| "node".into());
    let context = construct_words(cluster);
    let ops = operator_names(cluster);
    let description = clip(
        format!(
            "{} at `{kinds}`{context}. The solver failed {failed} of {support} such tasks \
             ({:.0}%); in {} of them it {}. Repair: {}.",
            capitalise(&ops),
            100.0 * failure_rate,
            cluster.members.len(),
            mode_words(cluster.mode, cx.localized_within, median),
            repair_words(cluster.family),
        ),
        MAX_DESCRIPTION,
    );
    let ids: Vec<String> = cluster.operators.iter().map(|s| s.to_string()).collect();
    let operations = vec![
        Operation {
            phase: Phase::Arise,
            text: format!(
                "{}: the bug sits at a `{kinds}` node{context}.",
                capitalise(&ops)
            ),
            operators: ids,
        },
        Operation {
            phase: Phase::Localize,
            text: localize_words(cluster.mode, cx.localized_within, median, &kinds),
            operators: Vec::new(),
        },
        Operation {
            phase: Phase::Repair,
            text: format!(
                "{}. Then run the failing tests and the ones that passed before.",
                capitalise(repair_words(cluster.family))
            ),
            operators: Vec::new(),
        },
    ];
    let trace_ids = examples(cluster, &name, cx);
    Skill {
        schema: Skill::tag(),
        skill_id: skill_id(&name),
        name,
        description,
        conditions: cluster.conditions.clone(),
        operations,
        evidence: Evidence {
            support: support as u32,
            failure_rate,
            trace_ids,
        },
        round: cx.round,
        extra: Default::default(),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Up to [`EXAMPLES`] member trace ids, drawn with the seed, in sorted order.
fn examples(cluster: &Cluster, name: &str, cx: &Context) -> Vec<String> {
    let mut ids: Vec<&str> = cluster
        .members
        .iter()
        .map(|&i| cx.analysed[i].trace_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let salt = Sha256::digest(name.as_bytes());
    let mut rng =
        ChaCha8Rng::seed_from_u64(cx.seed ^ u64::from_le_bytes(salt[..8].try_into().unwrap()));
    // A partial Fisher-Yates shuffle picks the examples.
    let take = ids.len().min(EXAMPLES);
    for i in 0..take {
        let j = i + (rng.next_u64() % (ids.len() - i) as u64) as usize;
        ids.swap(i, j);
    }
    let mut picked: Vec<String> = ids[..take].iter().map(|s| s.to_string()).collect();
    picked.sort();
    picked
}

/// `SKILL.md` of the Agent Skills format: YAML front matter with `name` and `description`,
/// then the conditions, operations and evidence.
pub fn skill_md(skill: &Skill) -> String {
    let mut md = format!(
        "---\nname: {}\ndescription: {}\n---\n\n# {}\n\n{}\n\n## Where it applies\n\n",
        skill.name,
        serde_json::to_string(&skill.description).unwrap_or_default(),
        skill.name,
        skill.description
    );
    if skill.conditions.is_empty() {
        md.push_str("Anywhere in the package sources.\n");
    }
    for c in &skill.conditions {
        let op = serde_json::to_value(c.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        md.push_str(&format!("- `{}` {op} `{}`\n", c.feature, c.value));
    }
    for (phase, title) in [
        (Phase::Arise, "How the bug arises"),
        (Phase::Localize, "How to localize it"),
        (Phase::Repair, "How to repair it"),
    ] {
        for op in skill.operations.iter().filter(|o| o.phase == phase) {
            md.push_str(&format!("\n## {title}\n\n{}\n", op.text));
            if !op.operators.is_empty() {
                md.push_str(&format!(
                    "\nBug operators: `{}`\n",
                    op.operators.join("`, `")
                ));
            }
        }
    }
    md.push_str(&format!(
        "\n## Evidence\n\n- support: {} traces\n- solver failure rate: {:.2}\n- round: {}\n",
        skill.evidence.support, skill.evidence.failure_rate, skill.round
    ));
    if !skill.evidence.trace_ids.is_empty() {
        md.push_str(&format!(
            "- example traces: `{}`\n",
            skill.evidence.trace_ids.join("`, `")
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Condition, ConditionOp};
    use serde_json::json;

    fn cluster(construct: &str, mode: FailureMode) -> Cluster {
        Cluster {
            level: Level::OperatorInContext,
            mode,
            operators: ["assign-remove"].into_iter().collect(),
            family: "statement",
            conditions: vec![Condition {
                feature: "construct".into(),
                op: ConditionOp::Eq,
                value: json!(construct),
            }],
            members: vec![0],
        }
    }

    #[test]
    fn names_say_the_pattern_where_it_sits_and_the_failure_mode() {
        assert_eq!(
            name(&cluster("loop", FailureMode::WrongEdit)),
            "assign-remove-in-loop-wrong-edit"
        );
        assert_eq!(
            name(&cluster("none", FailureMode::NotLocalized)),
            "assign-remove-in-plain-statement-not-localized"
        );
    }
}
