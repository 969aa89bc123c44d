//! What the load consists of: the generated zone (many distinct names, CAA at the parent, the
//! challenge records of every DNS method, addresses for http-01) and the mix of check kinds
//! drawn from it. `mpic-bench zone` prints the same zone for an external authoritative server.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use mpic_protocol::{CaaCheck, Check, DcvCheck, DcvMethod, Target};

/// The issuer domain the zone's CAA record authorises.
pub(crate) const ISSUER: &str = "ca.example";
/// The ACME token and key authorization every http-01 and dns-01 check uses.
pub(crate) const TOKEN: &str = "bench-token";
/// See [`TOKEN`].
pub(crate) const KEY_AUTHORIZATION: &str = "bench-token.thumbprint";
/// The Random Value of the DNS change checks.
pub(crate) const RANDOM_VALUE: &str = "x-RandomValue0123456789abcdef";
/// The zone's origin.
pub(crate) const ORIGIN: &str = "bench.test.";
/// The parent zone `test.`: empty but for its apex, so the CAA climb's TLD lookup is answered
/// (NODATA, cached for the SOA minimum) as a real TLD's would be. An external server needs it too.
pub(crate) const TLD_ZONE: &str = "@ 3600 IN SOA ns.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 300\n@ 3600 IN NS ns.bench.test.\n";

/// One kind of check in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// CAA for `n<i>.bench.test` (found one level up, at `bench.test`).
    Caa,
    /// ACME dns-01 (`_acme-challenge.n<i>` TXT).
    Dns01,
    /// DNS change (`_dc.n<i>` TXT).
    DnsChange,
    /// ACME http-01 against the HTTP fixture.
    Http01,
    /// ACME tls-alpn-01 against the TLS-ALPN fixture (a certificate made for each SNI name).
    TlsAlpn01,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Caa,
        Kind::Dns01,
        Kind::DnsChange,
        Kind::Http01,
        Kind::TlsAlpn01,
    ];

    /// The name used in `--mix` and in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Caa => "caa",
            Kind::Dns01 => "dns-01",
            Kind::DnsChange => "dns-change",
            Kind::Http01 => "http-01",
            Kind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// The target for name number `i`.
    pub(crate) fn target(self, i: usize) -> Target {
        let identifier = format!("n{i}.bench.test");
        let dcv = |method, expected: Option<&str>, key: Option<&str>, token: Option<&str>| {
            Check::Dcv(DcvCheck {
                method,
                expected: expected.map(str::to_owned),
                key_authorization: key.map(str::to_owned),
                token: token.map(str::to_owned),
                prefix: None,
                issuer_domain: None,
                account_uri: None,
                wildcard: false,
                url_scheme: None,
                record_type: None,
                exact_match: false,
                case_insensitive: false,
            })
        };
        let check = match self {
            Kind::Caa => Check::Caa(CaaCheck {
                issuer_domains: vec![ISSUER.into()],
                ..CaaCheck::default()
            }),
            Kind::Dns01 => dcv(DcvMethod::AcmeDns01, None, Some(KEY_AUTHORIZATION), None),
            Kind::DnsChange => match dcv(DcvMethod::DnsChange, Some(RANDOM_VALUE), None, None) {
                Check::Dcv(mut change) => {
                    change.prefix = Some("_dc".into());
                    Check::Dcv(change)
                }
                other => other,
            },
            Kind::Http01 => dcv(
                DcvMethod::AcmeHttp01,
                None,
                Some(KEY_AUTHORIZATION),
                Some(TOKEN),
            ),
            Kind::TlsAlpn01 => dcv(
                DcvMethod::AcmeTlsAlpn01,
                None,
                Some(KEY_AUTHORIZATION),
                None,
            ),
        };
        Target { identifier, check }
    }
}

/// Shares of each kind, e.g. `caa=70,dns-01=20,http-01=10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mix(Vec<(Kind, u32)>);

