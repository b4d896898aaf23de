//! Host ports something already holds, from the kernel's socket tables
//! (`/proc/net/tcp`, `tcp6`, `udp`, `udp6`). Traefik treats an entrypoint it cannot
//! bind as fatal at start, so a `tcp://`/`udp://` rule on such a port would take down
//! every route; the plan refuses it instead. Pure parsing; [`crate::sync`] reads the files.

use std::collections::BTreeSet;

use crate::label::Protocol;

/// `st` of a listening TCP socket (`TCP_LISTEN` in the kernel's `tcp_states.h`).
const TCP_LISTEN: &str = "0A";

/// The local ports of the sockets in one table that block a bind: listening sockets
/// for TCP, every bound socket for UDP. Lines that do not parse are skipped (the
/// header, and anything a future kernel adds).
pub fn parse(table: &str, protocol: Protocol) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for line in table.lines() {
        // `sl local_address rem_address st ...`, e.g. `0: 0100007F:0035 00000000:0000 0A ...`
        let mut fields = line.split_whitespace();
        let (Some(_slot), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(port) = local.rsplit_once(':').and_then(|(_, port)| u16::from_str_radix(port, 16).ok()) else {
            continue;
        };
        let blocks = match protocol {
            Protocol::Tcp => state == TCP_LISTEN,
            Protocol::Udp => true,
        };
        if blocks && port != 0 {
            ports.insert(port);
        }
    }
    ports
}

/// The tables to read for each protocol (IPv4 and IPv6: Traefik binds both).
pub const TABLES: [(&str, Protocol); 4] =
    [("tcp", Protocol::Tcp), ("tcp6", Protocol::Tcp), ("udp", Protocol::Udp), ("udp6", Protocol::Udp)];

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes from a real Ubuntu 24.04 host: systemd-resolved on 127.0.0.53:53 and
    // 127.0.0.54:53, sshd on 22, an outgoing connection, PostgreSQL on [::1]:5432.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   991        0 17801 1 0000000000000000 100 0 0 10 5
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20612 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:D2C4 8EFA5ED8:01BB 01 00000000:00000000 02:000AA4B0 00000000  1000        0 80110 2 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   113        0 30111 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  529: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 17800 2 0000000000000000 0
  530: 3600007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 17806 2 0000000000000000 0
  900: 0F02000A:0044 0202000A:0043 01 00000000:00000000 00:00000000 00000000   101        0 22000 2 0000000000000000 0
";

    #[test]
    fn listening_tcp_and_bound_udp_sockets_are_found() {
        assert_eq!(parse(TCP, Protocol::Tcp), [22, 53].into());
        assert_eq!(parse(TCP6, Protocol::Tcp), [5432].into());
        assert_eq!(parse(UDP, Protocol::Udp), [53, 68].into());
    }

    #[test]
    fn junk_and_empty_tables_give_nothing() {
        assert!(parse("", Protocol::Tcp).is_empty());
        assert!(parse("garbage\n0: zz:zz 0 0A\n1: 00000000:0000 00000000:0000 0A\n", Protocol::Tcp).is_empty());
    }
}
