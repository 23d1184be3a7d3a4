//! MariaDB modules against a real MariaDB in a lab host.

mod common;
use common::{Lab, PlaybookFile};

/// Installs MariaDB on lab host h1 (offline, from the machine's apt cache) and starts it.
fn mariadb_on_h1(lab: &Lab) {
    lab.sh(
        1,
        "export DEBIAN_FRONTEND=noninteractive; dpkg -s mariadb-server >/dev/null 2>&1 || apt-get install -y -q -o DPkg::Lock::Timeout=300 mariadb-server >/dev/null; \
         service mariadb status >/dev/null 2>&1 || service mariadb start >/dev/null",
    );
}

#[test]
fn databases_users_grants_and_queries() {
    let lab = Lab::get();
    mariadb_on_h1(&lab);
    let id = std::process::id();
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1
  gather_facts: no
  vars:
    db: shop_{id}
  tasks:
    - name: database
      mysql_db: name={{{{ db }}}} encoding=utf8mb4 collation=utf8mb4_unicode_ci
    - name: application user
      mysql_user:
        name: app_{id}
        host: "%"
        password: "s3cr'et\"pw"
        priv: "{{{{ db }}}}.*:SELECT,INSERT,UPDATE,DELETE,CREATE"
    - name: schema and a row
      mysql_query:
        login_db: "{{{{ db }}}}"
        query:
          - CREATE TABLE IF NOT EXISTS settings (name VARCHAR(64) PRIMARY KEY, value TEXT)
          - INSERT INTO settings VALUES ('greeting', %s) ON DUPLICATE KEY UPDATE value = VALUES(value)
        positional_args: ["hello from {{{{ inventory_hostname }}}}"]
    - name: read it back
      mysql_query:
        login_db: "{{{{ db }}}}"
        query: SELECT name, value FROM settings WHERE name = %(n)s
        named_args: {{n: greeting}}
      register: q
    - assert:
        that:
          - q.query_result[0][0].value == 'hello from h1'
          - q.rowcount[0] == 1
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("database", "h1")["status"], "changed");
    // State in MariaDB itself, checked with its own client.
    let grants = lab.sh(1, &format!("mariadb -N -e \"SHOW GRANTS FOR 'app_{id}'@'%'\""));
    assert!(
        grants.contains(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `shop_{id}`.* TO `app_{id}`@`%`"
        )),
        "{grants}"
    );
    let charset = lab.sh(1, &format!("mariadb -N -e \"SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='shop_{id}'\""));
    assert_eq!(charset, "utf8mb4_unicode_ci\n");
    // The password works (and was set exactly, quotes included).
    let login = lab.sh(
        1,
        &format!("mariadb -N -u app_{id} -p\"s3cr'et\\\"pw\" shop_{id} -e 'SELECT value FROM settings'"),
    );
    assert_eq!(login, "hello from h1\n");

    // Second run: nothing changes.
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.total_changed(), 0, "{r:?}");

    // Privileges drift; --check reports it and leaves MariaDB alone; a run repairs it.
    lab.sh(
        1,
        &format!("mariadb -e \"REVOKE DELETE ON shop_{id}.* FROM 'app_{id}'@'%'\""),
    );
    let r = pf.run(&lab, &["--check"]);
    assert_eq!(r.result("application user", "h1")["status"], "changed", "{r:?}");
    assert!(
        !lab.sh(1, &format!("mariadb -N -e \"SHOW GRANTS FOR 'app_{id}'@'%'\""))
            .contains("DELETE")
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.sh(1, &format!("mariadb -N -e \"SHOW GRANTS FOR 'app_{id}'@'%'\""))
            .contains("DELETE")
    );

    // A wrong password fails with MariaDB's own message.
    let bad = PlaybookFile::new(&format!(
        "- hosts: h1\n  gather_facts: no\n  tasks:\n    - name: bad login\n      mysql_query: login_user=app_{id} login_password=wrong login_host=127.0.0.1 query='SELECT 1'\n"
    ));
    let r = bad.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let f = r.result("bad login", "h1");
    assert!(f["msg"].as_str().unwrap_or_default().contains("Access denied"), "{f}");
    assert!(!r.stdout.contains("wrong"), "password in output: {}", r.stdout);
    lab.sh(
        1,
        &format!("mariadb -e \"DROP DATABASE shop_{id}; DROP USER 'app_{id}'@'%'\""),
    );
}

