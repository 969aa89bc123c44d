//! The pure parts of the two address methods: BR 3.2.2.4.8 "IP Address" (an A/AAAA answer for the
//! FQDN holds the address the Applicant was validated for) and BR 3.2.2.5.3 "Reverse Address
//! Lookup" (a PTR record of the IP Address names the FQDN that was validated).
//!
//! **What the BR says now** (TLS BR v2.3.0, 2026-09-07):
//! - 3.2.2.4.8: "This method has been retired and MUST NOT be used. Prior validations using this
//!   method and validation data gathered according to this method SHALL NOT be used to issue
//!   certificates." (§1.2.2: "CAs MUST NOT rely on Method 3.2.2.4.8" from 2026-03-15.) Before that
//!   date a Network Perspective corroborated when it observed "the same IP address as the Primary
//!   Network Perspective".
//! - 3.2.2.5.3: "obtaining an FQDN associated with the IP Address through a reverse-IP lookup on
//!   the IP Address and then using that FQDN as an ADN" (from 2026-11-15 the ADN MUST be exactly
//!   the FQDN returned); a perspective corroborates when it observes "the same FQDN as the Primary
//!   Network Perspective". From 2027-03-15 "the CA MUST NOT rely on this method".
//!
//! The node checks the reverse-lookup half of 3.2.2.5.3 only: that the PTR names the FQDN the
//! primary expects. Validating that FQDN "using a method permitted under Section 3.2.2.4" is a
//! separate DCV target the primary sends (with the FQDN as the ADN).
//!
//! The node still runs both (issue 18 §3 asks for them over QUIC, Open MPIC and `check dcv`):
//! a perspective only reports what it sees, and a CA may need to re-check or audit validations
//! made while the methods were allowed. Whether a result may back issuance is the CA's decision
//! under the dates above; the node never refuses on the date.

use std::net::IpAddr;

/// Most expected addresses one `ip-address` check may name: a host's handful of A and AAAA
/// records; the cap bounds the comparison work a peer can ask for.
pub const MAX_EXPECTED_ADDRESSES: usize = 16;

/// Longest domain name in presentation form without the trailing dot (RFC 1035 §2.3.4).
const MAX_DOMAIN_LEN: usize = 253;

/// A request the address methods cannot run: the target or the expected value is not of the
/// form the method needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressMethodError {
    /// `ip-address` was given no expected address.
    #[error("ip-address needs expected: the IP address(es) the Applicant was validated for")]
    NoExpectedAddress,
    /// An entry of the expected list does not parse as an IPv4 or IPv6 address.
    #[error("expected entry {text:?} is not an IP address")]
    NotAnAddress {
        /// The entry as given.
        text: String,
    },
    /// More expected addresses than [`MAX_EXPECTED_ADDRESSES`].
    #[error("expected names {count} addresses, at most {MAX_EXPECTED_ADDRESSES} are accepted")]
    TooManyAddresses {
        /// How many were given.
        count: usize,
    },
    /// `ip-address` on a wildcard name: BR 3.2.2.4.8 "is NOT suitable for validating Wildcard
    /// Domain Names".
    #[error(
        "{identifier:?} is a wildcard name: ip-address (BR 3.2.2.4.8) cannot validate wildcards"
    )]
    Wildcard {
        /// The identifier.
        identifier: String,
    },
    /// `ip-address` on an IP identifier: the method validates an FQDN.
    #[error("{identifier:?} is an IP address: ip-address (BR 3.2.2.4.8) validates a domain name")]
    AddressIdentifier {
        /// The identifier.
        identifier: String,
    },
    /// `reverse-address-lookup` on something that is not an IP address.
    #[error(
        "{identifier:?} is not an IP address: reverse-address-lookup (BR 3.2.2.5.3) validates an IP address"
    )]
    NotAnAddressIdentifier {
        /// The identifier.
        identifier: String,
    },
    /// `reverse-address-lookup` was given no expected domain.
    #[error("reverse-address-lookup needs expected: the FQDN the PTR record must name")]
    NoExpectedDomain,
    /// The expected domain is empty, too long, a wildcard or not printable ASCII.
    #[error("expected {text:?} is not a domain name (A-labels, no wildcard, at most 253 octets)")]
    NotADomain {
        /// The value as given.
        text: String,
    },
}

