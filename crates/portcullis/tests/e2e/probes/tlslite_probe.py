"""TLS probes a TLS library cannot be talked into: records that well-behaved clients never
send, made with tlslite-ng (a pure-Python TLS implementation). Each prints one line:

  <probe> alert <description>   the server answered with that fatal alert
  <probe> ok <detail>           the server accepted what it should accept
  <probe> reset                 the connection was reset (the bug these probes look for)
  <probe> closed                the server closed without an alert

Usage: tlslite_probe.py HOST PORT CA_FILE PROBE...
Probes: keyupdate-ok, keyupdate-fragmented, keyupdate-appdata-between,
zero-length-data-after-handshake
"""
import socket
import sys

from tlslite import HandshakeSettings, TLSConnection
from tlslite.constants import ContentType, KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError, TLSRemoteAlert
from tlslite.messages import ApplicationData, KeyUpdate, Message


def connect(host, port):
    sock = socket.create_connection((host, port), timeout=10)
    conn = TLSConnection(sock)
    settings = HandshakeSettings()
    settings.minVersion = (3, 4)
    settings.maxVersion = (3, 4)
    conn.handshakeClientCert(settings=settings, serverName="localhost", alpn=[b"http/1.1"])
    return conn


def request(conn):
    conn.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"hello" not in data and b"\r\n\r\n" not in data:
        chunk = conn.read(max=4096)
        if not chunk:
            break
        data += bytes(chunk)
    return data.split(b"\r\n", 1)[0].decode()


def outcome(name, action):
    try:
        detail = action()
        print(f"{name} ok {detail}")
    except TLSRemoteAlert as alert:
        print(f"{name} alert {alert.description}")
    except ConnectionResetError:
        print(f"{name} reset")
    except TLSAbruptCloseError:
        print(f"{name} closed")
    except OSError as e:
        print(f"{name} reset" if "reset" in str(e).lower() else f"{name} error {e}")


def keyupdate(host, port, fragmented):
    conn = connect(host, port)
    status = request(conn)
    if fragmented:
        # A KeyUpdate is 5 bytes; records of 2 bytes split it over three records.
        conn.recordSize = 2
    for _ in conn.send_keyupdate_request(KeyUpdateMessageType.update_not_requested):
        pass
    conn.recordSize = 2**14
    return request(conn) + " after " + status


def keyupdate_appdata_between(host, port):
    """A KeyUpdate split over two records with application data between them: RFC 8446 §5.1
    forbids it, so the server must refuse, and refuse cleanly."""
    conn = connect(host, port)
    status = request(conn)
    update = KeyUpdate().create(KeyUpdateMessageType.update_not_requested).write()
    for _ in conn._sendMsg(Message(ContentType.handshake, update[:2])):
        pass
    for _ in conn._sendMsg(ApplicationData().create(bytearray(b"GET"))):
        pass
    for _ in conn._sendMsg(Message(ContentType.handshake, update[2:]), update_hashes=False):
        pass
    data = conn.read(max=4096)
    return f"read {len(data)} bytes after {status}"


def zero_length_data(host, port):
    conn = connect(host, port)
    for _ in conn._sendMsg(ApplicationData().create(bytearray(0))):
        pass
    return request(conn)


def main():
    host, port, _ca, *probes = sys.argv[1:]
    port = int(port)
    for probe in probes:
        if probe == "keyupdate-fragmented":
            outcome(probe, lambda: keyupdate(host, port, True))
        elif probe == "keyupdate-ok":
            outcome(probe, lambda: keyupdate(host, port, False))
        elif probe == "keyupdate-appdata-between":
            outcome(probe, lambda: keyupdate_appdata_between(host, port))
        elif probe == "zero-length-data-after-handshake":
            outcome(probe, lambda: zero_length_data(host, port))
        else:
            print(f"{probe} unknown")


main()
