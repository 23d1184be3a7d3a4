//! The host side of a release: one script per step, each a single SSH channel. A release
//! directory only appears (by rename) once its files are written and its artifact checksum
//! verified, and `current` only ever moves by renaming a new symlink over it, so a host is
//! always on one complete release or the other, whenever the connection or `tend` dies.

use super::artifact::Artifact;
use super::settings::{HostSettings, Unpack};
use crate::transport::shell::quote;
use crate::transport::{Failure, Host, Input, StepError};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(60);

/// A release present on a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Release {
    /// The release id (directory name).
    pub id: String,
    /// Checksum of the artifact it came from.
    pub sha256: String,
    /// When it was staged (seconds since the epoch, host clock).
    pub staged: i64,
    /// The schema version it was deployed with (`tend deploy --migrate`), when known.
    pub schema: Option<String>,
}

/// What a host has: its `current` release, the one last verified serving, and every release.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostState {
    /// Where `current` points (release id), if anywhere.
    pub current: Option<String>,
    /// The release last confirmed healthy by a deploy or rollback.
    pub active: Option<String>,
    /// Complete releases, oldest first.
    pub releases: Vec<Release>,
    /// Directories in `releases/` without a manifest (not made by tend, or half-removed).
    pub foreign: Vec<String>,
    /// Releases verified serving, oldest first (the last 100).
    pub history: Vec<String>,
}

impl HostState {
    /// The release with this id, if complete on the host.
    pub fn release(&self, id: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.id == id)
    }

    /// What `rollback` returns to: the release that served last before the current one (still
    /// on the host), else the newest release staged before the current one.
    pub fn previous(&self) -> Option<&Release> {
        let current = self.release(self.current.as_deref()?)?;
        if let Some(r) = self
            .history
            .iter()
            .rev()
            .filter(|id| **id != current.id)
            .find_map(|id| self.release(id))
        {
            return Some(r);
        }
        self.releases
            .iter()
            .filter(|r| r.id != current.id && (r.staged, &r.id) < (current.staged, &current.id))
            .max_by_key(|r| (r.staged, r.id.clone()))
    }
}

