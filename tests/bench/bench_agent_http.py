#!/usr/bin/env python3
"""Challenge requests through the real haproxy, three ways, one process, one run:

  agent      /.well-known/acme-challenge/<token>: the shipped haproxy.cfg and
             spoe-acme.conf unchanged (SPOE NOTIFY to hacme-spoa, set-var
             txn.acme.keyauth, http-request return)
  map        /map/acme-challenge/<token>: map() on a map file filled through
             the runtime API (`add map`), then http-request return of the var
  stateless  /stateless/acme-challenge/<token>: acme.sh-style
             `lf-string "%[path,field(4,/)].THUMBPRINT"`

The bench config is the shipped haproxy.cfg with `nbthread 1` added to
global and the map and stateless rules put in front of the shipped rules in
fe_http (the agent path still goes through every shipped rule). haproxy and
hacme-spoa share CPU 0 (the server side), wrk runs on CPU 1 (-t1). wrk asks
for published tokens in turn (wrk_tokens.lua) and checks every answer.
Rounds alternate the three paths; each figure is the median over rounds.
Server CPU per request is haproxy's + the agent's CPU time (from /proc) over
the requests wrk counted: it stays meaningful when the box is busy.

Arguments: directories that each hold a `haproxy` to use (the 3.2 wrapper
of tests/lab/platforms.sh, say); `-` or none is the one on PATH. With
several, every one gets its own haproxy + hacme-spoa pair (all idle but the
one measured) and the rounds interleave them, so the versions are compared
under the same machine load.

Environment: HACME_BUILD, BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_CONNS
(32), BENCH_TOKENS (1000), BENCH_AGENT_LOG (info), BENCH_AGENT_CPU (the
agent's CPU; default 0, with haproxy), BENCH_AGENT_TRANSPORTS (how haproxy
reaches the agent, "tcp unix": 127.0.0.1 and a unix socket, each a
haproxy + hacme-spoa pair of its own per version), BENCH_PATHS (the paths
measured, "agent map stateless"; agent and map are needed for the ratio). Lines starting with
SUMMARY are collected by run.sh. Exit status 1 on any wrong answer.
"""

import base64
import os
import re
import statistics
import subprocess
import sys

from lab import Lab, LabError, SRC, http_get, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = int(os.environ.get('BENCH_SECONDS', '5'))
ROUNDS = int(os.environ.get('BENCH_ROUNDS', '3'))
CONNS = int(os.environ.get('BENCH_CONNS', '32'))
NTOKENS = int(os.environ.get('BENCH_TOKENS', '1000'))
AGENT_LOG = os.environ.get('BENCH_AGENT_LOG', 'info')
AGENT_CPU = int(os.environ['BENCH_AGENT_CPU']) if os.environ.get('BENCH_AGENT_CPU') else None
WARMUP = 2
HOST = 'www.example.com'
TICK = os.sysconf('SC_CLK_TCK')

PATHS = [
    ('agent', '/.well-known/acme-challenge/'),
    ('map', '/map/acme-challenge/'),
    ('stateless', '/stateless/acme-challenge/'),
]
_want = os.environ.get('BENCH_PATHS', 'agent map stateless').split()
PATHS = [p for p in PATHS if p[0] in _want]
TRANSPORTS = os.environ.get('BENCH_AGENT_TRANSPORTS', 'tcp unix').split()

BENCH_RULES = '''\
    # --- bench only (tests/bench/bench_agent_http.py): (b) a native map
    # lookup and (c) the acme.sh stateless answer, ahead of the shipped rules
    acl bench_map path_beg /map/acme-challenge/
    acl bench_stateless path_beg /stateless/acme-challenge/
    http-request set-var(txn.bench_ka) path,field(4,/),map({map}) if bench_map
    http-request return status 200 content-type text/plain lf-string "%[var(txn.bench_ka)]" if bench_map {{ var(txn.bench_ka) -m found }}
    http-request return status 404 content-type text/plain string "no such challenge" if bench_map
    http-request return status 200 content-type text/plain lf-string "%[path,field(4,/)].{thumb}" if bench_stateless
    # --- the shipped rules
'''


def b64(n):
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b'=').decode()


