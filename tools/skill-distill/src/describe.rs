//! `--describe openai:URL#MODEL`: a served model writes each new skill's description from its
//! evidence (the template description is its draft). The model sees the skill's pattern,
//! conditions, operations and evidence, never a task's gold patch.

use anyhow::{Context as _, Result, bail};
use chat::ChatClient;
use schemas::Skill;
use serde_json::{Value, json};

use crate::render::{MAX_DESCRIPTION, clip};

const SYSTEM: &str = "You write the description of an agent skill for a coding agent that \
repairs bugs in Python repositories. The skill was distilled from the agent's failed repair \
attempts. Say in plain prose what goes wrong (which kind of bug, where it sits, why the agent \
missed it) and how to repair it. Answer with the description only: at most 600 characters, \
no heading, no list, no markdown.";

/// What the model is told about `skill`.
fn prompt(skill: &Skill) -> String {
    let about = json!({
        "name": skill.name,
        "draft_description": skill.description,
        "conditions": skill.conditions,
        "operations": skill.operations,
        "evidence": {
            "failed_attempts": skill.evidence.support,
            "failure_rate": skill.evidence.failure_rate,
        },
    });
    format!(
        "Write the description of this skill.\n\n{}",
        serde_json::to_string_pretty(&about).unwrap_or_default()
    )
}

/// The reply's text as a description: fences, quotes and surrounding blank space removed,
/// whitespace runs made single spaces, clipped to the Agent Skills limit.
pub fn clean(reply: &str) -> String {
    let mut text = reply.trim();
    if let Some(inner) = text.strip_prefix("```") {
        let inner = inner.split_once('\n').map_or("", |(_, rest)| rest);
        text = inner.trim_end().strip_suffix("```").unwrap_or(inner).trim();
    }
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            text = &text[1..text.len() - 1];
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    clip(words.join(" "), MAX_DESCRIPTION)
}

/// Replaces the description of every skill in `skills` with the model's; returns the tokens
/// spent. A request that fails after its retries, or an empty reply, fails the stage.
pub fn describe(skills: &mut [Skill], client: &ChatClient, seed: u64) -> Result<u64> {
    let mut tokens = 0;
    let none = Value::Null;
    for skill in skills.iter_mut() {
        let messages = [
            json!({"role": "system", "content": SYSTEM}),
            json!({"role": "user", "content": prompt(skill)}),
        ];
        let reply = client
            .complete(&messages, &none, 0.0, 1.0, seed)
            .with_context(|| format!("describing skill {}", skill.name))?;
        tokens += reply.tokens;
        let description = clean(&reply.content);
        if description.is_empty() {
            bail!(
                "describing skill {}: the model's reply has no text (model {})",
                skill.name,
                client.model
            );
        }
        skill.description = description;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_cleaned_into_one_paragraph_within_the_limit() {
        assert_eq!(
            clean("  \"Off-by-one\n  in a loop.\"  "),
            "Off-by-one in a loop."
        );
        assert_eq!(
            clean("```text\nSwapped < and <=.\nRepair: swap back.\n```"),
            "Swapped < and <=. Repair: swap back."
        );
        assert_eq!(clean("\n\n"), "");
        let long = "word ".repeat(400);
        let clipped = clean(&long);
        assert!(clipped.chars().count() <= MAX_DESCRIPTION);
        assert!(clipped.ends_with('…'));
    }
}
