//! A loop's items from its value, for `loop` and Ansible's `with_<lookup>` forms, each as
//! the lookup plugin of the same name computes them.

use crate::playbook::LoopKind;
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

/// The items of a rendered loop value of `kind`; `search_paths` are where `with_fileglob` and
/// `with_first_found` look on the control node (`subdir` under each, as the task's module
/// names it: `vars/` for `include_vars`, `templates/` for `template`, else `files/`; then each
/// path itself).
pub fn items(kind: LoopKind, value: Json, (search_paths, subdir): (&[PathBuf], &str)) -> Result<Vec<Json>, String> {
    match kind {
        LoopKind::List => match value {
            Json::Array(items) => Ok(items),
            Json::Null => Ok(Vec::new()),
            other => Err(format!("loop must be a list, got `{other}`")),
        },
        LoopKind::Items => Ok(flatten(as_list(value), 1)),
        LoopKind::Flattened => Ok(flatten(as_list(value), usize::MAX)),
        LoopKind::IndexedItems => Ok(flatten(as_list(value), 1)
            .into_iter()
            .enumerate()
            .map(|(i, x)| Json::Array(vec![Json::from(i), x]))
            .collect()),
        LoopKind::Dict => match value {
            Json::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| {
                    let mut m = Map::new();
                    m.insert("key".into(), Json::String(k));
                    m.insert("value".into(), v);
                    Json::Object(m)
                })
                .collect()),
            Json::Null => Ok(Vec::new()),
            other => Err(format!("with_dict expects a dict, got `{other}`")),
        },
        LoopKind::Nested => {
            let lists: Vec<Vec<Json>> = as_list(value).into_iter().map(as_list).collect();
            if lists.is_empty() {
                return Err("with_nested needs at least one list".into());
            }
            let mut out: Vec<Vec<Json>> = vec![Vec::new()];
            for list in lists {
                out = out
                    .into_iter()
                    .flat_map(|prefix| {
                        list.iter().map(move |x| {
                            let mut p = prefix.clone();
                            p.push(x.clone());
                            p
                        })
                    })
                    .collect();
            }
            Ok(out.into_iter().map(Json::Array).collect())
        }
        LoopKind::Together => {
            let lists: Vec<Vec<Json>> = as_list(value).into_iter().map(as_list).collect();
            let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
            Ok((0..longest)
                .map(|i| Json::Array(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Json::Null)).collect()))
                .collect())
        }
        LoopKind::Subelements => subelements(value),
        LoopKind::Sequence => sequence(&value),
        LoopKind::Fileglob => Ok(fileglob(&as_list(value), search_paths)),
        LoopKind::FirstFound => match first_found(value, search_paths, subdir) {
            Ok(f) => Ok(vec![Json::String(f)]),
            // `skip: true`: nothing found is no item, not an error.
            Err(e) if e.is_empty() => Ok(Vec::new()),
            Err(e) => Err(e),
        },
    }
}

/// A value as a list: a list, or one item (a string is one item, as a lookup's term).
fn as_list(value: Json) -> Vec<Json> {
    match value {
        Json::Array(items) => items,
        Json::Null => Vec::new(),
        other => vec![other],
    }
}

fn flatten(items: Vec<Json>, depth: usize) -> Vec<Json> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Json::Array(inner) if depth > 0 => out.extend(flatten(inner, depth - 1)),
            other => out.push(other),
        }
    }
    out
}

