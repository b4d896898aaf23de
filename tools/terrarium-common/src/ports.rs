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

    // Router priorities. Traefik tries the router with the highest priority first; a
    // router without one gets its rule's length. Container routers keep that default,
    // and proxy sync bounds it (a label's host and path are length-limited, and
    // Terrarium's own hosts are refused), so every explicit priority here outranks
    // every container router.
    /// The sign-in paths (`/oauth2/`) on hosts with `@auth` routes (proxy sync).
    pub const ROUTE_AUTH_PRIORITY: u32 = 1_000_000;
    /// Terrarium's own hosts (Ansible): Cockpit, the dashboard, ZITADEL, HTTP to HTTPS.
    pub const CORE_PRIORITY: u32 = 2_000_000;
    /// The admin gate's sign-in paths on the manage and proxy hosts (Ansible): they must
    /// win over the gated routers of the same host.
    pub const CORE_SIGNIN_PRIORITY: u32 = 2_000_100;
}
