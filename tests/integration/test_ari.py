#!/usr/bin/env python3
"""ARI (RFC 9773) in hacme run against an EMULATION (meson test
`ari_emulated`); the real thing is test_ari_pebble.py (pebble 2.10). This one
stays for what pebble cannot produce: a short renewalInfo Retry-After
(pebble always sends 6 h) and a window chosen at the CA's first answer, and
it runs on the suite's pebble 2.4.0, which has no renewalInfo: so this
test puts a small HTTPS endpoint of its own in front of the directory: it
serves pebble's directory plus a `renewalInfo` URL, and the renewalInfo
resource itself; every other request (nonces, accounts, orders) still goes
to pebble. The endpoint moves the suggested window to a few seconds from now:
hacme must ask for the right certificate ID, renew inside the window with
`replaces`, and poll again for the new certificate."""

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

t = L.TAP()


ari_id = L.ari_cert_id


class ARI:
    def __init__(self, pb):
        self.pb = pb
        self.requests = []
        self.window = {}        # id -> (start, end)
        self.lock = threading.Lock()

    def handler(self):
        ari = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == '/dir':
                    d = ari.pb.directory_json()
                    d['renewalInfo'] = 'https://127.0.0.1:%d/renewal-info' % ari.port
                    d.setdefault('meta', {})['profiles'] = {
                        'classic': 'the default', 'tlsserver': '45 days, TLS server auth only'}
                    return self.send(200, d)
                m = re.match(r'^/renewal-info/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)$', self.path)
                if not m:
                    return self.send(404, {'type': 'urn:ietf:params:acme:error:malformed'})
                with ari.lock:
                    ari.requests.append((time.time(), m.group(1)))
                    w = ari.window.get(m.group(1))
                if w is None:
                    # the first certificate asked about: a window 4..8 s from
                    # now; any later one: a month away
                    now = time.time()
                    w = (now + 4, now + 8) if not ari.window else (now + 30 * 86400, now + 31 * 86400)
                    ari.window[m.group(1)] = w
                fmt = lambda x: time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(x))
                return self.send(200, {'suggestedWindow': {'start': fmt(w[0]), 'end': fmt(w[1])}},
                                 {'Retry-After': '2'})

            def send(self, code, obj, headers=None):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        return H

    def start(self, lab):
        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self.handler())
        self.port = self.srv.server_address[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # pebble's own listener certificate (127.0.0.1), so the same ca-bundle trusts both
        ctx.load_cert_chain(lab.path('pebble-leaf.pem'), lab.path('pebble-leaf.key'))
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.directory = 'https://127.0.0.1:%d/dir' % self.port


with L.Lab('ari') as lab:
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '100'})
    ari = ARI(pb)
    ari.start(lab)
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, certs=[('ari', ['domains ari.example'])], agents=[])
    lab.write(os.path.basename(cfg), open(cfg).read().replace(pb.directory, ari.directory))
    inter = L.cert_info(pb.intermediates(0))['subject']
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'], ready=r'hacme run: \d+ certificates')

    def served():
        try:
            return L.tls_probe(st.https_port, 'ari.example')
        except L.LabError:
            return None

    L.wait_until(lambda: (served() or {}).get('issuer') == inter, 30, 'first certificate served', run.proc if hasattr(run, 'proc') else None)
    first = served()
    want = ari_id(first['pem'])
    L.wait_until(lambda: any(i == want for _, i in ari.requests), 15, 'renewalInfo request')
    t.ok(any(i == want for _, i in ari.requests),
         'hacme fetched renewalInfo for the served certificate\'s ID (AKI keyid . serial: %s)' % want)

    # the CA's window for it is 4..8 s after its first answer: hacme renews inside it
    with ari.lock:
        now = ari.window[want][0] - 4
    deadline = time.time() + 30
    second = None
    while time.time() < deadline:
        s = served()
        if s and s['serial'] != first['serial'] and s['issuer'] == inter:
            second = s
            break
        time.sleep(0.3)
    t.ok(second is not None, 'hacme renewed when the ARI window moved, and hot-loaded the new certificate')
    log = run.read_log()
    m = re.search(r'ari: renewal at (\S+) \(ari window\)', log)
    t.ok(m is not None, 'the renewal moment came from the ARI window (%s)' % (m.group(1) if m else 'no log line'))
    if m:
        at = time.mktime(time.strptime(m.group(1), '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
        t.ok(now + 3 <= at <= now + 8.5, 'the moment lies inside the suggested window')
    t.like(log, r'ari: ordering \(ari window, replaces %s\)' % re.escape(want), 'the new order carries replaces = the old certificate\'s ID')
    if second:
        want2 = ari_id(second['pem'])
        L.wait_until(lambda: any(i == want2 for _, i in ari.requests), 15, 'renewalInfo for the new certificate')
        t.ok(any(i == want2 for _, i in ari.requests), 'and asks renewalInfo about the new certificate next')
    time.sleep(3)
    t.eq(pb.orders_created(), 2, 'no further order while the new certificate\'s window is a month away')
    run.stop()

    # profiles: checked against the directory's meta.profiles
    prof = lab.hacme_config(pb, st, name='prof.cfg', agents=[],
                            certs=[('good', ['domains good.example', 'profile tlsserver']),
                                   ('nope', ['domains nope.example', 'profile shortlived'])])
    text = open(prof).read().replace(pb.directory, ari.directory)
    lab.write('prof.cfg', text)
    rc, out, err = lab.hacme('issue', 'good', config=prof)
    t.eq(rc, 0, 'profile tlsserver, listed in meta.profiles: issued (%s)' % err.strip()[-200:])
    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('issue', 'nope', config=prof)
    line = [i + 1 for i, l in enumerate(text.split('\n')) if l == 'cert nope'][0]
    t.eq(rc, 1, 'a profile the CA does not list: exit 1, a config error')
    t.like(err, r'prof\.cfg:%d: cert nope: profile .shortlived.: ca pebble does not offer it \(it offers: classic, tlsserver\)' % line,
           'the error names file:line, the profile and what the CA offers')
    t.eq(pb.orders_created(mark), 0, 'and no order was sent')
sys.exit(t.done())
