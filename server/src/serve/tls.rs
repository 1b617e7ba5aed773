//! HTTPS with rustls from tls.yml (ring, the provider the rest of the tree builds):
//!
//! - the certificate chain and key from `cert_file`/`key_file` (PEM; RSA, ECDSA or Ed25519 keys
//!   in PKCS#8, PKCS#1 or SEC1); a key that does not match the certificate, or a certificate that
//!   is expired or not yet valid, is refused naming the file;
//! - `min_version` 1.2 (TLS 1.2 and 1.3) or 1.3 (1.3 only);
//! - `cipher_suites`: the TLS 1.2 suites offered, by IANA name. TLS 1.3 suites (all AEAD) are
//!   offered as well unless the list names some of them, which then restricts 1.3 too;
//! - ALPN `h2` and `http/1.1`; the server's suite order wins;
//! - `client_auth`: a client certificate chaining to `ca_file`, required (`require_and_verify`)
//!   or checked when given (`verify_if_given`);
//! - [`Tls::reload`] swaps the certificate for new handshakes (SIGHUP, or the files changing);
//!   open connections keep theirs, and a bad new certificate leaves the old one in place.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use platform::config::tls::{Tls as TlsConfig, TlsVersion, VerifyMode};
use rustls::{
    RootCertStore, ServerConfig, SupportedCipherSuite,
    crypto::{CryptoProvider, ring},
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};

/// Why TLS cannot be set up (start-up, `config check`, or a reload).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("tls.cipher_suites: {0}")]
    Suites(String),
    #[error("tls: {0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The rustls suite named `name` (IANA names, and the spec's short CHACHA20 names).
pub fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    use ring::cipher_suite as s;
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => s::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => s::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => s::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => s::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => s::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            s::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// The suites offered for `names` (see the module docs).
fn suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut listed = Vec::new();
    for name in names {
        let suite = suite_by_name(name)
            .ok_or_else(|| TlsError::Suites(format!("unknown or unsupported suite \"{name}\"")))?;
        if !listed.contains(&suite) {
            listed.push(suite);
        }
    }
    let names_tls13 = listed.iter().any(|s| s.tls13().is_some());
    let mut out: Vec<SupportedCipherSuite> = if names_tls13 {
        Vec::new()
    } else {
        ring::ALL_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| s.tls13().is_some())
            .collect()
    };
    out.extend(listed);
    Ok(out)
}

/// What the certificate in force says (for `admin status`, `/readyz` and the logs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub not_after: chrono::DateTime<chrono::Utc>,
}

impl CertInfo {
    /// Whole days until it expires (negative once expired).
    pub fn days_left(&self, now: chrono::DateTime<chrono::Utc>) -> i64 {
        (self.not_after - now).num_days()
    }
}

