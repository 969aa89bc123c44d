//! Table tests of the contact syntax and extraction (BR Appendix A).

use super::*;

#[test]
fn names_and_tags() {
    use ContactKind::{Email, Phone};
    #[rustfmt::skip]
    let cases = [
        ("email TXT", Email, "example.com", "_validation-contactemail.example.com"),
        ("phone TXT", Phone, "example.com", "_validation-contactphone.example.com"),
        ("wildcard uses the base name", Email, "*.example.com", "_validation-contactemail.example.com"),
    ];
    for (name, kind, adn, want) in cases {
        assert_eq!(txt_record_name(kind, adn), want, "{name}");
    }
    assert_eq!(Email.caa_tag(), "contactemail");
    assert_eq!(Phone.caa_tag(), "contactphone");
}

#[test]
fn emails() {
    let local_64 = format!("{}@example.com", "a".repeat(64));
    let local_65 = format!("{}@example.com", "a".repeat(65));
    let label_63 = format!("a@{}.com", "a".repeat(63));
    let label_64 = format!("a@{}.com", "a".repeat(64));
    let labels = vec!["a".repeat(60); 4].join(".");
    let domain_253 = format!("a@{labels}.example");
    let domain_255 = format!("a@{labels}.example.com");
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        ("plain", "admin@example.com", true),
        ("dotted local part", "first.last@example.com", true),
        ("every atext symbol", "!#$%&'*+-/=?^_`{|}~@example.com", true),
        ("plus tag", "dns+ca@example.com", true),
        ("subdomain with digits and hyphens", "a@mail-1.sub2.example.com", true),
        ("single-label domain", "root@localhost", true),
        ("UTF-8 local part (RFC 6532)", "用户@example.com", true),
        ("UTF-8 domain (RFC 6532)", "admin@例子.测试", true),
        ("64-octet local part", &local_64, true),
        ("63-octet label", &label_63, true),
        ("253-octet domain", &domain_253, true),
        ("empty", "", false),
        ("no @", "admin.example.com", false),
        ("two @", "a@b@example.com", false),
        ("empty local part", "@example.com", false),
        ("empty domain", "admin@", false),
        ("leading space", " admin@example.com", false),
        ("trailing space", "admin@example.com ", false),
        ("trailing newline", "admin@example.com\n", false),
        ("display name", "Admin <admin@example.com>", false),
        ("angle brackets", "<admin@example.com>", false),
        ("comment", "admin(ops)@example.com", false),
        ("mailto URI", "mailto:admin@example.com", false),
        ("quoted local part (our rule)", "\"a b\"@example.com", false),
        ("domain literal (our rule)", "admin@[192.0.2.1]", false),
        ("leading dot in local part", ".admin@example.com", false),
        ("trailing dot in local part", "admin.@example.com", false),
        ("double dot in local part", "ad..min@example.com", false),
        ("comma in local part", "a,b@example.com", false),
        ("trailing dot in domain", "admin@example.com.", false),
        ("double dot in domain", "admin@example..com", false),
        ("underscore in domain", "admin@ex_ample.com", false),
        ("label starts with hyphen", "admin@-example.com", false),
        ("label ends with hyphen", "admin@example-.com", false),
        ("C1 control character", "ad\u{0085}min@example.com", false),
        ("65-octet local part", &local_65, false),
        ("64-octet label", &label_64, false),
        ("255-octet domain", &domain_255, false),
    ];
    for (name, value, want) in cases {
        assert_eq!(valid_email(value), *want, "{name}: {value:?}");
    }
}

#[test]
fn phones() {
    let cases = [
        ("digits only", "+15555550100", true),
        ("hyphens", "+1-555-555-0100", true),
        ("dots", "+1.555.555.0100", true),
        ("parentheses", "+1 (555) 555-0100", true),
        ("spaces", "+44 20 7946 0958", true),
        ("one digit", "+1", true),
        ("separator right after +", "+-1", true),
        ("15 digits", "+123456789012345", true),
        ("15 digits with separators", "+123 456 789 012 345", true),
        ("empty", "", false),
        ("no +", "15555550100", false),
        ("+ alone", "+", false),
        ("separators only", "+-().", false),
        ("16 digits", "+1234567890123456", false),
        ("leading space", " +15555550100", false),
        ("two +", "++15555550100", false),
        ("+ inside", "+1555+5550100", false),
        ("letters", "+1-800-FLOWERS", false),
        ("extension parameter", "+15555550100;ext=123", false),
        ("tel URI", "tel:+15555550100", false),
        ("tab", "+1\t555", false),
        ("non-ASCII digits", "+١٢٣", false),
    ];
    for (name, value, want) in cases {
        assert_eq!(valid_phone(value), want, "{name}: {value:?}");
    }
}

#[test]
fn phone_normalisation() {
    let cases = [
        ("already normal", "+15555550100", "+15555550100"),
        ("separators dropped", "+1 (555) 555-0100", "+15555550100"),
        ("dots dropped", "+1.555.555.0100", "+15555550100"),
    ];
    for (name, value, want) in cases {
        assert_eq!(normalize_phone(value), want, "{name}");
    }
}

#[test]
fn txt_contacts() {
    let values: Vec<Vec<u8>> = vec![
        b"admin@example.com".to_vec(),
        b" admin@example.com".to_vec(),
        b"not an address".to_vec(),
        b"+1 555 555 0100".to_vec(),
        b"\xffadmin@example.com".to_vec(),
        "用户@例子.测试".as_bytes().to_vec(),
        b"admin@example.com".to_vec(),
        b"+1-555-555-0100".to_vec(),
        b"+44 20 7946 0958".to_vec(),
    ];
    #[rustfmt::skip]
    let cases = [
        ("emails: valid ones exactly, deduplicated", ContactKind::Email, vec!["admin@example.com", "用户@例子.测试"]),
        ("phones: normalised, deduplicated after", ContactKind::Phone, vec!["+15555550100", "+442079460958"]),
    ];
    for (name, kind, want) in cases {
        assert_eq!(contacts_from_txt(&values, kind), want, "{name}");
    }
    assert!(
        contacts_from_txt(&[], ContactKind::Email).is_empty(),
        "no records"
    );
}

#[test]
fn caa_contacts() {
    #[rustfmt::skip]
    let records: Vec<(String, Vec<u8>)> = [
        ("issue", "ca.example"),
        ("contactemail", "dns@example.com"),
        ("ContactEmail", "ops@example.com"),
        ("contactemail", "Ops <ops@example.com>"),
        ("contactphone", "+1 (555) 555-0100"),
        ("CONTACTPHONE", "555-0100"),
        ("contactphone", "dns@example.com"),
        ("iodef", "mailto:security@example.com"),
        ("contactemailx", "x@example.com"),
    ]
    .iter()
    .map(|(tag, value)| ((*tag).to_owned(), value.as_bytes().to_vec()))
    .collect();
    #[rustfmt::skip]
    let cases = [
        ("emails: tag case ignored, invalid dropped", ContactKind::Email, vec!["dns@example.com", "ops@example.com"]),
        ("phones: tag case ignored, normalised", ContactKind::Phone, vec!["+15555550100"]),
    ];
    for (name, kind, want) in cases {
        assert_eq!(contacts_from_caa(&records, kind), want, "{name}");
    }
}
