#!/usr/bin/env python3
"""hacme issue vs certbot --standalone, one pebble, one haproxy, one run.

One pebble (PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=0 so every order is
validated for real, pebble's default 5 % nonce rejection kept) validates
http-01 on one haproxy's :80, which runs the shipped haproxy.cfg plus a
certbot route:

  Host ending in .cb.example   -> backend be_bench_certbot, certbot's side
                                  port (`certbot certonly --standalone
                                  --http-01-port <side port>`, the usual
                                  recipe behind HAProxy)
  any other challenge request  -> the shipped agent rules (SPOE NOTIFY to
                                  hacme-spoa, http-request return)

The shipped `http-request return` rules get `!bench_certbot` so their 404
does not swallow certbot's names; the SPOE event is not fired for them.
Both routes are checked before anything is timed.

  1. one certificate with 2 names, REPEAT times each (interleaved), fresh
     names every time: wall time of `hacme -c CFG issue NAME` and of
     `certbot certonly` (process start to exit). Both clients have an
     account already (a warm-up order each, timed apart).
  2. NCERTS single-name certificates: `hacme issue` of NCERTS cert sections
     in one call at concurrency 32 (the default), ROUNDS rounds, vs certbot
     one after another (all NCERTS when that fits in CERTBOT_BUDGET seconds,
     else at least CERTBOT_MIN runs, extrapolated). Then a profile of one
     2-name order (strace of hacme's epoll waits: timer sleeps vs network
     waits), and last the same batch at concurrency NCERTS: pebble 2.4.0
     can deadlock under that many concurrent newOrders (a lock-order bug
     between FindValidAuthorization and AddChallenge), after which it
     answers nothing. A round that does not end within GUARD seconds with
     pebble silent gets pebble's goroutine dump (SIGQUIT) checked for that
     deadlock and reported as "no figure", not as a hacme failure.

hacme's config names the haproxy's runtime API, crt-list and tls-check, so its
wall time includes storing and hot-loading every certificate into the running
haproxy (certbot's includes no reload). certbot retries a rejected nonce only
once: a certbot run that fails on pebble's nonce rejection is run again (at
most CB_TRIES times) and its time counts, as it would for a user.

Every figure is checked: exit status 0, a certificate file per run whose SANs
are exactly the names asked for, and pebble's log showing one issued
certificate and one validation per name for each phase (plus at most one per
certbot re-run). A failed check makes the figures void (exit status 1).

Lines starting with SUMMARY are collected by run.sh.
Environment: HACME_BUILD, BENCH_ISSUE_REPEAT (5), BENCH_ISSUE_CERTS (100),
BENCH_ISSUE_ROUNDS (3), BENCH_CERTBOT_BUDGET (300 s), BENCH_CERTBOT_MIN (20),
BENCH_ISSUE_PROFILE (1), BENCH_ISSUE_GUARD (60 s).
"""

import http.server
import os
import re
import resource
import shutil
import signal
import socketserver
import statistics
import subprocess
import sys
import threading
import time

from lab import Lab, LabError, SRC, Stack, cert_info, exe, http_get, http_request, wait_until
from bench_agent_http import cpu_ticks, haproxy_version, server_status

REPEAT = int(os.environ.get('BENCH_ISSUE_REPEAT', '5'))
NCERTS = int(os.environ.get('BENCH_ISSUE_CERTS', '100'))
ROUNDS = int(os.environ.get('BENCH_ISSUE_ROUNDS', '3'))
CB_BUDGET = float(os.environ.get('BENCH_CERTBOT_BUDGET', '300'))
CB_MIN = int(os.environ.get('BENCH_CERTBOT_MIN', '20'))
PROFILE = os.environ.get('BENCH_ISSUE_PROFILE', '1') not in ('', '0')
GUARD = int(os.environ.get('BENCH_ISSUE_GUARD', '60'))
CB_TRIES = 3
TICK = os.sysconf('SC_CLK_TCK')
CB_SUFFIX = '.cb.example'
CB_ACL = 'req.hdr(host),field(1,:) -i -m end ' + CB_SUFFIX

BENCH_ACL = '''\
    # --- bench only (tests/bench/bench_issue.py): certbot's names go to
    # certbot's side port; the shipped return rules skip them
    acl bench_certbot {acl}
'''

