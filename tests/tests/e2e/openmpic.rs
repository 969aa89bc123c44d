//! The Open MPIC endpoint of the real binary (`[openmpic]`): mutual TLS, Open MPIC's request and
//! response shapes, our signature in `mpic_node`. The full interop suite with open-mpic-core
//! itself, Knot and nginx is `make interop` (tests/interop); this one needs nothing installed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mpic_protocol::{Rir, SignedResult};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::node::{DevCredentials, NodeOptions, NodeProcess};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ZONE: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n\
    @ IN NS ns\nns IN A 127.0.0.1\n\
    ok IN CAA 0 issue \"ca.test\"\n\
    ok IN A 192.0.2.7\n\
    deny IN CAA 0 issue \"other.example\"\n\
    mail IN CAA 0 issuemail \"ca.test\"\n\
    mail IN CAA 0 issue \";\"\n\
    nomail IN CAA 0 issuemail \";\"\n\
    _dc.ok IN TXT \"x-RandomValue0123456789abcdef-y\"\n";

/// The reverse zone of 192.0.2.0/24 (BR 3.2.2.5.3 cases).
const REVERSE_ZONE: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n\
    @ IN NS ns.test.\n7 IN PTR ok.test.\n";

/// The account of the dns-account-01 case and its key authorization.
const ACCOUNT: &str = "https://ca.test/acct/1";
const KEY_AUTHORIZATION: &str = "token.thumbprint";

/// [`ZONE`] plus the dns-account-01 record of [`ACCOUNT`] at ok.test.
fn zone() -> String {
    use mpic_node::checks::dcv::{acme_dns01, dns_account01};
    format!(
        "{ZONE}{}. IN TXT \"{}\"\n",
        dns_account01::challenge_name("ok.test", ACCOUNT),
        acme_dns01::expected_digest(KEY_AUTHORIZATION)
    )
}

