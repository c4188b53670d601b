//! Test support shared by Palisade's crates (never published, only a dev-dependency).
//!
//! Tests of the Redis and PostgreSQL paths talk to the real servers. Where a server is
//! not reachable, a test either skips with a printed reason (a developer laptop) or fails
//! (CI sets `PALISADE_REQUIRE_SERVICES=1`), so that CI can never pass by skipping.
//!
//! The servers are found through `PALISADE_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) and `PALISADE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! # Example
//!
//! ```no_run
//! # fn main() {
//! let Some(url) = palisade_testkit::redis_url() else { return };
//! // ... connect to `url` and test against the real Redis.
//! # let _ = url;
//! # }
//! ```

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rand::Rng;

/// Whether CI demands the real services (`PALISADE_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("PALISADE_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// The Redis URL for tests, when Redis answers `PING`.
///
/// Returns `None` after printing why when Redis is unreachable and services are not
/// required; panics when they are required.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("PALISADE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    match ping_redis(&url) {
        Ok(()) => Some(url),
        Err(reason) => unavailable("Redis", &url, &reason),
    }
}

/// The PostgreSQL URL for tests, when the server accepts TCP connections.
///
/// Returns `None` after printing why when it is unreachable and services are not
/// required; panics when they are required.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match connect(host_port(&url, 5432).as_deref().unwrap_or("127.0.0.1:5432")) {
        Ok(_) => Some(url),
        Err(reason) => unavailable("PostgreSQL", &url, &reason),
    }
}

/// A fresh, empty PostgreSQL database for one test, so that tests running in parallel
/// (and the migrations of several crates) never see each other's rows.
///
/// Returns its URL, or `None` as [`postgres_url`] does.
#[cfg(feature = "postgres")]
pub async fn fresh_postgres_database(prefix: &str) -> Option<String> {
    use sqlx::Connection;
    let url = postgres_url()?;
    let name = unique_name(&format!("palisade_test_{prefix}"));
    let mut admin = match sqlx::PgConnection::connect(&url).await {
        Ok(connection) => connection,
        Err(error) => return unavailable("PostgreSQL", &url, &error.to_string()),
    };
    // The name is generated from [a-z0-9_] only, so quoting it is enough.
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}

/// A name unique to this test run: `prefix` followed by random lowercase letters and
/// digits, for Redis key prefixes, database names and the like.
pub fn unique_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}_{suffix}")
}

#[allow(clippy::print_stderr)] // A skipped test must say why, and the test harness shows stderr.
fn unavailable<T>(service: &str, url: &str, reason: &str) -> Option<T> {
    if services_required() {
        panic!(
            "{service} at {url} is required (PALISADE_REQUIRE_SERVICES=1) but unreachable: {reason}"
        );
    }
    eprintln!(
        "skipping: {service} at {url} is unreachable ({reason}); set PALISADE_REQUIRE_SERVICES=1 to fail instead"
    );
    None
}

fn host_port(url: &str, default_port: u16) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.contains(':') {
        Some(host_port.to_owned())
    } else {
        Some(format!("{host_port}:{default_port}"))
    }
}

fn connect(address: &str) -> Result<TcpStream, String> {
    let socket = address
        .to_socket_addrs()
        .map_err(|error| error.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))?;
    let stream = TcpStream::connect_timeout(&socket, Duration::from_secs(2))
        .map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|error| error.to_string())?;
    Ok(stream)
}

fn ping_redis(url: &str) -> Result<(), String> {
    let address = host_port(url, 6379).ok_or_else(|| format!("cannot read host from {url}"))?;
    let mut stream = connect(&address)?;
    stream
        .write_all(b"PING\r\n")
        .map_err(|error| error.to_string())?;
    let mut reply = [0u8; 64];
    let read = stream.read(&mut reply).map_err(|error| error.to_string())?;
    let reply = reply.get(..read).unwrap_or_default();
    if reply.starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!(
            "unexpected reply to PING: {}",
            String::from_utf8_lossy(reply).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_reads_urls() {
        assert_eq!(
            host_port("redis://127.0.0.1:6379", 1).as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            host_port("postgres://u:p@db.local/test", 5432).as_deref(),
            Some("db.local:5432")
        );
        assert_eq!(host_port("not a url", 1), None);
    }

    #[test]
    fn unique_names_differ() {
        let a = unique_name("t");
        assert!(a.starts_with("t_") && a.len() == 14);
        assert_ne!(a, unique_name("t"));
    }
}
