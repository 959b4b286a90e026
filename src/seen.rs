//! The set of URLs seen so far, for dropping duplicates from the input: exact, and with memory that
//! stays nearly flat however long the list is.
//!
//! A URL is kept as a 64-bit keyed hash (two different URLs collide with a probability of about
//! n²/2⁶⁵: 3·10⁻⁸ at a million URLs). New hashes go into a small hash set; when it fills, its
//! hashes are sorted and written to a temporary file as a *run*, and runs of similar size are
//! merged, so there are only about log₂(n / 4K) of them. A run keeps every 256th hash in memory as
//! an index, and a Bloom filter (6 bits a hash; about 6% false positives): in memory for a small
//! run, in a temporary file of its own for a large one, where a lookup reads the one 64-byte block
//! it needs. A lookup asks each run's filter; only on a "maybe" does it read one 2 KiB block of the
//! run, so a new URL costs a block read about once in twenty times, and a duplicate once.
//!
//! In memory this holds ~0.2 MB at any length (the hash set, the small runs' filters, the index:
//! 32 KB at a million URLs), where the hashes themselves take 8 MB at a million. When no temporary
//! file can be made, runs stay in memory (8 bytes a URL) and nothing else changes.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::io;
use std::iter::Peekable;
use std::os::unix::fs::FileExt;

use nohash_hasher::NoHashHasher;
use url::Url;

/// Hashes kept in the hash set before they are written out as a run.
const RECENT_HASHES: usize = 1 << 12;
/// One hash in this many is kept in a run's in-memory index; a lookup reads one such block.
const INDEX_STRIDE: usize = 256;
/// Bloom filter bits per hash.
const BLOOM_BITS_PER_HASH: usize = 6;
/// Bits set per hash, all within one 512-bit block (one cache line).
const BLOOM_PROBES: u32 = 4;
/// Hashes read at a time while merging runs.
const MERGE_BUFFER: usize = 2 * 1024;
/// The largest filter a run keeps in memory (a run of ~43K hashes); the small runs' filters take
/// at most twice this together, as run sizes double.
const FILTER_IN_MEMORY: usize = 32 * 1024;
/// Bytes of a filter block: 512 bits.
const BLOCK_BYTES: usize = 64;
/// A filter being built in a file is written this many bytes at a time (as much as a merge buffer).
const FILTER_WRITE_BYTES: usize = MERGE_BUFFER * 8;

/// The URLs seen so far.
pub struct SeenSet {
    hasher: RandomState,
    recent: HashSet<u64, BuildHasherDefault<NoHashHasher<u64>>>,
    /// Sorted runs, oldest (and largest) first.
    runs: Vec<Run>,
    spill_every: usize,
}

impl Default for SeenSet {
    fn default() -> Self {
        SeenSet::with_spill_every(RECENT_HASHES)
    }
}

impl SeenSet {
    /// A set that writes a run every `spill_every` new hashes.
    fn with_spill_every(spill_every: usize) -> Self {
        SeenSet {
            hasher: RandomState::new(),
            // Allocated in full up front: the set's memory is the same for ten URLs as for ten
            // million.
            recent: HashSet::with_capacity_and_hasher(spill_every, BuildHasherDefault::default()),
            runs: Vec::new(),
            spill_every,
        }
    }

    /// True when the URL had not been seen before.
    pub fn insert(&mut self, url: &Url) -> bool {
        self.insert_hash(self.hasher.hash_one(url.as_str()))
    }

    fn insert_hash(&mut self, hash: u64) -> bool {
        if self.recent.contains(&hash) || self.runs.iter().rev().any(|run| run.contains(hash)) {
            return false;
        }
        self.recent.insert(hash);
        if self.recent.len() >= self.spill_every {
            self.spill();
        }
        true
    }

    /// Writes the recent hashes out as a run, then merges runs of similar size.
    fn spill(&mut self) {
        let mut batch: Vec<u64> = self.recent.drain().collect();
        batch.sort_unstable();
        self.runs.push(Run::build(batch.len(), batch.into_iter()));
        while let [.., older, newer] = self.runs.as_slice()
            && newer.len * 2 >= older.len
        {
            // The two runs' filters go before the merged run's is made, so the filters' memory
            // never doubles at a merge.
            let newer = self.runs.pop().expect("two runs").into_keys();
            let older = self.runs.pop().expect("two runs").into_keys();
            let len = older.len + newer.len;
            let merged = Merge {
                a: older.peekable(),
                b: newer.peekable(),
            };
            self.runs.push(Run::build(len, merged));
        }
    }
}

