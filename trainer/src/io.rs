//! File helpers: readers that name their file, and atomic writes (a crash never leaves a
//! half-written output where a complete one is expected).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn open(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufReader::new(file))
}

/// Opens a text file for line-by-line reading, decompressing it when the name ends in `.gz`
/// (gzip, several members allowed). A corrupt stream shows up as a read error on the line
/// where it happens.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let reader = open(path)?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        Ok(Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// A file written under a temporary name and renamed into place by [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    writer: BufWriter<File>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<Self> {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.tmp{}", std::process::id()));
        // Readable too, so that a payload written out of order can be hashed before the rename.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self { tmp, dest: dest.to_path_buf(), writer: BufWriter::new(file) })
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    pub fn commit(mut self) -> Result<()> {
        self.writer.flush().with_context(|| format!("writing {}", self.tmp.display()))?;
        self.writer.get_ref().sync_all().ok();
        std::fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("cannot move {} to {}", self.tmp.display(), self.dest.display()))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Not committed (error or panic): remove the partial file.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// `x` to 8 significant digits, so logs stay readable (far below any difference that matters).
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 8 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits.clamp(0, 15));
    (x * f).round() / f
}
