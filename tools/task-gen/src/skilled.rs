//! `--strategy skills`: candidates where the solver is weak. Each draw picks a skill (in
//! proportion to the policy's weight for it, which grows with the solver's failure odds on
//! it), one of the skill's bug operators, the construct of the site, a repository, and one
//! edit among the sites of that operator where all the skill's conditions hold.

use std::collections::{BTreeMap, HashMap, HashSet};

use pyast::operators::{self, Operator};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use schemas::{Phase, Skill, Task};
use stage_io::BadInput;

use crate::policy::{Choices, Policy, evidence_logit};
use crate::{CorpusRepo, below, make_task, parse_repo, site_features, weighted};

/// The constructs a site can be in, as the policy names them.
pub const CONSTRUCTS: [&str; 6] = [
    "loop",
    "condition",
    "return",
    "call",
    "comprehension",
    "none",
];

/// The operators a skill's bugs come from: those its `arise` steps name, or every operator
/// when none does.
pub fn skill_operators(skill: &Skill) -> Vec<&'static Operator> {
    let named: Vec<&'static Operator> = skill
        .operations
        .iter()
        .filter(|op| op.phase == Phase::Arise)
        .flat_map(|op| &op.operators)
        .filter_map(|id| operators::by_id(id))
        .collect();
    if named.is_empty() {
        operators::all()
    } else {
        let mut ops = named;
        ops.sort_by_key(|op| operators::ALL.iter().position(|o| o.id == op.id));
        ops.dedup_by_key(|op| op.id);
        ops
    }
}

/// The alternatives of each choice, for the policy: every skill with its failure rate, its
/// operators, and every construct.
pub fn choices(skills: &[Skill]) -> Choices {
    Choices {
        skills: skills
            .iter()
            .map(|s| (s.skill_id.clone(), evidence_logit(&s.evidence)))
            .collect(),
        operators: skills
            .iter()
            .map(|s| {
                let ops = skill_operators(s)
                    .iter()
                    .map(|op| op.id.to_string())
                    .collect();
                (s.skill_id.clone(), ops)
            })
            .collect(),
        constructs: CONSTRUCTS.iter().map(|c| c.to_string()).collect(),
    }
}

/// Skill → operator → construct → repository → (site, edit) left to draw.
type Pools =
    BTreeMap<usize, BTreeMap<usize, BTreeMap<usize, BTreeMap<usize, Vec<(usize, usize)>>>>>;

/// One of `keys` drawn with probability softmax(logit).
fn softmax_draw(rng: &mut ChaCha8Rng, keys: &[(usize, f64)]) -> usize {
    let max = keys
        .iter()
        .map(|(_, l)| *l)
        .fold(f64::NEG_INFINITY, f64::max);
    weighted(rng, keys.iter().map(|&(k, l)| (k, (l - max).exp())))
}

