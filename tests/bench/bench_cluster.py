#!/usr/bin/env python3
"""bench_cluster.py - cluster mode (issue 11) on one box: redis-server and
three nodes (HAProxy + `hacme run` + hacme-spoa each, `store redis://`).

1. token publication -> every node answering: the bench writes and
   publishes each token as an ordering node does (the same keys and
   message), and times until the third node's acknowledgement arrives
   (a node acknowledges once its agent holds the token, so its HAProxy
   answers it); a sample is then fetched from every node's HAProxy.
   BENCH_CLUSTER_TOKENS (1000) tokens, one after another.
2. issuance -> every node serving: BENCH_CLUSTER_CERTS (10) certificates
   from pebble behind a round-robin HAProxy; per certificate the time
   from the ordering node's `new certificate` line to the last node's
   `deployed to` line (deployed = committed through the runtime API and
   seen by the TLS check); orders per certificate (pebble's log) and
   Redis commands per certificate (INFO total_commands_processed over the
   issuance, heartbeats included).
Figures, not a test: no time limit. SUMMARY lines for tests/bench/run.sh."""
import base64
import os
import re
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lab'))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
import lab as L  # noqa: E402
import test_cluster as TC  # noqa: E402

NTOK = int(os.environ.get('BENCH_CLUSTER_TOKENS', '1000'))
NCERT = int(os.environ.get('BENCH_CLUSTER_CERTS', '10'))
TOK_LUA = ("redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
           "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
           "redis.call('DEL', KEYS[3])\n"
           "return redis.call('PUBLISH', 'hacme:ev', 'tok ' .. ARGV[1])\n")


