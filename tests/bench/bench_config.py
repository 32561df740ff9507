#!/usr/bin/env python3
"""bench_config.py - `hacme check --offline` time against the number of cert
sections (issue 8: check stays linear; 80,000 sections took 20-34 s when
duplicate names were found by a scan of every earlier section).

Every other section is a dual certificate (two keys), so the same-file
check (cert a with two keys vs cert a.rsa) runs on half of them. Best of
BENCH_CONFIG_ROUNDS (3) runs per size. Prints one row per size, then
SUMMARY lines for tests/bench/run.sh. Figures, not a test: no time limit."""
import os
import resource
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(os.environ.get('HACME_BUILD') or
                        os.path.join(os.path.dirname(__file__), '..', '..', 'build'))
HACME = os.path.join(BUILD, 'acme', 'hacme')
ROUNDS = int(os.environ.get('BENCH_CONFIG_ROUNDS', '3'))
SIZES = [int(x) for x in os.environ.get('BENCH_CONFIG_SIZES', '10000 20000 40000 80000').split()]


def write_config(path, n):
    with open(path, 'w') as f:
        f.write('global\n    state-dir %s\n' % os.path.join(os.path.dirname(path), 'state'))
        f.write('ca pb\n    directory https://127.0.0.1:14000/dir\n')
        for i in range(n):
            f.write('cert c%d.example.com\n' % i)
            if i % 2:
                f.write('    key ecdsa-p256 rsa2048\n')


def cpu_children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def best_time(path):
    """(wall, CPU) seconds, best of ROUNDS: CPU time is what a loaded box
    does not inflate."""
    best = cpu = None
    for _ in range(ROUNDS):
        t0, c0 = time.monotonic(), cpu_children()
        r = subprocess.run([HACME, '-c', path, 'check', '--offline'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt, dc = time.monotonic() - t0, cpu_children() - c0
        if r.returncode != 0 or 'configuration OK' not in r.stdout:
            sys.exit('hacme check failed on %s: %s' % (path, (r.stderr or r.stdout).strip()))
        best = dt if best is None else min(best, dt)
        cpu = dc if cpu is None else min(cpu, dc)
    return best, cpu


def main():
    rows = []
    with tempfile.TemporaryDirectory(prefix='hacme-bench-config.') as d:
        for n in SIZES:
            path = os.path.join(d, 'n%d.cfg' % n)
            write_config(path, n)
            t, c = best_time(path)
            rows.append((n, t, c))
            print('%6d cert sections (%7d bytes): hacme check --offline %.3f s wall, %.3f s CPU '
                  '(%.2f us CPU/section)' % (n, os.path.getsize(path), t, c, c / n * 1e6), flush=True)
    n0, t0, c0 = rows[0]
    n1, t1, c1 = rows[-1]
    print('SUMMARY config: hacme check --offline, %d cert sections: %.3f s wall, %.3f s CPU '
          '(best of %d); %d sections: %.3f s CPU; CPU growth x%.1f for x%.0f sections (linear: x%.0f)'
          % (n1, t1, c1, ROUNDS, n0, c0, c1 / c0 if c0 > 0 else 0, n1 / n0, n1 / n0))


if __name__ == '__main__':
    main()
