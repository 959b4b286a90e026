//! scrape: a concurrent web scraper and site checker.
//!
//! A run is one stream pipeline: `input` reads the URL list lazily into jobs (dropping duplicates
//! with the `seen` set), `fetch` turns each job into a `Record` under global and per-host limits
//! (with `extract` taking the title and preview in a streaming pass over the body, tokenized by
//! `lexer`; under `--out-dir`, `mirror` plans each page and `save` writes it), on one `shard` per
//! core, which share the limits as `slots`; one consumer in `run` writes each record out
//! (`output`), ticks the `progress` bar and folds it into the `summary`, from which the
//! `exit_code` is decided at the end. `cli` parses the command line into a `config::Config`;
//! nothing else sees clap. `open_files` fits the concurrency under the limit on open files before
//! the run starts, and `roots` reads the trusted certificate authorities once for every client.

pub mod cli;
pub mod config;
pub mod dom;
pub mod error;
pub mod exit_code;
pub mod extract;
pub mod fetch;
pub mod input;
pub mod lexer;
pub mod mirror;
pub mod open_files;
pub mod output;
pub mod progress;
pub mod record;
pub mod report;
pub mod retry;
pub mod roots;
pub mod run;
pub mod sanitize;
pub mod save;
pub mod seen;
pub mod shard;
pub mod slo;
pub mod slots;
pub mod summary;

pub use cli::Cli;
pub use exit_code::ExitCode;
pub use run::run;
