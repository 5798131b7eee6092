//! Failed traces grouped into skills by (repair pattern × code context × failure mode), with
//! back-off: a group too small at one level pools into the next, coarser one —
//! (operator, construct) → operator → operator family — and what is still too small at the
//! end is left uncovered.

use std::collections::{BTreeMap, BTreeSet};

use schemas::{Condition, ConditionOp};
use serde_json::{Value, json};

use crate::analysis::{Analysed, FailureMode};

/// How fine a cluster's pattern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One operator in one construct.
    OperatorInContext,
    /// One operator anywhere.
    Operator,
    /// One operator family anywhere.
    Family,
}

/// Failed traces of one failure mode that share a pattern.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub level: Level,
    pub mode: FailureMode,
    /// Operator ids (one, or several after merging near-duplicates; none for bugs no
    /// operator reproduces).
    pub operators: BTreeSet<&'static str>,
    /// Operator family, or `other`.
    pub family: &'static str,
    pub conditions: Vec<Condition>,
    /// Indices of the member traces in the analysed list.
    pub members: Vec<usize>,
}

fn family_of(a: &Analysed) -> &'static str {
    a.operator.map_or("other", |op| op.family)
}

/// The key of `a` at `level`, or `None` when `a` lacks what the level needs.
fn key(a: &Analysed, level: Level) -> Option<(String, String)> {
    match level {
        Level::OperatorInContext => Some((
            a.operator?.id.to_string(),
            a.site.as_ref()?.construct.as_str().to_string(),
        )),
        Level::Operator => Some((a.operator?.id.to_string(), String::new())),
        Level::Family => Some((family_of(a).to_string(), String::new())),
    }
}

/// Clusters of at least `min_support` failed traces each.
pub fn cluster(analysed: &[Analysed], min_support: usize) -> Vec<Cluster> {
    let mut left: Vec<usize> = (0..analysed.len())
        .filter(|&i| analysed[i].mode.failed())
        .collect();
    let mut clusters = Vec::new();
    for level in [Level::OperatorInContext, Level::Operator, Level::Family] {
        let mut groups: BTreeMap<(FailureMode, String, String), Vec<usize>> = BTreeMap::new();
        let mut rest = Vec::new();
        for i in left {
            match key(&analysed[i], level) {
                Some((pattern, context)) => groups
                    .entry((analysed[i].mode, pattern, context))
                    .or_default()
                    .push(i),
                None => rest.push(i),
            }
        }
        for ((mode, _, _), members) in groups {
            if members.len() >= min_support.max(1) {
                clusters.push(make(analysed, level, mode, members));
            } else {
                rest.extend(members);
            }
        }
        rest.sort_unstable();
        left = rest;
    }
    merge_near_duplicates(clusters)
}

fn make(analysed: &[Analysed], level: Level, mode: FailureMode, members: Vec<usize>) -> Cluster {
    let first = &analysed[members[0]];
    let operators: BTreeSet<&'static str> = members
        .iter()
        .filter_map(|&i| analysed[i].operator.map(|op| op.id))
        .collect();
    Cluster {
        level,
        mode,
        operators,
        family: family_of(first),
        conditions: conditions(members.iter().map(|&i| &analysed[i])),
        members,
    }
}

/// What holds at every member's site: its node kinds, its constructs, at most its depth, and
/// — when every member's task recorded it — that tests reach it.
fn conditions<'a>(members: impl Iterator<Item = &'a Analysed>) -> Vec<Condition> {
    let sites: Vec<_> = members.filter_map(|a| a.site.as_ref()).collect();
    if sites.is_empty() {
        return Vec::new();
    }
    let one_or_any = |feature: &str, values: BTreeSet<&str>| {
        let (op, value) = if values.len() == 1 {
            (ConditionOp::Eq, json!(values.first()))
        } else {
            (ConditionOp::In, json!(values))
        };
        Condition {
            feature: feature.into(),
            op,
            value,
        }
    };
    let mut conditions = vec![
        one_or_any(
            "node_kind",
            sites.iter().map(|s| s.node_kind.as_str()).collect(),
        ),
        one_or_any(
            "construct",
            sites.iter().map(|s| s.construct.as_str()).collect(),
        ),
        Condition {
            feature: "depth".into(),
            op: ConditionOp::Le,
            value: json!(sites.iter().map(|s| s.depth).max()),
        },
    ];
    if sites
        .iter()
        .all(|s| s.tests_reaching.is_some_and(|n| n > 0))
    {
        conditions.push(Condition {
            feature: "tests_reaching".into(),
            op: ConditionOp::Ge,
            value: json!(1),
        });
    }
    conditions
}

/// Clusters of the same failure mode whose conditions are identical describe the same
/// weakness reached through different operators: one cluster with the union of operators.
pub fn merge_near_duplicates(clusters: Vec<Cluster>) -> Vec<Cluster> {
    let mut merged: BTreeMap<(FailureMode, String), Cluster> = BTreeMap::new();
    let mut order = Vec::new();
    for cluster in clusters {
        // Conditions as canonical JSON: equal text, equal conditions.
        let conditions = serde_json::to_string(&cluster.conditions).unwrap_or_default();
        let key = (cluster.mode, conditions);
        match merged.get_mut(&key) {
            Some(into) if !cluster.conditions.is_empty() => {
                into.operators.extend(&cluster.operators);
                into.members.extend(&cluster.members);
                into.members.sort_unstable();
                into.level = into.level.max(cluster.level);
                if into.family != cluster.family {
                    into.family = "mixed";
                }
            }
            _ => {
                order.push(key.clone());
                merged.entry(key).or_insert(cluster);
            }
        }
    }
    let mut out: Vec<Cluster> = order
        .into_iter()
        .filter_map(|key| merged.remove(&key))
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.members.len()));
    out
}