/// A sorted run of hashes.
struct Run {
    keys: Keys,
    len: usize,
    /// Every `INDEX_STRIDE`-th hash.
    index: Vec<u64>,
    filter: Filter,
}

enum Keys {
    /// In an unnamed temporary file, as little-endian u64s.
    File(File),
    /// Where no temporary file could be written.
    Memory(Vec<u64>),
}

impl Keys {
    /// Appends the `count` hashes from position `start` to `out`.
    fn read(&self, start: usize, count: usize, out: &mut Vec<u64>) -> io::Result<()> {
        match self {
            Keys::Memory(keys) => out.extend_from_slice(
                keys.get(start..start + count)
                    .ok_or(io::ErrorKind::UnexpectedEof)?,
            ),
            Keys::File(file) => {
                let mut bytes = vec![0u8; count * 8];
                file.read_exact_at(&mut bytes, (start * 8) as u64)?;
                out.extend(
                    bytes
                        .chunks_exact(8)
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))),
                );
            }
        }
        Ok(())
    }
}

/// Writes a run's hashes to a temporary file a buffer at a time, or keeps them in memory when the
/// file cannot be made or written (a full disk): what was written is read back then.
struct RunWriter {
    file: Option<File>,
    /// Hashes in the file so far.
    written: usize,
    buffer: Vec<u64>,
}

impl RunWriter {
    fn new() -> Self {
        RunWriter {
            file: tempfile::tempfile().ok(),
            written: 0,
            buffer: Vec::with_capacity(MERGE_BUFFER),
        }
    }

    fn push(&mut self, hash: u64) {
        self.buffer.push(hash);
        if self.buffer.len() == MERGE_BUFFER {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(file) = &self.file else { return };
        let bytes: Vec<u8> = self.buffer.iter().flat_map(|h| h.to_le_bytes()).collect();
        if file.write_all_at(&bytes, (self.written * 8) as u64).is_ok() {
            self.written += self.buffer.len();
            self.buffer.clear();
            return;
        }
        // From now on in memory, starting with what the file holds. Should even that read fail,
        // those hashes are forgotten: a duplicate may then be fetched twice, no URL is lost.
        let mut memory = Vec::with_capacity(self.written + self.buffer.len());
        let _ = Keys::File(self.file.take().expect("a file")).read(0, self.written, &mut memory);
        memory.append(&mut self.buffer);
        self.buffer = memory;
    }

    /// The hashes kept, and how many they are (fewer than were pushed only after a disk failure).
    fn finish(mut self) -> (Keys, usize) {
        self.flush();
        match self.file {
            Some(file) if self.buffer.is_empty() => (Keys::File(file), self.written),
            _ => {
                let len = self.buffer.len();
                (Keys::Memory(self.buffer), len)
            }
        }
    }
}

impl Run {
    /// A run of the (about `len`) hashes `sorted` yields, in increasing order.
    fn build(len: usize, sorted: impl Iterator<Item = u64>) -> Run {
        let mut filter = FilterWriter::new(len);
        let mut index = Vec::with_capacity(len.div_ceil(INDEX_STRIDE));
        let mut writer = RunWriter::new();
        for (i, hash) in sorted.enumerate() {
            filter.insert(hash);
            if i % INDEX_STRIDE == 0 {
                index.push(hash);
            }
            writer.push(hash);
        }
        let (keys, len) = writer.finish();
        Run {
            keys,
            len,
            index,
            filter: filter.finish(),
        }
    }

