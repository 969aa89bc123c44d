//! Tests for config parsing and validation: examples parse, unknown keys are rejected in every
//! table, every rule names its key path, and defaults are what the docs say.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use mpic_protocol::Rir;

use super::*;

/// The documented production example.
const EXAMPLE: &str = include_str!("../../../deploy/mpic-node.example.toml");

/// Every table the file format has, in the order the docs list them.
const TABLES: [&str; 15] = [
    "manifest",
    "audit",
    "openmpic",
    "caa",
    "dns",
    "http",
    "perspective",
    "quic",
    "signing",
    "limits",
    "metrics",
    "shutdown",
    "logging",
    "state",
    "dangerous",
];

/// Every key the file format has.
const ALL_KEYS: [&str; 55] = [
    "dangerous.disable_audit_log",
    "caa.case_insensitive_method_labels",
    "http.user_agent",
    "http.max_body_bytes",
    "http.max_header_bytes",
    "http.connect_timeout",
    "http.hop_timeout",
    "http.max_redirects",
    "http.use_ipv6",
    "http.reuse_connections",
    "http.idle_timeout",
    "http.max_idle_connections",
    "dns.mode",
    "dns.dnssec",
    "dns.authoritative_port",
    "dns.query_timeout",
    "dns.max_queries_per_lookup",
    "dns.max_referrals",
    "dns.max_cname_chain",
    "dns.max_cache_ttl",
    "dns.max_delegation_ttl",
    "dns.cache_max_entries",
    "dns.cache_max_bytes",
    "dns.case_randomisation",
    "dns.use_ipv6",
    "dns.server_max_in_flight",
    "dns.server_max_rate",
    "dns.server_table_entries",
    "perspective.id",
    "perspective.rir",
    "perspective.location",
    "perspective.shadow",
    "quic.listen",
    "quic.certificate",
    "quic.private_key",
    "quic.client_ca",
    "quic.client_spki_pins",
    "quic.idle_timeout",
    "quic.keep_alive_interval",
    "quic.max_connections",
    "quic.max_streams_per_connection",
    "signing.key",
    "limits.max_in_flight_requests",
    "limits.max_in_flight_per_primary",
    "limits.max_targets_per_request",
    "limits.max_request_bytes",
    "limits.request_read_timeout",
    "limits.max_deadline",
    "metrics.listen",
    "shutdown.grace_period",
    "logging.level",
    "logging.format",
    "state.directory",
    "dangerous.generate_dev_credentials",
    "dangerous.allow_private_targets",
];

/// Keys that only make sense in some set-ups: the example shows them commented out
/// (`# key = value`) under their table, with their documentation above.
const COMMENTED_KEYS: [&str; 12] = [
    "manifest.egress_prefixes",
    "audit.path",
    "openmpic.listen",
    "openmpic.caa_domains",
    "http.egress_ipv4",
    "http.egress_ipv6",
    "dangerous.http_port",
    "dangerous.https_port",
    "dns.upstreams",
    "dns.root_hints",
    "dns.egress_ipv4",
    "dns.egress_ipv6",
];

/// Only the required keys; everything else takes its default.
const MINIMAL: &str = r#"
[perspective]
id = "fra-1"
rir = "RIPE"
location = "Frankfurt, DE"

[quic]
certificate = "tls/node.pem"
private_key = "tls/node.key"
client_ca = "tls/ca.pem"

[signing]
key = "signing.key"
"#;

/// `(table.key, TOML value as text)` pairs for [`minimal_with`].
type Settings<'a> = &'a [(&'a str, &'a str)];

const BASE_DIR: &str = "/etc/mpic-node";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new(BASE_DIR))
}

/// `MINIMAL` with each `table.key` set to a TOML value written as text (`"\"30s\""`, `"0"`).
fn minimal_with(settings: Settings<'_>) -> String {
    let mut document: toml::Table = toml::from_str(MINIMAL).unwrap();
    for (key, value) in settings {
        let (table, key) = key.split_once('.').unwrap();
        let value: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
        document
            .entry(table)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert(key.to_owned(), value["v"].clone());
    }
    toml::to_string(&document).unwrap()
}

fn problems(result: Result<Config, ConfigError>) -> Vec<KeyProblem> {
    match result {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

fn problem_keys(result: Result<Config, ConfigError>) -> Vec<String> {
    problems(result).into_iter().map(|p| p.key).collect()
}

fn syntax(result: Result<Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::Syntax { path, message }) => (path, message),
        other => panic!("expected ConfigError::Syntax, got {other:?}"),
    }
}

