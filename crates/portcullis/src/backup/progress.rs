//! Progress bars for long command-line operations, drawn on standard error only when it is a
//! terminal (hidden in logs, pipes and tests).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn bar(show: bool, len: u64, what: &str, template: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

/// A bar counting items (tables).
pub fn counter(show: bool, what: &str, len: u64) -> ProgressBar {
    bar(show, len, what, "{msg:>20} [{bar:40}] {pos}/{len}")
}

/// A bar counting bytes.
pub fn bytes(show: bool, what: &str, len: u64) -> ProgressBar {
    bar(show, len, what, "{msg:>20} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
}