/// `encrypted: true`: the password given is the server's hash (as the Galaxy mysql role passes
/// it); the account logs in with the password behind it, and a second run changes nothing.
#[test]
fn a_user_created_from_a_password_hash_logs_in() {
    let lab = Lab::get();
    mariadb_on_h1(&lab);
    let id = std::process::id();
    let hash = lab
        .sh(1, "mariadb -N -e \"SELECT PASSWORD('from-a-hash')\"")
        .trim()
        .to_string();
    assert!(hash.starts_with('*') && hash.len() == 41, "{hash}");
    let pf = PlaybookFile::new(&format!(
        "- hosts: h1\n  gather_facts: no\n  tasks:\n    - name: hashed\n      mysql_user: {{name: hashed_{id}, host: localhost, password: \"{hash}\", encrypted: true, tls_requires: {{}}, column_case_sensitive: false}}\n"
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("hashed", "h1")["status"], "changed", "{r:?}");
    let login = lab.sh(1, &format!("mariadb -N -u hashed_{id} -pfrom-a-hash -e 'SELECT 42'"));
    assert_eq!(login, "42\n");
    let again = pf.run(&lab, &[]);
    assert_eq!(again.total_changed(), 0, "{again:?}");
    lab.sh(1, &format!("mariadb -e \"DROP USER 'hashed_{id}'@'localhost'\""));
}

/// Primary on h1, replica on h3 (the tests of this file run one at a time: .config/nextest.toml).
#[test]
fn gtid_replication_starts_and_carries_rows() {
    let lab = Lab::get();
    let pf = PlaybookFile::new(
        r#"
- hosts: h1:h3
  gather_facts: no
  vars:
    server_ids: {h1: 1, h3: 3}
  tasks:
    - name: mariadb installed
      shell: dpkg -s mariadb-server >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 mariadb-server
      changed_when: false
    - name: replication settings
      copy:
        dest: /etc/mysql/mariadb.conf.d/90-tend-replication.cnf
        content: |
          [mysqld]
          server_id = {{ server_ids[inventory_hostname] }}
          log_bin = mysql-bin
          binlog_format = ROW
          log_slave_updates = ON
          gtid_strict_mode = ON
          skip_name_resolve = ON
          bind_address = 0.0.0.0
          {{ 'read_only = 1' if inventory_hostname == 'h3' else '' }}
      register: cnf
    - name: restart when the settings changed
      shell: service mariadb restart
      when: cnf.changed
    - name: running
      shell: service mariadb status >/dev/null || service mariadb start
      changed_when: false
    - name: replication user on the primary
      mysql_user:
        name: repl
        host: "%"
        password: repl-pw
        priv: "*.*:REPLICATION SLAVE,REPLICATION CLIENT"
      when: inventory_hostname == 'h1'
    - name: point the replica at the primary
      mysql_replication:
        mode: changeprimary
        primary_host: "{{ hostvars['h1'].ansible_host }}"
        primary_user: repl
        primary_password: repl-pw
        primary_use_gtid: slave_pos
        primary_connect_retry: 1
      when: inventory_hostname == 'h3'
    - name: start it
      mysql_replication: mode=startreplica
      when: inventory_hostname == 'h3'
    - name: replica state
      mysql_replication: mode=getreplica
      register: rs
      until: rs.Slave_IO_Running == 'Yes' and rs.Slave_SQL_Running == 'Yes'
      retries: 20
      delay: 0.5
      when: inventory_hostname == 'h3'
"#,
    );
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("replica state", "h3")["status"], "ok", "{r:?}");
    // A row written on the primary appears on the replica.
    let id = std::process::id();
    lab.sh(1, &format!("mariadb -e \"CREATE DATABASE IF NOT EXISTS repl_{id}; CREATE TABLE repl_{id}.t (v INT); INSERT INTO repl_{id}.t VALUES (42)\""));
    let mut seen = String::new();
    for _ in 0..40 {
        seen = lab
            .on_host(3, &["mariadb", "-N", "-e", &format!("SELECT v FROM repl_{id}.t")])
            .stdout;
        if seen == "42\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(seen, "42\n");
    // Everything is in place: a second run changes nothing.
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.total_changed(), 0, "{r:?}");
    lab.sh(1, &format!("mariadb -e 'DROP DATABASE repl_{id}'"));
}

#[test]
fn dump_and_import_round_trip() {
    let lab = Lab::get();
    mariadb_on_h1(&lab);
    let id = std::process::id();
    lab.sh(1, &format!("mariadb -e \"CREATE DATABASE d_{id}; CREATE TABLE d_{id}.t (v VARCHAR(20)); INSERT INTO d_{id}.t VALUES ('kept')\""));
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1
  gather_facts: no
  tasks:
    - name: dump
      mysql_db: name=d_{id} state=dump target=/root/d_{id}.sql
    - name: drop
      mysql_db: name=d_{id} state=absent
    - name: import
      mysql_db: name=d_{id} state=import target=/root/d_{id}.sql
"#
    ));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("drop", "h1")["status"], "changed");
    assert_eq!(lab.sh(1, &format!("mariadb -N -e 'SELECT v FROM d_{id}.t'")), "kept\n");
    lab.sh(1, &format!("mariadb -e 'DROP DATABASE d_{id}'; rm -f /root/d_{id}.sql"));
}

