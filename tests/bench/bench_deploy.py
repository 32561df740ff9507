#!/usr/bin/env python3
"""Deploying many certificates into a running HAProxy 2.6, two ways, under
two kinds of load, one run:

  runtime API  acme/deploy.c (through tests/integration/deploy_driver): every
               certificate a name HAProxy never had, so each is new ssl cert
               + set + show + commit + add ssl crt-list + show, one TLS check
               by SNI, files and crt-list lines written first (durable);
               all BENCH_DEPLOY_CERTS started at once, serialized per HAProxy
  reload       the recipe it replaces: write the same PEM files and crt-list
               lines, then `reload` on the master CLI (haproxy -W -S), timed
               until the new worker serves the last name

  no           no load
  keep-alive   wrk -c16 on the TLS frontend, connections kept (requests)
  handshakes   wrk -c16 with Connection: close: a TLS handshake per request

Each run has its own HAProxy with the shipped haproxy.cfg (master-worker
for reload) and the 1000 names new to it. wrk's errors (socket errors +
non-2xx) are the failed requests. wrk runs at nice 19: its own TLS client
work shares the box's CPUs with haproxy and hacme, which real clients do
not. Certificates: one ECDSA P-256 key, a leaf per name from a throw-away
CA (openssl CLI), stored once through store_cert_save (the driver's
`import`) before anything is timed; the runtime-API figure is the driver's
deploy time (loading the store is timed apart).

Environment: HACME_BUILD, BENCH_DEPLOY_CERTS (1000), BENCH_DEPLOY_CONNS (wrk
connections, 16). Lines starting with SUMMARY are collected by run.sh.
Exit status 1 when a deploy failed or a name is not served afterwards.
"""

import concurrent.futures
import os
import random
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
import lab as L  # noqa: E402
import test_deploy as TD  # noqa: E402  (haproxy, config and driver helpers)

NCERTS = int(os.environ.get('BENCH_DEPLOY_CERTS', '1000'))
CONNS = int(os.environ.get('BENCH_DEPLOY_CONNS', '16'))
LOADS = [('no', None), ('keep-alive', []), ('handshakes', ['-H', 'Connection: close'])]