def bench_config(lab, map_path, thumb, tag=''):
    """The shipped haproxy.cfg with nbthread 1 and the bench rules."""
    with open(os.path.join(SRC, 'haproxy-conf', 'haproxy.cfg')) as f:
        text = f.read()
    text, n1 = re.subn(r'^global\n', 'global\n    nbthread 1\n', text, flags=re.M)
    text, n2 = re.subn(r'^(frontend fe_http\n(?:[ \t]*#.*\n)*[ \t]+bind [^\n]*\n)',
                       lambda m: m.group(1) + BENCH_RULES.format(map=map_path, thumb=thumb),
                       text, flags=re.M)
    if n1 != 1 or n2 != 1:
        raise LabError('haproxy-conf/haproxy.cfg changed shape: no global section or '
                       'no bind line right after "frontend fe_http"')
    return lab.write('bench-haproxy%s.cfg' % (tag and '-' + tag), text)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                st = f.read()
            rest = st[st.rfind(')') + 2:].split()
            total += int(rest[11]) + int(rest[12])     # utime, stime
    return total


def pin(pid, cpus):
    for tid in os.listdir('/proc/%d/task' % pid):
        os.sched_setaffinity(int(tid), cpus)


def server_status(hap):
    lines = hap.cmd('show stat').splitlines()
    cols = lines[0][2:].split(',')
    for l in lines[1:]:
        f = l.split(',')
        if f[cols.index('pxname')] == 'be_acme_agent' and f[cols.index('svname')] == 'agent1':
            return f[cols.index('status')]
    return None


def run_wrk(lab, port, prefix, thumb, tokfile, seconds, wrk_cpu):
    lua = os.path.join(HERE, 'wrk_tokens.lua')
    argv = ['wrk', '-t1', '-c%d' % CONNS, '-d%ds' % seconds, '--latency', '-s', lua,
            'http://127.0.0.1:%d' % port, '--', prefix, HOST, thumb, tokfile]
    if wrk_cpu is not None:
        argv = ['taskset', '-c', str(wrk_cpu)] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r'^RESULT (.*)$', p.stdout, re.M)
    if p.returncode != 0 or m is None:
        raise LabError('wrk failed (rc %d):\n%s%s' % (p.returncode, p.stdout, p.stderr))
    r = {}
    for kv in m.group(1).split():
        k, v = kv.split('=')
        r[k] = float(v)
    return r


