/// Reports a failed allocation of a processor child to its worker (see `processor::alloc`).
#[global_allocator]
static ALLOC: processor::alloc::Reporting = processor::alloc::Reporting;

fn main() -> anyhow::Result<()> {
    // A processor child (started by this worker for one proof operation): no runtime, no CLI.
    if std::env::args().nth(1).is_some_and(|a| a == "processor") {
        processor::child::serve();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file (systemd, `2> daemon.log`) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    worker::cli::main()
}
