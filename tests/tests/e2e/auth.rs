//! Mutual TLS: only primaries with a certificate from the configured CA (and, when pins are
//! configured, a pinned key) are served.

use mpic_protocol::Rir;
use mpic_protocol::client::{ClientError, ClientOptions, Primary};
use mpic_tests::{DevCredentials, NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, probe_target, request};

fn spki_pin(credentials: &DevCredentials, cert: &str) -> String {
    use base64::Engine as _;
    let (chain, _) = credentials.identity(cert, "primary.key").unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(chain[0].as_ref()).unwrap();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        parsed.tbs_certificate.subject_pki.raw,
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

async fn query_error(primary: &Primary) -> ClientError {
    primary
        .query(0, &request(vec![probe_target("example.com")]))
        .await
        .expect_err("must be refused")
}

#[tokio::test]
async fn a_primary_without_a_certificate_is_refused() {
    let lab = Lab::new();
    let node = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("auth-1", Rir::Arin),
    )
    .unwrap();
    let anonymous = Primary::new(
        vec![node.endpoint()],
        ClientOptions::new(lab.credentials.ca().unwrap(), None),
    )
    .unwrap();
    let error = query_error(&anonymous).await;
    assert!(
        matches!(&error, ClientError::Unauthorized { detail, .. } if detail.contains("certificate required")),
        "{error}"
    );
}

#[tokio::test]
async fn a_primary_with_a_certificate_from_another_ca_is_refused() {
    let lab = Lab::new();
    let other = DevCredentials::generate(&lab.dir.path().join("other-ca")).unwrap();
    let node = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("auth-2", Rir::Arin),
    )
    .unwrap();
    // Trusts the node's CA for the server, but presents a client certificate from another CA.
    let options = ClientOptions::new(
        lab.credentials.ca().unwrap(),
        Some(other.identity("primary.pem", "primary.key").unwrap()),
    );
    let stranger = Primary::new(vec![node.endpoint()], options).unwrap();
    let error = query_error(&stranger).await;
    assert!(
        matches!(&error, ClientError::Unauthorized { detail, .. } if detail.contains("TLS alert")),
        "{error}"
    );
    node.wait_for_metric(
        "mpic_node_quic_connections_total{result=\"handshake_failed\"}",
        1.0,
    )
    .unwrap();
}

#[tokio::test]
async fn a_pinned_out_key_is_refused_and_a_pinned_key_is_served() {
    let lab = Lab::new();
    lab.credentials.issue_primary("second").unwrap();
    let pin = spki_pin(&lab.credentials, "primary.pem");
    let options = NodeOptions::new("auth-3", Rir::Arin)
        .with("quic", &format!("client_spki_pins = [\"{pin}\"]"));
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();

    let pinned = primary(&lab.credentials, &[&node]).unwrap();
    let results = pinned
        .query(0, &request(vec![probe_target("example.com")]))
        .await
        .unwrap();
    assert_eq!(results.len(), 1);

    let second = ClientOptions::new(
        lab.credentials.ca().unwrap(),
        Some(
            lab.credentials
                .identity("second.pem", "second.key")
                .unwrap(),
        ),
    );
    let unpinned = Primary::new(vec![node.endpoint()], second).unwrap();
    let error = query_error(&unpinned).await;
    assert!(
        matches!(&error, ClientError::Unauthorized { detail, .. } if detail.contains("pin list")),
        "{error}"
    );
    node.wait_for_metric(
        "mpic_node_quic_connections_total{result=\"unauthorized\"}",
        1.0,
    )
    .unwrap();
}