/// Inserts `line` right after the `[table]` header.
fn insert_after_header(text: &str, table: &str, line: &str) -> String {
    let header = format!("[{table}]\n");
    assert!(text.contains(&header), "no [{table}] header");
    text.replacen(&header, &format!("{header}{line}\n"), 1)
}

fn tables_of(text: &str) -> Vec<String> {
    let document: toml::Table = toml::from_str(text).unwrap();
    document
        .iter()
        .filter(|(_, value)| value.is_table())
        .map(|(name, _)| name.clone())
        .collect()
}

fn pin(bytes: &[u8]) -> String {
    format!(
        "[\"{}\"]",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[test]
fn embedded_default_parses() {
    let config = Config::embedded_default().unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.perspective.id.as_str(), "loopback-1");
    assert_eq!(config.perspective.rir, Rir::Arin);
    assert_eq!(config.perspective.location, "loopback");
    assert!(!config.perspective.shadow);
    assert_eq!(
        config.quic.listen,
        ["127.0.0.1:4433".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        config.quic.certificate,
        cwd.join("mpic-node-state/dev/node.pem")
    );
    assert_eq!(
        config.quic.private_key,
        cwd.join("mpic-node-state/dev/node.key")
    );
    assert_eq!(
        config.quic.client_ca,
        cwd.join("mpic-node-state/dev/ca.pem")
    );
    assert_eq!(
        config.signing.key,
        cwd.join("mpic-node-state/dev/signing.key")
    );
    assert_eq!(config.state.directory, cwd.join("mpic-node-state"));
    assert_eq!(config.metrics.listen, DEFAULT_METRICS_LISTEN);
    assert_eq!(
        config.dangerous_options(),
        [
            "dangerous.generate_dev_credentials",
            "dangerous.allow_private_targets"
        ]
    );
}

#[test]
fn example_parses_with_production_values() {
    let config = parse(EXAMPLE).unwrap();
    assert_eq!(config.perspective.id.as_str(), "fra-1");
    assert_eq!(config.perspective.rir, Rir::RipeNcc);
    assert_eq!(config.quic.listen, default_quic_listen());
    assert_eq!(config.quic.client_spki_pins.len(), 2);
    assert_eq!(
        config.quic.certificate,
        PathBuf::from("/etc/mpic-node/tls/node.pem")
    );
    assert_eq!(config.logging.format, LogFormat::Json);
    assert!(
        config.dangerous_options().is_empty(),
        "the production example must enable no [dangerous] option"
    );
}

#[test]
fn example_documents_every_table_and_key() {
    let mut tables = tables_of(EXAMPLE);
    tables.sort();
    let mut expected_tables = TABLES.map(String::from).to_vec();
    expected_tables.sort();
    assert_eq!(tables, expected_tables);
    let document: toml::Table = toml::from_str(EXAMPLE).unwrap();
    let mut keys = Vec::new();
    for (table, value) in &document {
        for key in value.as_table().unwrap().keys() {
            keys.push(format!("{table}.{key}"));
        }
    }
    keys.sort();
    let mut expected = ALL_KEYS.map(String::from).to_vec();
    expected.sort();
    assert_eq!(keys, expected);
    for key in COMMENTED_KEYS {
        let (table, name) = key.split_once('.').unwrap();
        let section = EXAMPLE.split(&format!("[{table}]")).nth(1).unwrap();
        let section = section.split("\n[").next().unwrap();
        assert!(
            section.contains(&format!("\n# {name} = ")),
            "{key} is not shown commented out in [{table}]"
        );
    }

    // Every key line and table header carries a comment right above it.
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = line
            .split_once(" = ")
            .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        if is_key || line.starts_with('[') {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "line {} ({line:?}) has no comment above it",
                i + 1
            );
        }
    }
}

#[test]
fn unknown_key_in_every_table_is_rejected() {
    for (name, text) in [("example", EXAMPLE), ("embedded default", EMBEDDED_DEFAULT)] {
        for table in tables_of(text) {
            let text = insert_after_header(text, &table, "bogus_key = 1");
            let (path, message) = syntax(parse(&text));
            assert_eq!(path, format!("{table}.bogus_key"), "{name}: [{table}]");
            assert!(
                message.contains("unknown field `bogus_key`"),
                "{name}: [{table}]: {message}"
            );
        }
    }
}

#[test]
fn unknown_key_in_every_table_is_rejected_even_when_the_table_is_optional() {
    // MINIMAL omits most tables; each, written with only an unknown key, is still rejected.
    for table in TABLES {
        let text = if MINIMAL.contains(&format!("[{table}]\n")) {
            insert_after_header(MINIMAL, table, "bogus_key = 1")
        } else {
            format!("{MINIMAL}\n[{table}]\nbogus_key = 1\n")
        };
        let (path, _) = syntax(parse(&text));
        assert_eq!(path, format!("{table}.bogus_key"), "[{table}]");
    }
}

