#!/usr/bin/env python3
"""acme/deploy.c against real HAProxy 2.6 processes with the shipped
haproxy-conf/haproxy.cfg, driven by tests/integration/deploy_driver (the
deploy API from the command line). Certificates come from a throw-away CA
made with the openssl CLI and are stored through store_cert_save (the
driver's `import`), as hacme stores what it orders.

What is checked, each through a real TLS handshake with SNI:
  * a name HAProxy never had is served; a replacement is served; HAProxy's
    worker PID and uptime show no reload; files and crt-list lines on disk
  * deploy_check pushes nothing when HAProxy serves it already
  * a dual certificate: an ECDSA-only and an RSA-only client each get theirs
  * a foreign pending transaction: refused, named, nothing changed
  * HAProxy committed but the TLS check sees another certificate: the
    previous one goes back (or the new name away), files restored
  * remove: the name falls back to the default certificate
  * restart: still served from disk; restarted with stale files: check
    notices and pushes again
  * a bad certificate (key of another certificate): refused, nothing written
  * two hacme processes at once against one HAProxy (the flock)
  * two HAProxy processes: both updated; one down: its socket is named
  * master CLI (haproxy -W -S, master@unix@...) deploys for real
  * reload-command (no runtime API) deploys for real: a new worker serves it
  * tune.bufsize too small for the chain: the error names tune.bufsize,
    nothing half-applied (no transaction, old certificate served, files back)
  * wrk on the TLS frontend (a handshake per request) during 40 (DEPLOY_UPDATES)
    certificate updates: 0 failed requests
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lab'))
import lab as L  # noqa: E402

CONF = os.path.join(L.SRC, 'haproxy-conf')
DRIVER = L.exe('tests/integration/deploy_driver')
UPDATES = int(os.environ.get('DEPLOY_UPDATES', '40'))

APP_CFG = """
global
    stats socket "${STATS_SOCK}" level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend app
    bind 127.0.0.1:"${APP_PORT}"
    http-request return status 200 content-type text/plain string "app ok\\n"