    fn contains(&self, hash: u64) -> bool {
        if !self.filter.may_contain(hash) {
            return false;
        }
        let block = match self.index.partition_point(|&first| first <= hash) {
            0 => return false,
            n => n - 1,
        };
        let start = block * INDEX_STRIDE;
        let Some(left) = self.len.checked_sub(start) else {
            return false; // hashes forgotten after a disk failure (see `RunWriter`)
        };
        let count = INDEX_STRIDE.min(left);
        let mut keys = Vec::with_capacity(count);
        // Unreadable (a failing disk): the URL counts as new, so it may be fetched twice, but no
        // URL is ever dropped for a duplicate it is not.
        self.keys.read(start, count, &mut keys).is_ok() && keys.binary_search(&hash).is_ok()
    }

    /// The run's hashes in order (its filter is dropped).
    fn into_keys(self) -> KeyReader {
        KeyReader {
            keys: self.keys,
            len: self.len,
            next: 0,
            buffer: Vec::new(),
            at: 0,
        }
    }
}

/// A run's hashes in order, read a buffer at a time.
struct KeyReader {
    keys: Keys,
    len: usize,
    /// Position of the next hash to read into the buffer.
    next: usize,
    buffer: Vec<u64>,
    at: usize,
}

impl Iterator for KeyReader {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.at == self.buffer.len() {
            let count = MERGE_BUFFER.min(self.len - self.next);
            self.buffer.clear();
            self.at = 0;
            // An unreadable run ends early: its remaining hashes are forgotten (see `contains`).
            self.keys.read(self.next, count, &mut self.buffer).ok()?;
            self.next += count;
        }
        let hash = self.buffer.get(self.at).copied()?;
        self.at += 1;
        Some(hash)
    }
}

/// Two sorted runs as one sorted sequence (their hashes are distinct).
struct Merge {
    a: Peekable<KeyReader>,
    b: Peekable<KeyReader>,
}

impl Iterator for Merge {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if x < y => self.a.next(),
            (Some(_), None) => self.a.next(),
            _ => self.b.next(),
        }
    }
}

/// Where a hash falls in a blocked Bloom filter of `blocks` blocks: the block, and for each probe
/// the word and bit in it. The block comes from the hash's high bits, so a run's hashes, inserted
/// in increasing order, fill the blocks in order and a large filter can be written out as it is
/// built.
fn probes(hash: u64, blocks: usize) -> (usize, impl Iterator<Item = (usize, u64)>) {
    let block = ((u128::from(hash) * blocks as u128) >> 64) as usize;
    // A multiplied copy of the hash gives 9 bits per probe.
    let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let probes = (0..BLOOM_PROBES).map(move |i| {
        let bit = (mixed >> (i * 9)) & 511;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    });
    (block, probes)
}

fn blocks_for(hashes: usize) -> usize {
    (hashes * BLOOM_BITS_PER_HASH).div_ceil(512).max(1)
}

/// A blocked Bloom filter in memory: every hash sets `BLOOM_PROBES` bits in one 512-bit block.
struct Bloom {
    blocks: Vec<[u64; 8]>,
}

impl Bloom {
    fn new(hashes: usize) -> Self {
        Bloom {
            blocks: vec![[0; 8]; blocks_for(hashes)],
        }
    }

