//! `[quic]`: the listener's addresses, the node's TLS identity, the primaries' CA and pins, and
//! the connection limits, validated into [`QuicConfig`].

use std::path::Path;
use std::time::Duration;

use super::raw::{DurationText, RawQuic};
use super::validate::{
    Problems, bounded, duration, missing_table, path, socket_addresses, spki_pins,
};
use super::*;

pub(super) fn validate(
    raw: Option<RawQuic>,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<QuicConfig> {
    let Some(raw) = raw else {
        missing_table("quic", "certificate, private_key and client_ca", p);
        return None;
    };
    let listen = match raw.listen {
        None => Some(default_quic_listen()),
        Some(listen) => socket_addresses("quic.listen", &listen, p),
    };
    let certificate = path(
        "quic.certificate",
        raw.certificate,
        "the node certificate chain PEM file",
        base_dir,
        p,
    );
    let private_key = path(
        "quic.private_key",
        raw.private_key,
        "the node private key PKCS#8 PEM file",
        base_dir,
        p,
    );
    let client_ca = path(
        "quic.client_ca",
        raw.client_ca,
        "the PEM bundle of CAs that issue primaries' client certificates",
        base_dir,
        p,
    );
    let client_spki_pins = spki_pins(
        "quic.client_spki_pins",
        raw.client_spki_pins.unwrap_or_default(),
        p,
    );
    let idle_timeout = duration(
        "quic.idle_timeout",
        raw.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
        IDLE_TIMEOUT_RANGE,
        p,
    );
    let keep_alive_interval = keep_alive_interval(raw.keep_alive_interval, idle_timeout, p);
    let max_connections = bounded(
        "quic.max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        MAX_CONNECTIONS_RANGE,
        p,
    );
    let max_streams_per_connection = bounded(
        "quic.max_streams_per_connection",
        raw.max_streams_per_connection,
        DEFAULT_MAX_STREAMS_PER_CONNECTION,
        MAX_STREAMS_PER_CONNECTION_RANGE,
        p,
    );
    Some(QuicConfig {
        listen: listen?,
        certificate: certificate?,
        private_key: private_key?,
        client_ca: client_ca?,
        client_spki_pins: client_spki_pins?,
        idle_timeout: idle_timeout?,
        keep_alive_interval: keep_alive_interval?,
        max_connections: max_connections?,
        max_streams_per_connection: max_streams_per_connection?,
    })
}

/// `quic.keep_alive_interval`: it must fire before the idle timeout.
fn keep_alive_interval(
    text: Option<DurationText>,
    idle_timeout: Option<Duration>,
    p: &mut Problems,
) -> Option<Duration> {
    // The keep-alive must fire before the idle timeout. If the idle timeout is itself bad, the
    // comparison is skipped so one mistake is reported once.
    match text {
        // An omitted interval follows a lowered idle timeout down, keeping a third of it.
        None => {
            Some(DEFAULT_KEEP_ALIVE_INTERVAL.min(idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT) / 3))
        }
        Some(text) => duration(
            "quic.keep_alive_interval",
            Some(text),
            DEFAULT_KEEP_ALIVE_INTERVAL,
            MIN_KEEP_ALIVE_INTERVAL..=*IDLE_TIMEOUT_RANGE.end(),
            p,
        )
        .and_then(|interval| match idle_timeout {
            Some(idle) if interval >= idle => {
                p.push(
                    "quic.keep_alive_interval",
                    format!(
                        "{} is not shorter than quic.idle_timeout ({}) (expected a shorter \
                         interval so idle connections stay open)",
                        humantime::format_duration(interval),
                        humantime::format_duration(idle),
                    ),
                );
                None
            }
            _ => Some(interval),
        }),
    }
}
