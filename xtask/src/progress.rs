//! How the pipeline's events are shown on stderr: spinners and upload bars
//! when stderr is a terminal and the format is human (or markdown), plain lines when it
//! is not, nothing but the base-image messages in JSON mode. Lint errors
//! that stop a build are shown rustc-style in human mode.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use forge_pipeline::{Event, Observer};
use forge_registry::PushEvent;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::Format;
use crate::output::status_word;

/// The observer of a command's run.
pub(crate) struct Progress {
    human: bool,
    bars: bool,
    /// The root as shown in lint errors.
    shown_root: PathBuf,
    multi: MultiProgress,
    /// The bar of each plugin being built or pushed.
    active: Mutex<HashMap<PathBuf, ProgressBar>>,
    /// Bytes sent of each blob in its current attempt, per plugin pushed.
    sent: Mutex<HashMap<PathBuf, HashMap<String, u64>>>,
}

impl Progress {
    /// Progress of a run over the monorepo at `root`.
    pub(crate) fn new(format: Format, root: &Path) -> Progress {
        let human = format != Format::Json;
        Progress {
            human,
            bars: human && std::io::stderr().is_terminal(),
            shown_root: crate::output::display_root(root),
            multi: MultiProgress::new(),
            active: Mutex::default(),
            sent: Mutex::default(),
        }
    }

    fn active(&self) -> MutexGuard<'_, HashMap<PathBuf, ProgressBar>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bar(&self, plugin: &Path) -> Option<ProgressBar> {
        self.active().get(plugin).cloned()
    }

    fn start_bar(&self, plugin: &Path, bar: ProgressBar) {
        self.active().insert(plugin.to_path_buf(), self.multi.add(bar));
    }

    fn finish_bar(&self, plugin: &Path, message: String) -> bool {
        let Some(bar) = self.active().remove(plugin) else { return false };
        bar.finish_with_message(message);
        true
    }

    fn lint_errors(&self, errors: &[&forge_lint::Diagnostic]) {
        if !self.human {
            return;
        }
        let options = forge_lint::render::HumanOptions {
            root: &self.shown_root,
            color: std::io::stderr().is_terminal(),
        };
        for d in errors {
            eprint!("{}", forge_lint::render::human(d, options));
        }
    }

    /// Warnings of the image checks, shown whatever the format.
    fn image_warnings(root: &Path, warnings: &[forge_lint::Diagnostic]) {
        let root = crate::output::display_root(root);
        let options =
            forge_lint::render::HumanOptions { root: &root, color: std::io::stderr().is_terminal() };
        for d in warnings {
            eprint!("{}", forge_lint::render::human(d, options));
        }
    }

    fn push_progress(&self, plugin: &Path, event: &PushEvent) {
        let Some(bar) = self.bar(plugin) else { return };
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let sent = sent.entry(plugin.to_path_buf()).or_default();
        match event {
            PushEvent::BlobSkipped { digest, size } | PushEvent::BlobMounted { digest, size, .. } => {
                sent.insert(digest.to_string(), *size);
            }
            PushEvent::BlobStarted { digest, .. } => {
                sent.insert(digest.to_string(), 0);
            }
            PushEvent::BlobProgress { digest, sent: now, .. } => {
                sent.insert(digest.to_string(), *now);
            }
            PushEvent::Retrying(notice) => bar.set_message(format!("retrying: {notice:?}")),
            _ => {}
        }
        bar.set_position(sent.values().sum());
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::BaseImageMissing { reference, description } => {
                eprintln!("base image {reference} is missing: building it from {}", description.display());
            }
            Event::LockResolving { name, mirror, why } => {
                eprintln!("resolving {name} against {mirror} ({why})")
            }
            Event::LockWritten { path, packages } => {
                eprintln!("wrote {} ({packages} packages)", path.display());
            }
            Event::RunLockWritten { path } => eprintln!("wrote {}", path.display()),
            Event::BaseImageReady(report) => eprintln!(
                "{} {} {}: {} packages, {:.1} MiB of .debs, {:.1} MiB compressed, {:.1}s",
                if report.cached { "cached" } else { "built" },
                report.reference,
                report.image.manifest_digest,
                report.packages,
                report.debs_size as f64 / (1 << 20) as f64,
                report.size as f64 / (1 << 20) as f64,
                report.time.as_secs_f64()
            ),
            Event::LintRejected { errors, .. } => self.lint_errors(errors),
            Event::BuildStarted { plugin } => {
                if self.bars {
                    let style =
                        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed:.dim}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    let bar = ProgressBar::new_spinner().with_style(style);
                    bar.set_prefix(plugin.display().to_string());
                    bar.set_message("building");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.start_bar(plugin, bar);
                } else if self.human {
                    eprintln!("building {}", plugin.display());
                }
            }
            Event::ImageWarnings { root, warnings, .. } => Progress::image_warnings(root, warnings),
            Event::Exporting { plugin } => {
                if let Some(bar) = self.bar(plugin) {
                    bar.set_message("writing tarball");
                }
            }
            Event::BuildFinished { plugin, result, time } => {
                let message = match result {
                    Ok(built) => format!("{} {}", status_word(built.status), built.image),
                    Err(_) => "failed".to_string(),
                };
                if !self.finish_bar(plugin, message) && self.human {
                    match result {
                        Ok(built) => eprintln!(
                            "{} {} ({:.1}s)",
                            status_word(built.status),
                            built.image,
                            time.as_secs_f64()
                        ),
                        Err(_) => eprintln!("failed {}", plugin.display()),
                    }
                }
            }
            Event::PushStarted { plugin, image, size } => {
                if self.bars {
                    let style = ProgressStyle::with_template(
                        "{prefix:.bold} {bar:30} {bytes}/{total_bytes} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    let bar = ProgressBar::new(*size).with_style(style);
                    bar.set_prefix(image.to_string());
                    self.start_bar(plugin, bar);
                } else if self.human {
                    eprintln!("pushing {image}");
                }
            }
            Event::Push { plugin, event } => self.push_progress(plugin, event),
            Event::CacheWarning { repository, message } => {
                eprintln!("warning: cache {repository}: {message}")
            }
            Event::CacheWritten { .. } | Event::UpToDate { .. } => {}
            Event::PushFinished { plugin, ok } => {
                self.finish_bar(plugin, if *ok { "pushed" } else { "failed" }.to_string());
            }
        }
    }
}
