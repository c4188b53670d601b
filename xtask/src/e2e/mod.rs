//! `cargo xtask bench e2e`: the whole request path under load, against a bare service.
//!
//! Builds the reference server (`palisade`) and the bare axum service
//! (`benches/src/bin/bare_orders.rs`) in release mode, starts both on loopback, seeds a
//! caller with orders through the CLI and the API, checks that both answer
//! `GET /api/orders` with the same bytes, then loads each configuration with `wrk`,
//! alternating a bare run and a Palisade run per round so that drift (thermal, other
//! work on the machine) touches both alike: first saturated (`--connections`, for
//! throughput), then at one connection (nothing queues, for the latency Palisade adds).
//! The medians, the Palisade/bare ratios and
//! the goals of issue 11 go to the terminal and to the section of docs/BENCHMARKS.md
//! between `<!-- xtask-bench-e2e:begin -->` and `<!-- xtask-bench-e2e:end -->`, with a
//! chart in docs/bench-e2e.svg. Everything else (data directory, logs, request files)
//! is left in `target/bench-e2e/` for inspection.
//!
//! The server's defences are all on, so the benchmark stays under them rather than
//! switching them off: every Palisade run gets fresh credentials, as many as it takes
//! for each to stay under its rate limit (API keys carry a huge `--rate-limit`; OAuth
//! clients and signing credentials have no per-credential limit, so the server runs
//! with `ratelimit.default_plan = "enterprise"`: a burst of 1 000 refilled at 100 per
//! second) and under the abuse monitor's response-volume rule (100 MiB per identity in
//! 10 minutes). Signed requests are single-use (replay protection), so each signed run
//! sends distinct, freshly signed requests. A single non-2xx response or socket error
//! fails the benchmark.

mod chart;
mod cpu;
mod http;
mod report;
mod wrk;

use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_signing::{Request, Secret, SigV4Profile, SigningCredential, sign};
use serde_json::Value;

use crate::util::{cargo, output, run as run_command, workspace_root};
use report::{ConfigResult, RunInfo};
use wrk::WrkRun;

const USAGE: &str = "usage: cargo xtask bench e2e [--duration SECS] [--latency-duration SECS] [--warmup SECS] [--rounds N] [--connections N] [--threads N] [--orders N] [--only NAME,...] [--redis-url URL] [--no-build]
  configurations (--only): api-key, jwt, signed, redis, tls";

/// The caller whose orders both services serve.
const OWNER: &str = "bench";

/// Every order of the benchmark (no `metadata`: a map's order is not stable, and both
/// services must answer the same bytes).
const ORDER_BODY: &str = r#"{"items":[{"product_id":"prod_bench1","quantity":2},{"product_id":"prod_bench2","quantity":1}],"shipping_address":{"street":"1 Benchmark Road","city":"Loadtown","country":"DE","postal_code":"10115"},"notes":"leave at the door"}"#;

/// The abuse monitor throttles an identity past 100 MiB of responses in 10 minutes;
/// each identity gets at most half of that per run.
const ABUSE_BYTES_PER_IDENTITY: u64 = 50 * 1024 * 1024;

/// How a configuration authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    ApiKey,
    Bearer,
    Signed,
}

/// Which reference-server instance a configuration runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Instance {
    /// Plain HTTP, in-memory limiter (the default start).
    Memory,
    /// Plain HTTP, `redis_url` set: limiter, abuse state and nonces in Redis.
    Redis,
    /// HTTPS with the development certificate (and the bare service over TLS too).
    Tls,
}

struct Config {
    name: &'static str,
    short: &'static str,
    label: &'static str,
    auth: Auth,
    instance: Instance,
}

const CONFIGS: [Config; 5] = [
    Config {
        name: "api-key",
        short: "API key",
        label: "API key + in-memory rate limit + headers + abuse",
        auth: Auth::ApiKey,
        instance: Instance::Memory,
    },
    Config {
        name: "jwt",
        short: "JWT ES256",
        label: "Bearer ES256 JWT (client_credentials token)",
        auth: Auth::Bearer,
        instance: Instance::Memory,
    },
    Config {
        name: "signed",
        short: "signed",
        label: "Signed request (`palisade` profile, single-use)",
        auth: Auth::Signed,
        instance: Instance::Memory,
    },
    Config {
        name: "redis",
        short: "Redis limiter",
        label: "API key + Redis rate limiter",
        auth: Auth::ApiKey,
        instance: Instance::Redis,
    },
    Config {
        name: "tls",
        short: "TLS",
        label: "API key over TLS (bare over TLS too)",
        auth: Auth::ApiKey,
        instance: Instance::Tls,
    },
];

/// How hard wrk pushes.
struct Load {
    /// For file names: `loaded` or `single`.
    name: &'static str,
    threads: u32,
    connections: u32,
}

