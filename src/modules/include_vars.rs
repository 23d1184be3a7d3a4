//! `include_vars`: variables from a YAML or JSON file of the control node (a role's `vars/`,
//! the playbook's directory), set on the host for the rest of the run; the path may be a
//! template (`"{{ ansible_os_family }}.yml"`), decided per host.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Runs};
use serde_json::Value as Json;

/// `include_vars`.
pub struct IncludeVars;

impl Module for IncludeVars {
    fn name(&self) -> &'static str {
        "include_vars"
    }
    fn params(&self) -> &'static [Param] {
        const P: &[Param] = &[
            Param::new("file", Kind::Str),
            Param::new("name", Kind::Str),
            Param::new("hash_behaviour", Kind::Str),
        ];
        P
    }
    fn free_form(&self) -> Option<&'static str> {
        Some("file")
    }
    fn local_file(&self) -> Option<(&'static str, &'static str)> {
        Some(("file", "vars"))
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let Some(file) = args.str("file").filter(|f| !f.is_empty()) else {
                return Err(ModuleError::Args("`include_vars` needs a file".into()));
            };
            let path = ctx.find_file(file, "vars")?;
            let (_, node) = crate::yaml::load_file(&path).map_err(|d| ModuleError::Failed(d.to_string()))?;
            let vars = match node.to_json() {
                Json::Object(m) => m,
                Json::Null => serde_json::Map::new(),
                other => {
                    return Err(ModuleError::Failed(format!(
                        "{} must hold a mapping of variables, not `{other}`",
                        path.display()
                    )));
                }
            };
            let mut r = ModuleResult {
                msg: Some(format!("{} variables from {}", vars.len(), path.display())),
                ..ModuleResult::default()
            };
            match args.str("name").filter(|n| !n.is_empty()) {
                Some(name) => {
                    r.facts.insert(name.to_string(), Json::Object(vars));
                }
                None => r.facts.extend(vars),
            }
            Ok(r)
        })
    }
}
