#!/usr/bin/env python3
"""Cluster mode (issue 11) for real: redis-server, pebble, three nodes
(HAProxy + `hacme run` + its own hacme-spoa each, `store redis://`), and a
round-robin HAProxy in front of pebble's http-01 port that spreads the CA's
validation requests over the nodes (http mode, so its log shows which node
answered each request with which status)."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()
NCERT = int(os.environ.get('CLUSTER_CERTS', '10'))
NAMES = ['c%d.example' % i for i in range(NCERT)]


def front(lab, port, nodes):
    """HAProxy round-robin on port over the nodes' :80, one log line per
    request: node, status, path."""
    lines = ['global', '    log stdout format raw local0', '    stats socket "${STATS_SOCK}" level admin',
             'defaults', '    mode http', '    log global',
             '    log-format "FRONT %b/%s %ST %HP"',
             '    timeout connect 2s', '    timeout client 10s', '    timeout server 10s',
             'frontend f', '    bind 127.0.0.1:%d' % port, '    default_backend nodes',
             'backend nodes', '    balance roundrobin']
    for i, st in enumerate(nodes):
        lines.append('    server n%d 127.0.0.1:%d' % (i, st.http_port))
    path = lab.write('front.cfg', '\n'.join(lines) + '\n')
    return lab.haproxy(path, name='front')


def node_config(lab, pb, st, i, rd, keyfile, extra=(), names=NAMES):
    certs = [(n.split('.')[0], ['domains %s' % n]) for n in names]
    return lab.hacme_config(pb, st, certs=certs, name='node%d.cfg' % i,
                            glob=['store redis://127.0.0.1:%d/0' % rd.port,
                                  'store-key-file %s' % keyfile,
                                  'node-name n%d' % i] + list(extra))


def start_node(lab, cfg, i):
    return lab.spawn('hacme-n%d' % i, [L.exe('acme/hacme'), '-c', cfg, 'run'],
                     ready=r'hacme run: \d+ certificates', env={'HACME_LOG_LEVEL': 'info'})


def agent_reached(st):
    try:
        return L.http_get(st.http_port, '/.well-known/acme-challenge/probe0')[0] == 404
    except Exception:
        return False


def serial_served(st, name):
    try:
        return L.tls_probe(st.https_port, name)['serial']
    except L.LabError:
        return None


def issuer_served(st, name):
    try:
        i = L.tls_probe(st.https_port, name)
        return i['serial'], i['issuer']
    except L.LabError:
        return None, None


def all_served(nodes, names, inter, pred=None):
    for st in nodes:
        for n in names:
            s, iss = issuer_served(st, n)
            if s is None or iss != inter or (pred is not None and not pred(n, s)):
                return False
    return True


def log_times(runs, regex):
    out = []
    for r in runs:
        for m in re.finditer(r'^(\S+)Z hacme \w+: ' + regex, r.read_log(), re.M):
            ts = time.mktime(time.strptime(m.group(1)[:19], '%Y-%m-%dT%H:%M:%S')) + \
                float('0' + m.group(1)[19:])
            out.append((ts, r.name) + m.groups()[1:])
    return out


def deploy_lag(runs, names, nnodes):
    """Worst time from a certificate's issuance (one node's `new
    certificate` line) to the last node's `deployed to` line for it."""
    issued = {m[2]: m[0] for m in log_times(runs, r'(\S+): new certificate, serial')}
    worst = 0.0
    for n in issued:
        dep = [m[0] for m in log_times(runs, r'(%s): deployed to' % re.escape(n))]
        if len(dep) < nnodes:
            return float('inf')
        worst = max(worst, max(dep) - issued[n])
    return worst if len(issued) == len(names) else float('inf')


