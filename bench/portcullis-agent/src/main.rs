//! The client row of the benchmark, portcullis's side:
//! `portcullis-agent URL CA_FILE TOTAL CONCURRENCY [TLS13_SUITE]`.
//!
//! `portcullis::client::Agent` with keep-alive (at most CONCURRENCY sockets, like
//! bench/node-client.js's `maxSockets`), CONCURRENCY tasks on a current_thread runtime, each
//! sending GET URL and reading the body with `.bytes()`, TOTAL requests after a warm-up. Prints
//! one JSON line: requests, seconds, requests/s, the process's CPU (utime + stime from
//! /proc/self/stat) in µs per request, its RSS after the run and the runtime's live tasks.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use portcullis::client::Agent;
use portcullis::tls::{danger, load_certificates, ClientTlsOptions};

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    // fields 14 and 15 of stat(5); fields[0] is field 3
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// VmRSS of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux architecture (the value of
/// sysconf(_SC_CLK_TCK), read here without libc).
const CLK_TCK: f64 = 100.0;

type BoxError = Box<dyn std::error::Error>;

/// TOTAL requests, CONCURRENCY tasks in flight; the first failure ends the run with an error.
async fn run(agent: &Agent, url: &str, total: usize, concurrency: usize) -> Result<(), BoxError> {
    let next = Rc::new(Cell::new(0usize));
    let local = tokio::task::LocalSet::new();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (agent, url, next) = (agent.clone(), url.to_owned(), next.clone());
            local.spawn_local(async move {
                while next.get() < total {
                    next.set(next.get() + 1);
                    let res = agent.get(&url).send().await.map_err(|e| e.to_string())?;
                    let status = res.status();
                    let body = res.bytes().await.map_err(|e| e.to_string())?;
                    if status != 200 || body.len() != 12 {
                        return Err(format!("status {status}, {} bytes", body.len()));
                    }
                }
                Ok(())
            })
        })
        .collect();
    local
        .run_until(async {
            for task in tasks {
                task.await??;
            }
            Ok(())
        })
        .await
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: portcullis-agent URL CA_FILE TOTAL CONCURRENCY [TLS13_SUITE]");
        std::process::exit(2);
    }
    let (url, ca) = (&args[1], &args[2]);
    let total: usize = args[3].parse()?;
    let concurrency: usize = args[4].parse()?;
    // The run's certificate is self-signed with CA:TRUE, which webpki refuses as an end entity
    // (CaUsedAsEndEntity): like bench/node-client.js (`rejectUnauthorized: false`), the chain is
    // still checked and reported, not enforced.
    let mut tls = danger::reject_unauthorized(ClientTlsOptions::new().ca(load_certificates(ca)?), false);
    if let Some(suite) = args.get(5) {
        // The old name: this program is also built against earlier library versions
        // (bench/run.sh --baseline), which lack cipher_suites.
        #[allow(deprecated)]
        {
            tls = tls.ciphers(suite.clone());
        }
    }
    let agent = Agent::builder()
        .keep_alive(true)
        .max_sockets(concurrency)
        .no_proxy()
        .tls(tls)
        .build()
        .agent();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        run(&agent, url, total.min(5000), concurrency).await?; // warm-up: connections open
        let cpu0 = cpu_ticks();
        let t0 = Instant::now();
        run(&agent, url, total, concurrency).await?;
        let seconds = t0.elapsed().as_secs_f64();
        let cpu_s = (cpu_ticks() - cpu0) as f64 / CLK_TCK;
        println!(
            "{{\"requests\": {total}, \"seconds\": {seconds:.6}, \"rps\": {:.1}, \"client_cpu_s\": {cpu_s:.3}, \
             \"client_cpu_us_per_req\": {:.2}, \"sockets\": {}, \"rss_bytes\": {}, \"alive_tasks\": {}}}",
            total as f64 / seconds,
            cpu_s * 1e6 / total as f64,
            agent.sockets(),
            rss_bytes(),
            tokio::runtime::Handle::current().metrics().num_alive_tasks()
        );
        Ok(())
    })
}

/// `AgentBuilder::build` returns a `Result` since the builder convention of issue 12 and the
/// agent itself before: this program is also built against earlier versions (`--baseline`).
trait Built {
    fn agent(self) -> Agent;
}

impl Built for Agent {
    fn agent(self) -> Agent {
        self
    }
}

impl Built for portcullis::Result<Agent> {
    fn agent(self) -> Agent {
        self.expect("the agent's TLS options")
    }
}
