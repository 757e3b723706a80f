/// Reports a failed allocation of a processor child to its parent (see `processor::alloc`).
#[global_allocator]
static ALLOC: processor::alloc::Reporting = processor::alloc::Reporting;

fn main() -> anyhow::Result<()> {
    // A processor child of the sealer's own worker: no runtime, no CLI.
    if std::env::args().nth(1).is_some_and(|a| a == "processor") {
        processor::child::serve();
    }
    // `devnet` prints its own progress; the daemon inside it logs warnings only unless RUST_LOG
    // says otherwise.
    let devnet = std::env::args().nth(1).is_some_and(|a| a == "devnet");
    let default = if devnet { "warn" } else { "info" };
    if std::env::var_os("RUST_LOG").is_none() {
        // The processor children read it too: under `devnet` they stay as quiet as the daemon.
        // Set before any thread starts.
        std::env::set_var("RUST_LOG", default);
    }
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
