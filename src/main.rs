//! The `scrape` binary: parse the command line, build the runtime, run, and turn the outcome into
//! an exit code. A fatal error is printed once, as one line with its causes (`{:#}`).

use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use scrape::{Cli, ExitCode};

/// Socket events the reactor hands over per turn (see `main`).
const IO_EVENTS_PER_TICK: usize = 8;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match cli.into_config(std::io::stdin().is_terminal()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("scrape: {message}");
            return ExitCode::Usage.into();
        }
    };
    // Idle keep-alive connections to many hosts can outnumber the usual soft limit of 1024 open
    // files, and every request past it would fail: raise it to the hard limit, as lychee does.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // One thread drives every connection: the work per page is small (the streaming title/preview
    // pass stops early), so a single reactor keeps up with the network while leaving the other
    // cores to the kernel and, on a shared box, the server; it also saves the cross-thread wake-ups
    // a work-stealing pool pays per request. Blocking work (DNS lookups) goes to tokio's blocking
    // pool. Measured on 2 cores: 10k pages in 0.55 s against 0.7 s with the multi-thread runtime.
    //
    // The reactor hands over at most `IO_EVENTS_PER_TICK` socket events a turn, so the pipeline
    // task runs between small groups of connections. A connection that has read a response takes
    // a fresh read buffer (64 KB at these page sizes) while the response's last chunk, which
    // holds the old one, waits for the pipeline; with tokio's default of 1024 events a turn, all
    // 64 connections of a burst hold two buffers at once, and the longer the run the likelier
    // such bursts: peak memory grew by 1.5 MB from 1k to 1M URLs. With 8: +1 MB, and the same
    // instruction count (scenario a: 1263 epoll_wait calls instead of 499 for 10k pages).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(IO_EVENTS_PER_TICK)
        .build()
    {
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
