//! A FUSE filesystem that forgets, on a simulated power cut, everything not yet fsynced.
//!
//! The kill -9 tests cannot see a missing fsync: the page cache survives a killed
//! process. This filesystem keeps its files in memory, twice: what the processes
//! see now, and what a disk would hold after a power cut. `fsync` on a file copies
//! that file's content (and size) to the durable side; `fsync` on a directory does
//! the same for its entries (creates, renames, unlinks). [`PowercutFs::cut`]
//! throws the rest away, as a power cut does with a strict POSIX disk. Linux does
//! not pass `sync_file_range` to FUSE at all, so sled's flush makes nothing durable
//! here, as on a real disk with a write cache.
//!
//! Mounted in the test process with fuser's own mount (`mount(2)` as root, or
//! `fusermount3` from Debian's `fuse3` package); no libfuse is linked.

use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache names and attributes; every change goes through us.
const TTL: Duration = Duration::from_secs(1);
const ROOT: u64 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Socket,
}

/// One inode: its current state and the state a power cut would leave.
struct Node {
    kind: Kind,
    perm: u16,
    mtime: SystemTime,
    data: Vec<u8>,
    durable_data: Vec<u8>,
    /// Whether `data` changed since the last fsync.
    dirty: bool,
    entries: BTreeMap<OsString, u64>,
    durable_entries: BTreeMap<OsString, u64>,
}

impl Node {
    fn new(kind: Kind, perm: u16) -> Self {
        Self {
            kind,
            perm,
            mtime: SystemTime::now(),
            data: Vec::new(),
            durable_data: Vec::new(),
            dirty: false,
            entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
        }
    }
}

/// Counters of what the filesystem saw, for the test's report.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsCounters {
    /// File fsyncs (and fdatasyncs).
    pub fsyncs: u64,
    /// Directory fsyncs.
    pub dir_fsyncs: u64,
    /// Bytes written.
    pub written: u64,
    /// Bytes of file content a cut threw away (content changed since the last fsync).
    pub lost_bytes: u64,
    /// Directory entries a cut reverted.
    pub lost_entries: u64,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    counters: FsCounters,
}

impl State {
    fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::new(Kind::Dir, 0o755));
        Self {
            nodes,
            next_ino: ROOT + 1,
            counters: FsCounters::default(),
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let kind = match node.kind {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::RegularFile,
            Kind::Socket => FileType::Socket,
        };
        let size = node.data.len() as u64;
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.perm,
            nlink: if node.kind == Kind::Dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let dir = self.nodes.get(&parent).ok_or(Errno::ENOENT)?;
        if dir.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        dir.entries.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn add(&mut self, parent: u64, name: &OsStr, kind: Kind, perm: u16) -> Result<u64, Errno> {
        if self.child(parent, name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(kind, perm));
        let dir = self.nodes.get_mut(&parent).ok_or(Errno::ENOENT)?;
        dir.entries.insert(name.to_os_string(), ino);
        dir.mtime = SystemTime::now();
        Ok(ino)
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        let node = self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        if node.kind != Kind::File {
            return Err(Errno::EISDIR);
        }
        Ok(node)
    }

    /// Reverts every inode to its durable state and drops what is no longer reachable.
    fn cut(&mut self) {
        let mut lost_bytes = 0;
        let mut lost_entries = 0;
        for node in self.nodes.values_mut() {
            if node.dirty {
                lost_bytes += node.data.len().max(node.durable_data.len()) as u64;
                node.data = node.durable_data.clone();
                node.dirty = false;
            }
            if node.entries != node.durable_entries {
                lost_entries += 1;
                node.entries = node.durable_entries.clone();
            }
        }
        let mut reachable = HashSet::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if reachable.insert(ino) {
                if let Some(node) = self.nodes.get(&ino) {
                    stack.extend(node.entries.values().copied());
                }
            }
        }
        self.nodes.retain(|ino, _| reachable.contains(ino));
        self.counters.lost_bytes += lost_bytes;
        self.counters.lost_entries += lost_entries;
    }
}

/// The filesystem handed to fuser; the state is shared with [`PowercutFs`].
struct Fs(Arc<Mutex<State>>);

