//! The `--out-dir` mirror between runs: the lock, the manifest, and what the previous run left.
//!
//! `DIR/manifest.jsonl` has one line per URL. During a run, each finished URL's line is appended
//! to it right after its file was put in place, so a run that is killed (even with SIGKILL) leaves
//! a manifest that is valid JSON lines and, reading later lines over earlier ones for the same
//! URL, describes the files on disk. At the end of a complete run the lines of this run are copied
//! into a fresh file that replaces the manifest atomically: one line per URL of the latest run.
//!
//! The previous manifest is not loaded: an index of 64-bit URL hashes to line offsets is kept
//! (16 bytes a URL), and a URL's line is read back when that URL comes up.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use anyhow::Context;
use nohash_hasher::NoHashHasher;
use serde::Deserialize;
use url::Url;

use crate::config::MirrorOptions;
use crate::output::JsonRecord;
use crate::record::{Change, Outcome, Record, Saved};
use crate::save::{self, MANIFEST_NAME, WrittenPage};

/// Held for the whole run, so that two runs never write one mirror at once.
const LOCK_NAME: &str = ".scrape.lock";
/// Present while a run is under way; found at start, it means the last run died and may have left
/// temporary files behind.
const RUNNING_NAME: &str = ".scrape.running";
/// A manifest line longer than this is not read back (it cannot be one scrape wrote).
const MAX_LINE_BYTES: usize = 1 << 20;

/// The fields of a previous manifest line that a new run uses.
#[derive(Debug, Clone, Deserialize)]
struct PreviousLine {
    url: String,
    path: Option<String>,
    sha256: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched_at: Option<String>,
}

/// Where a URL's page goes, and what was there before.
#[derive(Debug, Clone)]
pub struct Target {
    pub destination: PathBuf,
    /// `destination` relative to the output directory.
    relative: String,
    /// The previous run's record of the file, when it is for this URL's path.
    previous: Option<Saved>,
    /// The previous copy is on disk and matches its recorded SHA-256.
    intact: bool,
    /// Send the previous copy's validators (it is intact, and `--refetch` was not given).
    pub revalidate: bool,
}

/// The validators a response carried.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Target {
    /// The validators to send: those of the intact previous copy, unless `--refetch`.
    pub fn validators(&self) -> Option<Validators> {
        let previous = self.previous.as_ref().filter(|_| self.revalidate)?;
        Some(Validators {
            etag: previous.etag.clone(),
            last_modified: previous.last_modified.clone(),
        })
    }

    /// A 304 confirmed the previous copy: it stays, with the validators the answer carried.
    pub fn confirmed(self, sent: Validators) -> Option<Saved> {
        let previous = self.previous?;
        Some(Saved {
            etag: sent.etag.or(previous.etag),
            last_modified: sent.last_modified.or(previous.last_modified),
            fetched_at: Some(SystemTime::now()),
            change: Change::Unchanged,
            ..previous
        })
    }

    /// A complete 2xx body was written: put it in place, unless the intact previous copy already
    /// has the same content.
    pub fn settle(self, written: WrittenPage, sent: Validators) -> io::Result<Saved> {
        let change = match &self.previous {
            Some(previous) if previous.sha256 == written.sha256 => Change::Unchanged,
            Some(_) => Change::Changed,
            None => Change::New,
        };
        let sha256 = written.sha256.clone();
        if change == Change::Unchanged && self.intact {
            drop(written); // the copy on disk is already this content
        } else {
            written.commit()?;
        }
        Ok(Saved {
            path: self.relative,
            sha256,
            etag: sent.etag,
            last_modified: sent.last_modified,
            fetched_at: Some(SystemTime::now()),
            change,
        })
    }

    /// The fetch failed: the previous copy stays, and is recorded when it is intact.
    pub fn kept(self) -> Option<Saved> {
        self.previous.filter(|_| self.intact)
    }
}

/// What to do about one URL.
pub enum Plan {
    /// `--skip-existing` and the file exists: no request; the file as recorded.
    Skip(Saved),
    Fetch(Target),
}

/// A mirror directory opened for one run.
pub struct Mirror {
    dir: PathBuf,
    options: MirrorOptions,
    previous: Option<PreviousManifest>,
    _lock: File,
}