const INSPECT: &str = r#"set -u
cd "$root" 2>/dev/null || exit 0
if [ -L current ]; then t=$(readlink current); t=${t%/}; echo "current ${t##*/}"
elif [ -e current ]; then echo "current-not-link"; fi
[ -f .tend/active ] && echo "active $(cat .tend/active)"
[ -f .tend/history ] && tail -n 100 .tend/history | sed 's/^/history /'
for d in releases/*/; do
  [ -d "$d" ] || continue
  id=${d#releases/}; id=${id%/}
  m=.tend/manifests/$id
  if [ -f "$m" ]; then s=$(sed -n 's/^schema=//p' "$m"); echo "release $id $(sed -n 's/^sha256=//p' "$m") $(sed -n 's/^staged=//p' "$m") ${s:--}"
  else echo "foreign $id"; fi
done
"#;

/// Reads a host's releases (one channel, changes nothing).
pub async fn inspect(node: &Host, s: &HostSettings) -> Result<HostState, StepError> {
    let script = format!("root={}\n{INSPECT}", quote(&s.root));
    let out = node
        .step(
            "inspect",
            &format!("list {}/releases", s.root),
            script,
            Input::None,
            SHORT,
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut state = HostState::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["current", id] => state.current = Some((*id).to_string()),
            ["current-not-link"] => {
                return Err(StepError::remote(
                    node.name(),
                    "inspect",
                    Failure::message(
                        format!("{}/current exists but is not a symlink; move it away first", s.root),
                        format!("readlink {}/current", s.root),
                    ),
                ));
            }
            ["active", id] => state.active = Some((*id).to_string()),
            ["history", id] => state.history.push((*id).to_string()),
            ["release", id, sum, staged, schema] => state.releases.push(Release {
                id: (*id).to_string(),
                sha256: (*sum).to_string(),
                staged: staged.parse().unwrap_or(0),
                schema: Some((*schema).to_string()).filter(|s| s != "-"),
            }),
            ["release", id, sum, ..] => state.releases.push(Release {
                id: (*id).to_string(),
                sha256: (*sum).to_string(),
                staged: 0,
                schema: None,
            }),
            ["foreign", id] => state.foreign.push((*id).to_string()),
            _ => {}
        }
    }
    state.releases.sort_by_key(|r| (r.staged, r.id.clone()));
    Ok(state)
}

const STAGE_HEAD: &str = r#"set -u
umask 022
mkdir -p -- "$root" && cd -- "$root" || exit 3
mkdir -p releases shared .tend/manifests || exit 3
m=.tend/manifests/$id
if [ -d "releases/$id" ]; then
  have=$(sed -n 's/^sha256=//p' "$m" 2>/dev/null)
  if [ "$have" = "$sum" ]; then cat > /dev/null; echo present; exit 0; fi
  cat > /dev/null
  if [ -n "$have" ]; then echo "release $id is already on this host from another artifact (sha256 $have); choose another release id" >&2
  else echo "$root/releases/$id exists but tend did not make it (no manifest); remove it or choose another release id" >&2; fi
  exit 7
fi
for old in releases/.partial-* releases/.trash-*; do [ -e "$old" ] && rm -rf -- "$old"; done
tmp=$(mktemp -d "releases/.partial-$id.XXXXXX") || exit 3
art=$tmp.artifact
trap 'rm -rf -- "$tmp" "$art"' EXIT
if [ -n "$url" ]; then
  if command -v curl > /dev/null 2>&1; then curl -fsSL --retry 2 -o "$art" -- "$url"
  else wget -q -O "$art" -- "$url"; fi || { echo "download of $url on the host failed" >&2; exit 4; }
else
  cat > "$art" || exit 3
fi
got=$(tend_sha256 < "$art")
[ "$got" = "$sum" ] || { echo "checksum mismatch: the artifact on the host has sha256 $got, expected $sum" >&2; exit 8; }
case "$unpack:$kind" in
  exploded:zip)
    command -v unzip > /dev/null 2>&1 || { echo "unzip is not installed on the host" >&2; exit 9; }
    unzip -q "$art" -d "$tmp" >&2 || { echo "unzip of $name failed" >&2; exit 9; } ;;
  exploded:tar) tar -xf "$art" -C "$tmp" >&2 || { echo "tar could not extract $name" >&2; exit 9; } ;;
  exploded:*) echo "$name is neither a zip/war nor a tarball; set deploy_unpack: archive to keep it as a file" >&2; exit 9 ;;
  *) cp -- "$art" "$tmp/$name" || exit 3 ;;
esac
rm -f -- "$art"
"#;

const STAGE_TAIL: &str = r#"chmod 755 "$tmp" || exit 3
sync -f "$tmp" 2>/dev/null || sync
{ printf 'sha256=%s\nartifact=%s\nstaged=%s\nby=%s\n' "$sum" "$name" "$(date +%s)" "$by"; [ -z "$schema" ] || printf 'schema=%s\n' "$schema"; } > "$m.tmp" && mv -f -- "$m.tmp" "$m" || exit 3
mv -T -- "$tmp" "releases/$id" || exit 3
trap - EXIT
echo staged
"#;

/// Whether staging sent the artifact or found the release already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Uploaded (or downloaded by the host), verified and unpacked now.
    New,
    /// The same release (same checksum) was already complete on the host.
    Present,
}

/// Puts release `id` on the host: receive, verify, unpack, link shared paths, write the manifest,
/// then rename the finished tree into `releases/<id>`.
pub async fn stage(
    node: &Host,
    s: &HostSettings,
    id: &str,
    artifact: &Artifact,
    by: &str,
    schema: Option<&str>,
) -> Result<Staged, StepError> {
    let mut script = format!(
        "root={} id={} sum={} name={} kind={} unpack={} url={} by={} schema={}\n{}{STAGE_HEAD}",
        quote(&s.root),
        quote(id),
        quote(&artifact.sha256),
        quote(&artifact.name),
        artifact.kind.word(),
        match s.unpack {
            Unpack::Exploded => "exploded",
            Unpack::Archive => "archive",
        },
        quote(if artifact.file.is_none() { &artifact.source } else { "" }),
        quote(by),
        quote(schema.unwrap_or_default()),
        crate::transport::shell::SHA256_FN,
    );
    for dir in &s.shared_dirs {
        let (d, t) = (quote(dir), quote(&format!("{}/shared/{dir}", s.root)));
        script.push_str(&format!(
            "mkdir -p -- shared/{d} && rm -rf -- \"$tmp\"/{d} && mkdir -p -- \"$(dirname -- \"$tmp\"/{d})\" && ln -sfn -- {t} \"$tmp\"/{d} || exit 3\n"
        ));
    }
    for file in &s.shared_files {
        let (f, t) = (quote(file), quote(&format!("{}/shared/{file}", s.root)));
        script.push_str(&format!(
            "[ -e shared/{f} ] || {{ echo \"shared file \"{t}\" does not exist; create it before deploying\" >&2; exit 10; }}\n\
             rm -rf -- \"$tmp\"/{f} && mkdir -p -- \"$(dirname -- \"$tmp\"/{f})\" && ln -sfn -- {t} \"$tmp\"/{f} || exit 3\n"
        ));
    }
    script.push_str(STAGE_TAIL);
    let timeout = Duration::from_secs(900);
    let what = format!("stage {} into {}/releases/{id}", artifact.name, s.root);
    // The artifact streams from the control node's disk: hosts × its size never sits in memory.
    let mut file = match &artifact.file {
        Some(f) => Some(tokio::fs::File::open(&f.path).await.map_err(|e| {
            StepError::remote(
                node.name(),
                "stage",
                Failure::message(format!("cannot read {}: {e}", f.path.display()), what.clone()),
            )
        })?),
        None => None,
    };
    let input = match &mut file {
        Some(f) => Input::Read(f),
        None => Input::Bytes(&[]),
    };
    let out = node.step("stage", &what, script, input, timeout).await?;
    Ok(if String::from_utf8_lossy(&out.stdout).contains("present") {
        Staged::Present
    } else {
        Staged::New
    })
}

/// Records in release `id`'s manifest the schema version it goes out with.
pub async fn mark_schema(node: &Host, s: &HostSettings, id: &str, schema: &str) -> Result<(), StepError> {
    let script = format!(
        "set -u\ncd -- {} || exit 3\nm=.tend/manifests/{}\n{{ grep -v '^schema=' \"$m\"; printf 'schema=%s\\n' {}; }} > \"$m.tmp\" && mv -f -- \"$m.tmp\" \"$m\"\n",
        quote(&s.root),
        quote(id),
        quote(schema)
    );
    let what = format!("record schema {schema} in {}/.tend/manifests/{id}", s.root);
    node.step("stage", &what, script, Input::None, SHORT).await.map(|_| ())
}

const SWITCH: &str = r#"set -u
cd -- "$root" || exit 3
[ -d "releases/$id" ] && [ -f ".tend/manifests/$id" ] || { echo "release $id is not complete on this host" >&2; exit 7; }
if [ -e current ] && [ ! -L current ]; then echo "$root/current is not a symlink" >&2; exit 7; fi
t=$(readlink current 2>/dev/null || true); t=${t%/}
ln -sfn "releases/$id" ".current.$$" && mv -Tf ".current.$$" current || { rm -f ".current.$$"; echo "cannot replace $root/current" >&2; exit 3; }
echo "previous ${t##*/}"
"#;

