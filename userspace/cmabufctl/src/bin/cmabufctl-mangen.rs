// SPDX-License-Identifier: GPL-2.0
//! `cmabufctl-mangen DIR`: writes cmabufctl's manual pages into DIR (`cmabufctl.1`, and
//! `cmabufctl-<command>.1` for each command) from the command line's own definition, with
//! clap_mangen. Runs on the build machine (the packages' build runs it; it needs no device).

#[path = "../cli.rs"]
mod cli;

use clap::CommandFactory;
use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cmabufctl-mangen DIR");
        return ExitCode::from(2);
    };
    match std::fs::create_dir_all(&dir)
        .and_then(|()| clap_mangen::generate_to(cli::Cli::command(), &dir))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmabufctl-mangen: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
