//! Loads the node's key material from PEM files: TLS certificate chain and key, the client CA
//! bundle, and the Ed25519 result-signing key; `dev` generates a throwaway set for loopback use.

pub mod dev;

use std::path::{Path, PathBuf};

use mpic_protocol::SigningKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Key material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds nothing of the expected kind.
    #[error("{path}: no {what} found (expected a PEM file with a \"{label}\" block)")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
        /// The PEM label expected.
        label: &'static str,
    },
    /// A PEM block could not be decoded.
    #[error("{path}: malformed PEM: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        detail: String,
    },
    /// The signing key is not an Ed25519 PKCS#8 key.
    #[error("{path}: {source}")]
    SigningKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: mpic_protocol::signing::KeyError,
    },
    /// Generating a certificate failed.
    #[error("cannot generate development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Generating a signing key failed.
    #[error("cannot generate signing key: {0}")]
    GenerateKey(mpic_protocol::signing::KeyError),
}

fn read(path: &Path) -> Result<Vec<u8>, CredentialsError> {
    std::fs::read(path).map_err(|source| CredentialsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads every certificate in a PEM file (a chain, or a CA bundle).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    let bytes = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CredentialsError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(CredentialsError::Empty {
            path: path.to_owned(),
            what: "certificate",
            label: "CERTIFICATE",
        });
    }
    Ok(certificates)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CredentialsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => CredentialsError::Empty {
            path: path.to_owned(),
            what: "private key",
            label: "PRIVATE KEY",
        },
        other => CredentialsError::Pem {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// Reads the Ed25519 result-signing key (PKCS#8 PEM).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CredentialsError> {
    let bytes = read(path)?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => CredentialsError::Empty {
            path: path.to_owned(),
            what: "Ed25519 signing key",
            label: "PRIVATE KEY",
        },
        other => CredentialsError::Pem {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })?;
    SigningKey::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|source| {
        CredentialsError::SigningKey {
            path: path.to_owned(),
            source,
        }
    })
}

/// Generates a new signing key and writes it as PKCS#8 PEM with mode 0600. Refuses to overwrite.
pub fn write_new_signing_key(path: &Path) -> Result<SigningKey, CredentialsError> {
    let (key, der) = SigningKey::generate().map_err(CredentialsError::GenerateKey)?;
    write_secret(path, pem_encode("PRIVATE KEY", &der).as_bytes())?;
    Ok(key)
}

/// PEM-encodes DER bytes under `label`.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Writes a new file readable only by its owner; fails if it exists.
pub(crate) fn write_secret(path: &Path, contents: &[u8]) -> Result<(), CredentialsError> {
    write_new(path, contents, 0o600)
}

/// Writes a new public file; fails if it exists.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<(), CredentialsError> {
    write_new(path, contents, 0o644)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CredentialsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let error = |source| CredentialsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(error)?;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)
}

/// The notAfter time of a DER certificate, UNIX seconds (`None` if it does not parse).
pub fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_round_trips_through_a_pem_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let key = write_new_signing_key(&path).unwrap();
        assert_eq!(load_signing_key(&path).unwrap().key_id(), key.key_id());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Never overwrite an existing key.
        assert!(matches!(
            write_new_signing_key(&path),
            Err(CredentialsError::Write { .. })
        ));
    }

    #[test]
    fn wrong_files_give_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(
            load_certificates(&empty),
            Err(CredentialsError::Empty {
                what: "certificate",
                ..
            })
        ));
        assert!(matches!(
            load_private_key(&empty),
            Err(CredentialsError::Empty { .. })
        ));
        assert!(matches!(
            load_signing_key(&dir.path().join("missing")),
            Err(CredentialsError::Read { .. })
        ));
        // An ECDSA key is a fine TLS key but not an Ed25519 signing key.
        let ecdsa = rcgen::KeyPair::generate().unwrap();
        let path = dir.path().join("ecdsa.key");
        std::fs::write(&path, ecdsa.serialize_pem()).unwrap();
        assert!(load_private_key(&path).is_ok());
        assert!(matches!(
            load_signing_key(&path),
            Err(CredentialsError::SigningKey { .. })
        ));
    }
}
