//! CAA tests: the pure policy (one case per rule) and the climb over a scripted resolver.

mod lookup;
mod policy;
