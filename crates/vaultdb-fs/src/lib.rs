//! # vaultdb-fs
//!
//! A VaultDB [`StorageBackend`] on a local directory: [`FsBackend`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), vaultdb_core::BackendError> {
//! use vaultdb_core::{Key, PutMode, StorageBackend};
//! use vaultdb_fs::FsBackend;
//!
//! let disk = FsBackend::open("disk-1", "Local disk 1", "/var/lib/vaultdb/disk-1").await?;
//! let key = Key::new("vdb/r/abc/v1/s1").expect("a valid key");
//! disk.put(&key, "share bytes".into(), PutMode::Create).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout on disk
//!
//! ```text
//! <root>/
//!   .tmp/                       temporary files of writes in progress
//!   vdb/r/abc/v1/s1.o           the object "vdb/r/abc/v1/s1"
//!   _41_2eb.o                   the object "A.b"
//! ```
//!
//! Each `/`-separated key segment becomes a directory, the last one a file with the suffix
//! `.o`. Segments are encoded into lowercase letters, digits and `-`; every other byte,
//! uppercase letters included, is written `_` and two lowercase hex digits (`A` is `_41`,
//! `_` is `_5f`, `.` is `_2e`). So every valid key maps to a distinct path on case-sensitive
//! and case-insensitive filesystems alike, no name is `.`, `..` or hidden, and no key can
//! reach outside the root (keys with `.`, `..` or empty segments cannot be made at all: see
//! [`Key`]). A segment whose encoding is longer than 120 bytes is split
//! over nested directories named `<part>.p`, so file-name length limits never bite. Listing
//! decodes the paths back to the exact keys, strictly: files and directories that encoding
//! would not produce (including `.tmp`) are ignored. The root path plus an encoded key
//! (up to about 2.8 KB for a 900-byte key) must fit the platform's path limit (4 KB on
//! Linux).
//!
//! # Atomicity
//!
//! A put writes the bytes to a fresh temporary file in `<root>/.tmp`, flushes it and
//! `fsync`s it, and only then makes it visible under its final name:
//!
//! - [`PutMode::Create`] hard-links the temporary file to the final path. `link(2)` fails
//!   with `EEXIST` if the name exists, atomically, so of concurrent creates exactly one
//!   wins and the others get [`BackendErrorKind::AlreadyExists`]; then the temporary name is
//!   removed.
//! - [`PutMode::Overwrite`] renames the temporary file over the final path; `rename(2)`
//!   replaces the name atomically.
//!
//! Either way the final name appears only with complete, synced contents: a reader sees the
//! old object, the new one, or none, never a partial one. Then the parent directory is
//! `fsync`ed (and its ancestors, when the put created directories), so the new name is
//! durable when the put returns (if that sync fails the put reports an error, although the
//! object may already be visible). A delete `fsync`s the parent directory too, then removes
//! the directories it left empty (best effort: a concurrent put that loses its directory
//! this way re-creates it and retries).
//!
//! # Reads
//!
//! A `get` opens the object's file without following a symbolic link at its name
//! (`O_NOFOLLOW`) and without waiting for a writer should the name be a FIFO (`O_NONBLOCK`),
//! then checks the open file (`fstat`): anything but a regular file (a symbolic link, a FIFO,
//! a device, a directory) is a [`BackendErrorKind::Permanent`] error, a file longer than the
//! caller allows is a [`BackendErrorKind::TooLarge`] error found from its size alone, and the
//! read itself stops one byte past the limit. So whatever is found at an object's path, a read
//! costs at most the limit in memory and never blocks. (Directories on the way to the root
//! are the operator's: a symbolic link there is followed, as the root itself may be one.)
//! Listings skip anything that is not a regular file, and report each file's size.
//!
//! # Crash safety
//!
//! A crash at any point leaves at most stray files in `<root>/.tmp`: before the link or
//! rename the object does not exist; after it, it exists whole. Stray temporary files are
//! never listed or read, and [`FsBackend::open`] removes those older than an hour
//! ([`TEMP_MAX_AGE`]). The filesystem must support hard links (every local Unix filesystem
//! does; some FUSE and FAT filesystems do not).
//!
//! # Errors
//!
//! `NotFound` is not an error for `get` (`Ok(None)`) and `delete` (`Ok(())`). Other I/O
//! errors map to [`BackendErrorKind`]s: `AlreadyExists` to `AlreadyExists`; permission
//! denied and read-only filesystem to `Permanent`; disk full, quota exceeded, interrupted,
//! timed out and would-block to `Transient`; anything else to `Other`.