/// Points `current` at release `id` (new symlink, then rename over the old one); returns the
/// release it pointed at before.
pub async fn switch(node: &Host, s: &HostSettings, id: &str) -> Result<Option<String>, StepError> {
    let script = format!("root={} id={}\n{SWITCH}", quote(&s.root), quote(id));
    let what = format!("point {}/current at releases/{id}", s.root);
    let out = node.step("switch", &what, script, Input::None, SHORT).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("previous "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string))
}

/// Runs the host's restart command so the app serves `current`.
pub async fn restart(node: &Host, s: &HostSettings) -> Result<(), StepError> {
    if s.restart.is_empty() {
        return Ok(());
    }
    let what = "deploy_restart_command";
    node.step("restart", what, s.restart.clone(), Input::None, s.restart_timeout)
        .await
        .map(|_| ())
}

/// Records a finished deploy or rollback on the host: `.tend/active` (when the host was
/// verified serving `active`) and one JSON line appended to `.tend/deploys.log`.
pub async fn record(node: &Host, s: &HostSettings, active: Option<&str>, line: &str) -> Result<(), StepError> {
    let mut script = format!("set -u\ncd -- {} || exit 3\nmkdir -p .tend || exit 3\n", quote(&s.root));
    if let Some(id) = active {
        script.push_str(&format!(
            "printf '%s\\n' {q} > .tend/active.tmp && mv -f .tend/active.tmp .tend/active || exit 3\n\
             [ \"$(tail -n 1 .tend/history 2>/dev/null)\" = {q} ] || printf '%s\\n' {q} >> .tend/history\n",
            q = quote(id)
        ));
    }
    script.push_str("cat >> .tend/deploys.log\n");
    let body = format!("{}\n", line.trim_end());
    let what = format!("append to {}/.tend/deploys.log", s.root);
    node.step("record", &what, script, Input::Bytes(body.as_bytes()), SHORT)
        .await
        .map(|_| ())
}