/// The manifest as the previous run left it: an index from URL hash to line offset.
struct PreviousManifest {
    file: File,
    hasher: RandomState,
    index: Mutex<HashMap<u64, Slot, BuildHasherDefault<NoHashHasher<u64>>>>,
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    /// Asked for in this run; the URLs never asked for are gone from the list.
    seen: bool,
}

/// Appends this run's lines to the manifest; owned by the run's single consumer.
pub struct Journal {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// Where this run's lines start.
    start: u64,
}

/// URLs of the previous manifest that this run's list no longer has.
#[derive(Debug, Default)]
pub struct Gone {
    pub urls: Vec<String>,
    pub count: u64,
    pub pruned: u64,
}

impl Mirror {
    /// Creates the directory if needed, takes the lock, indexes the previous manifest and opens
    /// it for appending. Fails with a message naming the path.
    pub fn open(options: &MirrorOptions) -> anyhow::Result<(Mirror, Journal)> {
        let dir = &options.dir;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let lock_path = dir.join(LOCK_NAME);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "{} is in use by another scrape run (lock held on {})",
                dir.display(),
                lock_path.display()
            );
        }
        let running = dir.join(RUNNING_NAME);
        if running.exists() {
            remove_stale_temp_files(dir);
        }
        File::create(&running).with_context(|| format!("cannot write {}", running.display()))?;

        let path = dir.join(MANIFEST_NAME);
        let previous = match File::open(&path) {
            Ok(file) => Some(
                PreviousManifest::index(file)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let journal = Journal::open(path, dir.clone())?;
        let mirror = Mirror {
            // Page paths are made from an absolute directory: the temporary-file crate would
            // otherwise look up the working directory again for every page.
            dir: std::path::absolute(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
            options: options.clone(),
            previous,
            _lock: lock,
        };
        Ok((mirror, journal))
    }

    /// Decides how to fetch `url`: where its file goes, whether the previous copy is intact (its
    /// validators are then sent), or that it is skipped. Hashing the previous copy runs on the
    /// blocking pool.
    pub async fn plan(&self, url: &Url) -> Plan {
        let relative = save::relative_path(url);
        let destination = self.dir.join(&relative);
        let relative = relative.to_string_lossy().into_owned();
        let previous = self
            .previous
            .as_ref()
            .and_then(|p| p.take(url.as_str()))
            .filter(|line| line.path.as_deref() == Some(relative.as_str()))
            .and_then(|line| {
                Some(Saved {
                    path: relative.clone(),
                    sha256: line.sha256?,
                    etag: line.etag,
                    last_modified: line.last_modified,
                    fetched_at: line
                        .fetched_at
                        .and_then(|t| humantime::parse_rfc3339(&t).ok()),
                    change: Change::Kept,
                })
            });
        // Only a previous copy to check, or --skip-existing, needs the file read (off the reactor).
        let on_disk = if previous.is_some() || self.options.skip_existing {
            let path = destination.clone();
            tokio::task::spawn_blocking(move || save::file_sha256(&path))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        if self.options.skip_existing
            && let Some(sha256) = &on_disk
        {
            let mut saved = previous.unwrap_or(Saved {
                path: relative,
                sha256: String::new(),
                etag: None,
                last_modified: None,
                fetched_at: None,
                change: Change::Unchanged,
            });
            saved.sha256.clone_from(sha256);
            saved.change = Change::Unchanged;
            return Plan::Skip(saved);
        }
        let intact = matches!((&previous, &on_disk), (Some(p), Some(sha)) if p.sha256 == *sha);
        Plan::Fetch(Target {
            destination,
            relative,
            previous,
            intact,
            revalidate: intact && !self.options.refetch,
        })
    }

    /// The previous manifest's URLs that this run did not have; with `--prune`, their files are
    /// removed (only where the file is the one scrape would save that URL to).
    pub fn gone(&self) -> Gone {
        let mut gone = Gone::default();
        let Some(previous) = &self.previous else {
            return gone;
        };
        let slots: Vec<Slot> = {
            let index = previous
                .index
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            index.values().filter(|slot| !slot.seen).copied().collect()
        };
        for slot in slots {
            let Some(line) = previous.read_line(slot.offset) else {
                continue;
            };
            gone.count += 1;
            if self.options.prune
                && let (Ok(url), Some(path)) = (Url::parse(&line.url), &line.path)
                && save::relative_path(&url).to_string_lossy() == path.as_str()
                && fs::remove_file(self.dir.join(path)).is_ok()
            {
                gone.pruned += 1;
            }
            gone.urls.push(line.url);
        }
        gone.urls.sort();
        gone
    }

    /// The run ended (completely or not): nothing of it is pending on disk any more.
    pub fn close(&self) {
        let _ = fs::remove_file(self.dir.join(RUNNING_NAME));
    }
}

impl PreviousManifest {
    /// Reads the manifest once, keeping each URL's last line offset (later lines win, as after an
    /// interrupted run). Lines that do not parse are skipped.
    fn index(file: File) -> io::Result<Self> {
        #[derive(Deserialize)]
        struct UrlOnly {
            url: String,
        }
        let hasher = RandomState::new();
        let mut index = HashMap::default();
        let mut reader = BufReader::with_capacity(256 * 1024, &file);
        let mut line = Vec::new();
        let mut offset = 0u64;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            if let Ok(entry) = serde_json::from_slice::<UrlOnly>(&line) {
                let key = hasher.hash_one(entry.url.as_str());
                index.insert(
                    key,
                    Slot {
                        offset,
                        seen: false,
                    },
                );
            }
            offset += read as u64;
        }
        drop(reader);
        Ok(PreviousManifest {
            file,
            hasher,
            index: Mutex::new(index),
        })
    }

    /// The previous line for `url`, marking it as still in the list.
    fn take(&self, url: &str) -> Option<PreviousLine> {
        let key = self.hasher.hash_one(url);
        let offset = {
            let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = index.get_mut(&key)?;
            slot.seen = true;
            slot.offset
        };
        self.read_line(offset).filter(|line| line.url == url)
    }

    fn read_line(&self, offset: u64) -> Option<PreviousLine> {
        let mut line = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        loop {
            let read = self
                .file
                .read_at(&mut buf, offset + line.len() as u64)
                .ok()?;
            if read == 0 {
                break;
            }
            if let Some(end) = buf[..read].iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&buf[..end]);
                break;
            }
            line.extend_from_slice(&buf[..read]);
            if line.len() > MAX_LINE_BYTES {
                return None;
            }
        }
        serde_json::from_slice(&line).ok()
    }
}

