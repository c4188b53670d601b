//! An API-key-only service: creates one key at start, prints it once, and serves
//! `GET /hello` to callers whose key grants `greetings:read`.
//!
//! ```text
//! cargo run -p palisade-examples --bin apikey_service [-- --listen 127.0.0.1:8080]
//! curl -i -H 'X-API-Key: <the printed key>' http://127.0.0.1:8080/hello
//! ```
//!
//! The logic is in `palisade_examples::apikey_service`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use palisade_apikey::{ApiKeys, MemoryKeyStore};
use palisade_examples::apikey_service::{SCOPE, app, create_demo_key};

#[tokio::main]
// An example program talks to the person who started it: the URL, and the key, which
// exists nowhere else (only its hash is stored).
#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn main() -> ExitCode {
    palisade_examples::init_logging();
    let (listener, url, _) =
        match palisade_examples::bind(std::env::args().skip(1), &["--listen"]).await {
            Ok(bound) => bound,
            Err(message) => {
                eprintln!("apikey_service: {message}");
                return ExitCode::from(2);
            }
        };
    let keys = Arc::new(ApiKeys::new(MemoryKeyStore::new()));
    let created = match create_demo_key(&keys, SystemTime::now()).await {
        Ok(created) => created,
        Err(error) => {
            eprintln!("apikey_service: cannot create the demo key: {error}");
            return ExitCode::FAILURE;
        }
    };

    println!("listening on {url}");
    println!(
        "API key for {} with scope {SCOPE} (shown once): {}",
        created.record.owner,
        created.key.expose_secret()
    );
    println!(
        "try: curl -i -H 'X-API-Key: {}' {url}/hello",
        created.key.expose_secret()
    );
    // The raw key is zeroized here; from now on only its hash exists.
    drop(created);

    // Last-use times are buffered by the verifier; write them every few seconds.
    let flusher = {
        let keys = Arc::clone(&keys);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                if let Err(error) = keys.flush().await {
                    tracing::warn!(%error, "could not record last-use times");
                }
            }
        })
    };

    let served = palisade_examples::serve(
        listener,
        app(Arc::clone(&keys)),
        palisade_examples::ctrl_c(),
    )
    .await;
    flusher.abort();
    if let Err(error) = keys.flush().await {
        tracing::warn!(%error, "could not record last-use times");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("apikey_service: {error}");
            ExitCode::FAILURE
        }
    }
}