BENCH_USE = '''\
    # --- bench only: after every http-request rule, as HAProxy runs them
    use_backend be_bench_certbot if acme_path bench_certbot

'''

BENCH_BACKEND = '''
# --- bench only: certbot --standalone --http-01-port {port}
backend be_bench_certbot
    server certbot 127.0.0.1:{port}
'''


def bench_configs(lab, side_port):
    """haproxy.cfg and spoe-acme.conf with the certbot route."""
    conf = os.path.join(SRC, 'haproxy-conf')
    with open(os.path.join(conf, 'haproxy.cfg')) as f:
        text = f.read()
    text, n1 = re.subn(r'^(frontend fe_http\n(?:[ \t]*#.*\n)*[ \t]+bind [^\n]*\n)',
                       lambda m: m.group(1) + BENCH_ACL.format(acl=CB_ACL), text, flags=re.M)
    # the end of fe_http: the next section keyword
    text, n4 = re.subn(r'^(frontend fe_http\n(?:(?:[ \t#].*)?\n)*?)(?=\S)',
                       lambda m: m.group(1).rstrip('\n') + '\n' + BENCH_USE, text, flags=re.M)
    text, n2 = re.subn(r'^([ \t]+http-request return\b.*\bif acme_path)\b',
                       r'\1 !bench_certbot', text, flags=re.M)
    text += BENCH_BACKEND.format(port=side_port)
    with open(os.path.join(conf, 'spoe-acme.conf')) as f:
        spoe = f.read()
    spoe, n3 = re.subn(r'^([ \t]+event on-frontend-http-request if .*)$',
                       lambda m: m.group(1) + ' !{ %s }' % CB_ACL, spoe, flags=re.M)
    if n1 != 1 or n2 < 1 or n3 != 1 or n4 != 1:
        raise LabError('haproxy-conf changed shape: want a bind line right after "frontend '
                       'fe_http", `http-request return ... if acme_path` rules and one SPOE '
                       '`event` line (got %d, %d, %d, %d)' % (n1, n2, n3, n4))
    return lab.write('bench-haproxy.cfg', text), lab.write('bench-spoe-acme.conf', spoe)


class Reusable(socketserver.TCPServer):
    allow_reuse_address = True


