//! The `wasm-as-os` binary: the server, migrations, config checks and the admin CLI.

mod admin;
mod cli;
mod commands;
mod http;
mod logging;
mod report;
mod serve;

use std::process::ExitCode;

use clap::Parser;

/// Stack of each runtime thread. Modules that import nothing run directly on these threads
/// (no fiber), and wasm may use up to 1 MiB of stack (the sandbox's `max_wasm_stack`) on top of
/// the request's own frames; tokio's default of 2 MiB leaves too little margin for that.
const RUNTIME_THREAD_STACK: usize = 8 << 20;

/// mimalloc instead of glibc's malloc: a loaded server spent about 17% of its CPU in malloc/free
/// (`docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every file and directory the server or the CLI creates (database and its journals, secrets,
    // audit files, the access-generation counter, stored modules, compiled code, reports) is
    // readable by its owner only, whichever code creates it.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(RUNTIME_THREAD_STACK)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.line());
            ExitCode::FAILURE
        }
    }
}
