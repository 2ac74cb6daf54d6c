//! One `sync` at a time: an exclusive lock on a file beside the store. The operating system
//! releases it when the holder exits, however it exits, so a crashed run never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::Failure;

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct SyncLock {
    _file: File,
    path: PathBuf,
}

impl SyncLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file for a store: `connector.db` → `connector.db.lock`.
pub fn lock_path(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock or says at once that another run holds it (exit 4).
pub fn acquire(store_path: &Path) -> anyhow::Result<SyncLock> {
    let path = lock_path(store_path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(SyncLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(Failure::Locked(format!(
            "another `connector sync` is running (it holds {}); this run skipped",
            path.display()
        ))
        .into()),
        Err(TryLockError::Error(e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("connector.db");
        let first = acquire(&store).unwrap();
        let second = acquire(&store).unwrap_err();
        assert!(matches!(
            second.downcast_ref::<Failure>(),
            Some(Failure::Locked(_))
        ));
        drop(first);
        assert!(acquire(&store).is_ok());
    }
}
