//! `apt_key`: an OpenPGP key APT trusts, added with the host's `apt-key` (as Ansible's module
//! does) from `data`, a `file` on the host, a `url` fetched on the host or a `keyserver`, or
//! removed. Whether the key is there is decided by its key id among the keys `apt-key` lists, as
//! Ansible decides it, so a second run changes nothing; without `id`, the id is the first key's
//! of the key material itself.

use super::{
    Args, BoxFuture, Ctx, FETCH_SH, Kind, Module, ModuleError, ModuleResult, Param, SCRATCH_SH, marks_or_failure,
};
use crate::transport::shell::quote;
use serde_json::Value as Json;

/// `apt_key`.
pub struct AptKey;

const PARAMS: &[Param] = &[
    Param::new("id", Kind::Str),
    Param::new("data", Kind::Str),
    Param::new("file", Kind::Str),
    Param::new("url", Kind::Str),
    Param::new("keyserver", Kind::Str),
    Param::new("keyring", Kind::Str),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("validate_certs", Kind::Bool),
];

/// The script, after the parameters as shell variables. It prints `@@tend` lines: `id`, `before`
/// and `after` (the key ids listed, 16 hex digits, or 8 when the id asked for is a short one),
/// `change` when the key is (or would be) added or removed, `fail MESSAGE` when a step failed.
const SCRIPT: &str = r#"# apt-key warns that it is deprecated on every call: not the reason anything failed.
noise='^Warning: apt-key is deprecated'
need apt-key
need gpg
ak() { if [ -n "$keyring" ]; then apt-key --keyring "$keyring" "$@"; else apt-key "$@"; fi; }
# The ids of the keys APT trusts (primary and subkeys, expired ones left out), as Ansible lists them.
keys() {
  ak adv --list-public-keys --with-colons 2>"$e" | awk -F: -v short="$short_format" \
    '($1 == "pub" || $1 == "sub") && $2 != "e" { print (short ? substr($5, length($5) - 7) : $5) }'
}
material() {
  if [ -n "$data" ]; then printf '%s' "$data" > "$t"
  elif [ -n "$url" ]; then fetch "$url" "$t" 2>"$e" || fail "Failed to download key at $url"
  fi
}
if [ -z "$id" ]; then
  if [ -n "$file" ]; then src=$file; else material; src=$t; fi
  id=$(GNUPGHOME=$g gpg --batch --with-colons --show-keys "$src" 2>"$e" | awk -F: '($1 == "pub" || $1 == "sub") && $2 != "e" { print $5; exit }')
  [ -n "$id" ] || { if [ -n "$file" ]; then fail "Unable to extract key from '$file'"; else fail "Unable to extract key from 'inline data'"; fi; }
  say "id $id"
