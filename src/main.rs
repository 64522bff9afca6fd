use clap::Parser;

// glibc's malloc showed ~12 % of the delivery path's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
