use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hookd::config::Cli::parse();
    match hookd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
