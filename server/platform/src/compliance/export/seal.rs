//! Sealing an export with `age` (privacy.yml `data_export.encryption`): to an X25519 recipient the
//! person pastes (`age1…`, as `age-keygen` prints it) or to a passphrase (scrypt). The result is a
//! binary age file that `age -d -i key.txt` or `age -d` (asking for the passphrase) opens.

use std::{io::Write, str::FromStr};

use secrecy::{ExposeSecret, SecretString};

/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 12;
/// The longest recipient or passphrase read (both are far shorter).
const MAX_INPUT: usize = 1024;

/// How an export is protected.
#[derive(Clone)]
pub enum Seal {
    /// Not encrypted (only where privacy.yml does not ask for encryption).
    None,
    /// To this age X25519 recipient.
    Recipient(age::x25519::Recipient),
    /// To this passphrase; kept in memory only while the export is prepared.
    Passphrase(SecretString),
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Seal {
    /// Reads the request's choice: a recipient, a passphrase, or neither. Each message names what
    /// is wrong, never the value.
    pub fn parse(
        recipient: Option<&str>,
        passphrase: Option<SecretString>,
    ) -> Result<Self, (&'static str, String)> {
        let recipient = recipient.map(str::trim).filter(|r| !r.is_empty());
        let passphrase = passphrase.filter(|p| !p.expose_secret().is_empty());
        match (recipient, passphrase) {
            (Some(_), Some(_)) => Err((
                "recipient",
                "give an age recipient or a passphrase, not both".into(),
            )),
            (Some(r), None) => {
                if r.len() > MAX_INPUT {
                    return Err(("recipient", "is too long for an age recipient".into()));
                }
                age::x25519::Recipient::from_str(r)
                    .map(Self::Recipient)
                    .map_err(|_| {
                        (
                            "recipient",
                            "is not an age X25519 recipient (a line starting with age1, as age-keygen prints it)".into(),
                        )
                    })
            }
            (None, Some(p)) => {
                let chars = p.expose_secret().chars().count();
                if chars < MIN_PASSPHRASE {
                    Err((
                        "passphrase",
                        format!("must be at least {MIN_PASSPHRASE} characters"),
                    ))
                } else if p.expose_secret().len() > MAX_INPUT {
                    Err(("passphrase", "is too long".into()))
                } else {
                    Ok(Self::Passphrase(p))
                }
            }
            (None, None) => Ok(Self::None),
        }
    }

    /// `none`, `recipient` or `passphrase`, as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Recipient(_) => "recipient",
            Self::Passphrase(_) => "passphrase",
        }
    }

    /// Copies `plain` into `sealed`, encrypted; `Seal::None` copies it as it is.
    pub(super) fn apply(
        &self,
        mut plain: impl std::io::Read,
        sealed: impl Write,
    ) -> std::io::Result<()> {
        let encryptor = match self {
            Self::None => {
                let mut out = sealed;
                std::io::copy(&mut plain, &mut out)?;
                return out.flush();
            }
            Self::Recipient(r) => {
                age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
                    .map_err(std::io::Error::other)?
            }
            Self::Passphrase(p) => age::Encryptor::with_user_passphrase(
                age::secrecy::SecretString::from(p.expose_secret().to_string()),
            ),
        };
        let mut writer = encryptor.wrap_output(sealed)?;
        std::io::copy(&mut plain, &mut writer)?;
        writer.finish()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_must_be_an_x25519_age_key() {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        assert!(matches!(
            Seal::parse(Some(&public), None),
            Ok(Seal::Recipient(_))
        ));
        for bad in ["age1notakey", "ssh-ed25519 AAAA", "AGE-SECRET-KEY-1XYZ"] {
            let (field, message) = Seal::parse(Some(bad), None).unwrap_err();
            assert_eq!(field, "recipient");
            assert!(
                !message.contains(bad),
                "the message does not echo the input"
            );
        }
    }

    #[test]
    fn a_passphrase_has_a_minimum_length_and_excludes_a_recipient() {
        let short = SecretString::from("short");
        assert_eq!(Seal::parse(None, Some(short)).unwrap_err().0, "passphrase");
        let long = SecretString::from("correct horse battery");
        assert_eq!(
            Seal::parse(None, Some(long.clone())).unwrap().kind(),
            "passphrase"
        );
        let public = age::x25519::Identity::generate().to_public().to_string();
        assert_eq!(
            Seal::parse(Some(&public), Some(long)).unwrap_err().0,
            "recipient"
        );
        assert_eq!(Seal::parse(Some("  "), None).unwrap().kind(), "none");
    }

    #[test]
    fn a_sealed_file_opens_with_the_recipients_identity_only() {
        let identity = age::x25519::Identity::generate();
        let seal = Seal::Recipient(identity.to_public());
        let mut sealed = Vec::new();
        seal.apply(&b"personal data"[..], &mut sealed).unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1"));
        assert!(!sealed.windows(8).any(|w| w == b"personal"));
        let plain = age::decrypt(&identity, &sealed).unwrap();
        assert_eq!(plain, b"personal data");
        let stranger = age::x25519::Identity::generate();
        assert!(age::decrypt(&stranger, &sealed).is_err());
    }
}
