//! The perspective manifest: what a node publishes about itself for CAs and domain owners —
//! perspective id, RIR, location, egress addresses and prefixes (to allow-list), the HTTP
//! User-Agent and DNS source addresses its validation traffic uses, its result-signing keys
//! (current and retired, with validity) and its software version — signed with the node's
//! result-signing key.
//!
//! The document is JSON: `{"payload": "<the manifest as a JSON string>", "key_id": ...,
//! "signature": "<base64>"}`. The signature covers the exact payload bytes under
//! [`MANIFEST_SIGNATURE_CONTEXT`] (never confusable with a result signature), so any
//! implementation can verify it without re-serialising.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::perspective::{PerspectiveId, Rir};
use crate::signing::{SigningKey, VerifyError, VerifyingKey};

/// Domain separation for manifest signatures.
pub const MANIFEST_SIGNATURE_CONTEXT: &[u8] = b"mpic-node/v1 perspective manifest\0";

/// Version of the manifest schema.
pub const MANIFEST_VERSION: u16 = 1;

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version ([`MANIFEST_VERSION`]).
    pub version: u16,
    /// The perspective id.
    pub perspective_id: PerspectiveId,
    /// The RIR service region of the node's network.
    pub rir: Rir,
    /// The location label.
    pub location: String,
    /// Where validation traffic comes from.
    pub egress: Egress,
    /// The User-Agent of the HTTP fetcher.
    pub http_user_agent: String,
    /// Source addresses of DNS queries (empty: the OS picks within the egress prefixes).
    pub dns_source_addresses: Vec<String>,
    /// The result-signing keys: the current one and those retired but still listed.
    pub keys: Vec<ManifestKey>,
    /// The node software version.
    pub software_version: String,
    /// When the manifest was produced, UNIX milliseconds.
    pub issued_unix_ms: u64,
}

/// Egress addresses and prefixes to allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Egress {
    /// IPv4 source addresses (configured; empty: the OS picks within the prefixes).
    pub ipv4: Vec<String>,
    /// IPv6 source addresses.
    pub ipv6: Vec<String>,
    /// Prefixes (CIDR) validation traffic may come from.
    pub prefixes: Vec<String>,
}

/// One result-signing key and its validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestKey {
    /// The key id.
    pub key_id: String,
    /// The Ed25519 public key, standard base64.
    pub public_key: String,
    /// `current` (signing now) or `retired` (results it signed still verify).
    pub status: KeyStatus,
    /// When it was retired, UNIX ms (retired keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_unix_ms: Option<u64>,
    /// Listed until, UNIX ms (retired keys); the current key has no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until_unix_ms: Option<u64>,
}

/// Whether a key signs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// The key signing results now.
    Current,
    /// Rotated out; listed for its grace period.
    Retired,
}

/// A manifest as published: its exact bytes and the signature over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// The manifest, JSON text.
    pub payload: String,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 signature, standard base64.
    pub signature: String,
}

/// Why a manifest was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest could not be encoded or decoded as JSON.
    #[error("manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The signature is not base64.
    #[error("manifest signature is not base64")]
    SignatureEncoding,
    /// Signed by another key than the one expected.
    #[error("manifest is signed by key {got}, expected key {expected}")]
    WrongKey {
        /// The expected key id.
        expected: String,
        /// The key id the document names.
        got: String,
    },
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// The verifying key is not listed as the manifest's current key.
    #[error("the signing key {0} is not the manifest's current key")]
    KeyNotCurrent(String),
}

impl Manifest {
    /// Signs the manifest with `key` (the node's result-signing key).
    pub fn sign(&self, key: &SigningKey) -> Result<SignedManifest, ManifestError> {
        let payload = serde_json::to_string(self)?;
        let signature = key.sign_in_context(MANIFEST_SIGNATURE_CONTEXT, payload.as_bytes());
        Ok(SignedManifest {
            payload,
            key_id: key.key_id().to_string(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        })
    }
}

impl SignedManifest {
    /// Verifies the document with `key` (the node's key as the CA knows it) and returns the
    /// manifest: the key id, the signature over the exact payload bytes, and that the payload
    /// lists `key` as its current key.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Manifest, ManifestError> {
        if self.key_id != key.key_id().as_str() {
            return Err(ManifestError::WrongKey {
                expected: key.key_id().to_string(),
                got: self.key_id.clone(),
            });
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| ManifestError::SignatureEncoding)?;
        key.verify_in_context(
            MANIFEST_SIGNATURE_CONTEXT,
            self.payload.as_bytes(),
            &signature,
        )?;
        let manifest: Manifest = serde_json::from_str(&self.payload)?;
        let current = manifest.keys.iter().any(|listed| {
            listed.status == KeyStatus::Current && listed.public_key == key.to_base64()
        });
        if !current {
            return Err(ManifestError::KeyNotCurrent(key.key_id().to_string()));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(key: &SigningKey) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            perspective_id: PerspectiveId::new("fra-1").unwrap(),
            rir: Rir::RipeNcc,
            location: "Frankfurt".into(),
            egress: Egress {
                ipv4: vec!["203.0.113.10".into()],
                ipv6: vec![],
                prefixes: vec!["203.0.113.0/24".into()],
            },
            http_user_agent: "mpic-node/0.1".into(),
            dns_source_addresses: vec![],
            keys: vec![ManifestKey {
                key_id: key.key_id().to_string(),
                public_key: key.verifying_key().to_base64(),
                status: KeyStatus::Current,
                retired_unix_ms: None,
                valid_until_unix_ms: None,
            }],
            software_version: "0.1.0".into(),
            issued_unix_ms: 1,
        }
    }

    #[test]
    fn a_manifest_verifies_with_its_key_and_fails_when_altered() {
        let (key, _) = SigningKey::generate().unwrap();
        let signed = manifest(&key).sign(&key).unwrap();
        assert_eq!(signed.verify(key.verifying_key()).unwrap(), manifest(&key));

        let mut altered = signed.clone();
        altered.payload = altered.payload.replace("203.0.113.0/24", "198.51.100.0/24");
        assert!(matches!(
            altered.verify(key.verifying_key()),
            Err(ManifestError::Signature(VerifyError::BadSignature))
        ));

        let (other, _) = SigningKey::generate().unwrap();
        assert!(matches!(
            signed.verify(other.verifying_key()),
            Err(ManifestError::WrongKey { .. })
        ));
        // A result signature over the same bytes does not pass as a manifest signature.
        let mut cross = signed.clone();
        cross.signature = base64::engine::general_purpose::STANDARD
            .encode(key.sign_bytes(signed.payload.as_bytes()));
        assert!(cross.verify(key.verifying_key()).is_err());
    }

    #[test]
    fn the_signing_key_must_be_the_listed_current_key() {
        let (key, _) = SigningKey::generate().unwrap();
        let mut unlisted = manifest(&key);
        unlisted.keys[0].status = KeyStatus::Retired;
        let signed = unlisted.sign(&key).unwrap();
        assert!(matches!(
            signed.verify(key.verifying_key()),
            Err(ManifestError::KeyNotCurrent(_))
        ));
    }
}
