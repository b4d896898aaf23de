fn main() -> std::process::ExitCode {
    match terrarium_proxy_sync::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-proxy-sync",
            &format!("{err:#}"),
            terrarium_common::Exit::classify(err.chain()),
        ),
    }
}