/// The manifest fields beyond the stdout jsonl ones.
#[derive(serde::Serialize)]
struct ManifestLine<'a> {
    #[serde(flatten)]
    record: JsonRecord<'a>,
    sha256: Option<&'a str>,
    etag: Option<&'a str>,
    last_modified: Option<&'a str>,
    fetched_at: Option<String>,
    changed: bool,
}

impl Journal {
    fn open(path: PathBuf, dir: PathBuf) -> anyhow::Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut start = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("cannot write {}", path.display()))?;
        // A run killed mid-line leaves a partial last line: end it, so this run's lines stay whole.
        if start > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, start - 1)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                start += 1;
            }
        }
        Ok(Journal {
            file,
            path,
            dir,
            start,
        })
    }

    /// Records one URL of this run: one line, written with one call so it is never interleaved.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        if matches!(record.outcome, Outcome::Invalid(_)) {
            return Ok(());
        }
        let saved = record.saved.as_ref();
        let line = ManifestLine {
            record: JsonRecord::from(record).with_path(saved.map(|s| s.path.as_str())),
            sha256: saved.map(|s| s.sha256.as_str()),
            etag: saved.and_then(|s| s.etag.as_deref()),
            last_modified: saved.and_then(|s| s.last_modified.as_deref()),
            fetched_at: saved
                .and_then(|s| s.fetched_at)
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            changed: saved.is_some_and(|s| matches!(s.change, Change::New | Change::Changed)),
        };
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }

    /// A complete run: this run's lines replace the manifest in one step.
    pub fn compact(self) -> io::Result<()> {
        let describe =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        let mut temp = save::temp_file_in(&self.dir, ".#manifest").map_err(describe)?;
        let mut source = &self.file;
        source.seek(SeekFrom::Start(self.start)).map_err(describe)?;
        io::copy(&mut source, temp.as_file_mut()).map_err(describe)?;
        temp.as_file().sync_all().map_err(describe)?;
        temp.persist(&self.path).map_err(|e| describe(e.error))?;
        Ok(())
    }
}

/// Removes temporary files (`.#tmp…`) a killed run left under `dir`.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if kind.is_dir() {
            remove_stale_temp_files(&entry.path());
        } else if name.to_string_lossy().starts_with(".#") {
            let _ = fs::remove_file(entry.path());
        }
    }
}