/// `[list, 'key']` or `[list, 'key', {skip_missing: true}]`: each element with each item of
/// its `key` list (dotted for nested keys).
fn subelements(value: Json) -> Result<Vec<Json>, String> {
    let terms = as_list(value);
    let (list, key) = match (terms.first(), terms.get(1)) {
        // A dict's values, as Ansible iterates it.
        (Some(Json::Object(m)), Some(Json::String(key))) => (m.values().cloned().collect(), key.clone()),
        (Some(list), Some(Json::String(key))) => (as_list(list.clone()), key.clone()),
        _ => return Err("with_subelements expects [list, 'subkey'] (and optionally {skip_missing: true})".into()),
    };
    let skip_missing = terms
        .get(2)
        .and_then(|f| f.get("skip_missing"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let mut out = Vec::new();
    for element in list {
        let mut sub = Some(&element);
        for part in key.split('.') {
            sub = sub.and_then(|s| s.get(part));
        }
        match sub {
            Some(Json::Array(items)) => {
                // As Ansible gives it: the element without the sub-list it is paired from.
                let mut rest = element.clone();
                let mut at = Some(&mut rest);
                let parts: Vec<&str> = key.split('.').collect();
                for part in &parts[..parts.len() - 1] {
                    at = at.and_then(|x| x.get_mut(*part));
                }
                if let Some(Json::Object(m)) = at {
                    m.remove(parts[parts.len() - 1]);
                }
                for item in items {
                    out.push(Json::Array(vec![rest.clone(), item.clone()]));
                }
            }
            None if skip_missing => {}
            None => {
                return Err(format!(
                    "with_subelements: an element has no `{key}` (set skip_missing)"
                ));
            }
            Some(other) => return Err(format!("with_subelements: `{key}` must be a list, got `{other}`")),
        }
    }
    Ok(out)
}

/// `start=1 end=10 stride=2 format=web%02d`, `count=5`, or the short form `[start-]end[/stride]
/// [:format]`: the numbers, as strings (as Ansible's `sequence` gives them).
fn sequence(value: &Json) -> Result<Vec<Json>, String> {
    let spec = match value {
        Json::String(s) => s.clone(),
        Json::Array(items) if items.len() == 1 => items[0].as_str().unwrap_or_default().to_string(),
        other => return Err(format!("with_sequence expects a string, got `{other}`")),
    };
    let bad = || format!("with_sequence: cannot read `{spec}`");
    let int = |s: &str| -> Result<i64, String> {
        let s = s.trim();
        let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => (h, 16),
            None => match s.strip_prefix("0o") {
                Some(o) => (o, 8),
                None => (s, 10),
            },
        };
        i64::from_str_radix(digits, radix).map_err(|_| bad())
    };
    let (mut start, mut end, mut stride, mut count, mut format) = (1i64, None, 1i64, None, "%d".to_string());
    if spec.contains('=') {
        for word in spec.split_whitespace() {
            let (k, v) = word.split_once('=').ok_or_else(bad)?;
            match k {
                "start" => start = int(v)?,
                "end" => end = Some(int(v)?),
                "stride" => stride = int(v)?,
                "count" => count = Some(int(v)?),
                "format" => format = v.to_string(),
                _ => return Err(bad()),
            }
        }
    } else {
        let (range, fmt) = match spec.split_once(':') {
            Some((r, f)) => (r, Some(f)),
            None => (spec.as_str(), None),
        };
        if let Some(f) = fmt {
            format = f.to_string();
        }
        let (range, st) = match range.split_once('/') {
            Some((r, s)) => (r, Some(int(s)?)),
            None => (range, None),
        };
        if let Some(s) = st {
            stride = s;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                start = int(a)?;
                end = Some(int(b)?);
            }
            None => end = Some(int(range)?),
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err("with_sequence: give `end` or `count`, not both".into()),
        (Some(e), None) => e,
        (None, Some(0)) => return Ok(Vec::new()),
        (None, Some(c)) => (c - 1)
            .checked_mul(stride)
            .and_then(|d| start.checked_add(d))
            .ok_or_else(|| format!("with_sequence: `{spec}` goes beyond the integers"))?,
        (None, None) => return Err("with_sequence needs `end` or `count`".into()),
    };
    if stride == 0 || (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err(format!(
            "with_sequence: from {start} to {end} by {stride} never ends (count down with a negative stride)"
        ));
    }
    let mut out = Vec::new();
    let mut n = start;
    while (stride > 0 && n <= end) || (stride < 0 && n >= end) {
        out.push(Json::String(printf(&format, n)));
        if out.len() > 1_000_000 {
            return Err(format!("with_sequence: `{spec}` gives more than a million items"));
        }
        match n.checked_add(stride) {
            Some(next) => n = next,
            None => break,
        }
    }
    Ok(out)
}

/// The one `%d`, `%0Nd`, `%x`, `%o` or `%s` of a sequence's format.
fn printf(format: &str, n: i64) -> String {
    let Some(at) = format.find('%') else {
        return format.to_string();
    };
    let rest = &format[at + 1..];
    let spec_len = rest
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or(rest.len(), |i| i + 1);
    let (spec, tail) = rest.split_at(spec_len);
    let conv = spec.chars().last().unwrap_or('d');
    let flags = &spec[..spec.len().saturating_sub(1)];
    let zero = flags.starts_with('0');
    let width: usize = flags.trim_start_matches('0').parse().unwrap_or(0);
    let body = match conv {
        'x' => format!("{n:x}"),
        'X' => format!("{n:X}"),
        'o' => format!("{n:o}"),
        _ => n.to_string(),
    };
    let padded = if zero {
        format!("{body:0>width$}")
    } else {
        format!("{body:>width$}")
    };
    format!("{}{padded}{tail}", &format[..at])
}

/// Control-node files matching each pattern (relative ones under `files/` of each search path,
/// then each path itself), sorted; directories are not files.
fn fileglob(patterns: &[Json], search_paths: &[PathBuf]) -> Vec<Json> {
    let mut out = Vec::new();
    for p in patterns.iter().filter_map(Json::as_str) {
        let path = Path::new(p);
        let bases: Vec<PathBuf> = if path.is_absolute() {
            vec![PathBuf::new()]
        } else {
            search_paths.iter().flat_map(|b| [b.join("files"), b.clone()]).collect()
        };
        for base in bases {
            let full = base.join(path);
            let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
                continue;
            };
            let pattern_name = name.to_string_lossy().to_string();
            let Ok(glob) = globset::Glob::new(&pattern_name) else {
                continue;
            };
            let glob = glob.compile_matcher();
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut found: Vec<String> = entries
                .filter_map(Result::ok)
                // As Python's glob: `*` does not match a leading dot.
                .filter(|e| {
                    let name = e.file_name();
                    let hidden = name.to_string_lossy().starts_with('.') && !pattern_name.starts_with('.');
                    e.path().is_file() && !hidden && glob.is_match(&name)
                })
                .map(|e| absolute(&e.path()))
                .collect();
            if !found.is_empty() {
                found.sort();
                out.extend(found.into_iter().map(Json::String));
                break;
            }
        }
    }
    out
}

