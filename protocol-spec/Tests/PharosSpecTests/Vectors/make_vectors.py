#!/usr/bin/env python3
"""Independent writer of PharosVPN format test vectors.

This is a second implementation of the upstream formats (Python: PyNaCl for
XChaCha20-Poly1305, argon2-cffi for Argon2id, `cryptography` for X25519, Ed25519,
HKDF and certificates), written from the format description, not from our Swift
code. The Swift tests open what it writes and, where the randomness is pinned,
must produce the same bytes. Regenerate with:

    pip install pynacl argon2-cffi cryptography
    python3 make_vectors.py

Keys and nonces come from a fixed seed so the output is reproducible.
"""
import base64, datetime, hashlib, json, os
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
import nacl.bindings as sodium
import argon2.low_level as argon2

HERE = os.path.dirname(os.path.abspath(__file__))

def det(label, n):
    """Deterministic test bytes."""
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]

def b64(b):
    return None if b is None else base64.b64encode(b).decode()

def compact(obj):
    # Go's json.Marshal: no spaces; this data is ASCII-only, so no escaping differs.
    return json.dumps(obj, separators=(",", ":")).encode()

def indented(obj):
    # Go's json.MarshalIndent(v, "", "  ").
    return json.dumps(obj, indent=2).encode()

def raw(k):
    return k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())

def raw_pub(k):
    return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def xchacha_seal(key, nonce, pt, aad=None):
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, aad, nonce, key)

def argon2id(password, salt):
    return argon2.hash_secret_raw(password, salt, time_cost=1, memory_cost=65536, parallelism=4,
                                  hash_len=32, type=argon2.Type.ID)

recipient = x25519.X25519PrivateKey.from_private_bytes(det("recipient", 32))
signer = ed25519.Ed25519PrivateKey.from_private_bytes(det("signer", 32))

def seal(plaintext, tag):
    data_key = det(tag + "/data-key", 32)
    eph = x25519.X25519PrivateKey.from_private_bytes(det(tag + "/ephemeral", 32))
    wn, n = det(tag + "/wn", 24), det(tag + "/n", 24)
    shared = eph.exchange(recipient.public_key())
    wrap_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"pharosvpn/profile/keywrap/v1").derive(shared)
    bundle = {"v": 1, "epk": b64(raw_pub(eph.public_key())), "wn": b64(wn),
              "wk": b64(xchacha_seal(wrap_key, wn, data_key)), "n": b64(n),
              "ct": b64(xchacha_seal(data_key, n, plaintext)), "sig": None}
    bundle["sig"] = b64(signer.sign(compact(bundle)))
    randomness = {"data_key": b64(data_key), "ephemeral_private": b64(raw(eph)), "wn": b64(wn), "n": b64(n)}
    return bundle, randomness

profile_bundle = {
    "fleet_id": "flt_vectors",
    "user": "ada@example.org",
    "revision": 7,
    "issued_at": "2026-11-25T08:00:00Z",
    "expires_at": "2027-11-25T08:00:00Z",
    "profiles": [{
        "id": "prf_aaaaaaaaaaaaaaaa", "name": "Amsterdam", "protocol": "both",
        "nodes": [{
            "id": "nod_aaaaaaaaaaaaaaaa", "name": "ams-1", "region": "eu-west",
            "endpoints": ["198.51.100.10", "198.51.100.11"],
            "protocols": [
                {"type": "amneziawg", "v": 1, "params": {
                    "private_key": b64(det("awg-client", 32)), "address": "10.86.0.5/32",
                    "public_key": b64(det("awg-node", 32)), "preshared_key": b64(det("psk", 32)),
                    "endpoints": [{"ip": "198.51.100.10", "port_min": 2000, "port_max": 60000}],
                    "rotation": {"enabled": False, "interval_seconds": 600, "jitter_seconds": 120},
                    "allowed_ips": ["0.0.0.0/0", "::/0"],
                    "obfuscation": {"jc": 4, "jmin": 40, "jmax": 800, "s1": 20, "s2": 30, "s3": 40, "s4": 50,
                                    "h1": 11111, "h2": 22222, "h3": 33333, "h4": 44444}}},
                {"type": "xray-reality", "v": 1, "params": {
                    "uuid": "0b6f9a2e-7c1d-4e5f-8a9b-1c2d3e4f5a6b", "flow": "xtls-rprx-vision",
                    "address": "10.86.0.5/32", "public_key": "bm9kZS1yZWFsaXR5LXB1YmxpYy1rZXktMzJieXRlcw",
                    "server_name": "www.microsoft.com", "short_id": "", "fingerprint": "chrome",
                    "endpoints": [], "allowed_ips": ["0.0.0.0/0"]}},
                {"type": "wireguard-quantum", "v": 3, "params": {"anything": [1, 2, 3]}}]}],
        "path": {"name": "direct", "hops": [{"id": "nod_aaaaaaaaaaaaaaaa", "name": "ams-1", "region": "eu-west",
                                              "role": "entry", "ips": ["198.51.100.10"]}]},
        "mtu": 1380}],
    "control": {"label": "home", "city": "Amsterdam", "lat": 52.3676, "lon": 4.9041},
}
plaintext = compact(profile_bundle)