#[test]
fn misspelled_key_names_its_full_path() {
    let text = insert_after_header(MINIMAL, "quic", "idle_timout = \"30s\"");
    let error = parse(&text).unwrap_err();
    let (path, message) = syntax(Err(error));
    assert_eq!(path, "quic.idle_timout");
    assert!(message.contains("expected one of"), "{message}");
    assert!(message.contains("line 8, column 1"), "{message}");
}

#[test]
fn unknown_top_level_table_or_key_is_rejected() {
    for (name, text, expected_path) in [
        ("table", format!("{MINIMAL}\n[bogus]\nx = 1\n"), "bogus"),
        ("key", format!("bogus_key = 1\n{MINIMAL}"), "bogus_key"),
    ] {
        let (path, message) = syntax(parse(&text));
        assert_eq!(path, expected_path, "{name}");
        assert!(message.contains("unknown field"), "{name}: {message}");
    }
}

#[test]
fn wrong_types_name_their_key_path() {
    for (name, key, value, expected_path, expected_message) in [
        (
            "integer_as_string",
            "quic.max_connections",
            "\"many\"",
            "quic.max_connections",
            "invalid type",
        ),
        (
            "duration_as_integer",
            "quic.idle_timeout",
            "30",
            "quic.idle_timeout",
            "a duration string such as \"30s\"",
        ),
        (
            "bool_as_string",
            "perspective.shadow",
            "\"yes\"",
            "perspective.shadow",
            "invalid type",
        ),
        (
            "list_as_string",
            "quic.listen",
            "\"127.0.0.1:4433\"",
            "quic.listen",
            "invalid type",
        ),
        (
            "list_entry_as_integer",
            "quic.listen",
            "[4433]",
            "quic.listen[0]",
            "invalid type",
        ),
        (
            "path_as_integer",
            "signing.key",
            "1",
            "signing.key",
            "invalid type",
        ),
    ] {
        let (path, message) = syntax(parse(&minimal_with(&[(key, value)])));
        assert_eq!(path, expected_path, "{name}");
        assert!(message.contains(expected_message), "{name}: {message}");
    }
    let (path, _) = syntax(parse("perspective = 1"));
    assert_eq!(path, "perspective", "table_as_integer");
}

#[test]
fn toml_syntax_error_has_empty_path_and_position() {
    let error = parse("[perspective\nid = \"x\"\n").unwrap_err();
    let display = error.to_string();
    let (path, message) = syntax(Err(error));
    assert_eq!(path, "");
    assert!(message.contains("line 1"), "{message}");
    assert!(!display.starts_with(':'), "{display}");
}