def make_certs(lab, n):
    """n leaves (names c0000.bench ...) for one shared key; returns
    [(name, key, chain, serial)]."""
    ca_pem, _, _ = lab.make_ca('bench')
    ca_key = lab.path('bench-ca.key')
    key, csr = lab.path('bench.key'), lab.path('bench.csr')
    rc, out, err = L._run(['openssl', 'req', '-newkey', 'ec', '-pkeyopt',
                           'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
                           '-out', csr, '-subj', '/CN=bench'])
    if rc != 0:
        raise L.LabError(err)
    ca_text = open(ca_pem).read()
    os.makedirs(lab.path('leaves'), exist_ok=True)

    def one(i):
        name = 'c%04d.bench' % i
        base = lab.path('leaves', name)
        with open(base + '.ext', 'w') as f:
            f.write('basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                    'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n' % name)
        serial = '%X' % (int.from_bytes(os.urandom(8), 'big') | (1 << 63))
        rc, out, err = L._run(['openssl', 'x509', '-req', '-in', csr, '-CA', ca_pem,
                               '-CAkey', ca_key, '-set_serial', '0x' + serial, '-days', '7',
                               '-out', base + '.crt', '-extfile', base + '.ext'])
        if rc != 0:
            raise L.LabError(err)
        with open(base + '.chain', 'w') as f:
            f.write(open(base + '.crt').read() + ca_text)
        return name, key, base + '.chain', serial

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        return list(ex.map(one, range(n)))


class Wrk:
    """wrk on a TLS frontend until stop(); extra None: no load."""

    def __init__(self, port, extra):
        self.p = None
        if extra is None:
            return
        self.p = subprocess.Popen(['nice', '-n', '19', 'wrk', '-t2', '-c%d' % CONNS, '-d600s'] +
                                  extra + ['https://127.0.0.1:%d/' % port],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stop(self):
        if self.p is None:
            return 0, 0
        self.p.send_signal(signal.SIGINT)
        out = self.p.communicate(timeout=60)[0].decode()
        m = re.search(r'(\d+) requests in', out)
        errs = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
        non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
        failed = ((sum(int(x) for x in errs.groups()) if errs else 0) +
                  (int(non2xx.group(1)) if non2xx else 0))
        return (int(m.group(1)) if m else 0), failed


def wait_load(h, wrk, n=200):
    """wrk is running: HAProxy has served some requests."""
    if wrk.p is None:
        return
    L.wait_until(lambda: int(h.info().get('CumReq', '0')) > n, 30, 'wrk requests')


def sample_served(h, certs, k=20):
    """How many of k random names (and the last) serve our serial."""
    pick = random.sample(certs, min(k, len(certs))) + [certs[-1]]
    return sum(TD.served(h.https_port, c[0]) == c[3] for c in pick), len(pick)


def runtime_api(lab, certs, app_port, state, load):
    label, extra = load
    cdir = TD.certs_dir(lab, 'certs-rt-' + label)
    h = TD.hap(lab, cdir, app_port, 'hap-rt-' + label)
    cfg = TD.hacme_cfg(lab, 'rt-%s.cfg' % label, cdir, ['unix@' + h.stats_socket],
                       [h.https_port], state=state)
    dr = TD.Driver(lab, cfg)
    pid0 = h.worker_pid()
    wrk = Wrk(h.https_port, extra)
    try:
        wait_load(h, wrk)
        rc, res, rep, err = dr.run('deploy', *[c[0] for c in certs], timeout=1800)
    finally:
        reqs, failed = wrk.stop()
    bad = [n for n, r in rep.items() if not r['ok']]
    m = re.search(r'deploy \d+ names in ([0-9.]+) s', err)
    secs = float(m.group(1)) if m else float('nan')
    ok, tried = sample_served(h, certs)
    row = {'secs': secs, 'rate': len(certs) / secs, 'failed': failed, 'reqs': reqs,
           'bad': len(bad) + (tried - ok) + (rc != 0 and not bad),
           'errors': [rep[b]['error'] for b in bad[:3]],
           'pid': 'unchanged' if h.worker_pid() == pid0 else 'CHANGED'}
    print('runtime API, %s load: %d certificates in %.2f s (%.0f/s), %d failed deploys; '
          'wrk %d requests, %d failed; worker PID %s; %d/%d sampled names served'
          % (label, len(certs), secs, row['rate'], len(bad), reqs, failed, row['pid'], ok, tried),
          flush=True)
    h.stop()
    return row


def reload_recipe(lab, certs, app_port, load):
    label, extra = load
    cdir = TD.certs_dir(lab, 'certs-reload-' + label)
    h = TD.hap(lab, cdir, app_port, 'hap-reload-' + label, master=True)
    pid0 = h.worker_pid()
    last = certs[-1]
    wrk = Wrk(h.https_port, extra)
    try:
        wait_load(h, wrk)
        t0 = time.monotonic()
        lines = []
        for name, key, chain, serial in certs:
            path = os.path.join(cdir, name + '.pem')
            with open(path, 'w') as f:
                f.write(open(key).read() + open(chain).read())
            os.chmod(path, 0o600)
            lines.append(path + '\n')
        with open(os.path.join(cdir, 'certs.list'), 'a') as f:
            f.writelines(lines)
        h.master('reload')
        L.wait_until(lambda: TD.served(h.https_port, last[0]) == last[3], 300,
                     'the reloaded worker serving the last name', interval=0.01)
        secs = time.monotonic() - t0
    finally:
        reqs, failed = wrk.stop()
    ok, tried = sample_served(h, certs)
    print('files + reload, %s load: %d certificates in %.2f s; wrk %d requests, %d failed; '
          'worker PID %s; %d/%d sampled names served'
          % (label, len(certs), secs, reqs, failed,
             'changed (reloaded)' if h.worker_pid() != pid0 else 'UNCHANGED', ok, tried), flush=True)
    h.stop()
    return {'secs': secs, 'failed': failed, 'reqs': reqs, 'bad': tried - ok}


def main():
    if not os.path.exists(TD.DRIVER):
        print('bench_deploy: %s not built (meson -Dintegration=true)' % TD.DRIVER)
        return 1
    rows = []
    with L.Lab('bench-deploy') as lab:
        app_port = lab.port()
        lab.haproxy(lab.write('app.cfg', TD.APP_CFG), env={'APP_PORT': app_port}, name='app')
        t0 = time.monotonic()
        certs = make_certs(lab, NCERTS)
        print('made %d certificates with openssl in %.1f s (not timed below)'
              % (len(certs), time.monotonic() - t0), flush=True)
        state = lab.path('state')
        dr = TD.Driver(lab, TD.hacme_cfg(lab, 'import.cfg', TD.certs_dir(lab, 'certs-import'),
                                         [], [], state=state))
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
            list(ex.map(lambda c: dr.put(c[0], {'key': c[1], 'chain': c[2]}), certs))
        print('stored them in the state dir in %.1f s (not timed below)'
              % (time.monotonic() - t0), flush=True)
        for load in LOADS:
            rows.append((load[0], runtime_api(lab, certs, app_port, state, load),
                         reload_recipe(lab, certs, app_port, load)))
    print('SUMMARY deploy %d new certificates into a running HAProxy 2.6 (2.6.12, shipped '
          'haproxy.cfg), wrk -c%d at nice 19 on its TLS frontend:' % (NCERTS, CONNS))
    bad = 0
    for label, rt, rl in rows:
        print('SUMMARY   %-10s runtime API: %6.2f s, %4.0f certificates/s, wrk failed %d of %d, '
              'no reload | files + reload: %5.2f s until served, wrk failed %d of %d'
              % (label, rt['secs'], rt['rate'], rt['failed'], rt['reqs'], rl['secs'],
                 rl['failed'], rl['reqs']))
        bad += rt['bad'] + rl['bad']
    for label, rt, rl in rows:
        print('SUMMARY   target >= 200 certificates/s and 0 failed requests, %s load: %s'
              % (label, 'met' if rt['rate'] >= 200 and rt['failed'] == 0 else 'NOT met'))
    if bad:
        print('SUMMARY   FAILED: %d deploy failures or unserved names (%s)'
              % (bad, '; '.join(e for _, rt, _ in rows for e in rt['errors'])))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
