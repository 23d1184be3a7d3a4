//! `migrate`: apply pending schema migrations from a playbook, on the task's host (the
//! primary). The same runbook as `tend migrate up` (validation, the server's answer for each
//! ALTER, Flyway's lock and history, the safety snapshot and its restore, the journal and
//! `resume`); what `tend migrate up` adds on top is the schema's lease lock and waiting for
//! the replicas between migrations.

use super::mysql::{Login, with_login};
use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::migrate::apply::{self, OnFailure, UpOptions};
use crate::migrate::db::Db;
use crate::migrate::files::{self, Version};
use crate::migrate::plan::Limit;
use crate::migrate::{info, snapshot_dir};
use crate::ops::Progress;
use crate::output::StepEvent;
use serde_json::{Value as Json, json};
use std::sync::Mutex;
use std::time::Duration;

/// `migrate`.
pub struct Migrate;

const PARAMS: [Param; 14] = with_login([
    Param::new("dir", Kind::Str).required(),
    Param::new("database", Kind::Str).required(),
    Param::new("to", Kind::Str),
    Param::new("out_of_order", Kind::Bool),
    Param::new("allow_blocking", Kind::Bool),
    Param::new("on_failure", Kind::Str).choices(&["restore", "stop"]),
    Param::new("resume", Kind::Bool),
    Param::new("blocking_limit", Kind::Str),
    Param::new("max_replica_lag", Kind::Int),
]);

/// The runbook's steps, kept for the task's result.
#[derive(Default)]
struct Collected {
    lines: Mutex<Vec<String>>,
}

impl Collected {
    fn push(&self, line: String) {
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    fn take(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

impl Progress for Collected {
    fn step(&self, step: StepEvent) {
        self.push(format!("{}: {}", step.step, step.message));
    }

    fn note(&self, message: String) {
        self.push(message);
    }

    fn warn(&self, message: String) {
        self.push(format!("warning: {message}"));
    }
}

impl Module for Migrate {
    fn name(&self) -> &'static str {
        "migrate"
    }
    fn params(&self) -> &'static [Param] {
        &PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let dir = ctx.find_file(args.str("dir").unwrap_or_default(), "files")?;
            let migrations = files::load(&dir).map_err(|d| ModuleError::Args(d.to_string()))?;
            let to = match args.str("to") {
                Some(t) => {
                    Some(Version::parse(t).ok_or_else(|| ModuleError::Args(format!("`to: {t}` is not a version")))?)
                }
                None => None,
            };
            let limit = match args.str("blocking_limit") {
                Some(l) => Limit::parse(l).ok_or_else(|| {
                    ModuleError::Args(format!(
                        "`blocking_limit: {l}` is neither a row count nor a size like `500MB`"
                    ))
                })?,
                None => crate::migrate::DEFAULT_LIMIT,
            };
            let database = args.str("database").unwrap_or_default().to_string();
            crate::migrate::check_database(&database).map_err(|m| ModuleError::Args(format!("`database`: {m}")))?;
            let db = Db {
                host: ctx.remote()?.clone(),
                login: Login::from_args(args),
                database,
            };
            let out_of_order = args.bool("out_of_order", false);
            if ctx.check {
                let state = apply::state(&db)
                    .await
                    .map_err(|a| ModuleError::Failed(a.error.message))?;
                let info = info::reconcile(&migrations, &state, out_of_order);
                let pending: Vec<String> = info
                    .pending(&migrations, to.as_ref())
                    .iter()
                    .map(|m| m.script.clone())
                    .collect();
                let mut r = ModuleResult::changed(!pending.is_empty());
                r.data.insert("pending".into(), json!(pending));
                r.data
                    .insert("version".into(), json!(info.current.map(|v| v.to_string())));
                return Ok(r);
            }
            let opts = UpOptions {
                to,
                out_of_order,
                allow_blocking: args.bool("allow_blocking", false),
                on_failure: if args.str("on_failure") == Some("stop") {
                    OnFailure::Stop
                } else {
                    OnFailure::Restore
                },
                resume: args.bool("resume", false),
                limit,
                max_lag: Duration::from_secs(
                    args.int("max_replica_lag")
                        .unwrap_or(crate::migrate::DEFAULT_LAG as i64)
                        .max(1) as u64,
                ),
                snapshot_dir: snapshot_dir(),
            };
            let collected = Collected::default();
            let result = apply::up(&collected, &db, &[], &migrations, &opts).await;
            let steps = collected.take();
            let (report, error) = match result {
                Ok(report) => (report, None),
                Err((abort, report)) => (report, Some(abort)),
            };
            let mut r = ModuleResult::changed(!report.applied.is_empty());
            for (k, v) in report.details(&db) {
                r.data.insert(k, v);
            }
            r.data.insert("steps".into(), Json::from(steps));
            if let Some(abort) = error {
                r.failed = true;
                r.msg = Some(abort.error.message.clone());
                r.cmd = abort.error.cause.cmd.clone();
                r.rc = abort.error.cause.rc;
                r.stderr = abort.error.cause.stderr_tail.clone();
            } else {
                r.msg = Some(format!(
                    "schema `{}` at version {}",
                    db.database,
                    report.after.as_deref().unwrap_or("none")
                ));
            }
            Ok(r)
        })
    }
}
