//! Which client addresses count as one source for limits, detection counters and blocks. An
//! IPv6 customer is routinely given a whole /64 (often more) and may use any address in it:
//! counted one by one, an attacker would have 2^64 fresh budgets and could never be blocked.
//! So an IPv6 source is its /64; IPv4 addresses (IPv4-mapped IPv6 included) count one by one.
//! Audit events keep the exact address.

use std::net::{IpAddr, Ipv6Addr};

/// The network an address is counted under: itself for IPv4, its /64 for IPv6.
pub fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

/// [`source`] of an address as text, as stored with counters and blocks: `192.0.2.7`, or
/// `2001:db8:1:2::/64`. Text that is not an address is kept as it is (it matches only itself).
pub fn source_key(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(source) {
        Ok(IpAddr::V6(net)) => format!("{net}/64"),
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_by_address() {
        assert_eq!(source_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(source_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(source_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(source_key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(source_key("2001:db8:1:3::1"), source_key("2001:db8:1:2::1"));
        assert_eq!(source_key("not an address"), "not an address");
    }
}
