//! Development credentials: a throwaway CA, a node server certificate, a primary client
//! certificate and a signing key, for loopback use only (`mpic-node certs dev`,
//! `[dangerous] generate_dev_credentials`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{CredentialsError, write_new_signing_key, write_public, write_secret};

/// Names the dev node certificate is valid for.
pub const DEV_NODE_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where each generated file goes.
#[derive(Debug, Clone)]
pub struct DevPaths {
    /// CA certificate (trust it on both sides).
    pub ca_certificate: PathBuf,
    /// CA private key (to sign more primaries).
    pub ca_key: PathBuf,
    /// Node server certificate.
    pub node_certificate: PathBuf,
    /// Node server key.
    pub node_key: PathBuf,
    /// Primary client certificate.
    pub primary_certificate: PathBuf,
    /// Primary client key.
    pub primary_key: PathBuf,
    /// Node result-signing key.
    pub signing_key: PathBuf,
}

impl DevPaths {
    /// The standard file names inside one directory.
    pub fn in_directory(dir: &Path) -> Self {
        Self {
            ca_certificate: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            node_certificate: dir.join("node.pem"),
            node_key: dir.join("node.key"),
            primary_certificate: dir.join("primary.pem"),
            primary_key: dir.join("primary.key"),
            signing_key: dir.join("signing.key"),
        }
    }

    /// Every path, for printing.
    pub fn all(&self) -> [(&'static str, &Path); 7] {
        [
            ("CA certificate", &self.ca_certificate),
            ("CA key", &self.ca_key),
            ("node certificate", &self.node_certificate),
            ("node key", &self.node_key),
            ("primary certificate", &self.primary_certificate),
            ("primary key", &self.primary_key),
            ("signing key", &self.signing_key),
        ]
    }
}

/// The dev CA's parameters: one definition, so a re-created issuer's name matches the subject
/// of the CA certificate exactly (chains are matched by name).
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "mpic-node development CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Generates the whole set. Refuses to overwrite any existing file.
pub fn generate(
    paths: &DevPaths,
    primary_name: &str,
) -> Result<mpic_protocol::SigningKey, CredentialsError> {
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let node_key = KeyPair::generate()?;
    let mut node_params = CertificateParams::new(DEV_NODE_NAMES.map(String::from).to_vec())?;
    node_params
        .distinguished_name
        .push(DnType::CommonName, "mpic-node development node");
    node_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let node_cert = node_params.signed_by(&node_key, &issuer)?;

    let primary_key = KeyPair::generate()?;
    let mut primary_params = CertificateParams::new(Vec::<String>::new())?;
    primary_params
        .distinguished_name
        .push(DnType::CommonName, primary_name);
    primary_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let primary_cert = primary_params.signed_by(&primary_key, &issuer)?;

    write_public(&paths.ca_certificate, ca_cert.pem().as_bytes())?;
    write_secret(&paths.ca_key, issuer.key().serialize_pem().as_bytes())?;
    write_public(&paths.node_certificate, node_cert.pem().as_bytes())?;
    write_secret(&paths.node_key, node_key.serialize_pem().as_bytes())?;
    write_public(&paths.primary_certificate, primary_cert.pem().as_bytes())?;
    write_secret(&paths.primary_key, primary_key.serialize_pem().as_bytes())?;
    write_new_signing_key(&paths.signing_key)
}

/// Signs one more client certificate with an existing dev CA (tests use it for a second primary).
pub fn issue_client_certificate(
    paths: &DevPaths,
    name: &str,
    cert_out: &Path,
    key_out: &Path,
) -> Result<(), CredentialsError> {
    let ca_pem =
        std::fs::read_to_string(&paths.ca_key).map_err(|source| CredentialsError::Read {
            path: paths.ca_key.clone(),
            source,
        })?;
    let ca_key = KeyPair::from_pem(&ca_pem)?;
    let ca_params = ca_params()?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer)?;
    write_public(cert_out, cert.pem().as_bytes())?;
    write_secret(key_out, key.serialize_pem().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_loadable_set_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DevPaths::in_directory(dir.path());
        let key = generate(&paths, "dev-primary").unwrap();
        assert_eq!(
            super::super::load_certificates(&paths.ca_certificate)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            super::super::load_certificates(&paths.node_certificate)
                .unwrap()
                .len(),
            1
        );
        super::super::load_private_key(&paths.node_key).unwrap();
        super::super::load_private_key(&paths.primary_key).unwrap();
        assert_eq!(
            super::super::load_signing_key(&paths.signing_key)
                .unwrap()
                .key_id(),
            key.key_id()
        );
        assert!(matches!(
            generate(&paths, "again"),
            Err(CredentialsError::Write { .. })
        ));
    }
}
