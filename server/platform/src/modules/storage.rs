//! Module bytes at rest: content-addressed files under `<data dir>/modules/`, encrypted with
//! AES-256-GCM (soc2.yml `encryption_at_rest`). The key comes from the environment or a key file
//! in the data dir — never from the database.
//!
//! File format: `WAOSMOD1`, a 7-byte random nonce prefix, then the plaintext in 64 KiB chunks,
//! each sealed with the nonce `prefix ‖ chunk index (u32 BE) ‖ last-chunk flag` and the module's
//! SHA-256 as associated data (the STREAM construction): chunks cannot be reordered, truncated,
//! or moved to another module's file without decryption failing.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const MAGIC: &[u8; 8] = b"WAOSMOD1";
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

/// Errors of module storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The upload is larger than the configured cap.
    #[error("the module is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Reading or writing a file failed.
    #[error("module storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// A stored file does not decrypt: wrong key, or the file was altered.
    #[error("stored module {sha256} cannot be decrypted (wrong key or altered file)")]
    Corrupt { sha256: String },
}

/// An upload written to a temporary file, with its digest and size.
#[derive(Debug)]
pub struct Staged {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Encrypted, content-addressed module files.
#[derive(Clone)]
pub struct ModuleStore {
    root: PathBuf,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for ModuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl ModuleStore {
    pub fn new(root: PathBuf, key: &[u8; 32]) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(Self {
            root,
            cipher: Aes256Gcm::new(key.into()),
        })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        let shard = sha256.get(..2).unwrap_or("00");
        self.root.join(shard).join(format!("{sha256}.enc"))
    }

    /// Streams an upload to a temporary file, hashing as it goes; stops with
    /// [`StorageError::TooLarge`] as soon as it passes `limit`.
    pub async fn stage(
        &self,
        mut body: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<Staged, StorageError> {
        let path = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        // Created without an await, so the guard that removes it exists from the start: a request
        // cancelled at any await below (a client hanging up) leaves no file behind.
        let mut file = tokio::fs::File::from_std(std::fs::File::create(&path)?);
        let mut staged = Staged {
            path,
            sha256: String::new(),
            size: 0,
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = body.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limit {
                return Err(StorageError::TooLarge { limit });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).await?;
        }
        file.flush().await?;
        staged.sha256 = hex::encode(hasher.finalize());
        staged.size = size;
        Ok(staged)
    }

    /// Encrypts a staged upload into its content address (a no-op when the content is stored).
    pub async fn commit(&self, staged: &Staged) -> Result<(), StorageError> {
        let target = self.path_for(&staged.sha256);
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        let (source, store, sha) = (staged.path.clone(), self.clone(), staged.sha256.clone());
        tokio::task::spawn_blocking(move || store.encrypt_file(&source, &target, &sha))
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    }

    fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(prefix);
        n[7..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        n
    }

    /// Encrypts `source` into a partial file beside `target`, then renames it into place; the
    /// partial file is removed when anything fails.
    fn encrypt_file(&self, source: &Path, target: &Path, sha256: &str) -> Result<(), StorageError> {
        let parent = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent)?;
        let partial = parent.join(format!(".{}.partial", uuid::Uuid::new_v4()));
        let written = self
            .seal_into(source, &partial, sha256)
            .and_then(|()| std::fs::rename(&partial, target).map_err(StorageError::from));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    }

