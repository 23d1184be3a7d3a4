//! `command` (argv, no shell), `shell` (sh -c) and `raw`. With `creates`/`removes` the check and
//! the command run in one remote script; in check mode only the check runs.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Plan, Script, run_planned};
use crate::transport::shell::{join, quote};

/// `command`: runs a program with arguments; no shell features (`|`, `>`, `$VAR`).
pub struct Command;
/// `shell`: runs a command line through `sh`.
pub struct Shell;
/// `raw`: sends the text as is; nothing else.
pub struct Raw;

const COMMAND_PARAMS: &[Param] = &[
    Param::new("cmd", Kind::Str).aliases(&["_raw_params"]),
    Param::new("argv", Kind::List),
    Param::new("chdir", Kind::Str),
    Param::new("creates", Kind::Str),
    Param::new("removes", Kind::Str),
    Param::new("stdin", Kind::Str),
    Param::new("stdin_add_newline", Kind::Bool),
    Param::new("strip_empty_ends", Kind::Bool),
];

const SHELL_PARAMS: &[Param] = &[
    Param::new("cmd", Kind::Str).aliases(&["_raw_params"]),
    Param::new("chdir", Kind::Str),
    Param::new("creates", Kind::Str),
    Param::new("removes", Kind::Str),
    Param::new("executable", Kind::Str),
    Param::new("stdin", Kind::Str),
    Param::new("stdin_add_newline", Kind::Bool),
    Param::new("strip_empty_ends", Kind::Bool),
];

const RAW_PARAMS: &[Param] = &[
    Param::new("cmd", Kind::Str).required().aliases(&["_raw_params"]),
    Param::new("executable", Kind::Str),
];

/// Printed instead of running when `creates`/`removes` say there is nothing to do.
const SKIP_MARK: &str = "__tend_command_skipped__";

impl Module for Command {
    fn name(&self) -> &'static str {
        "command"
    }
    fn params(&self) -> &'static [Param] {
        COMMAND_PARAMS
    }
    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        Some(command_plan(ctx, args))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        run_planned(command_plan(ctx, args), ctx)
    }
}

fn command_plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let argv = if let Some(cmd) = args.str("cmd") {
        shlex::split(cmd)
            .ok_or_else(|| ModuleError::Args(format!("cannot split `{cmd}` into words (unbalanced quotes?)")))?
    } else {
        args.list("argv")
    };
    if argv.is_empty() {
        return Err(ModuleError::Args("`command` needs `cmd` or `argv`".into()));
    }
    Ok(plan_command(ctx, args, &join(&argv), &argv.join(" ")))
}

impl Module for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }
    fn params(&self) -> &'static [Param] {
        SHELL_PARAMS
    }
    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        Some(shell_plan(ctx, args))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        run_planned(shell_plan(ctx, args), ctx)
    }
}

fn shell_plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let cmd = args
        .str("cmd")
        .ok_or_else(|| ModuleError::Args("`shell` needs a command".into()))?;
    let line = match args.str("executable") {
        Some(exe) => format!("{} -c {}", quote(exe), quote(cmd)),
        None => cmd.to_string(),
    };
    Ok(plan_command(ctx, args, &line, cmd))
}

impl Module for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn params(&self) -> &'static [Param] {
        RAW_PARAMS
    }
    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let cmd = args.str("cmd").unwrap_or_default();
            if ctx.check {
                return Ok(ModuleResult {
                    skipped: true,
                    msg: Some("not run in check mode".into()),
                    ..ModuleResult::default()
                });
            }
            let out = ctx.run(cmd, None).await?;
            let mut r = ModuleResult::changed(true).with_output(&out);
            r.failed = !out.success();
            r.cmd = Some(cmd.to_string());
            Ok(r)
        })
    }
}

/// A command line run with `chdir`, `creates`/`removes` and check mode as `command` runs it
/// (also `script`'s wrapper).
pub(super) fn plan_command(ctx: &Ctx<'_>, args: &Args, line: &str, shown: &str) -> Plan {
    let mut script = String::new();
    if let Some(dir) = args.str("chdir") {
        script.push_str(&format!("cd {} || exit $?\n", quote(dir)));
    }
    if let Some(path) = args.str("creates") {
        script.push_str(&format!(
            "if [ -e {} ]; then echo {SKIP_MARK}; exit 0; fi\n",
            quote(path)
        ));
    }
    if let Some(path) = args.str("removes") {
        script.push_str(&format!(
            "if [ ! -e {} ]; then echo {SKIP_MARK}; exit 0; fi\n",
            quote(path)
        ));
    }
    let conditional = args.get("creates").is_some() || args.get("removes").is_some();
    if ctx.check {
        if !conditional {
            return Plan::Local(Box::new(ModuleResult {
                skipped: true,
                msg: Some("not run in check mode (give `creates` or `removes` to let it be checked)".into()),
                ..ModuleResult::default()
            }));
        }
        script.push_str("exit 0\n");
        return Plan::Remote(Script::new(script, None, |out| {
            let skipped = String::from_utf8_lossy(&out.stdout).trim() == SKIP_MARK;
            Ok(ModuleResult {
                changed: !skipped && out.success(),
                msg: Some(if skipped { "nothing to do" } else { "would run" }.into()),
                ..ModuleResult::default()
            })
        }));
    }
    script.push_str(line);
    script.push('\n');
    let stdin = args.str("stdin").map(|s| {
        let mut data = s.as_bytes().to_vec();
        if args.bool("stdin_add_newline", true) {
            data.push(b'\n');
        }
        data
    });
    let what = if args.get("creates").is_some() {
        "`creates` exists"
    } else {
        "`removes` is absent"
    };
    let strip = args.bool("strip_empty_ends", true);
    let shown = shown.to_string();
    Plan::Remote(Script::new(script, stdin, move |out| {
        if out.success() && String::from_utf8_lossy(&out.stdout).trim() == SKIP_MARK {
            return Ok(ModuleResult {
                msg: Some(format!("skipped, since {what}")),
                ..ModuleResult::default()
            });
        }
        let mut r = ModuleResult::changed(true).with_output(&out);
        if strip {
            r.stdout = r.stdout.trim_end_matches('\n').to_string();
            r.stderr = r.stderr.trim_end_matches('\n').to_string();
        }
        r.failed = !out.success();
        r.cmd = Some(shown);
        if r.failed {
            r.msg = Some(match out.rc {
                Some(rc) => format!("non-zero return code {rc}"),
                None => "killed by a signal".into(),
            });
        }
        Ok(r)
    }))
}
