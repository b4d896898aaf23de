fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-restore");
    match terrarium_restore::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-restore",
            &terrarium_common::output::error_chain(err.chain()),
            terrarium_restore::classify(&err),
        ),
    }
}
