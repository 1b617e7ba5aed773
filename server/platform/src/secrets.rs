//! Secrets the platform keeps in its data dir when the config leaves them out.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;

/// The file holding a generated JWT secret.
pub const JWT_SECRET_FILE: &str = "jwt_secret";

/// Errors reading or writing a kept secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret file exists but cannot be read, or cannot be written.
    #[error("cannot use the secret file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// The secret file exists but holds too little.
    #[error("the secret file {path} holds fewer than 32 bytes; delete it to generate a new one")]
    TooShort { path: PathBuf },
}

/// The JWT secret from the config, or the one generated into the data dir (returned path when new).
pub fn jwt_secret(
    config: &Config,
    data_dir: &Path,
) -> Result<(SecretString, Option<PathBuf>), SecretError> {
    if let Some(secret) = &config.security.auth.jwt.secret {
        return Ok((secret.clone(), None));
    }
    let path = data_dir.join(JWT_SECRET_FILE);
    let fail = |e: std::io::Error| SecretError::File {
        path: path.clone(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = SecretString::from(text.trim().to_string());
            if secret.expose_secret().len() < 32 {
                return Err(SecretError::TooShort { path });
            }
            Ok((secret, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 48] = rand::random();
            let text = hex::encode(bytes);
            write_private(&path, &text).map_err(fail)?;
            Ok((SecretString::from(text), Some(path)))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Creates `path` (which must not exist) readable and writable by its owner only, with `text`.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The file holding a generated module-storage key.
pub const STORAGE_KEY_FILE: &str = "storage_key";
/// The environment variable that supplies the module-storage key (64 hex characters).
pub const STORAGE_KEY_ENV: &str = "WASM_AS_OS_STORAGE_KEY";

/// The 256-bit key that encrypts stored modules: from `WASM_AS_OS_STORAGE_KEY`, else from the key
/// file in the data dir (generated when missing; returned path when new). Never in the database.
pub fn storage_key(data_dir: &Path) -> Result<([u8; 32], Option<PathBuf>), SecretError> {
    data_dir_key(data_dir, STORAGE_KEY_FILE, STORAGE_KEY_ENV, true)
}

/// The file holding the generated key of the audit hash chains.
pub const AUDIT_CHAIN_KEY_FILE: &str = "audit_chain_key";
/// The environment variable that supplies the audit chain key (64 hex characters); replicas
/// sharing one PostgreSQL database must share it.
pub const AUDIT_CHAIN_KEY_ENV: &str = "WASM_AS_OS_AUDIT_CHAIN_KEY";

/// The 256-bit key of the audit hash chains (HMAC-SHA256): from `WASM_AS_OS_AUDIT_CHAIN_KEY`,
/// else from `<data dir>/audit_chain_key` (0600), generated when missing if `create`. Kept out of
/// the database, so whoever can write the database cannot re-chain altered events.
pub fn audit_chain_key(
    data_dir: &Path,
    create: bool,
) -> Result<([u8; 32], Option<PathBuf>), SecretError> {
    data_dir_key(data_dir, AUDIT_CHAIN_KEY_FILE, AUDIT_CHAIN_KEY_ENV, create)
}

/// The file holding the generated key that wraps the audit subjects' keys.
pub const AUDIT_SUBJECT_KEY_FILE: &str = "audit_subject_key";
/// The environment variable that supplies it (64 hex characters); replicas must share it.
pub const AUDIT_SUBJECT_KEY_ENV: &str = "WASM_AS_OS_AUDIT_SUBJECT_KEY";

/// The 256-bit key (AES-256-GCM) that wraps each audit subject's key in `audit_subjects`: from
/// `WASM_AS_OS_AUDIT_SUBJECT_KEY`, else `<data dir>/audit_subject_key` (0600), generated when
/// missing if `create`. Outside the database, so a dump cannot test guesses against the digests
/// of personal values.
pub fn audit_subject_key(
    data_dir: &Path,
    create: bool,
) -> Result<([u8; 32], Option<PathBuf>), SecretError> {
    data_dir_key(
        data_dir,
        AUDIT_SUBJECT_KEY_FILE,
        AUDIT_SUBJECT_KEY_ENV,
        create,
    )
}

/// The file holding the key of the erased-email hashes.
pub const ANONYMISATION_KEY_FILE: &str = "anonymisation_key";
/// The environment variable that supplies it (64 hex characters); replicas must share it.
pub const ANONYMISATION_KEY_ENV: &str = "WASM_AS_OS_ANONYMISATION_KEY";

/// The 256-bit HMAC key of `erased_emails` (privacy.yml: email "keep hash for uniqueness"):
/// from `WASM_AS_OS_ANONYMISATION_KEY`, else `<data dir>/anonymisation_key`, generated when
/// missing. Outside the database, so the hashes cannot be tested against guessed addresses.
pub fn anonymisation_key(data_dir: &Path) -> Result<([u8; 32], Option<PathBuf>), SecretError> {
    data_dir_key(
        data_dir,
        ANONYMISATION_KEY_FILE,
        ANONYMISATION_KEY_ENV,
        true,
    )
}

/// A 256-bit key from the environment variable `env`, else from `file` in the data dir
/// (generated when missing and `create`; returned path when new).
fn data_dir_key(
    data_dir: &Path,
    file: &str,
    env: &str,
    create: bool,
) -> Result<([u8; 32], Option<PathBuf>), SecretError> {
    let parse = |text: &str, path: &Path| -> Result<[u8; 32], SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::File {
            path: path.to_path_buf(),
            reason: "must hold 64 hex characters".into(),
        })?;
        bytes.try_into().map_err(|_| SecretError::File {
            path: path.to_path_buf(),
            reason: "must hold 64 hex characters (32 bytes)".into(),
        })
    };
    if let Ok(text) = std::env::var(env) {
        return Ok((parse(&text, Path::new(env))?, None));
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((parse(&text, &path)?, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key: [u8; 32] = rand::random();
            write_private(&path, &hex::encode(key)).map_err(|e| SecretError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok((key, Some(path)))
        }
        Err(e) => Err(SecretError::File {
            path,
            reason: e.to_string(),
        }),
    }
}