def main():
    with L.Lab('cluster') as lab:
        hp = lab.port()
        pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
        inter = L.cert_info(pb.intermediates(0))['subject']
        rd = lab.redis()
        keyfile = lab.write('store.key', os.urandom(32).hex() + '\n', mode=0o600)
        nodes = [lab.stack(name='hap-n%d' % i) for i in range(3)]
        # each HAProxy reaches its agent (an unknown token: 404, not 503)
        for st in nodes:
            L.wait_until(lambda: agent_reached(st), 20, 'HAProxy reaches its agent')
        fr = front(lab, hp, nodes)
        # the nodes join first (no certificate), then all get the same
        # config (SIGHUP): every node is live before the first order
        cfgs = [node_config(lab, pb, st, i, rd, keyfile, names=()) for i, st in enumerate(nodes)]
        runs = [start_node(lab, cfgs[i], i) for i in range(3)]
        for r in runs:
            r.wait_log(r'store 127\.0\.0\.1:\d+: connected', timeout=20)
        L.wait_until(lambda: len(rd.cmd('KEYS', 'hacme:node:*')) == 3, 20, 'three heartbeats')
        cfgs = [node_config(lab, pb, st, i, rd, keyfile) for i, st in enumerate(nodes)]
        mark = pb.proc.log_mark()
        t0 = time.time()
        for r in runs:
            r.kill(signal.SIGHUP)
        ok = L.wait_until(lambda: all_served(nodes, NAMES, inter), 180,
                          'every node serves every name', interval=0.5)
        t.ok(ok, 'every node serves all %d names by SNI with a pebble certificate (%.1f s)'
             % (NCERT, time.time() - t0))
        t.eq(pb.orders_created(mark), NCERT, 'pebble got exactly %d orders' % NCERT)
        same = all(len({serial_served(st, n) for st in nodes}) == 1 for n in NAMES)
        t.ok(same, 'the three nodes serve the same certificate for each name')
        t.eq(sum(r.count_log(r': new certificate, serial') for r in runs), NCERT,
             'the nodes together got %d new certificates from the CA' % NCERT)
        # the 2 s target is measured by make bench; here only a loose bound
        lag = deploy_lag(runs, NAMES, len(nodes))
        t.ok(lag <= 15.0, 'every node served each certificate soon after its issuance '
             '(worst %.2f s, from the logs)' % lag)
        flog = fr.read_log()
        reqs = re.findall(r'FRONT nodes/(n\d) (\d+) /\.well-known/acme-challenge/(\S+)', flog)
        t.ok(len(reqs) >= NCERT, 'the CA validated through the round-robin front (%d requests)'
             % len(reqs))
        t.ok({r[0] for r in reqs} == {'n0', 'n1', 'n2'},
             'validation requests reached every node: %s' % sorted({r[0] for r in reqs}))
        bad = [r for r in reqs if r[1] != '200']
        t.ok(not bad, 'every validation request was answered 200 by whichever node got it '
             '(%d not: %s)' % (len(bad), bad[:3]))
        acked = sum(r.count_log(r'every live node holds it') for r in runs)
        t.ok(acked >= NCERT, 'each token was acknowledged by every live node before the CA '
             'was asked (%d tokens)' % acked)
        warned = sum(r.count_log(r'no acknowledgement in') for r in runs)
        t.eq(warned, 0, 'no token went to the CA without every node')
        keys = rd.cmd('KEYS', 'hacme:cert:*')
        t.eq(len(keys), NCERT, 'Redis holds %d certificates' % NCERT)
        k = rd.cmd('HGET', 'hacme:cert:c0', 'key') or ''
        t.ok(k.startswith('hs1.') and 'PRIVATE' not in k, 'the private key in Redis is sealed')
        t.ok(rd.cmd('EXISTS', 'hacme:acct:pebble') == 1 and
             'PRIVATE' not in (rd.cmd('GET', 'hacme:acct:pebble') or 'PRIVATE'),
             'one account key, sealed, shared')
        accts = {open(c + '.state/account/pebble/key.pem').read() for c in cfgs}
        t.eq(len(accts), 1, 'the three nodes use the same account key')
        _ = inter
    return t.done()


if __name__ == '__main__':
    sys.exit(main())
