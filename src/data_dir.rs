//! The data directory's permissions: it holds event payloads, response
//! excerpts and the keys, so only hookd's user may read it (SPEC §14).
//!
//! Invariant: the directory is 0700 and hookd's files in it are 0600
//! (`hookd.db` and SQLite's `-wal`/`-shm`, which SQLite creates with the
//! database file's mode, `encryption_key`, `management_api_key`,
//! `hookd.lock`). A directory or file of ours left more open (by an older
//! hookd, or made by hand) is tightened at start, with a warning; one we
//! may not change (another user's) is left as it is, with a warning.

use std::fs::OpenOptions;
use std::path::Path;

/// The files hookd keeps in its data directory.
const OWN_FILES: [&str; 6] = [
    "hookd.db",
    "hookd.db-wal",
    "hookd.db-shm",
    "encryption_key",
    "management_api_key",
    "hookd.lock",
];

/// Creates `dir` (and missing parents) with mode 0700, or tightens an
/// existing one and hookd's files in it.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        tighten(dir, 0o700);
        for name in OWN_FILES {
            let path = dir.join(name);
            if path.exists() {
                tighten(&path, 0o600);
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Removes group and other permissions from `path` when it has any.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "tightened the permissions of hookd's data: other local users could read it"
        ),
        Err(e) => tracing::warn!(
            path = %path.display(),
            mode = format!("{current:o}"),
            error = %e,
            "hookd's data is readable by other local users and its permissions could not be \
             tightened: restrict them (0700 for the directory, 0600 for its files)"
        ),
    }
}

/// Opens `path` for writing, creating it with mode 0600 when missing
/// (never truncating): the lock file, and the database before SQLite opens
/// it, so that its journal files inherit the mode.
pub fn open_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        open_private_file(&dir.join("hookd.db")).unwrap();
        assert_eq!(mode(&dir.join("hookd.db")), 0o600);
    }

    #[test]
    fn an_open_data_directory_and_its_files_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("hookd.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let other = dir.join("notes.txt");
        std::fs::write(&other, b"").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();

        prepare(&dir).unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        // Files hookd does not own are not its business.
        assert_eq!(mode(&other), 0o644);
    }
}
