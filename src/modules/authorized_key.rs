//! `authorized_key`: SSH public keys in a user's `authorized_keys`, with the rules of
//! `ansible.posix.authorized_key` (keys matched by their base64 blob, options and comment
//! updated in place, `exclusive` dropping the others, the file rewritten in Ansible's line
//! format). The file is read in one round trip, edited here by [`edit`], written back only when
//! it changed, with `.ssh` 0700 and the file 0600 owned by the user.

use super::{Args, Ctx, Diff, Kind, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use base64::Engine as _;
use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// `authorized_key`: who may log in to the fleet's accounts (deploy users, admins).
pub struct AuthorizedKey;

const PARAMS: &[Param] = &[
    Param::new("user", Kind::Str).required(),
    Param::new("key", Kind::Str).required(),
    Param::new("path", Kind::Str),
    Param::new("manage_dir", Kind::Bool),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("key_options", Kind::Str),
    Param::new("exclusive", Kind::Bool),
    Param::new("comment", Kind::Str),
    Param::new("validate_certs", Kind::Bool),
    Param::new("follow", Kind::Bool),
];

const KEY_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-rsa",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
];

/// Key options in their order, `None` for a flag (`no-pty`).
type Options = Vec<(String, Option<String>)>;

/// One line of the file: a key, or a line kept as it is (comments, blank or unreadable lines).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Key {
        blob: String,
        kind: String,
        options: Options,
        comment: String,
        rank: usize,
    },
    Kept {
        text: String,
        rank: usize,
    },
}

impl Line {
    fn rank(&self) -> usize {
        match self {
            Line::Key { rank, .. } | Line::Kept { rank, .. } => *rank,
        }
    }
}

/// Python's comparison of Ansible's option dicts: the same options with the same values, in
/// any order.
fn same_options(a: &Options, b: &Options) -> bool {
    option_set(a) == option_set(b)
}

fn option_set(o: &Options) -> BTreeMap<&str, Vec<Option<&str>>> {
    let mut m: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
    for (k, v) in o {
        m.entry(k.as_str()).or_default().push(v.as_deref());
    }
    m
}

/// Ansible's `parseoptions`: comma-separated options, commas inside quotes kept.
fn parse_options(text: &str) -> Options {
    static PART: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#"(?:[^,"']|"[^"]*"|'[^']*')+"#).ok());
    let Some(re) = PART.as_ref() else {
        return Vec::new();
    };
    re.find_iter(text)
        .map(|m| match m.as_str().split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (m.as_str().to_string(), None),
        })
        .collect()
}

/// Ansible's `parsekey`: `None` when no key type is found.
fn parse_key(raw: &str, rank: usize) -> Option<Line> {
    let raw = raw.replace(r"\#", "#");
    let parts: Vec<&str> = raw.split_whitespace().collect();
    if parts.first() == Some(&"#") {
        return Some(Line::Kept { text: raw, rank });
    }
    let at = parts.iter().position(|p| KEY_TYPES.contains(p))?;
    let blob = parts.get(at + 1)?;
    Some(Line::Key {
        blob: blob.to_string(),
        kind: parts[at].to_string(),
        options: parse_options(&parts[..at].join(" ")),
        comment: parts.get(at + 2..).map(|c| c.join(" ")).unwrap_or_default(),
        rank,
    })
}

/// The key a line is filed under, as Ansible's dict does (the blob, else the text).
fn id(line: &Line) -> String {
    match line {
        Line::Key { blob, .. } => blob.clone(),
        Line::Kept { text, .. } => text.clone(),
    }
}

/// What one task asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want<'a> {
    /// One or more keys, a line each (`#` lines and blank lines ignored).
    pub key: &'a str,
    /// `state: present`.
    pub present: bool,
    /// Options replacing those of every given key.
    pub key_options: Option<&'a str>,
    /// A comment replacing those of every given key.
    pub comment: Option<&'a str>,
    /// Only the given keys remain.
    pub exclusive: bool,
}

