//! `release`: the host part of a deploy in a playbook: stage a release into
//! `root/releases/<id>` (checksum verified on the host, unpacked, `shared/` linked) and point
//! `current` at it atomically. The same steps `tend deploy` runs; restarts go through handlers,
//! health gates through `uri`, and load-balancer draining and automatic rollback are what
//! `tend deploy` adds on top.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::release::artifact::{self, Artifact};
use crate::release::remote::{self, Staged};
use crate::release::settings::{self, HostSettings, Unpack};
use serde_json::Value as Json;
use std::time::Duration;

/// `release`: stage a release and switch `current` to it.
pub struct Release;

const PARAMS: &[Param] = &[
    Param::new("id", Kind::Str).required(),
    Param::new("artifact", Kind::Str),
    Param::new("url", Kind::Str),
    Param::new("checksum", Kind::Str),
    Param::new("root", Kind::Str),
    Param::new("unpack", Kind::Str).choices(&["exploded", "archive"]),
    Param::new("shared_dirs", Kind::Any),
    Param::new("shared_files", Kind::Any),
    Param::new("switch", Kind::Str).choices(&["always", "initial", "never"]),
    Param::new("keep", Kind::Int),
];

/// `checksum:` as a SHA-256; given but malformed is an error, never a silently unchecked
/// artifact.
fn checksum(args: &Args) -> Result<Option<String>, ModuleError> {
    match args.str("checksum") {
        None => Ok(None),
        Some(c) => artifact::parse_checksum(c).map(Some).ok_or_else(|| {
            ModuleError::Args(format!(
                "`checksum: {c}` is not a SHA-256 checksum (64 hex digits, optionally prefixed with `sha256:`)"
            ))
        }),
    }
}

fn paths(args: &Args, name: &str) -> Result<Vec<String>, ModuleError> {
    let list = args.list(name);
    for p in &list {
        if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(ModuleError::Args(format!(
                "`{name}`: `{p}` must be a relative path inside the release"
            )));
        }
    }
    Ok(list)
}

impl Module for Release {
    fn name(&self) -> &'static str {
        "release"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        Some(("artifact", "files"))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let id = args.str("id").unwrap_or_default();
            settings::check_release_id(id).map_err(|d| ModuleError::Args(d.message))?;
            let root = args.str("root").unwrap_or("/srv/shop").trim_end_matches('/');
            if !root.starts_with('/') || root.split('/').any(|c| c == "..") {
                return Err(ModuleError::Args(format!(
                    "`root` must be an absolute path, found `{root}`"
                )));
            }
            let s = HostSettings {
                host: ctx.host.to_string(),
                root: root.to_string(),
                keep: args.int("keep").unwrap_or(0).max(0) as usize,
                unpack: if args.str("unpack") == Some("archive") {
                    Unpack::Archive
                } else {
                    Unpack::Exploded
                },
                shared_dirs: paths(args, "shared_dirs")?,
                shared_files: paths(args, "shared_files")?,
                restart: String::new(),
                restart_timeout: Duration::from_secs(60),
                health: None,
                balancer_group: String::new(),
                upstream: None,
                drain_timeout: Duration::ZERO,
            };
            let expected = checksum(args)?;
            let artifact = match (args.str("artifact"), args.str("url")) {
                (Some(path), None) => {
                    let file = ctx.find_file(path, "files")?;
                    Artifact::load(&file.to_string_lossy(), expected.as_deref())
                        .await
                        .map_err(|e| ModuleError::Failed(e.to_string()))?
                }
                (None, Some(url)) => {
                    let sum = expected.ok_or_else(|| {
                        ModuleError::Args("`url` needs `checksum` (sha256:HEX): the host verifies the download".into())
                    })?;
                    Artifact::remote(url, sum)
                }
                _ => return Err(ModuleError::Args("give exactly one of `artifact` and `url`".into())),
            };
            let on = ctx.remote()?;
            let state = remote::inspect(on, &s).await?;
            if args.str("switch") == Some("initial")
                && let Some(current) = &state.current
            {
                let mut r = ModuleResult::changed(false);
                r.msg = Some(format!("the host already runs release {current}"));
                r.data.insert("current".into(), current.clone().into());
                return Ok(r);
            }
            let staged = state.release(id).is_some_and(|r| r.sha256 == artifact.sha256);
            let switch = match args.str("switch").unwrap_or("always") {
                "initial" => state.current.is_none(),
                "never" => false,
                _ => state.current.as_deref() != Some(id),
            };
            let mut r = ModuleResult::changed(!staged || switch);
            r.data.insert("release_id".into(), id.into());
            r.data.insert("sha256".into(), artifact.sha256.clone().into());
            r.data
                .insert("previous".into(), state.current.clone().map_or(Json::Null, Json::from));
            if ctx.check {
                r.data.insert(
                    "current".into(),
                    if switch {
                        Some(id.to_string())
                    } else {
                        state.current.clone()
                    }
                    .map_or(Json::Null, Json::from),
                );
                return Ok(r);
            }
            let me = crate::ops::lock::Me::current();
            let by = format!("{}@{}", me.user, me.control_host);
            let outcome = remote::stage(on, &s, id, &artifact, &by, None).await?;
            r.data.insert("staged".into(), (outcome == Staged::New).into());
            let mut current = state.current.clone();
            if switch {
                remote::switch(on, &s, id).await?;
                current = Some(id.to_string());
            }
            r.data
                .insert("current".into(), current.clone().map_or(Json::Null, Json::from));
            if s.keep > 0 {
                let now = remote::inspect(on, &s).await?;
                let ids = remote::to_prune(&now, s.keep);
                remote::prune(on, &s, &ids).await?;
                r.changed |= !ids.is_empty();
                r.data.insert("pruned".into(), ids.into());
            }
            r.msg = Some(match (outcome, switch) {
                (Staged::New, true) => format!("release {id} staged and current"),
                (Staged::New, false) => format!("release {id} staged"),
                (Staged::Present, true) => format!("release {id} is now current"),
                (Staged::Present, false) => format!("release {id} already in place"),
            });
            Ok(r)
        })
    }
}
