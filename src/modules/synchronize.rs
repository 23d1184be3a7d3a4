//! `synchronize` (ansible.posix): rsync run on the control node, pushing a local tree to the host
//! (or pulling one from it with `mode: pull`). rsync's ssh goes through tend's own connection to
//! the host (its control socket, user, identity, known-hosts file and host-key checking), so it
//! neither logs in again nor trusts the host less. As in Ansible, rsync's itemized changes
//! (`--out-format=%i ...`) decide whether the task changed anything, and check mode is
//! `--dry-run`.

use super::{Args, Ctx, Kind, ModuleError, ModuleResult, Param};
use crate::transport::shell::quote;
use crate::transport::{Failure, Output, SshCommand};
use std::path::{Path, PathBuf};

/// `synchronize`.
pub struct Synchronize;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("mode", Kind::Str).choices(&["push", "pull"]),
    Param::new("archive", Kind::Bool),
    Param::new("checksum", Kind::Bool),
    Param::new("compress", Kind::Bool),
    Param::new("delete", Kind::Bool),
    Param::new("recursive", Kind::Bool),
    Param::new("links", Kind::Bool),
    Param::new("copy_links", Kind::Bool),
    Param::new("perms", Kind::Bool),
    Param::new("times", Kind::Bool),
    Param::new("owner", Kind::Bool),
    Param::new("group", Kind::Bool),
    Param::new("dirs", Kind::Bool),
    Param::new("existing_only", Kind::Bool),
    Param::new("partial", Kind::Bool),
    Param::new("delay_updates", Kind::Bool),
    Param::new("rsync_path", Kind::Str),
    Param::new("rsync_timeout", Kind::Int),
    Param::new("rsync_opts", Kind::List),
    // rsync's ssh always takes the connection's settings here (Ansible's `use_ssh_args: true`),
    // so the flag is accepted and changes nothing.
    Param::new("use_ssh_args", Kind::Bool),
];

/// Starts each line rsync prints for an item it changed (or would change), as Ansible's does.
const CHANGED: &str = "<<CHANGED>>";

/// rsync's options for these arguments, in Ansible's order, up to (not including) `--rsh`.
fn options(args: &Args, check: bool) -> Vec<String> {
    let mut cmd: Vec<String> = Vec::new();
    let mut add = |o: &str| cmd.push(o.to_string());
    if args.bool("delay_updates", true) {
        add("--delay-updates");
    }
    add("-F");
    if args.bool("compress", true) {
        add("--compress");
    }
    match args.int("rsync_timeout") {
        Some(t) if t > 0 => add(&format!("--timeout={t}")),
        _ => {}
    }
    if check {
        add("--dry-run");
    }
    for (param, option) in [
        ("delete", "--delete-after"),
        ("existing_only", "--existing"),
        ("checksum", "--checksum"),
        ("copy_links", "--copy-links"),
    ] {
        if args.bool(param, false) {
            add(option);
        }
    }
    // Under `archive` only a `false` says something; without it only a `true` does.
    let archive = args.bool("archive", true);
    if archive {
        add("--archive");
    }
    for name in ["recursive", "links", "perms", "times", "owner", "group"] {
        match args.get(name).and_then(serde_json::Value::as_bool) {
            Some(false) if archive => add(&format!("--no-{name}")),
            Some(true) if !archive => add(&format!("--{name}")),
            _ => {}
        }
    }
    if args.bool("dirs", false) {
        add("--dirs");
    }
    cmd
}

/// One word of rsync's `-e` text, which rsync splits at spaces and where quotes (not
/// backslashes) keep spaces in a word.
fn rsh_word(w: &str) -> Result<String, ModuleError> {
    if !w.is_empty() && !w.contains([' ', '\'', '"', '\t', '\n']) {
        Ok(w.to_string())
    } else if !w.contains('\'') {
        Ok(format!("'{w}'"))
    } else if !w.contains('"') {
        Ok(format!("\"{w}\""))
    } else {
        Err(ModuleError::Failed(format!(
            "synchronize: `{w}` holds both kinds of quotes, which rsync's -e cannot pass to ssh"
        )))
    }
}

/// `host:path` as rsync writes a remote path (an IPv6 address in brackets).
fn remote_path(address: &str, path: &str) -> String {
    if address.contains(':') {
        format!("[{address}]:{path}")
    } else {
        format!("{address}:{path}")
    }
}

/// A control-node path: as given when absolute, else found as Ansible finds it (the role's or
/// playbook's `files/`, then the directory itself), or relative to the playbook's directory when
/// nothing is there yet (a pull's destination). A trailing `/` is kept: it means "the contents".
fn local_path(ctx: &Ctx<'_>, path: &str, must_exist: bool) -> Result<String, ModuleError> {
    if Path::new(path).is_absolute() {
        return Ok(path.to_string());
    }
    let found = match ctx.find_file(path.trim_end_matches('/'), "files") {
        Ok(p) => p,
        Err(e) if must_exist => return Err(e),
        Err(_) => ctx
            .search_paths
            .last()
            .map_or_else(|| PathBuf::from(path), |base| base.join(path)),
    };
    let mut text = found.display().to_string();
    if path.ends_with('/') && !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

/// The items rsync changed, from its output: the lines it marked, without the mark.
fn changes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(CHANGED))
        .map(str::to_string)
        .collect()
}

