//! The label values of the node's own metrics, as closed enums: each `as_str()` is the exact
//! label value exported (a Prometheus contract: dashboards and alerts match on them).

/// `mpic_node_requests_total{outcome}`: how a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Every target was answered (`answered`).
    Answered,
    /// The primary went away before every target was answered (`abandoned`).
    Abandoned,
    /// Refused with this protocol error kind (its wire name: `overloaded`, `bad_frame`, ...).
    Refused(mpic_protocol::ProtocolErrorKind),
}

impl RequestOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        use mpic_protocol::ProtocolErrorKind as Kind;
        match self {
            RequestOutcome::Answered => "answered",
            RequestOutcome::Abandoned => "abandoned",
            RequestOutcome::Refused(kind) => match kind {
                Kind::BadFrame => "bad_frame",
                Kind::FrameTooLarge => "frame_too_large",
                Kind::BadRequest => "bad_request",
                Kind::UnsupportedVersion => "unsupported_version",
                Kind::TooManyTargets => "too_many_targets",
                Kind::DeadlinePassed => "deadline_passed",
                Kind::Overloaded => "overloaded",
                Kind::ShuttingDown => "shutting_down",
                Kind::Internal => "internal",
                Kind::NotPermitted => "not_permitted",
                // `ProtocolErrorKind` is non-exhaustive; the node refuses only with the kinds
                // above, so a kind added to the protocol shows here as `unknown` until listed.
                _ => "unknown",
            },
        }
    }
}

/// `mpic_node_shed_requests_total{scope}`: which limit refused the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedScope {
    /// The node-wide in-flight limit (`global`).
    Global,
    /// The primary's in-flight limit (`primary`).
    Primary,
    /// The Open MPIC listener's connection cap: a connection closed at accept
    /// (`openmpic_connections`).
    OpenMpicConnections,
    /// A tenant's quota (`tenant`): its requests/s bucket or its in-flight limit.
    Tenant,
}

impl ShedScope {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ShedScope::Global => "global",
            ShedScope::Primary => "primary",
            ShedScope::OpenMpicConnections => "openmpic_connections",
            ShedScope::Tenant => "tenant",
        }
    }
}

/// `mpic_node_quic_connections_total{result}`: how a connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicConnectionResult {
    /// Handshake done and primary admitted (`accepted`).
    Accepted,
    /// The handshake failed (`handshake_failed`).
    HandshakeFailed,
    /// The primary is not admitted (`unauthorized`).
    Unauthorized,
    /// Refused at accept: `quic.max_connections` open (`over_limit`).
    OverLimit,
}

impl QuicConnectionResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            QuicConnectionResult::Accepted => "accepted",
            QuicConnectionResult::HandshakeFailed => "handshake_failed",
            QuicConnectionResult::Unauthorized => "unauthorized",
            QuicConnectionResult::OverLimit => "over_limit",
        }
    }
}

/// `mpic_node_config_reloads_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new config was applied (`applied`).
    Applied,
    /// The new config was rejected; the running one keeps serving (`rejected`).
    Rejected,
}

impl ReloadResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Rejected => "rejected",
        }
    }
}

/// `mpic_node_openmpic_requests_total{endpoint}`: the path asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMpicEndpoint {
    /// `POST /caa` (`caa`).
    Caa,
    /// `POST /dcv` (`dcv`).
    Dcv,
    /// Any other path (`other`).
    Other,
}

impl OpenMpicEndpoint {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenMpicEndpoint::Caa => "caa",
            OpenMpicEndpoint::Dcv => "dcv",
            OpenMpicEndpoint::Other => "other",
        }
    }
}

/// `mpic_node_certificate_expiry_timestamp_seconds{certificate}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CertificateLabel {
    /// The node's own certificate (`node`).
    Node,
    /// The primaries' CA (`client_ca`).
    ClientCa,
}

impl CertificateLabel {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CertificateLabel::Node => "node",
            CertificateLabel::ClientCa => "client_ca",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpic_protocol::ProtocolErrorKind as Kind;

    #[test]
    fn label_values_are_the_exported_ones() {
        let cases: [(&str, &str); 15] = [
            (RequestOutcome::Answered.as_str(), "answered"),
            (RequestOutcome::Abandoned.as_str(), "abandoned"),
            (ShedScope::Global.as_str(), "global"),
            (ShedScope::Primary.as_str(), "primary"),
            (
                ShedScope::OpenMpicConnections.as_str(),
                "openmpic_connections",
            ),
            (QuicConnectionResult::Accepted.as_str(), "accepted"),
            (
                QuicConnectionResult::HandshakeFailed.as_str(),
                "handshake_failed",
            ),
            (QuicConnectionResult::Unauthorized.as_str(), "unauthorized"),
            (QuicConnectionResult::OverLimit.as_str(), "over_limit"),
            (ReloadResult::Applied.as_str(), "applied"),
            (ReloadResult::Rejected.as_str(), "rejected"),
            (OpenMpicEndpoint::Caa.as_str(), "caa"),
            (OpenMpicEndpoint::Dcv.as_str(), "dcv"),
            (OpenMpicEndpoint::Other.as_str(), "other"),
            (CertificateLabel::ClientCa.as_str(), "client_ca"),
        ];
        for (label, expected) in cases {
            assert_eq!(label, expected);
        }
    }

    #[test]
    fn a_refusal_is_labelled_with_its_wire_kind() {
        for kind in [
            Kind::BadFrame,
            Kind::FrameTooLarge,
            Kind::BadRequest,
            Kind::UnsupportedVersion,
            Kind::TooManyTargets,
            Kind::DeadlinePassed,
            Kind::Overloaded,
            Kind::ShuttingDown,
            Kind::Internal,
            Kind::NotPermitted,
            Kind::Unknown,
        ] {
            assert_eq!(RequestOutcome::Refused(kind).as_str(), kind.to_string());
        }
    }
}

/// `mpic_node_http_requests_total{result}`: how one HTTP request to one address ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRequestResult {
    /// A response head arrived (`answered`).
    Answered,
    /// The hop ran out of time (`timeout`).
    Timeout,
    /// Connected, but no usable HTTP response (`http_error`).
    HttpError,
    /// The TCP/TLS connection could not be made (`connect_failed`).
    ConnectFailed,
}

impl HttpRequestResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRequestResult::Answered => "answered",
            HttpRequestResult::Timeout => "timeout",
            HttpRequestResult::HttpError => "http_error",
            HttpRequestResult::ConnectFailed => "connect_failed",
        }
    }
}
