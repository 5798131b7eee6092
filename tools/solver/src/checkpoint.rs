//! Checkpoint directories. A checkpoint is an HF model directory plus our record:
//!
//! - `config.json`: [`ModelConfig`] (Llama/Qwen2 fields);
//! - `model.safetensors`: weights under HF names (`model.layers.0.self_attn.q_proj.weight`,
//!   linear weights `[out, in]`), so HF tools read it and HF weights load into the solver;
//! - `tokenizer.json`: the HF tokenizer;
//! - `checkpoint.json`: the Checkpoint record (parent, data hashes, metrics);
//! - `resume/`: the exact training state (burn records of model and optimizer, and the step)
//!   that `--resume` continues from.
//!
//! Directories are written beside their destination and renamed into place, so a crash never
//! leaves a half-written checkpoint under the final name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::config::ModelConfig;
use crate::model::Solver;
use crate::tokenizer::SolverTokenizer;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const RECORD: &str = "checkpoint.json";
pub const RESUME: &str = "resume";

/// Writes the model weights as HF-named safetensors.
pub fn save_weights<B: Backend>(model: &Solver<B>, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"^(.*norm)\.gamma$", "$1.weight")
        .with_key_remapping(r"^(embed_tokens|layers|norm)\b", "model.$1")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    sort_safetensors_header(path)
}

