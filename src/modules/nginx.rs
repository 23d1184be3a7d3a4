//! `nginx_site` and `nginx_upstream`: Nginx configuration files that are tested with `nginx -t`
//! before Nginx reloads them. A file that fails the test is rolled back to the previous one
//! (or removed if it is new) and the task fails with Nginx's message: Nginx never reloads a
//! broken configuration.

use super::{Args, BoxFuture, Ctx, Diff, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;
use base64::Engine as _;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// `nginx_site`: a site (server block) from inline `content` or a template `src`.
pub struct NginxSite;
/// `nginx_upstream`: an `upstream` block from a list of servers, for `http` or `stream`.
pub struct NginxUpstream;

const SITE_PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("content", Kind::Str),
    Param::new("src", Kind::Str),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("dest", Kind::Str),
    Param::new("reload", Kind::Bool),
];

const UPSTREAM_PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("servers", Kind::Any).required(),
    Param::new("stream", Kind::Bool),
    Param::new("options", Kind::Any),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("dest", Kind::Str),
    Param::new("reload", Kind::Bool),
];

/// Places or removes the file, tests the whole configuration, rolls back on failure, reloads.
/// Exit 5: `nginx -t` refused the new configuration (stderr holds its message).
const SCRIPT: &str = r#"set -u
dir=$(dirname -- "$dest")
cur=absent
if [ -f "$dest" ]; then cur=present; fi
if [ "$state" = present ] && [ "$cur" = present ] && [ "$(sha256sum < "$dest" | cut -d' ' -f1)" = "$sum" ]; then
  cat > /dev/null; echo unchanged; exit 0
fi
if [ "$state" = absent ] && [ "$cur" = absent ]; then echo unchanged; exit 0; fi
if [ "$cur" = present ] && [ "$(stat -c %s "$dest")" -le 262144 ]; then printf 'before '; base64 -w0 < "$dest"; echo; fi
if [ "$check" = 1 ]; then cat > /dev/null; echo changed; exit 0; fi
command -v nginx >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
mkdir -p -- "$dir" || exit 3
bk=""
if [ "$cur" = present ]; then bk=$(mktemp "$dir/.tend-nginx-backup.XXXXXX") && cp -p -- "$dest" "$bk" || exit 3; fi
if [ "$state" = present ]; then
  tmp=$(mktemp "$dir/.tend-nginx.XXXXXX") || exit 3
  cat > "$tmp" && chmod 644 "$tmp" && mv -f -- "$tmp" "$dest" || { rm -f "$tmp"; exit 3; }
else
  cat > /dev/null; rm -f -- "$dest"
fi
for link in $links; do
  if [ "$state" = present ]; then ln -sfn -- "$dest" "$link"; else rm -f -- "$link"; fi
done
if ! out=$(nginx -t 2>&1); then
  if [ -n "$bk" ]; then mv -f -- "$bk" "$dest"; else rm -f -- "$dest"; for link in $links; do rm -f -- "$link"; done; fi
  printf '%s\n' "$out" >&2
  exit 5
fi
[ -z "$bk" ] || rm -f -- "$bk"
if [ "$reload" = 1 ] && pidof nginx >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then systemctl reload nginx; else nginx -s reload; fi || { echo "reload failed" >&2; exit 6; }
  echo reloaded
fi
echo changed
"#;

/// Applies one Nginx file with the test-and-rollback script.
async fn apply(
    ctx: &Ctx<'_>,
    dest: &str,
    links: &[String],
    content: Option<&str>,
    reload: bool,
) -> Result<ModuleResult, ModuleError> {
    let present = content.is_some();
    let body = content.unwrap_or_default();
    let sum = hex::encode(Sha256::digest(body.as_bytes()));
    let flag = |b: bool| if b { "1" } else { "0" };
    let script = format!(
        "dest={} state={} sum={sum} check={} reload={} links={}\n{SCRIPT}",
        quote(dest),
        if present { "present" } else { "absent" },
        flag(ctx.check),
        flag(reload),
        quote(&links.iter().map(|l| quote(l)).collect::<Vec<_>>().join(" ")),
    );
    let out = ctx.run(&script, Some(body.as_bytes().to_vec())).await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = match out.rc {
            Some(5) => format!(
                "nginx -t refused the new {dest}; the previous configuration was kept and Nginx was not reloaded: {}",
                stderr
                    .trim()
                    .lines()
                    .find(|l| l.contains("emerg") || l.contains("error"))
                    .unwrap_or(stderr.trim())
            ),
            Some(6) => format!("Nginx accepted {dest} but the reload failed"),
            _ => format!("could not write {dest}"),
        };
        return Err(ModuleError::remote(
            msg,
            if out.rc == Some(5) { "nginx -t" } else { "nginx reload" },
            &out,
        ));
    }
    let changed = stdout.lines().any(|l| l == "changed");
    let mut r = ModuleResult::changed(changed);
    if changed && ctx.diff {
        let before = stdout
            .lines()
            .find_map(|l| l.strip_prefix("before "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        r.diff.push(Diff {
            path: dest.to_string(),
            before,
            after: body.to_string(),
        });
    }
    if stdout.lines().any(|l| l == "reloaded") {
        r.msg = Some("configuration tested and reloaded".into());
    }
    r.data.insert("dest".into(), dest.into());
    Ok(r)
}

impl Module for NginxSite {
    fn name(&self) -> &'static str {
        "nginx_site"
    }
    fn params(&self) -> &'static [Param] {
        SITE_PARAMS
    }
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        Some(("src", "templates"))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            let present = args.str("state").unwrap_or("present") == "present";
            let (dest, links) = match args.str("dest") {
                Some(d) => (d.to_string(), Vec::new()),
                None => (
                    format!("/etc/nginx/sites-available/{name}"),
                    vec![format!("/etc/nginx/sites-enabled/{name}")],
                ),
            };
            let content = if !present {
                None
            } else if let Some(c) = args.str("content") {
                Some(c.to_string())
            } else if let Some(src) = args.str("src") {
                let path = ctx.find_file(src, "templates")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", path.display())))?;
                Some(
                    ctx.engine
                        .render_string(&text, ctx.scope, true)
                        .map_err(|e| ModuleError::Failed(format!("template {}: {e}", path.display())))?,
                )
            } else {
                return Err(ModuleError::Args("`nginx_site` needs `content` or `src`".into()));
            };
            apply(ctx, &dest, &links, content.as_deref(), args.bool("reload", true)).await
        })
    }
}