"""


class CA:
    """A test CA (openssl CLI) and leaves signed by it."""

    def __init__(self, lab):
        self.lab = lab
        self.pem, _, _ = lab.make_ca('deploy')
        self.key = lab.path('deploy-ca.key')
        self.n = 0

    def leaf(self, sans, key='ec'):
        """A certificate for sans (DNS names); returns a dict with key,
        chain (leaf + CA) and serial (upper-case hex, no leading zero)."""
        self.n += 1
        base = self.lab.path('leaf-%d' % self.n)
        kopt = {'ec': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
                'rsa': ['-newkey', 'rsa:2048'],
                'rsa4096': ['-newkey', 'rsa:4096']}[key]
        usage = 'digitalSignature' if key == 'ec' else 'digitalSignature,keyEncipherment'
        ext = self.lab.write('leaf-%d.ext' % self.n,
                             'basicConstraints=critical,CA:FALSE\n'
                             'keyUsage=critical,%s\nextendedKeyUsage=serverAuth\n'
                             'subjectAltName=%s\n' % (usage, ','.join('DNS:' + s for s in sans)))
        serial = '%X' % (int.from_bytes(os.urandom(8), 'big') | (1 << 63))
        for argv in (['openssl', 'req'] + kopt + ['-nodes', '-keyout', base + '.key',
                                                  '-out', base + '.csr', '-subj', '/CN=' + sans[0]],
                     ['openssl', 'x509', '-req', '-in', base + '.csr', '-CA', self.pem,
                      '-CAkey', self.key, '-set_serial', '0x' + serial, '-days', '7',
                      '-out', base + '.crt', '-extfile', ext]):
            rc, out, err = L._run(argv, timeout=120)
            if rc != 0:
                raise L.LabError('%s: %s' % (' '.join(argv[:2]), err))
        with open(base + '.crt') as a, open(self.pem) as b:
            chain = self.lab.write('leaf-%d.chain' % self.n, a.read() + b.read())
        return {'key': base + '.key', 'chain': chain, 'serial': serial, 'crt': base + '.crt'}


class Driver:
    """deploy_driver with one hacme config."""

    def __init__(self, lab, cfg):
        self.lab, self.cfg = lab, cfg

    def run(self, *args, timeout=180):
        argv = [DRIVER, '-c', self.cfg] + [str(a) for a in args]
        rc, out, err = L._run(argv, timeout=timeout)
        with open(self.lab.path('driver.log'), 'a') as f:
            f.write('$ %s\n[rc %d]\n%s%s' % (' '.join(argv), rc, out, err))
        res = [l.split('\t') for l in out.splitlines() if l.startswith('result\t')]
        rep = {}
        for l in out.splitlines():
            if l.startswith('report\t'):
                f = l.split('\t')
                rep[f[1]] = {'ok': f[2] == 'ok', 'restored': f[3] == 'restored',
                             'error': f[4], 'warning': f[5] if len(f) > 5 else '-'}
        results = [{'name': r[1], 'runtime': r[2], 'variant': r[3], 'serial': r[4],
                    'ok': r[5] == 'ok', 'pushed': r[6] == 'pushed', 'error': r[7]}
                   for r in res]
        return rc, results, rep, err

    def put(self, name, cert, variant=None):
        args = ['import', name, cert['key'], cert['chain']] + ([variant] if variant else [])
        rc, _, _, err = self.run(*args)
        if rc != 0:
            raise L.LabError('import %s: %s' % (name, err))


def certs_dir(lab, name):
    """A cert-dir with the fallback certificate and its crt-list."""
    d = lab.path(name)
    rc, out, err = L._run([os.path.join(CONF, 'make-fallback-cert.sh'), d], timeout=60)
    if rc != 0:
        raise L.LabError('make-fallback-cert.sh: %s%s' % (out, err))
    return d


def hap(lab, cdir, app_port, name, extra_global=(), master=False):
    """HAProxy with the shipped haproxy.cfg (plus extra global lines),
    serving TLS on .https_port from cdir/certs.list."""
    cfg = os.path.join(CONF, 'haproxy.cfg')
    if extra_global:
        text = open(cfg).read()
        text = text.replace('\nglobal\n', '\nglobal\n' + ''.join('    %s\n' % g for g in extra_global), 1)
        cfg = lab.write(name + '.cfg', text)
    https = lab.port()
    env = {
        'HACME_HTTP_BIND': '127.0.0.1:%d' % lab.port(),
        'HACME_HTTPS_BIND': '127.0.0.1:%d' % https,
        'HACME_CRT_LIST': os.path.join(cdir, 'certs.list'),
        'HACME_SPOE_CONF': os.path.join(CONF, 'spoe-acme.conf'),
        'HACME_AGENT_ADDR': '127.0.0.1:%d' % lab.port(),
        'HACME_AGENT_CHECK_INTER': '10s',
        'HACME_STATS_SOCKET': lab.path(name + '-admin.sock'),
        'HACME_APP_ADDR': '127.0.0.1:%d' % app_port,
    }
    p = lab.haproxy(cfg, env=env, master_socket=master, name=name)
    p.https_port, p.env, p.cfg_path, p.hname, p.is_master = https, env, cfg, name, master
    return p


def restart(lab, p):
    p.stop()
    n = lab.haproxy(p.cfg_path, env=p.env, master_socket=p.is_master, name=p.hname)
    n.https_port, n.env, n.cfg_path, n.hname, n.is_master = (p.https_port, p.env, p.cfg_path,
                                                             p.hname, p.is_master)
    return n


def hacme_cfg(lab, fname, cdir, runtimes, checks, extra=(), state=None):
    lines = ['global', '    state-dir %s' % (state or lab.path(fname + '.state')),
             '    crt-list %s' % os.path.join(cdir, 'certs.list'), '    cert-dir %s' % cdir]
    lines += ['    runtime-api %s' % r for r in runtimes]
    lines += ['    tls-check 127.0.0.1:%d' % c for c in checks]
    lines += ['    ' + e for e in extra]
    lines += ['ca test', '    directory https://127.0.0.1:1/dir']
    return lab.write(fname, '\n'.join(lines) + '\n')


def served(port, sni, only=None):
    """Serial of the certificate served for sni, or the subject when it is
    not one of ours."""
    try:
        return L.tls_probe(port, sni, only=only)['serial']
    except L.LabError:
        return None


def subject(port, sni):
    return L.tls_probe(port, sni)['subject']


def crt_list(cdir):
    with open(os.path.join(cdir, 'certs.list')) as f:
        return [l.strip() for l in f if l.strip()]


def uptime(h):
    return int(h.info().get('Uptime_sec', '-1'))


# ---------------------------------------------------------------- sections

def single(t, lab, ca, app_port):
    cdir = certs_dir(lab, 'certs-main')
    h = hap(lab, cdir, app_port, 'hap-main')
    cfg = hacme_cfg(lab, 'main.cfg', cdir, ['unix@' + h.stats_socket], [h.https_port])
    dr = Driver(lab, cfg)
    fallback = os.path.join(cdir, 'fallback.pem')
    pid0, up0 = h.worker_pid(), uptime(h)

    # a name HAProxy never had
    a1 = ca.leaf(['a.test', 'www.a.test'])
    dr.put('a.test', a1)
    rc, res, rep, err = dr.run('deploy', 'a.test')
    t.eq(rc, 0, 'new name: exit 0')
    t.ok(rep.get('a.test', {}).get('ok'), 'new name: report ok')
    t.eq([(r['runtime'], r['serial'], r['ok'], r['pushed']) for r in res],
         [('unix@' + h.stats_socket, a1['serial'], True, True)],
         'new name: one result, our serial, pushed')
    t.eq(served(h.https_port, 'a.test'), a1['serial'], 'new name: served over TLS by SNI')
    t.eq(served(h.https_port, 'www.a.test'), a1['serial'], 'new name: second SAN served too')
    pem = os.path.join(cdir, 'a.test.pem')
    t.eq(crt_list(cdir), [fallback, pem], 'crt-list: fallback first, our line after it')
    t.eq(oct(os.stat(pem).st_mode & 0o777), '0o600', 'PEM file is 0600')
    text = open(pem).read()
    t.ok('\n\n' not in text and 'PRIVATE KEY' in text and text.count('BEGIN CERTIFICATE') == 2,
         'PEM file: key + leaf + chain, no blank line')
    t.eq(h.worker_pid(), pid0, 'no reload: same worker PID')
    t.ok(uptime(h) >= up0, 'no reload: uptime went on')

    # replacement
    a2 = ca.leaf(['a.test', 'www.a.test'])
    dr.put('a.test', a2)
    rc, res, rep, err = dr.run('deploy', 'a.test')
    t.eq(rc, 0, 'replace: exit 0')
    t.eq(served(h.https_port, 'a.test'), a2['serial'], 'replace: new serial served')
    t.eq(crt_list(cdir), [fallback, pem], 'replace: crt-list line kept, not duplicated')
    t.eq(h.worker_pid(), pid0, 'replace: same worker PID')
    out = h.cmd('show ssl cert')
    t.ok('# transaction' not in out, 'replace: no transaction left pending')

    # check: already served, nothing pushed
    rc, res, rep, err = dr.run('check', 'a.test')
    t.eq((rc, [r['pushed'] for r in res], [r['ok'] for r in res]), (0, [False], [True]),
         'check: served already, nothing pushed')

    # dual certificate
    dec = ca.leaf(['d.test'], 'ec')
    drsa = ca.leaf(['d.test'], 'rsa')
    dr.put('d.test', dec)
    dr.put('d.test', drsa, 'rsa')
    rc, res, rep, err = dr.run('deploy', 'd.test')
    t.eq(rc, 0, 'dual: exit 0')
    t.eq(sorted((r['variant'], r['serial']) for r in res),
         sorted([('main', dec['serial']), ('rsa', drsa['serial'])]), 'dual: two results')
    t.eq(served(h.https_port, 'd.test', 'ecdsa'), dec['serial'], 'dual: ECDSA-only client gets ECDSA')
    t.eq(served(h.https_port, 'd.test', 'rsa'), drsa['serial'], 'dual: RSA-only client gets RSA')
    t.ok(os.path.join(cdir, 'd.test.rsa.pem') in crt_list(cdir), 'dual: <name>.rsa.pem in the crt-list')
    dec2 = ca.leaf(['d.test'], 'ec')
    drsa2 = ca.leaf(['d.test'], 'rsa')
    dr.put('d.test', dec2)
    dr.put('d.test', drsa2, 'rsa')
    rc, res, rep, err = dr.run('deploy', 'd.test')
    t.ok(rc == 0 and served(h.https_port, 'd.test', 'ecdsa') == dec2['serial'] and
         served(h.https_port, 'd.test', 'rsa') == drsa2['serial'], 'dual: both replaced')

    # a foreign pending transaction
    b1 = ca.leaf(['b.test'])
    dr.put('b.test', b1)
    before = crt_list(cdir)
    with open(fallback) as f:
        h.cmd('set ssl cert %s' % fallback, payload=f.read())
    rc, res, rep, err = dr.run('deploy', 'b.test')
    t.eq(rc, 3, 'foreign transaction: exit 3')
    t.like(rep['b.test']['error'], r'transaction for %s is pending' % re.escape(fallback),
           'foreign transaction: refused, naming its file')
    t.like(rep['b.test']['error'], re.escape(h.stats_socket), 'foreign transaction: names the socket')
    t.ok(re.search(r'^\*%s$' % re.escape(fallback), h.cmd('show ssl cert'), re.M),
         'foreign transaction: left alone')
    t.ok(not os.path.exists(os.path.join(cdir, 'b.test.pem')) and crt_list(cdir) == before,
         'foreign transaction: files restored (no PEM, crt-list as before)')
    t.ok(rep['b.test']['restored'], 'foreign transaction: report says restored')
    h.cmd('abort ssl cert %s' % fallback)
    rc, res, rep, err = dr.run('deploy', 'b.test')
    t.ok(rc == 0 and served(h.https_port, 'b.test') == b1['serial'], 'after the abort: deployed')

    # a stale transaction on one of our files (a hacme died mid-way) is aborted
    h.cmd('set ssl cert %s' % pem, payload=open(pem).read())
    rc, res, rep, err = dr.run('deploy', 'b.test')
    t.ok(rc == 0 and 'aborting a stale transaction for %s' % pem in err,
         'stale transaction on our own file: aborted, deploy goes on')
    t.ok('# transaction' not in h.cmd('show ssl cert'), 'no transaction left')

    # a key that is not the certificate's: refused, nothing written
    bad = ca.leaf(['bad.test'])
    other = ca.leaf(['bad.test'])
    dr.put('bad.test', {'key': other['key'], 'chain': bad['chain']})
    before = crt_list(cdir)
    rc, res, rep, err = dr.run('deploy', 'bad.test')
    t.eq(rc, 3, 'key/certificate mismatch: exit 3')
    t.like(rep['bad.test']['error'], r'not for this key', 'key/certificate mismatch: said so')
    t.ok(not os.path.exists(os.path.join(cdir, 'bad.test.pem')) and crt_list(cdir) == before,
         'key/certificate mismatch: nothing written')

    # remove
    rc, res, rep, err = dr.run('remove', 'b.test')
    t.eq(rc, 0, 'remove: exit 0')
    t.like(subject(h.https_port, 'b.test'), 'hacme-fallback', 'remove: SNI falls back to the default certificate')
    t.ok(os.path.join(cdir, 'b.test.pem') not in crt_list(cdir) and
         not os.path.exists(os.path.join(cdir, 'b.test.pem')), 'remove: line and file gone')
    t.ok('b.test.pem' not in h.cmd('show ssl cert'), 'remove: HAProxy forgot the store')
    t.eq(served(h.https_port, 'a.test'), a2['serial'], 'remove: other names untouched')
    rc, res, rep, err = dr.run('remove', 'b.test')
    t.eq(rc, 0, 'remove again: nothing to do, exit 0')

    # two hacme processes at once on one HAProxy
    names = ['p%d.test' % i for i in range(16)]
    certs = {}
    for n in names:
        certs[n] = ca.leaf([n])
        dr.put(n, certs[n])
    procs = [subprocess.Popen([DRIVER, '-c', cfg, 'deploy'] + names[i::2],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    t.eq([p.returncode for p in procs], [0, 0], 'two hacme processes at once: both exit 0')
    t.eq(sum(o[0].decode().count('\tok\t') for o in outs), 16 * 2,
         'two hacme processes: 16 reports and 16 results ok')
    t.eq([served(h.https_port, n) for n in names], [certs[n]['serial'] for n in names],
         'two hacme processes: every name served')
    t.eq(len(set(crt_list(cdir))), len(crt_list(cdir)), 'crt-list: no duplicate line')

    # restart: served from disk
    h = restart(lab, h)
    t.eq(served(h.https_port, 'a.test'), a2['serial'], 'restart: a.test served from disk')
    t.ok(served(h.https_port, 'd.test', 'ecdsa') == dec2['serial'] and
         served(h.https_port, 'd.test', 'rsa') == drsa2['serial'], 'restart: dual served from disk')
    t.like(subject(h.https_port, 'b.test'), 'hacme-fallback', 'restart: removed name stays removed')
    t.eq(served(h.https_port, 'p3.test'), certs['p3.test']['serial'], 'restart: p3.test from disk')
    rc, res, rep, err = dr.run('check', 'a.test', 'd.test')
    t.ok(rc == 0 and not any(r['pushed'] for r in res), 'restart: check finds all served, pushes nothing')

    # restarted with stale files (a backup put back): check notices, pushes
    h.stop()
    shutil.copy(a1['key'], lab.path('a1.pem'))
    with open(pem, 'w') as f:
        f.write(open(a1['key']).read() + open(a1['chain']).read())
    h = restart(lab, h)
    t.eq(served(h.https_port, 'a.test'), a1['serial'], 'stale files: the old certificate is back')
    rc, res, rep, err = dr.run('check', 'a.test')
    t.eq((rc, [r['pushed'] for r in res]), (0, [True]), 'stale files: check pushed')
    t.eq(served(h.https_port, 'a.test'), a2['serial'], 'stale files: the stored certificate served again')
    t.ok(a2['serial'].lower() in L._run(['openssl', 'x509', '-noout', '-serial', '-in', pem])[1].lower(),
         'stale files: file rewritten with the stored certificate')
    return h, cdir, dr


def wrk_updates(t, lab, ca, h, dr):
    """wrk on the TLS frontend, one handshake per request, while the
    certificate it gets is replaced UPDATES times."""
    if shutil.which('wrk') is None:
        t.skip('wrk during %d updates' % UPDATES, 'wrk not installed')
        return
    # wrk sends the URL's host as SNI: the certificate carries it as a name.
    w = [ca.leaf(['w.test', '127.0.0.1']), ca.leaf(['w.test', '127.0.0.1'])]
    dr.put('w.test', w[0])
    rc, res, rep, err = dr.run('deploy', 'w.test')
    t.ok(rc == 0 and served(h.https_port, '127.0.0.1') == w[0]['serial'],
         'wrk target: the certificate wrk gets is ours')
    pid0 = h.worker_pid()
    wrk = subprocess.Popen(['wrk', '-t2', '-c16', '-d300s', '-H', 'Connection: close',
                            'https://127.0.0.1:%d/' % h.https_port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fails = 0
    try:
        L.wait_until(lambda: int(h.info().get('CumSslConns', '0')) > 50, 30, 'wrk connections')
        for i in range(UPDATES):
            c = w[(i + 1) % 2]
            dr.put('w.test', c)
            rc, res, rep, err = dr.run('deploy', 'w.test')
            fails += rc != 0
        last = w[UPDATES % 2]
    finally:
        wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=30)[0].decode()
    t.diag(out)
    t.eq(fails, 0, '%d updates under load: every deploy ok' % UPDATES)
    t.eq(served(h.https_port, '127.0.0.1'), last['serial'], 'after the updates: the last one served')
    m = re.search(r'(\d+) requests in', out)
    t.ok(m and int(m.group(1)) > UPDATES, 'wrk made requests (%s)' % (m.group(1) if m else '?'))
    errs = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    failed = (sum(int(x) for x in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0)
    t.eq(failed, 0, 'wrk during %d certificate updates: 0 failed requests' % UPDATES)
    t.eq(h.worker_pid(), pid0, 'wrk: same worker PID throughout')


def tls_rollback(t, lab, ca, h, cdir, app_port):
    """HAProxy says committed but the TLS check sees another certificate
    (here: tls-check points at a HAProxy that never gets it): everything
    goes back, in HAProxy and on disk."""
    other = hap(lab, certs_dir(lab, 'certs-other'), app_port, 'hap-other')
    good = Driver(lab, hacme_cfg(lab, 'good.cfg', cdir, ['unix@' + h.stats_socket],
                                 [h.https_port], state=lab.path('main.cfg.state')))
    wrong = Driver(lab, hacme_cfg(lab, 'wrong.cfg', cdir, ['unix@' + h.stats_socket],
                                  [other.https_port], state=lab.path('main.cfg.state')))
    before = crt_list(cdir)
    n1 = ca.leaf(['rb.test'])
    wrong.put('rb.test', n1)
    rc, res, rep, err = wrong.run('deploy', 'rb.test')
    t.eq(rc, 3, 'TLS check disagrees, new name: exit 3')
    t.like(rep['rb.test']['error'], r'tls-check 127\.0\.0\.1:%d \(SNI rb\.test\): serves serial '
           r'[0-9A-F]+, not ours \(%s\)' % (other.https_port, n1['serial']),
           'TLS check disagrees: the error names the check, both serials')
    t.like(subject(h.https_port, 'rb.test'), 'hacme-fallback', 'new name rolled back: not served')
    t.ok('rb.test' not in h.cmd('show ssl cert'), 'new name rolled back: no store left')
    t.ok(crt_list(cdir) == before and not os.path.exists(os.path.join(cdir, 'rb.test.pem')),
         'new name rolled back: no file, no crt-list line')
    r1 = ca.leaf(['rb2.test'])
    good.put('rb2.test', r1)
    rc, res, rep, err = good.run('deploy', 'rb2.test')
    t.ok(rc == 0 and served(h.https_port, 'rb2.test') == r1['serial'], 'rb2.test deployed')
    pem = os.path.join(cdir, 'rb2.test.pem')
    text = open(pem).read()
    r2 = ca.leaf(['rb2.test'])
    wrong.put('rb2.test', r2)
    rc, res, rep, err = wrong.run('deploy', 'rb2.test')
    t.eq(rc, 3, 'TLS check disagrees, replacement: exit 3')
    t.eq(served(h.https_port, 'rb2.test'), r1['serial'], 'replacement rolled back: the previous one served')
    t.ok(open(pem).read() == text and '# transaction' not in h.cmd('show ssl cert'),
         'replacement rolled back: previous file, no transaction')
    other.stop()


def two_haproxies(t, lab, ca, app_port):
    cdir = certs_dir(lab, 'certs-two')
    h1 = hap(lab, cdir, app_port, 'hap-one')
    h2 = hap(lab, cdir, app_port, 'hap-two')
    cfg = hacme_cfg(lab, 'two.cfg', cdir, ['unix@' + h1.stats_socket, 'unix@' + h2.stats_socket],
                    [h1.https_port, h2.https_port])
    dr = Driver(lab, cfg)
    c1 = ca.leaf(['two.test'])
    dr.put('two.test', c1)
    rc, res, rep, err = dr.run('deploy', 'two.test')
    t.eq((rc, len(res), all(r['ok'] for r in res)), (0, 2, True), 'two HAProxy: two results, both ok')
    t.eq([served(h1.https_port, 'two.test'), served(h2.https_port, 'two.test')],
         [c1['serial']] * 2, 'two HAProxy: both serve the new name')
    c2 = ca.leaf(['two.test'])
    dr.put('two.test', c2)
    rc, res, rep, err = dr.run('deploy', 'two.test')
    t.eq([served(h1.https_port, 'two.test'), served(h2.https_port, 'two.test')],
         [c2['serial']] * 2, 'two HAProxy: both serve the replacement')
    # one of them down: its socket is named, the other is updated
    h2.stop()
    c3 = ca.leaf(['two.test'])
    dr.put('two.test', c3)
    rc, res, rep, err = dr.run('deploy', 'two.test')
    t.eq(rc, 3, 'one HAProxy down: exit 3')
    t.like(rep['two.test']['error'], re.escape('unix@' + h2.stats_socket) + '.*connect',
           'one HAProxy down: the error names its socket')
    t.eq(served(h1.https_port, 'two.test'), c3['serial'], 'one HAProxy down: the other one updated')
    t.ok(c3['serial'].lower() in L._run(['openssl', 'x509', '-noout', '-serial', '-in',
                                         os.path.join(cdir, 'two.test.pem')])[1].lower(),
         'one HAProxy down: the file holds the new one (it gets it when it starts)')


def master_cli(t, lab, ca, app_port):
    cdir = certs_dir(lab, 'certs-master')
    h = hap(lab, cdir, app_port, 'hap-master', master=True)
    cfg = hacme_cfg(lab, 'master.cfg', cdir, ['master@unix@' + h.master_socket], [h.https_port])
    dr = Driver(lab, cfg)
    pid0 = h.worker_pid()
    c1 = ca.leaf(['m.test'])
    dr.put('m.test', c1)
    rc, res, rep, err = dr.run('deploy', 'm.test')
    t.eq(rc, 0, 'master CLI: new name, exit 0')
    t.eq(served(h.https_port, 'm.test'), c1['serial'], 'master CLI: new name served')
    c2 = ca.leaf(['m.test'])
    dr.put('m.test', c2)
    rc, res, rep, err = dr.run('deploy', 'm.test')
    t.eq(served(h.https_port, 'm.test'), c2['serial'], 'master CLI: replacement served')
    t.eq(h.worker_pid(), pid0, 'master CLI: same worker (no reload)')
    rc, res, rep, err = dr.run('remove', 'm.test')
    t.like(subject(h.https_port, 'm.test'), 'hacme-fallback', 'master CLI: removed')


def reload_command(t, lab, ca, app_port):
    cdir = certs_dir(lab, 'certs-reload')
    h = hap(lab, cdir, app_port, 'hap-reload', master=True)
    cfg = hacme_cfg(lab, 'reload.cfg', cdir, [], [h.https_port],
                    ['reload-command "kill -USR2 %d"' % h.pid])
    dr = Driver(lab, cfg)
    pid0 = h.worker_pid()
    c1 = ca.leaf(['r.test'])
    dr.put('r.test', c1)
    rc, res, rep, err = dr.run('deploy', 'r.test')
    t.eq(rc, 0, 'reload-command: exit 0')
    t.eq([(r['runtime'], r['ok']) for r in res], [('reload-command', True)],
         'reload-command: one result, ok')
    t.eq(served(h.https_port, 'r.test'), c1['serial'], 'reload-command: served')
    t.ok(h.worker_pid() != pid0, 'reload-command: served by a new worker (it reloaded)')
    rc, res, rep, err = dr.run('check', 'r.test')
    t.ok(rc == 0 and not any(r['pushed'] for r in res), 'reload-command: check sees it served, no reload')
    # the same installation (state dir) with a reload-command that fails: the
    # files in cdir are hacme's own, so it may replace them
    bad = hacme_cfg(lab, 'reload-bad.cfg', cdir, [], [h.https_port], ['reload-command "exit 7"'],
                    state=lab.path('reload.cfg.state'))
    c2 = ca.leaf(['r.test'])
    dr2 = Driver(lab, bad)
    dr2.put('r.test', c2)
    rc, res, rep, err = dr2.run('deploy', 'r.test')
    t.eq(rc, 3, 'failing reload-command: exit 3')
    t.like(rep['r.test']['error'], 'reload-command exited with status 7', 'failing reload-command: said so')
    t.eq(served(h.https_port, 'r.test'), c1['serial'], 'failing reload-command: old one still served')


def bufsize(t, lab, ca, app_port):
    cdir = certs_dir(lab, 'certs-small')
    h = hap(lab, cdir, app_port, 'hap-small', extra_global=['tune.bufsize 4096'])
    cfg = hacme_cfg(lab, 'small.cfg', cdir, ['unix@' + h.stats_socket], [h.https_port])
    dr = Driver(lab, cfg)
    small = ca.leaf(['s.test'])
    dr.put('s.test', small)
    rc, res, rep, err = dr.run('deploy', 's.test')
    t.ok(rc == 0 and served(h.https_port, 's.test') == small['serial'], 'bufsize 4096: a small ECDSA chain fits')
    pem = os.path.join(cdir, 's.test.pem')
    before_pem, before_list = open(pem).read(), crt_list(cdir)
    big = ca.leaf(['s.test'], 'rsa4096')
    dr.put('s.test', big)
    rc, res, rep, err = dr.run('deploy', 's.test')
    t.eq(rc, 3, 'too large for tune.bufsize: exit 3')
    t.like(rep['s.test']['error'], r'tune\.bufsize', 'too large: the error names tune.bufsize')
    t.like(rep['s.test']['error'], re.escape(h.stats_socket), 'too large: the error names the socket')
    t.ok('# transaction' not in h.cmd('show ssl cert'), 'too large: no transaction pending')
    t.eq(served(h.https_port, 's.test'), small['serial'], 'too large: the old certificate still served')
    t.ok(open(pem).read() == before_pem and crt_list(cdir) == before_list,
         'too large: file and crt-list as before')
    # a new name that does not fit: no empty store left behind
    big2 = ca.leaf(['s2.test'], 'rsa4096')
    dr.put('s2.test', big2)
    rc, res, rep, err = dr.run('deploy', 's2.test')
    t.ok(rc == 3 and 'tune.bufsize' in rep['s2.test']['error'], 'too large, new name: refused')
    t.ok('s2.test' not in h.cmd('show ssl cert'), 'too large, new name: no store left in HAProxy')
    t.ok(not os.path.exists(os.path.join(cdir, 's2.test.pem')) and crt_list(cdir) == before_list,
         'too large, new name: no file, no crt-list line')


def main():
    t = L.TAP()
    if not os.path.exists(DRIVER):
        t.ok(False, '%s not built' % DRIVER)
        sys.exit(t.done())
    with L.Lab('deploy') as lab:
        ca = CA(lab)
        app_port = lab.port()
        lab.haproxy(lab.write('app.cfg', APP_CFG), env={'APP_PORT': app_port}, name='app')
        h, cdir, dr = single(t, lab, ca, app_port)
        wrk_updates(t, lab, ca, h, dr)
        tls_rollback(t, lab, ca, h, cdir, app_port)
        two_haproxies(t, lab, ca, app_port)
        master_cli(t, lab, ca, app_port)
        reload_command(t, lab, ca, app_port)
        bufsize(t, lab, ca, app_port)
    sys.exit(t.done())


if __name__ == '__main__':
    main()