async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<ModuleResult, ModuleError> {
    let host = ctx.remote()?;
    let pull = args.str("mode") == Some("pull");
    let src = args.str("src").unwrap_or_default();
    let dest = args.str("dest").unwrap_or_default();
    let ssh: Option<SshCommand> = host.ssh_command().await;
    let at_host = |path: &str| match &ssh {
        Some(s) => remote_path(&s.address, path),
        None => path.to_string(),
    };
    let (from, to) = if pull {
        (at_host(src), local_path(ctx, dest, false)?)
    } else {
        (local_path(ctx, src, true)?, at_host(dest))
    };
    let mut cmd = options(args, ctx.check);
    if let Some(s) = &ssh {
        let words = s.argv.iter().map(|w| rsh_word(w)).collect::<Result<Vec<_>, _>>()?;
        cmd.push(format!("--rsh={}", words.join(" ")));
    }
    let rsync_path = match (args.str("rsync_path"), host.escalation()) {
        (Some(p), _) => Some(p.to_string()),
        // As Ansible: with become, the host's rsync runs through sudo when it writes (a push);
        // as tend's own become, not when the connection is that user already.
        (None, Some(b)) if !pull && ssh.is_some() => Some(format!(
            "sh -c 'if [ \"$(id -un)\" = \"$0\" ]; then exec rsync \"$@\"; fi; exec sudo -n -u \"$0\" -- rsync \"$@\"' {}",
            quote(&b.user)
        )),
        _ => None,
    };
    if let Some(p) = rsync_path {
        cmd.push(format!("--rsync-path={p}"));
    }
    cmd.extend(args.list("rsync_opts"));
    if args.bool("partial", false) {
        cmd.push("--partial".into());
    }
    cmd.push(format!("--out-format={CHANGED}%i %n%L"));
    cmd.extend([from, to]);

    let mut command = tokio::process::Command::new("rsync");
    command.args(&cmd).stdin(std::process::Stdio::null()).kill_on_drop(true);
    for (k, v) in ctx.environment {
        command.env(k, v);
    }
    let line = format!("rsync {}", crate::transport::shell::join(&cmd));
    let run = command.output();
    let out = match ctx.timeout {
        Some(t) => tokio::time::timeout(t, run)
            .await
            .map_err(|_| ModuleError::Failed(format!("synchronize: rsync took longer than {}s", t.as_secs())))?,
        None => run.await,
    }
    .map_err(|e| {
        ModuleError::Failed(format!(
            "synchronize: cannot run rsync on the control node: {e} (install rsync)"
        ))
    })?;
    let out = Output {
        rc: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.success() {
        let mut f = Failure::from_output(
            format!(
                "synchronize: rsync failed on the control node: {}",
                super::last_line(&out)
            ),
            line,
            &out,
        );
        f.stdout = stdout.replace(CHANGED, "");
        return Err(ModuleError::Remote(f));
    }
    let items = changes(&stdout);
    let mut r = ModuleResult::changed(!items.is_empty()).with_output(&out);
    r.stdout = stdout.replace(CHANGED, "");
    r.msg = Some(r.stdout.clone());
    r.cmd = Some(line.clone());
    r.data.insert("cmd".into(), line.into());
    r.data.insert(
        "stdout_lines".into(),
        r.stdout.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>().into(),
    );
    Ok(r)
}

async_module!(Synchronize, "synchronize", PARAMS, run);

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> Args {
        super::super::coerce("synchronize", PARAMS, v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn options_follow_ansibles_defaults_and_overrides() {
        let a = args(serde_json::json!({"src": "a", "dest": "b"}));
        assert_eq!(options(&a, false), ["--delay-updates", "-F", "--compress", "--archive"]);
        let a = args(serde_json::json!({
            "src": "a", "dest": "b", "delete": true, "checksum": true, "compress": false,
            "owner": false, "group": false, "times": true, "rsync_timeout": 30,
        }));
        assert_eq!(
            options(&a, true),
            [
                "--delay-updates",
                "-F",
                "--timeout=30",
                "--dry-run",
                "--delete-after",
                "--checksum",
                "--archive",
                "--no-owner",
                "--no-group"
            ]
        );
        let a = args(serde_json::json!({"src": "a", "dest": "b", "archive": false, "recursive": true, "perms": false}));
        assert_eq!(
            options(&a, false),
            ["--delay-updates", "-F", "--compress", "--recursive"]
        );
    }

    #[test]
    fn rsh_words_and_remote_paths() {
        assert_eq!(rsh_word("-oControlPath=/tmp/x").unwrap(), "-oControlPath=/tmp/x");
        assert_eq!(rsh_word("/a b/key").unwrap(), "'/a b/key'");
        assert_eq!(rsh_word("it's").unwrap(), "\"it's\"");
        assert!(rsh_word("'\"").is_err());
        assert_eq!(remote_path("10.0.0.5", "/srv/"), "10.0.0.5:/srv/");
        assert_eq!(remote_path("fe80::1", "/srv"), "[fe80::1]:/srv");
        assert_eq!(
            changes("<<CHANGED>>>f+++++++++ a\nsent 10 bytes\n<<CHANGED>>*deleting   b\n"),
            [">f+++++++++ a", "*deleting   b"]
        );
    }
}
