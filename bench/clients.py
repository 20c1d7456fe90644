#!/usr/bin/env python3
"""TLS clients of the benchmark that h2load and curl cannot be (Python 3 standard library only).

  clients.py resume PORT N        N sequential connections, each resuming the session of the one
                                  before (TLS 1.3 ticket) and sending one GET / with
                                  Connection: close; prints JSON with how many were resumed.
  clients.py idle PORT N [HOLD]   opens N keep-alive connections (handshake, one GET /, response
                                  read), prints JSON {"open": N} when all are open, then holds
                                  them idle until stdin closes or HOLD seconds pass; prints how
                                  many the server closed meanwhile.
  clients.py close-notify PORT    one GET / with Connection: close; prints whether the server
                                  ended the TLS stream with close_notify or a bare TCP close.
"""
import asyncio
import json
import resource
import socket
import ssl
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n%s\r\n"


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def parse_head(head):
    """(status line, content length or None for chunked)."""
    lines = head.split(b"\r\n")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            length = None
            break
    else:
        length = length or 0
    return lines[0], length


def read_response(sock):
    """Reads one response (Content-Length or chunked body); returns (status line, body)."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("closed inside a response")
            buf += more

    def line():
        nonlocal buf
        while b"\r\n" not in buf:
            need(len(buf) + 1)
        out, _, buf = buf.partition(b"\r\n")
        return out

    while b"\r\n\r\n" not in buf:
        need(len(buf) + 1)
    head, _, buf = buf.partition(b"\r\n\r\n")
    status, length = parse_head(head)
    if length is not None:
        need(length)
        return status, buf[:length]
    body = b""
    while True:
        size = int(line().split(b";")[0], 16)
        if size == 0:
            line()
            return status, body
        need(size + 2)
        body, buf = body + buf[:size], buf[size + 2:]


async def read_response_async(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status, length = parse_head(head[:-4])
    if length is not None:
        return status, await reader.readexactly(length)
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, body
        body += (await reader.readexactly(size + 2))[:size]


def resume(port, n):
    ctx = context()
    session = None
    resumed = full = 0
    start = time.perf_counter()
    for _ in range(n + 1):  # the first one (full) only gets the first ticket
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                if session is not None:
                    if tls.session_reused:
                        resumed += 1
                    else:
                        full += 1
                tls.sendall(REQUEST % b"Connection: close\r\n")
                status, body = read_response(tls)
                if b" 200 " not in status + b" " or body != b"hello world\n":
                    raise RuntimeError(f"bad response {status!r} {body!r}")
                session = tls.session  # the newest ticket, as a browser would keep it
    seconds = time.perf_counter() - start
    print(json.dumps({"connections": n, "resumed": resumed, "full": full, "seconds": seconds}))


async def idle(port, n, hold):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1000)), hard))
    ctx = context()
    gate = asyncio.Semaphore(64)  # handshakes in flight
    conns = []

    async def open_one():
        async with gate:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
            writer.write(REQUEST % b"")
            await writer.drain()
            _, body = await read_response_async(reader)
            if body != b"hello world\n":
                raise RuntimeError(f"bad body {body!r}")
            conns.append((reader, writer))

    start = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(n)))
    watchers = [asyncio.ensure_future(r.read(1)) for r, _ in conns]
    print(json.dumps({"open": len(conns), "seconds": time.perf_counter() - start}), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait([stdin_closed], timeout=hold)
    closed = sum(1 for w in watchers if w.done())
    for w in watchers:
        w.cancel()
    for _, writer in conns:
        writer.transport.abort()
    print(json.dumps({"closed_by_server": closed}), flush=True)


def close_notify(port):
    ctx = context()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
            tls.sendall(REQUEST % b"Connection: close\r\n")
            data = b""
            try:
                while True:
                    more = tls.recv(65536)
                    if not more:
                        result = "close_notify"
                        break
                    data += more
            except ssl.SSLEOFError:
                result = "tcp close without close_notify"
            except ConnectionResetError:
                result = "tcp reset"
    print(json.dumps({"close": result, "response_ok": b"hello world\n" in data}))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "resume":
        resume(port, int(sys.argv[3]))
    elif mode == "idle":
        hold = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
        asyncio.run(idle(port, int(sys.argv[3]), hold))
    elif mode == "close-notify":
        close_notify(port)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
