fn main() -> std::process::ExitCode {
    match terrarium_set::run(std::env::args_os()) {
        Ok(exit) => exit.into(),
        Err(err) => terrarium_common::output::report_error(
            "terrarium-set",
            &format!("{err:#}"),
            terrarium_install::exit_for(&err),
        ),
    }
}
