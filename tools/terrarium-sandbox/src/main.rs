fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrarium-sandbox");
    match terrarium_sandbox::run(std::env::args_os()) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("sandbox: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