#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod keypath;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use vaultdb_core::backend::MAX_KEY_LEN;
use vaultdb_core::{
    BackendError, BackendErrorKind, BackendResult, Key, KeyPrefix, ListEntry, ListFrom, ListPage,
    PutMode, StorageBackend,
};

use crate::keypath::{Entry, dir_components, key_components, key_to_relative, parse_name};

/// The name of the directory under the root that holds temporary files.
pub const TEMP_DIR: &str = ".tmp";

/// Temporary files older than this are removed by [`FsBackend::open`].
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// The default number of keys per listing page.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// How often a put re-creates its parent directories when a concurrent delete removes them.
const MAX_DIR_RETRIES: usize = 16;

/// A [`StorageBackend`] that keeps each object in a file under a root directory. See the
/// [crate docs](crate) for the layout, atomicity and crash-safety.
#[derive(Debug)]
pub struct FsBackend {
    id: String,
    name: String,
    root: PathBuf,
    temp: PathBuf,
    page_size: usize,
}

impl FsBackend {
    /// A backend on `root`, without touching the disk: the root and its temporary directory
    /// are created by the first put. Use [`open`](Self::open) to create them up front and
    /// clean old temporary files.
    pub fn new(id: impl Into<String>, name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let temp = root.join(TEMP_DIR);
        Self { id: id.into(), name: name.into(), root, temp, page_size: DEFAULT_PAGE_SIZE }
    }

    /// A backend on `root`, creating the root and its temporary directory if missing and
    /// removing temporary files older than [`TEMP_MAX_AGE`] (left by crashed writes).
    ///
    /// # Errors
    /// If the directories cannot be created or read.
    pub async fn open(
        id: impl Into<String>,
        name: impl Into<String>,
        root: impl Into<PathBuf>,
    ) -> Result<Self, BackendError> {
        let backend = Self::new(id, name, root);
        tokio::fs::create_dir_all(&backend.temp)
            .await
            .map_err(|e| io_error("create root", &backend.root.display().to_string(), e))?;
        backend.clean_temp(TEMP_MAX_AGE).await?;
        Ok(backend)
    }

    /// Sets the number of keys per listing page (at least 1).
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds temporary files (`<root>/.tmp`).
    pub fn temp_dir(&self) -> &Path {
        &self.temp
    }

    /// The path of the file that holds `key`.
    pub fn object_path(&self, key: &Key) -> PathBuf {
        self.root.join(key_to_relative(key))
    }

    /// Removes files in the temporary directory last modified more than `older_than` ago;
    /// returns how many it removed. Files of writes in progress are younger than any
    /// sensible `older_than`.
    ///
    /// # Errors
    /// If the temporary directory cannot be read (a missing one is not an error).
    pub async fn clean_temp(&self, older_than: Duration) -> Result<usize, BackendError> {
        let temp = self.temp.clone();
        let what = temp.display().to_string();
        tokio::task::spawn_blocking(move || clean_temp_sync(&temp, older_than))
            .await
            .map_err(|e| {
                BackendError::new(BackendErrorKind::Other, "temp cleanup panicked").with_source(e)
            })?
            .map_err(|e| io_error("clean temp", &what, e))
    }

