//! The `scrape` binary: parse the command line, build the runtime, run, and turn the outcome into
//! an exit code. A fatal error is printed once, as one line with its causes (`{:#}`).

use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use scrape::{Cli, ExitCode};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut config = match cli.into_config(std::io::stdin().is_terminal()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("scrape: {message}");
            return ExitCode::Usage.into();
        }
    };
    if let Some(warning) = scrape::open_files::raise_limit()
        .and_then(|limit| scrape::open_files::fit(&mut config, limit))
    {
        eprintln!("scrape: {warning}");
    }
    if let Some(warning) = scrape::roots::missing(&config.fetch) {
        eprintln!("scrape: {warning}");
    }
    let runtime = match scrape::shard::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("scrape: cannot start the async runtime: {error}");
            return ExitCode::Usage.into();
        }
    };
    let result = runtime.block_on(scrape::run(config));
    // Do not wait for stuck DNS lookups on the blocking pool after a Ctrl-C.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("scrape: {error:#}");
            ExitCode::Usage.into()
        }
    }
}
