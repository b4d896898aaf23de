fn main() -> std::process::ExitCode {
    match terrarium_backup::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-backup",
            &format!("{err:#}"),
            terrarium_backup::exit_code(&err),
        ),
    }
}
