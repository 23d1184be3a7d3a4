//! `yum_repository`: one repository's section in `/etc/yum.repos.d/FILE.repo`, written as
//! Ansible writes it (Python's configparser: sorted keys, `key = value`, booleans as 0/1, URL
//! lists one per continuation line); the file is read, edited on the control node and written
//! back through the checksum-guarded upload of `textfile`, or removed when no section is left.

use super::{
    Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Next, Param, Plan, Script, run_planned, textfile,
};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `yum_repository`.
pub struct YumRepository;

/// Parameters that are the repository's own keys (the rest are where and how the file is).
const KEYS: &[(&str, Kind)] = &[
    ("async", Kind::Bool),
    ("bandwidth", Kind::Str),
    ("baseurl", Kind::List),
    ("cost", Kind::Str),
    ("countme", Kind::Bool),
    ("deltarpm_percentage", Kind::Str),
    ("enabled", Kind::Bool),
    ("enablegroups", Kind::Bool),
    ("exclude", Kind::List),
    ("failovermethod", Kind::Str),
    ("gpgcheck", Kind::Bool),
    ("gpgkey", Kind::List),
    ("include", Kind::Str),
    ("includepkgs", Kind::List),
    ("ip_resolve", Kind::Str),
    ("keepalive", Kind::Bool),
    ("metadata_expire", Kind::Str),
    ("metalink", Kind::Str),
    ("mirrorlist", Kind::Str),
    ("module_hotfixes", Kind::Bool),
    ("password", Kind::Str),
    ("priority", Kind::Str),
    ("proxy", Kind::Str),
    ("proxy_password", Kind::Str),
    ("proxy_username", Kind::Str),
    ("repo_gpgcheck", Kind::Bool),
    ("retries", Kind::Str),
    ("s3_enabled", Kind::Bool),
    ("skip_if_unavailable", Kind::Bool),
    ("sslcacert", Kind::Str),
    ("sslclientcert", Kind::Str),
    ("sslclientkey", Kind::Str),
    ("sslverify", Kind::Bool),
    ("throttle", Kind::Str),
    ("timeout", Kind::Str),
    ("username", Kind::Str),
];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("description", Kind::Str),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("file", Kind::Str),
    Param::new("reposdir", Kind::Str),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("mode", Kind::Str),
    Param::new("async", Kind::Bool),
    Param::new("bandwidth", Kind::Str),
    Param::new("baseurl", Kind::List),
    Param::new("cost", Kind::Str),
    Param::new("countme", Kind::Bool),
    Param::new("deltarpm_percentage", Kind::Str),
    Param::new("enabled", Kind::Bool),
    Param::new("enablegroups", Kind::Bool),
    Param::new("exclude", Kind::List).aliases(&["excludepkgs"]),
    Param::new("failovermethod", Kind::Str).choices(&["roundrobin", "priority"]),
    Param::new("gpgcheck", Kind::Bool),
    Param::new("gpgkey", Kind::List),
    Param::new("include", Kind::Str),
    Param::new("includepkgs", Kind::List),
    Param::new("ip_resolve", Kind::Str).choices(&["4", "6", "IPv4", "IPv6", "whatever"]),
    Param::new("keepalive", Kind::Bool),
    Param::new("metadata_expire", Kind::Str),
    Param::new("metalink", Kind::Str),
    Param::new("mirrorlist", Kind::Str),
    Param::new("module_hotfixes", Kind::Bool),
    Param::new("password", Kind::Str).secret(),
    Param::new("priority", Kind::Str),
    Param::new("proxy", Kind::Str),
    Param::new("proxy_password", Kind::Str).secret(),
    Param::new("proxy_username", Kind::Str),
    Param::new("repo_gpgcheck", Kind::Bool),
    Param::new("retries", Kind::Str),
    Param::new("s3_enabled", Kind::Bool),
    Param::new("skip_if_unavailable", Kind::Bool),
    Param::new("sslcacert", Kind::Str).aliases(&["ca_cert"]),
    Param::new("sslclientcert", Kind::Str).aliases(&["client_cert"]),
    Param::new("sslclientkey", Kind::Str).aliases(&["client_key"]),
    Param::new("sslverify", Kind::Bool).aliases(&["validate_certs"]),
    Param::new("throttle", Kind::Str),
    Param::new("timeout", Kind::Str),
    Param::new("username", Kind::Str),
];

/// An INI file as Python's `RawConfigParser` reads it: sections in order, each with its keys
/// (lower-cased) in order; continuation lines join the value with newlines.
type Ini = Vec<(String, Vec<(String, String)>)>;

fn parse(text: &str) -> Ini {
    let mut ini: Ini = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = ini.last_mut().and_then(|(_, keys)| keys.last_mut()) {
                v.push('\n');
                v.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            ini.push((name.to_string(), Vec::new()));
            continue;
        }
        let (k, v) = match trimmed.find(['=', ':']) {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (trimmed, ""),
        };
        if let Some((_, keys)) = ini.last_mut() {
            let k = k.trim().to_lowercase();
            keys.retain(|(old, _)| *old != k);
            keys.push((k, v.trim().to_string()));
        }
    }
    ini
}