def resp(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out


class Acks(threading.Thread):
    """SUBSCRIBE hacme:ev; the arrival time of every `ack T NODE`."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.s = socket.create_connection(('127.0.0.1', port))
        self.s.sendall(resp('SUBSCRIBE', 'hacme:ev'))
        self.f = self.s.makefile('rb')
        L._resp_read(self.f)
        self.acks = {}
        self.cv = threading.Condition()

    def run(self):
        while True:
            try:
                m = L._resp_read(self.f)
            except Exception:
                return
            now = time.perf_counter()
            if isinstance(m, list) and len(m) == 3 and m[0] == 'message' and \
                    m[2].startswith('ack '):
                _, tok, node = m[2].split(' ')
                with self.cv:
                    self.acks.setdefault(tok, []).append((node, now))
                    self.cv.notify_all()

    def wait(self, tok, n, timeout=10):
        end = time.time() + timeout
        with self.cv:
            while len(self.acks.get(tok, [])) < n:
                left = end - time.time()
                if left <= 0:
                    return None
                self.cv.wait(left)
            return max(t for _, t in self.acks[tok][:n])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def tokens(lab):
    rd = lab.redis()
    keyfile = lab.write('store.key', os.urandom(32).hex() + '\n', mode=0o600)
    nodes = [lab.stack(name='hap-n%d' % i) for i in range(3)]
    for st in nodes:
        L.wait_until(lambda: TC.agent_reached(st), 20, 'HAProxy reaches its agent')
    dummy = type('P', (), {'directory': 'https://127.0.0.1:9/dir', 'ca_bundle': '/dev/null'})
    cfgs = [TC.node_config(lab, dummy, st, i, rd, keyfile, names=()) for i, st in enumerate(nodes)]
    runs = [TC.start_node(lab, c, i) for i, c in enumerate(cfgs)]
    for r in runs:
        r.wait_log(r'store 127\.0\.0\.1:\d+: connected', timeout=20)
    L.wait_until(lambda: len(rd.cmd('KEYS', 'hacme:node:*')) == 3, 20, 'three heartbeats')
    acks = Acks(rd.port)
    acks.start()
    pub = socket.create_connection(('127.0.0.1', rd.port))
    pf = pub.makefile('rb')
    thumb = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b'=').decode()
    lat, missing, sample = [], 0, []
    for i in range(NTOK):
        tok = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b'=').decode()
        ka = tok + '.' + thumb
        t0 = time.perf_counter()
        pub.sendall(resp('EVAL', TOK_LUA, 3, 'hacme:tok:' + tok, 'hacme:toks',
                         'hacme:ack:' + tok, tok, ka + ' *', 120000,
                         int((time.time() + 120) * 1000)))
        L._resp_read(pf)
        t_all = acks.wait(tok, 3)
        if t_all is None:
            missing += 1
            continue
        lat.append((t_all - t0) * 1000)
        if i % (NTOK // 20 or 1) == 0:
            sample.append((tok, ka))
    ok = 0
    for tok, ka in sample:
        for st in nodes:
            s, h, body = L.http_get(st.http_port, '/.well-known/acme-challenge/' + tok)
            ok += s == 200 and body.decode().strip() == ka
    print('tokens: %d published, %d not acknowledged by all 3 nodes in 10 s' % (NTOK, missing))
    print('  publish -> 3rd node acknowledged: p50 %.2f ms, p99 %.2f ms, max %.2f ms'
          % (pct(lat, 50), pct(lat, 99), max(lat)))
    print('  sample fetched through every node\'s HAProxy: %d of %d answered with the key '
          'authorization' % (ok, len(sample) * 3))
    for r in runs:
        r.stop()
    return lat, missing, ok, len(sample) * 3


def issuance(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    inter = L.cert_info(pb.intermediates(0))['subject']
    rd = lab.redis()
    keyfile = lab.write('store2.key', os.urandom(32).hex() + '\n', mode=0o600)
    nodes = [lab.stack(name='ihap-n%d' % i) for i in range(3)]
    for st in nodes:
        L.wait_until(lambda: TC.agent_reached(st), 20, 'HAProxy reaches its agent')
    TC.front(lab, hp, nodes)
    names = ['b%d.example' % i for i in range(NCERT)]
    cfgs = [TC.node_config(lab, pb, st, i, rd, keyfile, names=()) for i, st in enumerate(nodes)]
    runs = [TC.start_node(lab, c, i) for i, c in enumerate(cfgs)]
    for r in runs:
        r.wait_log(r'store 127\.0\.0\.1:\d+: connected', timeout=20)
    L.wait_until(lambda: len(rd.cmd('KEYS', 'hacme:node:*')) == 3, 20, 'three heartbeats')
    for i, st in enumerate(nodes):
        TC.node_config(lab, pb, st, i, rd, keyfile, names=names)
    c0 = int(re.search(r'total_commands_processed:(\d+)', rd.cmd('INFO', 'stats')).group(1))
    mark = pb.proc.log_mark()
    t0 = time.time()
    for r in runs:
        r.kill(signal.SIGHUP)
    L.wait_until(lambda: TC.all_served(nodes, names, inter), 300, 'all served', interval=0.5)
    dt = time.time() - t0
    c1 = int(re.search(r'total_commands_processed:(\d+)', rd.cmd('INFO', 'stats')).group(1))
    issued = {m[2]: m[0] for m in TC.log_times(runs, r'(\S+): new certificate, serial')}
    lags = []
    for n in issued:
        dep = [m[0] for m in TC.log_times(runs, r'(%s): deployed to' % re.escape(n))]
        if len(dep) >= 3:
            lags.append(max(dep) - issued[n])
    orders = pb.orders_created(mark)
    print('issuance: %d certificates, %d orders, all served on 3 nodes after %.1f s' %
          (NCERT, orders, dt))
    if lags:
        print('  issuance -> every node serving: p50 %.2f s, max %.2f s' % (pct(lags, 50), max(lags)))
    print('  Redis commands: %d over the issuance (%.1f s, heartbeats included): %.0f per '
          'certificate' % (c1 - c0, dt, (c1 - c0) / NCERT))
    return orders, lags, c1 - c0, dt


def main():
    with L.Lab('bench-cluster') as lab:
        lat, missing, ok, sampled = tokens(lab)
        orders, lags, cmds, dt = issuance(lab)
    print('SUMMARY cluster, 3 nodes on one box: token publish -> all 3 nodes hold it: p50 %.2f ms, '
          'p99 %.2f ms over %d tokens (%d missing; target p99 <= 50 ms: %s); sample via each '
          'HAProxy %d/%d' % (pct(lat, 50), pct(lat, 99), NTOK, missing,
                             'met' if pct(lat, 99) <= 50 and not missing else 'NOT met', ok, sampled))
    print('SUMMARY cluster: issuance -> every node serving: p50 %.2f s, max %.2f s (target 2 s: %s); '
          '%d orders for %d certificates; %.0f Redis commands per certificate'
          % (pct(lags, 50) if lags else -1, max(lags) if lags else -1,
             'met' if lags and max(lags) <= 2 else 'NOT met', orders, NCERT, cmds / NCERT))
    return 0 if not missing and ok == sampled and orders == NCERT else 1


if __name__ == '__main__':
    sys.exit(main())
