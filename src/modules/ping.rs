//! `ping`: proves a host is reachable and can run a shell command, as the first task of a new
//! inventory or a CI smoke test (`tend run` of `- ping:`). Answers `pong`, or `data`.

use super::{Args, Kind, ModuleError, ModuleResult, Param, Plan, Script, last_line};

/// `ping`.
pub struct Ping;

const PARAMS: &[Param] = &[Param::new("data", Kind::Str)];

super::one_script_module!(Ping, "ping", PARAMS, plan);

fn plan(args: &Args) -> Result<Plan, ModuleError> {
    let data = args.str("data").unwrap_or("pong").to_string();
    // Ansible's way to test a failing module: `data: crash` raises.
    if data == "crash" {
        return Err(ModuleError::Failed("boom (ping with `data: crash`)".into()));
    }
    Ok(Plan::Remote(Script::new("echo pong".to_string(), None, move |out| {
        if !out.success() || String::from_utf8_lossy(&out.stdout).trim() != "pong" {
            return Err(ModuleError::remote(
                format!("ping: the host's shell did not answer: {}", last_line(&out)),
                "echo pong",
                &out,
            ));
        }
        let mut r = ModuleResult {
            msg: Some(data.clone()),
            ..ModuleResult::default()
        };
        r.data.insert("ping".into(), data.into());
        Ok(r)
    })))
}
