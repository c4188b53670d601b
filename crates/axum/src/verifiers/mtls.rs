use http::request::Parts;
use palisade_mtls::PeerIdentity;

use crate::authenticate::{CredentialRequest, Verifier, VerifyFuture};
use crate::principal::{AuthMethod, Principal};

/// Authenticates by the verified TLS client certificate of the connection.
///
/// The server verifies the certificate during the handshake (with
/// [`palisade_mtls::MtlsAcceptor`] or a trusted proxy through
/// [`palisade_mtls::ProxyIdentifier`]) and inserts the resulting
/// [`PeerIdentity`] into the extensions of every request of that connection. This
/// verifier only turns it into a [`Principal`]: identity and owner are
/// [`PeerIdentity::id`], the scopes those of the matching identity rule, the method
/// [`AuthMethod::ClientCertificate`] (which proves possession).
///
/// A request without the extension carries no certificate credential; one with it is
/// always authenticated. Like any other credential it counts for the "exactly one kind"
/// rule: a client with a certificate that also sends an API key gets 400.
///
/// ```
/// use palisade_axum::{AuthenticateLayer, ClientCertVerifier};
///
/// let layer = AuthenticateLayer::new().verifier(ClientCertVerifier::new());
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertVerifier;

impl ClientCertVerifier {
    /// The verifier.
    pub fn new() -> Self {
        Self
    }
}

impl Verifier for ClientCertVerifier {
    fn kind(&self) -> &'static str {
        "client_certificate"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        parts.extensions.get::<PeerIdentity>().is_some()
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        let principal = request.parts.extensions.get::<PeerIdentity>().map(|peer| {
            Principal::new(
                peer.id(),
                peer.id(),
                AuthMethod::ClientCertificate,
                peer.scopes().iter().cloned(),
            )
        });
        Box::pin(std::future::ready(principal.ok_or_else(|| {
            // Only reachable if the extension vanished between the presence check and
            // here, which no layer does.
            crate::AuthFailure::with_status(
                401,
                "no_client_certificate",
                "no verified client certificate",
            )
        })))
    }
}