class Target:
    """One haproxy (from bindir, None: PATH's) with its own hacme-spoa,
    both pinned to the server CPUs, the tokens published to both paths."""

    def __init__(self, lab, bindir, transport, thumb, tokens, server_cpus):
        self.env_path = {'PATH': bindir + os.pathsep + os.environ.get('PATH', '')} if bindir else {}
        self.version = haproxy_version(self.env_path)
        self.transport = transport
        self.name = '%s %s' % (self.version, transport)
        tag = re.sub(r'[^0-9A-Za-z.]', '_', self.version) + '-' + transport
        map_path = lab.write('bench-%s.map' % tag, '')
        if transport == 'unix':
            self.agent = agent = lab.agent(log_level=AGENT_LOG,
                                           listen_unix=lab.path('spop-%s.sock' % tag))
        elif transport == 'tcp':
            self.agent = agent = lab.agent(log_level=AGENT_LOG)
        else:
            raise LabError('BENCH_AGENT_TRANSPORTS: %r is neither tcp nor unix' % transport)
        d = lab.path('certs-' + tag)
        subprocess.run([os.path.join(SRC, 'haproxy-conf', 'make-fallback-cert.sh'), d],
                       check=True, capture_output=True, timeout=60)
        self.http_port = lab.port()
        sock = lab.path('admin-%s.sock' % tag)
        env = {
            'HACME_HTTP_BIND': '127.0.0.1:%d' % self.http_port,
            'HACME_HTTPS_BIND': '127.0.0.1:%d' % lab.port(),
            'HACME_CRT_LIST': os.path.join(d, 'certs.list'),
            'HACME_SPOE_CONF': os.path.join(SRC, 'haproxy-conf', 'spoe-acme.conf'),
            'HACME_AGENT_ADDR': agent.listen_addr,
            'HACME_STATS_SOCKET': sock,
            'HACME_APP_ADDR': '127.0.0.1:%d' % lab.port(),
        }
        env.update(self.env_path)
        self.hap = hap = lab.haproxy(bench_config(lab, map_path, thumb, tag), env=env,
                                     stats_socket=sock, name='haproxy-' + tag)
        wait_until(lambda: server_status(hap) == 'UP', 15, 'the agent UP in show stat', hap)
        if server_cpus is not None:
            pin(hap.pid, server_cpus)
            pin(agent.pid, {AGENT_CPU} if AGENT_CPU is not None else server_cpus)

        # publish: agent over its control socket (with the host), map via the runtime API
        replies = agent.ctl_many(['ADD %s %s.%s 3600 %s' % (t, t, thumb, HOST) for t in tokens],
                                 timeout=60)
        if not all(r == ['OK'] for r in replies):
            raise LabError('agent ADD failed: %r' % [r for r in replies if r != ['OK']][:3])
        # a payload must fit in tune.bufsize (16 kB): 50 lines of 131 bytes
        for i in range(0, len(tokens), 50):
            out = hap.cmd('add map %s' % map_path,
                          payload='\n'.join('%s %s.%s' % (t, t, thumb) for t in tokens[i:i + 50]))
            if out.strip():
                raise LabError('add map: %s' % out.strip())
        m = re.search(r'entry_cnt=(\d+)', hap.cmd('show map'))
        if m is None or int(m.group(1)) != len(tokens):
            raise LabError('the map holds %s entries, not %d' % (m and m.group(1), len(tokens)))
        self.results = {name: [] for name, _ in PATHS}
        self.agent_requests = 0

    def check(self, tok, unknown, thumb):
        """Every path answers a published token right, the unknown one as
        it should: a list of (description, good)."""
        checks = []
        for name, prefix in PATHS:
            st, _, body = http_get(self.http_port, prefix + tok, host=HOST)
            checks.append(('%s %s: published token -> 200 key authorization' % (self.name, name),
                           (st, body.decode()) == (200, '%s.%s' % (tok, thumb))))
            st, _, body = http_get(self.http_port, prefix + unknown, host=HOST)
            want = 200 if name == 'stateless' else 404   # stateless answers anything
            checks.append(('%s %s: unknown token -> %d' % (self.name, name, want), st == want))
        return checks


