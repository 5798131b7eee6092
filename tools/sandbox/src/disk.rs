//! What a run may write: its working copy and temporary directory may grow by at
//! most [`crate::Limits::disk_bytes`]. A watcher thread measures them while the
//! run goes on and stops the run once they are past the cap; the run is then
//! [`crate::RunEnd::DiskLimit`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// How often the watcher measures.
const INTERVAL: Duration = Duration::from_millis(200);

pub(crate) struct DiskWatch {
    dirs: Vec<PathBuf>,
    allowed: u64,
    exceeded: Arc<AtomicBool>,
    /// Dropped to wake the watcher at once: it must not sleep out its interval
    /// while the run it watched is over (that was up to 0.2 s after every run).
    wake: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DiskWatch {
    /// Watches `dirs` from now: once they hold `cap` bytes more than now,
    /// `stop_run` is called (once).
    pub(crate) fn start(
        dirs: &[&Path],
        cap: u64,
        stop_run: impl Fn() + Send + 'static,
    ) -> DiskWatch {
        DiskWatch::start_every(INTERVAL, dirs, cap, stop_run)
    }

    /// [`DiskWatch::start`], measuring every `interval`.
    fn start_every(
        interval: Duration,
        dirs: &[&Path],
        cap: u64,
        stop_run: impl Fn() + Send + 'static,
    ) -> DiskWatch {
        let dirs: Vec<PathBuf> = dirs.iter().map(|dir| dir.to_path_buf()).collect();
        let allowed = size_up_to(&dirs, u64::MAX).saturating_add(cap);
        let exceeded = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::channel::<()>();
        let thread = {
            let (dirs, exceeded) = (dirs.clone(), exceeded.clone());
            std::thread::Builder::new()
                .name("disk-watch".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = woken.recv_timeout(interval) {
                        if size_up_to(&dirs, allowed) > allowed {
                            exceeded.store(true, Ordering::Relaxed);
                            stop_run();
                            return;
                        }
                    }
                })
                .ok()
        };
        DiskWatch {
            dirs,
            allowed,
            exceeded,
            wake: Some(wake),
            thread,
        }
    }

    /// Whether the cap was hit so far.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Stops watching; whether the directories went past the cap at any time
    /// (measured once more now).
    pub(crate) fn finish(mut self) -> bool {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.exceeded() || size_up_to(&self.dirs, self.allowed) > self.allowed
    }
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.wake.take();
    }
}

/// The bytes of the files under `dirs` (links not followed), counted until the
/// sum passes `stop_after`.
fn size_up_to(dirs: &[PathBuf], stop_after: u64) -> u64 {
    let mut total = 0u64;
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
                if total > stop_after {
                    return total;
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_stops_the_run_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("before"), vec![0u8; 5000]).unwrap();
        let stops = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = stops.clone();
        let watch = DiskWatch::start(&[dir.path()], 1000, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/after"), vec![0u8; 800]).unwrap();
        std::thread::sleep(INTERVAL * 2);
        assert!(!watch.exceeded(), "800 bytes are within a cap of 1000");
        std::fs::write(dir.path().join("sub/more"), vec![0u8; 300]).unwrap();
        let waited = std::time::Instant::now();
        while !watch.exceeded() && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(watch.finish());
        assert_eq!(stops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn finishing_does_not_wait_for_the_next_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::start_every(Duration::from_secs(3600), &[dir.path()], 10, || {});
        let (finished, done) = mpsc::channel();
        std::thread::spawn(move || finished.send(watch.finish()).unwrap());
        let outcome = done.recv_timeout(Duration::from_secs(60));
        assert_eq!(
            outcome,
            Ok(false),
            "finish waited for the hourly measurement"
        );
    }

    #[test]
    fn growth_between_checks_is_caught_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::start(&[dir.path()], 10, || {});
        std::fs::write(dir.path().join("big"), vec![0u8; 100]).unwrap();
        assert!(watch.finish());
    }
}
