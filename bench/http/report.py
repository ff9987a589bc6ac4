#!/usr/bin/env python3
"""Report of bench/http/run: medians per (protocol, case), the JSON file and a markdown
table. Inputs come from the environment (see the end of bench/http/run)."""
import json
import os
import statistics as st

env = os.environ
rows = [json.loads(l) for l in open(env["RAW"]) if l.strip()]
keys = []
for r in rows:
    k = (r["proto"], r["case"])
    if k not in keys:
        keys.append(k)


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p)
    return d


summary = {}
for proto, case in keys:
    rs = [r for r in rows if r["proto"] == proto and r["case"] == case]
    ok = [r for r in rs if not r.get("failed")]
    failed = [r["failed"] for r in rs if r.get("failed")]
    per_cpu = [r["throughput"]["requests"] / r["proxy_cpu_s"] for r in ok if r.get("proxy_cpu_s")]
    util = [r["proxy_cpu_s"] / r["throughput"]["elapsed_s"] for r in ok
            if r.get("proxy_cpu_s") and r["throughput"].get("elapsed_s")]
    errors = 0
    for r in ok:
        errors += g(r, "throughput", "errors") or 0
        errors += g(r, "latency", "errors") or 0
        errors += g(r, "latency_same_core", "errors") or 0
        errors += max(0, g(r, "idle", "errors") or 0)
    s = {
        "rounds": len(rs),
        "failed": failed,
        "rps": med([g(r, "throughput", "rps") for r in ok]),
        "req_per_cpu_s": med(per_cpu),
        "req_per_cpu_s_all": [round(x) for x in per_cpu],
        "proxy_cpu_util": med(util),
        # Busy time of the proxy core not spent by the proxy, over the throughput phase
        # (other processes on the box: a noise indicator; 0 % on a quiet machine).
        "proxy_core_other_util": med([r["proxy_core_other_cpu_s"] / r["throughput"]["elapsed_s"] for r in ok
                                      if r.get("proxy_core_other_cpu_s") is not None and r["throughput"].get("elapsed_s")]),
        "loadavg_1m_all": [r.get("loadavg_1m") for r in ok],
        # Backend connections the proxy opened during the throughput phase (after the
        # warm-up): small next to the request count when its keep-alive pool is reused
        # (a proxy that reconnected per request would show one per request).
        "backend_conns_opened_all": [r.get("backend_conns_opened") for r in ok if r.get("backend_conns_opened") is not None],
        "errors": errors,
        "lat_rps": med([g(r, "latency", "rps") for r in ok]),
        "p50_us": med([g(r, "latency", "p50_us") for r in ok]),
        "p99_us": med([g(r, "latency", "p99_us") for r in ok]),
        "p50_same_core_us": med([g(r, "latency_same_core", "p50_us") for r in ok]),
        "p99_same_core_us": med([g(r, "latency_same_core", "p99_us") for r in ok]),
        "idle_kib_per_conn": med([g(r, "idle", "kib_per_conn") for r in ok]),
        "idle_kib_per_conn_all": [g(r, "idle", "kib_per_conn") for r in ok if r.get("idle")],
        "idle_kib_per_conn_marginal": med([g(r, "idle", "kib_per_conn_marginal") for r in ok]),
        "vmrss_kb": med([r.get("vmrss_kb") for r in ok]),
        "vmhwm_kb": med([r.get("vmhwm_kb") for r in ok]),
        "proxy_threads": med([r.get("proxy_threads") for r in ok]),
    }
    summary[f"{proto}/{case}"] = s

for key, s in summary.items():
    proto, case = key.split("/")
    d = summary.get(f"{proto}/direct")
    if case == "direct" or not d or s["p50_us"] is None or d["p50_us"] is None:
        continue
    s["added_p50_us"] = s["p50_us"] - d["p50_us"]
    s["added_p99_us"] = s["p99_us"] - d["p99_us"]
    if s["p50_same_core_us"] is not None:
        s["added_p50_same_core_us"] = s["p50_same_core_us"] - d["p50_us"]
        s["added_p99_same_core_us"] = s["p99_same_core_us"] - d["p99_us"]

protos = env["PROTOS"].split()
meta = {k.lower(): env.get(k, "") for k in ["STAMP", "GIT_REV", "STRAIT_BIN", "HAPROXY_VERSION", "NGINX_VERSION",
                                     "H2LOAD_VERSION", "PINGORA_VERSION", "KERNEL", "NCPU"]}
meta.update({
    "rounds": int(env["ROUNDS"]), "duration_s": int(env["DURATION"]), "rate": int(env["RATE"]),
    "size": int(env["SIZE"]), "protos": protos,
    "h1_connections": int(env["H1_CONNS"]), "h2c_connections": int(env["H2C_CONNS"]),
    "h2c_streams": int(env["H2C_STREAMS"]), "latency_connections": int(env["LAT_CONNS"]),
    "idle_connections": int(env["IDLE_CONNS"]),
    "proxy_cpu": env["PROXY_CPU"], "load_cpu": env["LOAD_CPU"],
    "latency_source": "h2load --log-file (per request: from h2load submitting the request to the end of the response)",
})

