#!/usr/bin/env python3
"""hacme-spoa under a connection flood: the agent (default flags) behind the
real haproxy with the shipped haproxy-conf/, while one flooder keeps
BENCH_FLOOD_CONNS (10,000) SPOP connections going at it, reopening each one
the agent closes, in three ways:

  idle        connect; half of them send a HELLO, then nothing
  slowloris   HELLO, then a NOTIFY trickled one byte per connection per second
  pipelining  HELLO, then NOTIFYs packing many messages, sent without ever
              reading an ACK (receive buffer 4 KiB)
  pipelining-900  the same with 900 connections, under --max-connections:
              there the buffer budget (--max-buffer-memory) has to act

Meanwhile a legitimate client asks HAProxy for a published challenge every
50 ms (2 s timeout each) and the control socket gets a PING every 0.5 s.
Prints, per way: the agent's peak RSS (VmHWM) and RSS at the end, the
legitimate answers (200 with the right body / asked) and their latency, the
PINGs answered, the flood connections opened, and the agent's STATS
counters. Lines starting with SUMMARY are collected by run.sh.
Environment: HACME_BUILD, BENCH_FLOOD_CONNS (10000), BENCH_FLOOD_SECONDS (20),
BENCH_FLOOD_MODES ("idle slowloris pipelining").
"""

import errno
import os
import resource
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
from lab import Lab, LabError, mem_kb, wait_until, http_get  # noqa: E402
from test_agent import (PREFIX, ctl_ping, haproxy_hello, make_cert, new_token,  # noqa: E402
                        notify, server_status)

CONNS = int(os.environ.get('BENCH_FLOOD_CONNS', '10000'))
SECONDS = float(os.environ.get('BENCH_FLOOD_SECONDS', '20'))
MODES = os.environ.get('BENCH_FLOOD_MODES', 'idle slowloris pipelining pipelining-900').split()


class NullTAP:
    """make_cert() reports through a TAP object; the bench only needs the files."""
    def ok(self, cond, desc):
        if not cond:
            raise LabError(desc)
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc)


