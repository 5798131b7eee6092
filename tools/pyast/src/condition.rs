//! Skill conditions over site [`Features`]: which features a condition may name, whether a
//! condition is well-formed, and whether it holds at a site.
//!
//! A string feature (`node_kind`, `construct`) supports `eq`, `ne`, `in`, `not_in`; a number
//! (`depth`, `function_lines`) also `lt`, `le`, `gt`, `ge`; the list `operand_kinds` reads `eq`
//! as "contains", `ne` as "does not contain", `in` as "shares an element with" and `not_in` as
//! "shares none with".

use std::path::Path;

use schemas::{Condition, ConditionOp, Skill};
use serde_json::Value;
use stage_io::BadInput;
use stage_io::input::Inputs;

use crate::Features;

enum Kind {
    Text,
    Number,
    List,
}

/// The features a condition may name, with what each one is.
pub const FEATURES: &[(&str, &str)] = &[
    (
        "node_kind",
        "tree-sitter kind of the edited node, e.g. comparison_operator",
    ),
    (
        "construct",
        "nearest enclosing construct: loop, condition, return, call, comprehension, none",
    ),
    ("operand_kinds", "kinds of the node's named children"),
    (
        "depth",
        "enclosing compound statements inside the function, the node included",
    ),
    (
        "function_lines",
        "lines of the enclosing function (0 outside one)",
    ),
    (
        "tests_reaching",
        "tests that execute the site, from the validate stage's line map (a site without one \
         passes every condition on it)",
    ),
];

fn kind_of(feature: &str) -> Option<Kind> {
    Some(match feature {
        "node_kind" | "construct" => Kind::Text,
        "depth" | "function_lines" | "tests_reaching" => Kind::Number,
        "operand_kinds" => Kind::List,
        _ => return None,
    })
}

/// Why a condition cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("unknown feature `{0}` (known: {known})", known = known_features())]
    UnknownFeature(String),
    #[error("`{op}` on feature `{feature}` needs {wants}")]
    BadValue {
        feature: String,
        op: String,
        wants: &'static str,
    },
}