#[test]
fn each_rule_rejects_a_bad_value_under_its_key() {
    let long_location = format!("\"{}\"", "x".repeat(MAX_LOCATION_CHARS + 1));
    let short_pin = pin(&[7; 20]);
    let unpadded_pin = format!(
        "[\"{}\"]",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode([7; 32])
    );
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        // (name, key, bad value, key expected in the error)
        ("id_with_space", "perspective.id", "\"fra 1\"", "perspective.id"),
        ("id_empty", "perspective.id", "\"\"", "perspective.id"),
        ("rir_unknown", "perspective.rir", "\"IANA\"", "perspective.rir"),
        ("location_empty", "perspective.location", "\"\"", "perspective.location"),
        ("location_too_long", "perspective.location", &long_location, "perspective.location"),
        ("location_control_char", "perspective.location", "\"Frankfurt\\nDE\"", "perspective.location"),
        ("listen_empty", "quic.listen", "[]", "quic.listen"),
        ("listen_no_port", "quic.listen", "[\"127.0.0.1:4433\", \"1.2.3.4\"]", "quic.listen[1]"),
        ("listen_hostname", "quic.listen", "[\"localhost:4433\"]", "quic.listen[0]"),
        ("listen_duplicate", "quic.listen", "[\"127.0.0.1:4433\", \"127.0.0.1:4433\"]", "quic.listen[1]"),
        ("listen_duplicate_spelled_differently", "quic.listen", "[\"[::1]:4433\", \"[0:0::1]:4433\"]", "quic.listen[1]"),
        ("certificate_empty", "quic.certificate", "\"\"", "quic.certificate"),
        ("private_key_empty", "quic.private_key", "\"\"", "quic.private_key"),
        ("client_ca_empty", "quic.client_ca", "\"\"", "quic.client_ca"),
        ("pin_not_base64", "quic.client_spki_pins", "[\"not base64!\"]", "quic.client_spki_pins[0]"),
        ("pin_unpadded", "quic.client_spki_pins", &unpadded_pin, "quic.client_spki_pins[0]"),
        ("pin_wrong_length", "quic.client_spki_pins", &short_pin, "quic.client_spki_pins[0]"),
        ("idle_timeout_not_duration", "quic.idle_timeout", "\"30 parsecs\"", "quic.idle_timeout"),
        ("idle_timeout_too_short", "quic.idle_timeout", "\"999ms\"", "quic.idle_timeout"),
        ("idle_timeout_too_long", "quic.idle_timeout", "\"10m 1s\"", "quic.idle_timeout"),
        ("keep_alive_not_duration", "quic.keep_alive_interval", "\"often\"", "quic.keep_alive_interval"),
        ("keep_alive_equal_to_idle", "quic.keep_alive_interval", "\"30s\"", "quic.keep_alive_interval"),
        ("keep_alive_zero", "quic.keep_alive_interval", "\"0s\"", "quic.keep_alive_interval"),
        ("max_connections_zero", "quic.max_connections", "0", "quic.max_connections"),
        ("max_connections_negative", "quic.max_connections", "-1", "quic.max_connections"),
        ("max_connections_too_many", "quic.max_connections", "100001", "quic.max_connections"),
        ("max_connections_beyond_u32", "quic.max_connections", "4294967296", "quic.max_connections"),
        ("max_streams_zero", "quic.max_streams_per_connection", "0", "quic.max_streams_per_connection"),
        ("max_streams_too_many", "quic.max_streams_per_connection", "10001", "quic.max_streams_per_connection"),
        ("signing_key_empty", "signing.key", "\"\"", "signing.key"),
        ("in_flight_zero", "limits.max_in_flight_requests", "0", "limits.max_in_flight_requests"),
        ("in_flight_too_many", "limits.max_in_flight_requests", "1000001", "limits.max_in_flight_requests"),
        ("per_primary_zero", "limits.max_in_flight_per_primary", "0", "limits.max_in_flight_per_primary"),
        ("per_primary_over_global", "limits.max_in_flight_per_primary", "1025", "limits.max_in_flight_per_primary"),
        ("targets_zero", "limits.max_targets_per_request", "0", "limits.max_targets_per_request"),
        ("targets_too_many", "limits.max_targets_per_request", "1001", "limits.max_targets_per_request"),
        ("request_bytes_too_small", "limits.max_request_bytes", "255", "limits.max_request_bytes"),
        ("request_bytes_too_big", "limits.max_request_bytes", "16777217", "limits.max_request_bytes"),
        ("read_timeout_too_short", "limits.request_read_timeout", "\"99ms\"", "limits.request_read_timeout"),
        ("read_timeout_too_long", "limits.request_read_timeout", "\"61s\"", "limits.request_read_timeout"),
        ("max_deadline_too_short", "limits.max_deadline", "\"99ms\"", "limits.max_deadline"),
        ("max_deadline_too_long", "limits.max_deadline", "\"601s\"", "limits.max_deadline"),
        ("max_deadline_negative_text", "limits.max_deadline", "\"-5s\"", "limits.max_deadline"),
        ("metrics_port_only", "metrics.listen", "\"9464\"", "metrics.listen"),
        ("grace_too_long", "shutdown.grace_period", "\"11m\"", "shutdown.grace_period"),
        ("grace_not_duration", "shutdown.grace_period", "\"soon\"", "shutdown.grace_period"),
        ("level_empty", "logging.level", "\"\"", "logging.level"),
        ("level_blank", "logging.level", "\"  \"", "logging.level"),
        ("level_bad_directive", "logging.level", "\"mpic_node=loud\"", "logging.level"),
        ("format_unknown", "logging.format", "\"xml\"", "logging.format"),
        ("format_wrong_case", "logging.format", "\"JSON\"", "logging.format"),
        ("state_directory_empty", "state.directory", "\"\"", "state.directory"),
        ("user_agent_empty", "http.user_agent", "\"\"", "http.user_agent"),
        ("user_agent_newline", "http.user_agent", "\"a\\nb\"", "http.user_agent"),
        ("body_too_small", "http.max_body_bytes", "127", "http.max_body_bytes"),
        ("header_too_small", "http.max_header_bytes", "8191", "http.max_header_bytes"),
        ("connect_timeout_too_short", "http.connect_timeout", "\"99ms\"", "http.connect_timeout"),
        ("hop_timeout_too_long", "http.hop_timeout", "\"61s\"", "http.hop_timeout"),
        ("redirects_too_many", "http.max_redirects", "21", "http.max_redirects"),
        ("idle_zero", "http.idle_timeout", "\"0s\"", "http.idle_timeout"),
        ("idle_connections_zero", "http.max_idle_connections", "0", "http.max_idle_connections"),
        ("http_egress_v6_in_v4", "http.egress_ipv4", "\"::1\"", "http.egress_ipv4"),
        ("http_port_zero", "dangerous.http_port", "0", "dangerous.http_port"),
        ("https_port_too_big", "dangerous.https_port", "65536", "dangerous.https_port"),
        ("audit_path_empty", "audit.path", "\"\"", "audit.path"),
    ];
    for (name, key, value, expected_key) in cases {
        let found = problems(parse(&minimal_with(&[(key, value)])));
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].key, *expected_key, "{name}");
        let message = &found[0].message;
        assert!(
            !message.is_empty() && !message.ends_with('.'),
            "{name}: {message:?}"
        );
        // mpic-protocol's perspective id message says "use 1-64 characters ..." instead.
        assert!(
            message.contains("expected") || message.contains(": use "),
            "{name}: message should say what is expected: {message:?}"
        );
    }
}

