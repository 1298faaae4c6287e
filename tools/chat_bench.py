#!/usr/bin/env python3
"""Time to first token per turn of a scripted chat through `specsteer edge
serve` + `cloud serve`, with the prefix caches on (--cache-ram default) and
off (--cache-ram 0 on both sides), runs interleaved on, off, on, off.

  tools/chat_bench.py --bin build/specsteer --edge E.gguf --llm L.gguf [--rounds 2]
  tools/chat_bench.py ... --shared-system 200 --users 4   (the cross-user run: every
      request of 4 users shares a 200-word system text; cloud --cache-scope global)

--first-token times a one-token request before each turn (the first token's
latency; with random-weight models the stream's first text can come much later).
Edge and cloud get one thread each (two machines of one core); nothing else
should run beside it. Prints a markdown table (median over rounds)."""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

ASKS = [
    "I am planning a weekend trip to a small coastal town. Suggest three things to do there if it rains, "
    "and keep each suggestion to one sentence so I can read it quickly on my phone.",
    "Say that again, shorter, and put the one that costs the least money first.",
    "Which of those would suit two children under ten, and why would they like it?",
    "Now write a short note I can send to my sister inviting her along, mentioning the rainy-day plan.",
    "Make the note friendlier and add that we would leave on Saturday morning around nine.",
    "Finally, list everything we should pack for that plan in one line, separated by commas.",
]
WORDS = ("the cloud model verifies the drafts of the small model on the device while the private profile stays on "
         "the device and only the non private prompt travels to the cloud ").split()


def start(cmd, port_file, log):
    p = subprocess.Popen(cmd + ["--port-file", port_file], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    for _ in range(1200):
        if os.path.exists(port_file):
            return p, int(open(port_file).read())
        if p.poll() is not None:
            raise SystemExit(f"{cmd[0:3]} exited: {open(log).read()[-2000:]}")
        time.sleep(0.05)
    raise SystemExit("server did not start")


def turn(port, messages, max_tokens, user):
    body = {"messages": messages, "max_tokens": max_tokens, "seed": 1, "stream": True, "user": user}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    ttft, text, last = None, "", None
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if "error" in ev:
                raise SystemExit(f"error: {ev['error']}")
            delta = ev["choices"][0].get("delta", {}).get("content")
            if delta and ttft is None:
                ttft = time.perf_counter() - t0
            text += delta or ""
            if "usage" in ev:
                last = ev
    total = time.perf_counter() - t0
    return {"ttft": ttft if ttft is not None else total, "total": total, "text": text,
            "prompt": last["usage"]["prompt_tokens"],
            "cached": last["usage"]["prompt_tokens_details"]["cached_tokens"],
            "cloud_cached": last["specsteer"]["cloud_cached_tokens"]}


def peak_rss_mb(p):
    """The process's peak resident set (VmHWM) in MiB."""
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def conversation(args, cache, tmp, tag, memory):
    cloud_cmd = [args.bin, "cloud", "serve", "--llm", args.llm, "--slm", args.edge, "--listen", "127.0.0.1:0",
                 "-t", "1", "--ctx", str(args.ctx), "--cache-ram", "1024" if cache else "0"]
    if args.shared_system:
        cloud_cmd += ["--cache-scope", "global"]
    cloud, cport = start(cloud_cmd, f"{tmp}/{tag}.cport", f"{tmp}/{tag}.cloud.log")
    edge, eport = None, None
    try:
        edge, eport = start([args.bin, "edge", "serve", "--slm", args.edge, "--cloud", f"127.0.0.1:{cport}",
                             "--port", "0", "-t", "1", "--cache-ram", "256" if cache else "0",
                             "--cloud-timeout", "300"],  # a 1-thread 8B prefill of 1,000 tokens passes 30 s
                            f"{tmp}/{tag}.eport", f"{tmp}/{tag}.edge.log")
        out = []
        if args.shared_system:
            system = " ".join(WORDS[i % len(WORDS)] for i in range(args.shared_system))
            for u in range(args.users):  # one question per user, all behind the same system text
                msgs = [{"role": "system", "content": system}, {"role": "user", "content": ASKS[u % len(ASKS)]}]
                first = turn(eport, msgs, 1, f"user{u}") if args.first_token else None
                r = turn(eport, msgs, args.max_tokens, f"user{u}")
                if first:
                    r.update(ttft=first["total"], cached=first["cached"], cloud_cached=first["cloud_cached"])
                out.append(r)
            return out
        msgs = [{"role": "system", "content": "You are a helpful travel assistant."}]
        for ask in ASKS[: args.turns]:
            msgs.append({"role": "user", "content": ask})
            # The time to the first token: a one-token request's whole latency
            # (the stream's first visible text can come later than the first
            # token: a random-weight model's tokens are often partial UTF-8).
            first = turn(eport, msgs, 1, "") if args.first_token else None
            r = turn(eport, msgs, args.max_tokens, "")
            if first:  # its latency and what it reused (the reply then finds the whole prompt cached)
                r.update(ttft=first["total"], cached=first["cached"], cloud_cached=first["cloud_cached"])
            msgs.append({"role": "assistant", "content": r["text"]})
            out.append(r)
        return out
    finally:
        memory[cache] = memory.get(cache, []) + [(peak_rss_mb(edge) if edge else 0, peak_rss_mb(cloud))]
        for p in (edge, cloud):
            if p:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/specsteer")
    ap.add_argument("--edge", required=True)
    ap.add_argument("--llm", required=True)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--shared-system", type=int, default=0, help="words of a system text every request shares")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--log-dir", help="keep the servers' logs here")
    ap.add_argument("--first-token", action="store_true",
                    help="time each turn's first token as a one-token request's latency (then the turn's reply)")
    args = ap.parse_args()
    runs = {True: [], False: []}
    memory = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.log_dir:  # keep the servers' logs
            os.makedirs(args.log_dir, exist_ok=True)
            tmp = args.log_dir
        for k in range(args.rounds):
            for cache in (True, False):
                runs[cache].append(conversation(args, cache, tmp, f"r{k}{int(cache)}", memory))
    for k in range(args.rounds):
        for a, b in zip(runs[True][k], runs[False][k]):
            if a["text"] != b["text"]:
                print(f"WARNING: a reply differs with the cache on and off: {a['text']!r} vs {b['text']!r}")
    what = "request (user)" if args.shared_system else "turn"
    print(f"| {what} | prompt tokens | device reused | cloud reused | TTFT cache on (s) | TTFT cache off (s) | on/off |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i in range(len(runs[True][0])):
        on = statistics.median(r[i]["ttft"] for r in runs[True])
        off = statistics.median(r[i]["ttft"] for r in runs[False])
        a = runs[True][0][i]
        print(f"| {i + 1} | {a['prompt']} | {a['cached']} | {a['cloud_cached']} | {on:.3f} | {off:.3f} | {on / off:.2f} |")
    print("\n| process | peak RSS cache on (MiB) | peak RSS cache off (MiB) | difference |")
    print("| --- | ---: | ---: | ---: |")
    for i, name in enumerate(("edge serve (--cache-ram 256)", "cloud serve (--cache-ram 1024)")):
        on = max(m[i] for m in memory[True])
        off = max(m[i] for m in memory[False])
        print(f"| {name} | {on:.0f} | {off:.0f} | {on - off:+.0f} |")


if __name__ == "__main__":
    main()
