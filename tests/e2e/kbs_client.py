# Test-side KBS client pieces for tests/e2e/kbs*.sh, independent of cloister's C code:
# python3-jwcrypto makes the TEE key and decrypts the JWE.
#   keygen DIR                    -> DIR/key.json (private JWK), DIR/pub.json
#   runtime NONCE DIR             -> DIR/rd.json (runtime data); prints REPORT_DATA hex
#   attest DIR EVIDENCE TEE [INIT] -> prints the attest request body
#   decrypt DIR JWE_FILE          -> plaintext on stdout
import base64, hashlib, json, sys
from jwcrypto import jwe, jwk

cmd = sys.argv[1]
if cmd == "keygen":
    k = jwk.JWK.generate(kty="EC", crv="P-256")
    open(sys.argv[2] + "/key.json", "w").write(k.export_private())
    pub = json.loads(k.export_public())
    pub["alg"] = "ECDH-ES+A256KW"
    pub.pop("kid", None)
    open(sys.argv[2] + "/pub.json", "w").write(json.dumps(pub))
elif cmd == "runtime":
    pub = json.load(open(sys.argv[3] + "/pub.json"))
    rd = {"nonce": sys.argv[2], "tee-pubkey": pub}
    canon = json.dumps(rd, sort_keys=True, separators=(",", ":"))
    open(sys.argv[3] + "/rd.json", "w").write(canon)
    print((hashlib.sha384(canon.encode()).digest() + bytes(16)).hex())
elif cmd == "attest":
    rd = json.load(open(sys.argv[2] + "/rd.json"))
    ev = base64.b64encode(open(sys.argv[3], "rb").read()).decode()
    body = {"runtime-data": rd, "tee-evidence": {"report": ev}}
    if len(sys.argv) > 5:
        body["init-data"] = {"format": "toml", "body": open(sys.argv[5]).read()}
    print(json.dumps(body))
elif cmd == "decrypt":
    k = jwk.JWK(**json.load(open(sys.argv[2] + "/key.json")))
    t = jwe.JWE()
    t.deserialize(open(sys.argv[3]).read(), key=k)
    sys.stdout.buffer.write(t.payload)
