#!/usr/bin/env python3
"""One gateway start from Python: hermes_s6 against the upstream way.

  ours      S6ServiceManager().start("gateway-<profile>"): runs
            `hermes-s6 gateway start -p <profile> --json`, which asks the
            setuid helper; works as the unprivileged hermes user.
  upstream  subprocess.run(["s6-svc", "-u", "<scandir>/gateway-<profile>"]),
            what Hermes's Python backend does; needs a user who may write
            the slot's control FIFO (root in this image).

Two levels, measured interleaved (ours, upstream, upstream, ours, ...):

  call      one start inside a running Python process: each side is a
            long-lived worker (this script with --worker) running as its
            user, timed around the call itself;
  process   a whole `python3 -c ...` per start, as design §8 measures the
            upstream baseline: interpreter start, import, the start, exit.

The slot must exist (register it first); starting a gateway that is up
already is what is measured after the first run. Run as root to give each
side its own user (--ours-user, --upstream-user); otherwise both run as the
caller. Prints medians and the ratio ours / upstream (below 1: ours is
faster); --json prints the same as a JSON object.

    bench/python_start.py --profile bench --runs 200 --ours-user hermes --upstream-user root
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE_SRC = HERE.parent / "python" / "src"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def named(cls, name: str | None) -> User:
        entry = pwd.getpwuid(os.getuid()) if name is None else pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)))

    def spawn_args(self) -> dict[str, Any]:
        """subprocess arguments that run a child as this user."""
        if self.uid == os.getuid():
            return {}
        if os.geteuid() != 0:
            sys.exit(f"python_start: only root can run a side as {self.name}")
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_SRC), env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# -- the two operations --------------------------------------------------------


def ours_snippet(args: argparse.Namespace) -> str:
    cli = repr(args.cli) if args.cli else "None"
    return (
        "from hermes_s6 import S6ServiceManager\n"
        f"S6ServiceManager(cli={cli}).start({('gateway-' + args.profile)!r})\n"
    )


def upstream_snippet(args: argparse.Namespace) -> str:
    slot = str(Path(args.scandir) / f"gateway-{args.profile}")
    return (
        "import subprocess\n"
        f"subprocess.run([{args.s6_svc!r}, '-u', {slot!r}], capture_output=True, timeout=5, check=True)\n"
    )


def worker(side: str, args: argparse.Namespace) -> None:
    """Reads one line per run on stdin, does one start, answers the
    nanoseconds it took (or `error <text>`)."""
    if side == "ours":
        from hermes_s6 import S6ServiceManager

        mgr = S6ServiceManager(cli=args.cli)
        name = f"gateway-{args.profile}"

        def once() -> None:
            mgr.start(name)

    else:
        slot = str(Path(args.scandir) / f"gateway-{args.profile}")
        argv = [args.s6_svc, "-u", slot]

        def once() -> None:
            subprocess.run(argv, capture_output=True, timeout=5, check=True)

    for _ in sys.stdin:
        try:
            t0 = time.perf_counter_ns()
            once()
            elapsed = time.perf_counter_ns() - t0
            print(elapsed, flush=True)
        except Exception as exc:  # reported to the parent, which stops
            print(f"error {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)


class Worker:
    def __init__(self, side: str, user: User, args: argparse.Namespace) -> None:
        argv = [
            args.python, str(Path(__file__).resolve()), "--worker", side,
            "--profile", args.profile, "--scandir", args.scandir, "--s6-svc", args.s6_svc,
        ]
        if args.cli:
            argv += ["--cli", args.cli]
        self.side = side
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
            cwd="/", **user.spawn_args(),
        )

    def once(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer.isdigit():
            sys.exit(f"python_start: {self.side}: {answer or 'the worker exited'}")
        return int(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Process:
    def __init__(self, side: str, user: User, args: argparse.Namespace) -> None:
        snippet = ours_snippet(args) if side == "ours" else upstream_snippet(args)
        self.side = side
        self.argv = [args.python, "-c", snippet]
        self.spawn = user.spawn_args()
        self.env = child_env()

    def once(self) -> int:
        t0 = time.perf_counter_ns()
        done = subprocess.run(
            self.argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=self.env,
            cwd="/", timeout=60, **self.spawn,
        )
        elapsed = time.perf_counter_ns() - t0
        if done.returncode != 0:
            sys.exit(f"python_start: {self.side} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return elapsed

    def close(self) -> None:
        pass


def summary(samples: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples)
    q = statistics.quantiles(ms, n=10) if len(ms) >= 2 else [ms[0]] * 9
    return {
        "runs": len(ms),
        "median_ms": statistics.median(ms),
        "p10_ms": q[0],
        "p90_ms": q[-1],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
    }


def measure(level: str, args: argparse.Namespace, ours: User, upstream: User) -> dict[str, Any]:
    make = Worker if level == "call" else Process
    sides = {"ours": make("ours", ours, args), "upstream": make("upstream", upstream, args)}
    samples: dict[str, list[int]] = {"ours": [], "upstream": []}
    try:
        for _ in range(args.warmup):
            for side in sides.values():
                side.once()
        for i in range(args.runs):
            order = ("ours", "upstream") if i % 2 == 0 else ("upstream", "ours")
            for name in order:
                samples[name].append(sides[name].once())
    finally:
        for side in sides.values():
            side.close()
    result = {name: summary(values) for name, values in samples.items()}
    ratio = result["ours"]["median_ms"] / result["upstream"]["median_ms"]
    return {
        "level": level,
        "ours_user": ours.name,
        "upstream_user": upstream.name,
        **result,
        "ratio_ours_over_upstream": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, help="a registered profile (its slot must exist)")
    parser.add_argument("--runs", type=int, default=100, help="measured starts per side and level")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured starts per side first")
    parser.add_argument("--level", choices=["call", "process", "both"], default="both")
    parser.add_argument("--ours-user", help="user for S6ServiceManager (default: the caller)")
    parser.add_argument("--upstream-user", help="user for s6-svc (default: the caller)")
    parser.add_argument("--scandir", default="/run/service")
    parser.add_argument("--s6-svc", default="/command/s6-svc")
    parser.add_argument("--cli", help="hermes-s6 (default: $HERMES_S6_CLI, else on PATH)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of both sides")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("--worker", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")

    if args.worker:
        worker(args.worker, args)
        return

    slot = Path(args.scandir) / f"gateway-{args.profile}"
    if not slot.is_dir():
        sys.exit(f"python_start: {slot} does not exist: register the profile first")
    ours, upstream = User.named(args.ours_user), User.named(args.upstream_user)
    levels = ["call", "process"] if args.level == "both" else [args.level]
    results = [measure(level, args, ours, upstream) for level in levels]

    if args.json:
        print(json.dumps({"profile": args.profile, "results": results}, indent=2))
        return
    print(f"gateway start of {args.profile!r}, {args.runs} runs per side, interleaved")
    print(f"  ours:     S6ServiceManager().start() as {ours.name}")
    print(f"  upstream: subprocess.run([{args.s6_svc!r}, '-u', ...]) as {upstream.name}")
    print(f"{'level':<8} {'side':<9} {'median':>9} {'p10':>9} {'p90':>9} {'mean':>9}  (ms)")
    for result in results:
        for side in ("ours", "upstream"):
            s = result[side]
            print(
                f"{result['level']:<8} {side:<9} {s['median_ms']:9.3f} {s['p10_ms']:9.3f} "
                f"{s['p90_ms']:9.3f} {s['mean_ms']:9.3f}"
            )
        ratio = result["ratio_ours_over_upstream"]
        print(f"{result['level']:<8} ratio ours/upstream (median): {ratio:.2f}"
              f" ({'ours faster' if ratio < 1 else 'upstream faster'}, {max(ratio, 1 / ratio):.2f}x)")


if __name__ == "__main__":
    main()
