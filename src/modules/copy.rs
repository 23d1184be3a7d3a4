//! `copy` and `template`: content decided on the control node, placed with the transport's
//! atomic upload (checksum first, temp file + rename, optional `validate` before the rename).

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, Plan, Script};
use crate::transport::{Content, FileSpec, INLINE_LIMIT, UploadOutcome, UploadReport};
use std::path::PathBuf;

/// `copy`: a local file or inline `content` to a path on the host.
pub struct Copy;
/// `template`: a Jinja2 file rendered with the host's variables, then placed like `copy`.
pub struct Template;

const COPY_PARAMS: &[Param] = &[
    Param::new("src", Kind::Str),
    Param::new("content", Kind::Any),
    Param::new("dest", Kind::Str).required(),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("backup", Kind::Bool),
    Param::new("force", Kind::Bool),
    Param::new("validate", Kind::Str),
];

const TEMPLATE_PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("backup", Kind::Bool),
    Param::new("force", Kind::Bool),
    Param::new("validate", Kind::Str),
];

impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn params(&self) -> &'static [Param] {
        COPY_PARAMS
    }
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        Some(("src", "files"))
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        match copy_content(ctx, args) {
            Ok((Source::Bytes(content), name)) => place_plan(ctx, args, &content, name.as_deref()),
            // A large file is probed for first, then streamed: not one script.
            Ok((Source::File(_), _)) => None,
            Err(e) => Some(Err(e)),
        }
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            match copy_content(ctx, args)? {
                (Source::Bytes(content), name) => place(ctx, args, &content, name.as_deref()).await,
                (Source::File(path), name) => place_file(ctx, args, &path, name.as_deref()).await,
            }
        })
    }
}

/// Where `copy`'s content comes from.
enum Source {
    /// Inline content, or a small file read whole.
    Bytes(Vec<u8>),
    /// A file too large to hold: streamed from disk.
    File(PathBuf),
}

impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }
    fn params(&self) -> &'static [Param] {
        TEMPLATE_PARAMS
    }
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        Some(("src", "templates"))
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        match template_content(ctx, args) {
            Ok((content, name)) => place_plan(ctx, args, &content, name.as_deref()),
            Err(e) => Some(Err(e)),
        }
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let (content, name) = template_content(ctx, args)?;
            place(ctx, args, &content, name.as_deref()).await
        })
    }
}

/// `copy`'s content: inline or a control-node file, and the file's name (for a directory `dest`).
fn copy_content(ctx: &Ctx<'_>, args: &Args) -> Result<(Source, Option<String>), ModuleError> {
    match (args.get("content"), args.str("src")) {
        (Some(c), None) => {
            let text = match c {
                serde_json::Value::String(s) => s.clone(),
                // A boolean as Python writes it; structured content as JSON, as Ansible does.
                serde_json::Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            Ok((Source::Bytes(text.into_bytes()), None))
        }
        (None, Some(src)) => {
            let path = ctx.find_file(src, "files")?;
            if path.is_dir() {
                return Err(ModuleError::Args(format!(
                    "`src: {src}` is a directory; copying directories is not supported"
                )));
            }
            let unreadable = |e: std::io::Error| ModuleError::Failed(format!("cannot read {}: {e}", path.display()));
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            // A vault-encrypted file is copied decrypted, as Ansible copies it.
            let mut head = [0u8; 64];
            let n = std::io::Read::read(&mut std::fs::File::open(&path).map_err(unreadable)?, &mut head)
                .map_err(unreadable)?;
            if !crate::vault::is_vault(&head[..n]) && std::fs::metadata(&path).map_err(unreadable)?.len() > INLINE_LIMIT
            {
                return Ok((Source::File(path), name));
            }
            let bytes = std::fs::read(&path).map_err(unreadable)?;
            Ok((
                Source::Bytes(crate::vault::open_content(&path, bytes).map_err(ModuleError::Failed)?),
                name,
            ))
        }
        (Some(_), Some(_)) => Err(ModuleError::Args("`copy` takes `src` or `content`, not both".into())),
        (None, None) => Err(ModuleError::Args("`copy` needs `src` or `content`".into())),
    }
}

/// `template`'s content: the rendered file, and its name without `.j2`.
fn template_content(ctx: &Ctx<'_>, args: &Args) -> Result<(Vec<u8>, Option<String>), ModuleError> {
    let src = args.str("src").unwrap_or_default();
    let path = ctx.find_file(src, "templates")?;
    let bytes =
        std::fs::read(&path).map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let bytes = crate::vault::open_content(&path, bytes).map_err(ModuleError::Failed)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ModuleError::Failed(format!("cannot read {}: not UTF-8 text", path.display())))?;
    // `ansible_managed` exists in template files only, with Ansible's default text, so files
    // rendered by both tools are the same.
    let mut scope = ctx.scope.clone();
    if scope.get("ansible_managed").is_none() {
        scope.set("ansible_managed", "Ansible managed".into());
    }
    let rendered = ctx
        .engine
        .render_string(&text, &scope, true)
        .map_err(|e| ModuleError::Failed(format!("template {}: {e}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".j2").to_string());
    Ok((rendered.into_bytes(), name))
}

/// The upload's description from the common file parameters.
fn spec<'a>(
    ctx: &Ctx<'_>,
    args: &'a Args,
    content: Content<'a>,
    name: Option<&'a str>,
) -> Result<FileSpec<'a>, ModuleError> {
    let mode = match args.str("mode") {
        Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
            ModuleError::Args(format!(
                "mode `{m}`: only octal modes are supported for file content; use `file` for symbolic modes"
            ))
        })?),
        None => None,
    };
    Ok(FileSpec {
        mode,
        owner: args.str("owner"),
        group: args.str("group"),
        validate: args.str("validate"),
        backup: args.bool("backup", false),
        force: args.bool("force", true),
        name_in_dir: name,
        want_before: ctx.diff,
        ..FileSpec::new(args.str("dest").unwrap_or_default(), content)
    })
}

