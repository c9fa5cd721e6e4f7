//! The log file: appended to with one write per line and rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The log file, appended to and rotated by size.
pub(super) struct FileSink {
    pub(super) path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl FileSink {
    pub(super) fn open(path: &Path, max_bytes: u64, keep: usize) -> Result<FileSink, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Logs can contain peer addresses and client names: owner only.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("creating '{}'", dir.display()), e))?;
        }
        let file =
            open_append(path).map_err(|e| Error::io(format!("opening '{}'", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading '{}'", path.display()), e))?
            .len();
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    pub(super) fn write(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// clawgate.log -> .1 -> .2 ...; renaming onto the last kept name
    /// replaces (drops) the oldest file.
    fn rotate(&mut self) -> io::Result<()> {
        for i in (1..self.keep).rev() {
            ignore_not_found(fs::rename(self.numbered(i), self.numbered(i + 1)))?;
        }
        if self.keep > 0 {
            ignore_not_found(fs::rename(&self.path, self.numbered(1)))?;
        } else {
            ignore_not_found(fs::remove_file(&self.path))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    pub(super) fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn ignore_not_found(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}
