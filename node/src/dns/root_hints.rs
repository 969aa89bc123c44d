//! Root hints: the IANA root servers built in (named.root, 2024 edition), or a replacement read
//! from a file in master-file form (`. NS a.root.test.` / `a.root.test. A 127.0.0.2`), which test
//! labs use to run a fake root on loopback.

use std::net::{AddrParseError, IpAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::InvalidName;
use super::cache::Delegation;

/// IANA root servers: name, IPv4, IPv6 (https://www.internic.net/domain/named.root).
const IANA_ROOTS: [(&str, &str, &str); 13] = [
    ("a.root-servers.net.", "198.41.0.4", "2001:503:ba3e::2:30"),
    ("b.root-servers.net.", "170.247.170.2", "2801:1b8:10::b"),
    ("c.root-servers.net.", "192.33.4.12", "2001:500:2::c"),
    ("d.root-servers.net.", "199.7.91.13", "2001:500:2d::d"),
    ("e.root-servers.net.", "192.203.230.10", "2001:500:a8::e"),
    ("f.root-servers.net.", "192.5.5.241", "2001:500:2f::f"),
    ("g.root-servers.net.", "192.112.36.4", "2001:500:12::d0d"),
    ("h.root-servers.net.", "198.97.190.53", "2001:500:1::53"),
    ("i.root-servers.net.", "192.36.148.17", "2001:7fe::53"),
    ("j.root-servers.net.", "192.58.128.30", "2001:503:c27::2:30"),
    ("k.root-servers.net.", "193.0.14.129", "2001:7fd::1"),
    ("l.root-servers.net.", "199.7.83.42", "2001:500:9f::42"),
    ("m.root-servers.net.", "202.12.27.33", "2001:dc3::35"),
];

/// Root server names and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootHints {
    servers: Vec<(Name, IpAddr)>,
    names: Vec<Name>,
}

/// A hints file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RootHintsError {
    /// The file could not be read.
    #[error("cannot read root hints {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("root hints line {line}: {detail}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: HintsLineError,
    },
    /// No root server with an address.
    #[error("root hints name no root server with an address")]
    Empty,
}

/// What is wrong with one line of a hints file.
#[derive(Debug, thiserror::Error)]
pub enum HintsLineError {
    /// Not three fields besides TTL and class.
    #[error("expected `owner [ttl] [IN] TYPE data`, got {text:?}")]
    Shape {
        /// The line (without its comment).
        text: String,
    },
    /// An owner or NS target that is not a domain name.
    #[error("{0}")]
    Name(InvalidName),
    /// An NS record for a name other than the root.
    #[error("NS for {owner}: only root NS records belong in root hints")]
    NotRoot {
        /// The owner.
        owner: Name,
    },
    /// An A or AAAA record whose data is not an address.
    #[error("{data:?}: {source}")]
    Address {
        /// The text given.
        data: String,
        /// Why it is not an address.
        source: AddrParseError,
    },
    /// A type other than NS, A or AAAA.
    #[error("record type {record_type} does not belong in root hints")]
    Type {
        /// The type as written (upper-cased).
        record_type: String,
    },
}

impl RootHints {
    /// The built-in IANA hints.
    pub fn iana() -> Self {
        let mut servers = Vec::new();
        let mut names = Vec::new();
        for (name, v4, v6) in IANA_ROOTS {
            let (Ok(name), Ok(v4), Ok(v6)) = (
                Name::from_ascii(name),
                v4.parse::<IpAddr>(),
                v6.parse::<IpAddr>(),
            ) else {
                continue; // cannot fail: constants checked by the unit test below
            };
            servers.push((name.clone(), v4));
            servers.push((name.clone(), v6));
            names.push(name);
        }
        Self { servers, names }
    }

    /// Reads hints from a file.
    pub fn from_file(path: &Path) -> Result<Self, RootHintsError> {
        let text = std::fs::read_to_string(path).map_err(|source| RootHintsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses master-file lines: `owner [ttl] [IN] type rdata`; `;` comments; only NS for the
    /// root and A/AAAA for the NS names matter, other lines are errors.
    pub fn parse(text: &str) -> Result<Self, RootHintsError> {
        let mut names = Vec::new();
        let mut addresses = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split(';').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let syntax = |detail: HintsLineError| RootHintsError::Syntax {
                line: index + 1,
                detail,
            };
            let fields: Vec<&str> = line
                .split_whitespace()
                .filter(|f| !f.eq_ignore_ascii_case("IN") && f.parse::<u32>().is_err())
                .collect();
            let [owner, rtype, data] = fields.as_slice() else {
                return Err(syntax(HintsLineError::Shape {
                    text: line.to_owned(),
                }));
            };
            let owner =
                Name::from_ascii(owner).map_err(|e| syntax(HintsLineError::Name(e.into())))?;
            match rtype.to_ascii_uppercase().as_str() {
                "NS" if owner.is_root() => names.push(
                    Name::from_ascii(data).map_err(|e| syntax(HintsLineError::Name(e.into())))?,
                ),
                "NS" => {
                    return Err(syntax(HintsLineError::NotRoot { owner }));
                }
                "A" | "AAAA" => addresses.push((
                    owner,
                    data.parse::<IpAddr>().map_err(|source| {
                        syntax(HintsLineError::Address {
                            data: (*data).to_owned(),
                            source,
                        })
                    })?,
                )),
                other => {
                    return Err(syntax(HintsLineError::Type {
                        record_type: other.to_owned(),
                    }));
                }
            }
        }
        let servers: Vec<(Name, IpAddr)> = addresses
            .into_iter()
            .filter(|(owner, _)| names.iter().any(|name| name.eq(owner)))
            .collect();
        if servers.is_empty() {
            return Err(RootHintsError::Empty);
        }
        Ok(Self { servers, names })
    }

    /// The root zone's delegation built from the hints.
    pub fn delegation(&self) -> Delegation {
        Delegation {
            nameservers: self.names.clone(),
            addresses: self.servers.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_hints_have_every_root_with_both_families() {
        let hints = RootHints::iana();
        assert_eq!(hints.names.len(), 13);
        assert_eq!(hints.servers.len(), 26);
        assert!(
            hints
                .servers
                .iter()
                .any(|(_, ip)| *ip == "198.41.0.4".parse::<IpAddr>().unwrap())
        );
    }

    #[test]
    fn a_hints_file_replaces_them() {
        let hints = RootHints::parse(
            "; test root\n.  3600000  IN  NS  a.root.test.\na.root.test. 3600000 A 127.0.0.2\nA.ROOT.TEST. AAAA ::1\n",
        )
        .unwrap();
        assert_eq!(hints.names, vec![Name::from_ascii("a.root.test.").unwrap()]);
        assert_eq!(hints.servers.len(), 2);
    }

    #[test]
    fn bad_hints_are_rejected_with_the_line() {
        for (text, line) in [
            (". NS a.root.test.\na.root.test. A not-an-ip\n", 2),
            ("com. NS a.gtld.test.\n", 1),
            (". MX 10 mail.test.\n", 1),
        ] {
            match RootHints::parse(text) {
                Err(RootHintsError::Syntax { line: got, .. }) => assert_eq!(got, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            RootHints::parse(". NS a.root.test.\n"),
            Err(RootHintsError::Empty)
        ));
    }
}