impl Fs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn entry_reply(state: &State, ino: u64, reply: ReplyEntry) {
    match state.attr(ino) {
        Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
        None => reply.error(Errno::ENOENT),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = self.state();
        match state.child(parent.0, name) {
            Ok(ino) => entry_reply(&state, ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        if let Some(size) = size {
            match state.file_mut(ino.0) {
                Ok(node) => {
                    node.data.resize(size as usize, 0);
                    node.dirty = true;
                    node.mtime = SystemTime::now();
                }
                Err(e) => return reply.error(e),
            }
        }
        if let Some(mode) = mode {
            if let Some(node) = state.nodes.get_mut(&ino.0) {
                node.perm = (mode & 0o7777) as u16;
            }
        }
        match state.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFREG => Kind::File,
            _ => return reply.error(Errno::EPERM),
        };
        let mut state = self.state();
        match state.add(parent.0, name, kind, (mode & !umask & 0o7777) as u16) {
            Ok(ino) => entry_reply(&state, ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        match state.add(parent.0, name, Kind::Dir, (mode & !umask & 0o7777) as u16) {
            Ok(ino) => entry_reply(&state, ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        match state.child(parent.0, name) {
            Ok(ino) if state.nodes.get(&ino).is_some_and(|n| n.kind == Kind::Dir) => {
                reply.error(Errno::EISDIR)
            }
            Ok(_) => {
                if let Some(dir) = state.nodes.get_mut(&parent.0) {
                    dir.entries.remove(name);
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        match state.child(parent.0, name) {
            Ok(ino) => {
                if state.nodes.get(&ino).is_some_and(|n| !n.entries.is_empty()) {
                    return reply.error(Errno::ENOTEMPTY);
                }
                if let Some(dir) = state.nodes.get_mut(&parent.0) {
                    dir.entries.remove(name);
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut state = self.state();
        let ino = match state.child(parent.0, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        if let Ok(target) = state.child(newparent.0, newname) {
            if state
                .nodes
                .get(&target)
                .is_some_and(|n| !n.entries.is_empty())
            {
                return reply.error(Errno::ENOTEMPTY);
            }
        }
        if let Some(dir) = state.nodes.get_mut(&parent.0) {
            dir.entries.remove(name);
        }
        match state.nodes.get_mut(&newparent.0) {
            Some(dir) => {
                dir.entries.insert(newname.to_os_string(), ino);
                reply.ok()
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.state().nodes.contains_key(&ino.0) {
            reply.opened(FileHandle(0), FopenFlags::empty());
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state();
        match state.nodes.get(&ino.0) {
            Some(node) => {
                let start = (offset as usize).min(node.data.len());
                let end = (start + size as usize).min(node.data.len());
                reply.data(&node.data[start..end]);
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        state.counters.written += data.len() as u64;
        match state.file_mut(ino.0) {
            Ok(node) => {
                let end = offset as usize + data.len();
                if node.data.len() < end {
                    node.data.resize(end, 0);
                }
                node.data[offset as usize..end].copy_from_slice(data);
                node.dirty = true;
                node.mtime = SystemTime::now();
                reply.written(data.len() as u32);
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() is not a durability point.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        state.counters.fsyncs += 1;
        match state.nodes.get_mut(&ino.0) {
            Some(node) => {
                if node.dirty {
                    node.durable_data = node.data.clone();
                    node.dirty = false;
                }
                // fsync on a directory descriptor opened as a file arrives here too.
                if node.kind == Kind::Dir {
                    node.durable_entries = node.entries.clone();
                }
                reply.ok()
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.state();
        let Some(dir) = state.nodes.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let mut all: Vec<(u64, FileType, OsString)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for (name, child) in &dir.entries {
            let kind = match state.nodes.get(child).map(|n| n.kind) {
                Some(Kind::Dir) => FileType::Directory,
                Some(Kind::Socket) => FileType::Socket,
                _ => FileType::RegularFile,
            };
            all.push((*child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        state.counters.dir_fsyncs += 1;
        match state.nodes.get_mut(&ino.0) {
            Some(node) => {
                node.durable_entries = node.entries.clone();
                reply.ok()
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        match state.add(parent.0, name, Kind::File, (mode & !umask & 0o7777) as u16) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.created(
                    &TTL,
                    &attr,
                    Generation(0),
                    FileHandle(0),
                    FopenFlags::empty(),
                ),
                None => reply.error(Errno::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let mut state = self.state();
        match state.file_mut(ino.0) {
            Ok(node) => {
                let end = (offset + length) as usize;
                if node.data.len() < end {
                    node.data.resize(end, 0);
                    node.dirty = true;
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }
}

/// A mounted power-cut filesystem; unmounted when dropped.
pub struct PowercutFs {
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
}

impl PowercutFs {
    /// Mounts an empty filesystem at `mountpoint` (an existing empty directory).
    pub fn mount(mountpoint: &Path) -> std::io::Result<Self> {
        let mut fs = Self {
            mountpoint: mountpoint.to_path_buf(),
            state: Arc::new(Mutex::new(State::new())),
            session: None,
        };
        fs.remount()?;
        Ok(fs)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    fn remount(&mut self) -> std::io::Result<()> {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("hedgerow-powercut".into())];
        self.session = Some(fuser::spawn_mount(
            Fs(self.state.clone()),
            &self.mountpoint,
            &config,
        )?);
        Ok(())
    }

    /// Simulates a power cut: unmounts (every process using the mount must be dead),
    /// throws away everything not fsynced, and mounts what a disk would have kept.
    pub fn cut(&mut self) -> std::io::Result<()> {
        if let Some(session) = self.session.take() {
            session.umount_and_join()?;
        }
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cut();
        self.remount()
    }

    /// What the filesystem saw so far.
    pub fn counters(&self) -> FsCounters {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counters
    }
}

impl Drop for PowercutFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}
