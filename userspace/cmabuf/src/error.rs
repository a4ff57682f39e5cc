// SPDX-License-Identifier: GPL-2.0
//! Errors, with the errno the kernel returned.

use nix::errno::Errno;
use std::path::PathBuf;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device node could not be opened.
    #[error("cannot open {path}: {errno}", path = .path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        errno: Errno,
    },
    /// A system call on the device failed.
    #[error("{op}: {errno}")]
    Sys {
        /// Which one (`ALLOC`, `mmap`, ...).
        op: &'static str,
        /// Why.
        errno: Errno,
    },
    /// Reading a file of the kernel's failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value could not be understood.
    #[error("{0}")]
    Parse(String),
}

impl Error {
    /// The errno, for errors that carry one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Open { errno, .. } | Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::Parse(_) => None,
        }
    }

    pub(crate) fn sys(op: &'static str) -> impl Fn(Errno) -> Error {
        move |errno| Error::Sys { op, errno }
    }
}
