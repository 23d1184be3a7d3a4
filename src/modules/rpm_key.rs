//! `rpm_key`: an OpenPGP key in the host's RPM database (`gpg-pubkey-*`), imported with
//! `rpm --import` and removed with `rpm --erase`, as Ansible's module does. `key` is a URL (the
//! host downloads it), a key id (of a key already imported, to remove it), a file on the host,
//! or, beyond Ansible, the armored key text itself. Whether it is there is decided by its key id
//! among the imported keys, so a second run changes nothing.

use super::{
    Args, BoxFuture, Ctx, FETCH_SH, Kind, Module, ModuleError, ModuleResult, Param, SCRATCH_SH, marks_or_failure,
};
use crate::transport::shell::quote;

/// `rpm_key`.
pub struct RpmKey;

const PARAMS: &[Param] = &[
    Param::new("key", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("fingerprint", Kind::List),
    Param::new("validate_certs", Kind::Bool),
];

/// The script, after the parameters as shell variables (`kind` says what `key` is). It prints
/// `@@tend` lines: `keyid`, `change` when the key is (or would be) imported or removed, `fail
/// MESSAGE` when a step failed.
const SCRIPT: &str = r#"need rpm
gpg=$(command -v gpg || command -v gpg2) || { echo "Failed to find required executable \"gpg2\" on $(hostname)" >&2; fail "gpg is missing"; }
# gpg reads key material in a scratch home: nothing is added to any keyring.
G() { GNUPGHOME=$g "$gpg" --no-tty --batch --with-colons --fixed-list-mode "$@"; }
keyfile= keyid=
case $kind in
  url) fetch "$key" "$t" 2>"$e" || fail "failed to fetch key at $key"
       grep -q -e '-----BEGIN PGP PUBLIC KEY BLOCK-----' "$t" || fail "Not a public key: $key"
       keyfile=$t ;;
  text) printf '%s\n' "$key" > "$t"; keyfile=$t ;;
  id) keyid=$key ;;
  *) [ -f "$key" ] || fail "Not a valid key $key"; keyfile=$key ;;
esac
if [ -n "$keyfile" ]; then
  keyid=$(G --show-keys "$keyfile" 2>"$e" | awk -F: '$1 == "pub" { print $5; exit }')
  [ -n "$keyid" ] || fail "Unexpected gpg output"
fi
keyid=$(printf '%s' "$keyid" | tr a-z A-Z); keyid=${keyid#0X}
say "keyid $keyid"
# Imported already: an imported key's id contains the one asked for (an 8-digit id is its tail).
if rpm -q gpg-pubkey >/dev/null 2>&1; then
  rpm -q gpg-pubkey --qf '%{description}' 2>"$e" | G --show-keys 2>>"$e" | awk -F: -v id="$keyid" 'index($5, id) { f = 1 } END { exit !f }' && present=1 || present=0
else present=0; fi
if [ "$state" = absent ]; then
  [ $present = 1 ] || exit 0
  say change
  [ "$check" = 1 ] && exit 0
  name=gpg-pubkey-$(printf '%s' "$keyid" | cut -c $((${#keyid} > 8 ? ${#keyid} - 7 : 1))- | tr A-F a-f)
  rpm --erase --allmatches "$name" >/dev/null 2>"$e" || fail "rpm --erase --allmatches $name failed"
  exit 0
fi
[ $present = 0 ] || exit 0
[ -n "$keyfile" ] || fail "When importing a key, a valid file must be given"
if [ -n "$fingerprints" ]; then
  have=$(G --with-fingerprint --with-subkey-fingerprint --show-keys "$keyfile" 2>"$e" | awk -F: '$1 == "fpr" { print $10 }')
  for f in $fingerprints; do
    printf '%s\n' "$have" | grep -qx "$f" || fail "The specified fingerprint, '$f', does not match any key fingerprints in '$(echo $have)'"
  done
fi
say change
[ "$check" = 1 ] && exit 0
rpm --import "$keyfile" >/dev/null 2>"$e" || fail "rpm --import failed"
exit 0
"#;

/// What `key` is, as the script's `kind`: `url`, `text` (armored key material), `id` (hex digits,
/// `0x` allowed) or `path` (a file on the host).
fn kind_of(key: &str) -> &'static str {
    let hex = key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")).unwrap_or(key);
    if key.contains("://") {
        "url"
    } else if key.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        "text"
    } else if hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        "id"
    } else {
        "path"
    }
}

impl Module for RpmKey {
    fn name(&self) -> &'static str {
        "rpm_key"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let state = args.str("state").unwrap_or("present");
            let key = args.str("key").unwrap_or_default().trim();
            if key.is_empty() {
                return Err(ModuleError::Args("`rpm_key` needs `key`".into()));
            }
            let mut fingerprints = Vec::new();
            for f in args.list("fingerprint") {
                let f = f.replace(' ', "").to_ascii_uppercase();
                if f.is_empty() || !f.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ModuleError::Args(format!(
                        "`rpm_key`: fingerprint `{f}` is not hexadecimal"
                    )));
                }
                fingerprints.push(f);
            }
            let script = format!(
                "key={} kind={} state={} fingerprints={} insecure={} check={}\n{SCRATCH_SH}{FETCH_SH}{SCRIPT}",
                quote(key),
                kind_of(key),
                quote(state),
                quote(&fingerprints.join(" ")),
                if args.bool("validate_certs", true) { 0 } else { 1 },
                if ctx.check { 1 } else { 0 },
            );
            let out = ctx.run(&script, None).await?;
            let marks = marks_or_failure("rpm_key", "rpm", ctx.host, &out)?;
            let keyid = marks.iter().find_map(|m| m.strip_prefix("keyid ")).unwrap_or_default();
            let changed = marks.iter().any(|m| m == "change");
            let mut r = ModuleResult::changed(changed);
            let would = if ctx.check { "would " } else { "" };
            r.msg = Some(match (changed, state) {
                (true, "absent") => format!("{would}remove key {keyid}"),
                (true, _) => format!("{would}import key {keyid}"),
                (false, "absent") => format!("key {keyid} is not imported"),
                (false, _) => format!("key {keyid} is imported"),
            });
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_told_apart_as_ansible_does() {
        assert_eq!(kind_of("https://example.org/RPM-GPG-KEY"), "url");
        assert_eq!(kind_of("0xDEADBEEF"), "id");
        assert_eq!(kind_of("0123456789abcdef"), "id");
        assert_eq!(kind_of("/etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9"), "path");
        assert_eq!(kind_of("deadbee"), "path");
        assert_eq!(
            kind_of("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"),
            "text"
        );
    }
}
