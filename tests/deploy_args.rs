//! Bad input to `tend deploy`, `rollback`, `releases` and `lock` is refused before any host is
//! contacted (exit 4, one clear message), whatever the hosts' state. The inventory's addresses
//! point at nothing, so reaching a host would show up as exit 3 instead.

mod common;
use common::run;

const INVENTORY: &str = "all:
  hosts:
    web1: {ansible_host: 192.0.2.1}
  children:
    app:
      hosts:
        app1: {ansible_host: 192.0.2.21}
        app2: {ansible_host: 192.0.2.22, deploy_keep_releases: 0}
    lb:
      hosts:
        lb1: {ansible_host: 192.0.2.10}
";

fn setup() -> (tempfile::TempDir, String, String) {
    let dir = common::scratch();
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(&inv, INVENTORY).expect("inventory");
    let war = dir.path().join("shop.war");
    std::fs::write(&war, b"PK\x03\x04not really a war").expect("war");
    let (inv, war) = (inv.to_string_lossy().into_owned(), war.to_string_lossy().into_owned());
    (dir, inv, war)
}

#[test]
fn deploy_input_errors_name_the_problem_and_touch_nothing() {
    let (_dir, inv, war) = setup();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["deploy", "--artifact", "missing.war", "-i", &inv],
            "error: --artifact `missing.war`: no such file",
        ),
        (
            vec!["deploy", "--artifact", &war, "--release-id", "../x", "-i", &inv],
            "error: release id `../x` is not usable as a directory name",
        ),
        (
            vec!["deploy", "--artifact", &war, "--batch", "0", "-i", &inv],
            "error: --batch `0` is not a host count or percentage",
        ),
        (
            vec!["deploy", "--artifact", &war, "--checksum", "abc", "-i", &inv],
            "error: --checksum `abc` is not a SHA-256 checksum",
        ),
        (
            vec!["deploy", "--artifact", &war, "--group", "apps", "-i", &inv],
            "error: the inventory has no group `apps`\nhint: did you mean `--group app`?",
        ),
        (
            vec!["deploy", "--artifact", &war, "--limit", "web1", "-i", &inv],
            "error: no host matches pattern `app` with `--limit web1`",
        ),
        (
            vec![
                "rollback",
                "--limit",
                "app1",
                "-i",
                &inv,
                "-e",
                "deploy_health_status=700",
            ],
            "error: host `app1`: `deploy_health_status`: `700` is not an HTTP status",
        ),
        (
            vec!["releases", "--limit", "app2", "-i", &inv],
            "error: host `app2`: `deploy_keep_releases`: must be at least 1",
        ),
        (
            vec!["lock", "show", "--group", "lb", "-i", &inv, "-e", "x"],
            "error: -e `x` is not `key=value`",
        ),
    ];
    for (args, want) in cases {
        let r = run(&args);
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with(want), "{args:?}:\n{}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn an_unreachable_host_stops_the_deploy_before_anything_changes() {
    let (_dir, inv, war) = setup();
    let r = run(&[
        "deploy",
        "--artifact",
        &war,
        "-i",
        &inv,
        "--limit",
        "app1",
        "--connect-timeout",
        "1",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("connect: "), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
}

#[test]
fn help_explains_the_steps_and_settings() {
    let r = run(&["deploy", "--help"]);
    assert_eq!(r.code, 0);
    for word in [
        "--artifact",
        "--batch",
        "--keep-partial",
        "deploy_health_url",
        "exit 5",
        "health",
    ] {
        assert!(r.stdout.contains(word), "{word}:\n{}", r.stdout);
    }
}
