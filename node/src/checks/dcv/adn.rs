//! Authorization Domain Names (BR 3.2.2.4 as amended by SC-101v2, effective 2026-09-15): per DCV
//! method, which ADN operations the BR allows, and whether a CNAME seen in an answer chose the ADN.
//!
//! SC-101v2 replaces the BR 1.6.1 definition ("The CA may use the FQDN returned from a DNS CNAME
//! lookup as the FQDN for the purposes of domain validation") with an algorithm in BR 3.2.2.4:
//!
//! > 3. If `A` is an FQDN:
//! >    1. Optionally, if the validation method has a check in the CNAME column below, replace
//! >       `A` with the result of a DNS CNAME lookup of `A`. This step may be repeated.
//! >    2. If the validation method has a check in the Prune column below, prune zero or more
//! >       Domain Labels of `A` ...
//! > 5. Use `A` as the ADN.
//!
//! and a table with the columns Wildcard, Prune, CNAME and Onion, one row per method
//! ([`rules`]). Pure pieces only; `lookup` applies them.
//!
//! **Choosing the ADN versus reading the record.** The CNAME column governs step 3.1 only: a
//! CNAME *owned by the FQDN itself*, whose target then stands in for the FQDN. A CNAME owned by
//! the record's name (`_validation-persist.<ADN>`, `_acme-challenge.<ADN>`, a `_prefix.<ADN>`)
//! does not change the ADN: the record is still the one "returned in a query for" a name built
//! on the ADN (BR 3.2.2.4.7 wording), and the pre-SC-101 3.2.2.4.22 said so outright ("CNAME
//! records MAY be followed when resolving the Persistent DCV TXT Record"). So every method may
//! follow a CNAME at its record name; only methods with a CNAME check may follow one at the ADN.

use mpic_protocol::DcvMethod;

/// One row of the SC-101v2 table in BR 3.2.2.4: which steps of the ADN algorithm a method allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdnRules {
    /// The BR section of the row, e.g. `"3.2.2.4.7"`.
    pub section: &'static str,
    /// Wildcard column: the method may validate a Wildcard Domain Name (step 2).
    pub wildcard: bool,
    /// Prune column: labels may be pruned toward the Base Domain Name (steps 3.2, 4.2).
    pub prune: bool,
    /// CNAME column: the target of a CNAME lookup of the FQDN may serve as the ADN (step 3.1).
    pub cname: bool,
    /// Onion column: the method may validate an Onion Domain Name (Appendix B).
    pub onion: bool,
}

impl AdnRules {
    /// Whether DNSSEC validation covers CNAME lookups made to choose the ADN for this method:
    /// exactly the methods that may make them. BR 3.2.2.4 (SC-101v2): "DNSSEC validation ...
    /// MUST be performed on all DNS queries ... including CNAME lookups performed while choosing
    /// the ADN"; for the email methods (.4, .13, .14) "on all DNS CNAME, CAA, TXT queries
    /// attempting to obtain the Authorization Domain Name". The node validates every lookup it
    /// makes (`lookup` fails a bogus answer, chain included), so this only documents the rule.
    pub fn dnssec_covers_adn_cnames(&self) -> bool {
        self.cname
    }
}

const fn row(
    section: &'static str,
    wildcard: bool,
    prune: bool,
    cname: bool,
    onion: bool,
) -> AdnRules {
    AdnRules {
        section,
        wildcard,
        prune,
        cname,
        onion,
    }
}

/// The SC-101v2 row for `method` (BR 3.2.2.4 table), or `None` for a method with no row: the
/// IP-address methods of BR 3.2.2.5 (no ADN) and methods this version does not know.
///
/// `acme-dns-01` is BR 3.2.2.4.7 (RFC 8555 §8.4 is one way to do DNS Change), so it takes that
/// row.
pub fn rules(method: &DcvMethod) -> Option<AdnRules> {
    Some(match method {
        // | 3.2.2.4.7 DNS Change | ✔️ | ✔️ | ✔️ | - |
        DcvMethod::DnsChange | DcvMethod::AcmeDns01 => row("3.2.2.4.7", true, true, true, false),
        // | 3.2.2.4.8 IP Address | - | - | - | - |
        DcvMethod::IpAddress => row("3.2.2.4.8", false, false, false, false),
        // | 3.2.2.4.13 Email to DNS CAA Contact | ✔️ | ✔️ | ✔️ | - |
        DcvMethod::ContactEmailCaa => row("3.2.2.4.13", true, true, true, false),
        // | 3.2.2.4.14 Email to DNS TXT Contact | ✔️ | ✔️ | ✔️ | - |
        DcvMethod::ContactEmailTxt => row("3.2.2.4.14", true, true, true, false),
        // | 3.2.2.4.16 Phone Contact with DNS TXT Record Phone Contact | ✔️ | ✔️ | ✔️ | - |
        DcvMethod::ContactPhoneTxt => row("3.2.2.4.16", true, true, true, false),
        // | 3.2.2.4.17 Phone Contact with DNS CAA Phone Contact | ✔️ | ✔️ | ✔️ | - |
        DcvMethod::ContactPhoneCaa => row("3.2.2.4.17", true, true, true, false),
        // | 3.2.2.4.18 Agreed-Upon Change to Website v2 | - | - | - | ✔️ |
        DcvMethod::WebsiteChange => row("3.2.2.4.18", false, false, false, true),
        // | 3.2.2.4.19 Agreed-Upon Change to Website - ACME | - | - | - | ✔️ |
        DcvMethod::AcmeHttp01 => row("3.2.2.4.19", false, false, false, true),
        // | 3.2.2.4.20 TLS Using ALPN | - | - | - | ✔️ |
        DcvMethod::AcmeTlsAlpn01 => row("3.2.2.4.20", false, false, false, true),
        // | 3.2.2.4.21 DNS Labeled with Account ID - ACME | ✔️ | ✔️ | - | - |
        DcvMethod::AcmeDnsAccount01 => row("3.2.2.4.21", true, true, false, false),
        // | 3.2.2.4.22 DNS TXT Record with Persistent Value | ✔️ | ✔️ | - | - |
        DcvMethod::DnsPersist01 => row("3.2.2.4.22", true, true, false, false),
        // BR 3.2.2.5.3 (an IP identifier, no ADN), `Other` and methods added later: no row.
        _ => return None,
    })
}

