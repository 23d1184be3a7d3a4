//! `get_url`: the host downloads a URL itself (curl, or wget without curl) into a temp file beside
//! `dest`, the checksum is verified, then the file is renamed into place. One round trip: the
//! script skips the download when `dest` already has the wanted checksum (or exists and
//! `force: no`), and replaces `dest` only when the downloaded content differs.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `get_url`.
pub struct GetUrl;

const PARAMS: &[Param] = &[
    Param::new("url", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
    Param::new("checksum", Kind::Str),
    // Removed from Ansible in 2.14; older playbooks still carry it: read as `checksum: sha256:…`.
    Param::new("sha256sum", Kind::Str),
    Param::new("force", Kind::Bool).aliases(&["thirsty"]),
    Param::new("timeout", Kind::Int),
    Param::new("headers", Kind::Dict),
    Param::new("validate_certs", Kind::Bool),
    Param::new("backup", Kind::Bool),
];

/// Exit codes: 3 bad destination or no downloader, 5 download failed, 6 checksum mismatch.
const SCRIPT: &str = r#"if [ -d "$dest" ]; then
  # A directory destination: always downloaded, replaced only when different (as Ansible).
  name=${url%%[?#]*}; name=${name##*/}; [ -n "$name" ] || name=index.html
  dest="${dest%/}/$name"; force=1
fi
echo "dest $dest"
dir=$(dirname -- "$dest")
[ -d "$dir" ] || { echo "Destination directory $dir does not exist" >&2; exit 3; }
if [ -e "$dest" ] && [ ! -f "$dest" ]; then echo "$dest exists and is not a regular file" >&2; exit 3; fi
attrs() {
  a=same
  if [ -n "$mode" ]; then
    want=$mode; case "$mode" in *[!0-7]*) ;; *) want=$(printf %o "0$mode");; esac
    if [ "$(stat -c %a "$1")" != "$want" ]; then a=changed; [ "$check" = 1 ] || chmod "$mode" "$1" || exit 4; fi
  fi
  if [ -n "$owner" ] && [ "$(stat -c %U "$1")" != "$owner" ] && [ "$(stat -c %u "$1")" != "$owner" ]; then
    a=changed; [ "$check" = 1 ] || chown "$owner" "$1" || exit 4
  fi
  if [ -n "$group" ] && [ "$(stat -c %G "$1")" != "$group" ] && [ "$(stat -c %g "$1")" != "$group" ]; then
    a=changed; [ "$check" = 1 ] || chgrp "$group" "$1" || exit 4
  fi
  echo "attrs $a"
}
if [ -f "$dest" ]; then
  if [ -n "$sum" ]; then
    if [ "$(${algo}sum < "$dest" | cut -d' ' -f1)" = "$sum" ]; then echo "skip checksum"; attrs "$dest"; exit 0; fi
  elif [ "$force" = 0 ]; then echo "skip exists"; attrs "$dest"; exit 0; fi
fi
if [ "$check" = 1 ]; then echo "would download"; exit 0; fi
tmp=$(mktemp "$dir/.tend-get_url.XXXXXXXX") || exit 4
trap 'rm -f "$tmp" "$tmp.err" "$tmp.rc"' EXIT
if command -v curl >/dev/null 2>&1; then
  set -- -sS -f -L --connect-timeout "$timeout" --speed-time "$timeout" --speed-limit 1 -o "$tmp" -w '%{http_code}'
  [ "$insecure" = 1 ] && set -- "$@" -k
  # The URL and headers go in a config on stdin: no credential in a command line.
  if code=$(printf '%s' "$curl_cfg" | curl "$@" -K - 2>"$tmp.err"); then echo "status $code"
  else echo "Request failed: $(tail -n1 "$tmp.err")" >&2; exit 5; fi
elif command -v wget >/dev/null 2>&1; then
  set -- -q -T "$timeout" -O "$tmp"
  [ "$insecure" = 1 ] && set -- "$@" --no-check-certificate
  (umask 077 && printf '%s' "$wget_rc" > "$tmp.rc") || exit 4
  if printf '%s\n' "$url" | WGETRC="$tmp.rc" wget "$@" -i - 2>"$tmp.err"; then echo "status 200"
  else rc=$?; echo "Request failed: wget exit $rc $(tail -n1 "$tmp.err")" >&2; exit 5; fi
else
  echo "neither curl nor wget is installed on the host" >&2; exit 3
fi
got=$(${algo}sum < "$tmp" | cut -d' ' -f1)
echo "size $(stat -c %s "$tmp")"
echo "got $got"
if [ -n "$sum" ] && [ "$got" != "$sum" ]; then
  echo "The checksum for $dest did not match $sum; it was $got." >&2; exit 6
fi
if [ -f "$dest" ] && [ "$(${algo}sum < "$dest" | cut -d' ' -f1)" = "$got" ]; then echo "same"; attrs "$dest"; exit 0; fi
if [ -f "$dest" ]; then chmod "$(stat -c %a "$dest")" "$tmp"; else chmod 644 "$tmp"; fi
[ -z "$mode" ] || chmod "$mode" "$tmp" || exit 4
[ -z "$owner" ] || chown "$owner" "$tmp" || exit 4
[ -z "$group" ] || chgrp "$group" "$tmp" || exit 4
if [ -f "$dest" ] && [ "$backup" = 1 ]; then
  bk="$dest.$(date +%Y-%m-%d@%H:%M:%S).$$~"; cp -p "$dest" "$bk"; echo "backup $bk"
fi
mv -f "$tmp" "$dest" || exit 4
rm -f "$tmp.err" "$tmp.rc"
trap - EXIT
echo downloaded
"#;

const ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// `algorithm:hex` as Ansible writes it (a bare hex string is sha1, as in Ansible).
fn parse_checksum(text: &str) -> Result<(&str, String), String> {
    let (algo, hex) = text.split_once(':').unwrap_or(("sha1", text));
    let algo = algo.trim();
    if !ALGORITHMS.contains(&algo) {
        return Err(format!(
            "checksum algorithm `{algo}` is not one of {}",
            ALGORITHMS.join(", ")
        ));
    }
    let hex = hex.trim().to_ascii_lowercase();
    if hex.starts_with("http://") || hex.starts_with("https://") || hex.starts_with("file://") {
        return Err("a checksum given as a URL of a checksum file is not supported; give the digest".into());
    }
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("checksum `{text}` is not `algorithm:hexdigest`"));
    }
    Ok((algo, hex))
}

