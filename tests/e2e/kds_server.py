"""Loopback static server laid out like AMD KDS (the query string is ignored).

usage: kds_server.py ROOT PORTFILE -- serves ROOT on an ephemeral port on
127.0.0.1, writes the port to PORTFILE, logs request lines to stderr.
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (args[0] if args else fmt))
        sys.stderr.flush()


def main():
    root, portfile = sys.argv[1], sys.argv[2]
    handler = functools.partial(Handler, directory=root)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as srv:
        with open(portfile + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.rename(portfile + ".tmp", portfile)
        srv.serve_forever()


if __name__ == "__main__":
    main()
