"""Wall time against CPU time of a fixed CPU-bound run, alone and beside busy loops
(docs/speed.md: why the relative time limit counts CPU time natively).

    python3 scripts/cpu_under_load.py [BUSY=0] [RUNS=5]
"""

import resource
import subprocess
import sys
import time

WORK = "s = 0\nfor i in range(30_000_000):\n    s += i % 7\n"


def main():
    busy = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        rows = []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", WORK], check=True)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            rows.append((wall, cpu))
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    median = lambda values: sorted(values)[len(values) // 2]
    print(f"{busy} busy loops: " + " ".join(f"{w:.2f}/{c:.2f}" for w, c in rows))
    print(f"median wall {median([w for w, _ in rows]):.2f} s, CPU {median([c for _, c in rows]):.2f} s")


if __name__ == "__main__":
    main()
