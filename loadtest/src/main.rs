//! `loadtest`: the many-hospital load generator. Its scenarios, protocols and reports
//! arrive with the "loadtest and operations" issue; until then it says so and exits.

fn main() -> std::process::ExitCode {
    eprintln!("loadtest: not implemented yet (needs the SFTP and HTTPS front ends)");
    std::process::ExitCode::from(2)
}