fn known_features() -> String {
    FEATURES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn op_name(op: ConditionOp) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Checks that `condition` names a known feature with an operator and value that fit it.
pub fn check(condition: &Condition) -> Result<(), ConditionError> {
    let kind = kind_of(&condition.feature)
        .ok_or_else(|| ConditionError::UnknownFeature(condition.feature.clone()))?;
    let bad = |wants| ConditionError::BadValue {
        feature: condition.feature.clone(),
        op: op_name(condition.op),
        wants,
    };
    let set = matches!(condition.op, ConditionOp::In | ConditionOp::NotIn);
    let order = matches!(
        condition.op,
        ConditionOp::Lt | ConditionOp::Le | ConditionOp::Gt | ConditionOp::Ge
    );
    let all = |pred: fn(&Value) -> bool| {
        condition
            .value
            .as_array()
            .is_some_and(|items| items.iter().all(pred))
    };
    let ok = match kind {
        Kind::Text | Kind::List if order => return Err(bad("a number feature")),
        Kind::Text | Kind::List if set => all(Value::is_string),
        Kind::Text | Kind::List => condition.value.is_string(),
        Kind::Number if set => all(Value::is_number),
        Kind::Number => condition.value.is_number(),
    };
    if ok {
        Ok(())
    } else if set {
        Err(bad(match kind {
            Kind::Number => "an array of numbers",
            _ => "an array of strings",
        }))
    } else {
        Err(bad(match kind {
            Kind::Number => "a number",
            _ => "a string",
        }))
    }
}

/// Checks every condition of `skill` and the bug operator ids its operations name; the error
/// names the field (`conditions[1]`, `operations[0].operators`) and what is wrong.
pub fn check_skill(skill: &Skill) -> Result<(), (String, String)> {
    for (i, condition) in skill.conditions.iter().enumerate() {
        check(condition).map_err(|err| (format!("conditions[{i}]"), err.to_string()))?;
    }
    for (i, op) in skill.operations.iter().enumerate() {
        if let Some(id) = op
            .operators
            .iter()
            .find(|id| crate::operators::by_id(id).is_none())
        {
            return Err((
                format!("operations[{i}].operators"),
                format!("unknown bug operator `{id}`"),
            ));
        }
    }
    Ok(())
}

/// The skills of a JSONL file, each checked with [`check_skill`]; a bad one is a
/// [`BadInput`] naming the file, line and field.
pub fn read_skills(path: &Path) -> Result<Vec<Skill>, BadInput> {
    let mut skills = Vec::new();
    for line in Inputs::open(&[path.to_path_buf()])?.lines() {
        let line = line?;
        let skill: Skill = line.record()?;
        check_skill(&skill).map_err(|(field, message)| line.error(Some(field), message))?;
        skills.push(skill);
    }
    Ok(skills)
}

/// Whether `condition` holds for `features`; a condition that fails [`check`] never holds.
pub fn holds(condition: &Condition, features: &Features) -> bool {
    if check(condition).is_err() {
        return false;
    }
    let value = &condition.value;
    let strings = || -> Vec<&str> {
        value
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let text = |actual: &str| match condition.op {
        ConditionOp::Eq => value.as_str() == Some(actual),
        ConditionOp::Ne => value.as_str() != Some(actual),
        ConditionOp::In => strings().contains(&actual),
        ConditionOp::NotIn => !strings().contains(&actual),
        _ => false,
    };
    let number = |actual: f64| {
        let wanted = value.as_f64().unwrap_or(f64::NAN);
        let numbers = || -> Vec<f64> {
            value
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        match condition.op {
            ConditionOp::Eq => actual == wanted,
            ConditionOp::Ne => actual != wanted,
            ConditionOp::Lt => actual < wanted,
            ConditionOp::Le => actual <= wanted,
            ConditionOp::Gt => actual > wanted,
            ConditionOp::Ge => actual >= wanted,
            ConditionOp::In => numbers().contains(&actual),
            ConditionOp::NotIn => !numbers().contains(&actual),
        }
    };
    match condition.feature.as_str() {
        "node_kind" => text(&features.node_kind),
        "construct" => text(features.construct.as_str()),
        "depth" => number(features.depth as f64),
        "function_lines" => number(features.function_lines.unwrap_or(0) as f64),
        "tests_reaching" => features
            .tests_reaching
            .is_none_or(|tests| number(tests as f64)),
        "operand_kinds" => {
            let kinds = &features.operand_kinds;
            match condition.op {
                ConditionOp::Eq => value.as_str().is_some_and(|v| kinds.iter().any(|k| k == v)),
                ConditionOp::Ne => !value.as_str().is_some_and(|v| kinds.iter().any(|k| k == v)),
                ConditionOp::In => kinds.iter().any(|k| strings().contains(&k.as_str())),
                ConditionOp::NotIn => !kinds.iter().any(|k| strings().contains(&k.as_str())),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether every condition holds.
pub fn all_hold(conditions: &[Condition], features: &Features) -> bool {
    conditions.iter().all(|c| holds(c, features))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Module, operators};
    use serde_json::json;

    fn cond(feature: &str, op: ConditionOp, value: Value) -> Condition {
        Condition {
            feature: feature.into(),
            op,
            value,
        }
    }

    /// The features of every cmp-swap site of a small module, by line.
    fn comparison_sites() -> Vec<Features> {
        let source = "\
def clip(xs, limit):
    out = []
    for x in xs:
        if x > limit:
            out.append(limit)
    return len(out) == 0
";
        let module = Module::parse(source).unwrap();
        module
            .sites(&[operators::by_id("cmp-swap").unwrap()])
            .iter()
            .map(|s| s.features(&module))
            .collect()
    }

    #[test]
    fn conditions_match_hand_checked_sites() {
        let sites = comparison_sites();
        assert_eq!(sites.len(), 2);
        let (guard, ret) = (&sites[0], &sites[1]);
        assert_eq!((guard.line, ret.line), (4, 6));

        let in_condition = cond("construct", ConditionOp::Eq, json!("condition"));
        assert!(holds(&in_condition, guard));
        assert!(!holds(&in_condition, ret));
        // The guard sits in a `for` and an `if`; the return in neither.
        let nested = cond("depth", ConditionOp::Ge, json!(2));
        assert!(holds(&nested, guard));
        assert!(!holds(&nested, ret));
        let compares_call = cond("operand_kinds", ConditionOp::Eq, json!("call"));
        assert!(!holds(&compares_call, guard));
        assert!(holds(&compares_call, ret));
        let kinds = cond(
            "node_kind",
            ConditionOp::In,
            json!(["comparison_operator", "binary_operator"]),
        );
        assert!(sites.iter().all(|s| holds(&kinds, s)));
        assert!(!all_hold(&[kinds.clone(), in_condition.clone()], ret));
        assert!(all_hold(&[kinds, in_condition], guard));
    }

    #[test]
    fn tests_reaching_holds_on_the_count_and_passes_without_a_line_map() {
        let mut guard = comparison_sites().remove(0);
        let reached = cond("tests_reaching", ConditionOp::Ge, json!(1));
        assert!(holds(&reached, &guard), "no line map: no evidence against");
        guard.tests_reaching = Some(0);
        assert!(!holds(&reached, &guard));
        guard.tests_reaching = Some(3);
        assert!(holds(&reached, &guard));
        assert!(!holds(
            &cond("tests_reaching", ConditionOp::Lt, json!(3)),
            &guard
        ));
    }

    #[test]
    fn the_statement_line_of_a_site_inside_a_multi_line_statement_is_its_first() {
        let source = "def f(a, b):\n    return max(\n        a,\n        b < 2,\n    )\n";
        let module = Module::parse(source).unwrap();
        let sites = module.sites(&[operators::by_id("cmp-swap").unwrap()]);
        let features = sites[0].features(&module);
        assert_eq!((features.line, features.statement_line), (4, 2));
    }

    #[test]
    fn unknown_features_and_misfit_values_are_errors() {
        assert_eq!(
            check(&cond("colour", ConditionOp::Eq, json!("red"))),
            Err(ConditionError::UnknownFeature("colour".into()))
        );
        let text_order = check(&cond("construct", ConditionOp::Lt, json!(3))).unwrap_err();
        assert!(
            text_order
                .to_string()
                .contains("`lt` on feature `construct`"),
            "{text_order}"
        );
        assert!(check(&cond("depth", ConditionOp::In, json!(["a"]))).is_err());
        assert!(check(&cond("node_kind", ConditionOp::In, json!("call"))).is_err());
        assert!(check(&cond("depth", ConditionOp::Le, json!(3))).is_ok());
        // An ill-formed condition never holds, so a bad skill matches nothing.
        assert!(!holds(
            &cond("colour", ConditionOp::Ne, json!("red")),
            &comparison_sites()[0]
        ));
    }
}
