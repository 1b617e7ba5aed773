//! Opening an `allowed_paths` directory without being redirected.
//!
//! A preopen names a host directory that someone else might have prepared: another local user
//! can create `/tmp/wasm-data` as a symbolic link into the service's data dir (its secrets and
//! compiled code) before the service first uses it, or swap it for one later. So a preopen is
//! opened one component at a time from `/`, never following a symbolic link (`O_NOFOLLOW`), and
//! the directory reached must be owned by the user the service runs as. The run then gets that
//! very directory (wasmtime-wasi reopens it through `/proc/self/fd`, which names the open
//! directory, not a path that could be swapped in between).

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a preopen directory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreopenError {
    /// Not an absolute, normalised path (`..` is refused: it could step out through a link).
    #[error("{0} is not an absolute path without `..`")]
    NotAbsolute(String),
    /// The path, or a directory on the way to it, is a symbolic link.
    #[error("{path} is a symbolic link (at {link})")]
    Symlink { path: String, link: String },
    /// The path exists but is not a directory.
    #[error("{0} is not a directory")]
    NotDirectory(String),
    /// The directory belongs to another user than the one the service runs as.
    #[error("{path} is owned by uid {owner}, not by the service user (uid {service})")]
    NotOwned {
        path: String,
        owner: u32,
        service: u32,
    },
    /// It could not be opened (does not exist, no permission, …).
    #[error("{path} cannot be opened: {reason}")]
    Unusable { path: String, reason: String },
}

/// An open preopen directory, checked.
pub(crate) struct OpenDir(OwnedFd);

impl OpenDir {
    /// A path naming exactly this open directory (Linux `/proc/self/fd/N`), for
    /// wasmtime-wasi's `preopened_dir`; valid while `self` lives.
    pub(crate) fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.0.as_raw_fd())
    }
}

/// Checks `path` as a preopen (see the module docs) without keeping it open: for `config check`
/// and start-up.
pub fn check_preopen(path: &Path) -> Result<(), PreopenError> {
    open(path).map(drop)
}

/// Opens `path` as a preopen: absolute, no symbolic link anywhere on the way, a directory owned
/// by the service user.
pub(crate) fn open(path: &Path) -> Result<OpenDir, PreopenError> {
    let shown = || path.display().to_string();
    let unusable = |e: Errno| PreopenError::Unusable {
        path: shown(),
        reason: std::io::Error::from(e).to_string(),
    };
    if !path.is_absolute() {
        return Err(PreopenError::NotAbsolute(shown()));
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(CWD, "/", flags, Mode::empty()).map_err(unusable)?;
    let mut walked = std::path::PathBuf::from("/");
    for component in path.components() {
        let name: &OsStr = match component {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => name,
            Component::ParentDir | Component::Prefix(_) => {
                return Err(PreopenError::NotAbsolute(shown()));
            }
        };
        walked.push(name);
        dir = match rustix::fs::openat(&dir, name, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(next) => next,
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW);
                return Err(match stat.map(|s| FileType::from_raw_mode(s.st_mode)) {
                    Ok(FileType::Symlink) => PreopenError::Symlink {
                        path: shown(),
                        link: walked.display().to_string(),
                    },
                    Ok(_) => PreopenError::NotDirectory(walked.display().to_string()),
                    Err(_) => unusable(e),
                });
            }
            Err(e) => return Err(unusable(e)),
        };
    }
    let stat = rustix::fs::fstat(&dir).map_err(unusable)?;
    let service = rustix::process::geteuid().as_raw();
    if stat.st_uid != service {
        return Err(PreopenError::NotOwned {
            path: shown(),
            owner: stat.st_uid,
            service,
        });
    }
    Ok(OpenDir(dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_the_service_user_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        check_preopen(dir.path()).unwrap();
        let opened = open(dir.path()).unwrap();
        let through_proc = std::fs::canonicalize(opened.proc_path()).unwrap();
        assert_eq!(through_proc, std::fs::canonicalize(dir.path()).unwrap());
    }

    #[test]
    fn a_symbolic_link_is_refused_at_the_end_or_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("inner")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for path in [link.clone(), link.join("inner")] {
            match check_preopen(&path) {
                Err(PreopenError::Symlink { link: at, .. }) => {
                    assert_eq!(at, link.display().to_string());
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn relative_paths_dot_dot_files_and_missing_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            check_preopen(Path::new("relative/dir")),
            Err(PreopenError::NotAbsolute(_))
        ));
        assert!(matches!(
            check_preopen(&dir.path().join("..").join("x")),
            Err(PreopenError::NotAbsolute(_))
        ));
        assert!(matches!(
            check_preopen(&file),
            Err(PreopenError::NotDirectory(_))
        ));
        assert!(matches!(
            check_preopen(&dir.path().join("missing")),
            Err(PreopenError::Unusable { .. })
        ));
    }
}