class Fixed(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'certbot side port'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def start_stack(lab, http_port, side_port):
    """hacme-spoa + haproxy with the bench config (what Lab.stack() does
    with the shipped one)."""
    st = Stack()
    st.agent = lab.agent(log_level='info')
    st.agent_port = st.agent.listen_port
    st.cert_dir = lab.path('certs')
    subprocess.run([os.path.join(SRC, 'haproxy-conf', 'make-fallback-cert.sh'), st.cert_dir],
                   check=True, capture_output=True, timeout=60)
    st.crt_list = os.path.join(st.cert_dir, 'certs.list')
    st.http_port = http_port
    st.https_port = lab.port()
    st.stats_sock = lab.path('admin.sock')
    cfg, spoe = bench_configs(lab, side_port)
    env = {
        'HACME_HTTP_BIND': '127.0.0.1:%d' % http_port,
        'HACME_HTTPS_BIND': '127.0.0.1:%d' % st.https_port,
        'HACME_CRT_LIST': st.crt_list,
        'HACME_SPOE_CONF': spoe,
        'HACME_AGENT_ADDR': '127.0.0.1:%d' % st.agent_port,
        'HACME_AGENT_CHECK_INTER': '200ms',
        'HACME_STATS_SOCKET': st.stats_sock,
        'HACME_APP_ADDR': '127.0.0.1:%d' % lab.port(),
    }
    st.hap = lab.haproxy(cfg, env=env, stats_socket=st.stats_sock)
    wait_until(lambda: server_status(st.hap) == 'UP', 15, 'the agent UP in show stat', st.hap)
    return st


def check_routes(st, side_port):
    """A certbot name reaches the side port without touching the agent;
    another name gets the agent's 404. Returns a list of (ok, what)."""
    srv = Reusable(('127.0.0.1', side_port), Fixed)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        n0 = st.agent.stats()['notifies']
        s1, _, b1 = http_get(st.http_port, '/.well-known/acme-challenge/abc', host='x' + CB_SUFFIX)
        n1 = st.agent.stats()['notifies']
        s2, _, b2 = http_get(st.http_port, '/.well-known/acme-challenge/abc',
                             host='x.hacme.example:80')
        n2 = st.agent.stats()['notifies']
    finally:
        srv.shutdown()
        srv.server_close()
    return [((s1, b1) == (200, b'certbot side port'),
             'x%s challenge -> certbot side port (got %d)' % (CB_SUFFIX, s1)),
            (n1 == n0, 'and the agent saw no NOTIFY for it'),
            (s2 == 404, 'x.hacme.example unknown token -> the agent rules\' 404 (got %d)' % s2),
            (n2 == n1 + 1, 'through the agent (one NOTIFY)')]


def hacme_cfg(lab, name, pb, st, state, certs, glob=()):
    """A hacme config; every config shares one state dir (one account)."""
    lines = ['global', '    state-dir %s' % state,
             '    runtime-api unix@%s' % st.stats_sock,
             '    crt-list %s' % st.crt_list,
             '    cert-dir %s' % st.cert_dir,
             '    tls-check 127.0.0.1:%d' % st.https_port,
             '    preflight-connect 127.0.0.1:%d' % st.http_port,
             '    agent %s' % st.agent.control]
    lines += ['    ' + l for l in glob]
    lines += ['ca pebble', '    directory %s' % pb.directory, '    ca-bundle %s' % pb.ca_bundle,
              '    contact mailto:ops@example.com']
    for cname, names in certs:
        lines += ['cert %s' % cname, '    domains %s' % ' '.join(names)]
    return lab.write(name, '\n'.join(lines) + '\n')


def timed(lab, argv, env=None, timeout=900):
    """Run argv; (rc, stdout, stderr, wall seconds, CPU seconds of it and
    its children). Output is appended to <lab>/runs.log."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    with open(lab.path('runs.log'), 'a') as f:
        f.write('$ %s\n[rc %d, %.3f s]\n%s%s' % (' '.join(argv), p.returncode, wall,
                                                 p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr, wall, cpu


class Certbot:
    """certbot certonly --standalone with one config dir (one account)."""

    def __init__(self, lab, pb, side_port):
        self.lab, self.pb, self.side_port = lab, pb, side_port
        self.base = lab.path('certbot')
        self.env = dict(os.environ, REQUESTS_CA_BUNDLE=pb.ca_bundle)
        self.retries = 0

    def issue(self, names):
        argv = ['certbot', 'certonly', '--standalone', '--non-interactive', '--agree-tos',
                '--register-unsafely-without-email', '--server', self.pb.directory,
                '--http-01-port', str(self.side_port), '--http-01-address', '127.0.0.1',
                '--config-dir', self.base + '/conf', '--work-dir', self.base + '/work',
                '--logs-dir', self.base + '/logs', '--cert-name', names[0],
                '--key-type', 'ecdsa']
        for n in names:
            argv += ['-d', n]
        wall = cpu = 0.0
        for attempt in range(CB_TRIES):
            rc, out, err, w, c = timed(self.lab, argv, env=self.env)
            wall += w
            cpu += c
            if rc == 0 or not self.nonce_failure():
                break
            self.retries += 1
            print('certbot %s: failed on a rejected nonce (attempt %d), run again; the time '
                  'counts' % (names[0], attempt + 1), flush=True)
        return rc, out, err, wall, cpu

    def nonce_failure(self):
        """Whether certbot's last run ended on pebble's nonce rejection:
        certbot retries a badNonce once only, and certbot 2.1.0 on Python
        3.11 then prints `AttributeError: can't set attribute` (josepy's
        immutable exception) instead of the ACME error, so look in its log."""
        try:
            with open(os.path.join(self.base, 'logs', 'letsencrypt.log')) as f:
                text = f.read()
        except OSError:
            return False
        i = text.rfind('Exiting abnormally')
        return i >= 0 and 'urn:ietf:params:acme:error:badNonce' in text[i:i + 4000]

    def cert_path(self, names):
        return os.path.join(self.base, 'conf', 'live', names[0], 'fullchain.pem')


def sans_of(path):
    try:
        with open(path) as f:
            return sorted(cert_info(f.read())['sans'])
    except (OSError, LabError):
        return None


class Checker:
    def __init__(self):
        self.problems = []

    def ok(self, cond, what):
        if not cond:
            self.problems.append(what)
            print('FAIL ' + what, flush=True)
        return cond

    def certs(self, label, items):
        """items: (path, names): each file exists with exactly those SANs.
        Returns how many are right."""
        good = sum(1 for path, names in items if sans_of(path) == sorted(names))
        self.ok(good == len(items), '%s: %d of %d certificate files hold exactly the names '
                'asked for' % (label, good, len(items)))
        return good

    def pebble(self, label, pb, mark, ncerts, nnames, retried=0):
        """pebble's log since mark: ncerts issued and nnames validated (up
        to `retried` more each when failed runs were run again)."""
        issued = len(pb.issued_serials(mark))
        vals = pb.validations(mark)
        self.ok(ncerts <= issued <= ncerts + retried, '%s: pebble issued %d certificates '
                '(want %d)' % (label, issued, ncerts))
        self.ok(nnames <= vals <= nnames + retried * nnames, '%s: pebble validated %d '
                'authorizations (want %d: AUTHZREUSE=0)' % (label, vals, nnames))
        return issued, vals


def tail1(text, n=300):
    """The end of a program's output on one line, for a problem string."""
    return ' '.join(text.split())[-n:]


