//! What users and CI see. Every command sends typed [`Event`]s into one [`Events`] stream;
//! the stream masks secrets (values of `no_log` results, secret parameters, later vault values)
//! in one place, then one monitor draws them (human text or JSON Lines) and the audit log keeps
//! them. Data goes to stdout, messages for people to stderr.

pub mod events;
pub mod html;
pub mod monitor;
mod style;

pub use events::{
    Cause, Column, ErrorEvent, Event, HostCounts, HostRecord, HostResult, Record, SCHEMA_VERSION, Status, StepEvent,
};
pub use monitor::Layout;
pub use style::Style;

use crate::exit::Code;
use monitor::{Audit, Essentials, Human, JsonLines, Monitor, Tee};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The current UTC time as RFC 3339, for logs.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text.
    #[default]
    Human,
    /// JSON Lines on stdout.
    Json,
}

/// What replaces a secret wherever it would be printed.
pub const MASK: &str = "********";

/// What replaces the values of a `no_log` result.
const NO_LOG: &str = "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// How a command's events are shown and kept.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    /// Human text or JSON Lines.
    pub format: Format,
    /// How human text is laid out.
    pub layout: Layout,
    /// `-v` count.
    pub verbose: u8,
    /// `--diff`.
    pub diff: bool,
    /// Where the audit log goes (`None`: no audit log).
    pub log_dir: Option<PathBuf>,
}

/// Where audit logs go unless `--log-dir` says otherwise: `$XDG_STATE_HOME/tend/runs`, else
/// `~/.local/state/tend/runs`.
pub fn default_log_dir() -> PathBuf {
    state_dir("runs")
}

/// tend's own directory `name` on the control node (audit logs, snapshots, backups, logs):
/// `$XDG_STATE_HOME/tend/NAME`, else `~/.local/state/tend/NAME`.
pub fn state_dir(name: &str) -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(state).join("tend").join(name);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/tend").join(name)
}

/// The one event stream of a command. Cheap to clone; every clone feeds the same monitor.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    monitor: Mutex<Box<dyn Monitor>>,
    secrets: RwLock<Vec<String>>,
    started: Instant,
    run_id: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("run_id", &self.inner.run_id).finish()
    }
}

impl Events {
    /// Starts the stream of `command` (working on `hosts` hosts, 0 when not known yet) with
    /// the monitors `settings` ask for, and sends its `start` event.
    pub fn start(command: &str, hosts: usize, settings: &OutputSettings) -> Self {
        let run_id = format!(
            "{}-{}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
            std::process::id()
        );
        let human = Human::new(settings.layout, settings.verbose, settings.diff);
        let mut monitors: Vec<Box<dyn Monitor>> = match settings.format {
            Format::Human => vec![Box::new(human)],
            Format::Json => vec![Box::new(JsonLines::new()), Box::new(Essentials(human))],
        };
        let mut audit_error = None;
        if let Some(dir) = &settings.log_dir {
            match Audit::open(dir, &run_id) {
                Ok(audit) => monitors.push(Box::new(audit)),
                Err(e) => audit_error = Some(e),
            }
        }
        let events = Self::with_monitor(Box::new(Tee(monitors)), run_id);
        events.emit(Event::Start {
            schema_version: SCHEMA_VERSION,
            command: command.to_string(),
            run_id: events.inner.run_id.clone(),
            hosts,
        });
        if let Some(e) = audit_error {
            events.warn(format!("audit log disabled: {e}"));
        }
        events
    }

    /// A stream into one monitor (tests, tools).
    pub fn with_monitor(monitor: Box<dyn Monitor>, run_id: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                monitor: Mutex::new(monitor),
                secrets: RwLock::new(Vec::new()),
                started: Instant::now(),
                run_id,
            }),
        }
    }

    /// Never prints `value` again, in any output or the audit log.
    pub fn secret(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        if let Ok(mut secrets) = self.inner.secrets.write()
            && !secrets.iter().any(|s| s == value)
        {
            secrets.push(value.to_string());
            // Longest first, so a secret that contains another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Masks what must not be shown, then hands the event to the monitor.
    pub fn emit(&self, mut event: Event) {
        if let Event::Result { result, .. } = &mut event
            && result.no_log
        {
            result.msg = Some(NO_LOG.to_string());
            result.stdout = result.stdout.as_ref().map(|_| String::new());
            result.stderr = result.stderr.as_ref().map(|_| String::new());
            result.stdout_tail.clear();
            result.stderr_tail.clear();
            result.diff.clear();
            result.cmd = None;
            result.data = None;
        }
        // The stream's own secrets as they are; merged (longest first) with what came out of
        // a vault only when there is any, so an event of a run without vaults copies nothing.
        let vaulted = crate::vault::revealed();
        let own = self.inner.secrets.read();
        let merged: Vec<String>;
        let secrets: &[String] = match &own {
            Ok(own) if vaulted.is_empty() => own,
            own => {
                let mut all = vaulted;
                all.extend(own.as_ref().map(|o| o.to_vec()).unwrap_or_default());
                all.sort_by_key(|s| std::cmp::Reverse(s.len()));
                merged = all;
                &merged
            }
        };
        if !secrets.is_empty() {
            event.texts_mut(&mut |text| {
                for secret in secrets.iter() {
                    if text.contains(secret.as_str()) {
                        *text = text.replace(secret.as_str(), MASK);
                    }
                }
            });
        }
        if let Ok(mut m) = self.inner.monitor.lock() {
            m.event(&event);
        }
    }

    /// A warning for the operator.
    pub fn warn(&self, message: impl Into<String>) {
        self.emit(Event::Warning {
            message: message.into(),
        });
    }

    /// A listing: `columns` are (row field, heading) pairs; in JSON one `row` per row.
    pub fn table(&self, table: &str, columns: &[(&str, &str)], rows: Vec<serde_json::Value>) {
        self.emit(Event::Table {
            table: table.to_string(),
            columns: columns.iter().map(|(k, t)| Column::new(k, t)).collect(),
            rows,
            mark: None,
        });
    }

    /// Progress of an operation.
    pub fn note(&self, message: impl Into<String>) {
        self.emit(Event::Note {
            message: message.into(),
        });
    }

    /// Why the command cannot do its work.
    pub fn error(&self, error: ErrorEvent) {
        self.emit(Event::Error(Box::new(error)));
    }

    /// One step of an operation.
    pub fn step(&self, step: StepEvent) {
        self.emit(Event::Step(Box::new(step)));
    }

    /// One host's result outside a playbook task.
    pub fn result(&self, task: &str, result: HostResult) {
        self.emit(Event::Result {
            task: task.to_string(),
            location: None,
            result: Box::new(result),
        });
    }

    /// Ends the stream: the recap with each host's counts and the exit code; returns the code.
    pub fn finish(&self, hosts: BTreeMap<String, HostCounts>, code: Code) -> Code {
        let took = self.inner.started.elapsed().as_millis() as u64;
        self.finish_after(hosts, code, took)
    }

    /// [`Events::finish`] for work timed elsewhere (runs merged from their reports).
    pub fn finish_after(&self, hosts: BTreeMap<String, HostCounts>, code: Code, duration_ms: u64) -> Code {
        self.emit(Event::Recap {
            hosts,
            duration_ms,
            exit_code: code as u8,
        });
        code
    }
}

/// Where the audit log of a command goes, given `--log-dir`.
pub fn log_dir(flag: Option<&Path>) -> Option<PathBuf> {
    Some(flag.map_or_else(default_log_dir, Path::to_path_buf))
}
