//! The DNSSEC status of the zone holding a name when there is no answer to validate: the proof
//! BR 3.2.2.8 asks for before a failed CAA lookup may count as permission ("the CA has confirmed
//! that the domain is \"Insecure\" as defined in RFC 4035 Section 4.3"). It walks the same chain
//! as every answer, from the trust anchor down one DS question per label, so it asks the
//! *parents'* servers, which still answer when the zone's own servers are failing.

use hickory_proto::rr::Name;
use mpic_protocol::DnssecStatus;
use tokio::time::Instant;

use super::chain::{Validator, Verdict, Walk, ZoneState};
use crate::dns::DnsClient;

/// The status of the zone holding `name`: `insecure` only from a validated denial of DS at a
/// delegation on the way down (RFC 4035 §4.3); `secure` when the walk reached `name` with
/// validated keys (the zone is signed, so a failed lookup there is never permission); otherwise
/// what stopped the walk (`bogus`, or `indeterminate` when a DS or DNSKEY could not be fetched).
pub(crate) async fn zone_status(
    client: &DnsClient,
    validator: &Validator,
    name: &Name,
    deadline: Instant,
) -> Verdict {
    let mut walk = Walk::new(client, validator, deadline);
    match walk.zone_of(name).await {
        Ok(ZoneState::Insecure {
            why,
            ds_denial: true,
            ..
        }) => Verdict {
            status: DnssecStatus::Insecure,
            detail: Some(why),
        },
        // RFC 4035 §5.2 treats a zone signed only with unsupported algorithms as insecure for
        // answers, but it is not the §4.3 proof the BRs name: it is signed.
        Ok(ZoneState::Insecure { why, .. }) => Verdict {
            status: DnssecStatus::Indeterminate,
            detail: Some(format!("{why}; not a validated denial of DS")),
        },
        Ok(ZoneState::Secure { zone, .. }) => Verdict {
            status: DnssecStatus::Secure,
            detail: Some(format!(
                "{name} is in signed zone {zone} (validated DNSKEY)"
            )),
        },
        Err(verdict) => verdict,
    }
}
