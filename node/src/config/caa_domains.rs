//! A list of CAA Issuer Domain Names in the config (`openmpic.caa_domains`,
//! `tenants.<name>.caa_domains`): one validation for every such list — a count cap, each entry
//! an Issuer Domain Name (RFC 8659 §4.2: letters, digits, hyphens and dots), kept lowercase.

use super::validate::Problems;

/// The longest Issuer Domain Name: a domain name's 253 characters.
const MAX_NAME_LENGTH: usize = 253;

/// Validates the list `domains` found at key `key` (e.g. `openmpic.caa_domains`): at most
/// `max` entries, each an Issuer Domain Name. Every problem is pushed onto `p`, the count's
/// under `key` and each bad entry's under `key[i]`; `None` if there was one, else the names
/// in ASCII lowercase, in their order.
pub(super) fn validate(
    key: &str,
    domains: Vec<String>,
    max: usize,
    p: &mut Problems,
) -> Option<Vec<String>> {
    let mut valid = true;
    if domains.len() > max {
        p.push(
            key,
            format!("has {} entries (expected at most {max})", domains.len()),
        );
        valid = false;
    }
    for (i, domain) in domains.iter().enumerate() {
        if !is_issuer_domain_name(domain) {
            p.push(
                format!("{key}[{i}]"),
                format!("{domain:?} is not an Issuer Domain Name (expected e.g. \"ca.example\")"),
            );
            valid = false;
        }
    }
    valid.then(|| {
        domains
            .into_iter()
            .map(|domain| domain.to_ascii_lowercase())
            .collect()
    })
}

/// Whether `domain` is non-empty, at most [`MAX_NAME_LENGTH`] characters, and only letters,
/// digits, hyphens and dots.
fn is_issuer_domain_name(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_NAME_LENGTH
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::MAX_NAME_LENGTH;
    use crate::config::openmpic::MAX_CAA_DOMAINS;
    use crate::config::tenants::MAX_TENANT_CAA_DOMAINS;
    use crate::config::{Config, ConfigError};

    const BASE: &str = "[perspective]\nid = \"t-1\"\nrir = \"ARIN\"\nlocation = \"lab\"\n\
        [quic]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\nclient_ca = \"ca.pem\"\n\
        [signing]\nkey = \"s.pem\"\n";

    /// Both lists: `(key prefix, table text)` with `list` as its `caa_domains`.
    fn both(list: &str) -> [(&'static str, String); 2] {
        [
            (
                "openmpic.caa_domains",
                format!("{BASE}[openmpic]\ncaa_domains = {list}\n"),
            ),
            (
                "tenants[0].caa_domains",
                format!(
                    "{BASE}[[tenants]]\nname = \"a\"\nsubject_names = [\"p\"]\ncaa_domains = {list}\n"
                ),
            ),
        ]
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new("/etc"))
    }

    fn toml_list(domains: &[String]) -> String {
        let quoted: Vec<String> = domains.iter().map(|d| format!("{d:?}")).collect();
        format!("[{}]", quoted.join(", "))
    }

    #[test]
    fn both_caps_are_the_same() {
        assert_eq!(MAX_CAA_DOMAINS, MAX_TENANT_CAA_DOMAINS);
    }

    #[test]
    fn valid_lists_come_back_lowercase_in_order() {
        let longest = "a".repeat(MAX_NAME_LENGTH);
        let at_cap: Vec<String> = (0..MAX_CAA_DOMAINS)
            .map(|i| format!("c{i}.example"))
            .collect();
        for (name, domains, want) in [
            ("empty", vec![], vec![]),
            (
                "mixed case",
                vec!["CA.Example".to_owned()],
                vec!["ca.example".to_owned()],
            ),
            (
                "hyphen and digits, order kept",
                vec!["ca-2.example".to_owned(), "A.example".to_owned()],
                vec!["ca-2.example".to_owned(), "a.example".to_owned()],
            ),
            ("the longest name", vec![longest.clone()], vec![longest]),
            ("as many as allowed", at_cap.clone(), at_cap),
        ] {
            let [(_, openmpic), (_, tenant)] = both(&toml_list(&domains));
            let openmpic = load(&openmpic).unwrap().openmpic.caa_domains;
            let tenant = load(&tenant).unwrap().tenants[0].caa_domains.clone();
            assert_eq!(openmpic, want, "{name}: openmpic");
            assert_eq!(tenant, want, "{name}: tenant");
        }
    }

    #[test]
    fn every_problem_is_reported_under_its_key_in_both_places() {
        let long = "a".repeat(MAX_NAME_LENGTH + 1);
        let bad = |i: usize, domain: &str| {
            (
                format!("[{i}]"),
                format!("{domain:?} is not an Issuer Domain Name (expected e.g. \"ca.example\")"),
            )
        };
        let mut over: Vec<String> = (0..=MAX_CAA_DOMAINS)
            .map(|i| format!("c{i}.example"))
            .collect();
        over[1] = "b c".to_owned();
        let count = (
            String::new(),
            format!(
                "has {} entries (expected at most {MAX_CAA_DOMAINS})",
                MAX_CAA_DOMAINS + 1
            ),
        );
        for (name, domains, want) in [
            (
                "space",
                vec!["ca example".to_owned()],
                vec![bad(0, "ca example")],
            ),
            (
                "empty name",
                vec!["ok.example".to_owned(), String::new()],
                vec![bad(1, "")],
            ),
            ("too long", vec![long.clone()], vec![bad(0, &long)]),
            (
                "underscore",
                vec!["ca_x.example".to_owned()],
                vec![bad(0, "ca_x.example")],
            ),
            (
                "over the cap, and a bad name too",
                over,
                vec![count, bad(1, "b c")],
            ),
        ] {
            for (prefix, text) in both(&toml_list(&domains)) {
                let problems: Vec<(String, String)> = match load(&text) {
                    Err(ConfigError::Invalid(problems)) => problems
                        .into_iter()
                        .map(|problem| (problem.key, problem.message))
                        .collect(),
                    other => panic!("{name}: {prefix}: expected problems, got {other:?}"),
                };
                let want: Vec<(String, String)> = want
                    .iter()
                    .map(|(index, message)| (format!("{prefix}{index}"), message.clone()))
                    .collect();
                assert_eq!(problems, want, "{name}: {prefix}");
            }
        }
    }
}