def hacme_argv(cfg, *args):
    return [exe('acme/hacme'), '-c', cfg] + list(args)


def stored(state, cname):
    return os.path.join(state, 'certs', cname, 'chain.pem')


STAMP = re.compile(r'^\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d)\.(\d{3})Z hacme \w+: (.*)$')
STRACE_LINE = re.compile(r'^\d+ +(\d\d):(\d\d):(\d\d\.\d+) (epoll_p?wait|connect)\((.*)\) += (-?\d+)'
                         r'(?: \w+ \([^)]*\))? <([\d.]+)>$')


def hms(h, m, sec):
    return int(h) * 3600 + int(m) * 60 + float(sec)


def profile(lab, pb, st, state):
    """One 2-name order under `strace` (epoll waits and connects only) and
    `hacme -v`: how much of the wall time hacme's loop sleeps on a timer,
    waits for the network, or runs. Returns (ok, lines for the summary)."""
    names = ['prof.hacme.example', 'www.prof.hacme.example']
    cfg = hacme_cfg(lab, 'prof.cfg', pb, st, state, [('prof', names)])
    trace = lab.path('prof.strace')
    argv = hacme_argv(cfg, '-v', 'issue', 'prof')
    traced = shutil.which('strace') is not None
    if traced:
        argv = ['strace', '-f', '-qq', '-tt', '-T', '-e', 'trace=epoll_wait,epoll_pwait,connect',
                '-o', trace] + argv
    rc, out, err, wall, cpu = timed(lab, argv)
    ok = rc == 0 and os.path.exists(stored(state, 'prof'))
    print('\n--- profile: %shacme -v issue (2 names): rc %d, wall %.3f s, CPU %.3f s'
          % ('strace ' if traced else '', rc, wall, cpu))
    events = []
    for line in err.splitlines():
        m = STAMP.match(line)
        if m:
            events.append((hms(m.group(1), m.group(2), m.group(3)) + int(m.group(4)) / 1000,
                           'log  ' + m.group(5)[:100]))
    timer = io = 0.0
    ntimer = 0
    conns = {}
    ports = {pb.listen_port: 'pebble', st.http_port: 'haproxy :80 (pre-flight)',
             st.https_port: 'haproxy :443 (tls-check)'}
    if traced and os.path.exists(trace):
        with open(trace) as f:
            for line in f:
                m = STRACE_LINE.match(line.rstrip('\n'))
                if m is None:
                    continue
                t0 = hms(m.group(1), m.group(2), m.group(3))
                call, args, ret, dur = m.group(4), m.group(5), int(m.group(6)), float(m.group(7))
                if call == 'connect':
                    pm = re.search(r'sin_port=htons\((\d+)\)', args)
                    what = ports.get(int(pm.group(1)), 'port %s' % pm.group(1)) if pm else 'unix socket'
                    conns[what] = conns.get(what, 0) + 1
                    continue
                if ret == 0:
                    timer += dur
                    ntimer += 1
                else:
                    io += dur
                if dur >= 0.005:
                    events.append((t0, 'wait %3.0f ms, ended by %s' % (dur * 1000, 'its timer' if ret == 0
                                                                        else 'I/O')))
    if events:
        events.sort()
        first = events[0][0]
        for t, what in events:
            print('  +%4.0f ms  %s' % ((t - first) * 1000, what))
    lines = []
    if traced:
        lines.append('  profile of one 2-name order (strace): wall %.3f s = loop asleep on a timer '
                     '%.3f s (%d waits) + waiting for the network %.3f s + the rest (running, start-up, '
                     'strace; CPU incl. strace %.3f s) %.3f s'
                     % (wall, timer, ntimer, io, cpu, wall - timer - io))
        lines.append('    TCP connections opened: %s' % (', '.join('%s %d' % kv for kv in sorted(conns.items()))
                                                       or 'none seen'))
    return ok, lines


