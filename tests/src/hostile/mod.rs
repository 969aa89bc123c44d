//! Hostile peers for the end-to-end suite: a scripted raw DNS server that can flood, loop and
//! oversize its answers ([`dns`]), and a TCP server that drips its bytes or says nothing
//! ([`drip`]). Every server binds loopback only and bounds each connection's lifetime, so a
//! test that forgets one cannot leave load running.

pub mod dns;
pub mod drip;
pub mod proxy;