files = {}
bundle, randomness = seal(plaintext, "sealed")
files["sealed_bundle.json"] = indented(bundle)
files["keys.json"] = indented({
    "recipient_private": b64(raw(recipient)), "recipient_public": b64(raw_pub(recipient.public_key())),
    "signing_private": b64(raw(signer)), "signing_public": b64(raw_pub(signer.public_key())),
    "sealed_bundle_randomness": randomness, "password": "correct horse battery staple",
})
files["profile_bundle.json"] = plaintext

# .pharos, none / password / account
files["profile_none.pharos"] = indented({"fmt": "pharos-profile", "v": 1, "enc": "none", "payload": profile_bundle})
salt, nonce = det("pw/salt", 16), det("pw/nonce", 24)
header = {"fmt": "pharos-profile", "v": 1, "enc": "password",
          "kdf": {"algo": "argon2id", "t": 1, "m": 65536, "p": 4, "salt": b64(salt)}, "nonce": b64(nonce), "payload": None}
ct = xchacha_seal(argon2id(b"correct horse battery staple", salt), nonce, plaintext, compact(header))
files["profile_password.pharos"] = indented(dict(header, payload=b64(ct)))
account_bundle, _ = seal(plaintext, "account")
files["profile_account.pharos"] = indented({"fmt": "pharos-profile", "v": 1, "enc": "account", "payload": account_bundle})

# Passphrase-wrapped account private key.
wsalt, wnonce = det("wrap/salt", 16), det("wrap/nonce", 24)
files["wrapped_key.json"] = compact({"v": 1, "salt": b64(wsalt), "n": b64(wnonce),
                                     "ct": b64(xchacha_seal(argon2id(b"correct horse battery staple", wsalt), wnonce, raw(recipient)))})

# A device leaf, its key, and a .pharosid.
device_key = ec.derive_private_key(int.from_bytes(det("device-key", 32), "big") % (2**255), ec.SECP256R1())
ca_key = ec.derive_private_key(int.from_bytes(det("ca-key", 32), "big") % (2**255), ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PharosVPN"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "PharosVPN Device CA")])
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
           .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
           .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
           .sign(ca_key, hashes.SHA256()))
leaf = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PharosVPN Device"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "dev_aaaaaaaaaaaaaaaa")]))
        .issuer_name(ca_name).public_key(device_key.public_key()).serial_number(2)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
files["device_leaf.pem"] = leaf_pem
files["device_leaf.fingerprint"] = ("sha256:" + hashlib.sha256(leaf_pem).hexdigest()).encode()
ca_der = ca_cert.public_bytes(serialization.Encoding.DER)
files["ca_root.der.fingerprint"] = hashlib.sha256(ca_der).hexdigest().encode()
files["ca_root.pem"] = ca_cert.public_bytes(serialization.Encoding.PEM)
enc_key = x25519.X25519PrivateKey.from_private_bytes(det("device-encryption", 32))
files["device.pharosid"] = indented({
    "fmt": "pharos-device", "v": 1, "user": "ada@example.org", "alias": "laptop",
    "relay_addr": "relay.example.org:8443", "relay_server_name": "relay.example.org",
    "ca_fingerprint": hashlib.sha256(ca_der).hexdigest(),
    "fleet_ca": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
    "device_cert": leaf_pem.decode(),
    "device_key": device_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode(),
    "signing_public_key": b64(raw_pub(signer.public_key())),
    "encryption_key": "-----BEGIN X25519 PRIVATE KEY-----\n" + b64(raw(enc_key)) + "\n-----END X25519 PRIVATE KEY-----\n",
})

for name, data in files.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print("wrote", len(files), "vectors")
