//! `tend vault` and vaulted input, side by side with the real `ansible-vault` (ansible-core from
//! PyPI in the virtualenv tests/run.sh makes, named by `TEND_ANSIBLE_BIN`): each reads what
//! the other wrote, and a vaulted value never shows in anything tend prints or writes.

mod common;
use common::{Run, scratch, tend};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ansible(tool: &str) -> Command {
    let dir = std::env::var_os("TEND_ANSIBLE_BIN")
        .map(PathBuf::from)
        .expect("TEND_ANSIBLE_BIN is not set: run tests/run.sh, which installs ansible-core into a virtualenv");
    let mut cmd = Command::new(dir.join(tool));
    cmd.env("ANSIBLE_NOCOLOR", "1").env("ANSIBLE_LOCALHOST_WARNING", "0");
    cmd
}

fn ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tend_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(tend().current_dir(dir).args(args).output().expect("tend"))
}

fn password_file(dir: &Path, name: &str, password: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{password}\n")).expect("password file");
    p.to_string_lossy().into_owned()
}

#[test]
fn files_and_strings_of_ansible_vault_are_read_and_never_shown() {
    let d = scratch();
    let dir = d.path();
    let pw = password_file(dir, "pw.txt", "correct horse");
    let prod = password_file(dir, "prod.txt", "battery staple");
    // A whole file encrypted by ansible-vault (1.1) ...
    let vars = dir.join("group_vars_all.yaml");
    std::fs::write(&vars, "db_password: file-secret-4711\ndb_port: 3306\n").expect("vars");
    let mut enc = ansible("ansible-vault");
    enc.args(["encrypt", "--vault-password-file", &pw]).arg(&vars);
    ok(enc);
    let view = tend_in(
        dir,
        &["vault", "view", "group_vars_all.yaml", "--vault-password-file", &pw],
    );
    assert_eq!(view.code, 0, "{view:?}");
    assert_eq!(view.stdout, "db_password: file-secret-4711\ndb_port: 3306\n");
    // ... and a `!vault` value with a vault id (1.2).
    let mut es = ansible("ansible-vault");
    es.args([
        "encrypt_string",
        "--vault-id",
        &format!("prod@{prod}"),
        "--encrypt-vault-id",
        "prod",
        "--name",
        "api_key",
        "inline-secret-0815",
    ]);
    let value = ok(es);
    assert!(value.contains("$ANSIBLE_VAULT;1.2;AES256;prod"), "{value}");
    std::fs::create_dir_all(dir.join("group_vars")).expect("group_vars");
    std::fs::rename(&vars, dir.join("group_vars/all.yaml")).expect("move");
    let inventory = format!(
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n      {}\n",
        value.trim_end().replace('\n', "\n      ")
    );
    std::fs::write(dir.join("inventory.yaml"), inventory).expect("inventory");

    // The inventory shows them as `<vault>`; ansible-inventory agrees on every other value.
    let ids = [
        "--vault-id",
        &format!("default@{pw}"),
        "--vault-id",
        &format!("prod@{prod}"),
    ];
    let mut args = vec!["inventory", "-i", "inventory.yaml", "--host", "local1"];
    args.extend_from_slice(&ids);
    let inv = tend_in(dir, &args);
    assert_eq!(inv.code, 0, "{inv:?}");
    let shown: serde_json::Value = serde_json::from_str(&inv.stdout).expect("json");
    assert_eq!(shown["api_key"], "<vault>", "{shown}");
    assert_eq!(shown["db_password"], "<vault>", "{shown}");
    assert_eq!(shown["db_port"], 3306, "{shown}");

    // Without the password: exit 4 naming the file and what to give.
    let none = tend_in(dir, &["inventory", "-i", "inventory.yaml", "--host", "local1"]);
    assert_eq!(none.code, 4, "{none:?}");
    assert!(none.stderr.contains("group_vars/all.yaml: cannot decrypt"), "{none:?}");
    assert!(none.stderr.contains("--vault-password-file"), "{none:?}");
    // A wrong one: exit 4, the secret nowhere.
    let wrong = password_file(dir, "wrong.txt", "nope");
    let bad = tend_in(
        dir,
        &["vault", "view", "group_vars/all.yaml", "--vault-password-file", &wrong],
    );
    assert_eq!(bad.code, 4, "{bad:?}");
    assert!(bad.stderr.contains("no vault password given opens it"), "{bad:?}");
    assert!(!format!("{bad:?}").contains("file-secret-4711"), "{bad:?}");

    // Used by a playbook: the values reach the host decrypted, and no output or log of tend
    // holds them.
    let out = dir.join("out.txt");
    let playbook = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy:\n        content: \"{{{{ db_password }}}} {{{{ api_key }}}}\\n\"\n        dest: {}\n    - debug:\n        msg: \"key is {{{{ api_key }}}}\"\n",
        out.display()
    );
    std::fs::write(dir.join("site.yaml"), playbook).expect("playbook");
    let log = dir.join("log");
    for format in ["json", "human"] {
        let mut args = vec![
            "run",
            "site.yaml",
            "-i",
            "inventory.yaml",
            "--diff",
            "-vv",
            "--format",
            format,
        ];
        args.extend_from_slice(&["--log-dir", log.to_str().unwrap_or_default()]);
        args.extend_from_slice(&ids);
        let r = tend_in(dir, &args);
        assert_eq!(r.code, 0, "{r:?}");
        for secret in ["file-secret-4711", "inline-secret-0815"] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{secret} shown:\n{r:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(&out).expect("copied"),
        "file-secret-4711 inline-secret-0815\n"
    );
    for entry in std::fs::read_dir(&log).expect("audit log").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.is_empty());
        assert!(
            !text.contains("file-secret-4711") && !text.contains("inline-secret-0815"),
            "{}",
            entry.path().display()
        );
    }
}

