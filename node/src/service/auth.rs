//! Who the primary on a connection is: the SHA-256 of its client certificate's
//! SubjectPublicKeyInfo (the pin value) and its subject CN for logs. The certificate chain itself
//! is verified by rustls against the configured client CA during the handshake.

use std::fmt;

use rustls_pki_types::CertificateDer;

/// A primary's identity: SHA-256 of its SubjectPublicKeyInfo DER.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrimaryId([u8; 32]);

impl PrimaryId {
    /// The SPKI digest.
    pub fn spki_sha256(&self) -> &[u8; 32] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(byte: u8) -> Self {
        Self([byte; 32])
    }
}

impl fmt::Display for PrimaryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 bytes are plenty to tell primaries apart in logs.
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

/// An authenticated primary.
#[derive(Debug, Clone)]
pub struct Primary {
    /// SPKI digest.
    pub id: PrimaryId,
    /// Subject common name, for logs.
    pub name: String,
}

/// Why a connection's primary is not admitted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No client certificate (cannot happen with the verifier in place; kept as a guard).
    #[error("no client certificate was presented")]
    NoCertificate,
    /// The leaf certificate does not parse.
    #[error("client certificate does not parse: {0}")]
    Unparsable(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The key (SPKI SHA-256) is not in the configured pin list.
    #[error("client key {} is not in this node's pin list (quic.client_spki_pins)", base64_of(.0))]
    NotPinned([u8; 32]),
    /// Tenants are configured and the primary (subject CN given) matches none of them.
    #[error("primary {0:?} matches no [[tenants]] entry (by SPKI pin or subject name)")]
    NoTenant(String),
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `id` is admitted by `pins` (empty pins admit every key the client CA vouches for).
pub fn admitted(id: &PrimaryId, pins: &[[u8; 32]]) -> bool {
    pins.is_empty() || pins.contains(id.spki_sha256())
}

/// Identifies the primary from its certificate chain (its SPKI digest and subject CN) and
/// checks it against `pins` (an empty list admits every certificate that chains to the client
/// CA).
pub fn authorize(
    chain: Option<&[CertificateDer<'static>]>,
    pins: &[[u8; 32]],
) -> Result<Primary, AuthError> {
    let leaf = chain
        .and_then(|chain| chain.first())
        .ok_or(AuthError::NoCertificate)?;
    let (_, certificate) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(AuthError::Unparsable)?;
    let spki = certificate.tbs_certificate.subject_pki.raw;
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    let mut id = [0u8; 32];
    id.copy_from_slice(digest.as_ref());
    if !pins.is_empty() && !pins.contains(&id) {
        return Err(AuthError::NotPinned(id));
    }
    let name = certificate
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Ok(Primary {
        id: PrimaryId(id),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(name: &str) -> (CertificateDer<'static>, [u8; 32]) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &rcgen::PublicKeyData::subject_public_key_info(&key),
        );
        (cert.der().clone(), digest.as_ref().try_into().unwrap())
    }

    #[test]
    fn identity_is_the_spki_digest_and_pins_are_enforced() {
        let (cert, spki) = certificate("ca-primary-1");
        let primary = authorize(Some(std::slice::from_ref(&cert)), &[]).unwrap();
        assert_eq!(primary.id.spki_sha256(), &spki);
        assert_eq!(primary.name, "ca-primary-1");
        assert!(authorize(Some(std::slice::from_ref(&cert)), &[spki]).is_ok());
        assert!(matches!(
            authorize(Some(&[cert]), &[[0u8; 32]]),
            Err(AuthError::NotPinned(_))
        ));
        assert_eq!(authorize(None, &[]).unwrap_err(), AuthError::NoCertificate);
        assert!(matches!(
            authorize(Some(&[CertificateDer::from(vec![1, 2, 3])]), &[]),
            Err(AuthError::Unparsable(_))
        ));
    }
}
