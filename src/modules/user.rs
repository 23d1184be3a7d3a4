//! `user`: local accounts, probed with `getent passwd` (and `getent shadow` for `password`) and
//! changed with `useradd`, one `usermod` for every attribute that differs, or `userdel`, in one
//! remote script. The crypted password reaches `chpasswd -e` on stdin and the script itself
//! travels on stdin, so the hash never shows in a process list.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `user`: local accounts that services and people log in as, kept as declared.
pub struct User;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["user"]),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("uid", Kind::Int),
    Param::new("group", Kind::Str),
    Param::new("groups", Kind::List),
    Param::new("append", Kind::Bool),
    Param::new("shell", Kind::Str),
    Param::new("home", Kind::Str),
    Param::new("create_home", Kind::Bool).aliases(&["createhome"]),
    Param::new("move_home", Kind::Bool),
    Param::new("system", Kind::Bool),
    Param::new("password", Kind::Str).secret(),
    Param::new("update_password", Kind::Str).choices(&["always", "on_create"]),
    Param::new("comment", Kind::Str),
    Param::new("remove", Kind::Bool),
    Param::new("force", Kind::Bool),
];

/// A user or group name `useradd` takes on any distribution, and that `getent` cannot mistake
/// for a numeric id.
pub(super) fn valid_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c) || c == '$')
        && !name.chars().all(|c| c.is_ascii_digit())
}

/// A value that goes into one `/etc/passwd` field.
fn check_field(param: &str, value: &str) -> Result<(), ModuleError> {
    if value.contains([':', '\n', '\t']) {
        return Err(ModuleError::Args(format!(
            "`user` {param}: `{value}` holds a colon, tab or newline, which /etc/passwd cannot store"
        )));
    }
    Ok(())
}

