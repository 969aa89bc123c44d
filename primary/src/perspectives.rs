//! The perspectives file: which remote perspectives a primary uses (TOML → raw serde structs →
//! validated [`Perspective`]s), every problem named by its key path and reported at once.
//!
//! ```toml
//! [[perspective]]
//! id = "eu-1"                       # as the node's [perspective] id
//! rir = "RIPE"                      # ARIN, RIPE, APNIC, LACNIC, AFRINIC
//! address = "192.0.2.10:4433"       # the node's QUIC address
//! public_key = "<base64>"           # from `mpic-node info`
//! location = "Frankfurt"            # optional, shown in reports
//! tls_name = "eu-1.mpic.example"    # optional: name in the node's certificate (default: the IP)
//! egress = ["192.0.2.11"]           # optional: its published egress addresses
//! manifest = "eu-1.manifest.json"   # optional: the node's signed manifest (`mpic-node manifest`)
//! ```
//!
//! With `manifest`, the file (relative to the perspectives file) must verify under
//! `public_key`; `id`, `rir`, `location` and `egress` then come from it (an `id` or `rir` also
//! written here must agree with it).

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use mpic_protocol::client::NodeEndpoint;
use mpic_protocol::manifest::SignedManifest;
use mpic_protocol::{PerspectiveId, Rir, VerifyingKey};
use serde::{Deserialize, Serialize};

/// One remote perspective, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Perspective {
    /// The perspective id the node signs.
    pub id: PerspectiveId,
    /// Its RIR region.
    pub rir: Rir,
    /// The node's QUIC address.
    pub address: SocketAddr,
    /// The name in the node's server certificate.
    pub tls_name: String,
    /// The node's result-signing key (base64 in the file).
    #[serde(skip)]
    pub public_key: VerifyingKey,
    /// Where it is, for humans.
    pub location: Option<String>,
    /// The source addresses its checks come from (what a domain owner must allow).
    pub egress: Vec<IpAddr>,
}

impl Perspective {
    /// This perspective as the client library's endpoint.
    pub fn endpoint(&self) -> NodeEndpoint {
        NodeEndpoint {
            perspective_id: self.id.clone(),
            rir: self.rir,
            address: self.address,
            server_name: self.tls_name.clone(),
            verifying_key: self.public_key.clone(),
        }
    }
}

/// One problem in the file, named by its key path (`perspective[1].rir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The key path.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why the perspectives file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PerspectivesError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape (unknown key, wrong type).
    #[error("{path}: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        source: Box<toml::de::Error>,
    },
    /// Values are invalid; every problem is listed.
    #[error("{path}: {}", list(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem with its key path.
        problems: Vec<FieldProblem>,
    },
}

fn list(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Required: at least one.
    #[serde(default)]
    perspective: Vec<RawPerspective>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerspective {
    id: Option<String>,
    rir: Option<String>,
    address: Option<String>,
    public_key: Option<String>,
    location: Option<String>,
    tls_name: Option<String>,
    #[serde(default)]
    egress: Vec<String>,
    manifest: Option<String>,
}

/// Reads and validates a perspectives file.
pub fn load(path: &Path) -> Result<Vec<Perspective>, PerspectivesError> {
    let text = std::fs::read_to_string(path).map_err(|source| PerspectivesError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
    parse_in(&text, base_dir).map_err(|error| match error {
        ParseError::Syntax(source) => PerspectivesError::Syntax {
            path: path.to_owned(),
            source,
        },
        ParseError::Invalid(problems) => PerspectivesError::Invalid {
            path: path.to_owned(),
            problems,
        },
    })
}

/// Why a perspectives text is unusable (without the file name; see [`load`]).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not TOML of the expected shape.
    #[error("{0}")]
    Syntax(Box<toml::de::Error>),
    /// Invalid values, each with its key path.
    #[error("{}", list(.0))]
    Invalid(Vec<FieldProblem>),
}

/// Parses and validates the text of a perspectives file (manifests relative to the current
/// directory).
pub fn parse(text: &str) -> Result<Vec<Perspective>, ParseError> {
    parse_in(text, Path::new("."))
}

/// Parses and validates the text of a perspectives file whose manifests are relative to
/// `base_dir`.
pub fn parse_in(text: &str, base_dir: &Path) -> Result<Vec<Perspective>, ParseError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ParseError::Syntax(Box::new(e)))?;
    let mut problems = Vec::new();
    if raw.perspective.is_empty() {
        problems.push(problem("perspective", "no [[perspective]] listed"));
    }
    let mut perspectives = Vec::new();
    let mut ids = HashSet::new();
    for (index, entry) in raw.perspective.into_iter().enumerate() {
        let prefix = format!("perspective[{index}]");
        if let Some(perspective) = validate(&prefix, entry, base_dir, &mut problems) {
            if !ids.insert(perspective.id.clone()) {
                problems.push(problem(
                    &format!("{prefix}.id"),
                    &format!("{} is listed twice", perspective.id),
                ));
            }
            perspectives.push(perspective);
        }
    }
    if problems.is_empty() {
        Ok(perspectives)
    } else {
        Err(ParseError::Invalid(problems))
    }
}