/// Placing the content as one script, when it is small enough to travel with the probe.
fn place_plan(ctx: &Ctx<'_>, args: &Args, content: &[u8], name: Option<&str>) -> Option<Result<Plan, ModuleError>> {
    let spec = match spec(ctx, args, Content::Bytes(content), name) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let (script, stdin) = crate::transport::one_step(&spec, ctx.check)?;
    let dest = spec.dest.to_string();
    let validate = spec.validate.map(str::to_string);
    let diff = ctx.diff;
    // The content travels as stdin; a second copy is kept only for the diff.
    let content = if diff { content.to_vec() } else { Vec::new() };
    Some(Ok(Plan::Remote(Script::new(script, stdin, move |out| {
        let report =
            crate::transport::read_report(&out, &dest).map_err(|e| super::upload_failure(e, validate.as_deref()))?;
        Ok(placed(&report, diff, &content))
    }))))
}

/// Puts content at `dest` with the common file parameters, reporting a diff when asked.
async fn place(ctx: &Ctx<'_>, args: &Args, content: &[u8], name: Option<&str>) -> Result<ModuleResult, ModuleError> {
    if let Some(plan) = place_plan(ctx, args, content, name) {
        return ctx.run_plan(plan?).await;
    }
    let spec = spec(ctx, args, Content::Bytes(content), name)?;
    let report = ctx
        .remote()?
        .upload(&spec, ctx.check)
        .await
        .map_err(|e| super::upload_failure(e, spec.validate))?;
    Ok(placed(&report, ctx.diff, content))
}

/// Puts a large local file at `dest`: its checksum is compared first and its content streamed
/// from disk only when it differs (no diff is shown for it).
async fn place_file(
    ctx: &Ctx<'_>,
    args: &Args,
    path: &std::path::Path,
    name: Option<&str>,
) -> Result<ModuleResult, ModuleError> {
    let hashed = crate::transport::hash_file(path)
        .await
        .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let spec = spec(ctx, args, Content::File { path, hashed }, name)?;
    let report = ctx
        .remote()?
        .upload(&spec, ctx.check)
        .await
        .map_err(|e| super::upload_failure(e, spec.validate))?;
    Ok(placed(&report, false, &[]))
}

/// The result of a placed file.
fn placed(report: &UploadReport, diff: bool, content: &[u8]) -> ModuleResult {
    let mut r = ModuleResult::changed(report.outcome.changed());
    r.data.insert("dest".into(), report.dest.clone().into());
    if let Some(b) = &report.backup_file {
        r.data.insert("backup_file".into(), b.clone().into());
    }
    if diff && matches!(report.outcome, UploadOutcome::Created | UploadOutcome::Replaced) {
        let before = report
            .before
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        r.diff.push(Diff {
            path: report.dest.clone(),
            before,
            after: String::from_utf8_lossy(content).into_owned(),
        });
    }
    r
}