/// The text of an `upstream` block. Servers are `"host:port"` or mappings with `address` and
/// any of `weight`, `max_fails`, `fail_timeout`, `down`, `backup`.
pub fn upstream_block(name: &str, servers: &Json, options: &[String]) -> Result<String, String> {
    let list = match servers {
        Json::Array(a) => a.clone(),
        Json::String(s) => s.split(',').map(|x| Json::String(x.trim().to_string())).collect(),
        other => return Err(format!("`servers` must be a list, found `{other}`")),
    };
    if list.is_empty() {
        return Err("an upstream needs at least one server".into());
    }
    let mut text = format!("# Managed by tend (nginx_upstream {name}).\nupstream {name} {{\n");
    for s in &list {
        let line = match s {
            Json::String(addr) => addr.clone(),
            Json::Object(m) => {
                let addr = m
                    .get("address")
                    .and_then(Json::as_str)
                    .ok_or("each server needs `address`")?;
                let mut line = addr.to_string();
                for key in ["weight", "max_fails", "fail_timeout"] {
                    if let Some(v) = m.get(key) {
                        line.push_str(&format!(
                            " {key}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        ));
                    }
                }
                for flag in ["down", "backup"] {
                    if m.get(flag).is_some_and(crate::template::truthy) {
                        line.push_str(&format!(" {flag}"));
                    }
                }
                line
            }
            other => return Err(format!("a server must be `host:port` or a mapping, found `{other}`")),
        };
        if line.contains([';', '{', '}', '\n']) {
            return Err(format!(
                "server `{line}` contains a character Nginx would read as syntax"
            ));
        }
        text.push_str(&format!("    server {line};\n"));
    }
    for o in options {
        text.push_str(&format!("    {};\n", o.trim_end_matches(';')));
    }
    text.push_str("}\n");
    Ok(text)
}

impl Module for NginxUpstream {
    fn name(&self) -> &'static str {
        "nginx_upstream"
    }
    fn params(&self) -> &'static [Param] {
        UPSTREAM_PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let name = args.str("name").unwrap_or_default();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ModuleError::Args(format!(
                    "upstream name `{name}` must be letters, digits, `_` or `-`"
                )));
            }
            let stream = args.bool("stream", false);
            let dest = args.str("dest").map(str::to_string).unwrap_or_else(|| {
                if stream {
                    format!("/etc/nginx/stream.d/upstream-{name}.conf")
                } else {
                    format!("/etc/nginx/conf.d/upstream-{name}.conf")
                }
            });
            let options: Vec<String> = match args.get("options") {
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
                    .collect(),
                Some(Json::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            };
            let content = if args.str("state").unwrap_or("present") == "present" {
                Some(
                    upstream_block(name, args.get("servers").unwrap_or(&Json::Null), &options)
                        .map_err(ModuleError::Args)?,
                )
            } else {
                None
            };
            apply(ctx, &dest, &[], content.as_deref(), args.bool("reload", true)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_block;
    use serde_json::json;

    #[test]
    fn upstream_text() {
        let text = upstream_block(
            "app",
            &json!(["10.0.0.2:8080", {"address": "10.0.0.3:8080", "max_fails": 2, "fail_timeout": "5s", "down": true}]),
            &["keepalive 16".into()],
        )
        .unwrap();
        assert_eq!(
            text,
            "# Managed by tend (nginx_upstream app).\nupstream app {\n    server 10.0.0.2:8080;\n    server 10.0.0.3:8080 max_fails=2 fail_timeout=5s down;\n    keepalive 16;\n}\n"
        );
        assert!(upstream_block("app", &json!(["a; evil"]), &[]).is_err());
        assert!(upstream_block("app", &json!([]), &[]).is_err());
    }
}
