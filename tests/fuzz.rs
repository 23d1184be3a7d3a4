//! Fuzzing on the stable toolchain: every parser a user's input reaches is fed mutations of real
//! inputs (the bad-input corpus, the vendored corpus, the fixtures) and hostile shapes (YAML alias
//! bombs, deep nesting, huge scalars, long lines). Each input runs in a worker with a time limit;
//! a panic, an input that takes longer than the limit, or the process's peak memory past its
//! bound fails the test and writes the input to `target/fuzz-findings/`.
//!
//! `TEND_FUZZ_SECS` sets the time per target (default 3: a smoke run in CI); locally run
//! `TEND_FUZZ_SECS=600 cargo nextest run --release --test fuzz` and the counts are printed.
//! With `TEND_FUZZ_TRACE=1` each input is written to `target/fuzz-findings/TARGET-current-PID.bin`
//! before it runs, for crashes that end the process.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A small, fast, seedable generator (xorshift64*): the run is repeatable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that mean something to one of the parsers.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "- ",
    ": ",
    "\n",
    "\n  ",
    "\t",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\\",
    "&a ",
    "*a",
    "!vault |",
    "!!binary ",
    "---\n",
    "...\n",
    "=",
    " k=v ",
    "[g:vars]\n",
    "[g:children]\n",
    "h[1:3]",
    "h[a:",
    "$ANSIBLE_VAULT;1.1;AES256\n",
    "$ANSIBLE_VAULT;1.2;AES256;id\n",
    "DELIMITER $$\n",
    "$$",
    ";",
    "/*",
    "*/",
    "--",
    "#",
    "BEGIN",
    "END;",
    "|",
    ">",
    "%",
    "\u{feff}",
    "\u{0}",
    "\r\n",
    "é",
    "\u{10ffff}",
    "when: ",
    "loop: ",
    "include: ",
    "hosts: ",
    "tasks:\n",
    "{{ x | default(",
    "{% for i in range(5) %}",
    "{% endfor %}",
    "lookup('env', 'HOME')",
    "0x",
    "1e9999",
];

fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, t.iter().copied());
            }
            1 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            3 if !out.is_empty() => {
                // Repeat a slice: long lines, deep nesting.
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let piece = out[start..end].to_vec();
                for _ in 0..rng.below(64) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                // Splice in part of another input.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + rng.below(256)).min(other.len());
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            5 => out.truncate(at),
            _ => {
                let line_start = out[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                out.splice(line_start..line_start, b"  ".iter().copied());
            }
        }
    }
    out.truncate(1 << 20);
    out
}

/// Inputs no mutation is likely to reach: an alias bomb, deep nesting, huge scalars, long lines.
fn hostile() -> Vec<Vec<u8>> {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = (b'a' + (i - 1) as u8) as char;
        let name = (b'a' + i as u8) as char;
        bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    vec![
        bomb.into_bytes(),
        format!("{}x{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        format!("{}x", "- ".repeat(50_000)).into_bytes(),
        format!(
            "{}{{{{ x }}}}{}",
            "{% if true %}".repeat(5_000),
            "{% endif %}".repeat(5_000)
        )
        .into_bytes(),
        format!("k: {}\n", "x".repeat(8 << 20)).into_bytes(),
        format!("{}\n", "a=b ".repeat(200_000)).into_bytes(),
        "(".repeat(100_000).into_bytes(),
        format!("{}SELECT 1;", "/* ".repeat(100_000)).into_bytes(),
        format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", "4".repeat(1 << 20)).into_bytes(),
    ]
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under the given directories (below 256 KiB), as seeds.
fn seeds(dirs: &[&str]) -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if e.metadata().is_ok_and(|m| m.len() < 256 << 10)
                && let Ok(b) = std::fs::read(&p)
            {
                out.push(b);
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(&repo().join(d), &mut out);
    }
    out.push(Vec::new());
    out
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn save(target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{kind}-{}.bin", std::process::id()));
    let _ = std::fs::write(&path, input);
    path
}

/// Feeds `target` its seeds, the hostile inputs and mutations for the configured time; each input
/// in a worker thread with a time limit.
fn fuzz(target: &'static str, dirs: &[&str], run: fn(&[u8], &Path)) {
    let secs: u64 = std::env::var("TEND_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let limit = Duration::from_secs(10);
    let trace = std::env::var_os("TEND_FUZZ_TRACE").is_some();
    let seeds = seeds(dirs);
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().to_path_buf();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ secs);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let worker_dir = dir.clone();
    std::panic::set_hook(Box::new(|_| {}));
    // The stack tend's main thread has, where it loads its input.
    let worker = std::thread::Builder::new().stack_size(8 << 20).spawn(move || {
        for input in rx {
            let r = std::panic::catch_unwind(|| run(&input, &worker_dir)).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            if done_tx.send(r).is_err() {
                break;
            }
        }
    });
    assert!(worker.is_ok(), "cannot start the worker");
    let started = Instant::now();
    let mut runs = 0u64;
    let mut slowest = Duration::ZERO;
    let fixed: Vec<Vec<u8>> = seeds.iter().cloned().chain(hostile()).collect();
    let mut next = 0usize;
    while next < fixed.len() || started.elapsed() < Duration::from_secs(secs) {
        let input = if next < fixed.len() {
            next += 1;
            fixed[next - 1].clone()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed, &seeds)
        };
        if trace {
            // A crash that takes the process down (a stack overflow) leaves its input here.
            save(target, "current", &input);
        }
        let t = Instant::now();
        tx.send(input.clone()).expect("worker");
        match done_rx.recv_timeout(limit) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                let path = save(target, "panic", &input);
                panic!("{target}: panic `{msg}` on the input saved in {}", path.display());
            }
            Err(_) => {
                let path = save(target, "hang", &input);
                panic!(
                    "{target}: no answer within {limit:?} on the input saved in {}",
                    path.display()
                );
            }
        }
        slowest = slowest.max(t.elapsed());
        runs += 1;
        let peak = peak_kib();
        if peak > 1 << 20 {
            let path = save(target, "memory", &input);
            panic!(
                "{target}: peak memory {peak} KiB after the input saved in {}",
                path.display()
            );
        }
    }
    eprintln!(
        "fuzz {target}: {runs} inputs in {:.1} s ({} seeds, {} hostile), slowest {:?}, peak RSS {} MiB, 0 panics, 0 hangs",
        started.elapsed().as_secs_f64(),
        seeds.len(),
        hostile().len(),
        slowest,
        peak_kib() / 1024
    );
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