/// Whether `a`'s bug falls under a cluster: one of its operators (or no operator for an
/// operator-less cluster) at a site where its conditions hold.
pub fn covers(cluster: &Cluster, a: &Analysed) -> bool {
    let operator_fits = match a.operator {
        Some(op) => cluster.operators.contains(op.id),
        None => cluster.operators.is_empty(),
    };
    operator_fits
        && match &a.site {
            Some(site) => pyast::condition::all_hold(&cluster.conditions, site),
            None => cluster.conditions.is_empty(),
        }
}

/// The median of some ranks, as text (`unranked` when none).
pub fn median_rank(ranks: &mut [u32]) -> Option<u32> {
    if ranks.is_empty() {
        return None;
    }
    ranks.sort_unstable();
    Some(ranks[ranks.len() / 2])
}

/// The value of a condition, as words.
pub fn value_words(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(value_words)
            .collect::<Vec<_>>()
            .join(" or "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyast::{Construct, Features, operators};

    fn analysed(
        id: &str,
        operator: &str,
        kind: &str,
        construct: Construct,
        mode: FailureMode,
    ) -> Analysed {
        Analysed {
            trace_id: id.into(),
            instance_id: id.into(),
            mode,
            operator: operators::by_id(operator),
            site: Some(Features {
                node_kind: kind.into(),
                line: 1,
                end_line: 1,
                construct,
                operand_kinds: Vec::new(),
                depth: 1,
                function: None,
                function_lines: Some(5),
                statement_line: 1,
                tests_reaching: None,
            }),
            function_rank: Some(1),
        }
    }

    #[test]
    fn tests_reaching_becomes_a_condition_only_when_every_member_recorded_it() {
        let reached = |id: &str, tests: Option<usize>| {
            let mut a = analysed(
                id,
                "cmp-swap",
                "comparison_operator",
                Construct::Condition,
                FailureMode::WrongEdit,
            );
            a.site.as_mut().unwrap().tests_reaching = tests;
            a
        };
        let has_it = |members: &[Analysed]| {
            conditions(members.iter())
                .iter()
                .any(|c| c.feature == "tests_reaching" && c.op == ConditionOp::Ge)
        };
        assert!(has_it(&[reached("a", Some(3)), reached("b", Some(1))]));
        assert!(!has_it(&[reached("a", Some(3)), reached("b", None)]));
        assert!(!has_it(&[reached("a", Some(3)), reached("b", Some(0))]));
        for condition in conditions([reached("a", Some(2))].iter()) {
            pyast::condition::check(&condition).unwrap();
        }
    }

    #[test]
    fn small_groups_back_off_to_coarser_patterns_and_the_rest_is_uncovered() {
        use Construct::*;
        use FailureMode::*;
        let traces = vec![
            analysed("a", "cmp-swap", "comparison_operator", Condition, WrongEdit),
            analysed("b", "cmp-swap", "comparison_operator", Condition, WrongEdit),
            // One in a loop, one in a return: too few for their own contexts, enough together.
            analysed("c", "cmp-swap", "comparison_operator", Loop, WrongEdit),
            analysed("d", "cmp-swap", "comparison_operator", Return, WrongEdit),
            // A lone failure of another mode stays uncovered; a resolved trace is no member.
            analysed(
                "e",
                "cmp-swap",
                "comparison_operator",
                Condition,
                NotLocalized,
            ),
            analysed("f", "cmp-swap", "comparison_operator", Condition, Resolved),
        ];
        let clusters = cluster(&traces, 2);
        let members: Vec<(Level, Vec<usize>)> = clusters
            .iter()
            .map(|c| (c.level, c.members.clone()))
            .collect();
        assert_eq!(
            members,
            [
                (Level::OperatorInContext, vec![0, 1]),
                (Level::Operator, vec![2, 3])
            ]
        );
        // The operator-level cluster matches only the contexts it saw.
        assert!(covers(&clusters[1], &traces[2]));
        assert!(!covers(&clusters[1], &traces[0]));
        assert!(covers(&clusters[0], &traces[5]));
    }

    #[test]
    fn near_duplicates_merge_into_one_cluster_with_both_operators() {
        use FailureMode::*;
        // Two operators that break the same kind of site and fail the same way.
        let traces = vec![
            analysed("a", "off-by-one", "integer", Construct::Call, WrongEdit),
            analysed("b", "off-by-one", "integer", Construct::Call, WrongEdit),
            analysed("c", "const-change", "integer", Construct::Call, WrongEdit),
            analysed("d", "const-change", "integer", Construct::Call, WrongEdit),
            analysed(
                "e",
                "const-change",
                "integer",
                Construct::Call,
                NotLocalized,
            ),
            analysed(
                "f",
                "const-change",
                "integer",
                Construct::Call,
                NotLocalized,
            ),
        ];
        let clusters = cluster(&traces, 2);
        assert_eq!(clusters.len(), 2, "{clusters:?}");
        let merged = &clusters[0];
        assert_eq!(merged.mode, WrongEdit);
        assert_eq!(merged.members, [0, 1, 2, 3]);
        assert_eq!(
            merged.operators.iter().copied().collect::<Vec<_>>(),
            ["const-change", "off-by-one"]
        );
        // Another failure mode is another weakness, even at the same sites.
        assert_eq!(clusters[1].members, [4, 5]);
    }
}