#[test]
fn messages_say_what_is_wrong_and_what_is_expected() {
    let cases: &[(&str, Settings<'_>, &str)] = &[
        (
            "listen_entry",
            &[("quic.listen", "[\"127.0.0.1:4433\", \"1.2.3.4\"]")],
            "quic.listen[1]: \"1.2.3.4\" is not a socket address (expected ip:port, e.g. \
             127.0.0.1:4433 or [::]:4433)",
        ),
        (
            "rir",
            &[("perspective.rir", "\"IANA\"")],
            "perspective.rir: unknown RIR \"IANA\": expected one of ARIN, RIPE, APNIC, LACNIC, \
             AFRINIC",
        ),
        (
            "duration_range",
            &[("quic.idle_timeout", "\"20m\"")],
            "quic.idle_timeout: \"20m\" is out of range (expected 1s to 10m)",
        ),
        (
            "integer_range",
            &[("quic.max_connections", "0")],
            "quic.max_connections: 0 is out of range (expected 1 to 100000)",
        ),
        (
            "keep_alive_vs_idle",
            &[
                ("quic.idle_timeout", "\"5s\""),
                ("quic.keep_alive_interval", "\"5s\""),
            ],
            "quic.keep_alive_interval: 5s is not shorter than quic.idle_timeout (5s) (expected \
             a shorter interval so idle connections stay open)",
        ),
        (
            "per_primary_vs_global",
            &[
                ("limits.max_in_flight_requests", "10"),
                ("limits.max_in_flight_per_primary", "11"),
            ],
            "limits.max_in_flight_per_primary: 11 is out of range (expected 1 to 10)",
        ),
        (
            "duplicate_listen",
            &[(
                "quic.listen",
                "[\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:1\"]",
            )],
            "quic.listen[2]: 127.0.0.1:1 is listed twice (also at quic.listen[0]; expected each \
             address once)",
        ),
        (
            "log_format",
            &[("logging.format", "\"xml\"")],
            "logging.format: \"xml\" is not a log format (expected \"text\" or \"json\")",
        ),
    ];
    for (name, settings, expected) in cases {
        let error = parse(&minimal_with(settings)).unwrap_err();
        assert_eq!(error.to_string(), *expected, "{name}");
    }
}

#[test]
fn boundary_and_alternative_values_are_accepted() {
    let location_128 = format!("\"{}\"", "x".repeat(MAX_LOCATION_CHARS));
    let good_pin = pin(&[7; 32]);
    #[rustfmt::skip]
    let cases: &[(&str, Settings<'_>)] = &[
        ("location_128_chars", &[("perspective.location", &location_128)]),
        ("location_unicode", &[("perspective.location", "\"São Paulo, BR\"")]),
        ("rir_full_name", &[("perspective.rir", "\"RIPE NCC\"")]),
        ("listen_ipv6_and_ipv4", &[("quic.listen", "[\"[::1]:4433\", \"127.0.0.1:4433\"]")]),
        ("same_ip_other_port", &[("quic.listen", "[\"127.0.0.1:4433\", \"127.0.0.1:4434\"]")]),
        ("pin_valid", &[("quic.client_spki_pins", &good_pin)]),
        ("idle_min_with_keep_alive", &[("quic.idle_timeout", "\"1s\""), ("quic.keep_alive_interval", "\"100ms\"")]),
        ("idle_max", &[("quic.idle_timeout", "\"10m\"")]),
        ("idle_lowered_keep_alive_omitted", &[("quic.idle_timeout", "\"3s\"")]),
        ("connections_bounds", &[("quic.max_connections", "1"), ("quic.max_streams_per_connection", "10000")]),
        ("connections_max", &[("quic.max_connections", "100000"), ("quic.max_streams_per_connection", "1")]),
        ("per_primary_equals_global", &[("limits.max_in_flight_per_primary", "1024")]),
        ("global_lowered_per_primary_omitted", &[("limits.max_in_flight_requests", "10")]),
        ("request_bytes_min", &[("limits.max_request_bytes", "256")]),
        ("request_bytes_max", &[("limits.max_request_bytes", "16777216")]),
        ("timeouts_min", &[("limits.request_read_timeout", "\"100ms\""), ("limits.max_deadline", "\"100ms\"")]),
        ("timeouts_max", &[("limits.request_read_timeout", "\"60s\""), ("limits.max_deadline", "\"10m\"")]),
        ("grace_zero", &[("shutdown.grace_period", "\"0s\"")]),
        ("grace_max", &[("shutdown.grace_period", "\"10m\"")]),
        ("level_directives", &[("logging.level", "\"info,mpic_node=debug\"")]),
        ("format_json", &[("logging.format", "\"json\"")]),
        ("metrics_ipv6", &[("metrics.listen", "\"[::1]:9464\"")]),
    ];
    for (name, settings) in cases {
        if let Err(error) = parse(&minimal_with(settings)) {
            panic!("{name}: {error}");
        }
    }
}

#[test]
fn lowered_limits_pull_omitted_dependents_down() {
    let config = parse(&minimal_with(&[
        ("quic.idle_timeout", "\"3s\""),
        ("limits.max_in_flight_requests", "10"),
    ]))
    .unwrap();
    assert_eq!(config.quic.keep_alive_interval, Duration::from_secs(1));
    assert_eq!(config.limits.max_in_flight_per_primary, 10);
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = minimal_with(&[
        ("perspective.rir", "\"IANA\""),
        ("quic.idle_timeout", "\"forever\""),
        ("quic.listen", "[]"),
    ]);
    assert_eq!(
        problem_keys(parse(&text)),
        ["perspective.rir", "quic.listen", "quic.idle_timeout"]
    );

    // One mistake per table, all reported; dependent checks do not pile on.
    let text = minimal_with(&[
        ("perspective.id", "\"\""),
        ("perspective.location", "\"\""),
        ("quic.listen", "[\"a\", \"b\"]"),
        ("quic.idle_timeout", "\"0s\""),
        ("quic.keep_alive_interval", "\"5s\""),
        ("signing.key", "\"\""),
        ("limits.max_in_flight_requests", "0"),
        ("limits.max_in_flight_per_primary", "5"),
        ("metrics.listen", "\"x\""),
        ("shutdown.grace_period", "\"1h\""),
        ("logging.format", "\"xml\""),
        ("state.directory", "\"\""),
    ]);
    let error = parse(&text).unwrap_err();
    let display = error.to_string();
    assert_eq!(
        problem_keys(Err(error)),
        [
            "perspective.id",
            "perspective.location",
            "quic.listen[0]",
            "quic.listen[1]",
            "quic.idle_timeout",
            "signing.key",
            "limits.max_in_flight_requests",
            "metrics.listen",
            "shutdown.grace_period",
            "logging.format",
            "state.directory",
        ]
    );
    assert_eq!(display.matches("; ").count(), 10, "{display}");
}

#[test]
fn missing_required_tables_and_keys_are_reported() {
    for (name, text, expected) in [
        (
            "empty_file",
            String::new(),
            vec!["perspective", "quic", "signing"],
        ),
        (
            "empty_tables",
            "[perspective]\n[quic]\n[signing]\n".to_owned(),
            vec![
                "perspective.id",
                "perspective.rir",
                "perspective.location",
                "quic.certificate",
                "quic.private_key",
                "quic.client_ca",
                "signing.key",
            ],
        ),
    ] {
        let found = problems(parse(&text));
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, expected, "{name}");
        assert!(
            found.iter().all(|p| p.message.contains("missing")),
            "{name}: {found:?}"
        );
    }
}

#[test]
fn relative_paths_resolve_against_base_dir() {
    let text = minimal_with(&[
        ("quic.client_ca", "\"/srv/pki/primary-ca.pem\""),
        ("signing.key", "\"../keys/signing.key\""),
        ("state.directory", "\"state\""),
    ]);
    let config = Config::from_toml_str(&text, Path::new("/opt/node/etc")).unwrap();
    for (name, actual, expected) in [
        (
            "relative",
            &config.quic.certificate,
            "/opt/node/etc/tls/node.pem",
        ),
        (
            "relative_key",
            &config.quic.private_key,
            "/opt/node/etc/tls/node.key",
        ),
        (
            "absolute_kept",
            &config.quic.client_ca,
            "/srv/pki/primary-ca.pem",
        ),
        (
            "parent_dir",
            &config.signing.key,
            "/opt/node/etc/../keys/signing.key",
        ),
        ("state", &config.state.directory, "/opt/node/etc/state"),
    ] {
        assert_eq!(actual, Path::new(expected), "{name}");
    }
}

#[test]
fn load_resolves_relative_paths_against_the_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    let config = Config::load(&file).unwrap();
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(config.quic.certificate, base.join("tls/node.pem"));
    assert_eq!(config.signing.key, base.join("signing.key"));
}