/// A TLS client config: the dev CA as the only root, and a client certificate when asked.
pub(crate) fn client(
    credentials: &DevCredentials,
    with_certificate: bool,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in credentials.ca().unwrap() {
        roots.add(ca).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = if with_certificate {
        let (chain, key) = credentials.identity("primary.pem", "primary.key").unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// POSTs `body` to `path`; returns the status and the body, or the connection error.
pub(crate) async fn post(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        Ok((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_mpic_endpoint_answers_in_open_mpic_shapes_with_our_signature() {
    let zone = zone();
    let server = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[
            ZoneText {
                origin: "test.",
                text: &zone,
            },
            ZoneText {
                origin: "2.0.192.in-addr.arpa.",
                text: REVERSE_ZONE,
            },
        ],
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let credentials = DevCredentials::generate(&work.path().join("creds")).unwrap();
    let options = NodeOptions::new("openmpic-1", Rir::Arin)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                server.address()
            ),
        )
        .with(
            "openmpic",
            "listen = [\"127.0.0.1:0\"]\ncaa_domains = [\"ca.test\"]",
        );
    let node = NodeProcess::start(work.path(), &credentials, &options).unwrap();
    let address = node
        .openmpic
        .expect("the ready line names the openmpic address");
    let primary = client(&credentials, true);

    let digest = mpic_node::checks::dcv::acme_dns01::expected_digest(KEY_AUTHORIZATION);
    let account_pass = format!(
        r#"{{"domain_or_ip_target":"ok.test","dcv_check_parameters":{{"validation_method":"dns-account-01","key_authorization_hash":"{digest}","expected_account_uri":"{ACCOUNT}"}}}}"#
    );
    let account_fail = format!(
        r#"{{"domain_or_ip_target":"ok.test","dcv_check_parameters":{{"validation_method":"dns-account-01","key_authorization_hash":"{digest}","expected_account_uri":"https://ca.test/acct/2"}}}}"#
    );
    let cases = [
        (
            "/caa",
            r#"{"domain_or_ip_target":"ok.test","trace_identifier":"t-1"}"#,
            (true, true, None),
        ),
        (
            "/caa",
            r#"{"domain_or_ip_target":"deny.test","caa_check_parameters":{"caa_domains":["ca.test"]}}"#,
            (true, false, Some("caa")),
        ),
        // S/MIME (RFC 9495 §4): only issuemail governs; issue is ignored.
        (
            "/caa",
            r#"{"domain_or_ip_target":"mail.test","caa_check_parameters":{"certificate_type":"s-mime"}}"#,
            (true, true, None),
        ),
        (
            "/caa",
            r#"{"domain_or_ip_target":"mail.test","caa_check_parameters":{"certificate_type":"tls-server"}}"#,
            (true, false, Some("caa")),
        ),
        (
            "/caa",
            r#"{"domain_or_ip_target":"deny.test","caa_check_parameters":{"certificate_type":"s-mime"}}"#,
            (true, true, None),
        ),
        (
            "/caa",
            r#"{"domain_or_ip_target":"nomail.test","caa_check_parameters":{"certificate_type":"s-mime"}}"#,
            (true, false, Some("caa")),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"ok.test","dcv_check_parameters":{"validation_method":"dns-change","challenge_value":"RandomValue0123456789abcdef","dns_record_type":"TXT","dns_name_prefix":"_dc"}}"#,
            (true, true, None),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"ok.test","dcv_check_parameters":{"validation_method":"dns-change","challenge_value":"RandomValue0123456789abcdef","dns_record_type":"TXT","dns_name_prefix":"_dc","require_exact_match":true}}"#,
            (true, false, Some("unauthorized")),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"192.0.2.7","dcv_check_parameters":{"validation_method":"reverse-address-lookup","challenge_value":"OK.test","dns_record_type":"PTR"}}"#,
            (true, true, None),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"192.0.2.8","dcv_check_parameters":{"validation_method":"reverse-address-lookup","challenge_value":"ok.test","dns_record_type":"PTR"}}"#,
            (true, false, Some("unauthorized")),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"ok.test","dcv_check_parameters":{"validation_method":"ip-address","challenge_value":"192.0.2.7","dns_record_type":"A"}}"#,
            (true, true, None),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"ok.test","dcv_check_parameters":{"validation_method":"ip-address","challenge_value":"192.0.2.7","dns_record_type":"AAAA"}}"#,
            (true, false, Some("unauthorized")),
        ),
        ("/dcv", account_pass.as_str(), (true, true, None)),
        (
            "/dcv",
            account_fail.as_str(),
            (true, false, Some("unauthorized")),
        ),
        (
            "/dcv",
            r#"{"domain_or_ip_target":"ok.test","dcv_check_parameters":{"validation_method":"x-future-method","challenge_value":"x"}}"#,
            (false, false, Some("unsupported")),
        ),
    ];
    for (path, body, (completed, passed, problem)) in cases {
        let (status, text) = post(address, Arc::clone(&primary), path, body)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["check_completed"], completed, "{body}: {text}");
        assert_eq!(json["check_passed"], passed, "{body}: {text}");
        assert_eq!(json["mpic_node"]["problem"].as_str(), problem, "{text}");
        // The signed result verifies under the node's key and says the same thing.
        let b64 = base64::engine::general_purpose::STANDARD;
        let signed = SignedResult {
            payload: b64
                .decode(json["mpic_node"]["payload"].as_str().unwrap())
                .unwrap(),
            signature: b64
                .decode(json["mpic_node"]["signature"].as_str().unwrap())
                .unwrap(),
            key_id: json["mpic_node"]["key_id"].as_str().unwrap().into(),
        };
        let payload = node.verifying_key.verify(&signed).unwrap();
        assert_eq!(payload.outcome.as_str(), json["mpic_node"]["outcome"]);
        assert_eq!(payload.perspective.id.as_str(), "openmpic-1");
    }
    let (_, text) = post(address, Arc::clone(&primary), "/caa", cases[0].1)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["mpic_node"]["request_id"], "t-1");
    assert_eq!(json["details"]["found_at"], "ok.test");

    // Refusals: a bad body is 400 with the reason, an unknown path 404, GET 405.
    let refusals = [
        (
            "/caa",
            r#"{"domain_or_ip_target":"ok.test","bogus":1}"#,
            400,
            "bogus",
        ),
        ("/caa", "not json", 400, "expected"),
        (
            "/caa",
            r#"{"domain_or_ip_target":"ok.test","caa_check_parameters":{"certificate_type":"code-signing"}}"#,
            400,
            "not tls-server or s-mime",
        ),
        ("/nowhere", "{}", 404, "/caa and /dcv"),
    ];
    for (path, body, expected, needle) in refusals {
        let (status, text) = post(address, Arc::clone(&primary), path, body)
            .await
            .unwrap();
        assert_eq!(status, expected, "{path} {body}: {text}");
        assert!(text.contains(needle), "{text}");
    }
    // No client certificate: the TLS 1.3 handshake completes on the client's side, so the
    // refusal shows as the server's alert or a closed connection, never an answer.
    let anonymous = post(address, client(&credentials, false), "/caa", cases[0].1).await;
    assert!(
        anonymous.is_err(),
        "answered without a client certificate: {anonymous:?}"
    );
    assert_eq!(
        node.metric("mpic_node_openmpic_requests_total{endpoint=\"caa\",status=\"200\"}")
            .unwrap(),
        // Six CAA cases (two TLS, four S/MIME) and the request_id re-ask.
        7.0
    );
}