def main():
    ncpu = len(os.sched_getaffinity(0))
    server_cpus, wrk_cpu = ({0}, 1) if ncpu >= 2 else (None, None)
    failures = 0
    bindirs = [None if a == '-' else os.path.abspath(a) for a in sys.argv[1:]] or [None]
    with Lab('bench-http') as lab:
        thumb = b64(32)
        tokens = [b64(32) for _ in range(NTOKENS)]
        tokfile = lab.write('tokens.txt', ''.join(t + '\n' for t in tokens))
        targets = [Target(lab, d, t, thumb, tokens, server_cpus) for d in bindirs for t in TRANSPORTS]

        tok, unknown = tokens[NTOKENS // 2], b64(32)
        for tg in targets:
            for desc, good in tg.check(tok, unknown, thumb):
                print('%s %s' % ('ok  ' if good else 'FAIL', desc))
                failures += not good

        print('warm-up: %d s per path' % WARMUP, flush=True)
        for tg in targets:
            for name, prefix in PATHS:
                run_wrk(lab, tg.http_port, prefix, thumb, tokfile, WARMUP, wrk_cpu)

        hits0 = [tg.agent.stats()['hits'] for tg in targets]
        for rnd in range(ROUNDS):
            for tg in targets:
                for name, prefix in PATHS:
                    h0, a0 = cpu_ticks([tg.hap.pid]), cpu_ticks([tg.agent.pid])
                    r = run_wrk(lab, tg.http_port, prefix, thumb, tokfile, SECONDS, wrk_cpu)
                    h1, a1 = cpu_ticks([tg.hap.pid]), cpu_ticks([tg.agent.pid])
                    per_req = 1e6 / TICK / max(r['requests'], 1)
                    r['hap_us'] = (h1 - h0) * per_req
                    r['agent_us'] = (a1 - a0) * per_req
                    r['cpu_us'] = r['hap_us'] + r['agent_us']
                    tg.results[name].append(r)
                    if name == 'agent':
                        tg.agent_requests += r['requests']
                    print('round %d %-15s %-9s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU us/req '
                          'haproxy %5.1f agent %4.1f  ok %d bad %d non-200 %d socket errors %d'
                          % (rnd + 1, tg.name, name, r['rps'], r['p50_us'] / 1e3,
                             r['p99_us'] / 1e3, r['hap_us'], r['agent_us'], r['ok'], r['bad'],
                             r['non200'], r['err_connect'] + r['err_read'] + r['err_write'] +
                             r['err_timeout']),
                          flush=True)
        for tg, h0 in zip(targets, hits0):
            # wrk does not count the requests still in flight when it stops
            print('%s: agent STATS hits during the agent runs: %d (wrk counted %d answers)'
                  % (tg.name, tg.agent.stats()['hits'] - h0, tg.agent_requests))

    where = ('haproxy (nbthread 1) on CPU 0, hacme-spoa on CPU %s, wrk -t1 on CPU 1'
             % (AGENT_CPU if AGENT_CPU is not None else 0)
             if server_cpus is not None else 'unpinned (one CPU)')
    lines = []
    for tg in targets:
        out, bad = summary(tg, where)
        failures += bad
        lines += out
    print()
    for l in lines:
        print('SUMMARY ' + l)
    print('SUMMARY   correctness: %s' % ('all answers right' if failures == 0
                                          else '%d problem(s), see above' % failures))
    return 1 if failures else 0


def summary(tg, where):
    """The SUMMARY lines of one target and its count of runs with errors."""
    med = {}
    failures = 0
    for name, _ in PATHS:
        rs = tg.results[name]
        errs = sum(r['bad'] + r['non200'] + r['err_connect'] + r['err_read'] +
                   r['err_write'] + r['err_timeout'] for r in rs)
        failures += errs > 0
        med[name] = {k: statistics.median(r[k] for r in rs)
                     for k in ('rps', 'p50_us', 'p99_us', 'cpu_us', 'hap_us', 'agent_us')}
        med[name]['errors'] = errs
        med[name]['ok'] = sum(r['ok'] for r in rs)
    ratio = med['agent']['rps'] / med['map']['rps']
    added = (med['agent']['p99_us'] - med['map']['p99_us']) / 1e3
    out = ['HTTP through haproxy %s (agent over %s): %s; wrk -c%d, %d tokens, agent --log-level %s,'
           % (tg.version, tg.transport, where, CONNS, NTOKENS, AGENT_LOG),
           '  medians of %d rounds x %d s:' % (ROUNDS, SECONDS),
           '  %-10s %8s %7s %7s %20s %11s %7s'
           % ('path', 'req/s', 'p50 ms', 'p99 ms', 'CPU us/req hap+agent', 'answers ok', 'errors')]
    for name, _ in PATHS:
        m = med[name]
        out.append('  %-10s %8.0f %7.2f %7.2f %13.1f + %4.1f %11d %7d'
                   % (name, m['rps'], m['p50_us'] / 1e3, m['p99_us'] / 1e3, m['hap_us'],
                      m['agent_us'], m['ok'], m['errors']))
    # Rounds are interleaved: the ratio within each round compares paths
    # under the same neighbours' load, which on a shared box swings more
    # between rounds than the paths differ.
    per = sorted(a['rps'] / m['rps'] for a, m in zip(tg.results['agent'], tg.results['map'])
                 if m['rps'] > 0)
    out.append('  agent/map req/s: %.2f (target >= 0.70)%s'
               % (ratio, '; stateless/map: %.2f' % (med['stateless']['rps'] / med['map']['rps'])
                  if 'stateless' in med else ''))
    if per:
        out.append('  agent/map within each round: median %.2f (%s)'
                   % (statistics.median(per), ' '.join('%.2f' % x for x in per)))
    out.append('  p99 added by the agent vs map: %.2f ms (target < 1 ms); server CPU per '
               'request agent/map: %.2f' % (added, med['agent']['cpu_us'] / med['map']['cpu_us']))
    return out, failures


def haproxy_version(env=None):
    p = subprocess.run(['haproxy', '-v'], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    m = re.search(r'version (\S+)', p.stdout)
    return m.group(1) if m else '?'


if __name__ == '__main__':
    sys.exit(main())
