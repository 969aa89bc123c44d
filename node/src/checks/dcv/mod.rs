//! DNS-based domain-control validation methods (BR 3.2.2.4.7, .8, .13, .14, .16, .17, .21, .22;
//! BR 3.2.2.5.3).

pub mod acme_dns01;
pub mod adn;
pub mod contacts;
pub mod dns_account01;
pub mod dns_change;
pub mod dns_persist;
pub mod ip_address;
pub mod lookup;
pub mod request;
