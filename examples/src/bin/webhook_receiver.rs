//! A webhook receiver: `POST /webhooks` answers 204 to deliveries signed per Standard
//! Webhooks with the secret in `WEBHOOK_SECRET`, and 401 to anything else.
//!
//! ```text
//! WEBHOOK_SECRET=whsec_... cargo run -p palisade-examples --bin webhook_receiver [-- --listen 127.0.0.1:8080]
//! ```
//!
//! The logic, and a way to send a signed delivery with curl, are in
//! `palisade_examples::webhook_receiver`.

use std::process::ExitCode;

use palisade_examples::webhook_receiver::{Inbox, app};
use palisade_signing::StandardWebhook;

#[tokio::main]
// An example program tells the person who started it where it listens, or why not.
#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn main() -> ExitCode {
    palisade_examples::init_logging();
    let webhook = match std::env::var("WEBHOOK_SECRET") {
        Ok(secret) => match StandardWebhook::new(secret.trim()) {
            Ok(webhook) => webhook,
            Err(_) => {
                // The error says why, never what the secret was.
                eprintln!(
                    "webhook_receiver: WEBHOOK_SECRET must be whsec_ followed by 16 to 64 bytes in base64"
                );
                return ExitCode::from(2);
            }
        },
        Err(_) => {
            eprintln!(
                "webhook_receiver: set WEBHOOK_SECRET to the sender's whsec_ secret, or try a new one: WEBHOOK_SECRET={}",
                StandardWebhook::generate_secret()
            );
            return ExitCode::from(2);
        }
    };
    let (listener, url, _) =
        match palisade_examples::bind(std::env::args().skip(1), &["--listen"]).await {
            Ok(bound) => bound,
            Err(message) => {
                eprintln!("webhook_receiver: {message}");
                return ExitCode::from(2);
            }
        };

    println!("listening on {url}");
    println!("deliveries: POST {url}/webhooks");
    let served = palisade_examples::serve(
        listener,
        app(webhook, Inbox::new()),
        palisade_examples::ctrl_c(),
    )
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webhook_receiver: {error}");
            ExitCode::FAILURE
        }
    }
}
