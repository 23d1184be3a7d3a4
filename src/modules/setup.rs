//! `setup`: gathers facts as a task (after a package install changed them, or with a narrower
//! `gather_subset`/`filter` than the play's), through the same command as the play's gathering.

use super::{Args, Kind, ModuleError, ModuleResult, Param, Plan, Script, last_line};
use crate::executor::facts;

/// `setup`: roles call it to refresh facts or to gather only some of them.
pub struct Setup;

const PARAMS: &[Param] = &[
    Param::new("gather_subset", Kind::List),
    Param::new("filter", Kind::List),
    Param::new("gather_timeout", Kind::Int),
    Param::new("fact_path", Kind::Str),
];

super::one_script_module!(Setup, "setup", PARAMS, plan);

/// `gather_facts`: Ansible's name for the same gathering as a task (`ansible.builtin.gather_facts`).
pub struct GatherFacts;

super::one_script_module!(GatherFacts, "gather_facts", PARAMS, plan);

fn plan(args: &Args) -> Result<Plan, ModuleError> {
    let subset = args.list("gather_subset");
    let filter = args.list("filter");
    // Bad names fail before the host is asked.
    facts::select(Default::default(), &subset, &filter).map_err(ModuleError::Args)?;
    Ok(Plan::Remote(Script::new(facts::SCRIPT.to_string(), None, move |out| {
        if !out.success() {
            return Err(ModuleError::remote(
                format!("setup: gathering facts failed: {}", last_line(&out)),
                "setup",
                &out,
            ));
        }
        let all = facts::parse(&String::from_utf8_lossy(&out.stdout));
        let host_facts = facts::select(all, &subset, &filter).map_err(ModuleError::Args)?;
        // Registered as Ansible's setup returns them: `ansible_`-prefixed names.
        let prefixed: serde_json::Map<String, serde_json::Value> = host_facts
            .iter()
            .map(|(k, v)| (format!("ansible_{k}"), v.clone()))
            .collect();
        let mut r = ModuleResult {
            msg: Some(format!("{} facts", host_facts.len())),
            host_facts,
            ..ModuleResult::default()
        };
        r.data.insert("ansible_facts".into(), prefixed.into());
        Ok(r)
    })))
}
