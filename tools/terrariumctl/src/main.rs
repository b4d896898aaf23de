fn main() -> std::process::ExitCode {
    terrariumctl::run(std::env::args_os().skip(1).collect())
}