#[test]
fn tend_vaults_are_read_by_ansible_vault() {
    let d = scratch();
    let dir = d.path();
    let pw = password_file(dir, "pw.txt", "correct horse");
    let plain = "user: shop\npassword: \"p@ss w0rd\"\n";
    std::fs::write(dir.join("a.yaml"), plain).expect("a");
    std::fs::write(dir.join("b.yaml"), plain).expect("b");
    let e = tend_in(dir, &["vault", "encrypt", "a.yaml", "--vault-password-file", &pw]);
    assert_eq!(e.code, 0, "{e:?}");
    let e = tend_in(
        dir,
        &["vault", "encrypt", "b.yaml", "--vault-id", &format!("prod@{pw}")],
    );
    assert_eq!(e.code, 0, "{e:?}");
    let b = std::fs::read_to_string(dir.join("b.yaml")).expect("b");
    assert!(b.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"), "{b}");
    let mut v = ansible("ansible-vault");
    v.current_dir(dir)
        .args(["view", "a.yaml", "--vault-password-file", &pw]);
    assert_eq!(ok(v), plain);
    let mut v = ansible("ansible-vault");
    v.current_dir(dir)
        .args(["view", "b.yaml", "--vault-id", &format!("prod@{pw}")]);
    assert_eq!(ok(v), plain);

    // A `!vault` value from tend, used by ansible.
    let s = tend_in(
        dir,
        &[
            "vault",
            "encrypt-string",
            "--name",
            "token",
            "s3cr3t value",
            "--vault-password-file",
            &pw,
        ],
    );
    assert_eq!(s.code, 0, "{s:?}");
    assert!(
        s.stdout
            .starts_with("token: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n"),
        "{s:?}"
    );
    std::fs::write(dir.join("vars.yaml"), &s.stdout).expect("vars");
    let mut a = ansible("ansible");
    a.current_dir(dir).args([
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        "debug",
        "-a",
        "var=token",
        "-e",
        "@vars.yaml",
        "--vault-password-file",
        &pw,
    ]);
    assert!(ok(a).contains("\"token\": \"s3cr3t value\""));

    // Already encrypted: refused, the file as it was.
    let again = tend_in(dir, &["vault", "encrypt", "a.yaml", "--vault-password-file", &pw]);
    assert_eq!(again.code, 4, "{again:?}");
    assert!(again.stderr.contains("already vault-encrypted"), "{again:?}");
    // Decrypted in place: the plaintext again.
    let dec = tend_in(dir, &["vault", "decrypt", "a.yaml", "--vault-password-file", &pw]);
    assert_eq!(dec.code, 0, "{dec:?}");
    assert_eq!(std::fs::read_to_string(dir.join("a.yaml")).expect("a"), plain);
}

#[test]
fn edit_keeps_an_unchanged_file_and_rekey_never_takes_the_environments_password() {
    let d = scratch();
    let dir = d.path();
    let old = password_file(dir, "old.txt", "old password");
    let new = password_file(dir, "new.txt", "new password");
    let env = password_file(dir, "env.txt", "environment password");
    std::fs::write(dir.join("v.yaml"), "k: v\n").expect("v");
    let e = tend_in(dir, &["vault", "encrypt", "v.yaml", "--vault-password-file", &old]);
    assert_eq!(e.code, 0, "{e:?}");
    let before = std::fs::read(dir.join("v.yaml")).expect("v");

    // An edit that changes nothing leaves every byte (ansible-vault re-encrypts: ansible#54112).
    let same = Run::of(
        tend()
            .current_dir(dir)
            .env("EDITOR", "true")
            .args(["vault", "edit", "v.yaml", "--vault-password-file", &old])
            .output()
            .expect("edit"),
    );
    assert_eq!(same.code, 0, "{same:?}");
    assert_eq!(std::fs::read(dir.join("v.yaml")).expect("v"), before);
    let changed = Run::of(
        tend()
            .current_dir(dir)
            .env("EDITOR", "sed -i s/v$/w/")
            .args(["vault", "edit", "v.yaml", "--vault-password-file", &old])
            .output()
            .expect("edit"),
    );
    assert_eq!(changed.code, 0, "{changed:?}");
    let mut v = ansible("ansible-vault");
    v.current_dir(dir)
        .args(["view", "v.yaml", "--vault-password-file", &old]);
    assert_eq!(ok(v), "k: w\n");

    // Rekey with a password in the environment: the command line's old and new passwords are
    // used, the environment's for neither (ansible#18247).
    let rekey = |args: &[&str]| {
        Run::of(
            tend()
                .current_dir(dir)
                .env("TEND_VAULT_PASSWORD_FILE", &env)
                .args(args)
                .output()
                .expect("rekey"),
        )
    };
    let r = rekey(&[
        "vault",
        "rekey",
        "v.yaml",
        "--vault-password-file",
        &old,
        "--new-vault-password-file",
        &new,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut v = ansible("ansible-vault");
    v.current_dir(dir)
        .args(["view", "v.yaml", "--vault-password-file", &new]);
    assert_eq!(ok(v), "k: w\n");
    // No new password named and no terminal: refused, nothing rewritten.
    let before = std::fs::read(dir.join("v.yaml")).expect("v");
    let r = rekey(&["vault", "rekey", "v.yaml", "--vault-password-file", &new]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("needs a terminal"), "{r:?}");
    assert_eq!(std::fs::read(dir.join("v.yaml")).expect("v"), before);
    // The environment's password is used when the command line names none.
    std::fs::write(dir.join("e.yaml"), "x: 1\n").expect("e");
    let r = rekey(&["vault", "encrypt", "e.yaml"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut v = ansible("ansible-vault");
    v.current_dir(dir)
        .args(["view", "e.yaml", "--vault-password-file", &env]);
    assert_eq!(ok(v), "x: 1\n");
}

/// Numbers and single lines of a vaulted value are secrets too; a value of a vault id whose
/// password was not given fails only the task that uses it; a vaulted `copy` source is copied
/// decrypted; decrypting keeps the file to its owner; a symlink is written through.
#[test]
fn every_part_of_a_vaulted_value_is_secret_and_files_are_kept_safe() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = scratch();
    let dir = d.path();
    let pw = password_file(dir, "pw.txt", "correct horse");
    let other = password_file(dir, "other.txt", "not given to the run");
    std::fs::write(
        dir.join("secrets.yaml"),
        "pin_code: 83927465\ntls_key: |\n  -----BEGIN KEY-----\n  c2VjcmV0IGtleSBsaW5l\n  -----END KEY-----\n",
    )
    .expect("secrets");
    let e = tend_in(dir, &["vault", "encrypt", "secrets.yaml", "--vault-password-file", &pw]);
    assert_eq!(e.code, 0, "{e:?}");
    let s = tend_in(
        dir,
        &[
            "vault",
            "encrypt-string",
            "--name",
            "stage_token",
            "stage-only-secret",
            "--vault-id",
            &format!("stage@{other}"),
        ],
    );
    assert_eq!(s.code, 0, "{s:?}");
    std::fs::write(dir.join("stage.yaml"), &s.stdout).expect("stage vars");
    std::fs::write(dir.join("blob.txt"), "copied-secret-blob\n").expect("blob");
    let e = tend_in(dir, &["vault", "encrypt", "blob.txt", "--vault-password-file", &pw]);
    assert_eq!(e.code, 0, "{e:?}");
    std::fs::write(
        dir.join("inventory.yaml"),
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n",
    )
    .expect("inventory");
    let copied = dir.join("copied.txt");
    std::fs::write(
        dir.join("site.yaml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  vars_files: [secrets.yaml, stage.yaml]\n  tasks:\n    - debug:\n        msg: \"pin {{{{ pin_code }}}} line {{{{ tls_key.splitlines()[1] }}}}\"\n    - copy:\n        src: blob.txt\n        dest: {}\n",
            copied.display()
        ),
    )
    .expect("playbook");
    let r = tend_in(
        dir,
        &[
            "run",
            "site.yaml",
            "-i",
            "inventory.yaml",
            "--vault-password-file",
            &pw,
            "--diff",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for secret in ["83927465", "c2VjcmV0IGtleSBsaW5l", "copied-secret-blob"] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret} shown:\n{r:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&copied).expect("copied"),
        "copied-secret-blob\n"
    );
    // The stage value is only an error where it is used, naming its vault id.
    std::fs::write(
        dir.join("use.yaml"),
        "- hosts: all\n  gather_facts: false\n  vars_files: [stage.yaml]\n  tasks:\n    - debug:\n        msg: \"{{ stage_token }}\"\n",
    )
    .expect("playbook");
    let r = tend_in(
        dir,
        &["run", "use.yaml", "-i", "inventory.yaml", "--vault-password-file", &pw],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("vault id `stage`"), "{r:?}");

    // Decrypted in place, a 0644 vault becomes a file only its owner reads.
    let blob = dir.join("blob.txt");
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let dec = tend_in(dir, &["vault", "decrypt", "blob.txt", "--vault-password-file", &pw]);
    assert_eq!(dec.code, 0, "{dec:?}");
    let mode = std::fs::metadata(&blob).expect("blob").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Through a symlink: the file it points at is encrypted, the link stays a link.
    std::os::unix::fs::symlink("blob.txt", dir.join("link.txt")).expect("symlink");
    let enc = tend_in(dir, &["vault", "encrypt", "link.txt", "--vault-password-file", &pw]);
    assert_eq!(enc.code, 0, "{enc:?}");
    assert!(
        std::fs::symlink_metadata(dir.join("link.txt"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&blob)
            .expect("blob")
            .starts_with("$ANSIBLE_VAULT;1.1;AES256\n")
    );
}

/// The shipped example keeps the shop's passwords in a vaulted `group_vars/all/vault.yaml`:
/// encrypted on disk, opened with the example's password, never shown.
#[test]
fn the_shipped_example_keeps_its_passwords_in_a_vault() {
    let repo = common::repo();
    let vault = std::fs::read_to_string(repo.join("group_vars/all/vault.yaml")).expect("vault");
    assert!(vault.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"), "not encrypted");
    let inventory = std::fs::read_to_string(repo.join("inventory.example.yaml")).expect("example");
    assert!(!inventory.contains("change-me"), "a password in plain text");
    let args = [
        "inventory",
        "-i",
        "inventory.example.yaml",
        "--host",
        "db1.shop.example",
    ];
    let r = tend_in(
        &repo,
        &[&args[..], &["--vault-password-file", "vault-password.example"]].concat(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let vars: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(vars["vault_shop_db_password"], "<vault>", "{vars}");
    assert_eq!(vars["shop_db_password"], "{{ vault_shop_db_password }}", "{vars}");
    let none = tend_in(&repo, &args);
    assert_eq!(none.code, 4, "{none:?}");
    assert!(
        none.stderr.contains("group_vars/all/vault.yaml: cannot decrypt"),
        "{none:?}"
    );
}
