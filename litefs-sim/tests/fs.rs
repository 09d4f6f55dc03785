//! Filesystem behaviour as seen through real mounts: virtual files, modes,
//! refused writes, coherence between nodes, log and counters.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};

use common::start;

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn primary_file_follows_the_lease() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    let primary = |n: &str| fs::read_to_string(sim.path(n, ".primary")).ok();

    assert_eq!(primary("n1"), None, "holder has no .primary");
    assert_eq!(primary("n2").as_deref(), Some("n1\n"));
    assert_eq!(primary("n3").as_deref(), Some("n1\n"));

    sim.set_lease(Some("n2")).unwrap();
    assert_eq!(primary("n1").as_deref(), Some("n2\n"));
    assert!(
        !sim.path("n2", ".primary").exists(),
        "no .primary on the new holder"
    );
    assert_eq!(primary("n3").as_deref(), Some("n2\n"));

    // Nobody holds the lease: no .primary anywhere (LiteFS's "lost my primary").
    sim.set_lease(None).unwrap();
    for n in ["n1", "n2", "n3"] {
        assert!(!sim.path(n, ".primary").exists(), "{n}");
    }
    sim.set_lease(Some("n3")).unwrap();
    assert_eq!(primary("n1").as_deref(), Some("n3\n"));

    // An fd opened earlier also reads the current holder (direct_io, no cache).
    let mut f = fs::File::open(sim.path("n1", ".primary")).unwrap();
    sim.set_lease(Some("n2")).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "n2\n");

    // Listed only where it exists; read-only.
    let names: Vec<String> = fs::read_dir(sim.mount("n1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&".primary".to_string()) && names.contains(&".lag".to_string()));
    let err = OpenOptions::new()
        .write(true)
        .open(sim.path("n1", ".primary"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    assert_eq!(sim.lease().unwrap().as_deref(), Some("n2"));
}

#[test]
fn lag_and_pos_formats() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    assert_eq!(
        fs::read_to_string(sim.path("n1", ".lag")).unwrap(),
        "+000000000\n"
    );
    assert_eq!(
        fs::read_to_string(sim.path("n2", ".lag")).unwrap(),
        "+000000000\n"
    );
    // Without a primary the lag grows from the last sync (see consistency.rs).
    sim.set_lease(None).unwrap();
    let lag = fs::read_to_string(sim.path("n2", ".lag")).unwrap();
    assert!(lag.starts_with('+') && lag.len() == 11, "{lag:?}");
    sim.set_lease(Some("n1")).unwrap();

    assert!(
        !sim.path("n1", "app.db-pos").exists(),
        "no -pos without a database"
    );
    fs::write(sim.path("n1", "app.db"), b"x").unwrap();
    let pos = fs::read_to_string(sim.path("n2", "app.db-pos")).unwrap();
    assert_eq!(pos, "0000000000000000/0000000000000000\n");
    assert_eq!(fs::metadata(sim.path("n2", "app.db-pos")).unwrap().len(), 34);
    // A rollback-journal commit (journal deleted by the holder) bumps the TXID.
    fs::write(sim.path("n1", "app.db-journal"), b"j").unwrap();
    fs::remove_file(sim.path("n1", "app.db-journal")).unwrap();
    let pos = fs::read_to_string(sim.path("n2", "app.db-pos")).unwrap();
    let (txid, chk) = pos.trim_end().split_once('/').unwrap();
    assert_eq!((txid.len(), chk.len()), (16, 16));
    assert_eq!(u64::from_str_radix(txid, 16).unwrap(), 1);
    assert!(pos.ends_with('\n'));
    // The lock file opens by name but is not listed.
    assert!(fs::File::open(sim.path("n2", "app.db-lock")).is_ok());
    let names: Vec<String> = fs::read_dir(sim.mount("n2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"app.db-pos".to_string()));
    assert!(!names.contains(&"app.db-lock".to_string()));
}

#[test]
fn modes_follow_the_role() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "app.db"), b"data").unwrap();
    fs::write(sim.path("n1", "app.db-wal"), b"").unwrap();
    assert_eq!(mode(&sim.path("n1", "app.db")), 0o666);
    assert_eq!(mode(&sim.path("n2", "app.db")), 0o444);
    assert_eq!(mode(&sim.path("n2", "app.db-wal")), 0o666);
    sim.set_lease(Some("n2")).unwrap();
    assert_eq!(mode(&sim.path("n1", "app.db")), 0o444);
    assert_eq!(mode(&sim.path("n2", "app.db")), 0o666);
    sim.set_lease(None).unwrap();
    assert_eq!(mode(&sim.path("n1", "app.db")), 0o444);
    assert_eq!(mode(&sim.path("n2", "app.db")), 0o444);
    // The backing file itself is untouched.
    assert_eq!(mode(&sim.backing().join("app.db")) & 0o200, 0o200);
}

#[test]
fn replica_writes_fail_with_eacces_and_are_logged() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "app.db"), b"0123456789").unwrap();

    // Opening read-write on a replica works (as on LiteFS); writing does not.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(sim.path("n2", "app.db"))
        .unwrap();
    let e = f.write_at(b"X", 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert_eq!(f.set_len(2).unwrap_err().raw_os_error(), Some(libc::EACCES));
    let e = fs::write(sim.path("n2", "new.db"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert!(!sim.backing().join("new.db").exists());
    let e = fs::write(sim.path("n2", "app.db-journal"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert_eq!(
        fs::remove_file(sim.path("n2", "app.db"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EACCES)
    );
    // Nothing changed.
    assert_eq!(fs::read(sim.backing().join("app.db")).unwrap(), b"0123456789");

    let stats = sim.stats().unwrap();
    assert_eq!(stats.node("n2").refused, 5, "{stats:?}");
    assert_eq!(stats.node("n2").accepted, 0);
    assert!(stats.node("n1").accepted >= 2, "create + write: {stats:?}");

    let log = sim.log().unwrap();
    let refused: Vec<_> = log.iter().filter(|e| e.result() == Some("refused")).collect();
    assert_eq!(refused.len(), 5);
    assert!(refused.iter().all(|e| e.node() == Some("n2")));
    let ops: Vec<(&str, &str)> = refused
        .iter()
        .map(|e| (e.op().unwrap(), e.file().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("write", "app.db"),
            ("truncate", "app.db"),
            ("create", "new.db"),
            ("create", "app.db-journal"),
            ("unlink", "app.db")
        ]
    );
    assert!(log.windows(2).all(|w| w[0].ts <= w[1].ts), "monotonic timestamps");
    let now = litefs_sim::log::monotonic_now();
    assert!(refused.iter().all(|e| e.ts <= now));

    // Lease moves are logged too; after one, the old holder is refused.
    sim.set_lease(Some("n2")).unwrap();
    f.write_at(b"Y", 0).unwrap();
    let e = fs::write(sim.path("n1", "app.db"), b"z").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    let log = sim.log().unwrap();
    assert!(log
        .iter()
        .any(|e| e.op() == Some("lease") && e.get("from") == Some("n1") && e.get("to") == Some("n2")));
    assert!(log
        .iter()
        .any(|e| e.node() == Some("n2") && e.op() == Some("write") && e.result() == Some("accepted")));

    // Nobody holds the lease: nobody writes.
    sim.set_lease(None).unwrap();
    assert_eq!(
        f.write_at(b"W", 0).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

#[test]
fn writes_through_one_node_are_read_at_once_through_another() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    let mut a = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(sim.path("n1", "c.db"))
        .unwrap();
    let b = fs::File::open(sim.path("n2", "c.db")).unwrap();
    let mut buf = [0u8; 5];
    // Prime any cache on B, then overwrite through A: B must see new bytes.
    a.write_all(b"aaaaa").unwrap();
    b.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"aaaaa");
    for i in 0..50u8 {
        let v = [b'0' + (i % 10); 5];
        a.seek(SeekFrom::Start(0)).unwrap();
        a.write_all(&v).unwrap();
        b.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, v, "round {i}");
        // Size changes are seen at once too.
        a.write_all_at(b"x", 4096 + i as u64).unwrap();
        assert_eq!(b.metadata().unwrap().len(), 4097 + i as u64);
        assert_eq!(
            fs::metadata(sim.path("n3", "c.db")).unwrap().len(),
            4097 + i as u64
        );
    }
    // New and deleted files show up everywhere immediately.
    fs::write(sim.path("n1", "c.db-journal"), b"j").unwrap();
    assert!(sim.path("n3", "c.db-journal").exists());
    fs::remove_file(sim.path("n1", "c.db-journal")).unwrap();
    assert!(!sim.path("n3", "c.db-journal").exists());
}

#[test]
fn shm_mmap_is_shared_between_nodes() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "m.db"), b"").unwrap();
    let len = 32 * 1024;
    let map = |node: &str| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(sim.path(node, "m.db-shm"))
            .unwrap();
        f.set_len(len as u64).unwrap();
        // SAFETY: fresh shared mapping of a file we keep open for its lifetime.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap via {node}: {}", common::errno());
        (f, p as *mut u8)
    };
    let (_fa, pa) = map("n1");
    let (_fb, pb) = map("n2");
    for i in 0..1000usize {
        let off = (i * 37) % len;
        // SAFETY: both mappings are `len` bytes long.
        unsafe {
            *pa.add(off) = i as u8;
            assert_eq!(*pb.add(off), i as u8, "B sees A's store at {off}");
            *pb.add(len - 1 - off) = !(i as u8);
            assert_eq!(*pa.add(len - 1 - off), !(i as u8));
        }
    }
    // A replica may write the shm (SQLite readers must): it is never refused.
    assert_eq!(sim.stats().unwrap().node("n2").refused, 0);
    // SAFETY: unmapping what we mapped.
    unsafe {
        libc::munmap(pa as *mut libc::c_void, len);
        libc::munmap(pb as *mut libc::c_void, len);
    }
}

#[test]
fn statfs_reports_fuse() {
    require_fuse!();
    let sim = start(&["n1"]);
    let c = common::cpath(sim.mount("n1"));
    // SAFETY: zeroed statfs is a valid out-buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
    assert_eq!(st.f_type as u64, 0x6573_5546, "FUSE_SUPER_MAGIC");
}
