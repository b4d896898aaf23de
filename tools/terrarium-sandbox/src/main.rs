fn main() -> std::process::ExitCode {
    match terrarium_sandbox::run(std::env::args_os()) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("sandbox: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
