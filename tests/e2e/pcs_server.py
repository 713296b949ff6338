#!/usr/bin/env python3
"""Loopback stand-in for Intel PCS v4 / PCCS, serving recorded collateral.

Responses are rebuilt from a dcap-qvl collateral JSON file: the signed
tcb_info / qe_identity text becomes the PCS body ({"tcbInfo": ..., "signature":
...}) byte for byte, issuer chains go URL-encoded into the PCS headers, CRLs
are served as DER (PCK CRL) and hex (root CA CRL, as a PCCS does).

    pcs_server.py COLLATERAL.json PORT_FILE [LOG_FILE]

Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, appends one
line per request path to LOG_FILE, and serves until killed.
"""
import http.server
import json
import sys
import urllib.parse


def main():
    coll = json.load(open(sys.argv[1]))
    port_file = sys.argv[2]
    log_file = sys.argv[3] if len(sys.argv) > 3 else None
    tee = json.loads(coll["tcb_info"])["id"].lower()
    fmspc = json.loads(coll["tcb_info"])["fmspc"].upper()
    quote = lambda s: urllib.parse.quote(s, safe="")

    tcb_body = ('{"tcbInfo":%s,"signature":"%s"}' % (coll["tcb_info"], coll["tcb_info_signature"])).encode()
    qe_body = ('{"enclaveIdentity":%s,"signature":"%s"}' % (coll["qe_identity"], coll["qe_identity_signature"])).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, body, headers=()):
            self.send_response(200)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            if log_file:
                with open(log_file, "a") as f:
                    f.write(url.path + "\n")
            if url.path == "/%s/certification/v4/tcb" % tee and q.get("fmspc", [""])[0].upper() == fmspc:
                self.reply(tcb_body, [("TCB-Info-Issuer-Chain", quote(coll["tcb_info_issuer_chain"]))])
            elif url.path == "/%s/certification/v4/qe/identity" % tee:
                self.reply(qe_body, [("SGX-Enclave-Identity-Issuer-Chain", quote(coll["qe_identity_issuer_chain"]))])
            elif url.path == "/sgx/certification/v4/pckcrl" and q.get("ca", [""])[0] in ("platform", "processor"):
                self.reply(bytes.fromhex(coll["pck_crl"]),
                           [("SGX-PCK-CRL-Issuer-Chain", quote(coll["pck_crl_issuer_chain"]))])
            elif url.path == "/sgx/certification/v4/rootcacrl":
                self.reply(coll["root_ca_crl"].encode())
            else:
                self.send_error(404)

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
