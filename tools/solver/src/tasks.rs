//! Tasks read from JSONL and turned into repair examples, in parallel, in input order: toward
//! each task's gold repair, or toward the solver's own repair in a resolved trace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::example::{ExampleOptions, RepairExample};
use anyhow::Result;
use schemas::{Record, Task, Trace};
use stage_io::BadInput;
use stage_io::input::Inputs;

/// Reads Task records from `paths` (`-` or none: stdin); an empty input is bad input.
pub fn load_tasks(paths: &[PathBuf]) -> Result<Vec<Task>> {
    load(paths)
}

/// Reads Trace records from `paths` (`-` or none: stdin); an empty input is bad input.
pub fn load_traces(paths: &[PathBuf]) -> Result<Vec<Trace>> {
    load(paths)
}

fn load<R: Record + 'static>(paths: &[PathBuf]) -> Result<Vec<R>> {
    Ok(Inputs::open(paths)?
        .records::<R>()
        .collect::<Result<_, _>>()?)
}

/// The examples that could be built, and how many tasks could not.
pub struct Built {
    pub examples: Vec<RepairExample>,
    /// Index of each example's record (task or trace) in the input.
    pub task_index: Vec<usize>,
    pub skipped: usize,
}

/// Builds one example per task whose repository is in the corpus at `corpus`. Tasks that
/// were rejected by the gate, change several files, or do not parse are skipped with a
/// warning.
pub fn build_examples(tasks: &[Task], corpus: &Path, options: &ExampleOptions) -> Result<Built> {
    let roots = stage_io::corpus::read_roots(corpus, tasks.iter().map(|t| t.repo.as_str()))?;
    let results = parallel_map(tasks, |task| build_one(task, &roots, options));
    Ok(collect(results))
}

/// The examples of the resolved traces, their target the trace's own patch (rejection-sampling
/// fine-tuning), and how many traces were left out: unresolved, erroneous or without a
/// patch ones silently (they are not repairs), those whose patch gives no example with a
/// warning. A trace of a task in none of `tasks` is bad input.
pub fn build_trace_examples(
    traces: &[Trace],
    tasks: &[&Task],
    corpus: &Path,
    options: &ExampleOptions,
) -> Result<Built> {
    let by_id: HashMap<&str, &Task> = tasks.iter().map(|t| (t.instance_id.as_str(), *t)).collect();
    if let Some(unknown) = traces
        .iter()
        .find(|t| !by_id.contains_key(t.instance_id.as_str()))
    {
        return Err(BadInput::new(format!(
            "trace {} is of task {}, which is in none of the task files (give the tasks the \
             traces ran on with --trace-tasks)",
            unknown.trace_id, unknown.instance_id
        ))
        .into());
    }
    let roots = stage_io::corpus::read_roots(corpus, tasks.iter().map(|t| t.repo.as_str()))?;
    let results = parallel_map(traces, |trace| {
        if !trace.outcome.resolved || trace.error.is_some() || trace.patch.trim().is_empty() {
            return None;
        }
        let task = by_id[trace.instance_id.as_str()];
        let Some(root) = roots.get(&task.repo) else {
            tracing::warn!(
                "trace {}: repository {} is not in the corpus, skipped",
                trace.trace_id,
                task.repo
            );
            return None;
        };
        match RepairExample::from_repair(task, root, &trace.patch, options) {
            Ok(example) => Some(example),
            Err(error) => {
                tracing::warn!("trace {}: {error:#}, skipped", trace.trace_id);
                None
            }
        }
    });
    Ok(collect(results))
}

/// `f` over `items` on every core, results in input order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Option<R> + Sync,
) -> Vec<Option<R>> {
    let threads = stage_io::cli::cores();
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || part.iter().map(f).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("example builder panicked"))
            .collect()
    })
}

fn collect(results: Vec<Option<RepairExample>>) -> Built {
    let mut built = Built {
        examples: Vec::new(),
        task_index: Vec::new(),
        skipped: 0,
    };
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Some(example) => {
                built.examples.push(example);
                built.task_index.push(i);
            }
            None => built.skipped += 1,
        }
    }
    built
}

fn build_one(
    task: &Task,
    roots: &HashMap<String, PathBuf>,
    options: &ExampleOptions,
) -> Option<RepairExample> {
    if task.rejection.is_some() {
        tracing::warn!("task {}: rejected by the gate, skipped", task.instance_id);
        return None;
    }
    let Some(root) = roots.get(&task.repo) else {
        tracing::warn!(
            "task {}: repository {} is not in the corpus, skipped",
            task.instance_id,
            task.repo
        );
        return None;
    };
    match RepairExample::from_task(task, root, options) {
        Ok(example) => Some(example),
        Err(error) => {
            tracing::warn!("{error:#}, skipped");
            None
        }
    }
}