def latencies(out):
    """Per-order seconds from hacme's `issued ... (0.71 s, ...)` lines."""
    return sorted(float(x) for x in re.findall(r': issued, .*\((\d+\.\d+) s, ', out))


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float('nan')


def pebble_alive(pb):
    """Whether pebble's store answers: its directory does not touch the
    store, a certificate look-up takes the store's read lock."""
    try:
        st, _, _ = http_request('GET', pb.mgmt + '/cert-status-by-serial/1', ca=pb.ca_bundle,
                                timeout=5)
        return st in (200, 404)
    except OSError:
        return False


def pebble_deadlock(lab, pb):
    """pebble no longer answers: SIGQUIT makes Go print every goroutine;
    True when the dump shows pebble 2.4.0's lock-order deadlock (a newOrder
    in FindValidAuthorization holding the store's read lock and waiting for
    an authorization's lock, while makeChallenge waits for the store's
    write lock in AddChallenge). Ends pebble."""
    mark = pb.proc.log_mark()
    pb.proc.kill(signal.SIGQUIT)
    try:
        pb.proc.wait(10)
    except LabError:
        pass
    dump = pb.proc.read_log(mark)
    lab.write('pebble-goroutines.txt', dump)
    # goroutines per innermost pebble function: where they wait
    where = {}
    for g in dump.split('\ngoroutine ')[1:]:
        fn = re.search(r'^github\.com/letsencrypt/pebble/(\S+)\(.*\)$', g, re.M)
        if fn:
            where[fn.group(1)] = where.get(fn.group(1), 0) + 1
    for fn, n in sorted(where.items(), key=lambda kv: -kv[1]):
        print('  pebble goroutines in %-50s %d' % (fn, n))
    return ('FindValidAuthorization' in dump and 'AddChallenge' in dump,
            dump.count('\ngoroutine '))


def wedge(lab, pb, chk, conc):
    """A batch did not end in time or pebble went silent: say why. Only
    pebble's own known deadlock is not counted against hacme."""
    if pebble_alive(pb):
        what = 'hacme did not finish within %d s, pebble still answers' % GUARD
        chk.ok(False, 'concurrency %d: %s' % (conc, what))
        return what
    sig, ng = pebble_deadlock(lab, pb)
    chk.ok(sig, 'concurrency %d: pebble hung without its known deadlock signature' % conc)
    return ('pebble stopped answering (goroutine dump, %d goroutines: %s)'
            % (ng, 'its FindValidAuthorization/AddChallenge lock-order deadlock' if sig
               else 'NOT the known deadlock'))


