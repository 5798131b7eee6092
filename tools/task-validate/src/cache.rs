//! Test results keyed by the content they ran on, so reruns are free.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sandbox::{RunEnd, TestRun};

/// Results by key, in memory and (unless disabled) on disk as `<key>.json`.
/// Concurrent requests for one key run once; the others wait for its result.
#[derive(Default)]
pub struct ResultCache {
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<String, Arc<Mutex<Option<TestRun>>>>>,
    hits: AtomicU64,
}

impl ResultCache {
    /// A cache that persists in `dir` (`None`: this process only).
    pub fn new(dir: Option<PathBuf>) -> ResultCache {
        ResultCache {
            dir,
            ..ResultCache::default()
        }
    }

    /// The cached result for `key`, or the result of `run` (then cached when the
    /// run ended by itself: a limit hit may depend on the machine's load).
    pub fn get_or_run(
        &self,
        key: &str,
        run: impl FnOnce() -> anyhow::Result<TestRun>,
    ) -> anyhow::Result<TestRun> {
        let slot = self
            .entries
            .lock()
            .expect("cache lock")
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().expect("cache slot lock");
        if let Some(result) = slot.as_ref() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(result.clone());
        }
        if let Some(result) = self.load(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            *slot = Some(result.clone());
            return Ok(result);
        }
        let result = run()?;
        if matches!(result.end, RunEnd::Exited(_)) {
            self.store(key, &result);
            *slot = Some(result.clone());
        }
        Ok(result)
    }

    /// Results served without running, so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn load(&self, key: &str) -> Option<TestRun> {
        let path = self.dir.as_ref()?.join(format!("{key}.json"));
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn store(&self, key: &str, result: &TestRun) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(format!("{key}.json"));
        let text = serde_json::to_vec(result).expect("test runs serialize");
        if let Err(err) = stage_io::output::write_atomic(&path, &text) {
            tracing::warn!("cannot cache a test result: {err:#}");
        }
    }
}
