//! The cheapest client the project's stack allows, as a floor for the benchmark lab: reqwest on
//! one current-thread runtime, `C` requests in flight from a `buffer_unordered` window, every body
//! read chunk by chunk and dropped. Nothing else: no title or preview, no output line, no
//! summary, no limits per host, no retries, no duplicate set, a URL list read up front. With
//! `THREADS` above 1, the list is cut into that many shards, each a task with its own window on a
//! multi-thread runtime of that many workers, sharing one client: the same client spread over the
//! cores.
//!
//! With an output directory, every body is also hashed with SHA-256 and written atomically (a
//! temporary file, then a rename) inline on the same thread, the least work that saving with a
//! manifest's hash can be done with: no thread hand-offs and no manifest.
//!
//! `bench/extra.sh` runs it beside oha and scrape in its CPU account of scenario a; whatever
//! this client's time is, no reqwest-based design can beat it on the same box.
//!
//!     cargo build --release --example reqwest_floor
//!     target/release/examples/reqwest_floor URLS CONCURRENCY THREADS [OUT_DIR]

use std::io::Write;
use std::path::PathBuf;

use futures::StreamExt;
use sha2::{Digest, Sha256};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: reqwest_floor URLS CONCURRENCY THREADS [OUT_DIR]";
    let list = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let concurrency: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let threads: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let out = args.next().map(PathBuf::from);
    let urls: Vec<String> = std::fs::read_to_string(&list)?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let total = urls.len();
    let ok = if threads <= 1 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::new();
        runtime.block_on(fetch_all(client, urls, 0, concurrency, out))
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let shard = total.div_ceil(threads);
            let tasks: Vec<_> = urls
                .chunks(shard)
                .enumerate()
                .map(|(n, part)| {
                    let (client, part, out) = (client.clone(), part.to_vec(), out.clone());
                    tokio::spawn(fetch_all(
                        client,
                        part,
                        n * shard,
                        concurrency / threads,
                        out,
                    ))
                })
                .collect();
            let mut ok = 0;
            for task in tasks {
                ok += task.await?;
            }
            anyhow::Ok(ok)
        })?
    };
    println!("{ok}/{total} ok");
    Ok(())
}

/// Fetches `urls` with `concurrency` in flight; pages are numbered from `first` in `out`.
async fn fetch_all(
    client: reqwest::Client,
    urls: Vec<String>,
    first: usize,
    concurrency: usize,
    out: Option<PathBuf>,
) -> usize {
    let (client, out) = (&client, out.as_deref());
    let results = futures::stream::iter(urls.into_iter().enumerate())
        .map(|(index, url)| async move {
            let mut response = client.get(url).send().await?;
            let mut saving = match out {
                Some(dir) => Some((
                    Sha256::new(),
                    scrape::save::temp_file_in(dir, ".#tmp")?,
                    dir,
                )),
                None => None,
            };
            while let Some(chunk) = response.chunk().await? {
                if let Some((hasher, file, _)) = &mut saving {
                    hasher.update(&chunk);
                    file.write_all(&chunk)?;
                }
            }
            if let Some((hasher, file, dir)) = saving {
                std::hint::black_box(hasher.finalize());
                file.persist(dir.join(format!("{}.html", first + index)))?;
            }
            anyhow::Ok(response.status().is_success())
        })
        .buffer_unordered(concurrency);
    results
        .filter(|result| std::future::ready(matches!(result, Ok(true))))
        .count()
        .await
}
