fn main() -> std::process::ExitCode {
    match terrarium_install::reconfigure::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-reconfigure",
            &format!("{err:#}"),
            terrarium_install::exit_for(&err),
        ),
    }
}
