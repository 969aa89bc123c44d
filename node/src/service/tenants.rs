//! Tenants at run time: which tenant a primary is (from its client certificate) and each
//! tenant's quotas — a requests/s token bucket and an in-flight limit. Over quota a request is
//! refused at once (`overloaded` with the tenant's retry hint); nothing waits, so one tenant's
//! flood never delays another's requests.
//!
//! The table lives in [`super::NodeState`]: a reload builds a new one, keeping the bucket and
//! the in-flight count of every tenant whose table did not change.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::Primary;
use crate::config::{TenantConfig, TenantName};

/// One tenant: its configuration and its quota state.
#[derive(Debug)]
pub struct Tenant {
    /// The tenant's `[[tenants]]` table.
    pub config: TenantConfig,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Which quota refused a tenant's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantShed {
    /// The requests/s token bucket is empty.
    Rate,
    /// The tenant's in-flight limit is reached.
    InFlight,
}

impl Tenant {
    fn new(config: TenantConfig) -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                tokens: f64::from(config.burst),
                refilled: Instant::now(),
            }),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_requests)),
            config,
        }
    }

    /// The tenant's name.
    pub fn name(&self) -> &TenantName {
        &self.config.name
    }

    /// Takes one in-flight slot and one token, or says which quota is exhausted. Never waits.
    pub fn try_admit(&self) -> Result<OwnedSemaphorePermit, TenantShed> {
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| TenantShed::InFlight)?;
        let mut bucket = self.bucket.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(self.config.requests_per_second))
            .min(f64::from(self.config.burst));
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            return Err(TenantShed::Rate);
        }
        bucket.tokens -= 1.0;
        Ok(permit)
    }
}

/// Every configured tenant (empty: the node serves no tenants and every admitted primary alike).
#[derive(Debug, Default)]
pub struct Tenants {
    tenants: Vec<Arc<Tenant>>,
}

impl Tenants {
    /// The tenants of `configs`; a tenant whose table is unchanged from `previous` keeps its
    /// quota state (tokens, requests in flight).
    pub fn new(configs: &[TenantConfig], previous: Option<&Tenants>) -> Self {
        let tenants = configs
            .iter()
            .map(|config| {
                previous
                    .and_then(|previous| {
                        previous
                            .tenants
                            .iter()
                            .find(|tenant| &tenant.config == config)
                    })
                    .map_or_else(|| Arc::new(Tenant::new(config.clone())), Arc::clone)
            })
            .collect();
        Self { tenants }
    }

    /// Whether no tenants are configured.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// How many tenants are configured.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// The tenant `primary` belongs to, if any.
    pub fn identify(&self, primary: &Primary) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|tenant| {
            tenant
                .config
                .recognises(primary.id.spki_sha256(), &primary.name)
        })
    }

    /// Whether `primary` may be served: with no tenants configured always, else when it is a
    /// tenant's.
    pub fn admits(&self, primary: &Primary) -> bool {
        self.is_empty() || self.identify(primary).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::auth::PrimaryId;

    fn config(name: &str, rate: u32, burst: u32, in_flight: usize) -> TenantConfig {
        TenantConfig {
            name: TenantName::new(name).unwrap(),
            client_spki_pins: vec![],
            subject_names: vec![format!("{name}-primary")],
            requests_per_second: rate,
            burst,
            max_in_flight_requests: in_flight,
            max_targets_per_request: None,
            checks: None,
            methods: None,
            caa_domains: vec![],
            retry_after: std::time::Duration::from_secs(1),
        }
    }

    fn primary(name: &str) -> Primary {
        Primary {
            id: PrimaryId::for_tests(1),
            name: name.into(),
        }
    }

    #[test]
    fn the_bucket_and_the_in_flight_limit_refuse_at_once() {
        let tenant = Tenant::new(config("a", 1, 2, 10));
        let _first = tenant.try_admit().unwrap();
        let _second = tenant.try_admit().unwrap();
        assert_eq!(tenant.try_admit().unwrap_err(), TenantShed::Rate);
        let narrow = Tenant::new(config("b", 1000, 1000, 1));
        let held = narrow.try_admit().unwrap();
        assert_eq!(narrow.try_admit().unwrap_err(), TenantShed::InFlight);
        drop(held);
        assert!(narrow.try_admit().is_ok());
    }

    #[test]
    fn primaries_are_identified_and_unchanged_tenants_keep_their_state() {
        let old = Tenants::new(&[config("a", 1, 1, 1), config("b", 1, 1, 1)], None);
        assert_eq!(
            old.identify(&primary("b-primary")).unwrap().name().as_str(),
            "b"
        );
        assert!(!old.admits(&primary("stranger")));
        assert!(Tenants::default().admits(&primary("stranger")));
        let new = Tenants::new(&[config("a", 1, 1, 1), config("b", 2, 1, 1)], Some(&old));
        let (a_old, a_new) = (&old.tenants[0], &new.tenants[0]);
        assert!(
            Arc::ptr_eq(a_old, a_new),
            "an unchanged tenant keeps its bucket"
        );
        assert!(!Arc::ptr_eq(&old.tenants[1], &new.tenants[1]));
    }
}
