//! Ansible host patterns: `all`, `web`, `h1`, `web*`, `~re`, `a:b`, `a,b`, `a:&b`, `a:!b`,
//! `group[0]`, `group[1:3]`. Unions come first, then intersections, then exclusions, whatever
//! the order they were written in (as in Ansible).

use super::Inventory;
use crate::diagnostic::did_you_mean;

/// A pattern that is malformed or selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
pub struct PatternError {
    /// What is wrong, naming the pattern.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl From<PatternError> for crate::diagnostic::Diagnostic {
    fn from(e: PatternError) -> Self {
        let d = Self::plain(e.message);
        match e.hint {
            Some(h) => d.with_hint(h),
            None => d,
        }
    }
}

fn err(message: String, hint: Option<String>) -> PatternError {
    PatternError { message, hint }
}

/// Splits on `,` and `:` outside brackets.
fn terms(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' | ':' if depth == 0 => {
                out.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&pattern[start..]);
    out.into_iter().map(str::trim).collect()
}

/// Hosts (indices, inventory order) selected by `pattern`, optionally narrowed by `limit`.
pub fn select(inv: &Inventory, pattern: &str, limit: Option<&str>) -> Result<Vec<usize>, PatternError> {
    let mut selected = resolve(inv, pattern, false)?;
    if let Some(limit) = limit {
        let allowed = resolve(inv, limit, false)?;
        selected.retain(|h| allowed.contains(h));
        if selected.is_empty() {
            return Err(err(
                format!("no host matches pattern `{pattern}` with `--limit {limit}`"),
                Some("the limit selects hosts outside the pattern; check both with `tend inventory --graph`".into()),
            ));
        }
    }
    Ok(selected)
}

/// A play's hosts: as [`select`], except that a group of the inventory that has no hosts
/// matches none without an error (Ansible skips such a play); a name the inventory does not
/// have stays an error.
pub fn select_for_play(inv: &Inventory, pattern: &str) -> Result<Vec<usize>, PatternError> {
    resolve(inv, pattern, true)
}

fn resolve(inv: &Inventory, pattern: &str, empty_groups: bool) -> Result<Vec<usize>, PatternError> {
    let n = inv.hosts.len();
    let mut union = vec![false; n];
    let mut intersect: Vec<Vec<bool>> = Vec::new();
    let mut exclude = vec![false; n];
    let mut any_union = false;
    let mut empty_group = false;
    for term in terms(pattern) {
        if term.is_empty() {
            return Err(err(
                format!("empty term in host pattern `{pattern}`"),
                Some("separate terms with `:` or `,`, e.g. `web:&prod:!web3`".into()),
            ));
        }
        let (kind, body) = match term.as_bytes()[0] {
            b'&' => (1, &term[1..]),
            b'!' => (2, &term[1..]),
            _ => (0, term),
        };
        let hits = match_term(inv, body, pattern)?;
        if hits.is_empty() && empty_groups && inv.group_index(body).is_some() {
            empty_group = true;
        } else if hits.is_empty() {
            let names = inv
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .chain(inv.hosts.iter().map(|h| h.name.as_str()));
            let hint = did_you_mean(body, names)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "list groups and hosts with `tend inventory --graph`".into());
            return Err(err(
                format!("host pattern `{pattern}`: `{body}` matches no host"),
                Some(hint),
            ));
        }
        let mut mask = vec![false; n];
        for h in hits {
            mask[h] = true;
        }
        match kind {
            0 => {
                any_union = true;
                for (u, m) in union.iter_mut().zip(&mask) {
                    *u |= m;
                }
            }
            1 => intersect.push(mask),
            _ => {
                for (x, m) in exclude.iter_mut().zip(&mask) {
                    *x |= m;
                }
            }
        }
    }
    if !any_union {
        // `!web` alone means "all but web", as in Ansible.
        union = vec![true; n];
    }
    let hosts: Vec<usize> = (0..n)
        .filter(|&h| union[h] && intersect.iter().all(|m| m[h]) && !exclude[h])
        .collect();
    if hosts.is_empty() && !empty_group {
        return Err(err(
            format!("host pattern `{pattern}` matches no host"),
            Some("its intersections and exclusions leave nothing; check with `tend inventory --graph`".into()),
        ));
    }
    Ok(hosts)
}

/// Hosts matched by one term: a group, a host, a glob, a `~regex`, or `group[subscript]`.
fn match_term(inv: &Inventory, body: &str, pattern: &str) -> Result<Vec<usize>, PatternError> {
    if let Some(re) = body.strip_prefix('~') {
        let re = regex::Regex::new(re)
            .map_err(|e| err(format!("host pattern `{pattern}`: invalid regex `{re}`: {e}"), None))?;
        return Ok(collect(inv, |name| re.is_match(name)));
    }
    if let Some(g) = inv.group_index(body) {
        return Ok(inv.hosts_of_group(g));
    }
    if let Some(h) = inv.hosts.iter().position(|h| h.name == body) {
        return Ok(vec![h]);
    }
    if let Some((base, sub)) = subscript(body)
        && let Some(g) = inv.group_index(base)
    {
        let hosts = inv.hosts_of_group(g);
        return slice(&hosts, sub).ok_or_else(|| {
            err(
                format!(
                    "host pattern `{pattern}`: subscript `[{sub}]` does not fit group `{base}` of {} hosts",
                    hosts.len()
                ),
                Some("use `[N]`, `[N:M]`, `[:M]` or `[N:]`, counting from 0; `[-1]` is the last host".into()),
            )
        });
    }
    if body.contains(['*', '?', '[']) {
        let glob = globset::GlobBuilder::new(body)
            .literal_separator(false)
            .build()
            .map_err(|e| err(format!("host pattern `{pattern}`: invalid glob `{body}`: {e}"), None))?
            .compile_matcher();
        return Ok(collect(inv, |name| glob.is_match(name)));
    }
    Ok(Vec::new())
}

/// Hosts whose name matches, plus the hosts of groups whose name matches.
fn collect(inv: &Inventory, matches: impl Fn(&str) -> bool) -> Vec<usize> {
    let mut mask = vec![false; inv.hosts.len()];
    for (i, g) in inv.groups.iter().enumerate() {
        if matches(&g.name) {
            for h in inv.hosts_of_group(i) {
                mask[h] = true;
            }
        }
    }
    for (i, h) in inv.hosts.iter().enumerate() {
        if matches(&h.name) {
            mask[i] = true;
        }
    }
    (0..mask.len()).filter(|&i| mask[i]).collect()
}

fn subscript(body: &str) -> Option<(&str, &str)> {
    let inner = body.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    let sub = &inner[open + 1..];
    sub.chars()
        .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
        .then_some((&inner[..open], sub))
}

/// Ansible's subscripts: `[i]`, `[i:j]` (both inclusive), `[:j]`, `[i:]`, negative from the end.
fn slice(hosts: &[usize], sub: &str) -> Option<Vec<usize>> {
    let len = hosts.len() as i64;
    let index = |s: &str| -> Option<i64> {
        let i: i64 = s.parse().ok()?;
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then_some(i)
    };
    let (a, b) = match sub.split_once(':') {
        None => {
            let i = index(sub)?;
            (i, i)
        }
        Some((a, b)) => (
            if a.is_empty() { 0 } else { index(a)? },
            if b.is_empty() { len - 1 } else { index(b)? },
        ),
    };
    (a <= b).then(|| hosts[a as usize..=b as usize].to_vec())
}
