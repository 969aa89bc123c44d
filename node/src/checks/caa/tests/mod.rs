//! CAA tests: the pure policy (one case per rule), the RFC 8657 parameters as BR 4.2.2.1.2
//! requires them, `issuemail` for S/MIME (RFC 9495), and the climb over a scripted resolver.

mod carve_out;
mod lookup;
mod parameters;
mod policy;
mod smime;
