//! `task-gen`: the generator of socratic-swe.
//!
//! Reads the corpus (Repo records), finds bug sites in the package sources of the
//! repositories of one split with the operators of [`pyast::operators`], and
//! writes candidate Tasks: a bug patch, its exact inverse as the gold patch, the
//! repository's test command and the provenance (strategy, operator, site,
//! seed). `task-validate` then keeps the candidates that real tests catch.
//!
//! The `random` strategy is the fixed-mutation baseline: each draw picks an
//! operator uniformly among those with sites left, then a repository uniformly
//! among those where that operator applies, then one of its edits uniformly.
//! With `--operator-weights` ([`OperatorWeights`]) the operator is drawn in
//! proportion to its weight instead; the evaluation set is drawn this way, with
//! the natural bug mix of `scripts/eval-weights.toml`.

pub mod policy;
pub mod skilled;
mod weights;

pub use policy::Policy;
pub use weights::OperatorWeights;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use pyast::operators::{self, Operator};
use pyast::{Edit, Features, Module, Site};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sandbox::LineMap;
use schemas::{Provenance, Record, Repo, Score, Split, Task};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stage_io::BadInput;
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::corpus::CorpusArgs;
use stage_io::output::Output;

const EXAMPLES: &str = "\
Examples:
  task-gen --strategy random --budget 500 --seed 1 .socratic/corpus.jsonl -o candidates.jsonl
  task-gen --budget 100 --operators cmp-swap,off-by-one --stats .socratic/corpus.jsonl
  task-gen --budget 300 --split test --seed 7 | task-validate -o eval.jsonl
  task-gen --budget 300 --split test --operator-weights scripts/eval-weights.toml .socratic/corpus.jsonl
  task-gen --strategy skills --skills skills.jsonl --policy policy.json --budget 500 -o candidates.jsonl
  task-gen update-policy --skills skills.jsonl --tasks candidates.jsonl --scores scores.jsonl \
      --policy policy.json -o policy.json";

/// How candidates are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Fixed mutation: operators, repositories and sites drawn uniformly
    Random,
    /// Skill-guided: skills drawn by the policy (and the solver's failure odds on them),
    /// sites where their conditions hold, their operators
    Skills,
}

/// Which repositories bugs go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Training repositories (the default)
    Train,
    /// The trusted dev repositories of grad-score
    Dev,
    /// Held-out repositories: only to build the evaluation set
    Test,
}