#[test]
fn fuzz_yaml_inventories() {
    fuzz(
        "inventory-yaml",
        &["tests/bad/inventory-yaml", "tests/fixtures"],
        |input, dir| {
            let p = dir.join("inventory.yaml");
            std::fs::write(&p, input).expect("write");
            let _ = tend::inventory::load(&[p]);
        },
    );
}

#[test]
fn fuzz_ini_inventories() {
    fuzz(
        "inventory-ini",
        &["tests/bad/inventory-ini", "tests/corpus/examples"],
        |input, dir| {
            let p = dir.join("hosts.ini");
            std::fs::write(&p, input).expect("write");
            let _ = tend::inventory::load(&[p]);
        },
    );
}

#[test]
fn fuzz_playbooks() {
    fuzz(
        "playbook",
        &["tests/bad/playbook", "tests/corpus", "playbooks"],
        |input, dir| {
            let p = dir.join("playbook.yaml");
            std::fs::write(&p, input).expect("write");
            let engine = tend::template::Engine::new();
            let _ = tend::playbook::load_all(&[p], &tend::playbook::LoadOptions { engine: &engine });
        },
    );
}

#[test]
fn fuzz_key_value_arguments() {
    fuzz("kv", &["tests/bad/playbook"], |input, _| {
        let t = text(input);
        let _ = tend::playbook::parse_kv(&t, |_| true, true);
        let _ = tend::playbook::parse_kv(&t, |k| k.len() % 2 == 0, false);
    });
}

#[test]
fn fuzz_templates() {
    fuzz("template", &["tests/bad/template", "templates"], |input, _| {
        let engine = tend::template::Engine::new();
        let scope = tend::template::Scope::new();
        let t = text(input);
        let _ = engine.render(&t, &scope);
        let _ = engine.eval(&t, &scope);
    });
}

#[test]
fn fuzz_the_sql_splitter() {
    fuzz("sql", &["tests/bad/migration", "tests/fixtures"], |input, _| {
        let _ = tend::migrate::split::split(&text(input));
    });
}

#[test]
fn fuzz_vault_files() {
    fuzz("vault", &["tests/bad/vault", "tests/fixtures"], |input, _| {
        if let Ok(envelope) = tend::vault::parse(input) {
            let _ = envelope.open(b"pw");
        }
    });
}

#[test]
fn fuzz_log_lines() {
    // The log store's day of a line and the daily report's access-log reader.
    fuzz("log-lines", &["tests/fixtures"], |input, _| {
        let opts = tend::report::Options::default();
        let mut day = tend::report::Day::default();
        for line in input.split(|&b| b == b'\n') {
            let _ = tend::logs::line_day(line);
            day.add_line(line, &opts);
        }
        let _ = day.to_json("2026-12-03", &opts);
        // The first line as `log_format` text, the others read with it.
        let mut lines = input.split(|&b| b == b'\n');
        if let Some(Ok(format)) = lines
            .next()
            .map(|f| tend::report::access::Format::nginx(&String::from_utf8_lossy(f)))
        {
            for line in lines {
                let _ = format.parse(line);
            }
        }
    });
}