def batch(lab, chk, pb, st, state, pids, conc, r, guard=None):
    """One `hacme issue` of NCERTS one-name cert sections. Returns a dict of
    figures, or None when the call timed out (guard seconds)."""
    tag = 'c%dr%d' % (conc, r)
    certs = [('%s-%d' % (tag, i), ['%s-%d.hacme.example' % (tag, i)]) for i in range(NCERTS)]
    cfg = hacme_cfg(lab, '%s.cfg' % tag, pb, st, state, certs, glob=['concurrency %d' % conc])
    mark = pb.proc.log_mark()
    c0 = [cpu_ticks([p]) for p in pids]
    t0 = time.time()
    try:
        rc, out, err, wall, cpu = timed(lab, hacme_argv(cfg, 'issue', *[c for c, _ in certs]),
                                        timeout=guard or 900)
    except subprocess.TimeoutExpired:
        return None
    phases = split_phases(err, t0, wall)
    srv = [(cpu_ticks([p]) - c) / TICK for p, c in zip(pids, c0)]
    lines = len(re.findall(r'^\S+: issued, serial ', out, re.M))
    label = 'hacme concurrency %d round %d' % (conc, r + 1)
    chk.ok(rc == 0 and lines == NCERTS, '%s: rc %d, %d "issued" lines %s'
           % (label, rc, lines, tail1(err)))
    chk.pebble(label, pb, mark, NCERTS, NCERTS)
    n = chk.certs(label, [(stored(state, c), names) for c, names in certs])
    lat = latencies(out)
    res = {'wall': wall, 'cpu': cpu, 'pebble': srv[0], 'others': sum(srv[1:]), 'n': n, 'lat': lat,
           'phases': phases}
    print('hacme, concurrency %d, round %d: %.3f s wall, %d certificates; CPU: hacme %.2f s, '
          'pebble %.2f s, haproxy+agent+DNS %.2f s; per-order s min %.2f p50 %.2f p90 %.2f max %.2f'
          % (conc, r + 1, wall, n, cpu, srv[0], sum(srv[1:]), pct(lat, 0), pct(lat, .5),
             pct(lat, .9), pct(lat, 1)), flush=True)
    if phases:
        print('  wall split: start-up to the first log line %.2f s, orders (to the last chain) '
              '%.2f s, then storing + deploying to haproxy + exit %.2f s' % phases, flush=True)
    return res


def split_phases(err, t0, wall):
    """(start-up, orders, after) seconds of one hacme run, from its log's
    UTC stamps: start to the first line, to the last `chain to`, to exit."""
    stamps = []
    for line in err.splitlines():
        m = STAMP.match(line)
        if m:
            stamps.append((hms(m.group(1), m.group(2), m.group(3)) + int(m.group(4)) / 1000,
                           'chain to' in m.group(5)))
    chains = [t for t, c in stamps if c]
    if not chains:
        return None
    start = t0 % 86400
    if stamps[0][0] < start - 1:  # the run crossed midnight UTC
        return None
    first, last = stamps[0][0] - start, chains[-1] - start
    return max(first, 0.0), last - max(first, 0.0), wall - last


def median_min(xs):
    return statistics.median(xs), min(xs)


