//! `group`: local groups, probed with `getent group` and changed with `groupadd`, `groupmod -g`
//! or `groupdel`, in one remote script.

use super::user::valid_account_name;
use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `group`: local groups, the other half of file permissions and `user` memberships.
pub struct Group;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("gid", Kind::Int),
    Param::new("system", Kind::Bool),
];

const SCRIPT: &str = concat!(
    step_script!(),
    r#"cur=$(getent group "$name") || cur=""
cgid=$(echo "$cur" | cut -d: -f3)
if [ "$state" = absent ]; then
  [ -n "$cur" ] || exit 0
  say "change group $cgid absent"
  [ "$check" = 1 ] || step groupdel "$name"
  exit 0
fi
if [ -z "$cur" ]; then
  say "change group absent ${gid:-present}"
  if [ "$check" != 1 ]; then
    set -- groupadd
    [ -n "$gid" ] && set -- "$@" -g "$gid"
    [ "$system" = 1 ] && set -- "$@" -r
    step "$@" "$name"
  fi
elif [ -n "$gid" ] && [ "$gid" != "$cgid" ]; then
  say "change gid $cgid $gid"
  [ "$check" = 1 ] || step groupmod -g "$gid" "$name"
fi
say "entry $(getent group "$name")"
"#
);

impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            if !valid_account_name(name) {
                return Err(ModuleError::Args(format!(
                    "`group` name `{name}` is not a group name (letters, digits, `_.-`, not only digits, at most 32)"
                )));
            }
            let state = args.str("state").unwrap_or("present");
            let script = format!(
                "name={} state={} gid={} system={} check={}\n{SCRIPT}",
                quote(name),
                quote(state),
                quote(&args.int("gid").map(|g| g.to_string()).unwrap_or_default()),
                if args.bool("system", false) { 1 } else { 0 },
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            let ran = marks.iter().rev().find_map(|m| m.strip_prefix("run "));
            if let Some(f) = marks.iter().find_map(|m| m.strip_prefix("fail ")) {
                let tool = f.split_whitespace().next().unwrap_or("group");
                return Err(ModuleError::remote(
                    format!("group {name}: {tool} failed on {}: {}", ctx.host, last_line(&plain)),
                    ran.unwrap_or(tool),
                    &plain,
                ));
            }
            if !out.success() {
                return Err(ModuleError::remote(
                    format!("group {name}: the probe failed on {}: {}", ctx.host, last_line(&plain)),
                    "getent group",
                    &plain,
                ));
            }
            let change: Option<Vec<&str>> = marks
                .iter()
                .find_map(|m| m.strip_prefix("change "))
                .map(|c| c.split_whitespace().collect());
            let mut r = ModuleResult::changed(change.is_some());
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(match change.as_deref() {
                None if state == "absent" => format!("group {name} does not exist"),
                None => format!("group {name} is as wanted"),
                Some(["group", _, "absent"]) => format!("{would}remove group {name}"),
                Some(["group", ..]) => format!("{would}create group {name}"),
                Some(_) => format!("{would}change gid of group {name}"),
            });
            r.data.insert("name".into(), name.into());
            r.data.insert("state".into(), state.into());
            r.data.insert("system".into(), args.bool("system", false).into());
            let entry = marks.iter().find_map(|m| m.strip_prefix("entry "));
            let gid = match (ctx.check, change.as_deref()) {
                (true, Some([_, _, after])) => after.parse::<i64>().ok(),
                _ => entry
                    .and_then(|e| e.split(':').nth(2))
                    .and_then(|g| g.parse::<i64>().ok()),
            };
            if let Some(g) = gid {
                r.data.insert("gid".into(), Json::from(g));
            }
            if ctx.diff
                && let Some([what, before, after]) = change.as_deref()
            {
                r.diff.push(Diff {
                    path: format!("group {name}"),
                    before: format!("{what}: {before}\n"),
                    after: format!("{what}: {after}\n"),
                });
            }
            Ok(r)
        })
    }
}
