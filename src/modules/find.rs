//! `find`: files of the host chosen by name, type, age, size, mode and content, as Ansible's
//! `find` returns them (`files` with stat fields, `matched`, `examined`, `skipped_paths`). GNU
//! `find` lists the entries in one round trip; the filters are Ansible's, applied here; file
//! content (`contains`) and checksums take a second round trip over the files that are left.

use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Param, last_line, split_marked};
use crate::transport::shell::quote;
use serde_json::{Map, Value as Json};

/// `find`: picking old releases, logs or dumps to clean up or fetch.
pub struct Find;

const PARAMS: &[Param] = &[
    Param::new("paths", Kind::List).required().aliases(&["name", "path"]),
    Param::new("patterns", Kind::List).aliases(&["pattern"]),
    Param::new("excludes", Kind::List).aliases(&["exclude"]),
    Param::new("contains", Kind::Str),
    Param::new("read_whole_file", Kind::Bool),
    Param::new("file_type", Kind::Str).choices(&["any", "directory", "file", "link"]),
    Param::new("age", Kind::Str),
    Param::new("age_stamp", Kind::Str).choices(&["atime", "ctime", "mtime"]),
    Param::new("size", Kind::Str),
    Param::new("recurse", Kind::Bool),
    Param::new("hidden", Kind::Bool),
    Param::new("follow", Kind::Bool),
    Param::new("get_checksum", Kind::Bool),
    Param::new("checksum_algorithm", Kind::Str)
        .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
        .aliases(&["checksum", "checksum_algo"]),
    Param::new("use_regex", Kind::Bool),
    Param::new("depth", Kind::Int),
    Param::new("mode", Kind::Mode),
    Param::new("exact_mode", Kind::Bool),
    Param::new("encoding", Kind::Str),
    Param::new("limit", Kind::Int),
];

/// Name patterns: shell globs (Python's `fnmatch`) or regular expressions matched at the start
/// of the name (Python's `re.match`).
enum Matcher {
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
}

impl Matcher {
    fn new(p: &str, regex: bool) -> Result<Self, String> {
        if regex {
            regex::Regex::new(&format!("^(?:{})", p.replace(r"\Z", r"\z")))
                .map(Matcher::Regex)
                .map_err(|e| format!("invalid regular expression `{p}`: {e}"))
        } else {
            globset::GlobBuilder::new(p)
                .backslash_escape(false)
                .build()
                .map(|g| Matcher::Glob(g.compile_matcher()))
                .map_err(|e| format!("invalid pattern `{p}`: {e}"))
        }
    }
    fn is_match(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.is_match(name),
            Matcher::Regex(r) => r.is_match(name),
        }
    }
}

/// Ansible's `pfilter`: a pattern matches and no exclude does.
fn pfilter(name: &str, patterns: &[Matcher], excludes: &[Matcher]) -> bool {
    patterns.iter().any(|p| p.is_match(name)) && !excludes.iter().any(|e| e.is_match(name))
}

/// `30d`, `-2h`, `1w` as seconds; `10m`, `1g` as bytes (Ansible's units).
fn amount(text: &str, units: &[(char, i64)], what: &str) -> Result<i64, String> {
    let t = text.trim().to_lowercase();
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m = units
                .iter()
                .find(|(u, _)| *u == c)
                .map(|(_, m)| *m)
                .ok_or_else(|| format!("failed to process {what}"))?;
            (&t[..t.len() - 1], m)
        }
        _ => (t.as_str(), 1),
    };
    num.parse::<i64>()
        .map(|n| n * mult)
        .map_err(|_| format!("failed to process {what}"))
}

/// One entry as `find -printf` described it.
#[derive(Debug, Clone)]
struct Entry {
    kind: char,
    mode: u32,
    uid: i64,
    gid: i64,
    user: String,
    group: String,
    size: i64,
    inode: i64,
    dev: i64,
    nlink: i64,
    atime: f64,
    mtime: f64,
    ctime: f64,
    path: String,
    depth: usize,
}

const FORMAT: &str = r"%y\t%m\t%U\t%G\t%u\t%g\t%s\t%i\t%D\t%n\t%A@\t%T@\t%C@\t%d\t%p\0";