def main():
    chk = Checker()
    ncpu = len(os.sched_getaffinity(0))
    load0 = loadavg()
    with Lab('bench-issue') as lab:
        http_port, side_port = lab.port(), lab.port()
        pb = lab.pebble(http_port=http_port, env={'PEBBLE_AUTHZREUSE': '0'})
        st = start_stack(lab, http_port, side_port)
        for good, what in check_routes(st, side_port):
            chk.ok(good, 'route: ' + what)
            if good:
                print('ok   route: ' + what)
        if chk.problems:
            raise LabError('the bench haproxy config routes wrong; nothing timed')
        state = lab.path('hacme.state')
        cb = Certbot(lab, pb, side_port)
        pids = [pb.proc.pid, st.hap.pid, st.agent.pid, pb.challtestsrv.pid]

        # warm-up: each client creates its account (timed apart)
        warm = hacme_cfg(lab, 'warm.cfg', pb, st, state, [('warm', ['warm.hacme.example'])])
        rc, out, err, hw, _ = timed(lab, hacme_argv(warm, 'issue', 'warm'))
        chk.ok(rc == 0, 'hacme warm-up order: rc %d %s' % (rc, tail1(err)))
        rc, out, err, cw, _ = cb.issue(['warm' + CB_SUFFIX])
        chk.ok(rc == 0, 'certbot warm-up order: rc %d %s' % (rc, tail1(err)))
        print('warm-up (account + first order): hacme %.3f s, certbot %.3f s' % (hw, cw),
              flush=True)

        # --- 1. one certificate with 2 names
        print('\n=== 1. one certificate, 2 names, %d runs each (interleaved)' % REPEAT, flush=True)
        certs1 = [('one%d' % i, ['one%d.hacme.example' % i, 'www.one%d.hacme.example' % i])
                  for i in range(REPEAT)]
        cfg1 = hacme_cfg(lab, 'one.cfg', pb, st, state, certs1)
        hw1, cw1, hc1, cc1 = [], [], [], []
        hfiles, cfiles = [], []
        for i, (cname, names) in enumerate(certs1):
            mark = pb.proc.log_mark()
            rc, out, err, wall, cpu = timed(lab, hacme_argv(cfg1, 'issue', cname))
            chk.ok(rc == 0 and 'issued' in out, 'hacme run %d: rc %d %s'
                   % (i + 1, rc, tail1(err)))
            chk.pebble('hacme run %d' % (i + 1), pb, mark, 1, 2)
            hw1.append(wall)
            hc1.append(cpu)
            hfiles.append((stored(state, cname), names))
            cnames = ['one%d%s' % (i, CB_SUFFIX), 'www.one%d%s' % (i, CB_SUFFIX)]
            mark, r0 = pb.proc.log_mark(), cb.retries
            rc, out, err, wall, cpu = cb.issue(cnames)
            chk.ok(rc == 0, 'certbot run %d: rc %d %s' % (i + 1, rc, tail1(err)))
            chk.pebble('certbot run %d' % (i + 1), pb, mark, 1, 2, cb.retries - r0)
            cw1.append(wall)
            cc1.append(cpu)
            cfiles.append((cb.cert_path(cnames), cnames))
            print('run %d: hacme %.3f s (CPU %.3f s), certbot %.3f s (CPU %.3f s)'
                  % (i + 1, hw1[-1], hc1[-1], cw1[-1], cc1[-1]), flush=True)
        nh1 = chk.certs('part 1 hacme', hfiles)
        nc1 = chk.certs('part 1 certbot', cfiles)
        (hmed, hmin), (cmed, cmin) = median_min(hw1), median_min(cw1)

        # --- 2. NCERTS single-name certificates
        print('\n=== 2. %d single-name certificates' % NCERTS, flush=True)
        runs = {32: []}
        for r in range(ROUNDS):
            res = batch(lab, chk, pb, st, state, pids, 32, r, guard=GUARD)
            if res is None or not pebble_alive(pb):
                raise LabError('concurrency 32: %s; nothing after this can run on this pebble: '
                               'run again' % wedge(lab, pb, chk, 32))
            runs[32].append(res)

        cb_walls, cb_files = [], []
        mark, r0 = pb.proc.log_mark(), cb.retries
        t0 = time.monotonic()
        for i in range(NCERTS):
            names = ['b%d%s' % (i, CB_SUFFIX)]
            rc, out, err, wall, cpu = cb.issue(names)
            chk.ok(rc == 0, 'certbot batch run %d: rc %d %s' % (i + 1, rc, tail1(err)))
            cb_walls.append(wall)
            cb_files.append((cb.cert_path(names), names))
            done = i + 1
            if done % 10 == 0:
                print('certbot: %d done, %.1f s' % (done, time.monotonic() - t0), flush=True)
            if done >= CB_MIN and (time.monotonic() - t0) / done * NCERTS > CB_BUDGET:
                break
        cb_total = time.monotonic() - t0
        cb_n = len(cb_walls)
        cb_retried = cb.retries - r0
        chk.pebble('certbot sequential', pb, mark, cb_n, cb_n, cb_retried)
        ncb = chk.certs('certbot sequential', cb_files)
        cb_all = cb_total / cb_n * NCERTS

        prof_lines = []
        if PROFILE:
            good, prof_lines = profile(lab, pb, st, state)
            chk.ok(good, 'profile run produced its certificate')

        # last: pebble 2.4.0 may deadlock with this many concurrent newOrders,
        # and then answers nothing more
        wedged = None
        if NCERTS != 32:
            runs[NCERTS] = []
            for r in range(ROUNDS):
                res = batch(lab, chk, pb, st, state, pids, NCERTS, r, guard=GUARD)
                if res is None or not pebble_alive(pb):
                    wedged = wedge(lab, pb, chk, NCERTS)
                    print('concurrency %d round %d: %s' % (NCERTS, r + 1, wedged), flush=True)
                    # that round's figures are void, its failures pebble's
                    chk.problems = [p for p in chk.problems if not p.startswith(
                        'hacme concurrency %d round %d:' % (NCERTS, r + 1))]
                    break
                runs[NCERTS].append(res)

    # --- summary
    out = ['hacme issue vs %s certonly --standalone; pebble 2.4.0 (VA_NOSLEEP, AUTHZREUSE=0, '
           'default 5 %% nonce rejection), one haproxy %s; %d CPU(s), load average %s at start, '
           '%s at end; wall time = process start to exit'
           % (certbot_version(), haproxy_version(), ncpu, load0, loadavg()),
           '  warm-up (account + first order): hacme %.3f s, certbot %.3f s' % (hw, cw),
           '  1. one certificate, 2 names, %d runs each: median / min' % REPEAT,
           '     hacme   %6.3f s / %6.3f s   CPU median %.3f s   %d/%d certificates'
           % (hmed, hmin, statistics.median(hc1), nh1, REPEAT),
           '     certbot %6.3f s / %6.3f s   CPU median %.3f s   %d/%d certificates'
           % (cmed, cmin, statistics.median(cc1), nc1, REPEAT),
           '     certbot/hacme: %.1fx (medians); target hacme < 0.5 s: %s'
           % (cmed / hmed, 'met' if hmed < 0.5 else 'NOT met'),
           '  2. %d single-name certificates:' % NCERTS]
    best = None
    for conc, v in runs.items():
        if not v:
            out.append('     hacme, one call, concurrency %3d: NO FIGURE: %s' % (conc, wedged))
            continue
        walls = [x['wall'] for x in v]
        med = statistics.median(walls)
        best = min(best or (med, conc), (med, conc))
        lat = sorted(l for x in v for l in x['lat'])
        out.append('     hacme, one call, concurrency %3d: median %6.2f s, min %6.2f s, %d round(s), '
                   '%s certificates; per order p50 %.2f s p90 %.2f s; CPU per round: hacme %.2f s, '
                   'pebble %.2f s' % (conc, med, min(walls), len(v), '+'.join(str(x['n']) for x in v),
                                      pct(lat, .5), pct(lat, .9),
                                      statistics.median(x['cpu'] for x in v),
                                      statistics.median(x['pebble'] for x in v)))
        ph = [x['phases'] for x in v if x['phases']]
        if ph:
            out.append('       wall split (medians): start-up %.2f s, orders %.2f s, storing + deploying '
                       'to haproxy + exit %.2f s' % tuple(statistics.median(p[i] for p in ph)
                                                         for i in range(3)))
        if wedged and conc == NCERTS:
            out.append('       then round %d: %s; no figure from it or later rounds'
                       % (len(v) + 1, wedged))
    again = ('; %d run(s) failed on a rejected nonce and were run again, time included'
             % cb_retried if cb_retried else '')
    if cb_n == NCERTS:
        out.append('     certbot, one after another:        %6.1f s for all %d (median %.2f s each); '
                   '%d certificates%s' % (cb_total, cb_n, statistics.median(cb_walls), ncb, again))
    else:
        out.append('     certbot, one after another:        %6.1f s for %d, EXTRAPOLATED to %d: %.1f s '
                   '(median %.2f s each); %d certificates%s'
                   % (cb_total, cb_n, NCERTS, cb_all, statistics.median(cb_walls), ncb, again))
    if best is not None and runs[32]:
        h32 = statistics.median(x['wall'] for x in runs[32])
        out.append('     certbot/hacme: %.1fx at concurrency 32, %.1fx at the best (%d); target >= 20x: %s'
                   % (cb_all / h32, cb_all / best[0], best[1],
                      'met' if cb_all / best[0] >= 20 else 'NOT met'))
    out += prof_lines
    out.append('  correctness: %s' % ('every timed run exited 0 with its certificate file holding '
                                      'exactly its names; pebble issued one certificate and '
                                      'validated one authorization per name' if not chk.problems
                                      else '%d PROBLEM(S), figures void: %s'
                                      % (len(chk.problems), '; '.join(chk.problems)[:600])))
    print()
    for l in out:
        print('SUMMARY ' + l)
    return 1 if chk.problems else 0


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def certbot_version():
    p = subprocess.run(['certbot', '--version'], capture_output=True, text=True)
    return (p.stdout + p.stderr).strip() or 'certbot ?'


if __name__ == '__main__':
    if shutil.which('certbot') is None:
        print('bench_issue: certbot is not installed (apt-get install certbot)', file=sys.stderr)
        sys.exit(1)
    sys.exit(main())
