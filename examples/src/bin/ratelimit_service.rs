//! A rate-limit-only service: `GET /hello`, limited to a number of requests per minute
//! per client address, answering 429 with `Retry-After` past the limit.
//!
//! ```text
//! cargo run -p palisade-examples --bin ratelimit_service [-- --listen 127.0.0.1:8080 --per-minute 5]
//! curl -i http://127.0.0.1:8080/hello
//! ```
//!
//! The logic is in `palisade_examples::ratelimit_service`.

use std::process::ExitCode;

use palisade_examples::ratelimit_service::{DEFAULT_PER_MINUTE, app, limiter};

#[tokio::main]
// An example program tells the person who started it where it listens.
#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn main() -> ExitCode {
    palisade_examples::init_logging();
    let (listener, url, options) = match palisade_examples::bind(
        std::env::args().skip(1),
        &["--listen", "--per-minute"],
    )
    .await
    {
        Ok(bound) => bound,
        Err(message) => {
            eprintln!("ratelimit_service: {message}");
            return ExitCode::from(2);
        }
    };
    let per_minute = match options
        .get("--per-minute")
        .map(|value| value.parse::<u64>())
    {
        None => DEFAULT_PER_MINUTE,
        Some(Ok(per_minute)) => per_minute,
        Some(Err(_)) => {
            eprintln!("ratelimit_service: --per-minute must be a whole number");
            return ExitCode::from(2);
        }
    };
    let limiter = match limiter(per_minute) {
        Ok(limiter) => limiter,
        Err(error) => {
            eprintln!("ratelimit_service: --per-minute: {error}");
            return ExitCode::from(2);
        }
    };

    println!("listening on {url}");
    println!("limit: {per_minute} requests per minute per client address");
    println!("try: curl -i {url}/hello");
    match palisade_examples::serve(listener, app(limiter), palisade_examples::ctrl_c()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ratelimit_service: {error}");
            ExitCode::FAILURE
        }
    }
}
