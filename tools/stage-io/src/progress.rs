//! Progress bars on stderr: drawn when stderr is a terminal (or `--progress`
//! forces them), hidden otherwise so logs of batch jobs stay clean.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const AUTO: u8 = 0;
const FORCE: u8 = 1;
const NEVER: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(AUTO);

/// Draw bars even when stderr is not a terminal (`--progress`).
pub fn force() {
    MODE.store(FORCE, Ordering::Relaxed);
}

/// Never draw bars (`-q`).
pub fn disable() {
    MODE.store(NEVER, Ordering::Relaxed);
}

fn target() -> ProgressDrawTarget {
    match MODE.load(Ordering::Relaxed) {
        FORCE => ProgressDrawTarget::term_like(Box::new(console::Term::stderr())),
        NEVER => ProgressDrawTarget::hidden(),
        _ => ProgressDrawTarget::stderr(),
    }
}

/// A bar over `len` items, e.g. candidates to validate.
pub fn items(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A bar over the bytes of the input when its size is known, else a spinner.
pub fn bytes(total: Option<u64>, message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, target());
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {msg} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