    fn seal_into(&self, source: &Path, partial: &Path, sha256: &str) -> Result<(), StorageError> {
        let mut input = std::fs::File::open(source)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(partial)?);
        let mut prefix = [0u8; 7];
        rand::rng().fill_bytes(&mut prefix);
        out.write_all(MAGIC)?;
        out.write_all(&prefix)?;
        let mut current = read_chunk(&mut input)?;
        let mut index = 0u32;
        loop {
            let next = if current.len() == CHUNK {
                read_chunk(&mut input)?
            } else {
                Vec::new()
            };
            let last = next.is_empty();
            let nonce = Self::nonce(&prefix, index, last);
            let sealed = self
                .cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &current,
                        aad: sha256.as_bytes(),
                    },
                )
                .map_err(|_| StorageError::Io(std::io::Error::other("encryption failed")))?;
            out.write_all(&sealed)?;
            if last {
                break;
            }
            current = next;
            index = index.checked_add(1).ok_or_else(|| {
                StorageError::Io(std::io::Error::other("module too large to encrypt"))
            })?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }

    /// The plaintext of a stored module.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path_for(sha256);
        let (store, sha) = (self.clone(), sha256.to_string());
        tokio::task::spawn_blocking(move || store.decrypt_file(&path, &sha))
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    }

    fn decrypt_file(&self, path: &Path, sha256: &str) -> Result<Vec<u8>, StorageError> {
        let corrupt = || StorageError::Corrupt {
            sha256: sha256.to_string(),
        };
        let data = std::fs::read(path)?;
        let body = data.strip_prefix(MAGIC.as_slice()).ok_or_else(corrupt)?;
        let (prefix, sealed) = body.split_at_checked(7).ok_or_else(corrupt)?;
        let prefix: [u8; 7] = prefix.try_into().map_err(|_| corrupt())?;
        let chunks: Vec<&[u8]> = sealed.chunks(CHUNK + TAG).collect();
        let mut plain = Vec::with_capacity(sealed.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| corrupt())?;
            let nonce = Self::nonce(&prefix, index, i + 1 == chunks.len());
            let part = self
                .cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: chunk,
                        aad: sha256.as_bytes(),
                    },
                )
                .map_err(|_| corrupt())?;
            plain.extend_from_slice(&part);
        }
        if chunks.is_empty() || hex::encode(Sha256::digest(&plain)) != sha256 {
            return Err(corrupt());
        }
        Ok(plain)
    }

    /// Deletes a stored module's file (callers check no other module uses the content).
    pub async fn remove(&self, sha256: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path_for(sha256)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

fn read_chunk(input: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(CHUNK);
    Read::by_ref(input)
        .take(CHUNK as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(len: usize) {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::new(dir.path().to_path_buf(), &[7u8; 32]).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let staged = store.stage(data.as_slice(), 10 << 20).await.unwrap();
        assert_eq!(staged.size, len as u64);
        store.commit(&staged).await.unwrap();
        let raw = std::fs::read(store.path_for(&staged.sha256)).unwrap();
        assert!(raw.len() >= len + 8 + 7 + 16);
        if len > 64 {
            assert!(
                !raw.windows(64).any(|w| w == &data[..64]),
                "the file does not hold the plaintext"
            );
        }
        assert_eq!(store.read(&staged.sha256).await.unwrap(), data);
    }

    #[tokio::test]
    async fn modules_of_any_size_round_trip_through_encryption() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            roundtrip(len).await;
        }
    }

    #[tokio::test]
    async fn an_altered_file_or_a_wrong_key_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::new(dir.path().to_path_buf(), &[7u8; 32]).unwrap();
        let staged = store
            .stage(&b"\0asm\x01\0\0\0 some module bytes"[..], 1024)
            .await
            .unwrap();
        store.commit(&staged).await.unwrap();
        let other = ModuleStore::new(dir.path().to_path_buf(), &[8u8; 32]).unwrap();
        assert!(matches!(
            other.read(&staged.sha256).await,
            Err(StorageError::Corrupt { .. })
        ));
        let path = store.path_for(&staged.sha256);
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&path, raw).unwrap();
        assert!(matches!(
            store.read(&staged.sha256).await,
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn an_upload_over_the_limit_stops_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::new(dir.path().to_path_buf(), &[7u8; 32]).unwrap();
        let err = store
            .stage(vec![0u8; 5000].as_slice(), 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { limit: 4096 }));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
