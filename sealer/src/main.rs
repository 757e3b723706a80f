fn main() -> anyhow::Result<()> {
    // `devnet` prints its own progress; the daemon inside it logs warnings only unless RUST_LOG
    // says otherwise.
    let devnet = std::env::args().nth(1).is_some_and(|a| a == "devnet");
    let default = if devnet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file (systemd, `2> daemon.log`) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    sealer::cli::main()
}
