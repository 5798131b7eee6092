//! Operator weights: how often the `random` strategy draws each operator when the
//! uniform mix is not wanted (the evaluation set's natural bug mix,
//! `scripts/eval-weights.toml`).
//!
//! The file is TOML with an `[operators]` table of `operator-id = weight`; a weight is a
//! number >= 0, an operator left out weighs 0, and at least one weight is positive. Other
//! tables and keys are documentation (where the numbers come from) and are not read.
//!
//! ```
//! let weights = task_gen::OperatorWeights::parse(
//!     "[operators]\nvar-misuse = 0.7\ncmp-swap = 0.3\n",
//!     "mix.toml",
//! )
//! .unwrap();
//! assert_eq!(weights.weight("var-misuse"), 0.7);
//! assert_eq!(weights.weight("if-invert"), 0.0);
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use pyast::operators;
use serde::Deserialize;
use stage_io::BadInput;
use toml::Spanned;

/// A weight per operator id; operators not named weigh 0.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorWeights {
    weights: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct WeightsFile {
    operators: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> u64 {
    text[..at.min(text.len())].matches('\n').count() as u64 + 1
}

impl OperatorWeights {
    /// Reads and checks the weights file at `path`; every problem is [`BadInput`]
    /// naming the file, the line and the field.
    pub fn read(path: &Path) -> Result<OperatorWeights, BadInput> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| {
            BadInput::new(format!("cannot read the operator weights: {err}"))
                .in_source(source.clone())
        })?;
        OperatorWeights::parse(&text, &source)
    }

    /// Parses weights from TOML `text`; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<OperatorWeights, BadInput> {
        let bad = |at: Option<usize>, field: Option<String>, message: String| {
            let err = BadInput::new(message).in_source(source).in_field(field);
            match at {
                Some(at) => err.at_line(line_of(text, at)),
                None => err,
            }
        };
        let file: WeightsFile = toml::from_str(text).map_err(|err| {
            bad(
                err.span().map(|span| span.start),
                None,
                err.message().trim_end().to_string(),
            )
        })?;
        let Some(table) = file.operators else {
            return Err(bad(
                None,
                Some("operators".into()),
                "no [operators] table of `operator-id = weight`".into(),
            ));
        };
        let mut weights = BTreeMap::new();
        for (id, value) in table {
            let field = Some(format!("operators.{}", id.get_ref()));
            if operators::by_id(id.get_ref()).is_none() {
                let known: Vec<&str> = operators::ALL.iter().map(|op| op.id).collect();
                return Err(bad(
                    Some(id.span().start),
                    field,
                    format!("unknown operator; known operators: {}", known.join(", ")),
                ));
            }
            let weight = match value.get_ref() {
                toml::Value::Float(w) => *w,
                toml::Value::Integer(w) => *w as f64,
                other => {
                    return Err(bad(
                        Some(value.span().start),
                        field,
                        format!("expected a number >= 0, found a {}", other.type_str()),
                    ));
                }
            };
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(bad(
                    Some(value.span().start),
                    field,
                    format!("expected a number >= 0, found {weight}"),
                ));
            }
            weights.insert(id.into_inner(), weight);
        }
        if !weights.values().any(|w| *w > 0.0) {
            return Err(bad(
                None,
                Some("operators".into()),
                "every weight is 0: no operator could be drawn".into(),
            ));
        }
        Ok(OperatorWeights { weights })
    }

    /// The weight of operator `id` (0 when the file does not name it).
    pub fn weight(&self, id: &str) -> f64 {
        self.weights.get(id).copied().unwrap_or(0.0)
    }

    /// The operator ids with a positive weight, in the order of the operator table.
    pub fn drawn(&self) -> Vec<&'static str> {
        operators::ALL
            .iter()
            .map(|op| op.id)
            .filter(|id| self.weight(id) > 0.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OperatorWeights, BadInput> {
        OperatorWeights::parse(text, "mix.toml")
    }

    #[test]
    fn unlisted_operators_weigh_nothing_and_integers_are_weights() {
        let w = parse("# a mix\n[source]\nname = 'x'\n[operators]\ncmp-swap = 2\nbool-swap = 0.5\nif-invert = 0\n").unwrap();
        assert_eq!(w.weight("cmp-swap"), 2.0);
        assert_eq!(w.weight("bool-swap"), 0.5);
        assert_eq!(w.weight("var-misuse"), 0.0);
        assert_eq!(w.drawn(), ["cmp-swap", "bool-swap"]);
    }

    #[test]
    fn bad_weights_name_the_file_line_and_field() {
        let cases = [
            (
                "[operators]\ncmp-swap = 1\nno-such-op = 1\n",
                "mix.toml:3: field operators.no-such-op: unknown operator",
            ),
            (
                "[operators]\ncmp-swap = -1\n",
                "mix.toml:2: field operators.cmp-swap: expected a number >= 0, found -1",
            ),
            (
                "[operators]\n\ncmp-swap = 'high'\n",
                "mix.toml:3: field operators.cmp-swap: expected a number >= 0, found a string",
            ),
            (
                "[operators]\ncmp-swap = nan\n",
                "mix.toml:2: field operators.cmp-swap: expected a number >= 0, found NaN",
            ),
            (
                "[operators]\ncmp-swap = 0\n",
                "mix.toml: field operators: every weight is 0",
            ),
            (
                "[operator]\ncmp-swap = 1\n",
                "mix.toml: field operators: no [operators] table",
            ),
            ("x = 1\n[operators\n", "mix.toml:2: "),
            ("[operators]\ncmp-swap = 1\ncmp-swap = 2\n", "mix.toml:3: "),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
