//! `[openmpic]`: the optional HTTP JSON listener that speaks Open MPIC's remote-perspective
//! request and response shapes (`open-mpic-core` `CaaCheckRequest`/`DcvCheckRequest`), validated
//! into [`OpenMpicConfig`]. Off unless `listen` names an address; it serves with the `[quic]`
//! certificate and demands a client certificate from `quic.client_ca` (and the SPKI pins).

use std::net::SocketAddr;

use super::caa_domains;
use super::raw::RawOpenMpic;
use super::validate::{Problems, socket_address};

/// Most `openmpic.caa_domains` entries.
pub const MAX_CAA_DOMAINS: usize = 32;

/// The validated `[openmpic]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenMpicConfig {
    /// TCP addresses of the HTTPS listener; empty: the listener is off (the default).
    pub listen: Vec<SocketAddr>,
    /// Issuer Domain Names used for a CAA request that names none (Open MPIC's
    /// `default_caa_domain_list`); empty: such a request is refused as malformed.
    pub caa_domains: Vec<String>,
}

impl OpenMpicConfig {
    /// Whether the listener is on.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }
}

pub(super) fn validate(raw: RawOpenMpic, p: &mut Problems) -> Option<OpenMpicConfig> {
    let mut valid = true;
    let mut listen = Vec::new();
    for (i, text) in raw.listen.unwrap_or_default().iter().enumerate() {
        match socket_address(&format!("openmpic.listen[{i}]"), text, p) {
            Some(address) if listen.contains(&address) => {
                p.push(
                    format!("openmpic.listen[{i}]"),
                    format!("{address} is listed twice"),
                );
                valid = false;
            }
            Some(address) => listen.push(address),
            None => valid = false,
        }
    }
    let caa_domains = caa_domains::validate(
        "openmpic.caa_domains",
        raw.caa_domains.unwrap_or_default(),
        MAX_CAA_DOMAINS,
        p,
    );
    Some(OpenMpicConfig {
        listen: valid.then_some(listen)?,
        caa_domains: caa_domains?,
    })
}
