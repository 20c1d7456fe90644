//! `portcullis tickets`: the TLS session-ticket key file a fleet shares (`serve --ticket-keys`).
//!
//! Every instance given the same file decrypts the others' tickets, so a client resumes its
//! session whichever instance the load balancer picks. `rotate` puts a new issuing key first and
//! keeps the previous ones for decryption; instances reload the file when it changes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis::tls::TicketKeys;

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Create a key file holding one random 48-byte key (Node's ticketKeys format), readable by
    /// its owner only. Refuses to replace an existing file: rotate that one.
    New(NewArgs),

    /// Put a new random key first (it issues tickets from now on), keep the previous ones for
    /// decryption, drop the oldest beyond --keep; the file is replaced atomically, so serving
    /// instances reload it whole. Run it daily or hourly (from cron or a systemd timer): a key
    /// that leaks decrypts the sessions resumed under it for as long as it is kept.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The key file to create.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key file to rotate.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// How many keys the file keeps, the new one included (at least 2). A ticket must meet its
    /// key until it expires (the session timeout, 300 s by default), so with --keep 2 rotate
    /// no more often than that.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=100))]
    keep: u16,
}

pub fn main(command: TicketsCommand) -> ExitCode {
    let result = match command {
        TicketsCommand::New(args) => new(&args),
        TicketsCommand::Rotate(args) => rotate(&args),
    };
    match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn new(args: &NewArgs) -> anyhow::Result<String> {
    if args.file.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} exists: rotate it (portcullis tickets rotate {0}), or remove it first",
            args.file.display()
        );
    }
    TicketKeys::random().save(&args.file)?;
    Ok(format!(
        "{}: 1 key; give it to every instance with --ticket-keys",
        args.file.display()
    ))
}

fn rotate(args: &RotateArgs) -> anyhow::Result<String> {
    let mut keys = TicketKeys::from_file(&args.file)?;
    let before = keys.len();
    keys.rotate(usize::from(args.keep));
    keys.save(&args.file)?;
    let dropped = (before + 1).saturating_sub(keys.len());
    Ok(format!(
        "{}: new issuing key first, {} kept for decryption, {dropped} dropped",
        args.file.display(),
        keys.len() - 1
    ))
}
