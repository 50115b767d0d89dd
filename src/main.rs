//! Parses arguments, builds the one tokio runtime, runs the command and maps
//! the result to an exit code.

use clap::Parser;

fn main() {
    let cli = restic_manager::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.code()
        }
    };
    drop(runtime);
    std::process::exit(code);
}