fn parse_entry(rec: &[u8]) -> Option<Entry> {
    let text = String::from_utf8_lossy(rec);
    let f: Vec<&str> = text.splitn(15, '\t').collect();
    let [
        kind,
        mode,
        uid,
        gid,
        user,
        group,
        size,
        inode,
        dev,
        nlink,
        at,
        mt,
        ct,
        depth,
        path,
    ] = f[..]
    else {
        return None;
    };
    let n = |s: &str| s.parse::<i64>().unwrap_or(0);
    let t = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    // `find` prints an id it cannot name as the number; Ansible gives an empty name.
    let name = |name: &str, id: &str| if name == id { String::new() } else { name.to_string() };
    Some(Entry {
        kind: kind.chars().next().unwrap_or('?'),
        mode: u32::from_str_radix(mode, 8).unwrap_or(0),
        uid: n(uid),
        gid: n(gid),
        user: name(user, uid),
        group: name(group, gid),
        size: n(size),
        inode: n(inode),
        dev: n(dev),
        nlink: n(nlink),
        atime: t(at),
        mtime: t(mt),
        ctime: t(ct),
        path: normpath(path),
        depth: depth.parse().unwrap_or(0),
    })
}

/// Python's `os.path.normpath` for the paths `find` prints (`a//b`, `a/./b`, a final `/`).
fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn statinfo(e: &Entry) -> Map<String, Json> {
    let m = e.mode;
    let mut r = Map::new();
    r.insert("path".into(), e.path.clone().into());
    r.insert("mode".into(), format!("{:04o}", m & 0o7777).into());
    for (k, c) in [
        ("isdir", 'd'),
        ("ischr", 'c'),
        ("isblk", 'b'),
        ("isreg", 'f'),
        ("isfifo", 'p'),
        ("islnk", 'l'),
        ("issock", 's'),
    ] {
        r.insert(k.into(), (e.kind == c).into());
    }
    for (k, v) in [
        ("uid", e.uid),
        ("gid", e.gid),
        ("size", e.size),
        ("inode", e.inode),
        ("dev", e.dev),
        ("nlink", e.nlink),
    ] {
        r.insert(k.into(), v.into());
    }
    for (k, v) in [("atime", e.atime), ("mtime", e.mtime), ("ctime", e.ctime)] {
        r.insert(k.into(), v.into());
    }
    r.insert("gr_name".into(), e.group.clone().into());
    r.insert("pw_name".into(), e.user.clone().into());
    for (k, bit) in [
        ("wusr", 0o200),
        ("rusr", 0o400),
        ("xusr", 0o100),
        ("wgrp", 0o020),
        ("rgrp", 0o040),
        ("xgrp", 0o010),
        ("woth", 0o002),
        ("roth", 0o004),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        r.insert(k.into(), (m & bit != 0).into());
    }
    r
}

const LIST: &str = r#"set -u
printf '@@tend now %s\n' "$(date +%s.%N)"
for p in "$@"; do
  if [ ! -d "$p" ]; then printf '@@tend notdir %s\n' "$p"; continue; fi
  printf '@@tend root %s\n' "$p"
  find $follow "$p" -mindepth 1 -maxdepth "$maxdepth" -printf "$format" 2>/dev/null | base64 -w0; echo
done
"#;

const PROBE: &str = r#"set -u
i=0
for f in "$@"; do
  if [ -n "$contains" ]; then
    if [ "$whole" = 1 ]; then grep -qzP -- "$contains" "$f" 2>/dev/null; else grep -qP -- "^(?:$contains)" "$f" 2>/dev/null; fi || { i=$((i+1)); continue; }
  fi
  s=""
  if [ -n "$algo" ]; then s=$(${algo}sum < "$f" | cut -d' ' -f1); fi
  echo "@@tend hit $i $s"
  i=$((i+1))
done
"#;