/// Loads and checks the chain and key; the certified key and what its leaf says.
pub fn load_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(CertifiedKey, CertInfo), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error(cert_file, format!("cannot read the certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_file, format!("not a PEM certificate: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(file_error(cert_file, "holds no PEM certificate"));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| file_error(cert_file, format!("the certificate cannot be parsed: {e}")))?;
    let validity = parsed.validity();
    let at = |t: &x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
    };
    let info = CertInfo {
        subject: parsed.subject().to_string(),
        not_after: at(&validity.not_after),
    };
    if info.not_after < now {
        return Err(file_error(
            cert_file,
            format!(
                "the certificate expired on {}",
                info.not_after.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    let not_before = at(&validity.not_before);
    if not_before > now {
        return Err(file_error(
            cert_file,
            format!(
                "the certificate is not valid before {}",
                not_before.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| file_error(key_file, format!("no usable PEM private key: {e}")))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(key_file, format!("the key cannot be used: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        file_error(
            key_file,
            format!(
                "the key does not match the certificate in {} ({e})",
                cert_file.display()
            ),
        )
    })?;
    Ok((certified, info))
}

/// The certificate for new handshakes, swapped by [`Tls::reload`].
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI is needed: clients connecting by address send none.
        Some(
            self.0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The HTTPS side of `serve`.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<Current>,
    info: RwLock<CertInfo>,
    provider: Arc<CryptoProvider>,
    cert_file: PathBuf,
    key_file: PathBuf,
    /// What `admin status` and `/readyz` report.
    pub summary: TlsSummary,
    /// tls.yml `client_auth.map_to_user`: a verified certificate's CN signs in to the API.
    pub maps_users: bool,
}

/// The username a verified client certificate names (its subject CN), for the REST API; set
/// by the accept loop only when `client_auth.map_to_user` is on. The browser sends it by itself
/// like a cookie, so the CSRF layer treats it like one.
#[derive(Debug, Clone)]
pub struct CertificateUser(pub String);

/// The subject CN of a DER certificate.
pub fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    (!cn.is_empty()).then(|| cn.to_string())
}

/// The TLS settings in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsSummary {
    pub min_version: &'static str,
    pub cipher_suites: Vec<String>,
    pub client_auth: &'static str,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.cert_file)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Builds the server side of tls.yml, checking every file.
    pub fn new(config: &TlsConfig, now: chrono::DateTime<chrono::Utc>) -> Result<Self, TlsError> {
        let mut provider = ring::default_provider();
        provider.cipher_suites = suites(&config.cipher_suites)?;
        let provider = Arc::new(provider);
        let versions: &[&'static rustls::SupportedProtocolVersion] = match config.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let (key, info) = load_key(&config.cert_file, &config.key_file, &provider, now)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::Config(format!("{e}")))?;
        let client_auth = &config.client_auth;
        let mut server = if client_auth.enabled {
            let ca = &client_auth.ca_file;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .map_err(|e| file_error(ca, format!("cannot read the client CA: {e}")))?
            {
                let cert =
                    cert.map_err(|e| file_error(ca, format!("not a PEM certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| file_error(ca, format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(file_error(ca, "holds no PEM certificate"));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match client_auth.verify_mode {
                VerifyMode::RequireAndVerify => verifier,
                VerifyMode::VerifyIfGiven => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| file_error(ca, format!("cannot verify clients with it: {e}")))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(current.clone())
        } else {
            builder
                .with_no_client_auth()
                .with_cert_resolver(current.clone())
        };
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        server.ignore_client_order = true;
        let summary = TlsSummary {
            min_version: match config.min_version {
                TlsVersion::Tls12 => "1.2",
                TlsVersion::Tls13 => "1.3",
            },
            cipher_suites: provider
                .cipher_suites
                .iter()
                .filter_map(|s| s.suite().as_str().map(str::to_string))
                .collect(),
            client_auth: match (client_auth.enabled, client_auth.verify_mode) {
                (false, _) => "off",
                (true, VerifyMode::RequireAndVerify) => "require_and_verify",
                (true, VerifyMode::VerifyIfGiven) => "verify_if_given",
            },
        };
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            current,
            info: RwLock::new(info),
            provider,
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            summary,
            maps_users: client_auth.enabled && client_auth.map_to_user.is_some(),
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// The certificate in force.
    pub fn info(&self) -> CertInfo {
        self.info
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Loads the files again and, when they are good, serves the new certificate to new
    /// handshakes; otherwise the old one stays and the error says why.
    pub fn reload(&self, now: chrono::DateTime<chrono::Utc>) -> Result<CertInfo, TlsError> {
        let (key, info) = load_key(&self.cert_file, &self.key_file, &self.provider, now)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        *self
            .info
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = info.clone();
        Ok(info)
    }

    /// The files' modification times, to notice a renewal written in place.
    pub fn stamp(&self) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.cert_file)?, m(&self.key_file)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_tls12_suites_keep_tls13_and_tls13_names_restrict_it() {
        let names = |v: Vec<SupportedCipherSuite>| -> Vec<&'static str> {
            v.iter().filter_map(|s| s.suite().as_str()).collect()
        };
        let spec = suites(&[
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
        ])
        .unwrap();
        let spec = names(spec);
        assert!(spec.contains(&"TLS13_AES_128_GCM_SHA256"));
        assert!(spec.contains(&"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"));
        assert!(!spec.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        let only = names(suites(&["TLS_AES_256_GCM_SHA384".into()]).unwrap());
        assert_eq!(only, ["TLS13_AES_256_GCM_SHA384"]);
        assert!(suites(&["TLS_RSA_WITH_RC4_128_SHA".into()]).is_err());
    }
}
