//! A client that signs a request with the `palisade` profile, shows the headers it
//! added, sends it, and prints the answer.
//!
//! ```text
//! PALISADE_ACCESS_KEY_ID=... PALISADE_SECRET=... \
//!   cargo run -p palisade-examples --bin signing_client -- [--method POST] [--data BODY] [--content-type TYPE] URL
//! ```
//!
//! `--data` defaults the method to `POST` and the content type to `application/json`.
//! The exit status is 0 for a 2xx answer, 1 otherwise, 2 for a usage error. The logic is
//! in `palisade_examples::signing_client`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::SystemTime;

use palisade_examples::signing_client::{Outgoing, build, credential_from_env};
use reqwest::{Method, Url};

const USAGE: &str =
    "usage: signing_client [--method METHOD] [--data BODY] [--content-type TYPE] URL";

/// The options and the URL from the arguments after the program name.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Outgoing, String> {
    let mut options = HashMap::new();
    let mut url = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg.starts_with("--") {
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("{arg} needs a value; {USAGE}"))?;
                    (arg, value)
                }
            };
            if !matches!(name.as_str(), "--method" | "--data" | "--content-type") {
                return Err(format!("unknown option `{name}`; {USAGE}"));
            }
            options.insert(name, value);
        } else if url.replace(arg).is_some() {
            return Err(format!("one URL only; {USAGE}"));
        }
    }
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    let url = Url::parse(&url).map_err(|error| format!("`{url}` is not a URL: {error}"))?;
    let data = options.remove("--data");
    let method = match options.remove("--method") {
        Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{method}` is not an HTTP method"))?,
        None if data.is_some() => Method::POST,
        None => Method::GET,
    };
    Ok(match data {
        Some(data) => {
            let content_type = options
                .remove("--content-type")
                .unwrap_or_else(|| "application/json".to_owned());
            Outgoing::with_body(method, url, content_type, data)
        }
        None => Outgoing {
            method,
            ..Outgoing::get(url)
        },
    })
}

#[tokio::main]
// An example program shows its user what it sent and what came back.
#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn main() -> ExitCode {
    let request = match parse(std::env::args().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("signing_client: {message}");
            return ExitCode::from(2);
        }
    };
    let credential = match credential_from_env() {
        Ok(credential) => credential,
        Err(message) => {
            eprintln!("signing_client: {message}");
            return ExitCode::from(2);
        }
    };

    let client = reqwest::Client::new();
    let (signed, added) = match build(&client, &credential, &request, SystemTime::now()) {
        Ok(built) => built,
        Err(error) => {
            eprintln!("signing_client: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("> {} {}", request.method, request.url);
    for (name, value) in &added {
        println!("> {name}: {value}");
    }
    let response = match client.execute(signed).await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("signing_client: request failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    println!("< {status}");
    match response.text().await {
        Ok(body) => println!("{body}"),
        Err(error) => eprintln!("signing_client: cannot read the answer: {error}"),
    }
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
