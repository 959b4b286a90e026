//! The pipeline's shards: each takes entries from the shared input and fetches them in a
//! window of futures, with a client of its own. Shard 0 runs on the consumer's thread and is polled
//! by it; each further shard runs on a thread of its own, with its own current-thread runtime, and
//! hands its events over through a channel. The shards share the limits (`fetch::Limits`): the
//! global and per-host concurrency hold across all of them.
//!
//! A run has one shard per core, up to `MAX_SHARDS`: on loopback one thread is CPU-bound on
//! HTTP, the title/preview pass and (with `--out-dir`) hashing and writing each page. Scenario a
//! of the lab, 10k pages on 2 cores, medians of 5: 0.81 s with one shard and 0.56 s with two when
//! saving; 0.30 s and 0.24 s in terminal mode, for 1.5 MB more memory (15.8 -> 17.4 MB). The
//! second client costs start-up little since the CA roots are read once (`roots`). The shards
//! share the global and per-host limits (`slots`) rather than take a fixed share of them each, so
//! a shard whose URLs hang never strands the other's share; a freed slot goes to the shard holding
//! the fewest, which keeps each shard's connections in use (before that, a second shard in
//! terminal mode bought no time for 10 MB).
//!
//! Stopping (Ctrl-C, a closed stdout) drops shard 0's window and tells the other shards to stop
//! taking work; the consumer still takes every event they have sent or are sending, since a page
//! whose file is in place must get its manifest line.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{Mutex, mpsc, watch};

use crate::config::Config;
use crate::fetch::{Fetcher, Limits};
use crate::input::Entry;
use crate::mirror::Mirror;
use crate::progress::Progress;
use crate::record::{Outcome, Record};

/// Shards a run has at most: measured on 2 cores, where two take every core there is.
const MAX_SHARDS: usize = 2;

/// Entries in the windows at the least, whatever the concurrency: a request keeps its connection
/// only for URLs of its host it can see waiting (`fetch::HostPermit`), so at `-c 2` a window of
/// 4 × the concurrency hid a host's later URLs from its first requests, and they opened a third
/// connection (204 connections for 100 hosts of 10 URLs instead of 200).
const MIN_WINDOW: usize = 64;

/// Entries a shard takes from the shared input at a time, at the least (see `share_len`).
const SHARE: usize = 16;

/// The input, read by every shard: `SHARE` entries at a time (or a few more, to the end of a
/// host's run), as a shard's window has room.
///
/// The reader's batches (`input::BATCH`) are not handed out whole: a shard holding a run of 128
/// entries could go on alone while the other had nothing left. 200 pages of 5 MB with `-o` took
/// 1.05-1.25 s that way, the second shard idle from 0.75 s on. Nor one entry at a time: the two
/// shards then contend for the lock at every page (scenario a with `-o`: 0.60-0.74 s against
/// 0.53-0.55).
///
/// The batch being shared out is behind a plain mutex, held for the microsecond a share takes,
/// so a shard filling its window never finds it taken and stops short; only waiting for the
/// reader's next batch is asynchronous. (With an async mutex for both, the two shards filling
/// their windows at the start each found the other holding it, sent their first requests with a
/// window of 16 and, seeing no more URLs of the host, closed the connections after them: 2000
/// URLs of one host at `-c 64` opened 87-431 connections, 64 with one shard.)
pub struct SharedInput {
    current: std::sync::Mutex<std::vec::IntoIter<Entry>>,
    receiver: Mutex<mpsc::Receiver<Vec<Entry>>>,
}

impl SharedInput {
    pub fn new(receiver: mpsc::Receiver<Vec<Entry>>) -> Self {
        SharedInput {
            current: std::sync::Mutex::new(Vec::new().into_iter()),
            receiver: Mutex::new(receiver),
        }
    }

    /// The next entries of the list (`share_len` of them), or `None` at its end.
    async fn take(&self) -> Option<Vec<Entry>> {
        loop {
            if let Some(share) = self.share() {
                return Some(share);
            }
            let mut receiver = self.receiver.lock().await;
            // Another shard may have put a batch in place while this one waited for the lock.
            if let Some(share) = self.share() {
                return Some(share);
            }
            let batch = receiver.recv().await?;
            *self.lock_current() = batch.into_iter();
        }
    }