    /// Writes `data` to a new, synced temporary file and returns its path.
    async fn write_temp(&self, key: &str, data: &[u8]) -> Result<PathBuf, BackendError> {
        let path = self.temp.join(temp_name());
        let mut file = match create_new(&path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tokio::fs::create_dir_all(&self.temp)
                    .await
                    .map_err(|e| io_error("create temp dir", key, e))?;
                create_new(&path).await
            }
            other => other,
        }
        .map_err(|e| io_error("create temp file", key, e))?;
        let written = async {
            file.write_all(data).await?;
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        drop(file);
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(io_error("write temp file", key, e));
        }
        Ok(path)
    }

    /// Makes the synced temporary file `temp` visible at `path`, creating parent directories
    /// as needed. Returns whether directories were created.
    async fn publish(&self, temp: &Path, path: &Path, mode: PutMode) -> io::Result<bool> {
        let parent = path.parent().unwrap_or(&self.root);
        let mut created = false;
        let mut attempt = 0;
        loop {
            let r = match mode {
                PutMode::Create => tokio::fs::hard_link(temp, path).await,
                PutMode::Overwrite => tokio::fs::rename(temp, path).await,
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < MAX_DIR_RETRIES => {
                    attempt += 1;
                    match tokio::fs::create_dir_all(parent).await {
                        Ok(()) => created = true,
                        // A concurrent delete pruned a directory under us: go round again.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(created),
            }
        }
    }

    /// Lists every object under `prefix` with its size, sorted by key (blocking; run on the
    /// blocking pool).
    fn list_sync(root: &Path, prefix: &KeyPrefix) -> io::Result<Vec<ListEntry>> {
        let mut found = Vec::new();
        let prefix = prefix.as_str();
        // Segments of the prefix before its last '/' are complete (and valid: a `KeyPrefix`):
        // start the walk there.
        let (start_dir, start_key, start_comps) = match prefix.rfind('/') {
            None => (root.to_path_buf(), String::new(), Vec::new()),
            Some(i) => {
                let complete = &prefix[..i];
                let comps = dir_components(complete.split('/'));
                let dir: PathBuf = comps.iter().fold(root.to_path_buf(), |p, c| p.join(c));
                (dir, format!("{complete}/"), comps)
            }
        };
        // Depth-first walk: (directory, decoded key prefix, its path components).
        let mut stack = vec![(start_dir, start_key, start_comps)];
        while let Some((dir, key_prefix, comps)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Gone (a concurrent delete) or never there.
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(e),
                };
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let Some(parsed) = parse_name(&name) else {
                    continue;
                };
                // Symlinks and special files are neither files nor directories here.
                let Ok(ft) = entry.file_type() else { continue };
                let mut sub_comps = comps.clone();
                sub_comps.push(name);
                match parsed {
                    Entry::Object(last) if ft.is_file() => {
                        let key = format!("{key_prefix}{last}");
                        if !key.starts_with(prefix) || key_components(&key) != sub_comps {
                            continue;
                        }
                        let Ok(key) = Key::new(&key) else { continue };
                        match entry.metadata() {
                            Ok(meta) => found.push(ListEntry { key, size: meta.len() }),
                            // Deleted since the directory was read.
                            Err(e) if is_not_found(&e) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Entry::Segment(seg) if ft.is_dir() => {
                        let p = format!("{key_prefix}{seg}/");
                        if p.len() < MAX_KEY_LEN
                            && (p.starts_with(prefix) || prefix.starts_with(&p))
                        {
                            stack.push((entry.path(), p, sub_comps));
                        }
                    }
                    Entry::Partial(part) if ft.is_dir() => {
                        let p = format!("{key_prefix}{part}");
                        if p.len() < MAX_KEY_LEN
                            && (p.starts_with(prefix) || prefix.starts_with(&p))
                        {
                            stack.push((entry.path(), p, sub_comps));
                        }
                    }
                    _ => {}
                }
            }
        }
        found.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }
}

#[async_trait]
impl StorageBackend for FsBackend {
    vaultdb_core::backend_identity!();

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        let path = self.object_path(key);
        let temp = self.write_temp(key.as_str(), &data).await?;
        let created = match self.publish(&temp, &path, mode).await {
            Ok(created) => created,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(io_error("put", key.as_str(), e));
                }
                // The name is taken: by an object, or by something this backend never wrote
                // (which a create must not report as an object that exists).
                return Err(match tokio::fs::symlink_metadata(&path).await {
                    Ok(meta) if !meta.is_file() => not_regular(key, "something"),
                    _ => BackendError::already_exists(key).with_source(e),
                });
            }
        };
        if mode == PutMode::Create {
            // The object is in place; a leftover temporary name is only litter, which
            // `clean_temp` collects.
            let _ = tokio::fs::remove_file(&temp).await;
        }
        // Make the new name durable: the parent directory, and its ancestors up to the root
        // when this put created directories.
        let parent = path.parent().unwrap_or(&self.root);
        sync_dir(parent).await.map_err(|e| io_error("sync directory", key.as_str(), e))?;
        if created {
            let mut dir = parent;
            while dir != self.root {
                let Some(up) = dir.parent() else { break };
                sync_dir(up).await.map_err(|e| io_error("sync directory", key.as_str(), e))?;
                dir = up;
            }
        }
        Ok(())
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        let path = self.object_path(key);
        let key = key.clone();
        tokio::task::spawn_blocking(move || read_object(&path, &key, max_len)).await.map_err(
            |e| BackendError::new(BackendErrorKind::Other, "read panicked").with_source(e),
        )?
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        let path = self.object_path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(io_error("delete", key.as_str(), e)),
        }
        let parent = path.parent().unwrap_or(&self.root);
        match sync_dir(parent).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(io_error("sync directory", key.as_str(), e)),
        }
        // Remove directories this delete left empty, up to (not including) the root. Best
        // effort: a non-empty directory, or one a concurrent delete removed, stops the climb.
        let mut dir = parent;
        while dir != self.root && dir.starts_with(&self.root) {
            if tokio::fs::remove_dir(dir).await.is_err() {
                break;
            }
            match dir.parent() {
                Some(up) => dir = up,
                None => break,
            }
        }
        Ok(())
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        let root = self.root.clone();
        let owned_prefix = prefix.clone();
        let all = tokio::task::spawn_blocking(move || Self::list_sync(&root, &owned_prefix))
            .await
            .map_err(|e| {
                BackendError::new(BackendErrorKind::Other, "listing panicked").with_source(e)
            })?
            .map_err(|e| io_error("list", prefix.as_str(), e))?;
        // The cursor is the last key of the previous page: both resume strictly after a key.
        let start = match &from {
            ListFrom::Start => 0,
            ListFrom::After(key) => all.partition_point(|e| e.key <= *key),
            ListFrom::Cursor(c) => all.partition_point(|e| e.key.as_str() <= c.as_str()),
        };
        let rest = &all[start..];
        let entries: Vec<ListEntry> = rest.iter().take(self.page_size).cloned().collect();
        let next = if rest.len() > self.page_size {
            entries.last().map(|e| e.key.as_str().to_owned())
        } else {
            None
        };
        Ok(ListPage { entries, next })
    }
}

