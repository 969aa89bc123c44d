//! Ed25519 signing and verification of result payloads, with a fixed domain-separation prefix.
//!
//! The signature covers `SIGNATURE_CONTEXT || payload`, where `payload` is the exact CBOR bytes
//! carried in [`SignedResult::payload`]. Verifiers never re-encode: they check the bytes they
//! received and only then decode them, so any language can verify (see `SCHEMA.md`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::result::{ResultPayload, SignedResult};

/// Domain-separation prefix: a signature made for a result can never be valid for anything else
/// signed with the same key, and vice versa.
pub const SIGNATURE_CONTEXT: &[u8] = b"mpic-node/v1 signed result\0";

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Short identifier of a public key: the first 8 bytes of SHA-256(public key), as 16 lowercase
/// hex characters. Lets a verifier pick the right key during rotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Derives the id of a raw 32-byte Ed25519 public key.
    pub fn of(public_key: &[u8; PUBLIC_KEY_LEN]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
        KeyId(hex::encode(&digest.as_ref()[..8]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The private key is not a PKCS#8 Ed25519 key.
    #[error("not a PKCS#8 Ed25519 private key: {0}")]
    BadPrivateKey(String),
    /// The public key text is not base64 of 32 bytes.
    #[error("public key must be base64 of {PUBLIC_KEY_LEN} bytes")]
    BadPublicKey,
    /// The random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

/// Why a signed result was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Signed with another key than the one expected.
    #[error("result is signed by key {got}, expected key {expected}")]
    WrongKey {
        /// The expected key id.
        expected: KeyId,
        /// The key id the result names.
        got: String,
    },
    /// The signature does not verify over the payload bytes.
    #[error("signature does not verify")]
    BadSignature,
    /// The payload bytes verified but are not a valid payload.
    #[error("signed payload does not decode: {0}")]
    Payload(#[from] ciborium::de::Error<std::io::Error>),
    /// The payload names a different signing key than the wrapper.
    #[error("payload names key {payload}, wrapper names key {wrapper}")]
    KeyIdMismatch {
        /// Key id inside the signed payload.
        payload: String,
        /// Key id on the wrapper.
        wrapper: String,
    },
}

/// An Ed25519 signing key (the node's result-signing identity). Signs with `ed25519-dalek`
/// (constant time, precomputed basepoint tables: about a fifth less CPU per signature than
/// ring on the machines measured); ring checks the key on load and verifies. Ed25519 is
/// deterministic, so both give the same signature bytes.
pub struct SigningKey {
    signer: ed25519_dalek::SigningKey,
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.verifying.key_id)
            .finish()
    }
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 v2 DER encoding for storage.
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        let key = Self::from_pkcs8_der(document.as_ref())?;
        Ok((key, document.as_ref().to_vec()))
    }

    /// Loads a PKCS#8 (v1 or v2) Ed25519 private key, as written by `openssl genpkey` or
    /// [`SigningKey::generate`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(pair.public_key().as_ref());
        let signer = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        if signer.verifying_key().to_bytes() != public {
            return Err(KeyError::BadPrivateKey(
                "the two Ed25519 implementations derive different public keys".into(),
            ));
        }
        Ok(Self {
            signer,
            verifying: VerifyingKey::from_bytes(public),
        })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.verifying.key_id
    }

    /// Signs raw payload bytes under [`SIGNATURE_CONTEXT`].
    pub fn sign_bytes(&self, payload: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_in_context(SIGNATURE_CONTEXT, payload)
    }

    /// Signs raw bytes under another domain-separation `context` (e.g. the manifest's), so a
    /// signature made for one kind of document never verifies as another.
    pub fn sign_in_context(&self, context: &[u8], payload: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut message = Vec::with_capacity(context.len() + payload.len());
        message.extend_from_slice(context);
        message.extend_from_slice(payload);
        self.signer.sign(&message).to_bytes()
    }

    /// Serializes a payload once and signs those exact bytes.
    pub fn sign(
        &self,
        payload: &ResultPayload,
    ) -> Result<SignedResult, ciborium::ser::Error<std::io::Error>> {
        let mut bytes = Vec::with_capacity(512);
        ciborium::into_writer(payload, &mut bytes)?;
        let signature = self.sign_bytes(&bytes).to_vec();
        Ok(SignedResult {
            payload: bytes,
            signature,
            key_id: self.key_id().to_string(),
        })
    }
}

/// An Ed25519 public key that verifies a node's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    key_id: KeyId,
}

impl VerifyingKey {
    /// Wraps a raw 32-byte public key.
    pub fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        Self {
            key_id: KeyId::of(&bytes),
            bytes,
        }
    }

    /// Parses standard base64 (as printed by `mpic-node keygen` and `info`).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let decoded = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::BadPublicKey)?;
        let bytes: [u8; PUBLIC_KEY_LEN] = decoded.try_into().map_err(|_| KeyError::BadPublicKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Standard base64 of the raw key.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.bytes)
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Checks a signature over raw payload bytes under [`SIGNATURE_CONTEXT`].
    pub fn verify_bytes(&self, payload: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.verify_in_context(SIGNATURE_CONTEXT, payload, signature)
    }

    /// Checks a signature over raw bytes made with [`SigningKey::sign_in_context`].
    pub fn verify_in_context(
        &self,
        context: &[u8],
        payload: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let mut message = Vec::with_capacity(context.len() + payload.len());
        message.extend_from_slice(context);
        message.extend_from_slice(payload);
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(&message, signature)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// Verifies a signed result and decodes its payload. Checks, in order: the key id on the
    /// wrapper, the signature over the exact bytes, the payload's own key id. Echoed fields
    /// (request id, nonce, target, perspective) are the caller's to compare; the client does.
    pub fn verify(&self, signed: &SignedResult) -> Result<ResultPayload, VerifyError> {
        if signed.key_id != self.key_id.as_str() {
            return Err(VerifyError::WrongKey {
                expected: self.key_id.clone(),
                got: signed.key_id.clone(),
            });
        }
        self.verify_bytes(&signed.payload, &signed.signature)?;
        let payload: ResultPayload = ciborium::from_reader(signed.payload.as_slice())?;
        if payload.key_id != signed.key_id {
            return Err(VerifyError::KeyIdMismatch {
                payload: payload.key_id,
                wrapper: signed.key_id.clone(),
            });
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests;
