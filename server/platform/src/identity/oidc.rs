//! "Sign in with Google": the OpenID Connect authorization code flow, for Google or any OpenID
//! provider named by security.yml's `issuer` (an addition to the spec).
//!
//! - **Discovery**: `<issuer>/.well-known/openid-configuration` gives the endpoints and the JWKS
//!   address; its `issuer` must be the configured one. Fetched on first use (and checked at start
//!   and by `config check`), then kept.
//! - **Start** ([`OidcClient::begin`]): a random `state`, PKCE S256 and an OpenID `nonce`. The
//!   caller keeps the returned [`PendingLogin`] in the browser session; only `state` is in it. The
//!   PKCE verifier and the nonce are derived from `state` with a key derived from the server's
//!   secret, so nothing secret is stored and both are bound to the session holding that `state`.
//! - **Callback** ([`OidcClient::complete`]): the `state` must match one pending in this session,
//!   which is taken out (single use), and be under ten minutes old. The code is exchanged with the
//!   PKCE verifier and the client secret, then the ID token is verified: signature against the
//!   provider's JWKS (refetched once when a token names an unknown `kid`, so key rotation is
//!   picked up, while a `kid` that stayed unknown is remembered and refused without fetching
//!   again), `iss`, `aud` (and `azp` when there are several audiences), `exp` and `iat` against
//!   the platform's clock, the `nonce`, and `email_verified`.
//!
//! What comes out is a [`VerifiedIdentity`]: the provider's subject, never matched by name. Codes,
//! tokens and the client secret never leave this module, and no error carries them.

use std::{
    collections::VecDeque,
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    },
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::config::security::GoogleConfig;

/// The provider name Google sign-ins are recorded under (audit events, linked identities).
pub const GOOGLE: &str = "google";

/// How long a started sign-in may take before its callback is refused.
pub const FLOW_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// Most sign-ins one browser session may have started and not finished (several tabs).
pub const PENDING_PER_SESSION: usize = 3;

/// Clock skew allowed on `exp` and `iat`, in seconds.
const LEEWAY: i64 = 60;

/// An ID token issued longer ago than this is refused (it cannot be the answer to this sign-in).
const MAX_TOKEN_AGE: i64 = 3600;

/// How long a fetched JWKS is used before it is fetched again on the next sign-in.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);

/// Most `kid`s remembered as unknown after a refetch.
const UNKNOWN_KIDS: usize = 32;

/// Largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// What a browser session keeps between the start of a sign-in and its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider (it travels in URLs; not a secret).
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub purpose: Purpose,
}

/// Why the sign-in was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Sign in, then go to `next` (a local path).
    SignIn { next: String },
    /// Link the identity to this signed-in account (from the account page).
    Link { user_id: String },
}

/// The callback's query parameters, as the provider sent them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub provider: String,
    pub subject: String,
    /// Lowercased; verified by the provider.
    pub email: String,
    pub name: Option<String>,
}

/// Why a Google sign-in did not go through. Messages are fixed text (never the provider's, a code
/// or a token), so pages and events can show them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("sign-in with Google is not turned on on this server")]
    Disabled,
    #[error("Google cannot be reached right now; try again later or sign in another way")]
    Unavailable,
    #[error("Google did not sign you in ({0})")]
    ProviderRefused(String),
    #[error("Google's answer carried no authorization code")]
    MissingCode,
    #[error(
        "this sign-in was not started in this browser or was already used (or your session expired); start again"
    )]
    UnknownState,
    #[error("the sign-in took longer than 10 minutes; start again")]
    Expired,
    #[error("Google's identity token was refused: {}", .0.message())]
    InvalidIdToken(IdTokenProblem),
    #[error("your Google email address is not verified")]
    EmailNotVerified,
}

impl OidcError {
    /// A short code for the sign-in page and the audit event's `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "provider_disabled",
            Self::Unavailable => "provider_unavailable",
            Self::ProviderRefused(_) => "provider_refused",
            Self::MissingCode => "missing_code",
            Self::UnknownState => "unknown_state",
            Self::Expired => "flow_expired",
            Self::InvalidIdToken(p) => p.code(),
            Self::EmailNotVerified => "email_not_verified",
        }
    }
}

/// What was wrong with an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenProblem {
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    IssuedAt,
    MissingClaim,
    Nonce,
    Subject,
}