fi
key=$(printf '%s' "$id" | tr a-z A-Z); key=${key#0X}
if [ ${#key} -gt 16 ]; then fp=$(printf '%s' "$key" | cut -c $((${#key} - 15))-); else fp=$key; fi
short_id=$(printf '%s' "$key" | cut -c $((${#key} - 7))-)
short_format=0; [ ${#key} -eq 8 ] && short_format=1
want=$fp
before=$(keys) || fail "Unable to list public keys"
say "before" $before
printf '%s\n' "$before" | grep -qx "$want" && present=1 || present=0
if [ "$state" = absent ]; then
  [ $present = 1 ] || exit 0
  say change
  [ "$check" = 1 ] && exit 0
  ak del "$short_id" >/dev/null 2>"$e" || fail "Unable to remove a key with id $short_id"
  after=$(keys) || fail "Unable to list public keys"
  say "after" $after
  printf '%s\n' "$after" | grep -qx "$want" && fail "apt-key did not return an error, but the key was not removed (check that the id is correct and *not* a subkey)"
  exit 0
fi
[ $present = 0 ] || exit 0
say change
[ "$check" = 1 ] && exit 0
if [ -n "$file" ]; then
  ak add "$file" >/dev/null 2>"$e" || fail "Unable to add a key from file $file"
elif [ -n "$keyserver" ]; then
  n=0
  until ak adv --no-tty --keyserver "$keyserver" --recv "$key" >/dev/null 2>"$e"; do
    n=$((n + 1)); [ $n -lt 5 ] || fail "Error fetching key $key from keyserver: $keyserver"
  done
elif [ -n "$data$url" ]; then
  [ -s "$t" ] || material
  ak add - < "$t" >/dev/null 2>"$e" || fail "Unable to add a key from binary data"
else
  : > "$e"
  fail "no key to add: give \`data\`, \`file\`, \`url\` or \`keyserver\` with \`id\`"
fi
after=$(keys) || fail "Unable to list public keys"
say "after" $after
printf '%s\n' "$after" | grep -qx "$want" || fail "apt-key did not return an error, but failed to add the key (check that the id is correct and *not* a subkey)"
exit 0
"#;

/// A user's key id checked as Ansible checks it: hex digits, 8, 16 or more than 16 of them,
/// after an optional `0x`.
fn valid_id(id: &str) -> bool {
    let hex = id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")).unwrap_or(id);
    !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) && matches!(hex.len(), 8 | 16 | 17..)
}

/// The ids Ansible reports for a key id: `(short_id, fp, key_id)`, the last 8 and 16 hex digits
/// and the whole id, upper case.
fn id_parts(id: &str) -> (String, String, String) {
    let up = id.to_ascii_uppercase();
    let key = up.strip_prefix("0X").unwrap_or(&up).to_string();
    let tail = |n: usize| key[key.len().saturating_sub(n)..].to_string();
    (tail(8), tail(16), key.clone())
}

impl Module for AptKey {
    fn name(&self) -> &'static str {
        "apt_key"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let state = args.str("state").unwrap_or("present");
            let id = args.str("id").unwrap_or_default();
            let given: Vec<&str> = ["data", "file", "keyserver", "url"]
                .into_iter()
                .filter(|p| args.str(p).is_some_and(|v| !v.is_empty()))
                .collect();
            if given.len() > 1 {
                return Err(ModuleError::Args(format!(
                    "`apt_key`: parameters are mutually exclusive: data|file|keyserver|url (got {})",
                    given.join(", ")
                )));
            }
            if id.is_empty() {
                if given == ["keyserver"] {
                    return Err(ModuleError::Args(
                        "`apt_key`: Missing key_id, required with keyserver.".into(),
                    ));
                }
                if given.is_empty() {
                    return Err(ModuleError::Args(
                        "`apt_key` needs `id`, or `data`, `file` or `url` to read the key id from".into(),
                    ));
                }
            } else if !valid_id(id) {
                return Err(ModuleError::Args(format!(
                    "`apt_key`: Invalid key_id `{id}`: 8, 16 or more hexadecimal digits"
                )));
            }
            let var = |p: &str| quote(args.str(p).unwrap_or_default());
            let script = format!(
                "id={} data={} file={} url={} keyserver={} keyring={} state={} insecure={} check={}\n{SCRATCH_SH}{FETCH_SH}{SCRIPT}",
                quote(id),
                var("data"),
                var("file"),
                var("url"),
                var("keyserver"),
                var("keyring"),
                quote(state),
                if args.bool("validate_certs", true) { 0 } else { 1 },
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let marks = marks_or_failure("apt_key", "apt-key", ctx.host, &out)?;
            let mark = |k: &str| {
                marks
                    .iter()
                    .find_map(|m| m.strip_prefix(k).or((m == k.trim_end()).then_some("")))
            };
            let list =
                |k: &str| -> Option<Json> { mark(k).map(|v| Json::from(v.split_whitespace().collect::<Vec<_>>())) };
            let id = mark("id ").unwrap_or(id).to_string();
            let changed = mark("change ").is_some();
            let mut r = ModuleResult::changed(changed);
            let (short_id, fp, key_id) = id_parts(&id);
            r.msg = Some(match (changed, state, ctx.check) {
                (true, "absent", true) => format!("would remove key {key_id}"),
                (true, "absent", false) => format!("removed key {key_id}"),
                (true, _, true) => format!("would add key {key_id}"),
                (true, _, false) => format!("added key {key_id}"),
                (false, "absent", _) => format!("key {key_id} is not trusted"),
                (false, _, _) => format!("key {key_id} is trusted"),
            });
            r.data.insert("id".into(), id.into());
            r.data.insert("short_id".into(), short_id.into());
            r.data.insert("fp".into(), fp.into());
            r.data.insert("key_id".into(), key_id.into());
            r.data
                .insert("before".into(), list("before ").unwrap_or(Json::Array(Vec::new())));
            if let Some(after) = list("after ") {
                r.data.insert("after".into(), after);
            }
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_checked_and_split_as_ansible_does() {
        for ok in [
            "DEADBEEF",
            "0xdeadbeef",
            "0123456789ABCDEF",
            "0123456789ABCDEF0123456789ABCDEF01234567",
        ] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "0x", "DEADBEE", "0123456789", "XYZXYZXY"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(
            id_parts("0x0123456789abcdef0123456789ABCDEF01234567"),
            (
                "01234567".into(),
                "89ABCDEF01234567".into(),
                "0123456789ABCDEF0123456789ABCDEF01234567".into()
            )
        );
        assert_eq!(
            id_parts("deadbeef"),
            ("DEADBEEF".into(), "DEADBEEF".into(), "DEADBEEF".into())
        );
    }
}
