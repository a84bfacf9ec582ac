//! Logging into the host's `tracing` output (the reconcile's span names plugin and object).
//!
//! `println!`/`eprintln!` also reach the host's log, as unstructured lines.

pub use crate::data::Level;

/// Writes one line at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    crate::sys::log(level, message.as_ref());
}

/// Writes one line at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Writes one line at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Writes one line at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Writes one line at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
