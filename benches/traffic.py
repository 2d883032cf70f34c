#!/usr/bin/env python3
"""Traffic benchmark: vportd's forwarding path against dpdk-testpmd io
forwarding, on the same DPDK virtual devices, in one invocation.

usage: benches/traffic.py [--reps N] [--interval S] [--warmup S]
                          [--scenarios a,b] [--vportd PATH] [--out FILE]

Scenarios (source -> sink, one forwarding thread on core 1, burst 32):
  null        net_null0 (allocates 64 B mbufs, copies nothing) -> net_null1,no-rx=1
  pcap-1flow  net_pcap0 (1 UDP flow, infinite_rx=1)            -> net_null0,no-rx=1
  pcap-1k     net_pcap0 (1000 UDP flows x 16, infinite_rx=1)   -> net_null0,no-rx=1
Contenders per scenario, run alternately REPS times:
  testpmd     dpdk-testpmd --forward-mode=io (the I/O ceiling)
  vportd-fwd  vportd --fwd  (rule in_port=1 actions=output:2)
  vportd-fwd-eal  the same with --mbuf-memory eal: mbufs in the EAL's
              no-huge memory, one 2 KiB mbuf per 4 KiB page, as testpmd's
              pool (vportd's default without hugepages is a pool on
              transparent huge pages; see docs/benchmarks.md)
  vportd-udp  vportd with in_port=1,udp actions=output:2 (extract + EMC + dpcls)

Measurement (as ../shared/peer does for OVS): the forwarding thread's
on-CPU time from /proc/PID/task/TID/schedstat over the window, times the TSC
rate, divided by the packets forwarded in the window. Cycles/packet is the
steady figure on a shared machine; Mpps is wall-clock.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, Vportd, result, run_testpmd, schedstat_ns, tsc_hz


def vdevs(scenario, pcaps):
    if scenario == "null":
        return ["net_null0", "net_null1,no-rx=1"]
    return ["net_pcap0,rx_pcap=%s,infinite_rx=1" % pcaps[scenario], "net_null0,no-rx=1"]


def run_vportd(scenario, pcaps, warmup, interval, hz, vportd, flows, extra=()):
    ports = list(zip(["p1", "p2"], vdevs(scenario, pcaps)))
    with Vportd(vportd, ports, flows, mbufs=262143, extra_args=extra) as v:
        time.sleep(warmup)
        tid = v.pmd_tid()
        c0 = schedstat_ns(v.p.pid, tid)
        a = v.counters()
        t0 = time.time()
        time.sleep(interval)
        c1 = schedstat_ns(v.p.pid, tid)
        b = v.counters()
        t1 = time.time()
    pkts = v.port(b, "p2")["tx_packets"] - v.port(a, "p2")["tx_packets"]
    r = result(pkts, c1 - c0, t1 - t0, hz)
    pa, pb = a["pmds"][0], b["pmds"][0]
    rx = max(1, pb["rx_packets"] - pa["rx_packets"])

    def pct(name):
        return 100.0 * (pb.get(name, 0) - pa.get(name, 0)) / rx
    r["simple%"] = pct("simple_hits")
    r["emc%"] = pct("emc_hits")
    r["megaflow%"] = pct("megaflow_hits") + pct("smc_hits")
    r["megaflows"] = b["megaflows"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--scenarios", default="null,pcap-1flow,pcap-1k")
    ap.add_argument("--vportd", default=os.path.join(ROOT, "target/release/vportd"))
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    a = ap.parse_args()
    hz = tsc_hz()
    work = tempfile.mkdtemp(prefix="vportd-bench-")
    pcaps = {"pcap-1flow": os.path.join(work, "flow1.pcap"),
             "pcap-1k": os.path.join(work, "flows1k.pcap")}
    gen = os.path.join(ROOT, "scripts/gen_traffic.py")
    subprocess.run([sys.executable, gen, pcaps["pcap-1flow"], "--flows", "1", "--rounds", "1024"], check=True)
    subprocess.run([sys.executable, gen, pcaps["pcap-1k"], "--flows", "1000", "--rounds", "16"], check=True)
    udp_flows = os.path.join(work, "p2p_udp.txt")
    with open(udp_flows, "w") as f:
        f.write("in_port=1,udp actions=output:2\n")
    contenders = [
        ("testpmd", lambda sc: run_testpmd(vdevs(sc, pcaps), a.warmup, a.interval, hz)),
        ("vportd-fwd", lambda sc: run_vportd(sc, pcaps, a.warmup, a.interval, hz, a.vportd, None)),
        ("vportd-fwd-eal", lambda sc: run_vportd(sc, pcaps, a.warmup, a.interval, hz, a.vportd, None,
                                                 ["--mbuf-memory", "eal"])),
        ("vportd-udp", lambda sc: run_vportd(sc, pcaps, a.warmup, a.interval, hz, a.vportd, udp_flows)),
    ]

    def applies(sc, name):
        # net_null frames are all zero (no IPv4/UDP): the udp rule drops them.
        return not (sc == "null" and name == "vportd-udp")
    results = {}
    for rep in range(a.reps):
        for sc in a.scenarios.split(","):
            for name, fn in contenders:
                if not applies(sc, name):
                    continue
                r = fn(sc)
                results.setdefault((sc, name), []).append(r)
                print("rep %d %-10s %-10s %6.2f Mpps %6.1f cyc/pkt (share %.2f)"
                      % (rep + 1, sc, name, r["mpps"], r["cyc_per_pkt"], r["share"]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print()
    print("TSC %.0f MHz; medians of %d runs; cycles = forwarding thread on-CPU time x TSC / packets" % (hz / 1e6, a.reps))
    print("| scenario | contender | Mpps | cycles/pkt | vs testpmd (cycles) | throughput vs testpmd | simple % | EMC % | megaflow % |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for sc in a.scenarios.split(","):
        base = statistics.median(r["cyc_per_pkt"] for r in results[(sc, "testpmd")])
        base_mpps = statistics.median(r["mpps"] for r in results[(sc, "testpmd")])
        for name, _ in contenders:
            if not applies(sc, name):
                continue
            rs = results[(sc, name)]
            cyc = statistics.median(r["cyc_per_pkt"] for r in rs)
            mpps = statistics.median(r["mpps"] for r in rs)
            def med(key):
                if name == "testpmd":
                    return "-"
                return "%.1f" % statistics.median(r.get(key, 0) for r in rs)
            print("| %s | %s | %.2f | %.1f | %.2fx | %.0f%% | %s | %s | %s |" % (
                sc, name, mpps, cyc, cyc / base, 100.0 * (base / cyc),
                med("simple%"), med("emc%"), med("megaflow%")))
            summary.append({"scenario": sc, "contender": name, "mpps": mpps, "cyc_per_pkt": cyc,
                            "cycles_vs_testpmd": cyc / base, "mpps_vs_testpmd": mpps / base_mpps})
    if a.out:
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