    /// A share of the batch in hand, unless it is used up.
    fn share(&self) -> Option<Vec<Entry>> {
        let mut current = self.lock_current();
        let share = share_len(current.as_slice());
        (current.len() > 0).then(|| current.by_ref().take(share).collect())
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, std::vec::IntoIter<Entry>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many of `entries` the next share takes: `SHARE`, or up to the end of the last one's host's
/// run of URLs when that ends within `SHARE` more. Each shard has a connection pool of its own, so
/// a host whose URLs were split between the shards opened connections in both: 100 hosts of 10
/// URLs in a row took 860-875 connections at `-c 64` instead of 800, 10 hosts at `-c 2` 26
/// instead of 20.
fn share_len(entries: &[Entry]) -> usize {
    fn host(entry: &Entry) -> Option<(Option<&str>, Option<u16>)> {
        match entry {
            Entry::Fetch(job) => Some(crate::fetch::host_and_port(&job.url)),
            _ => None,
        }
    }
    let Some(last) = entries.get(SHARE - 1).and_then(host) else {
        return SHARE;
    };
    entries[SHARE..]
        .iter()
        .take(SHARE)
        .position(|entry| host(entry) != Some(last))
        .map_or(SHARE, |more| SHARE + more)
}

/// What the pipeline yields to the consumer, one per input entry.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every event is a record; boxing would cost an allocation per URL"
)]
pub enum Event {
    Done(Record),
    Duplicate,
    ReadFailed(String),
}

/// Socket events the reactor hands over per turn (see `runtime`).
const IO_EVENTS_PER_TICK: usize = 8;

/// The runtime of a thread of the pipeline: the consumer's, which also runs shard 0, and each
/// further shard's.
///
/// One thread drives a shard's connections: the work per page is small (the streaming
/// title/preview pass stops early), so a single reactor keeps up with the network while leaving
/// the other cores to the kernel and, on a shared box, the server; it also saves the cross-thread
/// wake-ups a work-stealing pool pays per request. Blocking work (DNS lookups) goes to tokio's
/// blocking pool. Measured on 2 cores: 10k pages in 0.55 s against 0.7 s with the multi-thread
/// runtime.
///
/// The reactor hands over at most `IO_EVENTS_PER_TICK` socket events a turn, so the pipeline task
/// runs between small groups of connections. A connection that has read a response takes a fresh
/// read buffer (64 KB at these page sizes) while the response's last chunk, which holds the old
/// one, waits for the pipeline; with tokio's default of 1024 events a turn, all 64 connections of
/// a burst hold two buffers at once, and the longer the run the likelier such bursts: peak memory
/// grew by 1.5 MB from 1k to 1M URLs. With 8: +1 MB, and the same instruction count (scenario a:
/// 1263 epoll_wait calls instead of 499 for 10k pages).
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(IO_EVENTS_PER_TICK)
        .build()
}

/// How many shards a run gets (see the module's doc).
pub fn count(config: &Config) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SHARDS)
        .min(config.fetch.concurrency)
}

/// Starts the run's shards: shard 0 on `fetcher`, polled by the consumer through the stream this
/// returns, and the others on threads of their own (`count`), each with a fetcher like it under the
/// same `limits`.
pub fn start<'a>(
    config: &Config,
    fetcher: &'a Fetcher,
    mirror: Option<&Arc<Mirror>>,
    limits: &Arc<Limits>,
    input: &'a Arc<SharedInput>,
    progress: &'a Arc<Progress>,
) -> anyhow::Result<Merged<'a>> {
    let shards = limits.shards();
    let window = (config.fetch.concurrency * 4)
        .max(MIN_WINDOW)
        .div_ceil(shards);
    let (send, sent) = mpsc::channel(window);
    let (running, stopped) = watch::channel(());
    let mut threads = Vec::with_capacity(shards - 1);
    for index in 1..shards {
        let fetcher = Fetcher::new(&config.fetch, mirror.cloned(), Arc::clone(limits), index)?;
        threads.push(spawn(
            fetcher,
            Arc::clone(input),
            Arc::clone(progress),
            window,
            send.clone(),
            stopped.clone(),
        )?);
    }
    let local = events(fetcher, input, progress, window);
    Ok(Merged {
        threads,
        ..Merged::new(local, sent, running)
    })
}

