fn main() -> std::process::ExitCode {
    netsql::cli::main()
}
