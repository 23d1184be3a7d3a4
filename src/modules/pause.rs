//! `pause`: waits a number of seconds or minutes, or until the operator answers a prompt. Runs on
//! the control node. A prompt needs a terminal: without one (CI, pipes) it fails at once with a
//! clear message instead of hanging. Prompts of several hosts are asked one at a time.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Runs};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// `pause`.
pub struct Pause;

const PARAMS: &[Param] = &[
    Param::new("seconds", Kind::Float),
    Param::new("minutes", Kind::Float),
    Param::new("prompt", Kind::Str),
    Param::new("echo", Kind::Bool),
];

/// One prompt at a time on the terminal.
static PROMPT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Module for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, _ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let wait = match (args.float("minutes"), args.float("seconds")) {
                (Some(m), _) => Some(m * 60.0),
                (None, s) => s,
            };
            if let Some(w) = wait
                && (w.is_nan() || w < 0.0)
            {
                return Err(ModuleError::Args("seconds and minutes must be positive numbers".into()));
            }
            let start = Instant::now();
            let started_at = jiff::Timestamp::now();
            let mut r = ModuleResult::default();
            let echo = args.bool("echo", true);
            r.data.insert("echo".into(), echo.into());
            match wait {
                Some(w) => {
                    if let Some(p) = args.str("prompt")
                        && std::io::stderr().is_terminal()
                    {
                        eprintln!("[pause] {p}");
                    }
                    tokio::time::sleep(Duration::from_secs_f64(w)).await;
                    r.stdout = format!("Paused for {} seconds", trim_float(w));
                    r.data.insert("user_input".into(), "".into());
                }
                None => {
                    let prompt = args
                        .str("prompt")
                        .unwrap_or("Press enter to continue, Ctrl+C to interrupt");
                    if !std::io::stdin().is_terminal() {
                        return Err(ModuleError::Failed(format!(
                            "pause needs an answer at a terminal (prompt: {prompt:?}), but tend's input is not a terminal; give `seconds` or `minutes` to pause without asking"
                        )));
                    }
                    let _turn = PROMPT.lock().await;
                    let text = format!("[pause] {prompt}: ");
                    let input = tokio::task::spawn_blocking(move || read_answer(&text, echo))
                        .await
                        .map_err(|e| ModuleError::Failed(format!("reading the answer failed: {e}")))?
                        .map_err(|e| ModuleError::Failed(format!("reading the answer failed: {e}")))?;
                    r.stdout = format!("Paused for {} seconds", trim_float(start.elapsed().as_secs_f64()));
                    r.data.insert("user_input".into(), input.into());
                }
            }
            let delta = start.elapsed().as_secs_f64();
            r.data.insert("start".into(), started_at.to_string().into());
            r.data.insert("stop".into(), jiff::Timestamp::now().to_string().into());
            r.data.insert("delta".into(), delta.into());
            Ok(r)
        })
    }
}

/// Asks on stderr and reads one line; without `echo` the terminal hides the typing.
fn read_answer(text: &str, echo: bool) -> std::io::Result<String> {
    use std::io::Write as _;
    if !echo {
        return rpassword::prompt_password(text);
    }
    let mut err = std::io::stderr();
    write!(err, "{text}")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