/// Rewrites a safetensors header with its keys sorted: burn writes the `__metadata__` map
/// in hash order, so two saves of the same weights would differ in bytes. The tensor data is
/// left as it is (the header's offsets point into it in any key order).
fn sort_safetensors_header(path: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => serde_json::to_value(
                map.into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<BTreeMap<_, _>>(),
            )
            .expect("a map of JSON values serializes"),
            other => other,
        }
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let broken = || anyhow!("{}: not a safetensors file", path.display());
    let len = u64::from_le_bytes(bytes.get(..8).ok_or_else(broken)?.try_into()?) as usize;
    let header = bytes.get(8..8 + len).ok_or_else(broken)?;
    let value: serde_json::Value = serde_json::from_slice(header).map_err(|_| broken())?;
    let mut text = serde_json::to_string(&sorted(value))?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + len..]);
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Reads HF-named safetensors weights (ours or a Llama/Qwen2 model's) into `model`. Every
/// parameter of the model must be in the file; extra tensors in the file are ignored.
pub fn load_weights<B: Backend>(model: Solver<B>, path: &Path) -> Result<Solver<B>> {
    if !path.is_file() {
        bail!("{}: no such weights file", path.display());
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"^model\.", "")
        .with_key_remapping(r"^(.*norm)\.weight$", "$1.gamma")
        .allow_partial(true);
    let mut model = model;
    let result = model.load_from(&mut store).map_err(|e| {
        let message = e.to_string();
        if message.contains("ShapeMismatch") {
            let example: String = message.chars().take(240).collect();
            anyhow!(
                "{}: the weights do not fit the config ({example}…)",
                path.display()
            )
        } else {
            anyhow!(
                "{}: not readable as safetensors weights: {message}",
                path.display()
            )
        }
    })?;
    if !result.errors.is_empty() {
        bail!(
            "{}: the weights do not fit the config: {}",
            path.display(),
            result
                .errors
                .iter()
                .take(3)
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    // A language model without the ranking head (an HF directory, or a checkpoint from before
    // the head existed) keeps the head's initial values: features weigh nothing, the model's
    // likelihood counts fully.
    let missing: Vec<_> = result
        .missing
        .iter()
        .filter(|(name, _)| !name.starts_with("edit_head."))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().take(5).map(|(n, _)| n.as_str()).collect();
        bail!(
            "{}: {} parameters missing, e.g. {}",
            path.display(),
            missing.len(),
            names.join(", ")
        );
    }
    Ok(model)
}

/// A loaded checkpoint (or HF model directory).
pub struct Loaded<B: Backend> {
    pub config: ModelConfig,
    pub tokenizer: SolverTokenizer,
    pub model: Solver<B>,
    pub record: Option<schemas::Checkpoint>,
}

/// Loads `dir` (config, tokenizer and weights; the record when there is one).
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>> {
    if !dir.is_dir() {
        bail!("{}: no such checkpoint directory", dir.display());
    }
    let config = ModelConfig::load(&dir.join(CONFIG))?;
    let tokenizer = SolverTokenizer::load(&dir.join(TOKENIZER))?;
    if tokenizer.vocab_size() > config.vocab_size {
        bail!(
            "{}: the tokenizer has {} tokens but config.json's vocab_size is {}",
            dir.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        );
    }
    let model = load_weights(Solver::new(&config, device), &dir.join(WEIGHTS))?;
    let record_path = dir.join(RECORD);
    let record = if record_path.is_file() {
        let text = std::fs::read_to_string(&record_path)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", record_path.display()))?;
        Some(
            <schemas::Checkpoint as schemas::Record>::from_value(value)
                .map_err(|e| anyhow!("{}: {e}", record_path.display()))?,
        )
    } else {
        None
    };
    Ok(Loaded {
        config,
        tokenizer,
        model,
        record,
    })
}

/// A directory being written next to its final place; [`Staging::commit`] renames it there.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
}

/// Removes the staging directories `PARENT/PREFIX<pid>` of writers that were killed (their
/// process is gone), so a rerun after a crash leaves nothing behind. Only where `/proc` tells
/// which processes live; a live writer's directory is never touched.
fn remove_dead_stagings(parent: &Path, prefix: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !alive(proc, pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` runs: a killed process whose parent is gone can stay a zombie
/// (state `Z`) until something reaps it, and a zombie writes nothing more.
fn alive(proc: &Path, pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) else {
        return false;
    };
    // `pid (comm) state …`: the command may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

impl Staging {
    pub fn new(target: &Path) -> Result<Staging> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let name = target
            .file_name()
            .ok_or_else(|| anyhow!("{}: not a directory name", target.display()))?
            .to_string_lossy();
        let prefix = format!(".{name}.partial-");
        remove_dead_stagings(&parent, &prefix);
        let dir = parent.join(format!("{prefix}{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Staging {
            dir,
            target: target.to_path_buf(),
        })
    }

    /// Moves the finished directory to its final name, replacing an older one.
    pub fn commit(self) -> Result<()> {
        let old = self.target.with_file_name(format!(
            ".{}.old-{}",
            self.target
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            std::process::id()
        ));
        let replaced = self.target.exists();
        if replaced {
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("moving the old {} aside", self.target.display()))?;
        }
        std::fs::rename(&self.dir, &self.target)
            .with_context(|| format!("renaming into {}", self.target.display()))?;
        if replaced {
            std::fs::remove_dir_all(&old).ok();
        }
        // Ownership of the directory passed to the target: nothing left to clean up.
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The burn recorder for exact training state.
pub type StateRecorder = burn::record::BinFileRecorder<burn::record::FullPrecisionSettings>;

/// Saves the exact-resume model state (parameter ids included) under `dir/resume/`.
pub fn save_resume_model<B: Backend>(model: &Solver<B>, dir: &Path) -> Result<()> {
    let resume = dir.join(RESUME);
    std::fs::create_dir_all(&resume)?;
    model
        .clone()
        .save_file(resume.join("model"), &StateRecorder::new())
        .map_err(|e| anyhow!("writing {}: {e}", resume.display()))
}

/// Loads the exact-resume model state written by [`save_resume_model`].
pub fn load_resume_model<B: Backend>(
    model: Solver<B>,
    dir: &Path,
    device: &B::Device,
) -> Result<Solver<B>> {
    let path = dir.join(RESUME).join("model");
    model
        .load_file(path.clone(), &StateRecorder::new(), device)
        .map_err(|e| anyhow!("{}: cannot resume from it: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_staging_is_removed_by_the_next_one() {
        let root = std::env::temp_dir().join(format!("staging-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // No process has this id (above any pid_max), so its writer is gone.
        let dead = root.join(".ckpt.partial-999999999");
        let live = root.join(format!(".ckpt.partial-{}", std::process::id()));
        let other = root.join(".other.partial-999999999");
        for dir in [&dead, &other] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let staging = Staging::new(&root.join("ckpt")).unwrap();
        assert_eq!(staging.dir, live);
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "the dead writer's staging is left behind");
        }
        assert!(other.exists(), "another target's staging was removed");
        assert!(alive(Path::new("/proc"), std::process::id()) || !Path::new("/proc/self").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
