//! `stat`: facts about a path, for `register` and `when`.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Plan, Script, run_planned};
use crate::transport::shell::quote;
use serde_json::{Map, Value as Json};

/// `stat`.
pub struct Stat;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["dest", "name"]),
    Param::new("follow", Kind::Bool),
    Param::new("get_checksum", Kind::Bool),
    Param::new("checksum_algorithm", Kind::Str)
        .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
        .aliases(&["checksum", "checksum_algo"]),
    Param::new("get_mime", Kind::Bool),
    Param::new("get_attributes", Kind::Bool),
];

impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn scripted(&self) -> bool {
        true
    }
    fn plan(&self, _ctx: &Ctx<'_>, args: &Args) -> Option<Result<Plan, ModuleError>> {
        Some(Ok(plan(args)))
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        run_planned(Ok(plan(args)), ctx)
    }
}

fn plan(args: &Args) -> Plan {
    let path = args.str("path").unwrap_or_default().to_string();
    let follow = if args.bool("follow", false) { "-L" } else { "" };
    let algo = args.str("checksum_algorithm").unwrap_or("sha1");
    let checksum = if args.bool("get_checksum", true) {
        format!("if [ -f \"$p\" ] && [ -r \"$p\" ]; then c=$({algo}sum < \"$p\") && echo \"checksum=${{c%% *}}\"; fi")
    } else {
        String::new()
    };
    let script = format!(
        "p={}\nif [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then echo exists=false; exit 0; fi\necho exists=true\n\
         stat {follow} --printf 'mode=%a\\nuid=%u\\ngid=%g\\npw_name=%U\\ngr_name=%G\\nsize=%s\\nmtime=%Y\\ninode=%i\\nnlink=%h\\ntype=%F\\n' -- \"$p\"\n\
         if [ -L \"$p\" ]; then echo \"lnk_source=$(readlink -f -- \"$p\")\"; echo \"lnk_target=$(readlink -- \"$p\")\"; fi\n{checksum}\n",
        quote(&path)
    );
    Plan::Remote(Script::new(script, None, move |out| {
        let path = path.as_str();
        if !out.success() {
            return Err(ModuleError::remote(
                format!("stat {path} failed"),
                format!("stat {path}"),
                &out,
            ));
        }
        let mut stat = Map::new();
        stat.insert("path".into(), path.into());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let value = match k {
                "exists" => Json::Bool(v == "true"),
                "uid" | "gid" | "size" | "mtime" | "inode" | "nlink" => {
                    v.parse::<i64>().map(Json::from).unwrap_or(Json::Null)
                }
                "mode" => Json::String(format!("{:0>4}", v)),
                "type" => {
                    let t = v.to_ascii_lowercase();
                    stat.insert("isdir".into(), Json::Bool(t == "directory"));
                    stat.insert("isreg".into(), Json::Bool(t.contains("regular")));
                    stat.insert("islnk".into(), Json::Bool(t == "symbolic link"));
                    stat.insert("isfifo".into(), Json::Bool(t == "fifo"));
                    stat.insert("issock".into(), Json::Bool(t == "socket"));
                    continue;
                }
                _ => Json::String(v.to_string()),
            };
            stat.insert(k.to_string(), value);
        }
        let mut r = ModuleResult::default();
        r.data.insert("stat".into(), Json::Object(stat));
        Ok(r)
    }))
}
