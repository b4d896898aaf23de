fn main() -> std::process::ExitCode {
    match terrarium_restore::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-restore",
            &format!("{err:#}"),
            terrarium_restore::classify(&err),
        ),
    }
}
