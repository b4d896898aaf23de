//! The Traefik dynamic configuration file proxy sync owns (file provider).

use std::collections::BTreeMap;

use serde::Serialize;
use terrarium_common::ports::{self, traefik};

use crate::label::{Auth, Protocol, Scheme};
use crate::plan::{HttpRoute, Plan};

/// The route-auth oauth2-proxy as a Traefik service.
pub const ROUTE_AUTH_SERVICE: &str = "terrarium-oauth2-proxy-routes";
/// Removes identity headers a client might send, so only oauth2-proxy can set them.
pub const STRIP_MIDDLEWARE: &str = "terrarium-route-auth-strip";
/// Turns a 401 from the auth check into oauth2-proxy's sign-in page.
pub const SIGNIN_MIDDLEWARE: &str = "terrarium-route-auth-signin";
/// oauth2-proxy's routers on protected hosts win over any published path there (the
/// order of every priority is explained in `terrarium_common::ports::traefik`).
const ROUTE_AUTH_PRIORITY: u32 = traefik::ROUTE_AUTH_PRIORITY;
/// Identity headers oauth2-proxy answers with (`set_xauthrequest`), handed to the app.
const AUTH_HEADERS: [&str; 4] =
    ["X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username"];

const HEADER: &str = "# Managed by terrarium-proxy-sync from the user.proxy labels of LXD instances.\n# Changes here are overwritten on the next sync; see docs/labels.md.\n";

#[derive(Debug, Default, Serialize)]
struct Dynamic {
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<UdpSection>,
}