    fn insert(&mut self, hash: u64) {
        let (block, probes) = probes(hash, self.blocks.len());
        for (word, bit) in probes {
            self.blocks[block][word] |= bit;
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (block, probes) = probes(hash, self.blocks.len());
        contains_bits(&self.blocks[block], probes)
    }
}

fn contains_bits(words: &[u64; 8], mut probes: impl Iterator<Item = (usize, u64)>) -> bool {
    probes.all(|(word, bit)| words[word] & bit != 0)
}

/// A run's filter.
enum Filter {
    Memory(Bloom),
    /// In an unnamed temporary file, block after block; a lookup reads one block.
    File {
        file: File,
        blocks: usize,
    },
    /// Lost to a disk failure: any hash may be in the run, so every lookup reads the run's keys.
    /// Slower, never wrong.
    Lost,
}

impl Filter {
    fn may_contain(&self, hash: u64) -> bool {
        match self {
            Filter::Memory(bloom) => bloom.may_contain(hash),
            Filter::File { file, blocks } => {
                let (block, probes) = probes(hash, *blocks);
                let mut bytes = [0u8; BLOCK_BYTES];
                if file
                    .read_exact_at(&mut bytes, (block * BLOCK_BYTES) as u64)
                    .is_err()
                {
                    return true;
                }
                contains_bits(&decode_block(&bytes), probes)
            }
            Filter::Lost => true,
        }
    }
}

fn decode_block(bytes: &[u8; BLOCK_BYTES]) -> [u64; 8] {
    let mut words = [0u64; 8];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    words
}

/// Builds a run's filter: in memory for a small run; for a large one, straight into a temporary
/// file a few blocks at a time, since the hashes come in increasing order (see [`probes`]), so the
/// whole filter is never in memory.
enum FilterWriter {
    Memory(Bloom),
    File(FileFilterWriter),
}

struct FileFilterWriter {
    file: Option<File>,
    blocks: usize,
    /// The block being filled, and its number.
    current: [u64; 8],
    at: usize,
    /// Finished blocks not yet written, from block `flushed` on.
    pending: Vec<u8>,
    flushed: usize,
}

impl FilterWriter {
    fn new(hashes: usize) -> Self {
        let blocks = blocks_for(hashes);
        if blocks * BLOCK_BYTES <= FILTER_IN_MEMORY {
            return FilterWriter::Memory(Bloom::new(hashes));
        }
        match tempfile::tempfile() {
            Ok(file) => FilterWriter::File(FileFilterWriter {
                file: Some(file),
                blocks,
                current: [0; 8],
                at: 0,
                pending: Vec::with_capacity(FILTER_WRITE_BYTES),
                flushed: 0,
            }),
            Err(_) => FilterWriter::Memory(Bloom::new(hashes)),
        }
    }

    /// Adds a hash; in a file-backed filter, hashes must come in increasing order.
    fn insert(&mut self, hash: u64) {
        match self {
            FilterWriter::Memory(bloom) => bloom.insert(hash),
            FilterWriter::File(writer) => writer.insert(hash),
        }
    }

    fn finish(self) -> Filter {
        match self {
            FilterWriter::Memory(bloom) => Filter::Memory(bloom),
            FilterWriter::File(writer) => writer.finish(),
        }
    }
}

impl FileFilterWriter {
    fn insert(&mut self, hash: u64) {
        let (block, probes) = probes(hash, self.blocks);
        debug_assert!(block >= self.at, "hashes out of order");
        while self.at < block {
            self.next_block();
        }
        for (word, bit) in probes {
            self.current[word] |= bit;
        }
    }

    /// Moves on from the current block.
    fn next_block(&mut self) {
        self.pending
            .extend(self.current.iter().flat_map(|w| w.to_le_bytes()));
        self.current = [0; 8];
        self.at += 1;
        if self.pending.len() >= FILTER_WRITE_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(file) = &self.file
            && file
                .write_all_at(&self.pending, (self.flushed * BLOCK_BYTES) as u64)
                .is_err()
        {
            self.file = None;
        }
        self.flushed += self.pending.len() / BLOCK_BYTES;
        self.pending.clear();
    }