#[test]
fn load_reports_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absent.toml");
    match Config::load(&file) {
        Err(error @ ConfigError::Read { .. }) => {
            let ConfigError::Read { path, source } = &error else {
                unreachable!()
            };
            assert_eq!(path, &file);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("cannot read config file {}: ", file.display())),
                "{error}"
            );
        }
        other => panic!("expected ConfigError::Read, got {other:?}"),
    }
}

#[test]
fn omitted_optional_keys_take_their_defaults() {
    let config = parse(MINIMAL).unwrap();
    let Config {
        perspective,
        quic,
        signing,
        limits,
        metrics,
        shutdown,
        logging,
        state,
        dangerous,
        dns,
        http,
        audit,
        openmpic,
        caa,
        manifest,
        tenants,
    } = config;
    assert!(tenants.is_empty());
    assert!(manifest.egress_prefixes.is_empty());
    assert_eq!(openmpic, OpenMpicConfig::default());
    assert_eq!(caa, CaaConfig::default());
    assert_eq!(audit, AuditDestination::Stdout);
    assert!(!dangerous.disable_audit_log);
    assert_eq!(http, HttpConfig::default());
    assert_eq!(http.max_body_bytes, 8192);
    assert_eq!(http.max_redirects, 10);
    assert!(http.reuse_connections);
    assert_eq!(http.idle_timeout, Duration::from_secs(2));
    assert!(http.user_agent.starts_with("mpic-node/"));
    assert_eq!((dangerous.http_port, dangerous.https_port), (None, None));
    assert_eq!(dns.mode, DnsModeConfig::Iterative { root_hints: None });

    assert_eq!(perspective.id.as_str(), "fra-1");
    assert_eq!(perspective.rir, Rir::RipeNcc);
    assert_eq!(perspective.location, "Frankfurt, DE");
    assert!(!perspective.shadow);

    assert_eq!(quic.listen, ["[::]:4433".parse::<SocketAddr>().unwrap()]);
    assert_eq!(
        quic.certificate,
        PathBuf::from("/etc/mpic-node/tls/node.pem")
    );
    assert_eq!(
        quic.private_key,
        PathBuf::from("/etc/mpic-node/tls/node.key")
    );
    assert_eq!(quic.client_ca, PathBuf::from("/etc/mpic-node/tls/ca.pem"));
    assert!(quic.client_spki_pins.is_empty());
    assert_eq!(quic.idle_timeout, Duration::from_secs(30));
    assert_eq!(quic.keep_alive_interval, Duration::from_secs(10));
    assert_eq!(quic.max_connections, 1024);
    assert_eq!(quic.max_streams_per_connection, 256);

    assert_eq!(signing.key, PathBuf::from("/etc/mpic-node/signing.key"));

    assert_eq!(limits.max_in_flight_requests, 1024);
    assert_eq!(limits.max_in_flight_per_primary, 256);
    assert_eq!(limits.max_targets_per_request, 100);
    assert_eq!(limits.max_request_bytes, 65536);
    assert_eq!(limits.request_read_timeout, Duration::from_secs(5));
    assert_eq!(limits.max_deadline, Duration::from_secs(30));

    assert_eq!(
        metrics.listen,
        "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(shutdown.grace_period, Duration::from_secs(10));
    assert_eq!(logging.level, "info");
    assert_eq!(logging.format, LogFormat::Text);
    assert_eq!(state.directory, PathBuf::from("/var/lib/mpic-node"));
    assert!(!dangerous.generate_dev_credentials);
    assert!(!dangerous.allow_private_targets);
}

#[test]
fn spki_pins_decode_to_digests() {
    let text = minimal_with(&[(
        "quic.client_spki_pins",
        &format!(
            "[\"{}\", \"{}\"]",
            base64::engine::general_purpose::STANDARD.encode([1; 32]),
            base64::engine::general_purpose::STANDARD.encode([2; 32])
        ),
    )]);
    let config = parse(&text).unwrap();
    assert_eq!(config.quic.client_spki_pins, [[1; 32], [2; 32]]);
}

#[test]
fn dangerous_options_lists_enabled_keys() {
    for (name, settings, expected) in [
        ("none", vec![], vec![]),
        (
            "dev_credentials",
            vec![("dangerous.generate_dev_credentials", "true")],
            vec!["dangerous.generate_dev_credentials"],
        ),
        (
            "private_targets",
            vec![("dangerous.allow_private_targets", "true")],
            vec!["dangerous.allow_private_targets"],
        ),
        (
            "lab_ports",
            vec![
                ("dangerous.http_port", "8080"),
                ("dangerous.https_port", "8443"),
            ],
            vec!["dangerous.http_port", "dangerous.https_port"],
        ),
        (
            "explicit_false",
            vec![
                ("dangerous.generate_dev_credentials", "false"),
                ("dangerous.allow_private_targets", "false"),
            ],
            vec![],
        ),
    ] {
        let config = parse(&minimal_with(&settings)).unwrap();
        assert_eq!(config.dangerous_options(), expected, "{name}");
    }
}

#[test]
fn audit_destination_is_stdout_a_file_or_off_under_dangerous() {
    use crate::audit::AuditDestination;
    let file = parse(&minimal_with(&[("audit.path", "\"audit/results.jsonl\"")])).unwrap();
    assert_eq!(
        file.audit,
        AuditDestination::File(PathBuf::from("/etc/mpic-node/audit/results.jsonl"))
    );
    let off = parse(&minimal_with(&[("dangerous.disable_audit_log", "true")])).unwrap();
    assert_eq!(off.audit, AuditDestination::Off);
    assert_eq!(off.dangerous_options(), ["dangerous.disable_audit_log"]);
    let both = problem_keys(parse(&minimal_with(&[
        ("audit.path", "\"a.jsonl\""),
        ("dangerous.disable_audit_log", "true"),
    ])));
    assert_eq!(both, ["audit.path"]);
}

#[test]
fn openmpic_is_off_by_default_and_its_values_are_checked() {
    let config = parse(MINIMAL).unwrap();
    assert!(!config.openmpic.enabled());
    let on = parse(&format!(
        "{MINIMAL}\n[openmpic]\nlisten = [\"127.0.0.1:0\"]\ncaa_domains = [\"CA.Example\"]\n"
    ))
    .unwrap();
    assert!(on.openmpic.enabled());
    assert_eq!(on.openmpic.caa_domains, ["ca.example"]);
    let bad = parse(&format!(
        "{MINIMAL}\n[openmpic]\nlisten = [\"nope\", \"127.0.0.1:1\", \"127.0.0.1:1\"]\ncaa_domains = [\"ca example\"]\n"
    ));
    assert_eq!(
        problem_keys(bad),
        [
            "openmpic.listen[0]",
            "openmpic.listen[2]",
            "openmpic.caa_domains[0]"
        ]
    );
}

#[test]
fn caa_matches_method_labels_exactly_unless_configured() {
    use crate::checks::caa::policy::LabelCase;
    let default = parse(MINIMAL).unwrap();
    assert!(!default.caa.case_insensitive_method_labels);
    assert_eq!(
        crate::checks::caa::policy::PolicyOptions::from_config(&default.caa).method_label_case,
        LabelCase::Exact
    );
    assert_eq!(
        crate::checks::caa::policy::PolicyOptions::from_config(&parse(EXAMPLE).unwrap().caa),
        crate::checks::caa::policy::PolicyOptions::default()
    );
    let on = parse(&minimal_with(&[(
        "caa.case_insensitive_method_labels",
        "true",
    )]))
    .unwrap();
    assert!(on.caa.case_insensitive_method_labels);
    assert_eq!(
        crate::checks::caa::policy::PolicyOptions::from_config(&on.caa).method_label_case,
        LabelCase::Insensitive
    );
    assert!(!crate::checks::caa::policy::PolicyOptions::from_config(&on.caa).flag_1_is_critical);
    let (path, message) = syntax(parse(&minimal_with(&[(
        "caa.case_insensitive_method_labels",
        "\"yes\"",
    )])));
    assert_eq!(path, "caa.case_insensitive_method_labels");
    assert!(message.contains("bool"), "{message}");
}
