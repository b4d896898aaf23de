fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-proxy-sync");
    match terrarium_proxy_sync::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-proxy-sync",
            &terrarium_common::output::error_chain(err.chain()),
            terrarium_common::Exit::classify(err.chain()),
        ),
    }
}