    fn finish(mut self) -> Filter {
        while self.at < self.blocks {
            self.next_block();
        }
        self.flush();
        match self.file {
            Some(file) => Filter::File {
                file,
                blocks: self.blocks,
            },
            None => Filter::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_exact(mut seen: SeenSet, count: usize) {
        let mut rng = fastrand::Rng::with_seed(7);
        let hashes: Vec<u64> = (0..count).map(|_| rng.u64(..)).collect();
        let taken: HashSet<u64> = hashes.iter().copied().collect();
        for &hash in &hashes {
            assert!(
                seen.insert_hash(hash),
                "a new hash was taken for a duplicate"
            );
        }
        for &hash in hashes.iter().step_by(7) {
            assert!(
                !seen.insert_hash(hash),
                "a seen hash was taken for a new one"
            );
        }
        let mut fresh = 0;
        for _ in 0..count {
            let hash = rng.u64(..);
            if !taken.contains(&hash) {
                assert!(seen.insert_hash(hash), "a new hash after spills");
                fresh += 1;
            }
        }
        assert!(fresh > 0);
    }

    #[test]
    fn the_set_stays_exact_across_spills_and_merges() {
        let seen = SeenSet::with_spill_every(64);
        check_exact(seen, 20_000);
    }

    fn all_keys(run: &Run) -> Vec<u64> {
        let mut keys = Vec::new();
        run.keys.read(0, run.len, &mut keys).expect("readable");
        keys
    }

    #[test]
    fn runs_merge_down_to_a_logarithmic_count() {
        let mut seen = SeenSet::with_spill_every(64);
        for hash in 0..64 * 1000u64 {
            seen.insert_hash(hash.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert!(seen.runs.len() <= 11, "{} runs", seen.runs.len());
        let total: usize = seen.runs.iter().map(|r| r.len).sum();
        assert_eq!(total + seen.recent.len(), 64 * 1000);
        for run in &seen.runs {
            assert!(
                matches!(run.keys, Keys::File(_)),
                "runs go to temporary files"
            );
            let keys = all_keys(run);
            assert_eq!(keys.len(), run.len);
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "a run is not sorted");
        }
    }

    #[test]
    fn runs_kept_in_memory_answer_the_same() {
        let mut seen = SeenSet::with_spill_every(50);
        let hashes: Vec<u64> = (1..=500u64)
            .map(|h| h.wrapping_mul(0x2545_F491_4F6C_DD1D))
            .collect();
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        let mut run = Run::build(sorted.len(), sorted.into_iter());
        run.keys = Keys::Memory(all_keys(&run));
        seen.runs.push(run);
        assert!(hashes.iter().all(|&h| !seen.insert_hash(h)));
        assert!(seen.insert_hash(12345));
    }

    #[test]
    fn a_run_that_lost_hashes_to_a_disk_failure_answers_without_panicking() {
        let sorted: Vec<u64> = (1..=600u64).map(|h| h * 1_000_003).collect();
        let mut run = Run::build(sorted.len(), sorted.iter().copied());
        // As after a failed write whose read-back failed too: only the first 100 are kept.
        run.keys = Keys::Memory(sorted[..100].to_vec());
        run.len = 100;
        assert!(run.contains(sorted[50]));
        assert!(!run.contains(sorted[500]), "a forgotten hash counts as new");
        let keys: Vec<u64> = run.into_keys().collect();
        assert_eq!(keys, sorted[..100]);
    }

    #[test]
    fn a_large_run_keeps_its_filter_in_a_file_and_answers_the_same() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut sorted: Vec<u64> = (0..100_000).map(|_| rng.u64(..)).collect();
        sorted.sort_unstable();
        let run = Run::build(sorted.len(), sorted.iter().copied());
        assert!(
            matches!(run.filter, Filter::File { .. }),
            "a large run's filter goes to disk"
        );
        let mut bloom = Bloom::new(sorted.len());
        for &hash in &sorted {
            bloom.insert(hash);
        }
        assert!(sorted.iter().all(|&h| run.filter.may_contain(h)));
        for _ in 0..20_000 {
            let hash = rng.u64(..);
            assert_eq!(run.filter.may_contain(hash), bloom.may_contain(hash));
        }
        let small = Run::build(100, sorted[..100].iter().copied());
        assert!(matches!(small.filter, Filter::Memory(_)));
    }

    #[test]
    fn a_lost_filter_sends_every_lookup_to_the_keys() {
        let sorted: Vec<u64> = (1..=600u64).map(|h| h * 1_000_003).collect();
        let mut run = Run::build(sorted.len(), sorted.iter().copied());
        run.filter = Filter::Lost;
        assert!(sorted.iter().all(|&h| run.contains(h)));
        assert!(!run.contains(5));
    }

    #[test]
    fn the_bloom_filter_has_few_false_positives() {
        let mut bloom = Bloom::new(100_000);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..100_000 {
            bloom.insert(rng.u64(..));
        }
        let false_positives = (0..100_000)
            .filter(|_| bloom.may_contain(rng.u64(..)))
            .count();
        assert!(false_positives < 9_000, "{false_positives} in 100000");
    }

    #[test]
    fn duplicates_are_found_after_normalisation() {
        let normalize = |s: &str| crate::input::normalize(s).expect("url");
        let mut seen = SeenSet::default();
        assert!(seen.insert(&normalize("http://a.example/x#one")));
        assert!(!seen.insert(&normalize("HTTP://A.example:80/x#two")));
        assert!(seen.insert(&normalize("https://a.example/x")));
    }
}
