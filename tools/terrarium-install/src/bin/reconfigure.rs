fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-reconfigure");
    match terrarium_install::reconfigure::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-reconfigure",
            &terrarium_common::output::error_chain(err.chain()),
            terrarium_install::exit_for(&err),
        ),
    }
}
