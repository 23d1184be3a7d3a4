//! Faults on the worst day, against real lab hosts: a disk that fills during an upload.

mod common;
use common::{Lab, PlaybookFile};

/// A destination on a full disk (a 1 MiB tmpfs on h2): `copy` of a 4 MiB file fails naming the
/// host, the file and the cause; the old file is intact and no temporary file is left.
#[test]
fn a_full_disk_during_an_upload_keeps_the_old_file_and_says_why() {
    let lab = Lab::get();
    let mnt = format!("/mnt/tend-full-{}", std::process::id());
    lab.sh(
        2,
        &format!("mkdir -p {mnt} && mount -t tmpfs -o size=1m tmpfs {mnt} && printf 'old\\n' > {mnt}/app.conf"),
    );
    let pf = PlaybookFile::new(&format!(
        "- hosts: h2\n  gather_facts: false\n  tasks:\n    - name: big\n      copy: {{ src: big.bin, dest: {mnt}/app.conf }}\n"
    ));
    std::fs::write(pf.dir.path().join("big.bin"), vec![b'x'; 4 << 20]).expect("write");
    let r = pf.run(&lab, &[]);
    let state = lab.sh(
        2,
        &format!("cat {mnt}/app.conf; ls -A {mnt}; umount {mnt}; rmdir {mnt}"),
    );
    assert_eq!(r.code, 2, "{r:?}");
    let res = r.result("big", "h2");
    assert_eq!(res["status"], "failed");
    let msg = res["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("{mnt}/app.conf")) && msg.contains("No space left on device"),
        "{res}"
    );
    assert_eq!(state, "old\napp.conf\n");
}