/// Writes as `RawConfigParser.write` does.
fn write(ini: &Ini) -> String {
    let mut out = String::new();
    for (name, keys) in ini {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in keys {
            out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
        }
        out.push('\n');
    }
    out
}

/// Sections and keys sorted: what Ansible compares to decide whether anything changed.
fn dump(ini: &Ini) -> String {
    let mut sorted = ini.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, keys) in &mut sorted {
        keys.sort();
    }
    write(&sorted)
}

/// The section's keys from the task, sorted by name as Ansible sets them.
fn section(args: &Args) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(d) = args.str("description") {
        keys.push(("name".into(), d.to_string()));
    }
    for (key, kind) in KEYS {
        let value = match (kind, args.get(key)) {
            (_, None | Some(Json::Null)) => continue,
            (Kind::Bool, Some(_)) => (if args.bool(key, false) { "1" } else { "0" }).to_string(),
            (Kind::List, Some(_)) => {
                let sep = if matches!(*key, "baseurl" | "gpgkey") {
                    "\n"
                } else {
                    " "
                };
                args.list(key).join(sep)
            }
            (_, Some(Json::String(s))) => s.clone(),
            (_, Some(other)) => other.to_string(),
        };
        keys.push((key.to_string(), value));
    }
    keys.sort();
    keys
}

impl Module for YumRepository {
    fn name(&self) -> &'static str {
        "yum_repository"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        Some(plan(ctx, args))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        run_planned(plan(ctx, args), ctx)
    }
}

fn plan(ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let name = args.str("name").unwrap_or_default().to_string();
    let present = args.str("state").unwrap_or("present") == "present";
    if present {
        if args.str("description").is_none() {
            return Err(ModuleError::Args(
                "`yum_repository` state=present needs `description`".into(),
            ));
        }
        if ["baseurl", "mirrorlist", "metalink"]
            .iter()
            .all(|p| args.get(p).is_none())
        {
            return Err(ModuleError::Args(
                "`yum_repository` state=present needs one of `baseurl`, `mirrorlist`, `metalink`".into(),
            ));
        }
    }
    if name.is_empty() || name.contains(['[', ']', '\n']) {
        return Err(ModuleError::Args(format!(
            "`yum_repository` name `{name}` is not a repository id"
        )));
    }
    textfile::octal_mode(args)?;
    let file = args.str("file").unwrap_or(&name).to_string();
    let path = format!("{}/{file}.repo", args.str("reposdir").unwrap_or("/etc/yum.repos.d"));
    let (check, diff) = (ctx.check, ctx.diff);
    let args = args.clone();
    let script = textfile::read_script(&path, false);
    Ok(Plan::Remote(Script::chained(script, None, move |out| {
        let cur = textfile::parse_read(&out, "yum_repository", &path)?;
        let text = String::from_utf8_lossy(cur.content.as_deref().unwrap_or_default()).into_owned();
        let before = parse(&text);
        let mut after = before.clone();
        after.retain(|(s, _)| *s != name);
        if present {
            after.push((name.clone(), section(&args)));
        }
        let finish = {
            let name = name.clone();
            move |r: &mut ModuleResult, _: Option<String>| {
                r.data.insert("repo".into(), name.into());
                r.data
                    .insert("state".into(), (if present { "present" } else { "absent" }).into());
            }
        };
        if dump(&before) == dump(&after) {
            // Nothing to change in the repositories: the file as it is (its attributes may).
            let same = cur.content.clone().unwrap_or_default();
            if cur.content.is_none() {
                let mut r = ModuleResult::changed(false);
                finish(&mut r, None);
                return Ok(Next::Done(Box::new(r)));
            }
            return textfile::write_next(check, diff, &args, &cur, same, "", finish);
        }
        if after.is_empty() {
            let mut r = ModuleResult::changed(true);
            r.msg = Some(format!(
                "{}remove {path}, its last repository gone",
                if check { "would " } else { "" }
            ));
            if diff {
                r.diff.push(super::Diff {
                    path: path.clone(),
                    before: dump(&before),
                    after: String::new(),
                });
            }
            finish(&mut r, None);
            if check {
                return Ok(Next::Done(Box::new(r)));
            }
            let path = path.clone();
            return Ok(Next::Then(Script::new(
                format!("rm -f -- {}", quote(&path)),
                None,
                move |out| {
                    if !out.success() {
                        return Err(ModuleError::remote(
                            format!("cannot remove {path}"),
                            format!("rm -f {path}"),
                            &out,
                        ));
                    }
                    Ok(r)
                },
            )));
        }
        let msg = if present {
            "repository written"
        } else {
            "repository removed"
        };
        textfile::write_next(check, diff, &args, &cur, write(&after).into_bytes(), msg, finish)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_as_configparser() {
        let ini = parse("# c\n[a]\nName=A\nbaseurl = http://x/\n  http://y/\n\n[b]\nk: v\n");
        assert_eq!(
            write(&ini),
            "[a]\nname = A\nbaseurl = http://x/\n\thttp://y/\n\n[b]\nk = v\n\n"
        );
        assert_eq!(parse(&write(&ini)), ini);
    }
}