impl IdTokenProblem {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "id_token_missing",
            Self::Malformed => "id_token_malformed",
            Self::Algorithm => "id_token_algorithm",
            Self::UnknownKey => "id_token_unknown_key",
            Self::Signature => "id_token_signature",
            Self::Issuer => "id_token_issuer",
            Self::Audience => "id_token_audience",
            Self::Expired => "id_token_expired",
            Self::IssuedAt => "id_token_issued_at",
            Self::MissingClaim => "id_token_claims",
            Self::Nonce => "id_token_nonce",
            Self::Subject => "id_token_subject",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "the token endpoint's answer carried no ID token",
            Self::Malformed => "it is not a signed JWT that can be read",
            Self::Algorithm => "it is signed with an algorithm or key that is not accepted",
            Self::UnknownKey => "it is signed with a key the provider does not publish",
            Self::Signature => "its signature does not match the provider's published key",
            Self::Issuer => "it was issued by another provider",
            Self::Audience => "it is meant for another application",
            Self::Expired => "it has expired",
            Self::IssuedAt => "its issue time is in the future or too long ago",
            Self::MissingClaim => "it lacks a required claim (exp, iat, iss, aud or sub)",
            Self::Nonce => "its nonce does not belong to this sign-in",
            Self::Subject => "its subject is empty or too long",
        }
    }
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: url::Url,
    token_endpoint: url::Url,
    jwks_uri: url::Url,
}

#[derive(Debug)]
struct Provider {
    discovery: Discovery,
    jwks: JwkSet,
    jwks_fetched: Instant,
    /// `kid`s still unknown after a refetch: refused without fetching again.
    unknown_kids: VecDeque<String>,
}

/// The ID token as it comes out of the token endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenField {
    id_token: String,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The claims read from a verified ID token.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    /// One audience or several (checked by `jsonwebtoken`; several need `azp`).
    aud: serde_json::Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
}

/// The algorithms an ID token may be signed with: public-key ones only, so a provider's HMAC
/// "key" can never be used to verify.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// One configured OpenID provider; cheap to clone.
#[derive(Clone)]
pub struct OidcClient(Arc<Inner>);