/// One shard's events: its entries fetched, at most `window` at once. Futures waiting for a host's
/// permit sit in the window too, so it is wider than the shard's share of the concurrency and a
/// host at its limit does not stop other hosts' URLs from starting.
fn events<'a>(
    fetcher: &'a Fetcher,
    input: &'a SharedInput,
    progress: &'a Progress,
    window: usize,
) -> impl Stream<Item = Event> + 'a {
    futures::stream::unfold(input, move |input| async move {
        let Some(entries) = input.take().await else {
            fetcher.leave();
            return None;
        };
        Some((futures::stream::iter(entries), input))
    })
    .flatten()
    .map(move |entry| {
        progress.add_entry();
        // The fetch is made here, as its entry enters the window, so its host counts it as
        // waiting from now on (see `fetch::HostPermit`), not from its first poll.
        let event = match entry {
            Entry::Fetch(job) => return fetcher.fetch(job).map(Event::Done).left_future(),
            Entry::Invalid {
                text,
                source,
                error,
            } => Event::Done(Record {
                url: text,
                source,
                elapsed: Duration::ZERO,
                attempts: 0,
                outcome: Outcome::Invalid(error),
                saved: None,
                recheck: None,
            }),
            Entry::Duplicate => Event::Duplicate,
            Entry::ReadFailed(message) => Event::ReadFailed(message),
        };
        futures::future::ready(event).right_future()
    })
    .buffer_unordered(window)
}