#[derive(Debug, PartialEq)]
struct Options {
    seconds: u64,
    /// Length of the single-connection (latency) runs; 0 leaves them out.
    single_seconds: u64,
    warmup: u64,
    rounds: usize,
    connections: u32,
    threads: u32,
    orders: usize,
    only: Vec<&'static str>,
    redis_url: String,
    build: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        seconds: 10,
        single_seconds: 5,
        warmup: 2,
        rounds: 3,
        connections: 50,
        threads: 2,
        orders: 20,
        only: CONFIGS.iter().map(|config| config.name).collect(),
        redis_url: "redis://127.0.0.1:6379".to_owned(),
        build: true,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--no-build" {
            options.build = false;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("bench e2e: {flag} needs a value\n{USAGE}"))?;
        let bad = || format!("bench e2e: bad value `{value}` for {flag}\n{USAGE}");
        match flag.as_str() {
            "--duration" => options.seconds = value.parse().map_err(|_| bad())?,
            "--latency-duration" => options.single_seconds = value.parse().map_err(|_| bad())?,
            "--warmup" => options.warmup = value.parse().map_err(|_| bad())?,
            "--rounds" => options.rounds = value.parse().map_err(|_| bad())?,
            "--connections" => options.connections = value.parse().map_err(|_| bad())?,
            "--threads" => options.threads = value.parse().map_err(|_| bad())?,
            "--orders" => options.orders = value.parse().map_err(|_| bad())?,
            "--redis-url" => options.redis_url.clone_from(value),
            "--only" => {
                options.only = value
                    .split(',')
                    .map(|name| {
                        CONFIGS
                            .iter()
                            .find(|config| config.name == name.trim())
                            .map(|config| config.name)
                            .ok_or_else(bad)
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("bench e2e: unknown option `{flag}`\n{USAGE}")),
        }
    }
    if options.seconds == 0 || options.rounds == 0 || options.threads == 0 {
        return Err(format!(
            "bench e2e: --duration, --rounds and --threads must be at least 1\n{USAGE}"
        ));
    }
    if options.connections < options.threads {
        return Err("bench e2e: wrk needs at least one connection per thread".into());
    }
    // With more than one page the server's answer carries an HMAC cursor the bare
    // service cannot reproduce byte for byte.
    if !(1..=20).contains(&options.orders) {
        return Err("bench e2e: --orders takes 1 to 20 (one page of the default size)".into());
    }
    // Signatures are valid for 5 minutes from their creation, just before the run.
    if options.only.contains(&"signed") && options.seconds.max(options.single_seconds) > 240 {
        return Err("bench e2e: signed requests expire after 5 minutes: use --duration 240 or less, or leave `signed` out of --only".into());
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let command = std::iter::once("cargo xtask bench e2e".to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    if Command::new("wrk").arg("-v").output().is_err() {
        return Err("bench e2e: wrk is not installed (apt-get install wrk)".into());
    }
    if options.only.contains(&"redis") {
        check_redis(&options.redis_url)?;
    }

    let root = workspace_root();
    if options.build {
        run_command(cargo().args(["build", "--release", "-p", "palisade-server"]))?;
        run_command(cargo().args([
            "build",
            "--release",
            "-p",
            "palisade-benches",
            "--features",
            "e2e",
            "--bin",
            "bare_orders",
        ]))?;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bench = Bench::new(&target, &options)?;
    let (info, results) = bench.measure(&command)?;

    println!("\n{}", report::table(&results));
    println!("At one connection:\n\n{}", report::single_table(&results));
    let verdicts = report::verdicts(&results, options.connections);
    for (line, _) in &verdicts {
        println!("goal {}", line.replace("**", ""));
    }
    let docs = root.join("docs");
    let svg = chart::render_svg(&results)?;
    let chart_path = docs.join(report::CHART_FILE);
    fs::write(&chart_path, svg)
        .map_err(|error| format!("bench e2e: writing {}: {error}", chart_path.display()))?;
    let doc_path = docs.join("BENCHMARKS.md");
    let doc = fs::read_to_string(&doc_path)
        .map_err(|error| format!("bench e2e: reading {}: {error}", doc_path.display()))?;
    let updated = report::replace_section(&doc, &report::render(&info, &results))?;
    fs::write(&doc_path, updated)
        .map_err(|error| format!("bench e2e: writing {}: {error}", doc_path.display()))?;
    eprintln!("bench e2e: results written to docs/BENCHMARKS.md and docs/bench-e2e.svg");
    Ok(())
}

/// Redis answers PING at the configured address (only `redis://host:port` URLs).
fn check_redis(url: &str) -> Result<(), String> {
    let authority = url
        .strip_prefix("redis://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .filter(|authority| !authority.contains('@'))
        .ok_or_else(|| {
            format!("bench e2e: --redis-url must look like redis://HOST:PORT, not {url}")
        })?;
    let mut stream = std::net::TcpStream::connect(authority).map_err(|error| {
        format!("bench e2e: Redis is not reachable at {authority} ({error}); start it, or leave `redis` out of --only")
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    stream
        .write_all(b"PING\r\n")
        .map_err(|error| format!("bench e2e: Redis at {authority}: {error}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|error| format!("bench e2e: Redis at {authority}: {error}"))?;
    if line.starts_with("+PONG") {
        Ok(())
    } else {
        Err(format!(
            "bench e2e: Redis at {authority} answered `{}` to PING",
            line.trim()
        ))
    }
}

/// A child process that is killed when dropped.
struct Service {
    name: &'static str,
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://...`.
    url: String,
    log: PathBuf,
}

impl Service {
    /// `127.0.0.1:PORT`.
    fn authority(&self) -> &str {
        self.url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` with its output in `log`, and waits for the line that `ready`
/// turns into the service's URL.
fn start(
    name: &'static str,
    mut command: Command,
    log: PathBuf,
    ready: fn(&str) -> Option<String>,
) -> Result<Service, String> {
    let file = fs::File::create(&log)
        .map_err(|error| format!("bench e2e: creating {}: {error}", log.display()))?;
    let err_file = file
        .try_clone()
        .map_err(|error| format!("bench e2e: {error}"))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .spawn()
        .map_err(|error| format!("bench e2e: cannot start {name}: {error}"))?;
    let mut service = Service {
        name,
        child,
        url: String::new(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(&service.log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(ready) {
            service.url = url;
            return Ok(service);
        }
        if let Ok(Some(status)) = service.child.try_wait() {
            return Err(format!(
                "bench e2e: {name} exited ({status}) before it was ready:\n{}",
                tail(&text)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "bench e2e: {name} was not ready within 60 s:\n{}",
                tail(&text)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The URL in the server's JSON log line `palisade is serving`.
fn palisade_ready(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let fields = &value["fields"];
    (fields["message"].as_str()? == "palisade is serving")
        .then(|| fields["url"].as_str().map(str::to_owned))
        .flatten()
}

fn bare_ready(line: &str) -> Option<String> {
    line.strip_prefix("bare_orders is serving ")
        .map(|url| url.trim().to_owned())
}

/// One benchmark session: paths, binaries and options.
struct Bench<'a> {
    options: &'a Options,
    dir: PathBuf,
    data: PathBuf,
    certs: PathBuf,
    palisade: PathBuf,
    bare: PathBuf,
    script: PathBuf,
    /// Most `rustc` processes seen at the start of a run (other builds).
    compilers_seen: AtomicUsize,
    /// The services' process ids (their CPU time is not "other work").
    pids: Mutex<Vec<u32>>,
    /// Share of the machine's CPU that other processes took, per run.
    other_cpu: Mutex<Vec<f64>>,
    next_name: AtomicUsize,
}

/// What a Palisade run authenticates with.
enum Identities {
    /// Raw API keys or bearer tokens, sent in turn.
    Headers(Vec<String>),
    /// Signing credentials: (access key id, secret).
    Signing(Vec<(String, String)>),
}

impl<'a> Bench<'a> {
    fn new(target: &Path, options: &'a Options) -> Result<Self, String> {
        let dir = target.join("bench-e2e");
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|error| format!("bench e2e: clearing {}: {error}", dir.display()))?;
        }
        fs::create_dir_all(&dir)
            .map_err(|error| format!("bench e2e: creating {}: {error}", dir.display()))?;
        let script = dir.join("requests.lua");
        fs::write(&script, wrk::SCRIPT).map_err(|error| format!("bench e2e: {error}"))?;
        let release = target.join("release");
        let bench = Self {
            options,
            data: dir.join("data"),
            certs: dir.join("certs"),
            palisade: release.join("palisade"),
            bare: release.join("bare_orders"),
            script,
            dir,
            compilers_seen: AtomicUsize::new(0),
            pids: Mutex::new(Vec::new()),
            other_cpu: Mutex::new(Vec::new()),
            next_name: AtomicUsize::new(0),
        };
        for binary in [&bench.palisade, &bench.bare] {
            if !binary.is_file() {
                return Err(format!(
                    "bench e2e: {} is missing (run without --no-build)",
                    binary.display()
                ));
            }
        }
        Ok(bench)
    }

    /// `palisade --data-dir DATA ARGS --json`, its output parsed.
    fn cli(&self, args: &[&str]) -> Result<Value, String> {
        let mut command = Command::new(&self.palisade);
        clear_palisade_env(&mut command);
        command
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .arg("--json");
        let text = output(&mut command)?;
        serde_json::from_str(&text).map_err(|error| {
            format!(
                "bench e2e: palisade {} printed no JSON ({error}): {text}",
                args.join(" ")
            )
        })
    }

    fn string_field(value: &Value, field: &str) -> Result<String, String> {
        value[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("bench e2e: no `{field}` in {value}"))
    }

    fn start_palisade(&self, instance: Instance) -> Result<Service, String> {
        let mut command = Command::new(&self.palisade);
        clear_palisade_env(&mut command);
        command
            .arg("--data-dir")
            .arg(&self.data)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("PALISADE_METRICS_LISTEN", "127.0.0.1:0")
            // OAuth clients and signing credentials have no limit of their own: give
            // them the largest plan (each run spreads its load so as to stay under it).
            .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
            // The set-up requests (tokens) come unauthenticated from one address.
            .env("PALISADE_RATELIMIT__ANONYMOUS_PER_MINUTE", "1000000000");
        match instance {
            Instance::Memory => {}
            Instance::Redis => {
                command.env("PALISADE_REDIS_URL", &self.options.redis_url);
            }
            Instance::Tls => {
                command
                    .env("PALISADE_TLS__CERT", self.certs.join("server.pem"))
                    .env("PALISADE_TLS__KEY", self.certs.join("server.key"));
            }
        }
        let log = self
            .dir
            .join(format!("palisade-{instance:?}.log").to_lowercase());
        self.register(start("palisade", command, log, palisade_ready)?)
    }

    fn start_bare(&self, tls: bool) -> Result<Service, String> {
        let mut command = Command::new(&self.bare);
        let suffix = if tls { "tls" } else { "plain" };
        command
            .args(["--listen", "127.0.0.1:0", "--owner", OWNER])
            .arg("--database")
            .arg(self.dir.join(format!("bare-{suffix}.db")))
            .arg("--seed")
            .arg(self.dir.join("page.json"));
        if tls {
            command
                .arg("--tls-cert")
                .arg(self.certs.join("server.pem"))
                .arg("--tls-key")
                .arg(self.certs.join("server.key"));
        }
        self.register(start(
            "bare_orders",
            command,
            self.dir.join(format!("bare-{suffix}.log")),
            bare_ready,
        )?)
    }

    fn register(&self, service: Service) -> Result<Service, String> {
        self.pids
            .lock()
            .map_err(|_| "bench e2e: a thread panicked".to_owned())?
            .push(service.child.id());
        Ok(service)
    }

    /// Everything: seeding, the check, and the runs of every chosen configuration.
    fn measure(&self, command: &str) -> Result<(RunInfo, Vec<ConfigResult>), String> {
        let options = self.options;
        let load_before = load_average();
        let certs = self.cli(&["certs", "dev", "--out", &self.certs.to_string_lossy()])?;
        for field in ["server_cert", "server_key"] {
            Self::string_field(&certs, field)?;
        }
        let seed_key = Self::string_field(
            &self.cli(&[
                "keys",
                "create",
                "--owner",
                OWNER,
                "--scopes",
                "orders:read,orders:write",
                "--rate-limit",
                "1000000000",
            ])?,
            "key",
        )?;

        let mut memory = Some(self.start_palisade(Instance::Memory)?);
        let page = {
            let server = memory.as_ref().ok_or("unreachable")?;
            for _ in 0..options.orders {
                create_order(server.authority(), ("X-API-Key", &seed_key))?;
            }
            let page = http::send(
                server.authority(),
                "GET",
                "/api/orders",
                &[("X-API-Key", &seed_key)],
                b"",
            )?;
            if page.status != 200 {
                return Err(format!(
                    "bench e2e: GET /api/orders answered {}: {}",
                    page.status,
                    page.text()
                ));
            }
            page.body
        };
        check_page(&page, options.orders)?;
        fs::write(self.dir.join("page.json"), &page)
            .map_err(|error| format!("bench e2e: {error}"))?;

        let mut plain_bare = Some(self.start_bare(false)?);
        let bare_page = http::send(
            plain_bare.as_ref().ok_or("unreachable")?.authority(),
            "GET",
            "/api/orders",
            &[],
            b"",
        )?;
        if bare_page.body != page {
            return Err(format!(
                "bench e2e: the bare service does not answer what the server answers:\nserver: {}\nbare:   {}",
                String::from_utf8_lossy(&page),
                bare_page.text()
            ));
        }
        eprintln!(
            "bench e2e: both services answer the same {}-byte page of {} orders",
            page.len(),
            options.orders
        );

        let mut results = Vec::new();
        for config in CONFIGS.iter().filter(|c| options.only.contains(&c.name)) {
            let needs_memory = config.instance == Instance::Memory;
            if !needs_memory {
                // One reference server at a time.
                memory = None;
            }
            if config.instance == Instance::Redis {
                // Redis works for the server in this configuration: its CPU time is
                // part of the measurement, not other work.
                for pid in processes_named("redis-server") {
                    if let Ok(mut pids) = self.pids.lock() {
                        pids.push(pid);
                    }
                }
            }
            let instance_holder;
            let server = match config.instance {
                Instance::Memory => memory
                    .as_ref()
                    .ok_or("unreachable: memory instance stopped")?,
                other => {
                    instance_holder = self.start_palisade(other)?;
                    &instance_holder
                }
            };
            let tls_bare_holder;
            let bare = if config.instance == Instance::Tls {
                plain_bare = None;
                tls_bare_holder = self.start_bare(true)?;
                &tls_bare_holder
            } else {
                plain_bare
                    .as_ref()
                    .ok_or("unreachable: bare service stopped")?
            };
            let sample = self.sample_identities(config, server, &seed_key)?;
            results.push(self.measure_config(config, server, bare, &sample, page.len())?);
        }
        drop(memory);
        drop(plain_bare);

        let mut caveats = Vec::new();
        let compilers = self.compilers_seen.load(Ordering::Relaxed);
        if compilers > 0 {
            caveats.push(format!(
                "other builds ran during the measurement (up to {compilers} `rustc` processes at the start of a run, on a {}-core machine)",
                available_cores()
            ));
        }
        let shares = self
            .other_cpu
            .lock()
            .map(|shares| shares.clone())
            .unwrap_or_default();
        if !shares.is_empty() {
            let typical = report::median(&shares);
            let most = shares.iter().copied().fold(0.0_f64, f64::max);
            caveats.push(format!(
                "other processes took {:.0}% of the machine's CPU time during the median run and {:.0}% during the busiest{}",
                typical * 100.0,
                most * 100.0,
                if typical > 0.05 {
                    " (the machine is shared: absolute figures are depressed and noisier; the alternation keeps the ratios comparable)"
                } else {
                    ""
                }
            ));
        }
        if let Some(load) = load_before {
            caveats.push(format!(
                "1-minute load average before the first run: {load}"
            ));
        }
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let info = RunInfo {
            date: utc_now(),
            command: command.to_owned(),
            cores: available_cores(),
            cpu: report::cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_owned()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned()),
            wrk: wrk_version(),
            threads: options.threads,
            connections: options.connections,
            seconds: options.seconds,
            single_seconds: options.single_seconds,
            warmup: options.warmup,
            rounds: options.rounds,
            orders: options.orders,
            body_bytes: page.len(),
            caveats,
        };
        Ok((info, results))
    }

    /// Identities for the bare runs: requests of the same shape as Palisade's (the bare
    /// service ignores the credentials), made with the seed identities.
    fn sample_identities(
        &self,
        config: &Config,
        server: &Service,
        seed_key: &str,
    ) -> Result<Identities, String> {
        Ok(match config.auth {
            Auth::ApiKey => Identities::Headers(vec![seed_key.to_owned()]),
            Auth::Bearer => {
                // A token of the same shape: the server is plain HTTP here (JWT runs on
                // the in-memory instance).
                let client = self.create_client()?;
                Identities::Headers(vec![token(server.authority(), &client)?])
            }
            Auth::Signed => Identities::Signing(vec![self.create_credential()?]),
        })
    }

    fn measure_config(
        &self,
        config: &Config,
        server: &Service,
        bare: &Service,
        sample: &Identities,
        body_bytes: usize,
    ) -> Result<ConfigResult, String> {
        let options = self.options;
        let loaded = Load {
            name: "loaded",
            threads: options.threads,
            connections: options.connections,
        };
        let single = Load {
            name: "single",
            threads: 1,
            connections: 1,
        };
        // Bare requests: the same shape; signed ones are pre-signed a few thousand times
        // (the bare service does not check replays).
        let bare_files = |load: &Load| self.dir.join(format!("{}-bare-{}", config.name, load.name));
        for load in [&loaded, &single] {
            self.write_requests(config, bare, sample, 4_000, load, &bare_files(load))?;
        }
        let mut result = ConfigResult {
            name: config.name,
            short: config.short,
            label: config.label,
            bare: Vec::new(),
            palisade: Vec::new(),
            bare_single: Vec::new(),
            palisade_single: Vec::new(),
        };
        let mut best: [Option<f64>; 2] = [None, None];
        let total = options.rounds + usize::from(options.warmup > 0);
        for round in 0..total {
            let warmup = options.warmup > 0 && round == 0;
            let what = if warmup {
                "warm-up".to_owned()
            } else {
                format!(
                    "round {}/{}",
                    round + usize::from(options.warmup == 0),
                    options.rounds
                )
            };
            let mut pairs = vec![(
                &loaded,
                if warmup {
                    options.warmup
                } else {
                    options.seconds
                },
            )];
            if !warmup && options.single_seconds > 0 {
                pairs.push((&single, options.single_seconds));
            }
            for (index, (load, seconds)) in pairs.into_iter().enumerate() {
                let bare_run = self.wrk(bare, &bare_files(load), load, seconds)?;
                check(&bare_run, config, "bare")?;
                // Palisade is never much faster than the bare service; once it has run,
                // its own rate bounds the next run better.
                let expected = best[index].map_or(bare_run.rps, |best| {
                    (best * 1.5).min(bare_run.rps.max(best))
                });
                let palisade_run =
                    self.palisade_run(config, server, load, seconds, expected, body_bytes)?;
                eprintln!(
                    "[{}] {what}, {} connection(s): bare {} req/s, p99 {:.2} ms | palisade {} req/s, p99 {:.2} ms",
                    config.name,
                    load.connections,
                    report::thousands(bare_run.rps),
                    bare_run.p99_ms,
                    report::thousands(palisade_run.rps),
                    palisade_run.p99_ms
                );
                best[index] =
                    Some(best[index].map_or(palisade_run.rps, |b| b.max(palisade_run.rps)));
                match (warmup, index) {
                    (true, _) => {}
                    (false, 0) => {
                        result.bare.push(bare_run);
                        result.palisade.push(palisade_run);
                    }
                    (false, _) => {
                        result.bare_single.push(bare_run);
                        result.palisade_single.push(palisade_run);
                    }
                }
            }
        }
        Ok(result)
    }

    /// One Palisade run with fresh identities, enough for `expected_rps`.
    fn palisade_run(
        &self,
        config: &Config,
        server: &Service,
        load: &Load,
        seconds: u64,
        expected_rps: f64,
        body_bytes: usize,
    ) -> Result<WrkRun, String> {
        let threads = usize::try_from(load.threads).unwrap_or(1);
        let expected = planned_requests(expected_rps, seconds);
        let budget = identity_budget(config.auth, seconds, body_bytes);
        let count = usize::try_from(expected.div_ceil(budget))
            .unwrap_or(usize::MAX)
            .max(threads);
        let started = Instant::now();
        let identities = match config.auth {
            Auth::ApiKey => Identities::Headers(parallel(count, |_| self.create_key())?),
            Auth::Bearer => Identities::Headers(parallel(count, |_| {
                let client = self.create_client()?;
                let token = token(server.authority(), &client)?;
                for _ in 0..self.options.orders {
                    create_order(
                        server.authority(),
                        ("Authorization", &format!("Bearer {token}")),
                    )?;
                }
                Ok(token)
            })?),
            Auth::Signed => Identities::Signing(parallel(count, |_| self.create_credential())?),
        };
        let file = self
            .dir
            .join(format!("{}-palisade-{}", config.name, load.name));
        let requests = usize::try_from(expected).unwrap_or(usize::MAX);
        self.write_requests(config, server, &identities, requests, load, &file)?;
        eprintln!(
            "[{}] {count} fresh identities for about {expected} requests, ready in {:.1} s",
            config.name,
            started.elapsed().as_secs_f64()
        );
        let run = self.wrk(server, &file, load, seconds)?;
        if config.auth == Auth::Signed && run.wrapped > 0 {
            return Err(format!(
                "bench e2e: [{}] wrk sent more than the {requests} signed requests prepared, so some were replays ({} non-2xx); the estimate (1.25 x the expected rate) was too low",
                config.name, run.non_2xx
            ));
        }
        check(&run, config, "palisade")?;
        Ok(run)
    }

    /// Writes the per-thread request files of a run to `PREFIX.0`, `PREFIX.1`, ...
    fn write_requests(
        &self,
        config: &Config,
        service: &Service,
        identities: &Identities,
        signed_requests: usize,
        load: &Load,
        prefix: &Path,
    ) -> Result<(), String> {
        let host = service.authority();
        let lines: Vec<String> = match identities {
            Identities::Headers(values) => values
                .iter()
                .map(|value| {
                    let header = match config.auth {
                        Auth::Bearer => format!("Authorization: Bearer {value}"),
                        _ => format!("X-API-Key: {value}"),
                    };
                    format!("GET /api/orders HTTP/1.1\tHost: {host}\t{header}\t\t")
                })
                .collect(),
            Identities::Signing(credentials) => sign_requests(host, credentials, signed_requests)?,
        };
        let threads = usize::try_from(load.threads).unwrap_or(1);
        // Every thread needs a request (a single sample identity serves them all).
        let lines: Vec<String> = if lines.len() < threads {
            lines.iter().cycle().take(threads).cloned().collect()
        } else {
            lines
        };
        for thread in 0..threads {
            let mut text = String::new();
            for line in lines.iter().skip(thread).step_by(threads) {
                text.push_str(line);
                text.push('\n');
            }
            let path = PathBuf::from(format!("{}.{thread}", prefix.display()));
            fs::write(&path, text)
                .map_err(|error| format!("bench e2e: writing {}: {error}", path.display()))?;
        }
        Ok(())
    }

    fn wrk(
        &self,
        service: &Service,
        requests: &Path,
        load: &Load,
        seconds: u64,
    ) -> Result<WrkRun, String> {
        self.compilers_seen
            .fetch_max(running_compilers(), Ordering::Relaxed);
        let url = format!("{}/api/orders", service.url);
        let mut command = wrk::command(
            &url,
            &self.script,
            requests,
            load.threads,
            load.connections,
            seconds,
        );
        let ours = self
            .pids
            .lock()
            .map(|pids| pids.clone())
            .unwrap_or_default();
        let before = cpu::sample(&ours);
        let out = command
            .output()
            .map_err(|error| format!("bench e2e: cannot run wrk: {error}"))?;
        if let (Some(before), Some(after)) = (before, cpu::sample(&ours))
            && let (Some(share), Ok(mut shares)) =
                (cpu::others_share(&before, &after), self.other_cpu.lock())
        {
            shares.push(share);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "bench e2e: wrk failed against {} ({}): {}{}",
                service.name,
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        wrk::parse(&text)
    }

    fn unique(&self, what: &str) -> String {
        format!("{what}-{}", self.next_name.fetch_add(1, Ordering::Relaxed))
    }

    fn create_key(&self) -> Result<String, String> {
        let created = self.cli(&[
            "keys",
            "create",
            "--owner",
            OWNER,
            "--scopes",
            "orders:read",
            "--rate-limit",
            "1000000000",
        ])?;
        Self::string_field(&created, "key")
    }

    /// An OAuth client: (client id, secret).
    fn create_client(&self) -> Result<(String, String), String> {
        let name = self.unique("bench-client");
        let created = self.cli(&[
            "clients",
            "create",
            "--name",
            &name,
            "--scopes",
            "orders:read,orders:write",
            "--grant",
            "client_credentials",
        ])?;
        Ok((
            Self::string_field(&created, "client_id")?,
            Self::string_field(&created, "client_secret")?,
        ))
    }

    /// A signing credential: (access key id, secret).
    fn create_credential(&self) -> Result<(String, String), String> {
        let created = self.cli(&[
            "credentials",
            "create",
            "--owner",
            OWNER,
            "--scopes",
            "orders:read",
        ])?;
        Ok((
            Self::string_field(&created, "access_key_id")?,
            Self::string_field(&created, "secret")?,
        ))
    }
}

/// The configuration's run failed: say which and why.
fn check(run: &WrkRun, config: &Config, service: &str) -> Result<(), String> {
    match run.problem() {
        None => Ok(()),
        Some(problem) => Err(format!(
            "bench e2e: [{}] the {service} run is not a clean measurement: {problem}; see target/bench-e2e/ for the logs",
            config.name
        )),
    }
}

/// Requests to prepare for (or spread over identities in) a run.
fn planned_requests(expected_rps: f64, seconds: u64) -> u64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive request count far below 2^52"
    )]
    let planned = (expected_rps.max(1.0) * seconds as f64 * 1.25).ceil() as u64;
    planned + 1_000
}

/// Requests one identity may send in a run of `seconds` while staying clear of its
/// rate limit and of the abuse monitor's response-volume rule.
fn identity_budget(auth: Auth, seconds: u64, body_bytes: usize) -> u64 {
    let abuse = ABUSE_BYTES_PER_IDENTITY / u64::try_from(body_bytes.max(1)).unwrap_or(1);
    let limit = match auth {
        // `--rate-limit 1000000000` per minute.
        Auth::ApiKey => u64::MAX,
        // The enterprise plan: a burst of 1 000 refilled at 100 per second, at most
        // 6 000 per minute; 80% of that.
        Auth::Bearer | Auth::Signed => {
            let capacity = (1_000 + 100 * seconds).min((100 * seconds).max(6_000));
            capacity * 4 / 5
        }
    };
    abuse.min(limit).max(1)
}

/// `count` results of `make`, on as many threads as the machine has cores (the CLI
/// and the seeding requests wait on SQLite as much as on the CPU).
fn parallel<T: Send>(
    count: usize,
    make: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<T, String>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    let workers = (available_cores() * 2).clamp(1, 8).min(count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let made = make(i);
                    let failed = made.is_err();
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(made);
                    }
                    if failed {
                        // Stop the others early.
                        next.store(count, Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    let slots = slots
        .into_inner()
        .map_err(|_| "bench e2e: a set-up thread panicked".to_owned())?;
    let mut made = Vec::with_capacity(count);
    for slot in slots {
        match slot {
            Some(Ok(value)) => made.push(value),
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    if made.len() == count {
        Ok(made)
    } else {
        Err("bench e2e: setting up identities stopped early".into())
    }
}

/// Creates one order for the caller authenticated by `credential` (a header).
fn create_order(authority: &str, credential: (&str, &str)) -> Result<(), String> {
    let response = http::send(
        authority,
        "POST",
        "/api/orders",
        &[credential, ("Content-Type", "application/json")],
        ORDER_BODY.as_bytes(),
    )?;
    if response.status == 201 {
        Ok(())
    } else {
        Err(format!(
            "bench e2e: POST /api/orders answered {}: {}",
            response.status,
            response.text()
        ))
    }
}

/// A client_credentials access token for `client`.
fn token(authority: &str, (client_id, secret): &(String, String)) -> Result<String, String> {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        http::form_encode(client_id),
        http::form_encode(secret),
        http::form_encode("orders:read orders:write"),
    );
    let response = http::send(
        authority,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )?;
    let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    match (response.status, value["access_token"].as_str()) {
        (200, Some(token)) => Ok(token.to_owned()),
        _ => Err(format!(
            "bench e2e: POST /oauth/token answered {}: {}",
            response.status,
            response.text()
        )),
    }
}

/// `count` distinct signed requests (a unique `X-Bench-Nonce` header each, signed like
/// `host` and the date), spread over the credentials in turn, signed now.
fn sign_requests(
    host: &str,
    credentials: &[(String, String)],
    count: usize,
) -> Result<Vec<String>, String> {
    let profile = SigV4Profile::palisade();
    let signers: Vec<SigningCredential> = credentials
        .iter()
        .map(|(id, secret)| SigningCredential::new(id.clone(), Secret::from(secret.as_str())))
        .collect();
    if signers.is_empty() {
        return Err("bench e2e: no signing credential".into());
    }
    let now = SystemTime::now();
    parallel_chunks(count, |i| {
        let signer = &signers[i % signers.len()];
        let nonce = format!("{i:012}");
        let request = Request::new("GET", "/api/orders")
            .header("Host", host)
            .header("X-Bench-Nonce", &nonce);
        let added = sign(&profile, signer, &request, now)
            .map_err(|error| format!("bench e2e: signing: {error}"))?;
        let mut line = format!("GET /api/orders HTTP/1.1\tHost: {host}\tX-Bench-Nonce: {nonce}\t");
        for (name, value) in &added {
            line.push_str(&format!("{name}: {value}\t"));
        }
        line.push('\t');
        Ok(line)
    })
}

/// Like [`parallel`] for many cheap items: one contiguous chunk per core.
fn parallel_chunks(
    count: usize,
    make: impl Fn(usize) -> Result<String, String> + Sync,
) -> Result<Vec<String>, String> {
    let workers = available_cores().max(1);
    let chunk = count.div_ceil(workers).max(1);
    let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let make = &make;
                scope.spawn(move || (start..(start + chunk).min(count)).map(make).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("bench e2e: a signing thread panicked".into()))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

/// The seed page is what the benchmark expects: `orders` orders and no next page.
fn check_page(page: &[u8], orders: usize) -> Result<(), String> {
    let value: Value = serde_json::from_slice(page)
        .map_err(|error| format!("bench e2e: GET /api/orders is not JSON: {error}"))?;
    let found = value["orders"].as_array().map_or(0, Vec::len);
    if found != orders || !value["next_cursor"].is_null() {
        return Err(format!(
            "bench e2e: expected a page of {orders} orders and no cursor, got {found} orders: {value}"
        ));
    }
    Ok(())
}

/// The server reads `PALISADE_*` variables: only the benchmark's own may reach it.
fn clear_palisade_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALISADE_") {
            command.env_remove(name);
        }
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// How many `rustc` processes run right now (other builds on the machine).
fn running_compilers() -> usize {
    processes_named("rustc").len()
}

/// The ids of the processes whose command name is `name`.
fn processes_named(name: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let comm = fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
        .collect()
}

pub(crate) fn load_average() -> Option<String> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

fn wrk_version() -> String {
    Command::new("wrk")
        .arg("-v")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let first = text.lines().next()?.to_owned();
            // "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
            Some(
                first
                    .split(" Copyright")
                    .next()
                    .unwrap_or(&first)
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| "wrk".to_owned())
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub(crate) fn utc_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let minutes = seconds % 86_400 / 60;
    format!(
        "{} {:02}:{:02}",
        crate::release::today(),
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn options_have_defaults_and_flags() {
        let defaults = parse_options(&[]).unwrap();
        assert_eq!(defaults.seconds, 10);
        assert_eq!(defaults.rounds, 3);
        assert_eq!(defaults.connections, 50);
        assert_eq!(defaults.threads, 2);
        assert_eq!(defaults.only.len(), 5);
        let custom = parse_options(&strings(&[
            "--duration",
            "3",
            "--rounds",
            "5",
            "--only",
            "api-key,tls",
            "--no-build",
        ]))
        .unwrap();
        assert_eq!(custom.seconds, 3);
        assert_eq!(custom.rounds, 5);
        assert_eq!(custom.only, ["api-key", "tls"]);
        assert!(!custom.build);
        for bad in [
            &["--duration"][..],
            &["--duration", "ten"],
            &["--rounds", "0"],
            &["--only", "api-key,gopher"],
            &["--orders", "21"],
            &["--threads", "4", "--connections", "2"],
            &["--duration", "300"],
            &["--fast"],
        ] {
            assert!(parse_options(&strings(bad)).is_err(), "{bad:?}");
        }
        assert!(parse_options(&strings(&["--duration", "300", "--only", "jwt"])).is_ok());
    }

    #[test]
    fn budgets_respect_the_limits() {
        // Enterprise plan over 10 s: (1000 + 1000) * 0.8.
        assert_eq!(identity_budget(Auth::Bearer, 10, 100), 1_600);
        // Over 2 minutes the per-minute window caps it: 12 000 * 0.8.
        assert_eq!(identity_budget(Auth::Signed, 120, 100), 9_600);
        // API keys are bound by response volume only: 50 MiB / 5 KiB.
        assert_eq!(identity_budget(Auth::ApiKey, 10, 5 * 1024), 10_240);
        // Large pages make the abuse rule the tighter bound for tokens too.
        assert_eq!(identity_budget(Auth::Bearer, 10, 100 * 1024), 512);
        assert_eq!(planned_requests(1_000.0, 10), 13_500);
    }

    #[test]
    fn ready_lines() {
        let line = r#"{"timestamp":"2026-11-28T00:00:00Z","level":"INFO","fields":{"message":"palisade is serving","url":"http://127.0.0.1:40000","metrics":"http://127.0.0.1:40001/metrics"},"target":"palisade::serve"}"#;
        assert_eq!(
            palisade_ready(line).as_deref(),
            Some("http://127.0.0.1:40000")
        );
        assert_eq!(palisade_ready(r#"{"fields":{"message":"starting"}}"#), None);
        assert_eq!(palisade_ready("not json"), None);
        assert_eq!(
            bare_ready("bare_orders is serving https://127.0.0.1:1234\n").as_deref(),
            Some("https://127.0.0.1:1234")
        );
    }

    #[test]
    fn finds_processes_by_name() {
        let own = fs::read_to_string("/proc/self/comm").unwrap();
        assert!(processes_named(own.trim()).contains(&std::process::id()));
        assert!(processes_named("no-such-process-name").is_empty());
    }

    #[test]
    fn pages_are_checked() {
        let page = br#"{"orders":[{"id":"ord_1"},{"id":"ord_2"}],"next_cursor":null}"#;
        assert!(check_page(page, 2).is_ok());
        assert!(check_page(page, 3).is_err());
        assert!(check_page(br#"{"orders":[{"id":"ord_1"}],"next_cursor":"abc"}"#, 1).is_err());
        assert!(check_page(b"<html>", 1).is_err());
    }

    #[test]
    fn parallel_keeps_order_and_reports_errors() {
        let squares = parallel(50, |i| Ok(i * i)).unwrap();
        assert_eq!(squares, (0..50).map(|i| i * i).collect::<Vec<_>>());
        let failed = parallel(50, |i| if i == 7 { Err("seven".into()) } else { Ok(i) });
        assert!(failed.is_err());
        let lines = parallel_chunks(10, |i| Ok(i.to_string())).unwrap();
        assert_eq!(lines, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn signed_requests_are_distinct_and_complete() {
        let credentials = vec![
            ("AKID1".to_owned(), "secret-one".to_owned()),
            ("AKID2".to_owned(), "secret-two".to_owned()),
        ];
        let lines = sign_requests("127.0.0.1:8080", &credentials, 6).unwrap();
        assert_eq!(lines.len(), 6);
        let unique: std::collections::HashSet<_> = lines.iter().collect();
        assert_eq!(unique.len(), 6);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.starts_with("GET /api/orders HTTP/1.1\tHost: 127.0.0.1:8080\t"));
            assert!(line.ends_with("\t\t"), "{line}");
            assert!(line.contains("X-Palisade-Date: "));
            let id = if i % 2 == 0 { "AKID1" } else { "AKID2" };
            assert!(
                line.contains(&format!(
                    "Authorization: PALISADE-HMAC-SHA256 Credential={id}/"
                )),
                "{line}"
            );
            assert!(
                line.contains("SignedHeaders=host;x-bench-nonce;x-palisade-date"),
                "{line}"
            );
        }
    }
}
