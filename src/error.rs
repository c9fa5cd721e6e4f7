//! The one error type of clawgate.
//!
//! Every fallible function returns `Result<T, Error>`; only `main` prints an
//! error, once, as `clawgate: <message>`, and maps it to an exit status. The
//! variants are chosen by what the user must do about them, because that is
//! what the exit status tells a supervisor: fix the command line (2), fix the
//! configuration and do not restart-loop (78), or retry later (1).

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// Bad flags or arguments: exit 2.
    Usage(String),
    /// A configuration problem that a restart cannot fix: exit 78
    /// (EX_CONFIG), which `RestartPreventExitStatus=78` keeps from looping.
    Config(String),
    /// An I/O failure, with what we were doing when it happened: exit 1.
    Io { context: String, source: io::Error },
    /// Any other failure at run time, including a gateway that answered a
    /// call with an error or closed the connection: exit 1.
    Runtime(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    pub fn config(msg: impl Into<String>) -> Error {
        Error::Config(msg.into())
    }

    pub fn runtime(msg: impl Into<String>) -> Error {
        Error::Runtime(msg.into())
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Config(_) => 78,
            Error::Io { .. } | Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Config(m) | Error::Runtime(m) => f.write_str(m),
            Error::Io { context, source } => write!(f, "{context}: {}", io_message(source)),
        }
    }
}

impl std::error::Error for Error {}

/// `io::Error`'s own text ends in "(os error 2)" and starts uppercase; we
/// want the lowercase, suffix-free form used in every other message.
pub fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_what_the_user_must_do() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::config("x").exit_code(), 78);
        assert_eq!(Error::runtime("x").exit_code(), 1);
        let e = Error::io("reading '/x'", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "reading '/x': no such file or directory");
    }
}