struct Inner {
    client_id: String,
    client_secret: SecretString,
    redirect_url: url::Url,
    issuer: url::Url,
    /// Derives each sign-in's PKCE verifier and nonce from its `state`.
    key: [u8; 32],
    http: reqwest::Client,
    provider: Mutex<Option<Provider>>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.0.issuer.as_str())
            .field("client_id", &self.0.client_id)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// A client for `config`; `secret` is the server's JWT secret, from which the flow key is
    /// derived (so every replica derives the same one).
    pub fn new(config: &GoogleConfig, secret: &SecretString) -> Result<Self, String> {
        let key = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
                .map_err(|e| e.to_string())?;
            mac.update(b"wasm-as-os openid flow key v1");
            mac.finalize().into_bytes().into()
        };
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer send this server elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent("wasm-as-os")
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self(Arc::new(Inner {
            client_id: config.client_id.trim().to_string(),
            client_secret: config.client_secret.clone(),
            redirect_url: config.redirect_url.clone(),
            issuer: config.issuer.clone(),
            key,
            http,
            provider: Mutex::new(None),
        })))
    }

    /// The discovery document's address.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.0.issuer.as_str().trim_end_matches('/')
        )
    }

    /// Fetches the discovery document and the JWKS now (start-up and `config check`); the error
    /// says what failed, for the operator.
    pub async fn discover(&self) -> Result<(), String> {
        let provider = self.fetch_provider().await?;
        *self.0.provider.lock().await = Some(provider);
        Ok(())
    }

    async fn fetch_provider(&self) -> Result<Provider, String> {
        let url = self.discovery_url();
        let body = self
            .get(&url)
            .await
            .map_err(|e| format!("discovery at {url} failed: {e}"))?;
        let discovery: Discovery = serde_json::from_slice(&body)
            .map_err(|e| format!("discovery at {url} is not an OpenID configuration: {e}"))?;
        if discovery.issuer.trim_end_matches('/') != self.0.issuer.as_str().trim_end_matches('/') {
            return Err(format!(
                "discovery at {url} names the issuer \"{}\", not the configured {}",
                discovery.issuer, self.0.issuer
            ));
        }
        let jwks = self.fetch_jwks(&discovery.jwks_uri).await?;
        Ok(Provider {
            discovery,
            jwks,
            jwks_fetched: Instant::now(),
            unknown_kids: VecDeque::new(),
        })
    }

    async fn fetch_jwks(&self, url: &url::Url) -> Result<JwkSet, String> {
        let body = self
            .get(url.as_str())
            .await
            .map_err(|e| format!("JWKS at {url} failed: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("JWKS at {url} is not a key set: {e}"))
    }

    /// GETs a JSON document of at most [`MAX_DOCUMENT`] bytes.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .0
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!("the answer is larger than {MAX_DOCUMENT} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The provider's endpoints, discovering them first if needed.
    async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut provider = self.0.provider.lock().await;
        if let Some(p) = provider.as_ref() {
            return Ok(p.discovery.clone());
        }
        match self.fetch_provider().await {
            Ok(p) => {
                let discovery = p.discovery.clone();
                *provider = Some(p);
                Ok(discovery)
            }
            Err(e) => {
                tracing::error!(provider = GOOGLE, error = %e, "OpenID provider unavailable");
                Err(OidcError::Unavailable)
            }
        }
    }

    fn oauth_client(&self, discovery: &Discovery) -> OAuthClient {
        oauth2::Client::new(ClientId::new(self.0.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.0.client_secret.expose_secret().to_string(),
            ))
            .set_auth_uri(AuthUrl::from_url(discovery.authorization_endpoint.clone()))
            .set_token_uri(TokenUrl::from_url(discovery.token_endpoint.clone()))
            .set_redirect_uri(RedirectUrl::from_url(self.0.redirect_url.clone()))
    }

    /// `HMAC(key, label ‖ 0 ‖ state)` in hex: 64 characters, valid as a PKCE verifier and a nonce.
    fn derive(&self, label: &str, state: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(state.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Starts a sign-in: the provider's authorization address to send the browser to, and what
    /// the session keeps until the callback.
    pub async fn begin(
        &self,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<(url::Url, PendingLogin), OidcError> {
        let discovery = self.discovery().await?;
        let state = CsrfToken::new_random();
        let verifier = PkceCodeVerifier::new(self.derive("pkce", state.secret()));
        let nonce = self.derive("nonce", state.secret());
        let (url, state) = self
            .oauth_client(&discovery)
            .authorize_url(|| state)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
            .add_extra_param("nonce", nonce)
            .url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            started_at: now,
            purpose,
        };
        Ok((url, pending))
    }

    /// Takes the sign-in whose `state` the callback names out of the session's list (so it
    /// cannot be used twice).
    pub fn take_pending(pending: &mut Vec<PendingLogin>, state: &str) -> Option<PendingLogin> {
        let at = pending.iter().position(|p| {
            use subtle_eq::eq;
            eq(p.state.as_bytes(), state.as_bytes())
        })?;
        Some(pending.remove(at))
    }

    /// Finishes a sign-in from its callback and the pending entry taken for its `state`.
    pub async fn complete(
        &self,
        pending: Option<&PendingLogin>,
        callback: &Callback,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, OidcError> {
        if let Some(error) = &callback.error {
            return Err(OidcError::ProviderRefused(oauth_error_code(error)));
        }
        let Some(pending) = pending else {
            return Err(OidcError::UnknownState);
        };
        if now - pending.started_at > FLOW_LIFETIME {
            return Err(OidcError::Expired);
        }
        let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(OidcError::MissingCode);
        };
        let discovery = self.discovery().await?;
        let verifier = PkceCodeVerifier::new(self.derive("pkce", &pending.state));
        let response = self
            .oauth_client(&discovery)
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier)
            .request_async(&self.0.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(e) => {
                    OidcError::ProviderRefused(oauth_error_code(e.error().as_ref()))
                }
                RequestTokenError::Request(e) => {
                    tracing::warn!(provider = GOOGLE, error = %e, "token endpoint unreachable");
                    OidcError::Unavailable
                }
                RequestTokenError::Parse(..) => OidcError::InvalidIdToken(IdTokenProblem::Missing),
                RequestTokenError::Other(_) => OidcError::Unavailable,
            })?;
        let nonce = self.derive("nonce", &pending.state);
        self.verify(&response.extra_fields().id_token, &discovery, &nonce, now)
            .await
    }

    /// Verifies an ID token: signature, issuer, audience, times, nonce and email.
    async fn verify(
        &self,
        id_token: &str,
        discovery: &Discovery,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, OidcError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|_| OidcError::InvalidIdToken(IdTokenProblem::Malformed))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::Algorithm));
        }
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[discovery.issuer.as_str()]);
        validation.set_audience(&[self.0.client_id.as_str()]);
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        // Times are checked below against the platform's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(id_token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                OidcError::InvalidIdToken(match e.kind() {
                    ErrorKind::InvalidSignature => IdTokenProblem::Signature,
                    ErrorKind::InvalidIssuer => IdTokenProblem::Issuer,
                    ErrorKind::InvalidAudience => IdTokenProblem::Audience,
                    ErrorKind::MissingRequiredClaim(_) => IdTokenProblem::MissingClaim,
                    ErrorKind::InvalidAlgorithm => IdTokenProblem::Algorithm,
                    _ => IdTokenProblem::Malformed,
                })
            })?
            .claims;
        let now = now.timestamp();
        match claims.exp {
            Some(exp) if exp + LEEWAY > now => {}
            Some(_) => return Err(OidcError::InvalidIdToken(IdTokenProblem::Expired)),
            None => return Err(OidcError::InvalidIdToken(IdTokenProblem::MissingClaim)),
        }
        match claims.iat {
            Some(iat) if iat > now + LEEWAY => {
                return Err(OidcError::InvalidIdToken(IdTokenProblem::IssuedAt));
            }
            Some(iat) if iat < now - MAX_TOKEN_AGE => {
                return Err(OidcError::InvalidIdToken(IdTokenProblem::IssuedAt));
            }
            Some(_) => {}
            None => return Err(OidcError::InvalidIdToken(IdTokenProblem::MissingClaim)),
        }
        if let serde_json::Value::Array(audiences) = &claims.aud
            && audiences.len() > 1
            && claims.azp.as_deref() != Some(self.0.client_id.as_str())
        {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::Audience));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::Nonce));
        }
        let verified = matches!(&claims.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&claims.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        let email = claims
            .email
            .map(|e| e.trim().to_lowercase())
            .filter(|e| super::check_email(e).is_ok());
        let (Some(email), true) = (email, verified) else {
            return Err(OidcError::EmailNotVerified);
        };
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::Subject));
        }
        Ok(VerifiedIdentity {
            provider: GOOGLE.to_string(),
            subject: claims.sub,
            email,
            name: claims
                .name
                .map(|n| n.chars().filter(|c| !c.is_control()).take(128).collect()),
        })
    }

    /// The key a token's `kid` names: from the cached JWKS, or after one refetch when the `kid`
    /// is new (key rotation) or the cache is old.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, OidcError> {
        let mut guard = self.0.provider.lock().await;
        let Some(provider) = guard.as_mut() else {
            return Err(OidcError::Unavailable);
        };
        let find = |jwks: &JwkSet| match kid {
            Some(kid) => jwks.find(kid).cloned(),
            // A token without `kid` is accepted only from a provider with one key.
            None if jwks.keys.len() == 1 => jwks.keys.first().cloned(),
            None => None,
        };
        let stale = provider.jwks_fetched.elapsed() > JWKS_MAX_AGE;
        let mut jwk = if stale { None } else { find(&provider.jwks) };
        if jwk.is_none() {
            let known_unknown = kid.is_some_and(|k| provider.unknown_kids.iter().any(|u| u == k));
            if known_unknown && !stale {
                return Err(OidcError::InvalidIdToken(IdTokenProblem::UnknownKey));
            }
            match self.fetch_jwks(&provider.discovery.jwks_uri).await {
                Ok(jwks) => {
                    provider.jwks = jwks;
                    provider.jwks_fetched = Instant::now();
                    provider.unknown_kids.clear();
                }
                Err(e) => {
                    tracing::error!(provider = GOOGLE, error = %e, "cannot fetch the provider's keys");
                    return Err(OidcError::Unavailable);
                }
            }
            jwk = find(&provider.jwks);
            if jwk.is_none()
                && let Some(kid) = kid
            {
                if provider.unknown_kids.len() >= UNKNOWN_KIDS {
                    provider.unknown_kids.pop_front();
                }
                provider
                    .unknown_kids
                    .push_back(kid.chars().take(128).collect());
            }
        }
        let Some(jwk) = jwk else {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::UnknownKey));
        };
        if jwk
            .common
            .key_algorithm
            .as_ref()
            .is_some_and(|a| a.to_string() != format!("{alg:?}"))
            || matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        {
            return Err(OidcError::InvalidIdToken(IdTokenProblem::Algorithm));
        }
        DecodingKey::from_jwk(&jwk)
            .map_err(|_| OidcError::InvalidIdToken(IdTokenProblem::UnknownKey))
    }
}

/// A provider's `error` value as shown: the OAuth error code if it looks like one, else `error`.
fn oauth_error_code(error: &str) -> String {
    let ok = !error.is_empty()
        && error.len() <= 40
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        error.to_string()
    } else {
        "error".to_string()
    }
}

/// Comparison that takes the same time whatever the first difference.
mod subtle_eq {
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_error_codes_are_shown_only_when_they_look_like_codes() {
        assert_eq!(oauth_error_code("access_denied"), "access_denied");
        assert_eq!(oauth_error_code("<script>"), "error");
        assert_eq!(oauth_error_code(&"a".repeat(41)), "error");
        assert_eq!(oauth_error_code(""), "error");
    }

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let now = Utc::now();
        let mut list = vec![PendingLogin {
            state: "abc".into(),
            started_at: now,
            purpose: Purpose::SignIn { next: "/".into() },
        }];
        assert!(OidcClient::take_pending(&mut list, "abd").is_none());
        assert!(OidcClient::take_pending(&mut list, "abc").is_some());
        assert!(OidcClient::take_pending(&mut list, "abc").is_none());
    }
}
