//! `slurp`: a file of the host, base64-encoded, for `register` (a generated key, a config to
//! parse with `b64decode`). One round trip.

use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Param, Plan, Script, last_line};
use crate::transport::shell::quote;

/// `slurp`.
pub struct Slurp;

const PARAMS: &[Param] = &[Param::new("src", Kind::Str).required().aliases(&["path"])];

const READ: &str = r#"if [ -d "$p" ]; then echo "source is a directory and must be a file: $p" >&2; exit 3; fi
if [ ! -e "$p" ]; then echo "file not found: $p" >&2; exit 3; fi
[ -r "$p" ] || { echo "file is not readable: $p" >&2; exit 3; }
base64 -w0 < "$p" || exit 4
"#;

planned_module!(Slurp, "slurp", PARAMS, plan);

fn plan(_ctx: &Ctx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let src = args.str("src").unwrap_or_default().to_string();
    Ok(Plan::Remote(Script::new(
        format!("p={}\n{READ}", quote(&src)),
        None,
        move |out| {
            if !out.success() {
                return Err(ModuleError::remote(last_line(&out), format!("slurp {src}"), &out));
            }
            let mut r = ModuleResult::default();
            let content = String::from_utf8_lossy(&out.stdout).trim().to_string();
            r.data.insert("content".into(), content.into());
            r.data.insert("source".into(), src.into());
            r.data.insert("encoding".into(), "base64".into());
            Ok(r)
        },
    )))
}