/// Starts a shard on a thread of its own; its events arrive on `sent`, and it stops taking work
/// once `stop` is dropped. The thread ends when its work is done or stopped and every event it
/// made has been sent.
fn spawn(
    fetcher: Fetcher,
    input: Arc<SharedInput>,
    progress: Arc<Progress>,
    window: usize,
    sent: mpsc::Sender<Event>,
    mut stop: watch::Receiver<()>,
) -> anyhow::Result<JoinHandle<()>> {
    let runtime = runtime().context("cannot start the async runtime")?;
    let thread = std::thread::Builder::new()
        .name("scrape-shard".into())
        .spawn(move || {
            runtime.block_on(async {
                let mut events = std::pin::pin!(events(&fetcher, &input, &progress, window));
                loop {
                    let event = tokio::select! {
                        biased;
                        _ = stop.changed() => break,
                        event = events.next() => event,
                    };
                    // Sent whatever happens meanwhile: the page may be in place already.
                    let Some(event) = event else { break };
                    if sent.send(event).await.is_err() {
                        break;
                    }
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        })
        .context("cannot start a fetching thread")?;
    Ok(thread)
}

/// The events of every shard, as one stream for the consumer: shard 0's, polled here, and those
/// the other shards send, taken in turn so neither side waits behind the other.
pub struct Merged<'a> {
    local: Option<Pin<Box<dyn Stream<Item = Event> + 'a>>>,
    sent: mpsc::Receiver<Event>,
    /// Dropped to tell the other shards to stop.
    running: Option<watch::Sender<()>>,
    local_first: bool,
    threads: Vec<JoinHandle<()>>,
}

impl<'a> Merged<'a> {
    fn new(
        local: impl Stream<Item = Event> + 'a,
        sent: mpsc::Receiver<Event>,
        running: watch::Sender<()>,
    ) -> Self {
        Merged {
            local: Some(Box::pin(local)),
            sent,
            running: Some(running),
            local_first: true,
            threads: Vec::new(),
        }
    }

    /// Waits for the other shards' threads, once the stream has ended.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// Cancels shard 0's fetches in flight and tells the other shards to stop; the stream then
    /// yields what they still send, and ends once they have ended.
    pub fn stop(&mut self) {
        self.local = None;
        self.running = None;
    }

    fn poll_local(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let Some(local) = &mut self.local else {
            return Poll::Ready(None);
        };
        let next = local.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.local = None;
        }
        next
    }
}

impl Stream for Merged<'_> {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        this.local_first = !this.local_first;
        let mut ended = 0;
        for local in [this.local_first, !this.local_first] {
            let next = if local {
                this.poll_local(cx)
            } else {
                this.sent.poll_recv(cx)
            };
            match next {
                Poll::Ready(Some(event)) => return Poll::Ready(Some(event)),
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == 2 {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(url: &str) -> Event {
        Event::ReadFailed(url.into())
    }

    fn name(event: &Event) -> &str {
        match event {
            Event::ReadFailed(text) => text,
            _ => unreachable!("only ReadFailed events are made here"),
        }
    }

    #[tokio::test]
    async fn a_shard_takes_a_few_entries_of_a_batch_and_leaves_the_rest_to_the_others() {
        let (send, receiver) = mpsc::channel(2);
        send.send((0..130).map(|_| Entry::Duplicate).collect())
            .await
            .expect("open");
        drop(send);
        let input = SharedInput::new(receiver);
        let mut takes = Vec::new();
        while let Some(entries) = input.take().await {
            takes.push(entries.len());
        }
        assert_eq!(takes, [16, 16, 16, 16, 16, 16, 16, 16, 2]);
    }

    fn fetches(hosts: &[(&str, usize)]) -> Vec<Entry> {
        hosts
            .iter()
            .flat_map(|&(host, urls)| (0..urls).map(move |i| format!("http://{host}/{i}")))
            .map(|url| {
                Entry::Fetch(crate::input::Job {
                    url: url.parse().expect("url"),
                    source: crate::record::Source {
                        file: "list".into(),
                        line: 1,
                    },
                    expect: None,
                })
            })
            .collect()
    }

    #[test]
    fn a_share_ends_where_its_last_host_does_when_that_is_near() {
        assert_eq!(share_len(&fetches(&[("a", 10), ("b", 10), ("c", 10)])), 20);
        assert_eq!(share_len(&fetches(&[("a", 16), ("b", 10)])), 16);
        // A long run of one host is shared out as usual: it would keep one shard busy alone.
        assert_eq!(share_len(&fetches(&[("a", 100)])), 16);
        assert_eq!(share_len(&fetches(&[("a", 10), ("b", 40)])), 16);
        assert_eq!(share_len(&fetches(&[("a", 3)])), 16);
        // The same host on another port is another host.
        assert_eq!(share_len(&fetches(&[("a", 15), ("a:81", 1), ("b", 1)])), 16);
    }

    #[tokio::test]
    async fn merged_events_take_both_sides_and_end_when_both_have() {
        let (send, sent) = mpsc::channel(4);
        let (running, _stopped) = watch::channel(());
        send.send(done("sent")).await.expect("open");
        drop(send);
        let local = futures::stream::iter([done("local")]);
        let mut merged = Merged::new(local, sent, running);
        let mut names = Vec::new();
        while let Some(event) = merged.next().await {
            names.push(name(&event).to_owned());
        }
        names.sort();
        assert_eq!(names, ["local", "sent"]);
    }

    #[tokio::test]
    async fn a_stopped_merge_drops_its_own_work_but_takes_what_is_still_sent() {
        let (send, sent) = mpsc::channel(4);
        let (running, mut stopped) = watch::channel(());
        let local = futures::stream::pending::<Event>();
        let mut merged = Merged::new(local, sent, running);
        merged.stop();
        assert!(
            stopped.changed().await.is_err(),
            "the other shards were not told to stop"
        );
        send.send(done("late")).await.expect("still taken");
        drop(send);
        assert_eq!(merged.next().await.as_ref().map(name), Some("late"));
        assert!(merged.next().await.is_none());
    }
}