/// Opens `path` for writing, failing if it exists.
async fn create_new(path: &Path) -> io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new().write(true).create_new(true).open(path).await
}

/// `fsync`s a directory, so that entries added to or removed from it are durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        tokio::fs::File::open(dir).await?.sync_all().await
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing here; NTFS journals metadata.
        let _ = dir;
        Ok(())
    }
}

/// A unique temporary file name: process id, a counter and the time.
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{n:x}-{nanos:x}.tmp", std::process::id())
}

fn clean_temp_sync(temp: &Path, older_than: Duration) -> io::Result<usize> {
    let entries = match std::fs::read_dir(temp) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > older_than);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Missing file, or a path component that is a file: the key is not there.
fn is_not_found(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Reads the object file at `path` (see "Reads" in the [crate docs](crate)): `None` if there
/// is none, its bytes if it is a regular file of at most `max_len` bytes, an error otherwise.
fn read_object(path: &Path, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
    let file = match open_object(path) {
        Ok(file) => file,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) if is_symlink_refusal(&e) => return Err(not_regular(key, "a symbolic link")),
        Err(e) => return Err(io_error("get", key.as_str(), e)),
    };
    let meta = file.metadata().map_err(|e| io_error("get", key.as_str(), e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "a special file" };
        return Err(not_regular(key, what));
    }
    if meta.len() > max_len {
        return Err(BackendError::too_large(key, meta.len(), max_len));
    }
    // The file may grow after the fstat: read one byte past the limit at most, to tell.
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| io_error("get", key.as_str(), e))?;
    if data.len() as u64 > max_len {
        return Err(BackendError::too_large(key, data.len() as u64, max_len));
    }
    Ok(Some(Bytes::from(data)))
}

