fn main() -> std::process::ExitCode {
    match terrarium_install::status::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-status",
            &format!("{err:#}"),
            terrarium_install::exit_for(&err),
        ),
    }
}
