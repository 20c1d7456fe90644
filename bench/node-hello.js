// The Node server of the benchmark: the seed example (https.createServer, writeHead(200),
// end('hello world\n')), with X25519 as every server in the benchmark and a keep-alive timeout
// longer than the idle-connection measurement. Also /bulk (1 GiB, a 64 KiB chunk repeated)
// and /stats (the handshakes seen so far: `full N resumed M`).
//
//   node bench/node-hello.js PORT CERT KEY
'use strict';
const fs = require('fs');
const https = require('https');

const [port, cert, key] = process.argv.slice(2);
const chunk = Buffer.alloc(64 * 1024, 'x');
const BULK_CHUNKS = 16384; // 1 GiB
let full = 0;
let resumed = 0;

const server = https.createServer(
  { key: fs.readFileSync(key), cert: fs.readFileSync(cert), ecdhCurve: 'X25519' },
  (req, res) => {
    if (req.url === '/bulk') {
      res.writeHead(200, { 'content-length': BULK_CHUNKS * chunk.length });
      let left = BULK_CHUNKS;
      const pump = () => {
        while (left > 0) {
          left -= 1;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    } else if (req.url === '/stats') {
      res.writeHead(200);
      res.end(`full ${full} resumed ${resumed}\n`);
    } else {
      res.writeHead(200);
      res.end('hello world\n');
    }
  },
);
server.on('secureConnection', (socket) => {
  if (socket.isSessionReused()) resumed += 1;
  else full += 1;
});
server.keepAliveTimeout = 600000;
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on https://127.0.0.1:${server.address().port}`);
});
