//! `script`: a script of the control node (looked up in the role's `files/`) run on the host
//! with its arguments, as Ansible's `script` runs it: `creates`/`removes`, `chdir`,
//! `executable`. The script travels inside the task's own remote script (on stdin, never on
//! a command line), is written to a private temporary file, run, and removed.

use super::command::plan_command;
use super::{Args, Ctx, Kind, ModuleError, Param, Plan};
use crate::transport::shell::quote;
use base64::Engine as _;

/// `script`: the one-off migration or check a team already has as a shell script.
pub struct ScriptModule;

const PARAMS: &[Param] = &[
    Param::new("cmd", Kind::Str).aliases(&["_raw_params"]),
    Param::new("chdir", Kind::Str),
    Param::new("creates", Kind::Str),
    Param::new("removes", Kind::Str),
    Param::new("executable", Kind::Str),
    Param::new("decrypt", Kind::Bool),
];

planned_module!(ScriptModule, "script", PARAMS, plan, free_form = Some("cmd"));

/// The script's name and the rest of the line (its arguments, as the shell reads them).
fn split_cmd(cmd: &str) -> Result<(String, &str), ModuleError> {
    let cmd = cmd.trim_start();
    let words = shlex::split(cmd).unwrap_or_default();
    let first = words
        .first()
        .cloned()
        .ok_or_else(|| ModuleError::Args("`script` needs the path of a local script".into()))?;
    // The arguments stay as written; the first word is skipped as the shell would read it.
    let rest = match cmd.find(char::is_whitespace) {
        Some(i) if !cmd.starts_with(['"', '\'']) => &cmd[i..],
        _ => {
            let quote_char = cmd.chars().next().unwrap_or('"');
            cmd[1..].find(quote_char).map_or("", |i| &cmd[i + 2..])
        }
    };
    Ok((first, rest.trim()))
}

fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let cmd = args
        .str("cmd")
        .ok_or_else(|| ModuleError::Args("`script` needs the path of a local script".into()))?;
    let (name, rest) = split_cmd(cmd)?;
    let local = ctx.find_file(&name, "files")?;
    let body =
        std::fs::read(&local).map_err(|e| ModuleError::Failed(format!("could not read {}: {e}", local.display())))?;
    let exe = args.str("executable").map(|e| format!("{e} ")).unwrap_or_default();
    let line = format!(
        "tend_s=$(mktemp) || exit 1\nprintf '%s' {} | base64 -d > \"$tend_s\" && chmod 700 \"$tend_s\" || {{ rm -f \"$tend_s\"; exit 1; }}\n\
         {exe}\"$tend_s\" {rest}\ntend_rc=$?\nrm -f \"$tend_s\"\nexit $tend_rc",
        quote(&base64::engine::general_purpose::STANDARD.encode(&body)),
    );
    Ok(plan_command(ctx, args, &line, cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_and_its_arguments() {
        let (n, r) = split_cmd("scripts/setup.sh --db shop 'a b'").unwrap();
        assert_eq!((n.as_str(), r), ("scripts/setup.sh", "--db shop 'a b'"));
        let (n, r) = split_cmd("'my script.sh' x").unwrap();
        assert_eq!((n.as_str(), r), ("my script.sh", "x"));
        let (n, r) = split_cmd("run.sh").unwrap();
        assert_eq!((n.as_str(), r), ("run.sh", ""));
    }
}
