//! The corpus of bad input, `tests/bad/` (see its README): every case exits 4 with its exact
//! pinned stderr, an empty stdout and no panic, and nothing reaches a host: every command that
//! takes an inventory runs against the lab with something that would create a marker file on h1
//! if it ran, and the marker must not exist afterwards. `TEND_BLESS=1` rewrites the expectations
//! after a deliberate change.

mod common;
use common::{Lab, Run, repo, run_in};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the commands of the corpus would create on lab host h1 if they ran anything.
const MARKER: &str = "/tmp/tend-bad-marker";

/// One case: its kind's directory (where tend runs), its name and its command line.
struct Case {
    dir: PathBuf,
    name: String,
    args: Vec<String>,
}

impl Case {
    fn expected(&self) -> PathBuf {
        self.dir.join(format!("{}.expected", self.name))
    }

    fn label(&self) -> String {
        let kind = self.dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        format!("{kind}/{}", self.name)
    }

    fn needs_lab(&self) -> bool {
        self.args.iter().any(|a| a.contains("{lab}"))
    }
}

/// The command line of a case: `NAME.cmd` beside it, else its kind's `cmd`; one argument a line.
fn command_line(dir: &Path, name: &str) -> Vec<String> {
    let own = dir.join(format!("{name}.cmd"));
    let file = if own.exists() { own } else { dir.join("cmd") };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // `{case}`: the case's own file or directory (NAME.ext or NAME/), else its bare name.
    let input = std::fs::read_dir(dir)
        .expect("read kind")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|f| {
            f == name
                || f.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|ext| !matches!(ext, "expected" | "cmd"))
        })
        .unwrap_or_else(|| name.to_string());
    text.lines().map(|l| l.replace("{case}", &input)).collect()
}

/// Every case of every kind, sorted.
fn cases() -> Vec<Case> {
    let root = repo().join("tests/bad");
    let mut kinds: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read tests/bad")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    kinds.sort();
    let mut cases = Vec::new();
    for dir in kinds {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read kind")
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".expected").map(String::from))
            .collect();
        names.sort();
        for name in names {
            let args = command_line(&dir, &name);
            cases.push(Case {
                dir: dir.clone(),
                name,
                args,
            });
        }
    }
    cases
}

/// Runs the cases on a few threads; returns the failures, one text each.
fn check(cases: &[&Case], lab: Option<&Lab>) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let bless = std::env::var_os("TEND_BLESS").is_some();
    let lab_inventory = lab.map(Lab::inventory).unwrap_or_default();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let args: Vec<String> = case
                        .args
                        .iter()
                        .map(|a| a.replace("{lab}", &lab_inventory).replace("{marker}", MARKER))
                        .collect();
                    let r = run_in(&case.dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
                    // The lab's inventory lives in a different place on every machine.
                    let stderr = if lab_inventory.is_empty() {
                        r.stderr.clone()
                    } else {
                        r.stderr.replace(&lab_inventory, "{lab}")
                    };
                    if bless {
                        std::fs::write(case.expected(), &stderr).expect("bless");
                    }
                    let expected = std::fs::read_to_string(case.expected()).unwrap_or_default();
                    if r.code != 4 || stderr != expected || !r.stdout.is_empty() || stderr.contains("panicked") {
                        let failure = format!(
                            "{} ({}): expected exit 4 and\n{expected}got {r:?}",
                            case.label(),
                            case.args.join(" ")
                        );
                        failures.lock().expect("failures").push(failure);
                    }
                }
            });
        }
    });
    failures.into_inner().expect("failures")
}

#[test]
fn the_corpus_is_large_and_every_kind_has_cases() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} cases in tests/bad", cases.len());
    for kind in [
        "inventory-yaml",
        "inventory-ini",
        "playbook",
        "role",
        "template",
        "vars",
        "vault",
        "migration",
        "artifact",
        "extra-vars",
        "flags",
    ] {
        let n = cases.iter().filter(|c| c.dir.ends_with(kind)).count();
        assert!(n >= 5, "tests/bad/{kind} has {n} cases");
    }
}

#[test]
fn bad_input_without_an_inventory_is_refused_with_its_pinned_message() {
    let cases = cases();
    let todo: Vec<&Case> = cases.iter().filter(|c| !c.needs_lab()).collect();
    let failures = check(&todo, None);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_input_against_the_lab_is_refused_and_nothing_runs() {
    let lab = Lab::get();
    let clean: Run = lab.on_host(1, &["rm", "-f", MARKER]);
    assert_eq!(clean.code, 0, "{clean:?}");
    let cases = cases();
    let todo: Vec<&Case> = cases.iter().filter(|c| c.needs_lab()).collect();
    let mut failures = check(&todo, Some(&lab));
    if lab.on_host(1, &["test", "!", "-e", MARKER]).code != 0 {
        failures.push(format!("a case ran something on h1: {MARKER} exists"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
