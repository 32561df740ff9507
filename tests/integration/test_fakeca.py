#!/usr/bin/env python3
"""hacme against an EMULATED, misbehaving ACME CA (not pebble): a small
HTTPS server in this file speaks enough RFC 8555 for hacme (directory,
nonces, accounts, orders, authorizations, finalize, download) and then
misbehaves on purpose in ways pebble cannot be made to:

  expired    issues leaves that expired a day ago
  short      issues 5-day leaves (worse than the stored 90-day one)
  ra         refuses newOrder with 429 rateLimited, Retry-After: 99999999
  authz1000  lists 1000 authorizations for a one-name order
  foreign    an authorization for a name that was not ordered
  forget     forgets every account (accountDoesNotExist) once
  forget@X   the same, at the first request to X (authz, finalize, cert)
  forget-always[@X]  forgets every account at every request (to X)
  stuck      keeps the order `processing`, Retry-After: 99999
  stuck0     the same without Retry-After

It is an emulation: JWS signatures are not verified (hacme's JWS is tested
against pebble elsewhere); every authorization is valid at once, so no
challenge is served. Certificates are real X.509 (python3-cryptography),
signed by a CA made here, for the CSR's key and names."""

import base64
import datetime
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

t = L.TAP()
DAY = 86400


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


class FakeCA:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode = set()
        self.count = {}
        self.accounts = {}      # jwk json -> account url
        self.known = set()      # account urls the CA remembers
        self.orders = {}
        self.n = 0
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'hacme fake CA (emulation)')])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=30))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), False)
                     .sign(self.key, hashes.SHA256()))

    def bump(self, what):
        with self.lock:
            self.count[what] = self.count.get(what, 0) + 1

    def counted(self, what):
        with self.lock:
            return self.count.get(what, 0)

    def stuck_ra(self):
        return {} if 'stuck0' in self.mode else {'Retry-After': '99999'}

    def url(self, path):
        return 'https://127.0.0.1:%d%s' % (self.port, path)

    def issue(self, csr_der):
        csr = x509.load_der_x509_csr(csr_der)
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
        now = datetime.datetime.utcnow()
        if 'expired' in self.mode:
            nb, na = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
        elif 'short' in self.mode:
            nb, na = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=5)
        else:
            nb, na = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=90)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False)
                .sign(self.key, hashes.SHA256()))
        return (leaf.public_bytes(serialization.Encoding.PEM) +
                self.cert.public_bytes(serialization.Encoding.PEM))

    def handler(self):
        ca = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def reply(self, code, obj=None, headers=None, ctype='application/json', raw=None):
                body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b'')
                self.send_response(code)
                self.send_header('Replay-Nonce', base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip('='))
                self.send_header('Cache-Control', 'no-store')
                if body:
                    self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(body)

            def problem(self, code, kind, detail, headers=None):
                self.reply(code, {'type': 'urn:ietf:params:acme:error:' + kind, 'detail': detail,
                                  'status': code}, headers, 'application/problem+json')

            def do_HEAD(self):
                self.reply(200)

            def do_GET(self):
                if self.path == '/dir':
                    return self.reply(200, {
                        'newNonce': ca.url('/nonce'), 'newAccount': ca.url('/acct'),
                        'newOrder': ca.url('/order'), 'revokeCert': ca.url('/revoke'),
                        'keyChange': ca.url('/keychange')})
                if self.path == '/nonce':
                    return self.reply(200)
                self.reply(404)

            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                jws = json.loads(self.rfile.read(n))
                prot = json.loads(b64u_dec(jws['protected']))
                payload = json.loads(b64u_dec(jws['payload'])) if jws['payload'] else None
                path = self.path
                if path == '/acct':
                    ca.bump('newAccount')
                    jwk = json.dumps(prot.get('jwk'), sort_keys=True)
                    with ca.lock:
                        url = ca.accounts.get(jwk)
                        if url is not None and url in ca.known:
                            return self.reply(200, {'status': 'valid'}, {'Location': url})
                        if (payload or {}).get('onlyReturnExisting'):
                            return self.problem(400, 'accountDoesNotExist', 'no account for this key')
                        ca.n += 1
                        url = ca.url('/acct/%d' % ca.n)
                        ca.accounts[jwk] = url
                        ca.known.add(url)
                    return self.reply(201, {'status': 'valid'}, {'Location': url})
                kid = prot.get('kid')
                ca.bump('post')
                at = {'/order': 'newOrder'}.get(path, path.split('/')[1])
                with ca.lock:
                    for m in ('forget', 'forget@' + at):
                        if m in ca.mode:
                            ca.known.clear()
                            ca.mode.discard(m)
                    if 'forget-always' in ca.mode or 'forget-always@' + at in ca.mode:
                        ca.known.clear()
                    known = kid in ca.known
                if not known:
                    ca.bump('accountDoesNotExist')
                    return self.problem(400, 'accountDoesNotExist', 'account %s is not known' % kid)
                if path == '/order':
                    ca.bump('newOrder')
                    if 'ra' in ca.mode:
                        return self.problem(429, 'rateLimited', 'too many orders',
                                            {'Retry-After': '99999999'})
                    names = [i['value'] for i in payload['identifiers']]
                    with ca.lock:
                        ca.n += 1
                        oid = ca.n
                        nauthz = 1000 if 'authz1000' in ca.mode else len(names)
                        ca.orders[oid] = {'names': names, 'status': 'pending', 'cert': None}
                    return self.reply(201, self.order_doc(oid, nauthz), {'Location': ca.url('/order/%d' % oid)})
                m = re.match(r'^/authz/(\d+)/(\d+)$', path)
                if m:
                    ca.bump('authz')
                    o = ca.orders[int(m.group(1))]
                    i = int(m.group(2))
                    name = 'not-ordered.example' if 'foreign' in ca.mode else o['names'][i % len(o['names'])]
                    return self.reply(200, {
                        'status': 'valid', 'identifier': {'type': 'dns', 'value': name},
                        'expires': '2099-01-01T00:00:00Z',
                        'challenges': [{'type': 'http-01', 'status': 'valid', 'token': 'x' * 43,
                                        'url': ca.url('/chall/%s/%d' % (m.group(1), i))}]})
                m = re.match(r'^/order/(\d+)$', path)
                if m:
                    ca.bump('order')
                    oid = int(m.group(1))
                    if ca.orders[oid]['status'] == 'pending':   # every authorization is valid
                        ca.orders[oid]['status'] = 'ready'
                    hdr = ca.stuck_ra() if ca.orders[oid]['status'] == 'processing' else {}
                    return self.reply(200, self.order_doc(oid, len(ca.orders[oid]['names'])), hdr)
                m = re.match(r'^/finalize/(\d+)$', path)
                if m:
                    ca.bump('finalize')
                    oid = int(m.group(1))
                    o = ca.orders[oid]
                    if 'stuck' in ca.mode or 'stuck0' in ca.mode:
                        o['status'] = 'processing'
                        return self.reply(200, self.order_doc(oid, len(o['names'])),
                                          dict(ca.stuck_ra(), Location=ca.url('/order/%d' % oid)))
                    o['cert'] = ca.issue(b64u_dec(payload['csr']))
                    o['status'] = 'valid'
                    return self.reply(200, self.order_doc(oid, len(o['names'])),
                                      {'Location': ca.url('/order/%d' % oid)})
                if path == '/revoke':
                    ca.bump('revoke')
                    return self.reply(200)
                m = re.match(r'^/cert/(\d+)$', path)
                if m:
                    ca.bump('cert')
                    return self.reply(200, raw=ca.orders[int(m.group(1))]['cert'],
                                      ctype='application/pem-certificate-chain')
                self.problem(404, 'malformed', 'no such resource')

            def order_doc(self, oid, nauthz):
                o = ca.orders[oid]
                d = {'status': o['status'], 'expires': '2099-01-01T00:00:00Z',
                     'identifiers': [{'type': 'dns', 'value': v} for v in o['names']],
                     'authorizations': [ca.url('/authz/%d/%d' % (oid, i)) for i in range(nauthz)],
                     'finalize': ca.url('/finalize/%d' % oid)}
                if o['status'] == 'valid':
                    d['certificate'] = ca.url('/cert/%d' % oid)
                return d
        return H

    def start(self, lab):
        bundle, leaf, key = lab.make_ca('fakeca')
        self.ca_bundle = bundle
        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self.handler())
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.directory = self.url('/dir')


