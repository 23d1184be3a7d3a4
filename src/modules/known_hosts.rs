//! `known_hosts`: a host's public key in a `known_hosts` file, with Ansible's rules: the host
//! is looked up with the host's own `ssh-keygen -F` (so hashed entries are found), a key of the
//! same type that differs is replaced on its line, and `state: absent` without a key removes
//! every entry of the host with `ssh-keygen -R`.

use super::textfile::{PUT_FILE, decode_text};
use super::{Args, Ctx, Diff, Kind, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use base64::Engine as _;
use serde_json::Value as Json;

/// `known_hosts`: trusting the keys of the fleet's own hosts (git servers, replicas).
pub struct KnownHosts;

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["host"]),
    Param::new("key", Kind::Str),
    Param::new("path", Kind::Str),
    Param::new("hash_host", Kind::Bool),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
];

/// A known_hosts line as Ansible compares them: options (`@cert-authority`), host, type, key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    options: Option<String>,
    host: String,
    kind: String,
    key: String,
}

fn normalize(line: &str) -> Option<Entry> {
    let k: Vec<&str> = line.split_whitespace().collect();
    let (options, rest) = match k.first() {
        Some(o) if o.starts_with('@') => (Some(o.to_string()), &k[1..]),
        _ => (None, &k[..]),
    };
    match rest {
        [host, kind, key, ..] => Some(Entry {
            options,
            host: host.to_string(),
            kind: kind.to_string(),
            key: key.to_string(),
        }),
        _ => None,
    }
}

/// What Ansible's `search_for_host_key` finds in `ssh-keygen -F` output: the host is there,
/// its key must be replaced or added, and the line of the key of the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The host has an entry.
    pub found: bool,
    /// The given key is not there as it is.
    pub replace_or_add: bool,
    /// The line (from 1) of the entry to replace.
    pub line: Option<usize>,
}

/// Reads `ssh-keygen -F` output (`None`: the host is not in the file) for a given key.
pub fn search(output: Option<&str>, key: Option<&str>) -> Result<Found, String> {
    let none = Found {
        found: false,
        replace_or_add: false,
        line: None,
    };
    let Some(output) = output.filter(|o| !o.is_empty()) else {
        return Ok(none);
    };
    let Some(key) = key else {
        return Ok(Found { found: true, ..none });
    };
    let mut new = normalize(key).ok_or_else(|| format!("invalid key specified: {key}"))?;
    let mut found_line = None;
    for l in output.split('\n').filter(|l| !l.is_empty()) {
        if l.starts_with('#') {
            found_line = l
                .split("found: line ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok());
            if found_line.is_none() {
                return Err(format!("failed to parse output of ssh-keygen for line number: '{l}'"));
            }
            continue;
        }
        let Some(old) = normalize(l) else { continue };
        let same = Found {
            found: true,
            replace_or_add: false,
            line: found_line,
        };
        let marked = old
            .options
            .as_deref()
            .is_some_and(|o| o.starts_with("@cert-authority") || o.starts_with("@revoke"));
        if marked {
            if new == old {
                return Ok(same);
            }
            continue;
        }
        if new.host.starts_with("|1|") && old.host.starts_with("|1|") {
            new.host.clone_from(&old.host);
        }
        if new == old {
            return Ok(same);
        }
        if new.kind == old.kind {
            return Ok(Found {
                replace_or_add: true,
                ..same
            });
        }
    }
    Ok(Found {
        found: true,
        replace_or_add: true,
        line: None,
    })
}

/// The file after the change: the found line dropped when replaced or removed, the key added
/// at the end when present (Ansible's `compute_diff` and write).
pub fn rewrite(before: &str, f: &Found, present: bool, key: &str) -> String {
    let mut lines = super::blockinfile::splitlines(before.as_bytes());
    if let Some(n) = f.line
        && (f.replace_or_add || !present)
        && (1..=lines.len()).contains(&n)
    {
        lines.remove(n - 1);
    }
    if present && (f.replace_or_add || f.line.is_none()) {
        lines.push(key.as_bytes().to_vec());
    }
    String::from_utf8_lossy(&lines.concat()).into_owned()
}

const READ: &str = r#"set -u
say() { echo "@@tend $*"; }
case "$path" in "~/"*) path="$HOME/${path#"~/"}";; "~") path=$HOME;; esac
say "path $path"
command -v ssh-keygen >/dev/null 2>&1 || { echo 'Failed to find required executable "ssh-keygen"' >&2; exit 127; }
o=$(mktemp) && e=$(mktemp) || exit 1
trap 'rm -f "$o" "$e"' EXIT
if [ -n "$key" ]; then
  printf '%s' "$key" > "$o"
  if [ -z "$(ssh-keygen -F "$host" -f "$o" 2>/dev/null)" ]; then
    echo "Host parameter does not match hashed host field in supplied key" >&2; exit 3
  fi
fi
[ -e "$path" ] || exit 0
ssh-keygen -F "$host" -f "$path" > "$o" 2> "$e"; rc=$?
if [ "$rc" != 0 ] && { [ "$rc" != 1 ] || [ -s "$o" ] || [ -s "$e" ]; }; then
  echo "ssh-keygen failed (rc=$rc, stdout='$(cat "$o")',stderr='$(cat "$e")')" >&2; exit 4
fi
printf '@@tend search '; base64 -w0 < "$o"; echo
printf '@@tend content '; base64 -w0 < "$path"; echo
"#;

