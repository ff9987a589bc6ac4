#!/usr/bin/env python3
"""Turn h2load's text summary (and optionally its --log-file) into one JSON line.

    h2load_json.py STDOUT_FILE [LOG_FILE]

From the summary: requests (succeeded with a 2xx), errors (failed + errored + timeout +
non-2xx answers), elapsed_s and rps. From the per-request log (tab-separated: start time
µs, status, µs until the end of the response): p50/p90/p99/max/mean latency in µs,
computed here over every logged request (h2load itself prints only min/max/mean/sd).
"""
import json
import re
import sys


def pct(sorted_xs, p):
    if not sorted_xs:
        return None
    i = min(len(sorted_xs) - 1, max(0, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[i]


def main():
    text = open(sys.argv[1]).read()
    out = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if not m:
        print(json.dumps({"requests": 0, "errors": 1, "elapsed_s": None, "rps": None,
                          "parse_error": text[-500:]}))
        return
    elapsed = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    m2 = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                   r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    m3 = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    succeeded, failed, errored, timeout = (int(m2.group(i)) for i in (4, 5, 6, 7))
    ok2xx, s3, s4, s5 = (int(m3.group(i)) for i in (1, 2, 3, 4))
    requests = min(succeeded, ok2xx)
    out.update({
        "requests": requests,
        "errors": failed + errored + timeout + s3 + s4 + s5,
        "elapsed_s": round(elapsed, 3),
        "rps": round(requests / elapsed, 1) if elapsed else None,
    })
    if len(sys.argv) > 2:
        lat = []
        for line in open(sys.argv[2]):
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1].strip().startswith("2"):
                lat.append(int(parts[2]))
        lat.sort()
        out.update({
            "latency_samples": len(lat),
            "p50_us": pct(lat, 50), "p90_us": pct(lat, 90), "p99_us": pct(lat, 99),
            "max_us": lat[-1] if lat else None,
            "mean_us": round(sum(lat) / len(lat), 1) if lat else None,
        })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
