#!/usr/bin/python3
"""Writes a small MaxMind DB (format 2.0, IPv4, 24-bit records) in the GeoLite2-City layout
for the tests: a few documentation networks placed in far-apart cities. Standard library only;
libmaxminddb (what coxswain reads with) is the independent reader that checks it.

usage: write_mmdb.py OUT.mmdb [NETWORK=CC,City,lat,lon ...]   (defaults below)"""
import ipaddress
import struct
import sys
import time

DEFAULT = [
    "198.51.100.0/24=US,New York,40.7128,-74.0060",
    "203.0.113.0/24=AU,Sydney,-33.8688,151.2093",
    "192.0.2.0/24=DE,Berlin,52.5200,13.4050",
    "192.0.2.128/25=DE,Potsdam,52.3906,13.0645",
]


def control(kind, size):
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes([size - 29])
    elif size < 65821:
        head, extra = 30, struct.pack(">H", size - 285)
    else:
        head, extra = 31, struct.pack(">I", size - 65821)[1:]
    if kind <= 7:
        return bytes([(kind << 5) | head]) + extra
    return bytes([head, kind - 7]) + extra


def encode(value, kind=None):
    if isinstance(value, str):
        raw = value.encode()
        return control(2, len(raw)) + raw
    if isinstance(value, float):
        return control(3, 8) + struct.pack(">d", value)
    if isinstance(value, dict):
        out = control(7, len(value))
        for key, item in value.items():
            out += encode(key) + (encode(*item) if isinstance(item, tuple) else encode(item))
        return out
    if isinstance(value, list):
        return control(11, len(value)) + b"".join(encode(item) for item in value)
    if isinstance(value, int):
        kind = kind or 6
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return control(kind, len(raw)) + raw
    raise TypeError(value)


def main():
    out = sys.argv[1]
    entries = sys.argv[2:] or DEFAULT
    nodes = [[None, None]]  # each record: None, ("node", i) or ("data", offset)
    data = b""
    # Shorter prefixes first, so a longer one refines what a shorter one set.
    for entry in sorted(entries, key=lambda e: ipaddress.ip_network(e.split("=")[0]).prefixlen):
        network, fields = entry.split("=")
        country, city, lat, lon = fields.split(",")
        net = ipaddress.ip_network(network)
        record = {"city": {"names": {"en": city}},
                  "country": {"iso_code": country, "names": {"en": country}},
                  "location": {"latitude": float(lat), "longitude": float(lon)}}
        offset = len(data)
        data += encode(record)
        bits = int(net.network_address)
        node = 0
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == net.prefixlen - 1:
                nodes[node][bit] = ("data", offset)
                break
            child = nodes[node][bit]
            if child is None or child[0] == "data":
                nodes.append([child, child])  # a longer prefix inside a shorter one keeps the rest of it
                nodes[node][bit] = ("node", len(nodes) - 1)
                child = nodes[node][bit]
            node = child[1]
    count = len(nodes)

    def value(record):
        if record is None:
            return count
        return record[1] if record[0] == "node" else count + 16 + record[1]

    tree = b"".join(struct.pack(">I", value(l))[1:] + struct.pack(">I", value(r))[1:] for l, r in nodes)
    metadata = encode({
        "binary_format_major_version": (2, 5), "binary_format_minor_version": (0, 5),
        "build_epoch": (int(time.time()), 9), "database_type": "PharosTest-City",
        "description": {"en": "PharosVPN test networks"}, "ip_version": (4, 5), "languages": ["en"],
        "node_count": (count, 6), "record_size": (24, 5),
    })
    with open(out, "wb") as f:
        f.write(tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + metadata)


if __name__ == "__main__":
    main()
