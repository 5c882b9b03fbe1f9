//! Address policy for outbound integration requests: decides whether one resolved IP may be dialled.
//! Pure and synchronous (no I/O), mirroring Mattermost's AllowedUntrustedInternalConnections filter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SETTING: &str = "ServiceSettings.AllowedUntrustedInternalConnections";

/// One allow-list network. Kept as integers so that containment is a mask-and-compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Net {
    V4 { addr: u32, prefix: u8 },
    V6 { addr: u128, prefix: u8 },
}

impl Net {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `::1`, `[::1]`, `fe80::/10`. A bare IP is a single-address net,
    /// so "IP falls within a listed IP" and "within a listed CIDR" are one rule.
    fn parse(entry: &str) -> Option<Net> {
        let (addr, prefix) = match entry.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (entry, None),
        };
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => {
                let prefix = prefix.unwrap_or(32);
                (prefix <= 32).then(|| Net::V4 {
                    addr: u32::from(v4),
                    prefix,
                })
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                (prefix <= 128).then(|| Net::V6 {
                    addr: u128::from(v6),
                    prefix,
                })
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { addr, prefix }, IpAddr::V4(v4)) => in_v4(u32::from(v4), *addr, *prefix),
            (Net::V6 { addr, prefix }, IpAddr::V6(v6)) => in_v6(u128::from(v6), *addr, *prefix),
            _ => false,
        }
    }
}

fn in_v4(ip: u32, net: u32, prefix: u8) -> bool {
    // checked_shl: a /0 mask would otherwise be a shift by the full width.
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    ip & mask == net & mask
}

fn in_v6(ip: u128, net: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    ip & mask == net & mask
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    in_v4(u32::from(ip), u32::from(Ipv4Addr::from(net)), prefix)
}

fn v6_in(ip: Ipv6Addr, net: [u16; 8], prefix: u8) -> bool {
    in_v6(u128::from(ip), u128::from(Ipv6Addr::from(net)), prefix)
}

/// The parsed allow list plus the shim's own addresses. Cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Lower-cased host names, matched exactly against the request's host.
    hosts: Vec<String>,
    nets: Vec<Net>,
    own: Vec<IpAddr>,
}