/// Opens an object file for reading: never through a symbolic link at its name
/// (`O_NOFOLLOW`), and without waiting for a writer if it is a FIFO (`O_NONBLOCK`, which
/// changes nothing for regular files).
#[cfg(unix)]
fn open_object(path: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
    // The flags are small positive constants: the cast to the C `int` open(2) takes is exact.
    std::fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path)
}

/// Opens an object file for reading (no FIFOs, and links are the administrator's, here).
#[cfg(not(unix))]
fn open_object(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// True for the error `O_NOFOLLOW` gives when the name is a symbolic link (`ELOOP`).
fn is_symlink_refusal(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        rustix::io::Errno::from_io_error(e) == Some(rustix::io::Errno::LOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Something other than a regular file at an object's path: not an object this backend
/// wrote, and not worth retrying.
fn not_regular(key: &Key, what: &str) -> BackendError {
    BackendError::permanent(format!(
        "filesystem object {key:?}: {what} is there, not a regular file"
    ))
}

/// Maps an I/O error to a backend error of the right kind.
fn io_error(op: &str, what: &str, e: io::Error) -> BackendError {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::AlreadyExists => BackendErrorKind::AlreadyExists,
        K::PermissionDenied | K::ReadOnlyFilesystem => BackendErrorKind::Permanent,
        K::StorageFull | K::QuotaExceeded | K::Interrupted | K::TimedOut | K::WouldBlock => {
            BackendErrorKind::Transient
        }
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, format!("filesystem {op} failed for {what:?}")).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds() {
        let k = |kind: io::ErrorKind| io_error("op", "k", io::Error::from(kind)).kind();
        assert_eq!(k(io::ErrorKind::AlreadyExists), BackendErrorKind::AlreadyExists);
        assert_eq!(k(io::ErrorKind::PermissionDenied), BackendErrorKind::Permanent);
        assert_eq!(k(io::ErrorKind::StorageFull), BackendErrorKind::Transient);
        assert_eq!(k(io::ErrorKind::Interrupted), BackendErrorKind::Transient);
        assert_eq!(k(io::ErrorKind::TimedOut), BackendErrorKind::Transient);
        assert_eq!(k(io::ErrorKind::WouldBlock), BackendErrorKind::Transient);
        assert_eq!(k(io::ErrorKind::InvalidData), BackendErrorKind::Other);
        // ENOSPC from the OS.
        #[cfg(target_os = "linux")]
        assert_eq!(
            io_error("op", "k", io::Error::from_raw_os_error(28)).kind(),
            BackendErrorKind::Transient
        );
    }

    #[test]
    fn temp_names_are_unique() {
        assert_ne!(temp_name(), temp_name());
    }
}