const SCRIPT: &str = concat!(
    step_script!(),
    r#"set -f
note() { printf '@@tend change\t%s\t%s\t%s\n' "$1" "$2" "$3"; }
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
setpw() {
  say "run chpasswd -e"
  printf '%s:%s\n' "$name" "$password" | chpasswd -e >"$o" 2>"$e"; rc=$?
  cat "$o"; cat "$e" >&2
  if [ "$rc" != 0 ]; then say "fail chpasswd $rc"; exit "$rc"; fi
}
report() {
  say "passwd $(getent passwd "$name")"
  say "groups $(getent group | awk -F: -v u="$name" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { print $1; break } }' | sort | paste -sd, -)"
}
cur=$(getent passwd "$name") || cur=""
if [ "$state" = absent ]; then
  [ -n "$cur" ] || { say absent; exit 0; }
  note user present absent
  [ "$check" = 1 ] && exit 0
  set -- userdel
  [ "$force" = 1 ] && set -- "$@" -f
  [ "$remove" = 1 ] && set -- "$@" -r
  step "$@" "$name"
  exit 0
fi
missing=""
tgid=""
if [ -n "$group" ]; then
  if gl=$(getent group "$group"); then tgid=$(echo "$gl" | cut -d: -f3); else missing=" $group"; tgid=$group; fi
fi
want=""
for g in $(echo "$groups" | tr , ' '); do
  if gl=$(getent group "$g"); then
    gn=${gl%%:*}; has "$want" "$gn" || want="${want:+$want,}$gn"
  else
    missing="$missing $g"; want="${want:+$want,}$g"
  fi
done
# Check mode goes on: an earlier task of the play may be the one that creates the group.
if [ -n "$missing" ]; then say "nogroup$missing"; [ "$check" = 1 ] || exit 6; fi
pwchange=0
if [ -z "$cur" ]; then
  note user absent present
  if [ "$check" != 1 ]; then
    set -- useradd
    [ -n "$uid" ] && set -- "$@" -u "$uid"
    if [ -n "$group" ]; then set -- "$@" -g "$group"
    elif getent group "$name" >/dev/null; then set -- "$@" -N
    fi
    [ -n "$want" ] && set -- "$@" -G "$want"
    [ -n "$shell" ] && set -- "$@" -s "$shell"
    [ -n "$home" ] && set -- "$@" -d "$home"
    [ "$comment_set" = 1 ] && set -- "$@" -c "$comment"
    [ "$system" = 1 ] && set -- "$@" -r
    if [ "$create_home" = 1 ]; then set -- "$@" -m; else set -- "$@" -M; fi
    step "$@" "$name"
    [ "$password_set" = 1 ] && setpw
  fi
  [ "$check" = 1 ] || report
  exit 0
fi
IFS=: read -r _ _ cuid cgid ccomment chome cshell <<EOF
$cur
EOF
set -- usermod
if [ -n "$uid" ] && [ "$uid" != "$cuid" ]; then set -- "$@" -u "$uid"; note uid "$cuid" "$uid"; fi
if [ -n "$tgid" ] && [ "$tgid" != "$cgid" ]; then set -- "$@" -g "$group"; note group "$cgid" "$tgid"; fi
if [ -n "$shell" ] && [ "$shell" != "$cshell" ]; then set -- "$@" -s "$shell"; note shell "$cshell" "$shell"; fi
if [ -n "$home" ] && [ "$home" != "$chome" ]; then
  set -- "$@" -d "$home"; [ "$move_home" = 1 ] && set -- "$@" -m; note home "$chome" "$home"
fi
if [ "$comment_set" = 1 ] && [ "$comment" != "$ccomment" ]; then set -- "$@" -c "$comment"; note comment "$ccomment" "$comment"; fi
if [ "$groups_set" = 1 ]; then
  pname=$(getent group "${tgid:-$cgid}" | cut -d: -f1)
  have=$(getent group | awk -F: -v u="$name" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { print $1; break } }' | sort | paste -sd, -)
  wanted=""
  for g in $(echo "$want" | tr , ' '); do [ "$g" = "$pname" ] || wanted="${wanted:+$wanted,}$g"; done
  if [ "$append" = 1 ]; then
    add=""; all=$have
    for g in $(echo "$wanted" | tr , ' '); do
      has "$have" "$g" || { add="${add:+$add,}$g"; all="${all:+$all,}$g"; }
    done
    if [ -n "$add" ]; then set -- "$@" -a -G "$add"; note groups "$have" "$all"; fi
  else
    same=1
    for g in $(echo "$wanted" | tr , ' '); do has "$have" "$g" || same=0; done
    for g in $(echo "$have" | tr , ' '); do has "$wanted" "$g" || same=0; done
    if [ "$same" = 0 ]; then set -- "$@" -G "$wanted"; note groups "$have" "$wanted"; fi
  fi
fi
if [ "$password_set" = 1 ] && [ "$update_password" = always ]; then
  cpw=$(getent shadow "$name" | cut -d: -f2)
  if [ "$cpw" != "$password" ]; then note password "" ""; pwchange=1; fi
fi
if [ "$check" != 1 ]; then
  [ $# -gt 1 ] && step "$@" "$name"
  [ "$pwchange" = 1 ] && setpw
fi
report
"#
);

/// The script's report, read back.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// (attribute, before, after).
    changes: Vec<(String, String, String)>,
    /// The `/etc/passwd` line at the end.
    passwd: Option<String>,
    groups: String,
    missing_groups: Vec<String>,
    /// The last command started, for failure reports.
    ran: Option<String>,
    failed: Option<(String, i32)>,
}

impl Report {
    fn parse(marks: &[String]) -> Self {
        let mut r = Report::default();
        for m in marks {
            if let Some(rest) = m.strip_prefix("change\t") {
                let mut f = rest.splitn(3, '\t');
                let mut next = || f.next().unwrap_or_default().to_string();
                r.changes.push((next(), next(), next()));
            } else if let Some(line) = m.strip_prefix("passwd ") {
                r.passwd = Some(line.to_string()).filter(|l| !l.is_empty());
            } else if let Some(g) = m.strip_prefix("groups") {
                r.groups = g.trim().to_string();
            } else if let Some(g) = m.strip_prefix("nogroup") {
                r.missing_groups = g.split_whitespace().map(str::to_string).collect();
            } else if let Some(cmd) = m.strip_prefix("run ") {
                r.ran = Some(cmd.to_string());
            } else if let Some(f) = m.strip_prefix("fail ") {
                let (stage, rc) = f.rsplit_once(' ').unwrap_or((f, "1"));
                r.failed = Some((stage.to_string(), rc.parse().unwrap_or(1)));
            }
        }
        r
    }
}

