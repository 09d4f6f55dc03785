//! One node's view of the shared backing store, served over FUSE.
//!
//! Coherence between mounts (each mount has its own inodes and page cache):
//! - db, -journal, -wal are opened with `direct_io`: no page cache, every
//!   read sees other nodes' writes and every write reaches us to be judged;
//! - -shm is opened with FUSE passthrough, so its `mmap` maps the backing
//!   file's own pages, the same pages for every mount;
//! - entry and attribute TTLs are 0, so names, sizes and modes are always
//!   asked for afresh (`.primary` and the 0444/0666 modes follow the lease).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::cluster::Cluster;
use crate::halt::HALT_BYTE;
use crate::inodes;
use crate::lease::Role;
use crate::locks::{LockType, Owner, Request as LockRequest};
use crate::names::{self, Kind};
use crate::pos;

/// Nothing is cached by the kernel: every lookup and stat reaches us.
const TTL: Duration = Duration::ZERO;

/// An open file of this mount.
#[derive(Debug)]
struct Handle {
    name: String,
    kind: Kind,
    db: String,
    /// Backing file; `None` for virtual files.
    file: Option<File>,
    /// Keeps the kernel's passthrough registration alive while open (-shm).
    _backing: Option<Arc<BackingId>>,
}

/// The FUSE filesystem of one node.
#[derive(Debug)]
pub struct NodeFs {
    node: usize,
    cluster: Arc<Cluster>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    /// One passthrough backing id per inode, shared by its open handles
    /// (the kernel refuses a second id for an inode already open).
    backing_ids: Mutex<HashMap<u64, Weak<BackingId>>>,
    /// `.primary` was found here once: like LiteFS's cached node, it then
    /// still opens after the primary is lost (stat and read say ENOENT).
    primary_seen: AtomicBool,
}

fn errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn ts(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH
    }
}

