//! `tempfile`: a fresh file or directory with an unpredictable name on the host, for a task
//! that needs scratch space (unpack, then move into place). Made with `mktemp`, so it is created
//! exclusively, never through a symlink planted under the name, and readable by its owner only.

use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Param, Plan, Script, last_line};
use crate::transport::shell::quote;

/// `tempfile`.
pub struct Tempfile;

const PARAMS: &[Param] = &[
    Param::new("state", Kind::Str).choices(&["file", "directory"]),
    Param::new("path", Kind::Str),
    Param::new("prefix", Kind::Str),
    Param::new("suffix", Kind::Str),
];

planned_module!(Tempfile, "tempfile", PARAMS, plan);

fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let dir = args.str("state") == Some("directory");
    let kind = if dir { "directory" } else { "file" };
    let prefix = args.str("prefix").unwrap_or("ansible.");
    let suffix = args.str("suffix").unwrap_or_default();
    if prefix.contains('/') || suffix.contains('/') {
        return Err(ModuleError::Args(
            "tempfile: `prefix` and `suffix` are parts of a name and hold no `/`; put the directory in `path`".into(),
        ));
    }
    if ctx.check {
        // As in Ansible, nothing is made in check mode; the task reports that it would.
        let mut r = ModuleResult::changed(true);
        r.msg = Some(format!("would create a temporary {kind}"));
        return Ok(Plan::Local(Box::new(r)));
    }
    let script = format!(
        "d={}\n[ -n \"$d\" ] || d=${{TMPDIR:-/tmp}}\nmktemp {}--tmpdir=\"$d\" --suffix={} -- {}\n",
        quote(args.str("path").unwrap_or_default()),
        if dir { "-d " } else { "" },
        quote(suffix),
        quote(&format!("{prefix}XXXXXXXX")),
    );
    Ok(Plan::Remote(Script::new(script, None, move |out| {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.success() || path.is_empty() {
            return Err(ModuleError::remote(
                format!("tempfile: no temporary {kind} made: {}", last_line(&out)),
                "mktemp",
                &out,
            ));
        }
        let mut r = ModuleResult::changed(true);
        r.msg = Some(format!("created {path}"));
        r.data.insert("path".into(), path.into());
        Ok(r)
    })))
}