class Flooder:
    """Keeps up to n connections open against port, in one mode."""

    def __init__(self, port, n, mode, tok):
        self.port, self.n, self.mode = port, n, mode
        self.sel = selectors.DefaultSelector()
        self.socks = {}          # fd -> [sock, bytes trickled]
        self.opened = self.closed = self.refused = 0
        self.hello = haproxy_hello()
        self.trickle = notify(1, 1, PREFIX + tok)
        self.big = notify(1, 1, PREFIX + tok, count=120)

    def open_one(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        s.setblocking(False)
        try:
            s.connect(('127.0.0.1', self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            self.refused += 1
            return
        self.opened += 1
        self.socks[s.fileno()] = [s, 0, i % 2 == 1 or self.mode != 'idle']
        if self.mode != 'pipelining':   # that one never reads: a failed send tells
            self.sel.register(s, selectors.EVENT_READ)

    def drop(self, fd):
        s = self.socks.pop(fd)[0]
        if self.mode != 'pipelining':
            self.sel.unregister(s)
        s.close()
        self.closed += 1

    def send(self, st, data):
        try:
            return st[0].send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return -1

    def step(self, tick):
        """One round: reap closed sockets, refill to n, send what the mode sends."""
        for key, _ in self.sel.select(timeout=0):
            st = self.socks.get(key.fd)
            if st is None:
                continue
            try:
                b = st[0].recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b''
            if not b:
                self.drop(key.fd)
        i = 0
        while len(self.socks) < self.n:
            self.open_one(i)
            i += 1
            if i >= 200:        # at most 200 new connections per round
                break
        dead = []
        for fd, st in self.socks.items():
            if self.mode == 'idle':
                if st[2] and st[1] == 0 and self.send(st, self.hello) > 0:
                    st[1] = 1
            elif self.mode == 'slowloris':
                if st[1] == 0:
                    if self.send(st, self.hello) == len(self.hello):
                        st[1] = 1
                elif tick and st[1] < len(self.trickle):
                    n = self.send(st, self.trickle[st[1] - 1:st[1]])
                    if n < 0:
                        dead.append(fd)
                    else:
                        st[1] += n
            else:
                if st[1] == 0:
                    if self.send(st, self.hello) == len(self.hello):
                        st[1] = 1
                else:
                    n = self.send(st, self.big)
                    if n < 0:
                        dead.append(fd)
        for fd in dead:
            if fd in self.socks:
                self.drop(fd)

    def close(self):
        for fd in list(self.socks):
            self.drop(fd)
        self.sel.close()


def legit(http_port, tok, ka, stop, out):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            st, _, body = http_get(http_port, PREFIX + tok, host='www.example.com', timeout=2)
            good = st == 200 and body.decode() == ka
            why = 'ok' if good else 'HTTP %d' % st
        except OSError as e:
            good, why = False, type(e).__name__
        dt = time.monotonic() - t0
        out.append((good, dt, why))
        stop.wait(max(0.0, 0.05 - dt))


def pinger(agent, stop, out):
    while not stop.is_set():
        t0 = time.monotonic()
        good = ctl_ping(agent, timeout=2)
        out.append((good, time.monotonic() - t0))
        stop.wait(0.5)


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def run_mode(lab, mode, certs_list):
    agent = lab.agent()
    hap = lab.shipped_haproxy(agent.listen_port, certs_list, check_inter='1s',
                              name='haproxy-' + mode)
    http_port = hap.http_port
    wait_until(lambda: server_status(hap) == 'UP', 15, 'agent UP', hap)
    tok, ka = new_token()
    agent.ctl('ADD %s %s 3600' % (tok, ka))
    before = mem_kb(agent.pid)
    n = 900 if mode == 'pipelining-900' else CONNS
    fl = Flooder(agent.listen_port, n, mode.split('-')[0], tok)
    answers, pings, stop = [], [], threading.Event()
    threads = [threading.Thread(target=legit, args=(http_port, tok, ka, stop, answers)),
               threading.Thread(target=pinger, args=(agent, stop, pings))]
    for th in threads:
        th.start()
    t0 = last_tick = time.monotonic()
    peak_open = 0
    try:
        while time.monotonic() - t0 < SECONDS:
            tick = time.monotonic() - last_tick >= 1.0
            if tick:
                last_tick = time.monotonic()
            fl.step(tick)
            peak_open = max(peak_open, len(fl.socks))
            time.sleep(0.01)
    finally:
        stop.set()
        for th in threads:
            th.join()
    stats = agent.stats()
    mem = mem_kb(agent.pid)
    fl.close()
    hap.stop()
    agent.stop()
    ok = sum(1 for g, _, _ in answers if g)
    lat = [d for g, d, _ in answers if g]
    whys = {}
    for _, _, w in answers:
        if w != 'ok':
            whys[w] = whys.get(w, 0) + 1
    pok = sum(1 for g, _ in pings if g)
    print('--- %s: %d flood connections held at most (%d opened, %d closed by the agent or '
          'reset, %d refused)' % (mode, peak_open, fl.opened, fl.closed, fl.refused))
    print('    agent RSS: %d KiB before, peak %d KiB, %d KiB at the end'
          % (before['VmRSS'], mem['VmHWM'], mem['VmRSS']))
    print('    legitimate challenges through HAProxy: %d/%d answered (p50 %.1f ms, p99 %.1f ms, '
          'max %.1f ms)%s; control PING %d/%d'
          % (ok, len(answers), pct(lat, 50) * 1000, pct(lat, 99) * 1000, max(lat or [0]) * 1000,
             ''.join(', %d %s' % (v, k) for k, v in sorted(whys.items())), pok, len(pings)))
    print('    agent STATS: ' + ' '.join('%s=%s' % (k, stats.get(k)) for k in (
        'connections_total', 'connections_active', 'closed_max_connections',
        'closed_hello_timeout', 'closed_idle_timeout', 'closed_buffer_memory',
        'buffer_bytes', 'protocol_errors')))
    print('SUMMARY   %-14s peak RSS %6d KiB; legitimate answers %4d/%-4d (p99 %5.1f ms); '
          'PING %d/%d; flood: %d opened, %d held at most'
          % (mode, mem['VmHWM'], ok, len(answers), pct(lat, 99) * 1000, pok, len(pings),
             fl.opened, peak_open))
    sys.stdout.flush()
    return ok == len(answers) and pok == len(pings)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CONNS + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        print('SUMMARY agent flood: not run (the bench needs %d fds, the hard limit is %d)'
              % (want, hard))
        return 0
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want) if soft != resource.RLIM_INFINITY
                                                else soft, hard))
    print('SUMMARY agent under a flood of %d SPOP connections for %.0f s each (default flags: '
          '--max-connections 1000, --max-buffer-memory 32, --hello-timeout 10):'
          % (CONNS, SECONDS))
    all_ok = True
    with Lab('bench-flood') as lab:
        certs_list = make_cert(NullTAP(), lab)
        for mode in MODES:
            all_ok = run_mode(lab, mode, certs_list) and all_ok
    return 0 if all_ok else 1


if __name__ == '__main__':
    sys.exit(main())