/// curl's config (`url` and `header` lines, read with `-K -`) and a wgetrc with the headers:
/// the request's URL and headers (often a token) reach the download tool on its stdin or in a
/// private file, never in its command line.
fn request_files(url: &str, headers: Option<&Json>) -> Result<(String, String), String> {
    fn curl_quoted(s: &str) -> String {
        s.replace('\\', "\\\\").replace('"', "\\\"")
    }
    let mut curl = format!("url = \"{}\"\n", curl_quoted(url));
    let mut wget = String::new();
    if let Some(Json::Object(map)) = headers {
        for (k, v) in map {
            let v = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            let h = format!("{k}: {v}");
            if h.contains(['\n', '\r']) {
                return Err(format!("header `{k}` holds a line break"));
            }
            curl.push_str(&format!("header = \"{}\"\n", curl_quoted(&h)));
            wget.push_str(&format!("header = {h}\n"));
        }
    }
    if url.contains(['\n', '\r']) {
        return Err("the URL holds a line break".into());
    }
    Ok((curl, wget))
}

impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let url = args.str("url").unwrap_or_default();
            let dest = args.str("dest").unwrap_or_default();
            super::textfile::octal_mode(args)?;
            let legacy = args
                .str("sha256sum")
                .filter(|s| !s.is_empty())
                .map(|s| format!("sha256:{s}"));
            let (algo, sum) = match args.str("checksum").filter(|c| !c.is_empty()).or(legacy.as_deref()) {
                Some(c) => parse_checksum(c).map_err(ModuleError::Args)?,
                None => ("sha256", String::new()),
            };
            let (curl_cfg, wget_rc) = request_files(url, args.get("headers")).map_err(ModuleError::Args)?;
            let flag = |b: bool| if b { "1" } else { "0" };
            let timeout = args.int("timeout").unwrap_or(10).max(1);
            let script = format!(
                "url={} curl_cfg={} wget_rc={} dest={} sum={} algo={} force={} check={} timeout={} insecure={} mode={} owner={} group={} backup={}\n{SCRIPT}",
                quote(url),
                quote(&curl_cfg),
                quote(&wget_rc),
                quote(dest),
                quote(&sum),
                algo,
                flag(args.bool("force", false)),
                flag(ctx.check),
                timeout,
                flag(!args.bool("validate_certs", true)),
                quote(args.str("mode").unwrap_or("")),
                quote(args.str("owner").unwrap_or("")),
                quote(args.str("group").unwrap_or("")),
                flag(args.bool("backup", false)),
            );
            let out = ctx.run(&script, None).await?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let field = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string);
            let real_dest = field("dest ").unwrap_or_else(|| dest.to_string());
            if !out.success() {
                let reason = crate::modules::last_error_line(&out, "download failed");
                let mut e = ModuleError::remote(reason, format!("get_url {url}"), &out);
                if let ModuleError::Remote(f) = &mut e
                    && out.rc == Some(6)
                {
                    f.message.push_str(" The downloaded file was removed.");
                }
                return Err(e);
            }
            let mut r = ModuleResult::default();
            r.data.insert("url".into(), url.into());
            r.data.insert("dest".into(), real_dest.into());
            if let Some(s) = field("status ").and_then(|s| s.trim().parse::<i64>().ok()) {
                r.data.insert("status_code".into(), s.into());
            }
            if let Some(b) = field("backup ") {
                r.data.insert("backup_file".into(), b.into());
            }
            if let Some(g) = field("got ") {
                r.data.insert("checksum_src".into(), g.into());
            }
            let attrs_changed = field("attrs ").as_deref() == Some("changed");
            if field("skip ").is_some() || stdout.lines().any(|l| l == "same") {
                r.changed = attrs_changed;
                r.msg = Some(if attrs_changed {
                    "file already exists but file attributes changed".into()
                } else {
                    "file already exists".into()
                });
            } else if stdout.lines().any(|l| l == "would download") {
                r.changed = true;
                r.msg = Some("would download".into());
            } else {
                r.changed = true;
                r.msg = Some(match field("size ") {
                    Some(n) => format!("OK ({n} bytes)"),
                    None => "OK".into(),
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
    fn checksums() {
        assert_eq!(parse_checksum("sha256:ABcd").unwrap(), ("sha256", "abcd".to_string()));
        assert_eq!(parse_checksum("abcd").unwrap(), ("sha1", "abcd".to_string()));
        assert!(parse_checksum("crc:12").is_err());
        assert!(parse_checksum("sha256:https://x/sums").is_err());
    }
}