/// Ansible's `enforce_state` on the file's text: the new text, or `None` when nothing changes.
pub fn edit(existing: &str, w: &Want<'_>) -> Result<Option<String>, String> {
    let mut keys: IndexMap<String, Line> = IndexMap::new();
    for (rank, line) in super::blockinfile::splitlines(existing.as_bytes()).iter().enumerate() {
        let line = String::from_utf8_lossy(line);
        let parsed = parse_key(&line, rank).unwrap_or_else(|| Line::Kept {
            text: line.to_string(),
            rank,
        });
        keys.insert(id(&parsed), parsed);
    }
    let existing_count = keys.len();
    let mut write = false;
    let mut wanted = Vec::new();
    let new_keys = w.key.lines().filter(|s| !s.is_empty() && !s.starts_with('#'));
    for (rank, text) in new_keys.enumerate() {
        let Some(Line::Key {
            blob,
            kind,
            mut options,
            mut comment,
            ..
        }) = parse_key(text, rank)
        else {
            return Err(format!("invalid key specified: {text}"));
        };
        if let Some(o) = w.key_options {
            options = parse_options(o);
        }
        if let Some(c) = w.comment {
            comment = c.to_string();
        }
        let same = match keys.get(&blob) {
            Some(Line::Key {
                kind: k,
                options: o,
                comment: c,
                ..
            }) => *k == kind && same_options(o, &options) && *c == comment,
            _ => false,
        };
        let matched = keys.contains_key(&blob) && (same || !w.present);
        if w.present {
            wanted.push(blob.clone());
            if keys.contains_key(&blob) && !same {
                keys.shift_remove(&blob);
                write = true;
            }
            if !matched {
                let line = Line::Key {
                    blob: blob.clone(),
                    kind,
                    options,
                    comment,
                    rank: existing_count + rank,
                };
                keys.insert(blob, line);
                write = true;
            }
        } else if matched {
            keys.shift_remove(&blob);
            write = true;
        }
    }
    if w.present && w.exclusive {
        let before = keys.len();
        keys.retain(|k, _| wanted.contains(k));
        write |= keys.len() != before;
    }
    if !write {
        return Ok(None);
    }
    let mut lines: Vec<&Line> = keys.values().collect();
    lines.sort_by_key(|l| l.rank());
    Ok(Some(lines.iter().map(|l| serialize(l)).collect()))
}

/// A line as Ansible's `serialize` writes it.
fn serialize(line: &Line) -> String {
    match line {
        Line::Kept { text, .. } => text.clone(),
        Line::Key {
            blob,
            kind,
            options,
            comment,
            ..
        } => {
            let opts: Vec<String> = options
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            let prefix = if opts.is_empty() {
                String::new()
            } else {
                format!("{} ", opts.join(","))
            };
            format!("{prefix}{kind} {blob} {comment}\n")
        }
    }
}

/// Fetches the keys from `url` on the host (as Ansible's module does), finds the user and the
/// file, and prints the file (base64).
const READ: &str = r#"set -u
say() { echo "@@tend $*"; }
if [ -n "$url" ]; then
  kf=$(mktemp) || exit 1
  if ! fetch "$url" "$kf" || [ ! -s "$kf" ]; then rm -f "$kf"; echo "Error getting key from: $url" >&2; exit 3; fi
  k=$(base64 -w0 < "$kf"); rm -f "$kf"
  say "keys $k"
fi
if ent=$(getent passwd "$user"); then
  home=$(echo "$ent" | cut -d: -f6); uid=$(echo "$ent" | cut -d: -f3); gid=$(echo "$ent" | cut -d: -f4)
  say "user $uid $gid"
  [ -n "$path" ] || path="$home/.ssh/authorized_keys"
elif [ "$check" = 1 ] && [ -n "$path" ]; then
  :
elif [ "$check" = 1 ]; then
  echo "Either user must exist or you must provide full path to key file in check mode" >&2; exit 3
else
  echo "Failed to lookup user $user: 'getpwnam(): name not found: $user'" >&2; exit 3
