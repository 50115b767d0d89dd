//! Parses arguments, builds the one tokio runtime, runs the command and maps
//! the result to an exit code: the only place that does.

use clap::Parser;

fn main() {
    let cli = restic_manager::cli::Cli::parse();
    restic_manager::logging::init(cli.global.verbose, cli.global.quiet);
    // Orphans of our children (a hook's `setsid daemon &`) are re-parented
    // to us, so they can be found and stopped; see process::tree.
    if let Err(e) = restic_manager::process::become_subreaper() {
        eprintln!("warning: cannot become the subreaper of child processes: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Children die with the thread that spawned them (PR_SET_PDEATHSIG):
        // blocking-pool threads must not retire while the process lives.
        .thread_keep_alive(std::time::Duration::from_secs(100 * 365 * 24 * 3600))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(restic_manager::commands::dispatch(cli)) {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit().code()
        }
    };
    drop(runtime);
    std::process::exit(code);
}
