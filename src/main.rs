//! clawgate: a small, static OpenClaw-compatible gateway and its own CLI.
//!
//! `main` parses the command line, dispatches, and is the only place that
//! prints results and errors: errors once, as `clawgate: <message>`, with
//! the exit status their kind implies (1 runtime, 2 usage, 78 config).
#![deny(unsafe_code)]

mod agent;
mod auth;
mod cli;
mod client;
mod config;
mod error;
mod gateway;
mod http;
mod logging;
mod methods;
mod output;
mod protocol;
mod runs;
mod service;
mod state;
mod store;
mod sys;
mod words;
mod ws;

use std::io::{self, Write};

use cli::Command;
use error::Error;
use protocol::VERSION;

fn main() {
    let code = match dispatch() {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn dispatch() -> Result<i32, Error> {
    let command = cli::parse(std::env::args_os().skip(1))?;
    let output = match command {
        Command::Help(text) => return Ok(out(&text, false)),
        Command::Version => return Ok(out(&format!("clawgate {VERSION}"), true)),
        Command::Run(args) => {
            // Not `out`: a gateway must keep serving when whoever started
            // it closed its stdout; the log file has the lines as well.
            gateway::run(&args, &mut |line| {
                let _ = writeln!(io::stdout().lock(), "{line}");
            })?;
            return Ok(0);
        }
        Command::Call(args) => client::call(&args)?,
        Command::Health(args) => client::health(&args)?,
        Command::Status(args) => client::status(&args)?,
        Command::Probe(args) => client::probe(&args)?,
        Command::Devices(args) => client::devices(&args)?,
        Command::Nodes(args) => client::nodes(&args)?,
        // Each piece of the reply goes out as it arrives.
        Command::Agent(args) => client::agent(&args, &mut |piece| {
            out(piece, false);
        })?,
        Command::Sessions(args) => client::sessions(&args)?,
        Command::Logs(args) => {
            return client::logs(
                &args,
                &mut |text| {
                    out(text, true);
                },
                &mut note,
                &mut stdout_gone,
            );
        }
        Command::Service(args) => service::run(&args)?,
    };
    if !output.text.is_empty() {
        out(&output.text, true);
    }
    for n in &output.notes {
        note(n);
    }
    Ok(output.code)
}

/// Writes to stdout. A closed pipe (`clawgate call x | head -1`) is not an
/// error for the user: exit 0 quietly instead of panicking as `println!`
/// would.
fn out(text: &str, newline: bool) -> i32 {
    let mut stdout = io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|_| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|_| stdout.flush());
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        _ => 0,
    }
}

/// Sleeps up to `wait`, returning early (true) when nobody reads stdout
/// any more, so `clawgate logs --follow | head -1` ends with `head`
/// rather than at the next line it would fail to write.
fn stdout_gone(wait: std::time::Duration) -> bool {
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    sys::wait_reader_gone(1, ms)
}

fn print_error(e: &Error) {
    note(&e.to_string());
}

/// One line on stderr: an error, a warning (`warning: …`) or a notice.
fn note(msg: &str) {
    let _ = writeln!(io::stderr(), "clawgate: {msg}");
}