async_module!(Find, "find", PARAMS, run);

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let use_regex = args.bool("use_regex", false);
    let mut patterns = args.list("patterns");
    if patterns.is_empty() {
        patterns.push(if use_regex { ".*" } else { "*" }.to_string());
    }
    let compile = |list: &[String]| -> Result<Vec<Matcher>, ModuleError> {
        list.iter()
            .map(|p| Matcher::new(p, use_regex).map_err(ModuleError::Args))
            .collect()
    };
    let (patterns, excludes) = (compile(&patterns)?, compile(&args.list("excludes"))?);
    let age = args
        .str("age")
        .map(|a| {
            amount(
                a,
                &[('s', 1), ('m', 60), ('h', 3600), ('d', 86400), ('w', 604_800)],
                "age",
            )
        })
        .transpose()
        .map_err(ModuleError::Args)?;
    let size = args
        .str("size")
        .map(|s| {
            amount(
                s,
                &[('b', 1), ('k', 1 << 10), ('m', 1 << 20), ('g', 1 << 30), ('t', 1 << 40)],
                "size",
            )
        })
        .transpose()
        .map_err(ModuleError::Args)?;
    let mode = args
        .str("mode")
        .map(|m| {
            u32::from_str_radix(m, 8)
                .map_err(|_| ModuleError::Args(format!("find: mode `{m}`: only octal modes are supported")))
        })
        .transpose()?;
    let limit = args.int("limit");
    if let Some(l) = limit.filter(|l| *l <= 0) {
        return Err(ModuleError::Args(format!(
            "limit cannot be {l} (use None for unlimited)"
        )));
    }
    let file_type = args.str("file_type").unwrap_or("file");
    let recurse = args.bool("recurse", false);
    let depth = args.int("depth").filter(|d| *d > 0).map(|d| d as usize);
    let maxdepth = match (recurse, depth) {
        (false, _) => 1,
        (true, Some(d)) => d + 1,
        (true, None) => 100_000,
    };
    let paths = args.list("paths");
    let listed: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    let script = format!(
        "follow={} maxdepth={maxdepth} format={}\nset -- {}\n{LIST}",
        if args.bool("follow", false) { "-L" } else { "" },
        quote(FORMAT),
        listed.join(" ")
    );
    let out = ctx.run(&script, None).await?;
    let (marks, plain) = split_marked(&out);
    if !out.success() {
        return Err(ModuleError::remote(last_line(&plain), "find", &plain));
    }
    let now: f64 = marks
        .iter()
        .find_map(|m| m.strip_prefix("now "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    let mut skipped = Map::new();
    let mut entries = Vec::new();
    let mut examined = 0;
    // The listing of each root follows its `root` mark, as the next line of stdout.
    let mut listings = String::from_utf8_lossy(&plain.stdout)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
        .into_iter();
    for m in &marks {
        if let Some(p) = m.strip_prefix("notdir ") {
            skipped.insert(p.to_string(), format!("'{p}' is not a directory").into());
        } else if m.starts_with("root ") {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(listings.next().unwrap_or_default().trim())
                .map_err(|e| ModuleError::Failed(format!("find: garbled answer from {} ({e})", ctx.host)))?;
            for rec in data.split(|&b| b == 0).filter(|r| !r.is_empty()) {
                if let Some(e) = parse_entry(rec) {
                    examined += 1;
                    entries.push(e);
                }
            }
        }
    }
    let stamp = args.str("age_stamp").unwrap_or("mtime");
    let hidden = args.bool("hidden", false);
    let exact = args.bool("exact_mode", true);
    let mut chosen: Vec<Entry> = entries
        .into_iter()
        .filter(|e| depth.is_none_or(|d| e.depth <= d))
        .filter(|e| {
            let name = e.path.rsplit('/').next().unwrap_or_default();
            if !hidden && name.starts_with('.') {
                return false;
            }
            let wanted = match file_type {
                "any" => true,
                "directory" => e.kind == 'd',
                "link" => e.kind == 'l',
                _ => e.kind == 'f',
            };
            let t = match stamp {
                "atime" => e.atime,
                "ctime" => e.ctime,
                _ => e.mtime,
            };
            let age_ok = age.is_none_or(|a| {
                let elapsed = now - t;
                if a >= 0 {
                    elapsed >= a as f64
                } else {
                    elapsed <= a.unsigned_abs() as f64
                }
            });
            let size_ok = size.is_none_or(|s| {
                !(file_type == "file" || file_type == "any") || e.kind != 'f' || {
                    if s >= 0 { e.size >= s } else { e.size <= s.abs() }
                }
            });
            let mode_ok = mode.is_none_or(|m| {
                let have = e.mode & 0o7777;
                if exact { have == m } else { have & m != 0 }
            });
            wanted && pfilter(name, &patterns, &excludes) && age_ok && size_ok && mode_ok
        })
        .collect();
    let contains = args.str("contains").filter(|_| file_type == "file");
    let algo = args
        .bool("get_checksum", false)
        .then(|| args.str("checksum_algorithm").unwrap_or("sha1"));
    let mut sums: Vec<Option<String>> = vec![None; chosen.len()];
    let files: Vec<usize> = (0..chosen.len()).filter(|&i| chosen[i].kind == 'f').collect();
    if (contains.is_some() || algo.is_some()) && !files.is_empty() {
        let listed: Vec<String> = files.iter().map(|&i| quote(&chosen[i].path)).collect();
        let out = ctx
            .run(
                &format!(
                    "contains={} whole={} algo={}\nset -- {}\n{PROBE}",
                    quote(contains.unwrap_or_default()),
                    u8::from(args.bool("read_whole_file", false)),
                    quote(algo.unwrap_or_default()),
                    listed.join(" ")
                ),
                None,
            )
            .await?;
        let (marks, plain) = split_marked(&out);
        if !out.success() {
            return Err(ModuleError::remote(last_line(&plain), "find: read the files", &plain));
        }
        let mut keep = vec![contains.is_none(); chosen.len()];
        for m in marks.iter().filter_map(|m| m.strip_prefix("hit ")) {
            let mut f = m.split(' ');
            if let Some(&i) = f
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| files.get(n))
            {
                keep[i] = true;
                sums[i] = f.next().filter(|s| !s.is_empty()).map(str::to_string);
            }
        }
        if contains.is_some() {
            // Directories and links are not read: they stay as the other filters left them.
            for (i, e) in chosen.iter().enumerate() {
                keep[i] |= e.kind != 'f';
            }
        }
        let mut n = 0;
        chosen.retain(|_| {
            n += 1;
            keep[n - 1]
        });
        let mut n = 0;
        sums.retain(|_| {
            n += 1;
            keep[n - 1]
        });
    }
    let mut list: Vec<Json> = chosen
        .iter()
        .zip(&sums)
        .map(|(e, sum)| {
            let mut m = statinfo(e);
            if let Some(s) = sum {
                m.insert("checksum".into(), s.clone().into());
            }
            Json::Object(m)
        })
        .collect();
    let mut msg = if skipped.is_empty() {
        "All paths examined"
    } else {
        "Not all paths examined, check warnings for details"
    };
    if let Some(l) = limit.and_then(|l| usize::try_from(l).ok())
        && list.len() >= l
    {
        list.truncate(l);
        msg = "Limit of matches reached";
    }
    let mut r = ModuleResult::changed(false);
    r.msg = Some(msg.into());
    r.data.insert("matched".into(), list.len().into());
    r.data.insert("files".into(), Json::Array(list));
    r.data.insert("examined".into(), examined.into());
    r.data.insert("skipped_paths".into(), Json::Object(skipped));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ages_and_sizes_as_ansible_reads_them() {
        let g = |p: &str| Matcher::new(p, false).unwrap();
        let r = |p: &str| Matcher::new(p, true).unwrap();
        assert!(pfilter("app.log", &[g("*.log")], &[]));
        assert!(!pfilter("app.log", &[g("*.log")], &[g("app*")]));
        assert!(pfilter("access.log.1", &[r(r"access\.log")], &[]));
        assert!(!pfilter("x-access.log", &[r(r"access\.log")], &[]));
        let secs = [('s', 1), ('m', 60), ('h', 3600), ('d', 86400), ('w', 604_800)];
        assert_eq!(amount("2d", &secs, "age"), Ok(172_800));
        assert_eq!(amount("-3600", &secs, "age"), Ok(-3600));
        assert_eq!(amount("2x", &secs, "age"), Err("failed to process age".into()));
        assert_eq!(normpath("/var/log//nginx/./a"), "/var/log/nginx/a");
    }
}