impl From<SplitArg> for Split {
    fn from(split: SplitArg) -> Split {
        match split {
            SplitArg::Train => Split::Train,
            SplitArg::Dev => Split::Dev,
            SplitArg::Test => Split::Test,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "task-gen",
    version,
    about = "Inject bugs into real repositories and write candidate repair tasks",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Repo records, as `--corpus` (default: WORKDIR/corpus.jsonl); source roots are relative
    /// to its directory
    #[arg(value_name = "CORPUS", conflicts_with = "corpus")]
    pub corpus_file: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, value_enum, default_value_t = Strategy::Random)]
    pub strategy: Strategy,
    /// Number of candidates to write (fewer when the sites run out)
    #[arg(long, required = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: Option<u64>,
    /// Skills that steer `--strategy skills` (skill-distill's output)
    #[arg(long, value_name = "FILE", required_if_eq("strategy", "skills"))]
    pub skills: Option<PathBuf>,
    /// Generator policy of `--strategy skills` (default: a fresh one, the skills' failure
    /// odds alone)
    #[arg(long, value_name = "FILE", requires = "skills")]
    pub policy: Option<PathBuf>,
    /// Round recorded in the candidates' provenance
    #[arg(long, default_value_t = 0)]
    pub round: u32,
    /// Repositories of this split only
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,
    /// Only these operator ids, comma-separated (default: all)
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub operators: Vec<String>,
    /// Draw operators in proportion to the weights of the `[operators]` table of this
    /// TOML file (`id = weight`; unlisted operators weigh 0) instead of uniformly
    #[arg(long, value_name = "FILE", conflicts_with = "skills")]
    pub operator_weights: Option<PathBuf>,
    /// Line maps written by `task-validate --line-maps DIR`: each site gets the number of
    /// tests that execute it (`tests_reaching`, in the site's provenance), which skill
    /// conditions can name; a repository without a map gets none
    #[arg(long, value_name = "DIR")]
    pub line_maps: Option<PathBuf>,
    /// Print counts per operator and per repository on stderr
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Update the generator policy by REINFORCE from the rewards of the candidates it drew
    UpdatePolicy(UpdatePolicyArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpdatePolicyArgs {
    /// The skills the candidates were drawn with
    #[arg(long, value_name = "FILE")]
    pub skills: PathBuf,
    /// Candidates drawn by `--strategy skills` (a candidate without a Score earned 0: it did
    /// not validate)
    #[arg(long, value_name = "FILE", required = true)]
    pub tasks: Vec<PathBuf>,
    /// Score records of grad-score (reward = validity x alignment)
    #[arg(long, value_name = "FILE")]
    pub scores: Vec<PathBuf>,
    /// The policy to update (default: a fresh one)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Learning rate of the policy-gradient step
    #[arg(long, default_value_t = 1.0)]
    pub lr: f64,
    /// Write the updated policy here (atomically)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::UpdatePolicy(args)) = &cli.command {
        return update_policy(args);
    }
    let budget = cli.budget.expect("clap requires --budget");
    let mut ops = select_operators(&cli.operators)?;
    let weights = match &cli.operator_weights {
        None => None,
        Some(path) => {
            let weights = OperatorWeights::read(path)?;
            ops.retain(|op| weights.weight(op.id) > 0.0);
            if ops.is_empty() {
                return Err(BadInput::new(
                    "no operator of --operators has a positive weight in this file",
                )
                .in_source(path.display().to_string())
                .into());
            }
            Some(
                ops.iter()
                    .map(|op| weights.weight(op.id))
                    .collect::<Vec<f64>>(),
            )
        }
    };
    let corpus = cli.corpus_file.clone().unwrap_or_else(|| cli.corpus.path());
    let mut repos = read_corpus(&corpus, cli.split.into())?;
    if let Some(dir) = &cli.line_maps {
        attach_line_maps(&mut repos, dir)?;
    }
    if repos.is_empty() {
        return Err(BadInput::new(format!(
            "no repository of split `{}` in the corpus",
            format!("{:?}", cli.split).to_lowercase()
        ))
        .in_source(corpus.display().to_string())
        .into());
    }
    let tasks = match cli.strategy {
        Strategy::Random => generate(&repos, &ops, weights.as_deref(), budget, cli.run.seed)?,
        Strategy::Skills => {
            let path = cli.skills.as_deref().expect("clap requires --skills");
            let mut skills = pyast::condition::read_skills(path)?;
            if !cli.operators.is_empty() {
                // --operators narrows every skill to the listed operators.
                skills.retain(|s| {
                    skilled::skill_operators(s)
                        .iter()
                        .any(|op| ops.iter().any(|o| o.id == op.id))
                });
            }
            let policy = match &cli.policy {
                Some(path) => Policy::read(path)?,
                None => Policy::default(),
            };
            skilled::generate(&repos, &skills, &policy, budget, cli.run.seed, cli.round)?
        }
    };
    let mut out = Output::create(cli.out.output.as_deref())?;
    for task in &tasks {
        if cli.run.shard.is_none_or(|s| s.contains(&task.instance_id)) {
            out.write(task)?;
        }
    }
    let written = out.written();
    out.finish()?;
    if cli.stats {
        eprint!("{}", stats(&tasks));
    }
    tracing::info!("{written} candidates from {} repositories", repos.len());
    Ok(())
}

/// The operators named in `ids` (all when empty); an unknown id is bad input.
pub fn select_operators(ids: &[String]) -> Result<Vec<&'static Operator>, BadInput> {
    if ids.is_empty() {
        return Ok(operators::all());
    }
    let mut out = Vec::new();
    for id in ids {
        let op = operators::by_id(id.trim()).ok_or_else(|| {
            let known: Vec<&str> = operators::ALL.iter().map(|op| op.id).collect();
            BadInput::new(format!(
                "unknown operator `{id}`; known operators: {}",
                known.join(", ")
            ))
            .in_field(Some("--operators".into()))
        })?;
        if !out.iter().any(|o: &&Operator| o.id == op.id) {
            out.push(op);
        }
    }
    // The order of the operator table, whatever the order on the command line.
    out.sort_by_key(|op| operators::ALL.iter().position(|o| o.id == op.id));
    Ok(out)
}

