//! Tasks read from JSONL and turned into repair examples, in parallel, in input order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use schemas::Task;
use solver::example::{ExampleOptions, RepairExample};
use stage_io::input::Inputs;

/// Reads Task records from `paths` (`-` or none: stdin); an empty input is bad input.
pub fn load_tasks(paths: &[PathBuf]) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for task in Inputs::open(paths)?.records::<Task>() {
        tasks.push(task?);
    }
    Ok(tasks)
}

/// The examples that could be built, and how many tasks could not.
pub struct Built {
    pub examples: Vec<RepairExample>,
    /// Index of each example's task in the input.
    pub task_index: Vec<usize>,
    pub skipped: usize,
}

/// Builds one example per task whose repository is in the corpus at `corpus`. Tasks that
/// were rejected by the gate, change several files, or do not parse are skipped with a
/// warning.
pub fn build_examples(tasks: &[Task], corpus: &Path, options: &ExampleOptions) -> Result<Built> {
    let roots: HashMap<String, PathBuf> = stage_io::corpus::read_corpus(corpus)?
        .into_iter()
        .map(|(repo, root)| (repo.id, root))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = tasks.len().div_ceil(threads).max(1);
    let results: Vec<Option<RepairExample>> = std::thread::scope(|scope| {
        let handles: Vec<_> = tasks
            .chunks(chunk)
            .map(|part| {
                let roots = &roots;
                scope.spawn(move || {
                    part.iter()
                        .map(|task| build_one(task, roots, options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("example builder panicked"))
            .collect()
    });
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
    Ok(built)
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
