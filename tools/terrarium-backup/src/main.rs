fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-backup");
    match terrarium_backup::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-backup",
            &terrarium_common::output::error_chain(err.chain()),
            terrarium_backup::exit_code(&err),
        ),
    }
}