/// `mysql_variables` sets a global variable on the running server (check mode leaves it),
/// compares `ON`/`1` alike, and reads a value back; `mysql_info` reports what the server's own
/// client sees.
#[test]
fn variables_are_set_globally_and_info_reports_the_server() {
    let lab = Lab::get();
    mariadb_on_h1(&lab);
    let id = std::process::id();
    let global = |v: &str| lab.sh(1, &format!("mariadb -N -e 'SELECT @@GLOBAL.{v}'"));
    let before = global("max_connections");
    let slow_before = global("slow_query_log");
    // Never the server's default (151), which would make the first run no change.
    let want = 160 + id % 40;
    lab.sh(1, "mariadb -e 'SET GLOBAL slow_query_log = OFF'");
    let pf = PlaybookFile::new(&format!(
        r#"
- hosts: h1
  gather_facts: no
  tasks:
    - name: connections
      community.mysql.mysql_variables:
        variable: max_connections
        value: {want}
      register: v
    - name: slow log
      mysql_variables:
        variable: slow_query_log
        value: "ON"
    - name: slow log as 1
      mysql_variables:
        variable: slow_query_log
        value: 1
    - name: read
      mysql_variables:
        variable: max_connections
      register: cur
    - debug:
        msg: "{{{{ cur.msg }}}}"
      name: show
"#
    ));
    let r = pf.run(&lab, &["--check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("connections", "h1")["status"], "changed");
    assert_eq!(global("max_connections"), before);
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result("connections", "h1")["status"], "changed");
    assert_eq!(r.result("slow log", "h1")["status"], "changed");
    assert_eq!(r.result("slow log as 1", "h1")["status"], "ok");
    assert_eq!(r.result("show", "h1")["msg"], want.to_string());
    assert_eq!(global("max_connections"), format!("{want}\n"));
    assert_eq!(global("slow_query_log"), "1\n");
    let r = pf.run(&lab, &[]);
    assert_eq!(r.total_changed(), 0, "{r:?}");

    let bad = PlaybookFile::new(
        "- hosts: h1\n  gather_facts: no\n  tasks:\n    - name: nope\n      mysql_variables:\n        variable: no_such_variable_x\n        value: 1\n      ignore_errors: true\n\
         \x20   - name: persist\n      mysql_variables:\n        variable: max_connections\n        value: 100\n        mode: persist\n",
    );
    let r = bad.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.result("nope", "h1")["msg"],
        "mysql_variables: the server on h1 has no variable `no_such_variable_x`"
    );
    // MariaDB has no SET PERSIST: its own error, and the value is left.
    assert_eq!(r.result("persist", "h1")["status"], "failed");
    assert_eq!(global("max_connections"), format!("{want}\n"));

    // mysql_info against the server's own answers.
    lab.sh(
        1,
        &format!("mariadb -e 'CREATE DATABASE IF NOT EXISTS info_{id}; CREATE TABLE IF NOT EXISTS info_{id}.t (a INT); CREATE DATABASE IF NOT EXISTS empty_{id}'"),
    );
    let info = PlaybookFile::new(&format!(
        r#"
- hosts: h1
  gather_facts: no
  tasks:
    - name: info
      community.mysql.mysql_info:
        filter: [version, databases, settings, users]
      register: i
    - name: show
      debug:
        msg: "{{{{ i.version.full }}}} {{{{ i.version.major }}}} {{{{ 'info_{id}' in i.databases }}}} {{{{ 'empty_{id}' in i.databases }}}} {{{{ i.settings.max_connections }}}} {{{{ 'root' in i.users.localhost }}}} {{{{ i.global_status is defined }}}}"
"#
    ));
    let r = info.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let version = lab.sh(1, "mariadb -N -e 'SELECT VERSION()'");
    let major = version.split('.').next().unwrap_or_default().to_string();
    assert_eq!(
        r.result("show", "h1")["msg"],
        format!("{} {major} True False {want} True False", version.trim())
    );
    assert_eq!(r.result("info", "h1")["status"], "ok");

    lab.sh(
        1,
        &format!(
            "mariadb -e 'DROP DATABASE info_{id}; DROP DATABASE empty_{id}; SET GLOBAL max_connections = {}; SET GLOBAL slow_query_log = {}'",
            before.trim(),
            slow_before.trim()
        ),
    );
}
