#!/usr/bin/env python3
"""Write a pcap of minimum-size Ethernet/IPv4/UDP frames for `make run`.

usage: gen_traffic.py OUT.pcap [--flows N] [--rounds R]

Flow i: 02:00:00:00:00:01 -> 02:00:00:00:00:02, 10.0.0.1+i -> 192.168.0.1,
UDP 1024+(i % 64000) -> 5001, TTL 64, correct checksums (the same frames as
the peer benchmark's flowsN traffic). Deterministic: no randomness.
Standard library only.
"""
import argparse
import struct


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_frame(src_ip, dst_ip, sport, dport, ttl=64):
    payload = bytes(18)  # 14 + 20 + 8 + 18 = 60 bytes
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + udp_len, 0, 0, ttl, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
    pseudo = struct.pack("!IIBBH", src_ip, dst_ip, 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = csum16(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ip + udp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=16)
    a = ap.parse_args()
    base = (10 << 24) | 1
    frames = [udp_frame(base + i, (192 << 24) | (168 << 16) | 1, 1024 + (i % 64000), 5001)
              for i in range(a.flows)]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 0
        for _ in range(a.rounds):
            for fr in frames:
                f.write(struct.pack("<IIII", t, 0, len(fr), len(fr)))
                f.write(fr)
                t += 1


if __name__ == "__main__":
    main()