def config(lab, ca, name, certs, glob=()):
    path = lab.path(name)
    lines = ['global', '    state-dir %s.state' % path,
             '    spoa-listen 127.0.0.1:%d' % lab.port()] + ['    ' + g for g in glob]
    lines += ['ca fake', '    directory %s' % ca.directory, '    ca-bundle %s' % ca.ca_bundle]
    for c in certs:
        lines += ['cert %s' % c, '    domains %s' % c]
    lab.write(name, '\n'.join(lines) + '\n')
    return path


def stored(cfg, name):
    try:
        return json.load(open('%s.state/certs/%s/meta.json' % (cfg, name)))
    except OSError:
        return None


with L.Lab('fakeca') as lab:
    ca = FakeCA()
    ca.start(lab)
    cfg = config(lab, ca, 'fake.cfg', ['a.example', 'b.example', 'c.example', 'd.example',
                                      'g.example', 'h.example', 'i.example'],
                 glob=['order-timeout 4'])

    # 0. the emulation works: a normal order is issued and stored
    rc, out, err = lab.hacme('issue', 'a.example', config=cfg)
    t.eq(rc, 0, 'emulated CA: a normal order is issued (%s)' % (err.strip()[-300:]))
    first = stored(cfg, 'a.example')
    t.ok(first is not None and first['not_after'] > first['not_before'], 'and stored')

    # 1. a leaf that is already expired is not stored; the error names clock skew
    ca.mode = {'expired'}
    rc, out, err = lab.hacme('issue', 'b.example', config=cfg)
    t.eq(rc, 2, 'expired leaf: hacme issue exits 2')
    t.like(err, r'b\.example: the CA\'s certificate expired at .*clock skew', 'the error says expired and names clock skew')
    t.eq(len([l for l in err.split('\n') if l.startswith('hacme: ')]), 1, 'in one line')
    t.ok(stored(cfg, 'b.example') is None, 'nothing stored')

    # 2. a renewal never stores a certificate that expires before the stored one
    ca.mode = {'short'}
    rc, out, err = lab.hacme('renew', '--force', 'a.example', config=cfg)
    t.eq(rc, 2, 'renew --force giving a 5-day leaf over a 90-day one: exit 2')
    t.like(err, r'expires at .*before the stored one.*--allow-worse', 'the error says why and names --allow-worse')
    t.eq((stored(cfg, 'a.example') or {}).get('serial'), first['serial'], 'the stored certificate is kept')
    rc, out, err = lab.hacme('renew', '--force', '--allow-worse', 'a.example', config=cfg)
    t.eq(rc, 0, 'renew --force --allow-worse: stored (%s)' % err.strip()[-200:])
    t.ok((stored(cfg, 'a.example') or {}).get('serial') != first['serial'], 'the shorter certificate replaced it')

    # 3. 1000 authorizations for one name: refused before any is fetched
    ca.mode = {'authz1000'}
    before = ca.counted('authz')
    t0 = time.time()
    rc, out, err = lab.hacme('issue', 'c.example', config=cfg)
    t.eq(rc, 2, '1000 authorizations for one name: exit 2')
    t.like(err, r'lists 1000 authorizations for 1 names: refused', 'the error names the mismatch')
    t.eq(ca.counted('authz') - before, 0, 'no authorization was fetched (was 1000)')

    # 4. an authorization for a name that was not ordered
    ca.mode = {'foreign'}
    fin = ca.counted('finalize')
    rc, out, err = lab.hacme('issue', 'd.example', config=cfg)
    t.eq(rc, 2, 'authorization for a name not ordered: exit 2')
    t.like(err, r'is for "not-ordered\.example", a name not ordered: refused', 'the error names it')
    t.eq(ca.counted('finalize') - fin, 0, 'and no finalize was sent for it')

    # 5. an order stuck in processing (no Retry-After): the deadline
    ca.mode = {'stuck0'}
    t0 = time.time()
    rc, out, err = lab.hacme('issue', 'g.example', config=cfg)
    took = time.time() - t0
    t.eq(rc, 2, 'order stuck in processing: exit 2')
    t.like(err, r'the CA has not finished the order after 4 s', 'the error says the CA has not finished the order')
    t.ok('timed out' not in err and 'network' not in err, 'not a network error')
    t.ok(took < 30, 'after order-timeout 4 (%.1f s)' % took)

    # 5b. stuck with Retry-After: 99999, order-timeout 600: fails at once,
    # naming the Retry-After, instead of sleeping until the deadline
    ca.mode = {'stuck'}
    scfg = config(lab, ca, 'stuck.cfg', ['g2.example'], glob=['order-timeout 600'])
    try:
        rc, out, err = lab.hacme('issue', 'g2.example', config=scfg, timeout=60)
    except L.subprocess.TimeoutExpired:
        rc, out, err = None, '', 'still running after 60 s'
    t.eq(rc, 2, 'stuck, Retry-After 99999 past order-timeout 600: hacme issue ended, exit 2 (%s)'
         % err.strip()[-200:])
    t.like(err, r'g2\.example: the CA has not finished the order \(waiting for the certificate\): '
           r'the CA asks to wait 99999 s \(Retry-After\), past order-timeout 600 s: try again later, '
           r'or raise order-timeout', 'the error names the Retry-After and order-timeout')
    t.eq(len([l for l in err.split('\n') if l.startswith('hacme: ')]), 1, 'in one line')

    # 6. the CA forgot the account: registered again with the same key, once
    ca.mode = {'forget'}
    acct_before = json.load(open(cfg + '.state/account/fake/account.json'))['url']
    na = ca.counted('newAccount')
    rc, out, err = lab.hacme('-v', 'issue', 'h.example', config=cfg)
    t.eq(rc, 0, 'forgotten account: the order still succeeds (%s)' % err.strip()[-300:])
    t.eq(ca.counted('newAccount') - na, 1, 'one newAccount to register again')
    t.like(err, r'does not know account .* any more \(accountDoesNotExist\): registering the same key again',
           'the log says so')
    acct_after = json.load(open(cfg + '.state/account/fake/account.json'))['url']
    t.ok(acct_after != acct_before, 'account.json holds the new account URL')
    rc, out, err = lab.hacme('issue', 'i.example', config=cfg)
    t.eq(rc, 0, 'and the next run uses it without registering again')
    t.eq(ca.counted('newAccount') - na, 1, '(still one newAccount)')

    # 6b. forgotten after newOrder: the refused request is sent again
    for at, name, what in (('authz', 'j.example', 'authorization'), ('finalize', 'k.example', 'finalize'),
                           ('cert', 'l.example', 'certificate download')):
        ca.mode = {'forget@' + at}
        na, adne = ca.counted('newAccount'), ca.counted('accountDoesNotExist')
        acct_before = json.load(open(cfg + '.state/account/fake/account.json'))['url']
        rc, out, err = lab.hacme('-v', 'issue', name, config=cfg)
        t.eq(rc, 0, 'forgotten at the %s: the order still succeeds (%s)' % (what, err.strip()[-300:]))
        t.eq(ca.counted('accountDoesNotExist') - adne, 1, '%s: the CA refused one request' % what)
        t.eq(ca.counted('newAccount') - na, 1, '%s: one newAccount to register again' % what)
        t.like(err, r'does not know account .* any more \(accountDoesNotExist\): registering the same key '
               r'again, then repeating %s: https://127\.0\.0\.1:\d+/%s/' % (re.escape(name), at),
               '%s: the log names accountDoesNotExist and the request' % what)
        t.ok(stored(cfg, name) is not None, '%s: stored' % what)
        t.ok(json.load(open(cfg + '.state/account/fake/account.json'))['url'] != acct_before,
             '%s: account.json holds the new account URL' % what)

    # 6b'. forgotten at a revocation signed with the account
    ca.mode = {'forget@revoke'}
    na, rv = ca.counted('newAccount'), ca.counted('revoke')
    rc, out, err = lab.hacme('-v', 'revoke', 'l.example', config=cfg)
    t.eq(rc, 0, 'forgotten at revokeCert: the revocation still succeeds (%s)' % err.strip()[-300:])
    t.eq(ca.counted('newAccount') - na, 1, 'revokeCert: one newAccount to register again')
    t.eq(ca.counted('revoke') - rv, 1, 'revokeCert: then sent again')
    t.like(err, r'does not know account .* any more \(accountDoesNotExist\): registering the same key '
           r'again, then repeating https://127\.0\.0\.1:\d+/revoke', 'revokeCert: the log says so')

    # 6c. a CA that forgets the account every time: one new registration,
    # then the order fails with one line, no loop
    for at, name, what in (('', 'm.example', 'newOrder'), ('@authz', 'n.example', 'authorization')):
        with ca.lock:   # the CA knows the account again: the first refusal is the one below
            ca.known.update(ca.accounts.values())
        ca.mode = {'forget-always' + at}
        na, posts = ca.counted('newAccount'), ca.counted('post')
        rc, out, err = lab.hacme('issue', name, config=cfg)
        t.eq(rc, 2, 'forgets every time (at %s): exit 2' % what)
        t.like(err, r'%s: %s: the CA forgot account https://\S+ again right after hacme registered the '
               r'key again \(accountDoesNotExist twice in one order\): not repeated' % (re.escape(name), what),
               'forgets every time (at %s): the error says so' % what)
        t.eq(len([l for l in err.split('\n') if l.startswith('hacme: ')]), 1, 'in one line')
        t.eq(ca.counted('newAccount') - na, 1, 'forgets every time (at %s): one newAccount' % what)
        n = ca.counted('post') - posts
        t.ok(n <= 5, 'forgets every time (at %s): %d requests signed with the account (no loop)' % (what, n))
        t.ok(stored(cfg, name) is None, 'nothing stored')

    # 7. hacme run against a CA that issues expired leaves: no order loop
    ca.mode = {'expired'}
    rcfg = config(lab, ca, 'run.cfg', ['e.example'])
    o0 = ca.counted('newOrder')
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', rcfg, 'run'],
                    ready=r'hacme run: \d+ certificates')
    run.wait_log(r'e\.example: the CA\'s certificate expired at .*clock skew', 20)
    time.sleep(15)
    n = ca.counted('newOrder') - o0
    t.ok(1 <= n <= 2, 'hacme run, CA issuing expired leaves: %d order(s) in 15 s (<= 2; was 45)' % n)
    t.like(run.read_log(), r'e\.example: the CA\'s certificate expired at .*\(1 failures in a row, next attempt ',
           'logged as a failure with a next attempt')
    run.stop()

    # 8. hacme run and a 429 with Retry-After: 99999999: postponed a day, not 3 years
    ca.mode = {'ra'}
    rcfg = config(lab, ca, 'ra.cfg', ['f.example'])
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', rcfg, 'run'],
                    ready=r'hacme run: \d+ certificates')
    run.wait_log(r'f\.example: order failed', 20)
    t1 = time.time()

    def next_attempt():
        try:
            return json.load(open(rcfg + '.state/schedule.json'))['f.example']['next_attempt']
        except (OSError, ValueError, KeyError):
            return None
    L.wait_until(next_attempt, 10, 'schedule.json with next_attempt')
    na = next_attempt()
    at = time.mktime(time.strptime(na, '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
    t.ok(t1 + DAY - 120 <= at <= t1 + DAY + 5,
         'Retry-After 99999999 on newOrder: next attempt %s, one day away (%.0f s)' % (na, at - t1))
    run.stop()
sys.exit(t.done())
