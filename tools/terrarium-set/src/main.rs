fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-set");
    match terrarium_set::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-set",
            &terrarium_common::output::error_chain(err.chain()),
            terrarium_setup::exit_for(&err),
        ),
    }
}
