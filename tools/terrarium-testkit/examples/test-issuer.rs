//! The test OIDC issuer ([`terrarium_testkit::oidc_issuer`]) as a process, for shell
//! suites (an example, so the test kit stays a library: `cargo build -p terrarium-testkit
//! --example test-issuer`): `test-issuer PUBLIC_BASE CLIENT_ID CLIENT_SECRET_FILE` serves on a
//! free loopback port, prints it on stdout and runs until killed. The discovery
//! document names PUBLIC_BASE (what the client behind a TLS terminator or a VM forward
//! uses). The secret is read from a file so it never appears in argv.

use std::io::Write;

use terrarium_testkit::oidc_issuer::{IssuerMode, TestIssuer};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, client_id, secret_file] = args.as_slice() else {
        eprintln!("usage: test-issuer PUBLIC_BASE CLIENT_ID CLIENT_SECRET_FILE");
        return std::process::ExitCode::from(2);
    };
    let secret = match std::fs::read_to_string(secret_file) {
        Ok(secret) => secret.trim_end_matches('\n').to_string(),
        Err(err) => {
            eprintln!("test-issuer: cannot read {secret_file}: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    let issuer = TestIssuer::start_behind(IssuerMode::Good, client_id, &secret, Some(base));
    println!("{}", issuer.port());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