/// `/etc/passwd` fields for `register`.
fn passwd_fields(line: &str) -> Option<[&str; 7]> {
    let f: Vec<&str> = line.split(':').collect();
    <[&str; 7]>::try_from(f).ok()
}

impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            if !valid_account_name(name) {
                return Err(ModuleError::Args(format!(
                    "`user` name `{name}` is not a user name (letters, digits, `_.-`, not only digits, at most 32)"
                )));
            }
            for p in ["group", "shell", "home", "comment", "password"] {
                check_field(p, args.str(p).unwrap_or_default())?;
            }
            let groups = args.list("groups");
            if let Some(g) = groups.iter().find(|g| g.contains([':', ' ', '\n', '\t'])) {
                return Err(ModuleError::Args(format!("`user` groups: `{g}` is not a group name")));
            }
            let state = args.str("state").unwrap_or("present");
            let flag = |b: bool| if b { "1" } else { "0" };
            let script = format!(
                "name={} state={} check={} uid={} group={} groups={} groups_set={} append={} \
                 shell={} home={} create_home={} move_home={} system={} comment={} comment_set={} \
                 password_set={} update_password={} remove={} force={}\npassword={}\n{SCRIPT}",
                quote(name),
                quote(state),
                flag(ctx.check),
                quote(&args.int("uid").map(|u| u.to_string()).unwrap_or_default()),
                quote(args.str("group").unwrap_or_default()),
                quote(&groups.join(",")),
                flag(args.get("groups").is_some()),
                flag(args.bool("append", false)),
                quote(args.str("shell").unwrap_or_default()),
                quote(args.str("home").unwrap_or_default()),
                flag(args.bool("create_home", true)),
                flag(args.bool("move_home", false)),
                flag(args.bool("system", false)),
                quote(args.str("comment").unwrap_or_default()),
                flag(args.get("comment").is_some()),
                flag(args.get("password").is_some()),
                quote(args.str("update_password").unwrap_or("always")),
                flag(args.bool("remove", false)),
                flag(args.bool("force", false)),
                quote(args.str("password").unwrap_or_default()),
            );
            let out = ctx.run(&script, None).await?;
            let (marks, plain) = split_marked(&out);
            let report = Report::parse(&marks);
            if !report.missing_groups.is_empty() && !ctx.check {
                return Err(ModuleError::Failed(format!(
                    "user {name}: group{} {} not exist on {} (create {} with `group` first)",
                    if report.missing_groups.len() == 1 { "" } else { "s" },
                    report
                        .missing_groups
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if report.missing_groups.len() == 1 {
                            " does"
                        } else {
                            " do"
                        },
                    ctx.host,
                    if report.missing_groups.len() == 1 { "it" } else { "them" },
                )));
            }
            if let Some((tool, _)) = &report.failed {
                return Err(ModuleError::remote(
                    format!("user {name}: {tool} failed on {}: {}", ctx.host, last_line(&plain)),
                    report.ran.clone().unwrap_or_else(|| tool.clone()),
                    &plain,
                ));
            }
            if !out.success() {
                return Err(ModuleError::remote(
                    format!("user {name}: the probe failed on {}: {}", ctx.host, last_line(&plain)),
                    "getent passwd",
                    &plain,
                ));
            }
            let mut r = ModuleResult::changed(!report.changes.is_empty());
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(match report.changes.first() {
                None if state == "absent" => format!("user {name} does not exist"),
                None => format!("user {name} is as wanted"),
                Some((a, _, after)) if a == "user" && after == "present" => {
                    format!("{would}create user {name}")
                }
                Some((a, _, _)) if a == "user" => format!("{would}remove user {name}"),
                Some(_) => format!(
                    "{would}change {} of user {name}",
                    report
                        .changes
                        .iter()
                        .map(|c| c.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            if let (Some(msg), false) = (&mut r.msg, report.missing_groups.is_empty()) {
                msg.push_str(&format!(
                    " (group {} does not exist yet)",
                    report.missing_groups.join(", ")
                ));
            }
            r.data.insert("name".into(), name.into());
            r.data.insert("state".into(), state.into());
            if let Some(f) = report.passwd.as_deref().and_then(passwd_fields) {
                let mut uid = f[2].to_string();
                let mut gid = f[3].to_string();
                let (mut comment, mut home, mut shell) = (f[4].to_string(), f[5].to_string(), f[6].to_string());
                let mut groups = report.groups.clone();
                // In check mode the line is the one before: show what would be.
                for (attr, _, after) in report.changes.iter().filter(|_| ctx.check) {
                    match attr.as_str() {
                        "uid" => uid = after.clone(),
                        "group" => gid = after.clone(),
                        "comment" => comment = after.clone(),
                        "home" => home = after.clone(),
                        "shell" => shell = after.clone(),
                        "groups" => groups = after.clone(),
                        _ => {}
                    }
                }
                let num = |s: &str| s.parse::<i64>().map(Json::from).unwrap_or(Json::Null);
                r.data.insert("uid".into(), num(&uid));
                r.data.insert("group".into(), num(&gid));
                r.data.insert("comment".into(), comment.into());
                r.data.insert("home".into(), home.into());
                r.data.insert("shell".into(), shell.into());
                r.data.insert("groups".into(), groups.into());
            }
            if ctx.diff && r.changed {
                let (mut before, mut after) = (String::new(), String::new());
                for (attr, b, a) in &report.changes {
                    if attr == "password" {
                        before.push_str("password: (hidden)\n");
                        after.push_str("password: (changed)\n");
                    } else {
                        before.push_str(&format!("{attr}: {b}\n"));
                        after.push_str(&format!("{attr}: {a}\n"));
                    }
                }
                r.diff.push(Diff {
                    path: format!("user {name}"),
                    before,
                    after,
                });
            }
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in ["deploy", "_apt", "www-data", "svc.app", "a1", "machine$"] {
            assert!(valid_account_name(ok), "{ok}");
        }
        for bad in ["", "1000", "-r", "a b", "x:y", "root\n", &"x".repeat(33)] {
            assert!(!valid_account_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn report_lines_are_read_back() {
        let marks: Vec<String> = [
            "change\tshell\t/bin/sh\t/bin/bash",
            "change\tpassword\t\t",
            "change\tcomment\t\tDeploy user",
            "run usermod -s /bin/bash deploy",
            "passwd deploy:x:1001:1001:Deploy user:/home/deploy:/bin/bash",
            "groups adm,sudo",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = Report::parse(&marks);
        assert_eq!(
            r.changes,
            [
                ("shell".into(), "/bin/sh".into(), "/bin/bash".into()),
                ("password".into(), String::new(), String::new()),
                ("comment".into(), String::new(), "Deploy user".into()),
            ]
        );
        assert_eq!(r.ran.as_deref(), Some("usermod -s /bin/bash deploy"));
        assert_eq!(r.groups, "adm,sudo");
        let f = passwd_fields(r.passwd.as_deref().unwrap()).unwrap();
        assert_eq!(f[6], "/bin/bash");
        let r = Report::parse(&["groups ".into(), "nogroup a b".into(), "fail usermod 6".into()]);
        assert_eq!(r.groups, "");
        assert_eq!(r.missing_groups, ["a", "b"]);
        assert_eq!(r.failed, Some(("usermod".into(), 6)));
        assert!(passwd_fields("bad").is_none());
    }
}