/// A found file's absolute path, as Ansible's lookups give it.
fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The first file that exists of a list of names, or of `{files, paths, skip}`.
fn first_found(value: Json, search_paths: &[PathBuf], subdir: &str) -> Result<String, String> {
    let mut files = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut skip = false;
    for term in as_list(value) {
        match term {
            Json::String(s) => files.push(s),
            Json::Object(m) => {
                let strings = |v: Option<&Json>| -> Vec<String> {
                    match v {
                        Some(Json::String(s)) => s.split([',', ';']).map(|x| x.trim().to_string()).collect(),
                        Some(Json::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                        _ => Vec::new(),
                    }
                };
                files.extend(strings(m.get("files")));
                paths.extend(strings(m.get("paths")).into_iter().map(PathBuf::from));
                skip |= m.get("skip").and_then(Json::as_bool).unwrap_or(false);
            }
            _ => {}
        }
    }
    let mut bases: Vec<PathBuf> = Vec::new();
    if paths.is_empty() {
        bases.extend(search_paths.iter().flat_map(|b| [b.join(subdir), b.clone()]));
    } else {
        for p in &paths {
            if p.is_absolute() {
                bases.push(p.clone());
            } else {
                bases.extend(search_paths.iter().map(|b| b.join(p)));
            }
        }
    }
    for f in &files {
        let path = Path::new(f);
        if path.is_absolute() {
            if path.exists() {
                return Ok(f.clone());
            }
            continue;
        }
        if let Some(found) = bases.iter().map(|b| b.join(path)).find(|c| c.exists()) {
            return Ok(absolute(&found));
        }
    }
    if skip {
        return Err(String::new());
    }
    Err(format!("with_first_found: none of {} was found", files.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_give_ansibles_items() {
        let none: &[PathBuf] = &[];
        assert_eq!(
            items(LoopKind::Dict, json!({"a": 1, "b": 2}), (none, "files")).unwrap(),
            vec![json!({"key": "a", "value": 1}), json!({"key": "b", "value": 2})]
        );
        assert_eq!(
            items(LoopKind::Nested, json!([["a", "b"], [1, 2]]), (none, "files")).unwrap(),
            vec![json!(["a", 1]), json!(["a", 2]), json!(["b", 1]), json!(["b", 2])]
        );
        assert_eq!(
            items(LoopKind::Together, json!([["a", "b"], [1]]), (none, "files")).unwrap(),
            vec![json!(["a", 1]), json!(["b", null])]
        );
        assert_eq!(
            items(
                LoopKind::Subelements,
                json!([[{"n": "u1", "keys": ["k1", "k2"]}], "keys"]),
                (none, "files")
            )
            .unwrap(),
            vec![json!([{"n": "u1"}, "k1"]), json!([{"n": "u1"}, "k2"])]
        );
        assert_eq!(
            items(
                LoopKind::Sequence,
                json!("start=1 end=10 stride=4 format=web%02d"),
                (none, "files")
            )
            .unwrap(),
            vec![json!("web01"), json!("web05"), json!("web09")]
        );
        assert_eq!(
            items(LoopKind::Sequence, json!("count=3"), (none, "files")).unwrap(),
            vec![json!("1"), json!("2"), json!("3")]
        );
        assert_eq!(
            items(LoopKind::Sequence, json!("4-8/2"), (none, "files")).unwrap(),
            vec![json!("4"), json!("6"), json!("8")]
        );
        assert_eq!(
            items(LoopKind::IndexedItems, json!(["a", "b"]), (none, "files")).unwrap(),
            vec![json!([0, "a"]), json!([1, "b"])]
        );
        assert_eq!(
            items(LoopKind::Flattened, json!([1, [2, [3]]]), (none, "files")).unwrap(),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            items(LoopKind::Items, json!([1, [2, [3]]]), (none, "files")).unwrap(),
            vec![json!(1), json!(2), json!([3])]
        );
    }
}