impl Policy {
    /// `allowed` is the raw setting; Mattermost splits on whitespace and the admin console also
    /// accepts commas, so both separate entries. Unparseable CIDRs are kept as host names, which
    /// can never match a real host, so a typo fails closed.
    pub fn new(allowed: &str, own: &[IpAddr]) -> Policy {
        let mut hosts = Vec::new();
        let mut nets = Vec::new();
        for entry in allowed
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|e| !e.is_empty())
        {
            if let Some(net) = Net::parse(entry) {
                nets.push(net);
            }
            // An IP entry is also kept as a name: Mattermost matches the URL host string too.
            hosts.push(normalise_host(entry));
        }
        Policy {
            hosts,
            nets,
            own: own.to_vec(),
        }
    }

    /// `host` is the request's host (a name, or the IP literal itself); `ip` is what would be dialled.
    /// Err carries the full refusal text for the integration's error log.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let host = normalise_host(host);
        if !host.is_empty() && self.hosts.contains(&host) {
            return Ok(());
        }
        match self.forbidden(ip) {
            None => Ok(()),
            Some(rule) => {
                let shown = ip.to_string();
                let origin = if host.is_empty() || host == shown {
                    String::new()
                } else {
                    format!(", resolved from {host},")
                };
                Err(format!(
                    "address forbidden: {shown} ({rule}){origin} is an internal address; \
                     add it (or its host name) to {SETTING} to allow it"
                ))
            }
        }
    }

    fn allowed_net(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        self.own.iter().any(|o| {
            // Compare canonical forms so ::ffff:a.b.c.d matches an IPv4 listen address.
            o.to_canonical() == ip.to_canonical()
        })
    }

    /// The rule an address breaks, or None when it may be dialled.
    fn forbidden(&self, ip: IpAddr) -> Option<String> {
        match ip {
            IpAddr::V4(v4) => self.forbidden_v4(v4),
            IpAddr::V6(v6) => self.forbidden_v6(v6),
        }
    }

    fn forbidden_v4(&self, ip: Ipv4Addr) -> Option<String> {
        if self.allowed_net(IpAddr::V4(ip)) {
            return None;
        }
        let o = ip.octets();
        let rule = if o == [0, 0, 0, 0] {
            "unspecified address"
        } else if o[0] == 0 {
            "\"this network\" 0.0.0.0/8"
        } else if o[0] == 127 {
            "loopback"
        } else if o[0] == 10 || v4_in(ip, [172, 16, 0, 0], 12) || v4_in(ip, [192, 168, 0, 0], 16) {
            "private network"
        } else if v4_in(ip, [100, 64, 0, 0], 10) {
            "carrier-grade NAT"
        } else if o == [169, 254, 169, 254] {
            // Named apart from link-local because it is the classic SSRF target.
            "cloud metadata address"
        } else if v4_in(ip, [169, 254, 0, 0], 16) {
            "link-local"
        } else if v4_in(ip, [192, 0, 0, 0], 24) {
            "IETF protocol assignments 192.0.0.0/24"
        } else if v4_in(ip, [192, 0, 2, 0], 24)
            || v4_in(ip, [198, 51, 100, 0], 24)
            || v4_in(ip, [203, 0, 113, 0], 24)
        {
            "documentation network"
        } else if v4_in(ip, [198, 18, 0, 0], 15) {
            "benchmarking network"
        } else if v4_in(ip, [224, 0, 0, 0], 4) {
            "multicast"
        } else if o == [255, 255, 255, 255] {
            "broadcast"
        } else if v4_in(ip, [240, 0, 0, 0], 4) {
            "reserved 240.0.0.0/4"
        } else if self.is_own(IpAddr::V4(ip)) {
            "the shim's own address"
        } else {
            return None;
        };
        Some(rule.to_string())
    }

    /// Checks an IPv4 address carried inside an IPv6 one; the packet ends up there (or at a
    /// translator that forwards there), so the IPv4 rules decide.
    fn embedded(&self, kind: &str, v4: Ipv4Addr) -> Option<String> {
        self.forbidden_v4(v4)
            .map(|rule| format!("{kind} form of {v4}: {rule}"))
    }

    fn forbidden_v6(&self, ip: Ipv6Addr) -> Option<String> {
        if self.allowed_net(IpAddr::V6(ip)) {
            return None;
        }
        let s = ip.segments();
        let low32 = Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));

        if let Some(v4) = ip.to_ipv4_mapped() {
            return self.embedded("IPv4-mapped", v4);
        }
        let rule = if ip.is_unspecified() {
            "unspecified address"
        } else if ip.is_loopback() {
            "loopback"
        } else if s[..6] == [0; 6] {
            // Deprecated IPv4-compatible ::a.b.c.d; some stacks still route it to the IPv4 host.
            return self.embedded("IPv4-compatible", low32);
        } else if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
            return self.embedded("IPv4-translated", low32);
        } else if v6_in(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
            return self.embedded("NAT64", low32);
        } else if v6_in(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48) {
            "local-use NAT64 64:ff9b:1::/48"
        } else if v6_in(ip, [0; 8], 8) {
            "reserved ::/8"
        } else if v6_in(ip, [0x100, 0, 0, 0, 0, 0, 0, 0], 64) {
            "discard-only 100::/64"
        } else if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
            "cloud metadata address"
        } else if v6_in(ip, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7) {
            "unique-local"
        } else if v6_in(ip, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) {
            "link-local"
        } else if v6_in(ip, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10) {
            "site-local (deprecated)"
        } else if s[0] >> 8 == 0xff {
            "multicast"
        } else if v6_in(ip, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)
            || v6_in(ip, [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20)
        {
            "documentation network"
        } else if v6_in(ip, [0x2001, 2, 0, 0, 0, 0, 0, 0], 48) {
            "benchmarking network"
        } else if s[0] == 0x2002 {
            // 6to4 carries the IPv4 address in bits 16..48.
            let v4 = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
            return self
                .embedded("6to4", v4)
                .or_else(|| self.own_v6(ip).map(str::to_string));
        } else if s[0] == 0x2001 && s[1] == 0 {
            // Teredo: server IPv4 in bits 32..64, client IPv4 bit-inverted in the low 32 bits.
            let server = Ipv4Addr::from((u32::from(s[2]) << 16) | u32::from(s[3]));
            let client = Ipv4Addr::from(!u32::from(low32));
            return self
                .embedded("Teredo server", server)
                .or_else(|| self.embedded("Teredo client", client))
                .or_else(|| self.own_v6(ip).map(str::to_string));
        } else {
            self.own_v6(ip)?
        };
        Some(rule.to_string())
    }

    fn own_v6(&self, ip: Ipv6Addr) -> Option<&'static str> {
        self.is_own(IpAddr::V6(ip))
            .then_some("the shim's own address")
    }
}

