//! Ports Terrarium's own services use on the host. Proxy sync refuses to publish
//! `tcp://`/`udp://` labels on them; Ansible binds the services to them on loopback.

/// SSH (the firewall always keeps it open; `firewall.ssh_port` may move it).
pub const SSH: u16 = 22;
/// Traefik's public entrypoints.
pub const HTTP: u16 = 80;
pub const HTTPS: u16 = 443;
/// Loopback-only services behind Traefik.
pub const TRAEFIK_API: u16 = 8080;
pub const LXD: u16 = 8443;
pub const COCKPIT: u16 = 9090;
pub const OAUTH2_PROXY: u16 = 4180;
pub const OAUTH2_PROXY_ROUTES: u16 = 4181;
pub const ZITADEL: u16 = 8081;

/// Host ports no container label may claim.
pub const RESERVED: &[u16] = &[SSH, HTTP, HTTPS, TRAEFIK_API, LXD, COCKPIT, OAUTH2_PROXY, OAUTH2_PROXY_ROUTES, ZITADEL];

/// Traefik names shared by the Ansible-rendered static config and proxy sync.
pub mod traefik {
    pub const WEB_ENTRYPOINT: &str = "web";
    pub const WEBSECURE_ENTRYPOINT: &str = "websecure";
    pub const CERT_RESOLVER: &str = "letsencrypt";
    /// Marker lines around the entrypoints proxy sync owns inside Traefik's static file.
    /// Ansible keeps whatever stands between them when it re-renders the file.
    pub const MANAGED_BEGIN: &str = "# BEGIN terrarium-proxy-sync managed entrypoints";
    pub const MANAGED_END: &str = "# END terrarium-proxy-sync managed entrypoints";
    /// The ForwardAuth middleware (defined by Ansible) that admits only the admin group.
    pub const ADMIN_AUTH_MIDDLEWARE: &str = "terrarium-admin-auth@file";
}
