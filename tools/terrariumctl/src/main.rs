fn main() -> std::process::ExitCode {
    terrarium_common::output::install_panic_hook("terrariumctl");
    terrariumctl::run(std::env::args_os().skip(1).collect())
}
