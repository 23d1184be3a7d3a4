//! Control-node modules: `debug`, `set_fact`, `assert`, `fail`.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Runs};
use serde_json::Value as Json;

/// `debug`: prints a message or a variable.
pub struct Debug;
/// `set_fact`: sets host variables for the rest of the run.
pub struct SetFact;
/// `assert`: fails unless every condition holds.
pub struct Assert;
/// `fail`: fails with a message.
pub struct Fail;

impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn params(&self) -> &'static [Param] {
        const P: &[Param] = &[
            Param::new("msg", Kind::Any),
            Param::new("var", Kind::Str),
            Param::new("verbosity", Kind::Int),
        ];
        P
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let mut r = ModuleResult::default();
            if let Some(var) = args.str("var") {
                let value = ctx
                    .engine
                    .eval(var, ctx.scope)
                    .unwrap_or_else(|e| Json::String(format!("VARIABLE IS NOT DEFINED! ({e})")));
                r.msg = Some(format!("{var}: {}", render(&value)));
                r.data.insert(var.to_string(), value);
            } else {
                let msg = args
                    .get("msg")
                    .cloned()
                    .unwrap_or_else(|| Json::String("Hello world!".into()));
                r.msg = Some(render(&msg));
                r.data.insert("msg".into(), msg);
            }
            Ok(r)
        })
    }
}

fn render(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }
    fn params(&self) -> &'static [Param] {
        &[]
    }
    fn open_params(&self) -> bool {
        true
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, _ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let mut r = ModuleResult::default();
            for (k, v) in &args.0 {
                if k != "cacheable" {
                    r.facts.insert(k.clone(), v.clone());
                }
            }
            Ok(r)
        })
    }
}

impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }
    fn params(&self) -> &'static [Param] {
        const P: &[Param] = &[
            Param::new("that", Kind::Any).required(),
            Param::new("fail_msg", Kind::Any).aliases(&["msg"]),
            Param::new("success_msg", Kind::Any),
            Param::new("quiet", Kind::Bool),
        ];
        P
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let conditions: Vec<String> = match args.get("that") {
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect(),
                Some(Json::String(s)) => vec![s.clone()],
                Some(Json::Bool(b)) => vec![b.to_string()],
                _ => {
                    return Err(ModuleError::Args(
                        "`that` must be a condition or a list of conditions".into(),
                    ));
                }
            };
            for cond in &conditions {
                let ok = ctx
                    .engine
                    .condition(cond, ctx.scope)
                    .map_err(|e| ModuleError::Failed(format!("cannot evaluate `{cond}`: {e}")))?;
                if !ok {
                    let msg = args
                        .get("fail_msg")
                        .map(render)
                        .unwrap_or_else(|| "Assertion failed".into());
                    let mut r = ModuleResult {
                        failed: true,
                        msg: Some(msg),
                        ..ModuleResult::default()
                    };
                    r.data.insert("assertion".into(), Json::String(cond.clone()));
                    return Ok(r);
                }
            }
            let msg = args
                .get("success_msg")
                .map(render)
                .unwrap_or_else(|| "All assertions passed".into());
            Ok(ModuleResult {
                msg: Some(msg),
                ..ModuleResult::default()
            })
        })
    }
}

impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn params(&self) -> &'static [Param] {
        const P: &[Param] = &[Param::new("msg", Kind::Any)];
        P
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, _ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            Ok(ModuleResult {
                failed: true,
                msg: Some(
                    args.get("msg")
                        .map(render)
                        .unwrap_or_else(|| "Failed as requested from task".into()),
                ),
                ..ModuleResult::default()
            })
        })
    }
}