/// The releases to delete so that `keep` remain; the current and previous release always stay.
pub fn to_prune(state: &HostState, keep: usize) -> Vec<String> {
    let mut protected: Vec<&str> = Vec::new();
    if let Some(c) = state.current.as_deref() {
        protected.push(c);
    }
    if let Some(p) = state.previous() {
        protected.push(&p.id);
    }
    let mut newest_first: Vec<&Release> = state.releases.iter().collect();
    newest_first.sort_by_key(|r| std::cmp::Reverse((r.staged, r.id.clone())));
    let mut kept = 0;
    let mut remove = Vec::new();
    for r in newest_first {
        if protected.contains(&r.id.as_str()) || kept < keep {
            kept += 1;
            continue;
        }
        remove.push(r.id.clone());
    }
    remove
}

/// Deletes releases (renamed aside first, manifest last) and returns their ids.
pub async fn prune(node: &Host, s: &HostSettings, ids: &[String]) -> Result<(), StepError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut script = format!("set -u\ncd -- {} || exit 3\n", quote(&s.root));
    for id in ids {
        let q = quote(id);
        script.push_str(&format!(
            "[ \"$(readlink current)\" = releases/{q} ] && {{ echo \"release {id} is current\" >&2; exit 7; }}\n\
             if [ -d releases/{q} ]; then mv -T releases/{q} releases/.trash-{q}-$$ && rm -rf releases/.trash-{q}-$$ || exit 3; fi\n\
             rm -f .tend/manifests/{q}\n"
        ));
    }
    let what = format!("remove old releases {}", ids.join(" "));
    node.step("prune", &what, script, Input::None, Duration::from_secs(300))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(current: &str, ids: &[(&str, i64)]) -> HostState {
        HostState {
            current: Some(current.into()),
            releases: ids
                .iter()
                .map(|(id, t)| Release {
                    id: (*id).into(),
                    sha256: String::new(),
                    staged: *t,
                    schema: None,
                })
                .collect(),
            ..HostState::default()
        }
    }

    #[test]
    fn previous_is_the_newest_release_staged_before_current() {
        let s = state("2", &[("1", 10), ("2", 20), ("3", 30)]);
        assert_eq!(s.previous().map(|r| r.id.as_str()), Some("1"));
        let s = state("1", &[("1", 10), ("2", 20)]);
        assert_eq!(s.previous(), None);
    }

    #[test]
    fn previous_is_what_served_before_current() {
        let mut s = state("4", &[("1", 10), ("3", 30), ("4", 40)]);
        // 3 was staged but never served (its deploy failed): 1 served last before 4.
        s.history = vec!["1".into(), "2".into(), "1".into(), "4".into()];
        assert_eq!(s.previous().map(|r| r.id.as_str()), Some("1"));
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_current_or_previous() {
        let s = state("2", &[("1", 10), ("2", 20), ("3", 30), ("4", 40), ("5", 50)]);
        // keep 2: the two newest (5, 4) count, current 2 and previous 1 are protected.
        assert_eq!(to_prune(&s, 2), vec!["3".to_string()]);
        let s = state("5", &[("1", 10), ("2", 20), ("3", 30), ("4", 40), ("5", 50)]);
        assert_eq!(to_prune(&s, 2), vec!["3".to_string(), "2".to_string(), "1".to_string()]);
    }
}