fi
if [ "$follow" = 1 ]; then path=$(readlink -m -- "$path"); fi
say "keyfile $path"
if [ -e "$path" ]; then
  [ -r "$path" ] || { echo "Permission denied on file or path for authorized keys file: $path" >&2; exit 3; }
  printf '@@tend content '; base64 -w0 < "$path" || exit 4; echo
fi
"#;

/// Writes the new file (and the `.ssh` directory with `manage_dir`), owned by the user.
const WRITE: &str = r#"set -u
d=$(dirname -- "$path")
if [ "$manage_dir" = 1 ]; then
  [ -d "$d" ] || mkdir -m 700 -- "$d" || exit 4
  chown "$uid:$gid" "$d" && chmod 700 "$d" || exit 4
fi
[ -d "$d" ] || mkdir -p -- "$d" || exit 4
t=$(mktemp "$d/.tend-keys.XXXXXX") || exit 4
printf '%s' "$new" | base64 -d > "$t" && chown "$uid:$gid" "$t" && chmod 600 "$t" || { rm -f "$t"; exit 4; }
if [ "$follow" != 1 ] && [ -L "$path" ]; then rm -f -- "$path"; fi
mv -f -- "$t" "$path" || { rm -f "$t"; exit 4; }
"#;

async_module!(AuthorizedKey, "authorized_key", PARAMS, run);

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let user = args.str("user").unwrap_or_default();
    let key = args.str("key").unwrap_or_default();
    if key.starts_with("file") {
        return Err(ModuleError::Args(format!(
            "authorized_key: tend takes the keys themselves or an http(s) URL, not a file of the host ({key}); use `lookup('file', ...)` for a file of the control node"
        )));
    }
    let url = key.starts_with("http").then_some(key);
    let follow = args.bool("follow", false);
    let manage_dir = args.bool("manage_dir", true);
    let want = Want {
        key,
        present: args.str("state").unwrap_or("present") == "present",
        key_options: args.str("key_options"),
        comment: args.str("comment"),
        exclusive: args.bool("exclusive", false),
    };
    // Bad keys are refused before the host is asked.
    if url.is_none() {
        edit("", &want).map_err(ModuleError::Failed)?;
    }
    let out = ctx
        .run(
            &format!(
                "user={} path={} follow={} check={} url={} insecure={}\n{}{READ}",
                quote(user),
                quote(args.str("path").unwrap_or_default()),
                u8::from(follow),
                u8::from(ctx.check),
                quote(url.unwrap_or_default()),
                u8::from(!args.bool("validate_certs", true)),
                super::FETCH_SH,
            ),
            None,
        )
        .await?;
    let (marks, plain) = split_marked(&out);
    if !out.success() {
        return Err(ModuleError::remote(
            last_line(&plain),
            format!("authorized_key: read the keys of {user}"),
            &plain,
        ));
    }
    let mark = |p: &str| marks.iter().find_map(|m| m.strip_prefix(p)).map(str::to_string);
    let keyfile = mark("keyfile ").unwrap_or_default();
    let raw = mark("content ")
        .map(|c| base64::engine::general_purpose::STANDARD.decode(c.trim()))
        .transpose()
        .map_err(|e| ModuleError::Failed(format!("authorized_key: garbled answer from {} ({e})", ctx.host)))?
        .unwrap_or_default();
    let existing = String::from_utf8_lossy(&raw).into_owned();
    let fetched = super::textfile::decode_text(mark("keys ").as_deref(), "authorized_key")?;
    let want = Want {
        key: fetched.as_deref().unwrap_or(key),
        ..want
    };
    let new = edit(&existing, &want).map_err(ModuleError::Failed)?;
    let mut r = ModuleResult::changed(new.is_some());
    if let Some(new) = &new {
        if ctx.diff {
            r.diff.push(Diff {
                path: keyfile.clone(),
                before: existing.clone(),
                after: new.clone(),
            });
        }
        if !ctx.check {
            let ids = mark("user ").unwrap_or_default();
            let (uid, gid) = ids.split_once(' ').unwrap_or_default();
            let out = ctx
                .run(
                    &format!(
                        "path={} uid={} gid={} manage_dir={} follow={} new={}\n{WRITE}",
                        quote(&keyfile),
                        quote(uid),
                        quote(gid),
                        u8::from(manage_dir),
                        u8::from(follow),
                        quote(&base64::engine::general_purpose::STANDARD.encode(new.as_bytes())),
                    ),
                    None,
                )
                .await?;
            if !out.success() {
                return Err(ModuleError::remote(
                    format!(
                        "authorized_key: cannot write {keyfile} on {}: {}",
                        ctx.host,
                        last_line(&out)
                    ),
                    format!("authorized_key: write {keyfile}"),
                    &out,
                ));
            }
        }
    }
    for k in ["user", "key", "path", "state", "key_options", "comment"] {
        r.data.insert(k.into(), args.str(k).map_or(Json::Null, Json::from));
    }
    r.data
        .insert("state".into(), args.str("state").unwrap_or("present").into());
    r.data.insert("manage_dir".into(), manage_dir.into());
    r.data.insert("exclusive".into(), want.exclusive.into());
    r.data.insert("follow".into(), follow.into());
    r.data
        .insert("validate_certs".into(), args.bool("validate_certs", true).into());
    r.data.insert("keyfile".into(), keyfile.into());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop";
    const B: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ bob";

    fn present(key: &str) -> Want<'_> {
        Want {
            key,
            present: true,
            ..Want::default()
        }
    }

    #[test]
    fn adds_once_keeps_other_lines_and_their_order() {
        let file = "# admins\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ bob\n";
        let new = edit(file, &present(A)).unwrap().unwrap();
        assert_eq!(new, format!("{file}{A}\n"));
        assert_eq!(edit(&new, &present(A)).unwrap(), None);
        // Several keys at once, one of them there already.
        let both = format!("{A}\n{B}\n");
        assert_eq!(edit(&new, &present(&both)).unwrap(), None);
        assert_eq!(edit("", &present(&both)).unwrap().unwrap(), both);
    }

    #[test]
    fn options_and_comment_replace_the_old_line() {
        let w = Want {
            key_options: Some(r#"no-pty,from="10.0.0.0/8,192.168.0.1""#),
            ..present(A)
        };
        let new = edit(&format!("{A}\n"), &w).unwrap().unwrap();
        assert_eq!(
            new,
            "no-pty,from=\"10.0.0.0/8,192.168.0.1\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop\n"
        );
        assert_eq!(edit(&new, &w).unwrap(), None);
        // The same options in another order are the same.
        let swapped = Want {
            key_options: Some(r#"from="10.0.0.0/8,192.168.0.1",no-pty"#),
            ..w
        };
        assert_eq!(edit(&new, &swapped).unwrap(), None);
        let c = Want {
            comment: Some("deploy"),
            ..present(A)
        };
        assert_eq!(
            edit(&format!("{A}\n"), &c).unwrap().unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA deploy\n"
        );
        // A key without a comment gets Ansible's trailing space.
        assert_eq!(edit("", &present("ssh-rsa AAAA")).unwrap().unwrap(), "ssh-rsa AAAA \n");
    }

    #[test]
    fn absent_and_exclusive() {
        let file = format!("# keep\n{A}\n{B}\n");
        let gone = Want {
            present: false,
            ..present(A)
        };
        assert_eq!(edit(&file, &gone).unwrap().unwrap(), format!("# keep\n{B}\n"));
        assert_eq!(edit(&format!("{B}\n"), &gone).unwrap(), None);
        let only = Want {
            exclusive: true,
            ..present(B)
        };
        assert_eq!(edit(&file, &only).unwrap().unwrap(), format!("{B}\n"));
        assert_eq!(edit(&format!("{B}\n"), &only).unwrap(), None);
        assert_eq!(
            edit("", &present("not a key")).unwrap_err(),
            "invalid key specified: not a key"
        );
    }
}