fn file_attr(ino: u64, meta: &Metadata, perm: u16) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: ts(meta.atime(), meta.atime_nsec()),
        mtime: ts(meta.mtime(), meta.mtime_nsec()),
        ctime: ts(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm,
        nlink: 1,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn virtual_attr(ino: u64, size: u64, perm: u16) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm,
        nlink: 1,
        // SAFETY: geteuid/getegid cannot fail.
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Reads up to `size` bytes at `offset`, short only at end of file.
fn read_full(file: &File, offset: u64, size: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn slice_at(content: &[u8], offset: u64, size: u32) -> &[u8] {
    let start = (offset as usize).min(content.len());
    let end = start.saturating_add(size as usize).min(content.len());
    &content[start..end]
}

impl NodeFs {
    pub fn new(node: usize, cluster: Arc<Cluster>) -> NodeFs {
        NodeFs {
            node,
            cluster,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            backing_ids: Mutex::new(HashMap::new()),
            primary_seen: AtomicBool::new(false),
        }
    }

    fn role(&self) -> Role {
        self.cluster.lease.role(self.node)
    }

    fn owner(&self, lock_owner: LockOwner) -> Owner {
        Owner {
            node: self.node,
            id: lock_owner.0,
        }
    }

    fn add_handle(&self, h: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(h));
        FileHandle(fh)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    /// Is `db` the name of an existing database file in the backing store?
    fn db_exists(&self, db: &str) -> bool {
        names::valid(db)
            && names::classify(db).0 == Kind::Db
            && std::fs::symlink_metadata(self.cluster.path(db))
                .map(|m| m.is_file())
                .unwrap_or(false)
    }

    /// Content of a virtual file as this node sees it right now.
    fn virtual_content(&self, kind: Kind, db: &str) -> Result<String, Errno> {
        match kind {
            Kind::Primary => match self.role() {
                Role::Replica { primary } => Ok(pos::primary_text(&primary)),
                _ => Err(Errno::ENOENT),
            },
            Kind::Lag => Ok(pos::lag_text(self.cluster.lag_ms(self.node))),
            Kind::Pos if self.db_exists(db) => {
                let (txid, chk) = self.cluster.pos_of(self.node, db);
                Ok(pos::pos_text(txid, chk))
            }
            Kind::Lock if self.db_exists(db) => Ok(String::new()),
            _ => Err(Errno::ENOENT),
        }
    }

    /// Mode bits as LiteFS reports them: only the database follows the role
    /// (writable on the primary and on a node holding its halt lock).
    fn perm(&self, kind: Kind, db: &str) -> u16 {
        match kind {
            Kind::Db if !self.cluster.writable(self.node, db) => 0o444,
            Kind::Primary | Kind::Lag | Kind::Lock => 0o444,
            _ => 0o666,
        }
    }

    fn root_attr(&self) -> FileAttr {
        let mut a = virtual_attr(inodes::ROOT, 0, 0o555);
        a.kind = FileType::Directory;
        a.nlink = 2;
        if self.cluster.lease.is_holder(self.node) {
            a.perm = 0o777;
        }
        a
    }

    /// Attributes of a root-level name, numbered `ino` (or its current number).
    fn attr_for_name(&self, name: &str, ino: Option<u64>) -> Result<FileAttr, Errno> {
        let (kind, db) = names::classify(name);
        // Numbers are handed out only for names that exist.
        let number = || ino.unwrap_or_else(|| self.cluster.inodes.ino_for(name));
        if kind.is_virtual() {
            let content = self.virtual_content(kind, db)?;
            let size = if kind == Kind::Pos {
                34
            } else {
                content.len() as u64
            };
            return Ok(virtual_attr(number(), size, self.perm(kind, db)));
        }
        let meta = std::fs::symlink_metadata(self.cluster.path(name)).map_err(errno)?;
        if !meta.is_file() {
            return Err(Errno::ENOENT);
        }
        Ok(file_attr(number(), &meta, self.perm(kind, db)))
    }

    /// `.primary` on a replica that lost its primary after having shown it.
    fn lost_primary_cached(&self, name: &str) -> bool {
        name == names::PRIMARY && self.role() == Role::NoPrimary && self.primary_seen.load(Ordering::Relaxed)
    }

    fn name_of(&self, ino: INodeNo) -> Result<String, Errno> {
        self.cluster.inodes.name_of(ino.0).ok_or(Errno::ENOENT)
    }

    /// Registers (or reuses) the passthrough backing id for `ino`.
    fn backing_id(
        &self,
        ino: u64,
        file: &File,
        open_backing: impl FnOnce(&File) -> io::Result<BackingId>,
    ) -> io::Result<Arc<BackingId>> {
        let mut ids = self.backing_ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = ids.get(&ino).and_then(Weak::upgrade) {
            return Ok(id);
        }
        let id = Arc::new(open_backing(file)?);
        ids.retain(|_, w| w.strong_count() > 0);
        ids.insert(ino, Arc::downgrade(&id));
        Ok(id)
    }

    /// Logs an op that LiteFS allows on every node (-wal/-shm housekeeping).
    fn allowed(&self, op: &str, name: &str) {
        self.cluster.record(self.node, op, name, "allowed", &[]);
    }

    fn truncate(
        &self,
        name: &str,
        kind: Kind,
        db: &str,
        fh: Option<FileHandle>,
        size: u64,
    ) -> Result<(), Errno> {
        if kind.is_virtual() {
            return Err(Errno::EACCES);
        }
        if kind.is_guarded() {
            self.cluster
                .guard(self.node, "truncate", name, &[("size", &size)])
                .map_err(Errno::from_i32)?;
        }
        let result = match fh.and_then(|fh| self.handle(fh).ok()) {
            Some(h) if h.file.is_some() => h.file.as_ref().map_or(Ok(()), |f| f.set_len(size)),
            _ => OpenOptions::new()
                .write(true)
                .open(self.cluster.path(name))
                .and_then(|f| f.set_len(size)),
        };
        match result {
            Ok(()) if kind.is_guarded() => {
                self.cluster
                    .accepted(self.node, "truncate", name, &[("size", &size)]);
                // journal_mode=TRUNCATE commits by truncating the journal.
                if kind == Kind::Journal && size == 0 {
                    self.cluster.pos.bump(db);
                }
                Ok(())
            }
            Ok(()) => {
                self.allowed("truncate", name);
                Ok(())
            }
            Err(e) => {
                self.cluster
                    .failed(self.node, "truncate", name, e.raw_os_error().unwrap_or(0));
                Err(errno(e))
            }
        }
    }
}

/// The halt lock through `NAME-lock`, with LiteFS's answers
/// (`fuse/lock_node.go`). FUSE passes F_SETLK(W) and F_OFD_SETLK(W) alike
/// (only "wait or not" reaches us), so both kinds behave the same here, as
/// they do on LiteFS. A write lock on a read-only descriptor never reaches
/// us: the kernel answers EBADF.
impl NodeFs {
    #[allow(clippy::too_many_arguments)]
    fn halt_setlk(
        &self,
        db: &str,
        fh: FileHandle,
        start: u64,
        end: u64,
        typ: i32,
        sleep: bool,
        tid: u32,
        reply: ReplyEmpty,
    ) {
        let one_byte_72 = start == end && start == HALT_BYTE;
        if typ == libc::F_UNLCK {
            if !one_byte_72 {
                return reply.error(Errno::EINVAL);
            }
            self.cluster.halt_release_handle(self.node, fh.0, "unlock");
            return reply.ok();
        }
        // Only the blocking form exists (LiteFS's Lock is ENOSYS), whatever the range.
        if !sleep {
            return reply.error(Errno::ENOSYS);
        }
        if !one_byte_72 {
            return reply.error(Errno::EINVAL);
        }
        if typ != libc::F_WRLCK {
            return reply.error(Errno::ENOSYS);
        }
        self.cluster.halt_acquire(
            self.node,
            fh.0,
            db,
            tid,
            Box::new(move |res| match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from_i32(e)),
            }),
        );
    }

    /// Shows the halt lock to every process of the node that holds it
    /// (the prober included), as LiteFS's QueryLock does.
    fn halt_getlk(&self, db: &str, start: u64, end: u64, reply: ReplyLock) {
        if start != end || start != HALT_BYTE {
            return reply.error(Errno::EINVAL);
        }
        if self.cluster.halts.node_holds(self.node, db) {
            reply.locked(start, end, libc::F_WRLCK, 0)
        } else {
            reply.locked(start, end, libc::F_UNLCK, 0)
        }
    }
}

