//! `portcullis cert`: the local CA, new leaf certificates, inspection, trust instructions.

use std::process::ExitCode;

use clap::Subcommand;

/// The `cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create (or show) the local development CA that `serve` uses by default.
    Ca,
}

/// Runs a `cert` subcommand.
pub fn main(command: CertCommand) -> ExitCode {
    match command {
        CertCommand::Ca => ExitCode::SUCCESS,
    }
}
