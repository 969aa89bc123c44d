//! Per-tenant metrics: `mpic_node_tenant_requests_total{tenant,outcome}` and
//! `mpic_node_tenant_checks_total{tenant,kind,outcome}`. Tenant names come from `[[tenants]]`
//! (validated, at most `config::tenants::MAX_TENANTS`), so the label set stays closed.

use prometheus::{IntCounterVec, Opts, Registry};

use crate::config::TenantName;

/// Requests and checks per tenant.
#[derive(Debug, Clone)]
pub struct TenantMetrics {
    /// `mpic_node_tenant_requests_total{tenant,outcome}`: requests per tenant by how they ended
    /// (`answered`, `abandoned`, `overloaded`, or another refusal kind).
    pub requests: IntCounterVec,
    /// `mpic_node_tenant_checks_total{tenant,kind,outcome}`: checks run per tenant.
    pub checks: IntCounterVec,
}

impl TenantMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "mpic_node_tenant_requests_total",
                "Requests per tenant, by how they ended",
            ),
            &["tenant", "outcome"],
        )?;
        let checks = IntCounterVec::new(
            Opts::new(
                "mpic_node_tenant_checks_total",
                "Checks run per tenant, by kind and outcome",
            ),
            &["tenant", "kind", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(checks.clone()))?;
        Ok(Self { requests, checks })
    }

    /// Counts a tenant's request by how it ended (`answered`, `overloaded`, ...).
    pub fn count_request(&self, tenant: &TenantName, outcome: &str) {
        self.requests
            .with_label_values(&[tenant.as_str(), outcome])
            .inc();
    }

    /// Counts a check run for a tenant.
    pub fn count_check(&self, tenant: &TenantName, kind: &str, outcome: &str) {
        self.checks
            .with_label_values(&[tenant.as_str(), kind, outcome])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_under_the_tenant_label() {
        let registry = Registry::new();
        let metrics = TenantMetrics::new(&registry).unwrap();
        let name = TenantName::new("ca-one").unwrap();
        metrics.count_request(&name, "overloaded");
        metrics.count_check(&name, "dcv", "pass");
        metrics.count_check(&name, "dcv", "pass");
        assert_eq!(
            metrics
                .requests
                .with_label_values(&["ca-one", "overloaded"])
                .get(),
            1
        );
        assert_eq!(
            metrics
                .checks
                .with_label_values(&["ca-one", "dcv", "pass"])
                .get(),
            2
        );
    }
}