/// Host names compare case-insensitively and IPv6 literals with or without brackets.
fn normalise_host(host: &str) -> String {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Refused with the default (empty) allow list; the second column must appear in the text.
    const REFUSED: &[(&str, &str)] = &[
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.5", "private network"),
        ("172.16.0.1", "private network"),
        ("172.31.255.255", "private network"),
        ("192.168.1.1", "private network"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this network"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("192.0.0.8", "IETF protocol"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("2001:2::1", "benchmarking"),
        ("100::1", "discard-only"),
        (
            "::ffff:127.0.0.1",
            "IPv4-mapped form of 127.0.0.1: loopback",
        ),
        ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3: private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:a9fe:a9fe", "cloud metadata"),
        ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1"),
        ("::192.168.0.1", "IPv4-compatible"),
        ("::ffff:0:10.0.0.1", "IPv4-translated"),
        ("64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1"),
        (
            "64:ff9b::a9fe:a9fe",
            "NAT64 form of 169.254.169.254: cloud metadata",
        ),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:7f00:1::", "6to4 form of 127.0.0.1"),
        ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"),
        ("2002:c0a8:101::5", "6to4 form of 192.168.1.1"),
        // Teredo client 10.0.0.1 is stored inverted: !0x0a000001 = 0xf5fffffe.
        (
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "Teredo client form of 10.0.0.1",
        ),
        ("1::1", "reserved ::/8"),
    ];

    const ALLOWED: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "172.32.0.1",
        "100.128.0.1",
        "192.0.3.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001:81c::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ];

    #[test]
    fn refused_table() {
        let p = Policy::new("", &[]);
        for (addr, rule) in REFUSED {
            let err = p
                .check_ip(addr, ip(addr))
                .expect_err(&format!("{addr} must be refused"));
            assert!(err.contains(rule), "{addr}: {err:?} should name {rule:?}");
            assert!(err.starts_with("address forbidden: "), "{err}");
            assert!(err.contains(SETTING), "{err}");
        }
    }

    #[test]
    fn allowed_table() {
        let p = Policy::new("", &[]);
        for addr in ALLOWED {
            assert_eq!(p.check_ip(addr, ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn refusal_text_matches_mattermost_style() {
        let p = Policy::new("", &[]);
        assert_eq!(
            p.check_ip("10.0.0.5", ip("10.0.0.5")).unwrap_err(),
            "address forbidden: 10.0.0.5 (private network) is an internal address; add it (or its \
             host name) to ServiceSettings.AllowedUntrustedInternalConnections to allow it"
        );
        let named = p.check_ip("intranet.example", ip("10.0.0.5")).unwrap_err();
        assert!(
            named.contains("10.0.0.5 (private network), resolved from intranet.example,"),
            "{named}"
        );
    }

    #[test]
    fn listed_host_names_are_exact() {
        let p = Policy::new("Intranet.Example, localhost", &[]);
        assert_eq!(p.check_ip("intranet.example", ip("10.0.0.5")), Ok(()));
        assert_eq!(p.check_ip("localhost", ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check_ip("localhost", ip("::1")), Ok(()));
        assert!(p.check_ip("sub.intranet.example", ip("10.0.0.5")).is_err());
        assert!(p.check_ip("intranet.example.", ip("10.0.0.5")).is_err());
        assert!(p.check_ip("other", ip("127.0.0.1")).is_err());
        assert!(p.check_ip("", ip("127.0.0.1")).is_err());
    }

    #[test]
    fn listed_cidrs_and_ips() {
        let p = Policy::new("10.0.0.0/8\t192.168.1.7\n fd00::/8,[::1]", &[]);
        assert_eq!(p.check_ip("a", ip("10.200.0.1")), Ok(()));
        assert_eq!(p.check_ip("a", ip("::ffff:10.200.0.1")), Ok(()));
        assert_eq!(p.check_ip("a", ip("64:ff9b::a00:1")), Ok(()));
        assert_eq!(p.check_ip("b", ip("192.168.1.7")), Ok(()));
        assert!(p.check_ip("b", ip("192.168.1.8")).is_err());
        assert_eq!(p.check_ip("c", ip("fd00:ec2::254")), Ok(()));
        assert!(p.check_ip("c", ip("fc00::1")).is_err());
        assert_eq!(p.check_ip("d", ip("::1")), Ok(()));
        assert_eq!(p.check_ip("[::1]", ip("::1")), Ok(()));
        assert!(p.check_ip("e", ip("127.0.0.1")).is_err());
    }

    #[test]
    fn odd_allow_entries_fail_closed() {
        let p = Policy::new("10.0.0.0/33 ::/129 10.0.0.0/x / ,, 0.0.0.0/0", &[]);
        // Only the last entry is a valid net, and /0 genuinely allows every IPv4 address.
        assert_eq!(p.check_ip("x", ip("10.0.0.1")), Ok(()));
        assert!(p.check_ip("x", ip("::1")).is_err());
        let p = Policy::new("10.0.0.0/33", &[]);
        assert!(p.check_ip("x", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn own_addresses() {
        let own = [ip("93.184.216.34"), ip("2606:4700::6810:84e5")];
        let p = Policy::new("", &own);
        let err = p.check_ip("me", ip("93.184.216.34")).unwrap_err();
        assert!(err.contains("own address"), "{err}");
        assert!(p.check_ip("me", ip("::ffff:93.184.216.34")).is_err());
        assert!(p.check_ip("me", ip("2606:4700::6810:84e5")).is_err());
        assert!(p.check_ip("me", ip("64:ff9b::5db8:d822")).is_err());
        assert_eq!(p.check_ip("other", ip("93.184.216.35")), Ok(()));
        let p = Policy::new("93.184.216.0/24", &own);
        assert_eq!(p.check_ip("me", ip("93.184.216.34")), Ok(()));
        let p = Policy::new("me", &own);
        assert_eq!(p.check_ip("me", ip("93.184.216.34")), Ok(()));
    }
}
