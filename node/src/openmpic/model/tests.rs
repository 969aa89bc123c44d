use super::*;

fn dcv(json: &str) -> Result<Target, Refusal> {
    serde_json::from_str::<DcvRequest>(json).unwrap().target()
}

#[test]
fn caa_uses_the_request_domains_or_the_configured_ones() {
    let request: CaaRequest =
        serde_json::from_str(r#"{"domain_or_ip_target":"*.a.test","caa_check_parameters":{"caa_domains":["ca.test"],"certificate_type":"tls-server","allow_lookup_failure":true}}"#).unwrap();
    let Check::Caa(caa) = request.target(&[]).unwrap().check else {
        panic!()
    };
    assert_eq!(caa.issuer_domains, ["ca.test"]);
    assert!(caa.wildcard && caa.allow_lookup_failure);
    // open-mpic-core 6.5 sends no account or method: RFC 8657 records fail closed.
    assert_eq!(caa.accounts().count(), 0);
    assert_eq!(caa.method, None);
    let bare: CaaRequest = serde_json::from_str(r#"{"domain_or_ip_target":"a.test"}"#).unwrap();
    assert_eq!(
        bare.target(&[]).unwrap_err().0,
        "caa_check_parameters.caa_domains is empty and this node has no openmpic.caa_domains"
    );
    let Check::Caa(caa) = bare.target(&["ca.test".into()]).unwrap().check else {
        panic!()
    };
    assert_eq!(caa.issuer_domains, ["ca.test"]);
}

#[test]
fn caa_certificate_type_maps_to_the_protocol() {
    let cases = [
        ("absent", "", Ok(None)),
        (
            "tls-server",
            r#","certificate_type":"tls-server""#,
            Ok(None),
        ),
        (
            "s-mime",
            r#","certificate_type":"s-mime""#,
            Ok(Some("s-mime")),
        ),
        (
            "unknown",
            r#","certificate_type":"code-signing""#,
            Err("certificate_type \"code-signing\" is not tls-server or s-mime"),
        ),
    ];
    for (name, field, expected) in cases {
        let json = format!(
            r#"{{"domain_or_ip_target":"*.a.test","caa_check_parameters":{{"caa_domains":["ca.test"]{field}}}}}"#
        );
        let request: CaaRequest = serde_json::from_str(&json).unwrap();
        match (request.target(&[]), expected) {
            (Ok(target), Ok(certificate_type)) => {
                let Check::Caa(caa) = target.check else {
                    panic!("{name}: not a CAA check")
                };
                assert_eq!(caa.certificate_type.as_deref(), certificate_type, "{name}");
                // S/MIME has no issuewild selection.
                assert_eq!(caa.wildcard, certificate_type.is_none(), "{name}");
            }
            (Err(refusal), Err(message)) => assert_eq!(refusal.0, message, "{name}"),
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[test]
fn caa_account_and_method_fields_are_not_open_mpic_fields() {
    // open-mpic-core 6.5's CaaCheckParameters has only certificate_type, caa_domains and
    // allow_lookup_failure; our own names are unknown fields there.
    for field in [
        r#""account_uris":["https://ca.test/a/1"]"#,
        r#""validation_method":"dns-01""#,
    ] {
        let text =
            format!(r#"{{"domain_or_ip_target":"a.test","caa_check_parameters":{{{field}}}}}"#);
        let error = serde_json::from_str::<CaaRequest>(&text).unwrap_err();
        assert!(
            error.to_string().contains("unknown field"),
            "{field}: {error}"
        );
    }
}

#[test]
fn unknown_fields_are_refused() {
    let error = serde_json::from_str::<CaaRequest>(r#"{"domain_or_ip_target":"a.test","bogus":1}"#)
        .unwrap_err();
    assert!(
        error.to_string().contains("unknown field `bogus`"),
        "{error}"
    );
}

#[test]
fn dns_change_carries_open_mpic_matching_rules() {
    let target = dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"dns-change","challenge_value":"v","dns_record_type":"CNAME","dns_name_prefix":"_p","require_exact_match":true,"require_exact_case":true}}"#).unwrap();
    let Check::Dcv(check) = target.check else {
        panic!()
    };
    assert_eq!(check.method, DcvMethod::DnsChange);
    assert_eq!(check.record_type.as_deref(), Some("CNAME"));
    assert_eq!(check.prefix.as_deref(), Some("_p"));
    assert!(check.exact_match && check.case_insensitive);
}

#[test]
fn every_method_maps_and_missing_parameters_are_named() {
    let cases = [
        (
            r#"{"validation_method":"acme-http-01","token":"t","key_authorization":"t.k"}"#,
            DcvMethod::AcmeHttp01,
        ),
        (
            r#"{"validation_method":"acme-dns-01","key_authorization_hash":"h"}"#,
            DcvMethod::AcmeDns01,
        ),
        (
            r#"{"validation_method":"acme-tls-alpn-01","key_authorization_hash":"h"}"#,
            DcvMethod::AcmeTlsAlpn01,
        ),
        (
            r#"{"validation_method":"website-change","challenge_value":"v","http_token_path":"f","url_scheme":"https"}"#,
            DcvMethod::WebsiteChange,
        ),
        (
            r#"{"validation_method":"dns-persistent","issuer_domain_names":["ca.test"],"expected_account_uri":"https://ca.test/a/1"}"#,
            DcvMethod::DnsPersist01,
        ),
        (
            r#"{"validation_method":"contact-email-caa","challenge_value":"a@b.test","dns_record_type":"CAA"}"#,
            DcvMethod::ContactEmailCaa,
        ),
        (
            r#"{"validation_method":"ip-address","challenge_value":"192.0.2.1","dns_record_type":"A"}"#,
            DcvMethod::IpAddress,
        ),
        (
            r#"{"validation_method":"reverse-address-lookup","challenge_value":"a.test","dns_record_type":"PTR"}"#,
            DcvMethod::ReverseAddressLookup,
        ),
        (
            r#"{"validation_method":"dns-account-01","key_authorization_hash":"h","expected_account_uri":"https://ca.test/a/1"}"#,
            DcvMethod::AcmeDnsAccount01,
        ),
        (
            r#"{"validation_method":"x-future","challenge_value":"v"}"#,
            DcvMethod::Other("x-future".into()),
        ),
    ];
    for (parameters, method) in cases {
        let json =
            format!(r#"{{"domain_or_ip_target":"a.test","dcv_check_parameters":{parameters}}}"#);
        let Check::Dcv(check) = dcv(&json).unwrap().check else {
            panic!()
        };
        assert_eq!(check.method, method, "{parameters}");
    }
    assert_eq!(
        dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"acme-http-01","token":"t"}}"#).unwrap_err().0,
        "dcv_check_parameters.key_authorization is required"
    );
    assert!(dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"website-change","challenge_value":"v","http_token_path":"f","match_regex":"x"}}"#).unwrap_err().0.contains("match_regex"));
    assert!(dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"acme-http-01","token":"t","key_authorization":"k","http_headers":{"X":"1"}}}"#).unwrap_err().0.contains("http_headers"));
}

#[test]
fn address_methods_map_their_parameters_and_refuse_what_they_cannot_honour() {
    let Check::Dcv(check) = dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"ip-address","challenge_value":"2001:db8::1","dns_record_type":"AAAA"}}"#).unwrap().check else {
        panic!()
    };
    assert_eq!(check.expected.as_deref(), Some("2001:db8::1"));
    assert_eq!(check.record_type.as_deref(), Some("AAAA"));
    let Check::Dcv(check) = dcv(r#"{"domain_or_ip_target":"192.0.2.7","dcv_check_parameters":{"validation_method":"reverse-address-lookup","challenge_value":"host.a.test"}}"#).unwrap().check else {
        panic!()
    };
    assert_eq!(check.method, DcvMethod::ReverseAddressLookup);
    assert_eq!(check.expected.as_deref(), Some("host.a.test"));
    let Check::Dcv(check) = dcv(r#"{"domain_or_ip_target":"a.test","dcv_check_parameters":{"validation_method":"dns-account-01","key_authorization_hash":"h","expected_account_uri":"https://ca.test/a/1"}}"#).unwrap().check else {
        panic!()
    };
    assert_eq!(
        (check.expected.as_deref(), check.account_uri.as_deref()),
        (Some("h"), Some("https://ca.test/a/1"))
    );
    let refused = [
        (
            r#"{"validation_method":"ip-address","challenge_value":"192.0.2.1","dns_record_type":"TXT"}"#,
            "A or AAAA",
        ),
        (
            r#"{"validation_method":"ip-address","challenge_value":"192.0.2.1"}"#,
            "dns_record_type is required",
        ),
        (
            r#"{"validation_method":"ip-address","challenge_value":"192.0.2.1","dns_record_type":"A","dns_name_prefix":"_x"}"#,
            "dns_name_prefix",
        ),
        (
            r#"{"validation_method":"reverse-address-lookup","challenge_value":"a.test","dns_record_type":"TXT"}"#,
            "PTR",
        ),
        (
            r#"{"validation_method":"dns-account-01","key_authorization_hash":"h"}"#,
            "expected_account_uri is required",
        ),
    ];
    for (parameters, message) in refused {
        let json =
            format!(r#"{{"domain_or_ip_target":"a.test","dcv_check_parameters":{parameters}}}"#);
        let error = dcv(&json).unwrap_err().0;
        assert!(error.contains(message), "{parameters}: {error}");
    }
}