/// Whether an answer for a lookup of `asked` used a CNAME target in place of the ADN `adn`
/// (BR 3.2.2.4 step 3.1): `asked` is the ADN itself and the answer's CNAME chain starts there.
/// A chain that starts at a name below the ADN (the record's name) only reads the record.
/// Names compare case-insensitively, with or without the root dot (RFC 4343).
pub fn cname_replaced_adn(adn: &str, asked: &str, chain_start: Option<&str>) -> bool {
    let same = |a: &str, b: &str| {
        a.trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.'))
    };
    chain_start.is_some_and(|owner| same(asked, adn) && same(owner, adn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_row() {
        // (method, section, wildcard, prune, cname, onion): the SC-101v2 table, row by row.
        let table: &[(DcvMethod, &str, bool, bool, bool, bool)] = &[
            (DcvMethod::DnsChange, "3.2.2.4.7", true, true, true, false),
            (DcvMethod::AcmeDns01, "3.2.2.4.7", true, true, true, false),
            (
                DcvMethod::IpAddress,
                "3.2.2.4.8",
                false,
                false,
                false,
                false,
            ),
            (
                DcvMethod::ContactEmailCaa,
                "3.2.2.4.13",
                true,
                true,
                true,
                false,
            ),
            (
                DcvMethod::ContactEmailTxt,
                "3.2.2.4.14",
                true,
                true,
                true,
                false,
            ),
            (
                DcvMethod::ContactPhoneTxt,
                "3.2.2.4.16",
                true,
                true,
                true,
                false,
            ),
            (
                DcvMethod::ContactPhoneCaa,
                "3.2.2.4.17",
                true,
                true,
                true,
                false,
            ),
            (
                DcvMethod::WebsiteChange,
                "3.2.2.4.18",
                false,
                false,
                false,
                true,
            ),
            (
                DcvMethod::AcmeHttp01,
                "3.2.2.4.19",
                false,
                false,
                false,
                true,
            ),
            (
                DcvMethod::AcmeTlsAlpn01,
                "3.2.2.4.20",
                false,
                false,
                false,
                true,
            ),
            (
                DcvMethod::AcmeDnsAccount01,
                "3.2.2.4.21",
                true,
                true,
                false,
                false,
            ),
            (
                DcvMethod::DnsPersist01,
                "3.2.2.4.22",
                true,
                true,
                false,
                false,
            ),
        ];
        for (method, section, wildcard, prune, cname, onion) in table {
            let want = row(section, *wildcard, *prune, *cname, *onion);
            assert_eq!(rules(method), Some(want), "{method:?}");
            assert_eq!(want.dnssec_covers_adn_cnames(), *cname, "{method:?}");
        }
    }

    #[test]
    fn methods_without_a_row() {
        for method in [
            DcvMethod::ReverseAddressLookup,
            DcvMethod::Other("x-future".into()),
        ] {
            assert_eq!(rules(&method), None, "{method:?}");
        }
    }

    #[test]
    fn which_cnames_choose_the_adn() {
        // (case, ADN, name asked, owner of the first CNAME in the answer, chose the ADN)
        let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
            (
                "no chain",
                "www.example.com",
                "www.example.com",
                None,
                false,
            ),
            (
                "cname at the adn",
                "www.example.com",
                "www.example.com",
                Some("www.example.com."),
                true,
            ),
            (
                "case and root dot",
                "WWW.example.com.",
                "www.EXAMPLE.com",
                Some("www.example.com"),
                true,
            ),
            (
                "cname at the record name",
                "example.com",
                "_validation-persist.example.com",
                Some("_validation-persist.example.com."),
                false,
            ),
            (
                "prefixed query",
                "example.com",
                "_dc.example.com",
                Some("example.com."),
                false,
            ),
            (
                "chain elsewhere",
                "www.example.com",
                "www.example.com",
                Some("other.example."),
                false,
            ),
        ];
        for (case, adn, asked, start, want) in cases {
            assert_eq!(cname_replaced_adn(adn, asked, *start), *want, "{case}");
        }
    }
}
