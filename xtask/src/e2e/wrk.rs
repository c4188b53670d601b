//! Driving `wrk` and reading what it prints.
//!
//! Every run, bare or Palisade, goes through the same Lua script: each wrk thread sends
//! the raw requests of its own file in order, starting over at the end (so the load
//! generator does the same work for both services). The files hold one request per
//! line with CR LF written as TAB. Signed requests are single-use, so their files hold
//! more requests than a run sends; the script counts how often a thread started over
//! (`wrapped: N` after the run) so that a replay is reported as such.

use std::path::Path;
use std::process::Command;

/// The script of every run. `args[1]` is the prefix of the per-thread request files
/// (`PREFIX.0`, `PREFIX.1`, ...).
pub(crate) const SCRIPT: &str = r#"-- Written by `cargo xtask bench e2e`: each thread sends the requests of its own file
-- (one raw request per line, CR LF written as TAB), in order, starting over at the end.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  queue = {}
  for line in io.lines(args[1] .. "." .. id) do
    queue[#queue + 1] = (line:gsub("\t", "\r\n"))
  end
  if #queue == 0 then
    error("no requests in " .. args[1] .. "." .. id)
  end
  position = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #queue then
    position = 1
    wrapped = wrapped + 1
  end
  return queue[position]
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("wrapped")
  end
  io.write(string.format("wrapped: %d\n", total))
end
"#;

/// What one wrk run measured.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WrkRun {
    /// Requests completed.
    pub(crate) requests: u64,
    /// Requests per second.
    pub(crate) rps: f64,
    /// Median latency in milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub(crate) p99_ms: f64,
    /// Responses that were not 2xx or 3xx.
    pub(crate) non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub(crate) socket_errors: u64,
    /// How often a thread went through its whole request file and started over.
    pub(crate) wrapped: u64,
}

impl WrkRun {
    /// Anything that makes the run unusable as a measurement of the success path.
    pub(crate) fn problem(&self) -> Option<String> {
        let mut problems = Vec::new();
        if self.requests == 0 {
            problems.push("no request completed".to_owned());
        }
        if self.non_2xx > 0 {
            problems.push(format!(
                "{} of {} responses were not 2xx",
                self.non_2xx, self.requests
            ));
        }
        if self.socket_errors > 0 {
            problems.push(format!("{} socket errors", self.socket_errors));
        }
        (!problems.is_empty()).then(|| problems.join(", "))
    }
}

/// The wrk command of one run.
pub(crate) fn command(
    url: &str,
    script: &Path,
    requests_prefix: &Path,
    threads: u32,
    connections: u32,
    seconds: u64,
) -> Command {
    let mut wrk = Command::new("wrk");
    wrk.arg("--latency")
        .args(["-t", &threads.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .arg("-s")
        .arg(script)
        .arg(url)
        .arg("--")
        .arg(requests_prefix);
    wrk
}

/// Reads wrk's report (`--latency`, with the script's `wrapped:` line).
pub(crate) fn parse(output: &str) -> Result<WrkRun, String> {
    let mut requests = None;
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    let mut wrapped = 0;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = Some(number(rest.trim(), line)?);
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = Some(duration_ms(rest.trim())?);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = Some(duration_ms(rest.trim())?);
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = count(rest.trim(), line)?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 5"
            for part in rest.split(',') {
                let value = part.split_whitespace().last().unwrap_or_default();
                socket_errors += count(value, line)?;
            }
        } else if let Some(rest) = line.strip_prefix("wrapped:") {
            wrapped = count(rest.trim(), line)?;
        } else if let Some((total, _)) = line.split_once(" requests in ") {
            requests = Some(count(total.trim(), line)?);
        }
    }
    let missing = |what: &str| format!("wrk: no {what} in its output:\n{output}");
    Ok(WrkRun {
        requests: requests.ok_or_else(|| missing("request count"))?,
        rps: rps.ok_or_else(|| missing("Requests/sec"))?,
        p50_ms: p50.ok_or_else(|| missing("50% latency (was --latency given?)"))?,
        p99_ms: p99.ok_or_else(|| missing("99% latency (was --latency given?)"))?,
        non_2xx,
        socket_errors,
        wrapped,
    })
}

fn number(text: &str, line: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("wrk: cannot read the number in `{line}`"))
}

fn count(text: &str, line: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("wrk: cannot read the count in `{line}`"))
}

/// wrk's durations: `850.00us`, `1.23ms`, `2.50s`, `1.00m`, `1.00h`.
fn duration_ms(text: &str) -> Result<f64, String> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("wrk: `{text}` has no unit"))?;
    let (value, unit) = text.split_at(split);
    let value = number(value, text)?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3_600e3,
        _ => return Err(format!("wrk: unknown time unit in `{text}`")),
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "Running 10s test @ http://127.0.0.1:41234/api/orders
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    1.02ms  31.85ms   83.17%
    Req/Sec    10.98k   612.45    12.21k    71.50%
  Latency Distribution
     50%    2.12ms
     75%    2.71ms
     90%    3.39ms
     99%  850.00us
  218588 requests in 10.01s, 1.05GB read
Requests/sec:  21837.46
Transfer/sec:    107.22MB
wrapped: 4
";

    #[test]
    fn reads_a_clean_run() {
        let run = parse(CLEAN).unwrap();
        assert_eq!(
            run,
            WrkRun {
                requests: 218_588,
                rps: 21_837.46,
                p50_ms: 2.12,
                p99_ms: 0.85,
                non_2xx: 0,
                socket_errors: 0,
                wrapped: 4,
            }
        );
        assert_eq!(run.problem(), None);
    }

    #[test]
    fn counts_errors_and_reads_every_unit() {
        let output = CLEAN
            .replace("99%  850.00us", "99%    1.50s")
            .replace("50%    2.12ms", "50%    1.00m")
            .replace(
                "Requests/sec:",
                "  Socket errors: connect 1, read 2, write 0, timeout 7\n  Non-2xx or 3xx responses: 12\nRequests/sec:",
            );
        let run = parse(&output).unwrap();
        assert!((run.p99_ms - 1_500.0).abs() < 1e-9);
        assert!((run.p50_ms - 60_000.0).abs() < 1e-9);
        assert_eq!(run.non_2xx, 12);
        assert_eq!(run.socket_errors, 10);
        let problem = run.problem().unwrap();
        assert!(
            problem.contains("12 of 218588 responses were not 2xx"),
            "{problem}"
        );
        assert!(problem.contains("10 socket errors"), "{problem}");
        assert_eq!(duration_ms("2.00h").unwrap(), 7_200_000.0);
    }

    #[test]
    fn refuses_incomplete_or_garbled_output() {
        assert!(parse("").is_err());
        let no_latency = CLEAN.replace("     99%  850.00us\n", "");
        assert!(parse(&no_latency).unwrap_err().contains("99%"));
        let garbled = CLEAN.replace("21837.46", "lots");
        assert!(parse(&garbled).is_err());
        assert!(parse(&CLEAN.replace("850.00us", "850.00")).is_err());
        assert!(parse(&CLEAN.replace("850.00us", "850.00ns")).is_err());
    }

    #[test]
    fn an_empty_run_is_a_problem() {
        let mut run = parse(CLEAN).unwrap();
        run.requests = 0;
        assert_eq!(run.problem().unwrap(), "no request completed");
    }
}
