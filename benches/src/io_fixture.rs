//! The 16 MiB fixture file of the fs rows: written once per harness,
//! read through once so it is in the page cache, removed on drop.

use crate::io_workloads::{fixture_byte, BLOCK, FILE_BLOCKS};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary file of `FILE_BLOCKS` × `BLOCK` bytes of
/// [`fixture_byte`]s.
pub struct Fixture {
    path: PathBuf,
}

impl Fixture {
    /// Writes the file and reads it back once (into the page cache).
    pub fn new() -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "spargio-bench-io-{}-{}.bin",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = std::fs::File::create(&path).expect("create fixture file");
        let mut block = vec![0u8; BLOCK];
        for b in 0..FILE_BLOCKS {
            let base = b * BLOCK as u64;
            for (i, byte) in block.iter_mut().enumerate() {
                *byte = fixture_byte(base + i as u64);
            }
            file.write_all(&block).expect("write fixture file");
        }
        drop(file);
        let mut all = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut all))
            .expect("read fixture file back");
        assert_eq!(all.len() as u64, FILE_BLOCKS * BLOCK as u64);
        Fixture { path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
