//! Outgoing HTTP for components (`wasi:http/outgoing-handler`), behind `network_access`.
//!
//! Every request is checked twice before anything connects: its authority (host and port, the
//! default port of the scheme if none is given) must match an `allowed_hosts` entry
//! ([`NetworkPolicy::permits_authority`]), and every address the host resolves to must pass the
//! socket check ([`NetworkPolicy::check`], which refuses loopback, private, link-local and
//! metadata addresses unless that address is listed). The connection then goes to the first
//! checked address, never to a fresh resolution of the name, so DNS rebinding cannot redirect it.
//! A refusal is recorded (the run ends in `sandbox.capability_denied` naming `network_access`)
//! and the guest's request fails with `error-code.HTTP-request-denied`.
//!
//! Plain `http` goes to any allowed host; `https` only to an IP literal (certificates are
//! checked against that IP), since pinning the checked address would otherwise break the
//! server name the TLS handshake verifies. Response bodies are capped at
//! [`MAX_RESPONSE_BODY_BYTES`]; the deadline of the run bounds every request.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use http::uri::{Authority, Scheme, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::error::SandboxError;
use crate::network::NetworkPolicy;
use crate::wasi::Denials;

/// The largest response body a guest can read; past it the body stream fails with
/// `HTTP-response-body-size`.
pub(crate) const MAX_RESPONSE_BODY_BYTES: usize = 16 << 20;

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The `wasi:http` hooks of one run: the run's network policy and where refusals are recorded.
pub(crate) struct HttpHooks {
    policy: NetworkPolicy,
    denials: Denials,
}

impl HttpHooks {
    pub(crate) fn new(policy: NetworkPolicy, denials: Denials) -> Self {
        Self { policy, denials }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let denials = self.denials.clone();
        Box::new(async move {
            let uri = pinned_uri(request.uri(), &policy, &denials).await?;
            *request.uri_mut() = uri;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let response = response.map(|body| capped(body, MAX_RESPONSE_BODY_BYTES));
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// `body`, failing with `HTTP-response-body-size` once more than `limit` bytes were read.
fn capped<B>(body: B, limit: usize) -> WasiBody
where
    B: http_body::Body<Data = bytes::Bytes, Error = Error> + Send + 'static,
{
    Limited::new(body, limit)
        .map_err(move |e| match e.downcast::<Error>() {
            Ok(e) => *e,
            Err(e) if e.is::<LengthLimitError>() => Error::HttpResponseBodySize(Some(limit as u64)),
            Err(e) => Error::InternalError(Some(e.to_string())),
        })
        .boxed_unsync()
}

/// Checks `uri` against `policy` and returns it with its authority replaced by the checked
/// address to connect to; a refusal is recorded in `denials`.
async fn pinned_uri(uri: &Uri, policy: &NetworkPolicy, denials: &Denials) -> Result<Uri, Error> {
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let refuse = |detail: String| {
        denials.push(SandboxError::CapabilityDenied {
            capability: "network_access",
            detail,
        });
        Error::HttpRequestDenied
    };
    if !policy.permits_authority(host, port) {
        return Err(refuse(format!("to HTTP host {host}:{port}")));
    }
    let literal = host.parse::<IpAddr>().ok();
    if https && literal.is_none() {
        return Err(Error::HttpProtocolError);
    }
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Error::DnsError {
                rcode: Some("address unavailable".into()),
                info_code: None,
            })?
            .collect(),
    };
    for addr in &addrs {
        if policy.check(*addr).await.is_err() {
            return Err(refuse(format!("to HTTP host {host}:{port} at {addr}")));
        }
    }
    let addr = addrs.first().ok_or(Error::DestinationNotFound)?;
    let authority: Authority = addr
        .to_string()
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(authority);
    Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Capabilities;

    fn policy(grant: bool, hosts: &[&str]) -> NetworkPolicy {
        NetworkPolicy::new(&Capabilities {
            network_access: grant,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..Capabilities::default()
        })
    }

    #[tokio::test]
    async fn a_refused_request_is_http_request_denied_and_recorded() {
        let uri: Uri = "http://127.0.0.1:8080/a?b".parse().unwrap();
        for p in [
            policy(false, &["127.0.0.1:8080"]),
            policy(true, &["127.0.0.1:8081", "localhost.example"]),
        ] {
            let denials = Denials::default();
            let e = pinned_uri(&uri, &p, &denials).await.unwrap_err();
            assert!(matches!(e, Error::HttpRequestDenied), "{e:?}");
            let recorded = denials.first().unwrap();
            assert!(
                recorded.to_string().contains("127.0.0.1:8080"),
                "{recorded}"
            );
        }
    }

    #[tokio::test]
    async fn an_allowed_request_goes_to_the_checked_address() {
        let denials = Denials::default();
        let uri: Uri = "http://localhost:8080/a?b".parse().unwrap();
        let pinned = pinned_uri(&uri, &policy(true, &["localhost"]), &denials)
            .await
            .unwrap();
        let host = pinned
            .host()
            .unwrap()
            .trim_start_matches('[')
            .trim_end_matches(']');
        assert!(host.parse::<IpAddr>().unwrap().is_loopback(), "{pinned}");
        assert_eq!(pinned.port_u16(), Some(8080));
        assert_eq!(pinned.path_and_query().unwrap().as_str(), "/a?b");
        assert!(denials.first().is_none());
    }

    #[tokio::test]
    async fn a_response_body_past_the_cap_fails_with_its_size() {
        use http_body_util::Full;
        let body = Full::new(bytes::Bytes::from_static(b"12345")).map_err(|never| match never {});
        let e = capped(body, 4).collect().await.unwrap_err();
        assert!(matches!(e, Error::HttpResponseBodySize(Some(4))), "{e:?}");
        let body = Full::new(bytes::Bytes::from_static(b"1234")).map_err(|never| match never {});
        assert_eq!(
            capped(body, 4).collect().await.unwrap().to_bytes().as_ref(),
            b"1234"
        );
    }

    #[tokio::test]
    async fn the_default_port_of_the_scheme_is_checked() {
        let denials = Denials::default();
        let uri: Uri = "http://127.0.0.1/".parse().unwrap();
        let e = pinned_uri(&uri, &policy(true, &["127.0.0.1:443"]), &denials)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::HttpRequestDenied), "{e:?}");
        assert!(
            pinned_uri(&uri, &policy(true, &["127.0.0.1:80"]), &denials)
                .await
                .is_ok()
        );
    }
}