const WRITE: &str = r#"set -u
if [ "$remove_all" = 1 ]; then ssh-keygen -R "$host" -f "$path" >/dev/null || exit 4; exit 0; fi
d=$(dirname -- "$path")
[ -d "$d" ] || mkdir -p -m 700 -- "$d" || exit 4
put_file "$path" "$new" || exit 4
"#;

async_module!(KnownHosts, "known_hosts", PARAMS, run);

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let host = args.str("name").unwrap_or_default().to_lowercase();
    let present = args.str("state").unwrap_or("present") == "present";
    if args.bool("hash_host", false) {
        return Err(ModuleError::Args(
            "known_hosts: tend does not hash host names (hash_host: true); write the hashed key as `key`".into(),
        ));
    }
    let key = args.str("key").filter(|k| !k.is_empty()).map(|k| {
        if k.ends_with('\n') {
            k.to_string()
        } else {
            format!("{k}\n")
        }
    });
    if key.is_none() && present {
        return Err(ModuleError::Args("No key specified when adding a host".into()));
    }
    if key.is_some() && host.contains(',') {
        return Err(ModuleError::Args(
            "Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file."
                .into(),
        ));
    }
    let path_arg = args.str("path").unwrap_or("~/.ssh/known_hosts");
    let out = ctx
        .run(
            &format!(
                "host={} key={} path={}\n{READ}",
                quote(&host),
                quote(key.as_deref().unwrap_or_default()),
                quote(path_arg)
            ),
            None,
        )
        .await?;
    let (marks, plain) = split_marked(&out);
    if !out.success() {
        return Err(ModuleError::remote(
            last_line(&plain),
            format!("known_hosts: ssh-keygen -F {host}"),
            &plain,
        ));
    }
    let mark = |p: &str| marks.iter().find_map(|m| m.strip_prefix(p));
    let path = mark("path ").unwrap_or(path_arg).to_string();
    let search_out = decode_text(mark("search "), "known_hosts")?;
    let before = decode_text(mark("content "), "known_hosts")?;
    let found = search(search_out.as_deref(), key.as_deref()).map_err(ModuleError::Failed)?;
    let after = rewrite(
        before.as_deref().unwrap_or_default(),
        &found,
        present,
        key.as_deref().unwrap_or_default(),
    );
    let remove_all = !present && key.is_none() && found.found;
    let mut r = ModuleResult::changed(false);
    for k in ["name", "key", "state"] {
        r.data.insert(k.into(), args.str(k).map_or(Json::Null, Json::from));
    }
    r.data.insert("name".into(), host.clone().into());
    r.data
        .insert("state".into(), args.str("state").unwrap_or("present").into());
    r.data.insert("path".into(), path.clone().into());
    r.data.insert("hash_host".into(), false.into());
    let unchanged_absent = !present && found.line.is_none() && key.is_some();
    r.changed = !unchanged_absent && (found.replace_or_add || present != found.found);
    if r.changed && ctx.diff && !remove_all {
        r.diff.push(Diff {
            path: path.clone(),
            before: before.clone().unwrap_or_default(),
            after: after.clone(),
        });
    }
    if !r.changed || ctx.check {
        return Ok(r);
    }
    let out = ctx
        .run(
            &format!(
                "host={} path={} remove_all={} new={}\n{PUT_FILE}{WRITE}",
                quote(&host),
                quote(&path),
                u8::from(remove_all),
                quote(&base64::engine::general_purpose::STANDARD.encode(after.as_bytes())),
            ),
            None,
        )
        .await?;
    if !out.success() {
        return Err(ModuleError::remote(
            format!("known_hosts: cannot write {path} on {}: {}", ctx.host, last_line(&out)),
            format!("known_hosts: write {path}"),
            &out,
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne\n";
    const K2: &str = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo\n";

    #[test]
    fn same_key_is_found_a_new_one_of_the_same_type_replaces_its_line() {
        let out = "# Host git.example.com found: line 2 \ngit.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne\n";
        let f = search(Some(out), Some(K1)).unwrap();
        assert_eq!((f.found, f.replace_or_add, f.line), (true, false, Some(2)));
        let f = search(Some(out), Some(K2)).unwrap();
        assert_eq!((f.found, f.replace_or_add, f.line), (true, true, Some(2)));
        let file = format!("other ssh-rsa AAAA\n{K1}last ssh-rsa BBBB\n");
        assert_eq!(
            rewrite(&file, &f, true, K2),
            format!("other ssh-rsa AAAA\nlast ssh-rsa BBBB\n{K2}")
        );
        // Absent with the key: that line goes.
        let f = search(Some(out), Some(K1)).unwrap();
        assert_eq!(rewrite(&file, &f, false, K1), "other ssh-rsa AAAA\nlast ssh-rsa BBBB\n");
    }

    #[test]
    fn a_missing_host_is_added_at_the_end() {
        let f = search(None, Some(K1)).unwrap();
        assert!(!f.found);
        assert_eq!(rewrite("a ssh-rsa X\n", &f, true, K1), format!("a ssh-rsa X\n{K1}"));
        // Another key type of the same host: added, the other kept.
        let out = "# Host git.example.com found: line 1 \ngit.example.com ssh-rsa AAAAB3\n";
        let f = search(Some(out), Some(K1)).unwrap();
        assert_eq!((f.found, f.replace_or_add, f.line), (true, true, None));
    }
}
