//! JWTs per security.yml's `jwt` section: HS256 only, with `kid`, `iss`, `aud`, `exp`, `nbf` and a
//! token type, so an access token can never be used as a refresh token or the reverse.

use chrono::{DateTime, Utc};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::security::Jwt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub typ: TokenType,
    /// The user's token version when issued; bumping it (disable, password change) voids the token.
    pub ver: i32,
    /// The refresh-token family: the sign-in both kinds of token belong to. Access tokens are
    /// refused once their family is revoked (logout, refresh-token reuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

/// Why a token was refused (shown to clients only as "invalid token").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("could not sign the token: {0}")]
    Sign(String),
}

/// Signs and verifies tokens with the configured secret.
#[derive(Clone)]
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    /// Access tokens whose signature and claims were checked, by their exact text: a repeated
    /// token skips the HMAC and the JSON (its time window and type are still checked each time).
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Claims>>>,
}

/// Most verified access tokens remembered.
const VERIFIED_TOKENS: usize = 10_000;

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &SecretString, jwt: &Jwt) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // The key id names the secret without revealing it: a short hash of it.
        let kid =
            hex::encode(&Sha256::digest([b"wasm-as-os kid:".as_slice(), bytes].concat())[..8]);
        Self {
            kid,
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            verified: Default::default(),
        }
    }

    /// [`Self::verify`] for access tokens, remembering the ones that passed.
    pub fn verify_access(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(token).cloned());
        if let Some(claims) = known {
            check_window(&claims, now)?;
            return Ok(claims);
        }
        let claims = self.verify(token, TokenType::Access, now)?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_TOKENS {
                let now = now.timestamp();
                m.retain(|_, c| c.exp > now);
                if m.len() >= VERIFIED_TOKENS {
                    m.clear();
                }
            }
            m.insert(token.to_string(), claims.clone());
        }
        Ok(claims)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        typ: TokenType,
        user_id: &str,
        username: &str,
        version: i32,
        jti: &str,
        family: Option<&str>,
        now: DateTime<Utc>,
        lifetime: std::time::Duration,
    ) -> Result<String, TokenError> {
        let lifetime =
            chrono::Duration::from_std(lifetime).map_err(|e| TokenError::Sign(e.to_string()))?;
        let claims = Claims {
            sub: user_id.to_string(),
            name: username.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + lifetime).timestamp(),
            jti: jti.to_string(),
            typ,
            ver: version,
            fam: family.map(str::to_string),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding).map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// Verifies signature (HS256 only), `kid`, `exp`, `nbf`, `iss`, `aud` and the token type at `now`.
    pub fn verify(
        &self,
        token: &str,
        expected: TokenType,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.validate_exp = false; // checked below against the injected clock
        validation.leeway = 0;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        check_window(&claims, now)?;
        if claims.typ != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }
}

/// `exp` and `nbf` against `now`.
fn check_window(claims: &Claims, now: DateTime<Utc>) -> Result<(), TokenError> {
    let now = now.timestamp();
    if claims.exp <= now {
        return Err(TokenError::Invalid("token has expired".into()));
    }
    if claims.nbf > now {
        return Err(TokenError::Invalid("token is not valid yet".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn jwt(issuer: &str, audience: &str) -> Jwt {
        Jwt {
            secret: None,
            expiry: "24h".parse().unwrap(),
            refresh_expiry: "168h".parse().unwrap(),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef!!"),
            &jwt("wasm-as-os", "wasm-users"),
        )
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn access(keys: &TokenKeys) -> String {
        keys.issue(
            TokenType::Access,
            "u1",
            "alice",
            0,
            "j1",
            None,
            t0(),
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn a_fresh_access_token_verifies_with_its_claims() {
        let keys = keys();
        let claims = keys
            .verify(&access(&keys), TokenType::Access, t0())
            .unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.name.as_str(), claims.typ),
            ("u1", "alice", TokenType::Access)
        );
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let keys = keys();
        let later = t0() + chrono::Duration::seconds(3600);
        assert_eq!(
            keys.verify(&access(&keys), TokenType::Access, later),
            Err(TokenError::Invalid("token has expired".into()))
        );
    }

    #[test]
    fn a_remembered_access_token_still_expires_and_a_refresh_token_is_never_one() {
        let keys = keys();
        let token = access(&keys);
        assert_eq!(keys.verify_access(&token, t0()).unwrap().sub, "u1");
        assert_eq!(
            keys.verify_access(&token, t0()).unwrap().sub,
            "u1",
            "from memory"
        );
        let later = t0() + chrono::Duration::seconds(3600);
        assert_eq!(
            keys.verify_access(&token, later),
            Err(TokenError::Invalid("token has expired".into()))
        );
        let refresh = keys
            .issue(
                TokenType::Refresh,
                "u1",
                "dev",
                0,
                "j2",
                Some("f"),
                t0(),
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            keys.verify_access(&refresh, t0()),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            keys.verify_access(&refresh, t0()),
            Err(TokenError::WrongType),
            "a refused token is not remembered"
        );
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(
            keys.verify_access(&tampered, t0()).is_err(),
            "only the exact text is remembered"
        );
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_rejected() {
        let other_aud = TokenKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef!!"),
            &jwt("wasm-as-os", "someone-else"),
        );
        let other_iss = TokenKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef!!"),
            &jwt("evil", "wasm-users"),
        );
        let keys = keys();
        assert!(matches!(
            keys.verify(&access(&other_aud), TokenType::Access, t0()),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            keys.verify(&access(&other_iss), TokenType::Access, t0()),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_rejected() {
        let keys = keys();
        let token = access(&keys);
        let mut parts: Vec<&str> = token.split('.').collect();
        let header = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, keys.kid());
        let encoded = base64url(header.as_bytes());
        parts[0] = &encoded;
        let forged = format!("{}.{}.", parts[0], parts[1]);
        assert!(keys.verify(&forged, TokenType::Access, t0()).is_err());
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let keys = keys();
        let token = access(&keys);
        let parts: Vec<&str> = token.split('.').collect();
        let payload = base64url(br#"{"sub":"admin","name":"admin","iss":"wasm-as-os","aud":"wasm-users","iat":0,"nbf":0,"exp":9999999999,"jti":"x","typ":"access","ver":0}"#);
        let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert!(matches!(
            keys.verify(&forged, TokenType::Access, t0()),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let other = TokenKeys::new(
            &SecretString::from("another-secret-another-secret-1234"),
            &jwt("wasm-as-os", "wasm-users"),
        );
        assert_eq!(
            keys().verify(&access(&other), TokenType::Access, t0()),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let keys = keys();
        let refresh = keys
            .issue(
                TokenType::Refresh,
                "u1",
                "alice",
                0,
                "j2",
                Some("f1"),
                t0(),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            keys.verify(&refresh, TokenType::Access, t0()),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            keys.verify(&refresh, TokenType::Refresh, t0())
                .unwrap()
                .fam
                .as_deref(),
            Some("f1")
        );
    }

    fn base64url(bytes: &[u8]) -> String {
        const TABLE: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