impl Mix {
    /// The kinds with a share, in order.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.0.iter().map(|(kind, _)| *kind)
    }

    /// The kind of the `n`-th check: a deterministic interleaving that keeps the shares exact
    /// over every window of `total` checks.
    pub(crate) fn kind(&self, n: u64) -> Kind {
        let total: u64 = self.0.iter().map(|(_, share)| u64::from(*share)).sum();
        let mut slot = n % total.max(1);
        for (kind, share) in &self.0 {
            if slot < u64::from(*share) {
                return *kind;
            }
            slot -= u64::from(*share);
        }
        Kind::Caa
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, share) = part.split_once('=').unwrap_or((part, "1"));
            let kind = Kind::ALL
                .into_iter()
                .find(|kind| kind.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown check kind {name:?} (expected caa, dns-01, dns-change, http-01, tls-alpn-01)"
                    )
                })?;
            let share: u32 = share
                .trim()
                .parse()
                .map_err(|_| format!("share of {name} must be a whole number, got {share:?}"))?;
            if share > 0 {
                parts.push((kind, share));
            }
        }
        if parts.is_empty() {
            return Err("the mix is empty (e.g. caa=70,dns-01=20,http-01=10)".into());
        }
        Ok(Mix(parts))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, share)| format!("{}={share}", kind.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The zone (origin `bench.test.`) for `names` names. TTLs are 1 s so that, with names used
/// round-robin, the node's cache is not what is measured; every name resolves to `http_ip`,
/// where the HTTP and the TLS-ALPN fixtures listen (on the ports the node is told to dial).
pub(crate) fn zone(names: usize, http_ip: IpAddr) -> String {
    let digest = mpic_node::checks::dcv::acme_dns01::expected_digest(KEY_AUTHORIZATION);
    let record = if http_ip.is_ipv4() { "A" } else { "AAAA" };
    let mut text = format!(
        "$ORIGIN {ORIGIN}\n@ 3600 IN SOA ns.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 1\n\
         @ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n@ 1 IN CAA 0 issue \"{ISSUER}\"\n"
    );
    text.reserve(names * 160);
    for i in 0..names {
        text.push_str(&format!(
            "n{i} 1 IN {record} {http_ip}\n_acme-challenge.n{i} 1 IN TXT \"{digest}\"\n\
             _dc.n{i} 1 IN TXT \"{RANDOM_VALUE}\"\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_interleaves_exactly() {
        let soak: Mix = "caa=40,dns-01=25,http-01=20,tls-alpn-01=15"
            .parse()
            .unwrap();
        let tls = (0..100)
            .filter(|&n| soak.kind(n) == Kind::TlsAlpn01)
            .count();
        assert_eq!(tls, 15);
        assert_eq!(
            soak.to_string(),
            "caa=40,dns-01=25,http-01=20,tls-alpn-01=15"
        );
        let mix: Mix = "caa=70,dns-01=20,http-01=10".parse().unwrap();
        let mut counts = std::collections::HashMap::new();
        for n in 0..1000 {
            *counts.entry(mix.kind(n)).or_insert(0) += 1;
        }
        assert_eq!(counts[&Kind::Caa], 700);
        assert_eq!(counts[&Kind::Dns01], 200);
        assert_eq!(counts[&Kind::Http01], 100);
        assert_eq!(mix.to_string(), "caa=70,dns-01=20,http-01=10");
        // The Makefile's bench smoke mix: every kind, tls-alpn-01 included.
        let smoke: Mix = "caa=40,dns-01=30,dns-change=10,http-01=20,tls-alpn-01=20"
            .parse()
            .unwrap();
        assert_eq!(smoke.kinds().collect::<Vec<_>>(), Kind::ALL);
        assert_eq!(
            (0..120)
                .filter(|&n| smoke.kind(n) == Kind::TlsAlpn01)
                .count(),
            20
        );
        assert!("caa=x".parse::<Mix>().unwrap_err().contains("whole number"));
        assert!("ftp=1".parse::<Mix>().unwrap_err().contains("unknown"));
        assert!("caa=0".parse::<Mix>().unwrap_err().contains("empty"));
    }

    #[test]
    fn zone_has_every_record_a_check_needs() {
        let text = zone(2, "127.0.0.1".parse().unwrap());
        for needle in [
            "@ 1 IN CAA 0 issue \"ca.example\"",
            "n1 1 IN A 127.0.0.1",
            "_dc.n0 1 IN TXT",
            "_acme-challenge.n1 1 IN TXT",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