impl Filesystem for NodeFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Without these two the sim cannot be coherent across mounts: refuse to run.
        config
            .add_capabilities(InitFlags::FUSE_POSIX_LOCKS)
            .map_err(|_| io::Error::other("kernel lacks FUSE_POSIX_LOCKS"))?;
        config
            .add_capabilities(InitFlags::FUSE_PASSTHROUGH)
            .map_err(|_| io::Error::other("kernel lacks FUSE passthrough (needs Linux >= 6.9)"))?;
        // Allows backing files on overlayfs too (kernel maximum is 2).
        let _ = config.set_max_stack_depth(2);
        // Lookups/creates of journals by many writers need not queue on one dir lock.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().filter(|n| names::valid(n)) else {
            return reply.error(Errno::ENOENT);
        };
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        match self.attr_for_name(name, None) {
            Ok(attr) => {
                if name == names::PRIMARY {
                    self.primary_seen.store(true, Ordering::Relaxed);
                }
                reply.entry(&TTL, &attr, Generation(0))
            }
            Err(_) if self.lost_primary_cached(name) => {
                // The name resolves (LiteFS's node is cached); getattr, open's
                // fstat and read still answer ENOENT.
                let attr = virtual_attr(inodes::PRIMARY, 0, 0o444);
                reply.entry(&TTL, &attr, Generation(0))
            }
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT {
            return reply.attr(&TTL, &self.root_attr());
        }
        if let Some(h) = fh.and_then(|fh| self.handle(fh).ok()) {
            if let Some(f) = &h.file {
                return match f.metadata() {
                    Ok(m) => reply.attr(&TTL, &file_attr(ino.0, &m, self.perm(h.kind, &h.db))),
                    Err(e) => reply.error(errno(e)),
                };
            }
        }
        match self
            .name_of(ino)
            .and_then(|name| self.attr_for_name(&name, Some(ino.0)))
        {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if ino == INodeNo::ROOT {
            return reply.attr(&TTL, &self.root_attr());
        }
        let name = match self.name_of(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (kind, db) = names::classify(&name);
        // Only size matters to SQLite; mode/owner/times changes are ignored.
        if let Some(size) = size {
            if let Err(e) = self.truncate(&name, kind, db, fh, size) {
                return reply.error(e);
            }
        }
        match self.attr_for_name(&name, Some(ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let name = match self.name_of(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let (kind, db) = names::classify(&name);
        let acc = flags.acc_mode();
        if kind.is_virtual() {
            if kind != Kind::Lock && acc != OpenAccMode::O_RDONLY {
                return reply.error(Errno::EACCES);
            }
            if let Err(e) = self.virtual_content(kind, db) {
                if !self.lost_primary_cached(&name) {
                    return reply.error(e);
                }
            }
            let fh = self.add_handle(Handle {
                name: name.clone(),
                kind,
                db: db.to_string(),
                file: None,
                _backing: None,
            });
            return reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
        }
        // Replicas may open read-write, as on LiteFS; the writes are refused.
        let mut opts = OpenOptions::new();
        match (kind, acc) {
            (Kind::Shm, _) | (_, OpenAccMode::O_RDWR) => opts.read(true).write(true),
            (_, OpenAccMode::O_WRONLY) => opts.write(true),
            (_, OpenAccMode::O_RDONLY) => opts.read(true),
        };
        let file = match opts.open(self.cluster.path(&name)) {
            Ok(f) => f,
            Err(e) => return reply.error(errno(e)),
        };
        if kind == Kind::Shm {
            let id = match self.backing_id(ino.0, &file, |f| reply.open_backing(f)) {
                Ok(id) => id,
                Err(e) => return reply.error(errno(e)),
            };
            let fh = self.add_handle(Handle {
                name: name.clone(),
                kind,
                db: db.to_string(),
                file: Some(file),
                _backing: Some(id.clone()),
            });
            return reply.opened_passthrough(fh, FopenFlags::empty(), &id);
        }
        let fh = self.add_handle(Handle {
            name: name.clone(),
            kind,
            db: db.to_string(),
            file: Some(file),
            _backing: None,
        });
        reply.opened(
            fh,
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(name) = name.to_str().filter(|n| names::valid(n)) else {
            return reply.error(Errno::EINVAL);
        };
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        let (kind, db) = names::classify(name);
        if kind.is_virtual() {
            return reply.error(Errno::EACCES);
        }
        let path = self.cluster.path(name);
        let excl = flags & libc::O_EXCL != 0;
        let perm = (mode & !umask) & 0o7777;
        // Try to create; fall back to opening what another node made meanwhile.
        let writable = self.cluster.writable(self.node, db);
        let created = if kind.guards_existence() && !writable {
            None
        } else {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(perm)
                .open(&path)
            {
                Ok(f) => Some(Ok(f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(e)),
            }
        };
        let (file, is_new) = match created {
            Some(Ok(f)) => (f, true),
            Some(Err(e)) => {
                self.cluster
                    .failed(self.node, "create", name, e.raw_os_error().unwrap_or(0));
                return reply.error(errno(e));
            }
            None => match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(_) if excl => return reply.error(Errno::EEXIST),
                Ok(f) => (f, false),
                Err(e) if e.kind() == io::ErrorKind::NotFound && kind.guards_existence() => {
                    // A new database or journal on a replica: LiteFS says EACCES.
                    let _ = self.cluster.guard(self.node, "create", name, &[]);
                    return reply.error(Errno::EACCES);
                }
                Err(e) => return reply.error(errno(e)),
            },
        };
        if is_new {
            if kind.guards_existence() {
                self.cluster.accepted(self.node, "create", name, &[]);
            } else {
                self.allowed("create", name);
            }
        }
        let ino = self.cluster.inodes.ino_for(name);
        let attr = match file.metadata() {
            Ok(m) => file_attr(ino, &m, self.perm(kind, db)),
            Err(e) => return reply.error(errno(e)),
        };
        if kind == Kind::Shm {
            let id = match self.backing_id(ino, &file, |f| reply.open_backing(f)) {
                Ok(id) => id,
                Err(e) => return reply.error(errno(e)),
            };
            let fh = self.add_handle(Handle {
                name: name.to_string(),
                kind,
                db: db.to_string(),
                file: Some(file),
                _backing: Some(id.clone()),
            });
            return reply.created_passthrough(&TTL, &attr, Generation(0), fh, FopenFlags::empty(), &id);
        }
        let fh = self.add_handle(Handle {
            name: name.to_string(),
            kind,
            db: db.to_string(),
            file: Some(file),
            _backing: None,
        });
        reply.created(
            &TTL,
            &attr,
            Generation(0),
            fh,
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        match &h.file {
            Some(f) => match read_full(f, offset, size) {
                Ok(buf) => reply.data(&buf),
                Err(e) => reply.error(errno(e)),
            },
            None => match self.virtual_content(h.kind, &h.db) {
                Ok(c) => reply.data(slice_at(c.as_bytes(), offset, size)),
                Err(e) => reply.error(e),
            },
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Some(file) = &h.file else {
            // LiteFS answers EIO for writes to the lock file.
            return reply.error(if h.kind == Kind::Lock {
                Errno::EIO
            } else {
                Errno::EBADF
            });
        };
        let len = data.len();
        if h.kind.is_guarded() {
            let extra: [(&str, &dyn std::fmt::Display); 2] = [("off", &offset), ("len", &len)];
            if let Err(e) = self.cluster.guard(self.node, "write", &h.name, &extra) {
                return reply.error(Errno::from_i32(e));
            }
            if let Err(e) = file.write_all_at(data, offset) {
                self.cluster
                    .failed(self.node, "write", &h.name, e.raw_os_error().unwrap_or(0));
                return reply.error(errno(e));
            }
            self.cluster.accepted(self.node, "write", &h.name, &extra);
            if h.kind == Kind::Wal && pos::is_wal_commit(offset, data) {
                self.cluster.pos.bump(&h.db);
            }
        } else if let Err(e) = file.write_all_at(data, offset) {
            return reply.error(errno(e));
        }
        reply.written(len as u32);
    }

    fn flush(&self, _req: &Request, ino: INodeNo, fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        // LiteFS: any flush of a NAME-lock handle releases its halt lock.
        if self.handle(fh).is_ok_and(|h| h.kind == Kind::Lock) {
            self.cluster.halt_release_handle(self.node, fh.0, "close");
        }
        // close() of any descriptor drops the process's POSIX locks on the file.
        let name = self
            .handle(fh)
            .map(|h| h.name.clone())
            .or_else(|_| self.name_of(ino));
        if let Ok(name) = name {
            self.cluster.locks.release_owner(&name, self.owner(lock_owner));
        }
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let h = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        if h.as_ref().is_some_and(|h| h.kind == Kind::Lock) {
            // Normally the flush before it released it already.
            self.cluster.halt_release_handle(self.node, fh.0, "release");
        }
        if let (Some(h), Some(owner)) = (h, lock_owner) {
            self.cluster.locks.release_owner(&h.name, self.owner(owner));
        }
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        // Allowed everywhere: it changes no content (LiteFS does not refuse it either).
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let r = match &h.file {
            Some(f) if datasync => f.sync_data(),
            Some(f) => f.sync_all(),
            None => Ok(()),
        };
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = name.to_str().filter(|n| names::valid(n)) else {
            return reply.error(Errno::ENOENT);
        };
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        let (kind, db) = names::classify(name);
        if kind.is_virtual() {
            return reply.error(Errno::EACCES);
        }
        if kind.guards_existence() {
            if let Err(e) = self.cluster.guard(self.node, "unlink", name, &[]) {
                return reply.error(Errno::from_i32(e));
            }
        }
        if let Err(e) = std::fs::remove_file(self.cluster.path(name)) {
            if kind.guards_existence() {
                self.cluster
                    .failed(self.node, "unlink", name, e.raw_os_error().unwrap_or(0));
            }
            return reply.error(errno(e));
        }
        self.cluster.inodes.forget_name(name);
        if kind.guards_existence() {
            self.cluster.accepted(self.node, "unlink", name, &[]);
            // journal_mode=DELETE commits by deleting the journal.
            if kind == Kind::Journal {
                self.cluster.pos.bump(db);
            }
        } else {
            self.allowed("unlink", name);
        }
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let mut entries: Vec<(u64, FileType, String)> = vec![
            (inodes::ROOT, FileType::Directory, ".".into()),
            (inodes::ROOT, FileType::Directory, "..".into()),
            (inodes::LAG, FileType::RegularFile, names::LAG.into()),
        ];
        if matches!(self.role(), Role::Replica { .. }) {
            entries.push((inodes::PRIMARY, FileType::RegularFile, names::PRIMARY.into()));
        }
        let mut files: Vec<String> = match std::fs::read_dir(&self.cluster.backing) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| names::valid(n) && !names::classify(n).0.is_virtual())
                .collect(),
            Err(e) => return reply.error(errno(e)),
        };
        files.sort();
        for f in files {
            let is_db = names::classify(&f).0 == Kind::Db;
            entries.push((self.cluster.inodes.ino_for(&f), FileType::RegularFile, f.clone()));
            if is_db {
                let p = format!("{f}-pos");
                entries.push((self.cluster.inodes.ino_for(&p), FileType::RegularFile, p));
            }
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let Ok(path) = std::ffi::CString::new(self.cluster.backing.as_os_str().as_encoded_bytes()) else {
            return reply.error(Errno::EINVAL);
        };
        // SAFETY: zeroed statvfs is a valid out-buffer; path is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return reply.error(errno(io::Error::last_os_error()));
        }
        reply.statfs(
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            st.f_bsize as u32,
            st.f_namemax as u32,
            st.f_frsize as u32,
        );
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let (Some(typ), Ok(name)) = (LockType::from_fcntl(typ), self.name_of(ino)) else {
            return reply.error(Errno::EINVAL);
        };
        if let (Kind::Lock, db) = names::classify(&name) {
            return self.halt_getlk(db, start, end, reply);
        }
        let r = LockRequest {
            owner: self.owner(lock_owner),
            typ,
            start,
            end,
            pid,
        };
        match self.cluster.locks.test(&name, &r) {
            Some(h) => reply.locked(h.start, h.end, h.typ.to_fcntl(), h.pid),
            None => reply.locked(start, end, libc::F_UNLCK, 0),
        }
    }

    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let name = match self.name_of(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        if let (Kind::Lock, db) = names::classify(&name) {
            return self.halt_setlk(db, fh, start, end, typ, sleep, req.pid(), reply);
        }
        if start > end {
            return reply.error(Errno::EINVAL);
        }
        let owner = self.owner(lock_owner);
        if typ == libc::F_UNLCK {
            self.cluster.locks.unlock(&name, owner, start, end);
            return reply.ok();
        }
        let Some(typ) = LockType::from_fcntl(typ) else {
            return reply.error(Errno::EINVAL);
        };
        let r = LockRequest {
            owner,
            typ,
            start,
            end,
            pid,
        };
        if !sleep {
            return match self.cluster.locks.try_set(&name, &r) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from_i32(e)),
            };
        }
        // F_SETLKW: park the reply; an unlock elsewhere answers it later, so
        // no worker thread sleeps.
        self.cluster.locks.set_wait(
            &name,
            &r,
            req.pid(),
            Box::new(move |res| match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from_i32(e)),
            }),
        );
    }
}
