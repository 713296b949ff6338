#!/usr/bin/python3
"""Helpers for tests/e2e/ratls.sh (python3 stdlib only).

  upstream DIR PORTFILE HITS   HTTP upstream: GET serves files from DIR, POST
                               echoes the body; appends one line per request to HITS
  relay TARGET PORTFILE OUT    accept one connection, relay it to TARGET, save
                               what the server sent to OUT
  replay IN PORTFILE           accept connections, answer each with the bytes of IN
  freeport                     print a free loopback port
  extvalue PEM OID_DER_HEX     print the hex extnValue of an extension
"""
import http.server, os, socket, socketserver, subprocess, sys, threading


def ready(portfile, port):
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)


def upstream(root, portfile, hits):
    class H(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a, **k):
            super().__init__(*a, directory=root, **k)

        def log_message(self, *a):
            pass

        def hit(self):
            with open(hits, "a") as f:
                f.write("%s %s\n" % (self.command, self.path))

        def do_GET(self):
            self.hit()
            super().do_GET()

        def do_POST(self):
            self.hit()
            n = int(self.headers.get("Content-Length", "0"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            while n > 0:
                b = self.rfile.read(min(n, 1 << 20))
                if not b:
                    break
                self.wfile.write(b)
                n -= len(b)

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    s = S(("127.0.0.1", 0), H)
    ready(portfile, s.server_address[1])
    s.serve_forever()


def pump(a, b, out=None):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if out is not None:
                out.append(d)
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def relay(target, portfile, outpath):
    host, port = target.rsplit(":", 1)
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    ready(portfile, l.getsockname()[1])
    c, _ = l.accept()
    s = socket.create_connection((host, int(port)))
    got = []
    t = threading.Thread(target=pump, args=(c, s))
    t.start()
    pump(s, c, got)
    t.join()
    with open(outpath, "wb") as f:
        f.write(b"".join(got))


def replay(inpath, portfile):
    data = open(inpath, "rb").read()
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(8)
    ready(portfile, l.getsockname()[1])
    while True:
        c, _ = l.accept()
        try:
            c.recv(65536)
            c.sendall(data)
            c.settimeout(5)
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()


def extvalue(pem, oid_hex):
    der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    oid = bytes.fromhex(oid_hex)
    i = der.index(oid) + len(oid)
    if der[i] == 0x01:  # critical BOOLEAN
        i += 3
    assert der[i] == 0x04
    n = der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    print(der[i:i + n].hex())


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "upstream":
        upstream(*sys.argv[2:5])
    elif cmd == "relay":
        relay(*sys.argv[2:5])
    elif cmd == "replay":
        replay(*sys.argv[2:4])
    elif cmd == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    elif cmd == "extvalue":
        extvalue(sys.argv[2], sys.argv[3])
    else:
        sys.exit(2)
