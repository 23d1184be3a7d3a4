//! Bad migration input: one message naming the file (and line), exit 4, and nothing sent to a
//! database: the inventory's host does not exist, so any attempt to connect would fail
//! differently. Messages are pinned in `tests/migrate_errors/NAME.expected`
//! (`TEND_BLESS=1` rewrites them after a deliberate change).

mod common;
use common::run_in;

const INVENTORY: &str = "all:
  vars:
    shop_db_name: shop
  children:
    db_primary:
      hosts:
        db1: {ansible_host: 192.0.2.1}
    db_replica:
      hosts:
        db2: {ansible_host: 192.0.2.2}
";

/// A case: its name, its migration files (name, bytes), and extra arguments.
type Case = (&'static str, Vec<(&'static str, &'static [u8])>, Vec<&'static str>);

fn cases() -> Vec<Case> {
    vec![
        ("name_without_separator", vec![("V1_desc.sql", b"SELECT 1;\n")], vec![]),
        ("name_without_version", vec![("V__x.sql", b"SELECT 1;\n")], vec![]),
        ("name_lower_case", vec![("v1__x.sql", b"SELECT 1;\n")], vec![]),
        (
            "repeatable_with_version",
            vec![("R1__views.sql", b"SELECT 1;\n")],
            vec![],
        ),
        (
            "same_version_twice",
            vec![("V1__a.sql", b"SELECT 1;\n"), ("V1.0__b.sql", b"SELECT 2;\n")],
            vec![],
        ),
        (
            "empty_file",
            vec![("V1__empty.sql", b"-- nothing here yet\n\n")],
            vec![],
        ),
        (
            "not_utf8",
            vec![("V1__latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n")],
            vec![],
        ),
        (
            "unterminated_quote",
            vec![("V2__quote.sql", b"SELECT 1;\nINSERT INTO t VALUES ('it''s;\n")],
            vec![],
        ),
        (
            "unterminated_delimiter",
            vec![(
                "V3__proc.sql",
                b"DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND\n",
            )],
            vec![],
        ),
        ("missing_directory", vec![], vec!["--dir", "nowhere"]),
        (
            "unknown_target",
            vec![("V1__a.sql", b"SELECT 1;\n")],
            vec!["--target", "db_primray"],
        ),
        (
            "group_target",
            vec![("V1__a.sql", b"SELECT 1;\n")],
            vec!["--target", "all"],
        ),
        (
            "bad_to_version",
            vec![("V1__a.sql", b"SELECT 1;\n")],
            vec!["--to", "latest"],
        ),
    ]
}

#[test]
fn bad_migration_input_is_named_and_nothing_runs() {
    let expected_dir = common::repo().join("tests/migrate_errors");
    let mut failures = Vec::new();
    for (name, files, extra) in cases() {
        let dir = common::scratch();
        std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).expect("inventory");
        let migrations = dir.path().join("migrations");
        std::fs::create_dir_all(&migrations).expect("mkdir");
        for (file, bytes) in files {
            std::fs::write(migrations.join(file), bytes).expect("write");
        }
        let mut args = vec!["migrate", "up", "-i", "inventory.yaml"];
        args.extend(extra);
        let r = run_in(dir.path(), &args);
        let path = expected_dir.join(format!("{name}.expected"));
        if std::env::var_os("TEND_BLESS").is_some() {
            std::fs::create_dir_all(&expected_dir).expect("mkdir");
            std::fs::write(&path, &r.stderr).expect("bless");
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if r.code != 4 || r.stderr != expected || !r.stdout.is_empty() {
            failures.push(format!("{name}: expected exit 4 and\n{expected}got {r:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