# The targets, Strait against nginx.
verdicts = {}
for proto in protos:
    sr, ng = summary.get(f"{proto}/strait"), summary.get(f"{proto}/nginx")
    if not sr or not ng or sr["req_per_cpu_s"] is None or ng["req_per_cpu_s"] is None:
        continue
    v = {"req_per_cpu_s_ratio": round(sr["req_per_cpu_s"] / ng["req_per_cpu_s"], 3)}
    if sr.get("added_p50_us") is not None and ng.get("added_p50_us") is not None:
        v["added_p50_us"] = [sr["added_p50_us"], ng["added_p50_us"]]
    if sr.get("added_p50_same_core_us") is not None and ng.get("added_p50_same_core_us") is not None:
        v["added_p50_same_core_us"] = [sr["added_p50_same_core_us"], ng["added_p50_same_core_us"]]
    if sr["idle_kib_per_conn"] is not None and ng["idle_kib_per_conn"] is not None:
        v["idle_kib_per_conn"] = [sr["idle_kib_per_conn"], ng["idle_kib_per_conn"]]
    if sr.get("idle_kib_per_conn_marginal") is not None and ng.get("idle_kib_per_conn_marginal") is not None:
        v["idle_kib_per_conn_marginal"] = [sr["idle_kib_per_conn_marginal"], ng["idle_kib_per_conn_marginal"]]
    verdicts[proto] = v

doc = {"meta": meta, "summary": summary, "strait_vs_nginx": verdicts, "raw": rows}
with open(env["OUT_JSON"], "w") as f:
    json.dump(doc, f, indent=1)


def fmt(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def pm(x):
    return "–" if x is None else f"{x:+,.0f}"


names = {"http1": "HTTP/1.1 keep-alive", "h2c": "h2c (HTTP/2, prior knowledge)"}
lines = [
    f"# Strait HTTP bench {meta['stamp']} (rev {meta['git_rev']})",
    "",
    f"{meta['ncpu']} CPUs; proxy on core {meta['proxy_cpu']}, h2load + nginx backend on core {meta['load_cpu']}; "
    f"{meta['size']} B response body; median of {meta['rounds']} round(s). nginx {meta['nginx_version']}, "
    f"haproxy {meta['haproxy_version']}, pingora {meta['pingora_version']}, h2load {meta['h2load_version']}.",
    f"Throughput: closed loop for {meta['duration_s']} s (HTTP/1.1: {meta['h1_connections']} connections x 1 request; "
    f"h2c: {meta['h2c_connections']} connections x {meta['h2c_streams']} streams). "
    f"Latency: {meta['rate']:,} req/s over {meta['latency_connections']} connection(s), one request in flight each, for {meta['duration_s']} s, "
    "percentiles of h2load's per-request log. Idle memory: proxy RSS delta / "
    f"{meta['idle_connections']} idle HTTP/1.1 keep-alive connections (one request each).",
    "",
]
for proto in protos:
    lines += [
        f"## {names.get(proto, proto)}",
        "",
        "| case | req/s (closed loop) | proxy CPU use | req per proxy CPU-s | p50 µs | p99 µs | added p50 µs | added p99 µs "
        "| added p50 / p99 µs, proxy on load core | KiB per idle conn | marginal KiB per idle conn | VmRSS KiB | VmHWM KiB | other work on proxy core | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in summary.items():
        p, case = key.split("/")
        if p != proto:
            continue
        if s["failed"] and s["rps"] is None:
            lines.append(f"| {case} | FAILED: {s['failed'][0][:160]} |||||||||||||| |")
            continue
        util = f"{s['proxy_cpu_util'] * 100:.0f}%" if s["proxy_cpu_util"] is not None else "–"
        other = f"{s['proxy_core_other_util'] * 100:.0f}%" if s["proxy_core_other_util"] is not None else "–"
        lines.append(
            f"| {case} | {fmt(s['rps'])} | {util} | {fmt(s['req_per_cpu_s'])} | {fmt(s['p50_us'])} | {fmt(s['p99_us'])} "
            f"| {pm(s.get('added_p50_us'))} | {pm(s.get('added_p99_us'))} "
            f"| {pm(s.get('added_p50_same_core_us'))} / {pm(s.get('added_p99_same_core_us'))} "
            f"| {fmt(s['idle_kib_per_conn'], 1)} | {fmt(s.get('idle_kib_per_conn_marginal'), 2)} | {fmt(s['vmrss_kb'])} | {fmt(s['vmhwm_kb'])} | {other} | {s['errors']} |"
        )
    lines.append("")
    v = verdicts.get(proto)
    if v:
        parts = [f"req per CPU-s strait/nginx = **{v['req_per_cpu_s_ratio']:.2f}** "
                 f"({'meets' if v['req_per_cpu_s_ratio'] >= 1 else 'BELOW'} the ≥ 1.00 target)"]
        if "added_p50_us" in v:
            a, b = v["added_p50_us"]
            parts.append(f"added p50 {a:+.0f} µs vs nginx {b:+.0f} µs ({'meets' if a <= b else 'ABOVE'} the ≤ nginx target)")
        if "added_p50_same_core_us" in v:
            a, b = v["added_p50_same_core_us"]
            parts.append(f"proxy on load core: {a:+.0f} vs {b:+.0f} µs")
        if "idle_kib_per_conn" in v:
            a, b = v["idle_kib_per_conn"]
            parts.append(f"idle conn {a:.1f} KiB vs nginx {b:.1f} KiB ({'meets' if a <= b else 'ABOVE'} the ≤ nginx target)")
        if "idle_kib_per_conn_marginal" in v:
            a, b = v["idle_kib_per_conn_marginal"]
            parts.append(f"marginal idle conn {a:.2f} KiB vs nginx {b:.2f} KiB")
        lines.append("Strait vs nginx: " + "; ".join(parts) + ".")
        lines.append("")
lines.append(f"Raw figures: `bench/results/http-{meta['stamp']}.json`.")
md = "\n".join(lines) + "\n"
with open(env["OUT_MD"], "w") as f:
    f.write(md)
print(md)
