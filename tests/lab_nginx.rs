//! Nginx modules against real Nginx in a lab host: every change is tested before a reload, a
//! broken configuration is rolled back.

mod common;
use common::{Lab, PlaybookFile};

fn site(port: u32, body: &str, extra: &str) -> String {
    format!(
        r#"
- hosts: h1
  gather_facts: no
  tasks:
    - name: nginx installed and running
      shell: (dpkg -s nginx >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 nginx) && (pidof nginx >/dev/null || service nginx start)
      changed_when: false
    - name: upstream
      nginx_upstream:
        name: tend_test_{port}
        servers: ["127.0.0.1:{port}", {{address: "127.0.0.1:9", down: true}}]
    - name: site
      nginx_site:
        name: tend-test-{port}
        content: |
          server {{
              listen {port};
              location / {{ return 200 "{body}\n"; }}
              {extra}
          }}
"#
    )
}

#[test]
fn sites_are_tested_reloaded_and_rolled_back() {
    let lab = Lab::get();
    let port = 18000 + std::process::id() % 1000;
    let pf = PlaybookFile::new(&site(port, "one", ""));
    let r = pf.run(&lab, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.result("site", "h1")["msg"],
        "configuration tested and reloaded",
        "{r:?}"
    );
    // After a reload, old workers may answer for a moment: wait for the expected body.
    let get = |want: &str| {
        lab.sh(1, &format!("for i in $(seq 30); do b=$(curl -fsS http://127.0.0.1:{port}/); [ \"$b\" = {want} ] && break; sleep 0.1; done; echo \"$b\""))
    };
    assert_eq!(get("one"), "one\n");
    assert!(
        lab.sh(1, &format!("cat /etc/nginx/conf.d/upstream-tend_test_{port}.conf"))
            .contains("server 127.0.0.1:9 down;")
    );

    // Unchanged: nothing to do.
    let r = pf.run(&lab, &[]);
    assert_eq!((r.code, r.total_changed()), (0, 0), "{r:?}");

    // A broken site: the task fails with nginx's message, the old file stays, Nginx still serves it.
    let broken = PlaybookFile::new(&site(port, "two", "bogus_directive on;"));
    let r = broken.run(&lab, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let f = r.result("site", "h1");
    let msg = f["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("nginx -t refused the new /etc/nginx/sites-available/tend-test-"),
        "{f}"
    );
    assert!(msg.contains("unknown directive \"bogus_directive\""), "{f}");
    assert_eq!(f["cmd"], "nginx -t");
    assert!(
        !lab.sh(1, &format!("cat /etc/nginx/sites-available/tend-test-{port}"))
            .contains("bogus")
    );
    assert_eq!(get("one"), "one\n");

    // A good change is applied and served.
    let two = PlaybookFile::new(&site(port, "two", ""));
    let r = two.run(&lab, &["--diff"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.result("site", "h1")["diff"][0]["before"]
            .as_str()
            .unwrap_or_default()
            .contains("\"one\\n\"")
    );
    assert_eq!(get("two"), "two\n");

    let cleanup = format!(
        "rm -f /etc/nginx/sites-available/tend-test-{port} /etc/nginx/sites-enabled/tend-test-{port} /etc/nginx/conf.d/upstream-tend_test_{port}.conf; nginx -s reload"
    );
    lab.sh(1, &cleanup);
}
