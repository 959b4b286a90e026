//! The reqwest floor one layer down: the same loop as `reqwest_floor.rs` (one current-thread
//! runtime, `C` requests in flight, every body read frame by frame and dropped), on hyper-util's
//! pooled client directly, the layer reqwest is built on, without reqwest's request and response
//! types, its `Url` conversions and its redirect and retry layers. Plain http only.
//!
//! `bench/extra.sh` runs it beside `reqwest_floor` in its CPU account of scenario a: the gap
//! between the two is what reqwest itself costs a page on this box.
//!
//!     cargo build --release --example hyper_floor
//!     target/release/examples/hyper_floor URLS CONCURRENCY

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hyper_floor URLS CONCURRENCY";
    let list = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let concurrency: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let uris = std::fs::read_to_string(&list)?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::parse::<hyper::Uri>)
        .collect::<Result<Vec<_>, _>>()?;
    let total = uris.len();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ok = runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let client = &client;
        futures::stream::iter(uris)
            .map(|uri| async move {
                let mut response = client.get(uri).await?;
                while let Some(frame) = response.body_mut().frame().await {
                    drop(frame?);
                }
                anyhow::Ok(response.status().is_success())
            })
            .buffer_unordered(concurrency)
            .filter(|result| std::future::ready(matches!(result, Ok(true))))
            .count()
            .await
    });
    println!("{ok}/{total} ok");
    Ok(())
}
