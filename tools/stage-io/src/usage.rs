//! CPU time a stage spent in processes that its own resource usage cannot hold.
//!
//! A parent learns its children's CPU time when it waits for them (`wait4`,
//! `RUSAGE_CHILDREN`). A test run inside bubblewrap's pid namespace is reaped by the
//! namespace's init, which its parent never waits for: 1.0 s burned there reaches the
//! stage's parent as 0.0 s. The sandbox measures such runs from inside and adds them
//! here; a stage run with [`USAGE_FILE_ENV`] set writes the sum to that file as it ends
//! (`{"hidden_cpu_seconds": S}`), so whoever runs it (`scripts/evolve.py`) can count
//! all the CPU time the stage cost.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::output::AtomicFile;

/// The environment variable naming the file a stage writes its hidden CPU time to.
pub const USAGE_FILE_ENV: &str = "SOCRATIC_USAGE_FILE";

static HIDDEN_CPU_MICROS: AtomicU64 = AtomicU64::new(0);

/// Counts `cpu` as spent by this stage in a process its resource usage does not hold.
pub fn add_hidden_cpu(cpu: Duration) {
    let micros = u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX);
    HIDDEN_CPU_MICROS.fetch_add(micros, Ordering::Relaxed);
}

/// The CPU time counted by [`add_hidden_cpu`] so far.
pub fn hidden_cpu() -> Duration {
    Duration::from_micros(HIDDEN_CPU_MICROS.load(Ordering::Relaxed))
}

/// Writes `{"hidden_cpu_seconds": S}` to `path`, atomically.
pub fn write_report(path: &Path, hidden: Duration) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = AtomicFile::create(path)?;
    let report = serde_json::json!({ "hidden_cpu_seconds": hidden.as_secs_f64() });
    writeln!(file, "{report}")?;
    file.commit()
}

/// [`write_report`] of this process's hidden CPU time to the file that
/// [`USAGE_FILE_ENV`] names, if it names one.
pub(crate) fn report_if_asked() {
    let Some(path) = std::env::var_os(USAGE_FILE_ENV).filter(|path| !path.is_empty()) else {
        return;
    };
    if let Err(err) = write_report(Path::new(&path), hidden_cpu()) {
        tracing::warn!(
            "cannot write the CPU report {}: {err}",
            Path::new(&path).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_holds_the_hidden_cpu_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.json");
        write_report(&path, Duration::from_millis(1500)).unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report["hidden_cpu_seconds"], 1.5);
    }

    #[test]
    fn hidden_cpu_adds_up() {
        let before = hidden_cpu();
        add_hidden_cpu(Duration::from_millis(250));
        add_hidden_cpu(Duration::from_millis(250));
        assert!(hidden_cpu() >= before + Duration::from_millis(500));
    }
}