/// The FQDN an `ip-address` check looks up: the identifier, which must be a non-wildcard
/// domain name (BR 3.2.2.4.8 note).
pub fn address_name(identifier: &str) -> Result<&str, AddressMethodError> {
    if identifier.starts_with("*.") {
        return Err(AddressMethodError::Wildcard {
            identifier: identifier.to_owned(),
        });
    }
    if identifier.parse::<IpAddr>().is_ok() {
        return Err(AddressMethodError::AddressIdentifier {
            identifier: identifier.to_owned(),
        });
    }
    Ok(identifier)
}

/// The expected addresses of an `ip-address` check: one address, or several separated by commas
/// (spaces around entries ignored). Addresses compare as values, so `2001:DB8::1` and
/// `2001:db8:0::1` are the same (Open MPIC compares parsed addresses too).
pub fn parse_expected_addresses(text: &str) -> Result<Vec<IpAddr>, AddressMethodError> {
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(AddressMethodError::NoExpectedAddress);
    }
    if entries.len() > MAX_EXPECTED_ADDRESSES {
        return Err(AddressMethodError::TooManyAddresses {
            count: entries.len(),
        });
    }
    entries
        .into_iter()
        .map(|entry| {
            entry
                .parse::<IpAddr>()
                .map_err(|_| AddressMethodError::NotAnAddress {
                    text: entry.to_owned(),
                })
        })
        .collect()
}

/// BR 3.2.2.4.8: the first address seen (A/AAAA answers of the name itself) that is one of the
/// expected ones, if any. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) in an AAAA record is
/// not the IPv4 address: the name published it as IPv6, and the Primary saw the same record.
pub fn matching_address(seen: &[IpAddr], expected: &[IpAddr]) -> Option<IpAddr> {
    seen.iter()
        .copied()
        .find(|address| expected.contains(address))
}

/// The IP identifier of a `reverse-address-lookup` check.
pub fn address_identifier(identifier: &str) -> Result<IpAddr, AddressMethodError> {
    identifier
        .parse()
        .map_err(|_| AddressMethodError::NotAnAddressIdentifier {
            identifier: identifier.to_owned(),
        })
}

/// The reverse-lookup name of an address, fully qualified: `d.c.b.a.in-addr.arpa.` (RFC 1035
/// §3.5) or the 32 nibbles under `ip6.arpa.` (RFC 3596 §2.5): the form RFC 8738 §6 uses for IP
/// identifiers.
pub fn reverse_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa.");
            name
        }
    }
}

/// A domain name in the form names are compared in: ASCII lowercase, without the trailing dot
/// (RFC 4343: DNS names compare case-insensitively).
pub fn comparable_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The expected domain of a `reverse-address-lookup` check, in [`comparable_name`] form.
pub fn expected_domain(text: Option<&str>) -> Result<String, AddressMethodError> {
    let text = text.ok_or(AddressMethodError::NoExpectedDomain)?;
    let name = comparable_name(text.trim());
    let usable = !name.is_empty()
        && name.len() <= MAX_DOMAIN_LEN
        && !name.starts_with("*.")
        && !name.starts_with('.')
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_graphic());
    if usable {
        Ok(name)
    } else {
        Err(AddressMethodError::NotADomain {
            text: text.to_owned(),
        })
    }
}

/// BR 3.2.2.5.3: the first PTR target that names the expected domain, compared
/// case-insensitively and ignoring a trailing dot. Equality, not containment: from 2026-11-15 the
/// ADN "MUST be exactly the FQDN returned from the reverse-IP lookup" (Open MPIC's checker tests
/// a substring by default; stricter here).
pub fn matching_ptr<'a>(targets: &'a [String], expected: &str) -> Option<&'a str> {
    let expected = comparable_name(expected);
    targets
        .iter()
        .map(String::as_str)
        .find(|target| comparable_name(target) == expected)
}

#[cfg(test)]
mod io_tests;
#[cfg(test)]
mod tests;