/// Up to `budget` distinct candidates steered by `skills` and `policy`, drawn with `seed`.
pub fn generate(
    repos: &[CorpusRepo],
    skills: &[Skill],
    policy: &Policy,
    budget: u64,
    seed: u64,
    round: u32,
) -> anyhow::Result<Vec<Task>> {
    if skills.is_empty() {
        return Err(BadInput::new("no skills: --strategy skills needs at least one").into());
    }
    let parsed: Vec<Vec<(String, pyast::Module)>> = repos
        .iter()
        .map(parse_repo)
        .collect::<anyhow::Result<_>>()?;
    let skill_ops: Vec<Vec<&'static Operator>> = skills.iter().map(skill_operators).collect();
    let mut wanted: Vec<&'static Operator> = skill_ops.iter().flatten().copied().collect();
    wanted.sort_by_key(|op| operators::ALL.iter().position(|o| o.id == op.id));
    wanted.dedup_by_key(|op| op.id);

    let mut sites = Vec::new();
    let mut pools = Pools::new();
    for (ri, files) in parsed.iter().enumerate() {
        for (fi, (path, module)) in files.iter().enumerate() {
            for site in module.sites(&wanted) {
                let features = site_features(&repos[ri], path, module, &site);
                let ci = CONSTRUCTS
                    .iter()
                    .position(|c| *c == features.construct.as_str())
                    .expect("every construct is listed");
                let si = sites.len();
                for (ki, skill) in skills.iter().enumerate() {
                    let Some(oi) = skill_ops[ki]
                        .iter()
                        .position(|op| op.id == site.operator.id)
                    else {
                        continue;
                    };
                    if !pyast::condition::all_hold(&skill.conditions, &features) {
                        continue;
                    }
                    let pool = pools
                        .entry(ki)
                        .or_default()
                        .entry(oi)
                        .or_default()
                        .entry(ci)
                        .or_default()
                        .entry(ri)
                        .or_default();
                    pool.extend((0..site.edits.len()).map(|ei| (si, ei)));
                }
                sites.push((fi, site));
            }
        }
    }
    for (ki, skill) in skills.iter().enumerate() {
        if !pools.contains_key(&ki) {
            tracing::warn!(
                "skill `{}` applies nowhere in these repositories; it gets no candidates",
                skill.name
            );
        }
    }

    let skill_logits: Vec<f64> = skills
        .iter()
        .map(|s| policy.skill_logit(&s.skill_id, evidence_logit(&s.evidence)))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut tasks = Vec::new();
    while (tasks.len() as u64) < budget && !pools.is_empty() {
        let skill_keys: Vec<(usize, f64)> =
            pools.keys().map(|&ki| (ki, skill_logits[ki])).collect();
        let ki = softmax_draw(&mut rng, &skill_keys);
        let by_op = pools.get_mut(&ki).expect("drawn key");
        let op_keys: Vec<(usize, f64)> = by_op
            .keys()
            .map(|&oi| (oi, policy.operator_logit(skill_ops[ki][oi].id)))
            .collect();
        let oi = softmax_draw(&mut rng, &op_keys);
        let by_construct = by_op.get_mut(&oi).expect("drawn key");
        let construct_keys: Vec<(usize, f64)> = by_construct
            .keys()
            .map(|&ci| (ci, policy.construct_logit(CONSTRUCTS[ci])))
            .collect();
        let ci = softmax_draw(&mut rng, &construct_keys);
        let by_repo = by_construct.get_mut(&ci).expect("drawn key");
        let ri = *by_repo
            .keys()
            .nth(below(&mut rng, by_repo.len()))
            .expect("nonempty");
        let pool = by_repo.get_mut(&ri).expect("drawn key");
        let (si, ei) = pool.swap_remove(below(&mut rng, pool.len()));
        prune(&mut pools, [ki, oi, ci, ri]);

        let (fi, site) = &sites[si];
        let (path, module) = &parsed[ri][*fi];
        let edit = &site.edits[ei];
        let key = (ri, path.clone(), edit.clone());
        if seen.contains(&key) {
            continue;
        }
        if let Some(mut task) = make_task(&repos[ri], path, module, site, edit, seed) {
            seen.insert(key);
            task.provenance.strategy = "skills".into();
            task.provenance.skill_ids = vec![skills[ki].skill_id.clone()];
            task.provenance.round = round;
            tasks.push(task);
        }
    }
    Ok(tasks)
}

/// Removes the emptied levels of the pool path `[skill, operator, construct, repo]`.
fn prune(pools: &mut Pools, [ki, oi, ci, ri]: [usize; 4]) {
    let by_op = pools.get_mut(&ki).expect("path");
    let by_construct = by_op.get_mut(&oi).expect("path");
    let by_repo = by_construct.get_mut(&ci).expect("path");
    if by_repo[&ri].is_empty() {
        by_repo.remove(&ri);
    }
    if by_repo.is_empty() {
        by_construct.remove(&ci);
    }
    if by_construct.is_empty() {
        by_op.remove(&oi);
    }
    if by_op.is_empty() {
        pools.remove(&ki);
    }
}

/// The policy's outcomes of some candidates: each candidate's skill, operator, construct and
/// reward (its Score's, or 0 when it has none: it did not validate). Candidates of another
/// strategy are ignored.
pub fn outcomes(tasks: &[Task], rewards: &HashMap<String, f64>) -> Vec<crate::policy::Outcome> {
    tasks
        .iter()
        .filter(|t| t.provenance.strategy == "skills")
        .filter_map(|t| {
            let skill = t.provenance.skill_ids.first()?.clone();
            let operator = t.provenance.operator.clone()?;
            let construct = t
                .provenance
                .site
                .as_ref()
                .and_then(|s| s.extra.get("construct"))
                .and_then(|c| c.as_str())
                .unwrap_or("none")
                .to_string();
            Some(crate::policy::Outcome {
                skill,
                operator,
                construct,
                reward: rewards.get(&t.instance_id).copied().unwrap_or(0.0),
            })
        })
        .collect()
}