fn problem(key: &str, reason: &str) -> FieldProblem {
    FieldProblem {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

fn check<T>(
    problems: &mut Vec<FieldProblem>,
    prefix: &str,
    name: &str,
    result: Result<T, String>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(reason) => {
            problems.push(problem(&format!("{prefix}.{name}"), &reason));
            None
        }
    }
}

fn validate(
    prefix: &str,
    mut raw: RawPerspective,
    base_dir: &Path,
    problems: &mut Vec<FieldProblem>,
) -> Option<Perspective> {
    if let Some(path) = raw.manifest.take() {
        from_manifest(prefix, &base_dir.join(path), &mut raw, problems)?;
    }
    let mut field = |name: &str, value: Option<String>| -> Option<String> {
        if value.is_none() {
            problems.push(problem(&format!("{prefix}.{name}"), "required"));
        }
        value
    };
    let (id, rir, address, key) = (
        field("id", raw.id),
        field("rir", raw.rir),
        field("address", raw.address),
        field("public_key", raw.public_key),
    );
    let id = id.and_then(|id| {
        check(
            problems,
            prefix,
            "id",
            PerspectiveId::new(id).map_err(|e| e.to_string()),
        )
    });
    let rir = rir.and_then(|rir| {
        check(
            problems,
            prefix,
            "rir",
            rir.parse::<Rir>().map_err(|e| e.to_string()),
        )
    });
    let address = address.and_then(|text| {
        check(
            problems,
            prefix,
            "address",
            text.parse::<SocketAddr>()
                .map_err(|_| format!("{text:?} is not an ip:port socket address")),
        )
    });
    let public_key = key.and_then(|text| {
        check(
            problems,
            prefix,
            "public_key",
            VerifyingKey::from_base64(&text)
                .map_err(|e| format!("not a base64 Ed25519 public key ({e})")),
        )
    });
    let mut egress = Vec::new();
    for (index, text) in raw.egress.iter().enumerate() {
        let parsed = check(
            problems,
            prefix,
            &format!("egress[{index}]"),
            text.parse::<IpAddr>()
                .map_err(|_| format!("{text:?} is not an IP address")),
        );
        egress.extend(parsed);
    }
    let (id, rir, address, public_key) = (id?, rir?, address?, public_key?);
    Some(Perspective {
        id,
        rir,
        tls_name: raw.tls_name.unwrap_or_else(|| address.ip().to_string()),
        address,
        public_key,
        location: raw.location,
        egress,
    })
}

/// Fills `raw`'s id, RIR, location and egress from the node's signed manifest at `path`,
/// which must verify under the entry's `public_key`. `None` when it cannot be used (the
/// problem is recorded).
fn from_manifest(
    prefix: &str,
    path: &Path,
    raw: &mut RawPerspective,
    problems: &mut Vec<FieldProblem>,
) -> Option<()> {
    let key = VerifyingKey::from_base64(raw.public_key.as_deref()?).ok()?;
    let key_path = format!("{prefix}.manifest");
    let manifest = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|text| {
            serde_json::from_str::<SignedManifest>(&text)
                .map_err(|e| format!("{} is not a signed manifest: {e}", path.display()))
        })
        .and_then(|signed| {
            signed
                .verify(&key)
                .map_err(|e| format!("{} does not verify with public_key: {e}", path.display()))
        });
    let manifest = check(problems, prefix, "manifest", manifest)?;
    let id = manifest.perspective_id.as_str().to_owned();
    let rir = manifest.rir.as_str().to_owned();
    for (name, written, published) in [("id", &raw.id, &id), ("rir", &raw.rir, &rir)] {
        if written.as_ref().is_some_and(|written| written != published) {
            problems.push(problem(
                &format!("{prefix}.{name}"),
                &format!("differs from the manifest's {published:?} ({key_path})"),
            ));
            return None;
        }
    }
    raw.id = Some(id);
    raw.rir = Some(rir);
    raw.location.get_or_insert(manifest.location);
    if raw.egress.is_empty() {
        raw.egress = manifest
            .egress
            .ipv4
            .into_iter()
            .chain(manifest.egress.ipv6)
            .collect();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn entry(extra: &str) -> String {
        format!(
            "[[perspective]]\nid = \"eu-1\"\nrir = \"RIPE\"\naddress = \"127.0.0.1:4433\"\npublic_key = \"{KEY}\"\n{extra}\n"
        )
    }

    #[test]
    fn valid_file_with_optional_fields() {
        let text = entry(
            "location = \"Frankfurt\"\ntls_name = \"localhost\"\negress = [\"127.0.0.2\", \"::1\"]",
        );
        let perspectives = parse(&text).unwrap_or_default();
        assert_eq!(perspectives.len(), 1);
        let first = &perspectives[0];
        assert_eq!(first.rir, Rir::RipeNcc);
        assert_eq!(first.tls_name, "localhost");
        assert_eq!(first.location.as_deref(), Some("Frankfurt"));
        assert_eq!(first.egress.len(), 2);
    }

    #[test]
    fn tls_name_defaults_to_the_address() {
        let perspectives = parse(&entry("")).unwrap_or_default();
        assert_eq!(perspectives[0].tls_name, "127.0.0.1");
    }

    #[test]
    fn errors_name_their_key_paths() {
        let cases: &[(&str, String, &[&str])] = &[
            ("empty", String::new(), &["perspective"]),
            (
                "bad_rir_and_egress",
                entry("").replace("RIPE", "MARS") + "egress = [\"nope\"]\n",
                &["perspective[0].rir", "perspective[0].egress[0]"],
            ),
            (
                "missing_key_and_bad_address",
                "[[perspective]]\nid = \"a\"\nrir = \"ARIN\"\naddress = \"localhost\"\n".into(),
                &["perspective[0].public_key", "perspective[0].address"],
            ),
            (
                "duplicate_id",
                entry("") + &entry(""),
                &["perspective[1].id"],
            ),
            (
                "bad_key",
                entry("").replace(KEY, "short"),
                &["perspective[0].public_key"],
            ),
        ];
        for (name, text, keys) in cases {
            match parse(text) {
                Err(ParseError::Invalid(problems)) => {
                    let found: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
                    assert_eq!(&found, keys, "case {name}: {problems:?}");
                }
                other => panic!("case {name}: expected invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_key_is_refused() {
        let text = entry("colour = \"blue\"");
        assert!(matches!(parse(&text), Err(ParseError::Syntax(_))));
    }

    /// A manifest signed by a fresh node key, written to `dir`; returns the key (base64).
    fn signed_manifest(dir: &Path, name: &str, alter: bool) -> String {
        use mpic_protocol::SigningKey;
        use mpic_protocol::manifest::{Egress, KeyStatus, MANIFEST_VERSION, Manifest, ManifestKey};
        let (key, _) = SigningKey::generate().unwrap();
        let public = key.verifying_key().to_base64();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            perspective_id: PerspectiveId::new("ap-1".to_owned()).unwrap(),
            rir: Rir::Apnic,
            location: "Singapore".into(),
            egress: Egress {
                ipv4: vec!["192.0.2.44".into()],
                ipv6: vec!["2001:db8::44".into()],
                prefixes: vec![],
            },
            http_user_agent: "mpic-node/test".into(),
            dns_source_addresses: vec![],
            keys: vec![ManifestKey {
                key_id: key.key_id().to_string(),
                public_key: public.clone(),
                status: KeyStatus::Current,
                retired_unix_ms: None,
                valid_until_unix_ms: None,
            }],
            software_version: "0.1.0".into(),
            issued_unix_ms: 1,
        };
        let mut signed = manifest.sign(&key).unwrap();
        if alter {
            signed.payload = signed.payload.replace("Singapore", "Sydney");
        }
        std::fs::write(dir.join(name), serde_json::to_string(&signed).unwrap()).unwrap();
        public
    }

    #[test]
    fn a_verified_manifest_names_the_perspective() {
        let dir = tempfile::tempdir().unwrap();
        let key = signed_manifest(dir.path(), "ap-1.json", false);
        let text = format!(
            "[[perspective]]\naddress = \"127.0.0.1:4433\"\npublic_key = \"{key}\"\nmanifest = \"ap-1.json\"\n"
        );
        let perspectives = parse_in(&text, dir.path()).unwrap();
        assert_eq!(perspectives[0].id.as_str(), "ap-1");
        assert_eq!(perspectives[0].rir, Rir::Apnic);
        assert_eq!(perspectives[0].location.as_deref(), Some("Singapore"));
        let egress: Vec<String> = perspectives[0]
            .egress
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(egress, ["192.0.2.44", "2001:db8::44"]);
        let disagreeing = text.replace("[[perspective]]\n", "[[perspective]]\nrir = \"RIPE\"\n");
        let Err(ParseError::Invalid(problems)) = parse_in(&disagreeing, dir.path()) else {
            panic!("a rir other than the manifest's was accepted");
        };
        assert_eq!(problems[0].key, "perspective[0].rir");
        assert_eq!(
            problems[0].reason,
            "differs from the manifest's \"APNIC\" (perspective[0].manifest)"
        );
    }

    #[test]
    fn an_altered_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = signed_manifest(dir.path(), "ap-1.json", true);
        let text = format!(
            "[[perspective]]\naddress = \"127.0.0.1:4433\"\npublic_key = \"{key}\"\nmanifest = \"ap-1.json\"\n"
        );
        let Err(ParseError::Invalid(problems)) = parse_in(&text, dir.path()) else {
            panic!("an altered manifest was accepted");
        };
        assert_eq!(problems[0].key, "perspective[0].manifest");
        assert!(
            problems[0]
                .reason
                .contains("does not verify with public_key"),
            "{}",
            problems[0].reason
        );
    }
}
