// The client row of the benchmark: Node's https.Agent({ keepAlive: true }) with CONCURRENCY
// requests in flight, TOTAL requests of GET URL after a warm-up. Prints one JSON line:
// requests, seconds, requests/s, the client's CPU (user + system) in µs per request and its RSS
// after the run.
//
//   node bench/node-client.js URL TOTAL CONCURRENCY [TLS13_SUITE]
'use strict';
const https = require('https');

const [url, totalArg, concurrencyArg, suite] = process.argv.slice(2);
const total = Number(totalArg);
const concurrency = Number(concurrencyArg);
const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency });
const options = { agent, rejectUnauthorized: false, ecdhCurve: 'X25519', minVersion: 'TLSv1.3' };
if (suite) options.ciphers = suite;

function get() {
  return new Promise((resolve, reject) => {
    https
      .get(url, options, (res) => {
        let bytes = 0;
        res.on('data', (d) => { bytes += d.length; });
        res.on('end', () => (res.statusCode === 200 && bytes === 12 ? resolve() : reject(new Error(`status ${res.statusCode}, ${bytes} bytes`))));
      })
      .on('error', reject);
  });
}

async function run(count) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      await get();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

(async () => {
  await run(Math.min(total, 5000)); // warm-up: connections open, JIT warm
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(total);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({
    requests: total,
    seconds,
    rps: total / seconds,
    client_cpu_us_per_req: (cpu.user + cpu.system) / total,
    sockets: Object.values(agent.freeSockets).reduce((n, s) => n + s.length, 0),
    rss_bytes: process.memoryUsage().rss,
  }));
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