#[derive(Debug, Default, Serialize)]
struct HttpSection {
    routers: BTreeMap<String, HttpRouter>,
    services: BTreeMap<String, Service<UrlServer>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    middlewares: BTreeMap<String, Middleware>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRouter {
    entry_points: Vec<String>,
    rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    middlewares: Vec<String>,
    service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    cert_resolver: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Service<S> {
    load_balancer: LoadBalancer<S>,
}

#[derive(Debug, Serialize)]
struct LoadBalancer<S> {
    servers: Vec<S>,
}

#[derive(Debug, Serialize)]
struct UrlServer {
    url: String,
}

#[derive(Debug, Serialize)]
struct AddressServer {
    address: String,
}

/// One middleware: exactly one field is set (a struct, not an enum, so the YAML is a
/// plain mapping rather than a tagged value).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Middleware {
    #[serde(skip_serializing_if = "Option::is_none")]
    forward_auth: Option<ForwardAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Errors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Headers>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ForwardAuth {
    address: String,
    trust_forward_header: bool,
    auth_response_headers: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Errors {
    status: Vec<String>,
    service: String,
    query: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Headers {
    custom_request_headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
struct TcpSection {
    routers: BTreeMap<String, TcpRouter>,
    services: BTreeMap<String, Service<AddressServer>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TcpRouter {
    entry_points: Vec<String>,
    rule: String,
    service: String,
}

#[derive(Debug, Default, Serialize)]
struct UdpSection {
    routers: BTreeMap<String, UdpRouter>,
    services: BTreeMap<String, Service<AddressServer>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UdpRouter {
    entry_points: Vec<String>,
    service: String,
}

/// The ForwardAuth middleware name for an auth requirement.
pub fn auth_middleware_name(auth: &Auth) -> String {
    match auth {
        Auth::AnyUser => "terrarium-route-auth".to_string(),
        // Group names never contain `+`, so the name is unique per group set.
        Auth::Groups(groups) => format!("terrarium-route-auth_{}", groups.join("+")),
    }
}

fn auth_address(auth: &Auth) -> String {
    let base = format!("http://127.0.0.1:{}/oauth2/auth", ports::OAUTH2_PROXY_ROUTES);
    match auth {
        Auth::AnyUser => base,
        Auth::Groups(groups) => format!("{base}?allowed_groups={}", groups.join(",")),
    }
}

fn entrypoint(scheme: Scheme) -> String {
    match scheme {
        Scheme::Http => traefik::WEB_ENTRYPOINT,
        Scheme::Https => traefik::WEBSECURE_ENTRYPOINT,
    }
    .to_string()
}

fn tls(scheme: Scheme) -> Option<Tls> {
    (scheme == Scheme::Https).then(|| Tls { cert_resolver: traefik::CERT_RESOLVER.to_string() })
}

fn http_rule(route: &HttpRoute) -> String {
    match &route.path {
        Some(path) => format!("Host(`{}`) && PathPrefix(`{path}`)", route.host),
        None => format!("Host(`{}`)", route.host),
    }
}

/// Render the dynamic file for `plan`.
pub fn render(plan: &Plan) -> String {
    let mut config = Dynamic::default();
    if !plan.http.is_empty() {
        let mut http = HttpSection::default();
        for route in &plan.http {
            let mut middlewares = Vec::new();
            if let Some(auth) = &route.auth {
                let name = auth_middleware_name(auth);
                middlewares = vec![STRIP_MIDDLEWARE.to_string(), SIGNIN_MIDDLEWARE.to_string(), name.clone()];
                http.middlewares.entry(name).or_insert_with(|| Middleware {
                    forward_auth: Some(ForwardAuth {
                        address: auth_address(auth),
                        trust_forward_header: true,
                        auth_response_headers: AUTH_HEADERS.iter().map(|h| h.to_string()).collect(),
                    }),
                    ..Middleware::default()
                });
                // The sign-in flow runs on the protected host itself: /oauth2/* there goes
                // to oauth2-proxy (start, sign_in, callback, sign_out), and the session
                // cookie it sets is for this host alone (render/oauth2_proxy.rs).
                let signin = format!("terrarium-route-auth_{}_{}", route.scheme.as_str(), route.host.replace('.', "-"));
                http.routers.entry(signin).or_insert_with(|| HttpRouter {
                    entry_points: vec![entrypoint(route.scheme)],
                    rule: format!("Host(`{}`) && PathPrefix(`/oauth2/`)", route.host),
                    priority: Some(ROUTE_AUTH_PRIORITY),
                    middlewares: Vec::new(),
                    service: ROUTE_AUTH_SERVICE.to_string(),
                    tls: tls(route.scheme),
                });
            }
            http.routers.insert(
                route.name.clone(),
                HttpRouter {
                    entry_points: vec![entrypoint(route.scheme)],
                    rule: http_rule(route),
                    priority: None,
                    middlewares,
                    service: route.name.clone(),
                    tls: tls(route.scheme),
                },
            );
            http.services.insert(
                route.name.clone(),
                Service { load_balancer: LoadBalancer { servers: vec![UrlServer { url: route.target.clone() }] } },
            );
        }
        if plan.needs_route_auth() {
            add_route_auth_shared(&mut http);
        }
        config.http = Some(http);
    }
    for route in &plan.ports {
        let service =
            Service { load_balancer: LoadBalancer { servers: vec![AddressServer { address: route.target.clone() }] } };
        match route.protocol {
            Protocol::Tcp => {
                let tcp = config.tcp.get_or_insert_with(TcpSection::default);
                tcp.routers.insert(
                    route.name.clone(),
                    TcpRouter {
                        entry_points: vec![route.entrypoint()],
                        rule: "HostSNI(`*`)".to_string(),
                        service: route.name.clone(),
                    },
                );
                tcp.services.insert(route.name.clone(), service);
            }
            Protocol::Udp => {
                let udp = config.udp.get_or_insert_with(UdpSection::default);
                udp.routers.insert(
                    route.name.clone(),
                    UdpRouter { entry_points: vec![route.entrypoint()], service: route.name.clone() },
                );
                udp.services.insert(route.name.clone(), service);
            }
        }
    }
    let body = if config.http.is_none() && config.tcp.is_none() && config.udp.is_none() {
        "{}\n".to_string()
    } else {
        terrarium_common::yaml::to_string(&config).unwrap_or_else(|err| format!("# render error: {err}\n{{}}\n"))
    };
    format!("{HEADER}{body}")
}

/// The pieces every `@auth` route shares: the oauth2-proxy service, the header strip and
/// the sign-in error page.
fn add_route_auth_shared(http: &mut HttpSection) {
    http.services.insert(
        ROUTE_AUTH_SERVICE.to_string(),
        Service {
            load_balancer: LoadBalancer {
                servers: vec![UrlServer { url: format!("http://127.0.0.1:{}", ports::OAUTH2_PROXY_ROUTES) }],
            },
        },
    );
    // Traefik removes a request header configured with an empty value.
    let strip = AUTH_HEADERS.iter().map(|h| (h.to_string(), String::new())).collect();
    http.middlewares.insert(
        STRIP_MIDDLEWARE.to_string(),
        Middleware { headers: Some(Headers { custom_request_headers: strip }), ..Middleware::default() },
    );
    // Only 401 (no session) leads to sign-in; 403 (signed in, not in a listed group)
    // stays a plain refusal.
    http.middlewares.insert(
        SIGNIN_MIDDLEWARE.to_string(),
        Middleware {
            errors: Some(Errors {
                status: vec!["401".into()],
                service: ROUTE_AUTH_SERVICE.to_string(),
                query: "/oauth2/sign_in?rd={url}".into(),
            }),
            ..Middleware::default()
        },
    );
}