/// A repository of the corpus that bugs are injected into: its record, source root and line map.
#[derive(Debug, Clone)]
pub struct CorpusRepo {
    pub repo: Repo,
    pub root: PathBuf,
    /// Which tests execute which lines of the clean code, when a validate stage wrote it.
    pub line_map: Option<LineMap>,
}

/// Gives each repository the line map `dir/<repo>.json` when there is one; a map that
/// cannot be read is bad input naming the file.
pub fn attach_line_maps(repos: &mut [CorpusRepo], dir: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for tree in repos.iter_mut() {
        let path = dir.join(format!("{}.json", tree.repo.id));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                missing.push(tree.repo.id.clone());
                continue;
            }
            Err(err) => return Err(anyhow::Error::new(err).context(path.display().to_string())),
        };
        let map = serde_json::from_slice(&bytes).map_err(|err| {
            BadInput::new(format!("not a line map: {err}")).in_source(path.display().to_string())
        })?;
        tree.line_map = Some(map);
    }
    if !missing.is_empty() {
        tracing::warn!(
            "no line map in {} for {}: their sites have no tests_reaching",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// The features of `site` in file `path` of `tree`, with `tests_reaching` from the
/// repository's line map when it has one.
pub fn site_features(tree: &CorpusRepo, path: &str, module: &Module, site: &Site) -> Features {
    let mut features = site.features(module);
    features.tests_reaching = tree.line_map.as_ref().map(|map| {
        map.tests_reaching(
            path,
            features.statement_line as u32,
            features.end_line as u32,
        )
    });
    features
}

/// The repositories of `split` in the corpus at `path`, sorted by id; a
/// repository whose source root is missing is an error that names `just setup`, a snapshot
/// whose files changed since it was pinned one that names how to pin it again.
pub fn read_corpus(path: &Path, split: Split) -> anyhow::Result<Vec<CorpusRepo>> {
    let mut repos = Vec::new();
    for (repo, root) in stage_io::corpus::read_corpus(path)? {
        if repo.split != split {
            continue;
        }
        stage_io::corpus::check_pinned(&repo, &root)?;
        repos.push(CorpusRepo {
            repo,
            root,
            line_map: None,
        });
    }
    repos.sort_by(|a, b| a.repo.id.cmp(&b.repo.id));
    Ok(repos)
}

pub use pyast::files::{is_test_path, source_files};

/// The parsed source files of one repository; files that cannot be read or
/// parsed are skipped with a warning.
pub fn parse_repo(tree: &CorpusRepo) -> anyhow::Result<Vec<(String, Module)>> {
    let mut out = Vec::new();
    for rel in source_files(&tree.root, &tree.repo.src_dirs)? {
        let path = tree.root.join(&rel);
        let Ok(source) = String::from_utf8(std::fs::read(&path)?) else {
            tracing::warn!("{}: not UTF-8, skipped", path.display());
            continue;
        };
        match Module::parse(source) {
            Ok(module) => out.push((rel, module)),
            Err(err) => tracing::warn!("{}: {err}, skipped", path.display()),
        }
    }
    Ok(out)
}

/// 8 hex digits that name an edit of a file.
pub fn edit_hash(path: &str, edit: &Edit) -> String {
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(edit.start.to_le_bytes());
    hasher.update(edit.end.to_le_bytes());
    hasher.update(edit.text.as_bytes());
    let digest = hasher.finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The candidate Task for `edit` at `site` of file `path` of `repo`, or None
/// when the buggy file does not parse.
pub fn make_task(
    tree: &CorpusRepo,
    path: &str,
    module: &Module,
    site: &Site,
    edit: &Edit,
    seed: u64,
) -> Option<Task> {
    if !module.parses_after(edit) {
        return None;
    }
    let clean = module.source();
    let buggy = module.apply(edit);
    if buggy == clean {
        return None;
    }
    let repo = &tree.repo;
    let features = site_features(tree, path, module, site);
    let mut extra = serde_json::Map::new();
    extra.insert("construct".into(), json!(features.construct.as_str()));
    extra.insert("operand_kinds".into(), json!(features.operand_kinds));
    extra.insert("depth".into(), json!(features.depth));
    if let Some(lines) = features.function_lines {
        extra.insert("function_lines".into(), json!(lines));
    }
    if let Some(tests) = features.tests_reaching {
        extra.insert("tests_reaching".into(), json!(tests));
    }
    extra.insert(
        "edit".into(),
        json!({"start": edit.start, "end": edit.end, "text": edit.text}),
    );
    let mut prov_extra = serde_json::Map::new();
    prov_extra.insert("operator_family".into(), Value::from(site.operator.family));
    Some(Task {
        schema: Task::tag(),
        instance_id: format!("{}.{}.{}", repo.id, site.operator.id, edit_hash(path, edit)),
        repo: repo.id.clone(),
        bug_patch: patches::unified_diff(path, clean, &buggy),
        gold_patch: patches::unified_diff(path, &buggy, clean),
        problem_statement: String::new(),
        fail_to_pass: vec![],
        pass_to_pass: vec![],
        test_cmd: repo.test_cmd.clone(),
        provenance: Provenance {
            strategy: "random".into(),
            operator: Some(site.operator.id.into()),
            site: Some(schemas::Site {
                path: path.to_string(),
                line: features.line as u32,
                end_line: Some(features.end_line as u32),
                function: features.function,
                node_kind: Some(features.node_kind),
                extra,
            }),
            skill_ids: vec![],
            round: 0,
            seed,
            extra: prov_extra,
        },
        rejection: None,
        extra: Default::default(),
    })
}

/// Operator index → repository index → (site index, edit index) left to draw.
type Pools = BTreeMap<usize, BTreeMap<usize, Vec<(usize, usize)>>>;

/// A uniform index below `n` (n > 0).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// One of `keys` drawn in proportion to its weight (weights > 0, keys nonempty).
fn weighted(rng: &mut ChaCha8Rng, keys: impl Iterator<Item = (usize, f64)> + Clone) -> usize {
    let total: f64 = keys.clone().map(|(_, w)| w).sum();
    // 53 random bits: a uniform float in [0, 1).
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    let mut sum = 0.0;
    let mut last = None;
    for (key, w) in keys {
        sum += w;
        if x < sum {
            return key;
        }
        last = Some(key);
    }
    last.expect("nonempty")
}

/// Up to `budget` distinct candidate Tasks from `repos`, drawn with `seed`: an
/// operator uniformly among those with edits left (or, with `weights`, one
/// weight per operator of `ops`, in proportion to its weight among those with
/// edits left), a repository uniformly among those where it has edits, an edit
/// uniformly; edits whose buggy file does not parse are dropped.
pub fn generate(
    repos: &[CorpusRepo],
    ops: &[&'static Operator],
    weights: Option<&[f64]>,
    budget: u64,
    seed: u64,
) -> anyhow::Result<Vec<Task>> {
    if let Some(weights) = weights {
        anyhow::ensure!(
            weights.len() == ops.len() && weights.iter().all(|w| w.is_finite() && *w > 0.0),
            "one positive weight per operator"
        );
    }
    let parsed: Vec<Vec<(String, Module)>> = repos
        .iter()
        .map(parse_repo)
        .collect::<anyhow::Result<_>>()?;
    // Every site as (file, site); the pools hold (site, edit) indices.
    let mut sites = Vec::new();
    let mut pools = Pools::new();
    for (ri, files) in parsed.iter().enumerate() {
        for (fi, (_, module)) in files.iter().enumerate() {
            for site in module.sites(ops) {
                let oi = ops
                    .iter()
                    .position(|op| op.id == site.operator.id)
                    .expect("sites come from the given operators");
                let pool = pools.entry(oi).or_default().entry(ri).or_default();
                pool.extend((0..site.edits.len()).map(|ei| (sites.len(), ei)));
                sites.push((fi, site));
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut tasks = Vec::new();
    while (tasks.len() as u64) < budget && !pools.is_empty() {
        let oi = match weights {
            None => *pools
                .keys()
                .nth(below(&mut rng, pools.len()))
                .expect("nonempty"),
            Some(weights) => weighted(&mut rng, pools.keys().map(|&oi| (oi, weights[oi]))),
        };
        let by_repo = pools.get_mut(&oi).expect("drawn key");
        let ri = *by_repo
            .keys()
            .nth(below(&mut rng, by_repo.len()))
            .expect("nonempty");
        let pool = by_repo.get_mut(&ri).expect("drawn key");
        let (si, ei) = pool.swap_remove(below(&mut rng, pool.len()));
        if pool.is_empty() {
            by_repo.remove(&ri);
            if by_repo.is_empty() {
                pools.remove(&oi);
            }
        }
        let (fi, site) = &sites[si];
        let fi = *fi;
        let (path, module) = &parsed[ri][fi];
        let edit = &site.edits[ei];
        let key = (ri, path.clone(), edit.clone());
        if seen.contains(&key) {
            continue;
        }
        if let Some(task) = make_task(&repos[ri], path, module, site, edit, seed) {
            seen.insert(key);
            tasks.push(task);
        }
    }
    Ok(tasks)
}

fn update_policy(args: &UpdatePolicyArgs) -> anyhow::Result<()> {
    let skills = pyast::condition::read_skills(&args.skills)?;
    let tasks: Vec<Task> = stage_io::input::Inputs::open(&args.tasks)?
        .records::<Task>()
        .collect::<Result<_, _>>()?;
    let mut rewards = HashMap::new();
    if !args.scores.is_empty() {
        for score in stage_io::input::Inputs::open(&args.scores)?
            .records::<Score>()
            .allow_empty()
        {
            let score = score?;
            rewards.insert(score.instance_id.clone(), score.reward);
        }
    }
    let outcomes = skilled::outcomes(&tasks, &rewards);
    if outcomes.is_empty() {
        return Err(BadInput::new(
            "none of the --tasks was drawn by `--strategy skills`: nothing to learn from",
        )
        .into());
    }
    let mut policy = match &args.policy {
        Some(path) => Policy::read(path)?,
        None => Policy::default(),
    };
    let choices = skilled::choices(&skills);
    policy.update(&outcomes, &choices, args.lr);
    policy.write(&args.output)?;
    let mean = outcomes.iter().map(|o| o.reward).sum::<f64>() / outcomes.len() as f64;
    tracing::info!(
        "policy update {}: {} candidates, mean reward {mean:.4}",
        policy.updates,
        outcomes.len()
    );
    Ok(())
}

/// Counts per operator, per skill (when any) and per repository, one `name count` per line.
pub fn stats(tasks: &[Task]) -> String {
    let mut by_op: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_skill: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_repo: BTreeMap<&str, u64> = BTreeMap::new();
    for task in tasks {
        for skill in &task.provenance.skill_ids {
            *by_skill.entry(skill).or_default() += 1;
        }
        *by_op
            .entry(task.provenance.operator.as_deref().unwrap_or("-"))
            .or_default() += 1;
        *by_repo.entry(&task.repo).or_default() += 1;
    }
    let mut out = format!("{} candidates\nper operator:\n", tasks.len());
    for (op, n) in by_op {
        out.push_str(&format!("  {op:<16} {n}\n"));
    }
    if !by_skill.is_empty() {
        out.push_str("per skill:\n");
        for (skill, n) in by_skill {
            out.push_str(&format!("  {skill:<24} {n}\n"));
        }
    }
    out.push_str("per repository:\n");
    for (repo, n) in by_repo {
        out.push_str(&format!("  {repo:<24} {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_and_directories_are_not_bug_sites() {
        for path in [
            "pkg/tests/util.py",
            "pkg/test/x.py",
            "pkg/test_cache.py",
            "pkg/cache_test.py",
            "pkg/conftest.py",
        ] {
            assert!(is_test_path(path), "{path}");
        }
        for path in ["pkg/cache.py", "pkg/testing.py", "six.py", "pkg/contest.py"] {
            assert!(!is_test_path(path), "{path}");
        }
    }

    #[test]
    fn an_edit_hash_is_eight_hex_digits_that_tell_edits_apart() {
        let a = edit_hash("m.py", &Edit::new(1, 2, "<="));
        let b = edit_hash("m.py", &Edit::new(1, 2, ">"));
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn an_unknown_operator_lists_the_known_ones() {
        let err = select_operators(&["cmp-swap".into(), "nope".into()]).unwrap_err();
        assert!(err.message.contains("`nope`") && err.message.contains("cmp-swap"));
        let ops = select_operators(&["var-misuse".into(), "cmp-swap".into()]).unwrap();
        assert_eq!(
            ops.iter().map(|op| op.id).collect::<Vec<_>>(),
            ["cmp-swap", "var-misuse"]
        );
    }
}
