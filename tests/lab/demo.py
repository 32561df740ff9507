#!/usr/bin/env python3
"""make demo: the hacme path, end to end on loopback, in plain words.

Starts hacme-spoa and HAProxy with the shipped haproxy-conf/haproxy.cfg,
publishes an http-01 token over the agent's control socket and fetches the
challenge URL through HAProxy. When $HACME_BUILD/acme/hacme exists and its
`issue` is implemented, it also orders a certificate from pebble and shows
HAProxy serving it by SNI without a reload (same worker PID).

Every step prints the real replies. Exit 0 only when every step that ran
worked; a step that cannot run yet says why and is skipped. Everything the
demo started is stopped on exit (HACME_KEEP=1 keeps the lab dir).
"""

import base64
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

CONF = os.path.join(L.SRC, 'haproxy-conf')
NAME = 'demo.example'


class Demo:
    def __init__(self, lab):
        self.lab = lab
        self.n = 0
        self.failed = []
        self.skipped = []
        self.ports = {}
        self.deployed = False

    # ---- output
    def step(self, title):
        self.n += 1
        print('\nStep %d: %s' % (self.n, title), flush=True)

    def say(self, text):
        for line in str(text).rstrip('\n').split('\n'):
            print('    ' + line, flush=True)

    def check(self, cond, good, bad):
        if cond:
            self.say('-> ' + good)
        else:
            self.say('-> FAILED: ' + bad)
            self.failed.append('step %d: %s' % (self.n, bad))
        return cond

    def skip(self, why):
        self.say('-> skipped: ' + why)
        self.skipped.append('step %d: %s' % (self.n, why))

    # ---- the existing path
    def start_agent(self):
        self.step('start the agent hacme-spoa on loopback')
        self.agent = self.lab.agent(log_level='info')
        self.say('hacme-spoa pid %d: SPOP on 127.0.0.1:%d, control socket %s'
                 % (self.agent.pid, self.agent.listen_port, self.agent.control))
        rep = self.agent.ctl('PING')
        self.say('control> PING')
        self.say('agent  < ' + ' | '.join(rep))
        return self.check(rep == ['PONG'], 'the agent answers', 'no PONG from the agent')

    def start_haproxy(self, http_port=None):
        self.step('start HAProxy with haproxy-conf/haproxy.cfg')
        lab = self.lab
        certs = lab.path('certs')
        p = subprocess.run([os.path.join(CONF, 'make-fallback-cert.sh'), certs],
                           capture_output=True, text=True, timeout=60)
        self.say('make-fallback-cert.sh %s: %s' % (certs, (p.stdout + p.stderr).strip().replace('\n', '; ')))
        if not self.check(p.returncode == 0, 'fallback certificate made', 'make-fallback-cert.sh failed'):
            return False
        self.crt_list = os.path.join(certs, 'certs.list')
        self.http_port = http_port or lab.port()
        self.https_port = lab.port()
        self.stats_sock = lab.path('haproxy-admin.sock')
        env = {
            'HACME_HTTP_BIND': '127.0.0.1:%d' % self.http_port,
            'HACME_HTTPS_BIND': '127.0.0.1:%d' % self.https_port,
            'HACME_CRT_LIST': self.crt_list,
            'HACME_SPOE_CONF': os.path.join(CONF, 'spoe-acme.conf'),
            'HACME_AGENT_ADDR': '127.0.0.1:%d' % self.agent.listen_port,
            'HACME_AGENT_CHECK_INTER': '200ms',
            'HACME_STATS_SOCKET': self.stats_sock,
            'HACME_APP_ADDR': '127.0.0.1:%d' % lab.port(),
        }
        self.hap = lab.haproxy(os.path.join(CONF, 'haproxy.cfg'), env=env)
        self.say('haproxy pid %d: http on 127.0.0.1:%d, https on 127.0.0.1:%d, runtime API %s'
                 % (self.hap.pid, self.http_port, self.https_port, self.stats_sock))
        info = self.hap.info()
        self.say('runtime API> show info: %s %s, Pid %s'
                 % (info.get('Name'), info.get('Version'), info.get('Pid')))
        self.worker_pid = info.get('Pid')
        try:
            L.wait_until(lambda: self.agent_status() == 'UP', 10, 'agent UP', self.hap)
        except L.LabError:
            pass
        st = self.agent_status()
        self.say('runtime API> show stat: be_acme_agent/agent1 is %s' % st)
        return self.check(st == 'UP', 'HAProxy reaches the agent (spop-check UP)',
                          'the agent backend is %s' % st)

    def agent_status(self):
        for line in self.hap.cmd('show stat').splitlines():
            f = line.split(',')
            if len(f) > 17 and f[0] == 'be_acme_agent' and f[1] == 'agent1':
                return f[17]
        return None

    def challenge(self):
        self.step('publish an http-01 token and fetch it through HAProxy')
        token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b'=').decode()
        thumb = base64.urlsafe_b64encode(hashlib.sha256(os.urandom(16)).digest()).rstrip(b'=').decode()
        keyauth = token + '.' + thumb
        line = 'ADD %s %s 300 %s' % (token, keyauth, NAME)
        rep = self.agent.ctl(line)
        self.say('control> ' + line)
        self.say('agent  < ' + ' | '.join(rep))
        ok = self.check(rep == ['OK'], 'token published', 'ADD was refused')
        path = '/.well-known/acme-challenge/' + token
        st, h, body = L.http_get(self.http_port, path, host=NAME)
        self.say('GET http://%s%s (to 127.0.0.1:%d)' % (NAME, path, self.http_port))
        self.say('HTTP %d, content-type %s, body: %s' % (st, h.get('content-type'), body.decode(errors='replace')))
        ok &= self.check(st == 200 and body.decode() == keyauth,
                         'HAProxy served the key authorization from the agent',
                         'expected 200 with the key authorization')
        st, h, body = L.http_get(self.http_port, path, host='other.example')
        self.say('same token with Host other.example: HTTP %d %s' % (st, body.decode(errors='replace')))
        ok &= self.check(st == 404, 'a token published for %s is not served for other names' % NAME,
                         'expected 404 for another host')
        rep = self.agent.ctl('DEL ' + token)
        self.say('control> DEL %s' % token)
        self.say('agent  < ' + ' | '.join(rep))
        st, h, body = L.http_get(self.http_port, path, host=NAME)
        self.say('GET again: HTTP %d %s' % (st, body.decode(errors='replace')))
        ok &= self.check(st == 404, 'a withdrawn token is gone at once', 'expected 404 after DEL')
        s = self.agent.stats()
        self.say('control> STATS: ' + ', '.join('%s %s' % kv for kv in sorted(s.items())))
        st, h, body = L.http_get(self.http_port, '/', host=NAME)
        self.say('other traffic on :80: GET / -> HTTP %d, Location %s' % (st, h.get('location')))
        ok &= self.check(st == 301, 'non-challenge requests never reach the agent (redirect to https)',
                         'expected 301 on /')
        return ok

    def agent_down(self):
        self.step('stop the agent: challenge requests get a fast 503, nothing hangs')
        token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b'=').decode()
        self.agent.stop()
        self.say('hacme-spoa stopped (exit status %s)' % self.agent.returncode())
        t0 = time.monotonic()
        st, h, body = L.http_get(self.http_port, '/.well-known/acme-challenge/' + token, host=NAME)
        ms = (time.monotonic() - t0) * 1000
        self.say('GET challenge URL: HTTP %d %s in %.0f ms' % (st, body.decode(errors='replace'), ms))
        return self.check(st == 503 and ms < 2000, 'HAProxy answers 503 by itself within its timeout',
                          'expected a 503 in under 2 s')

    # ---- the later steps: hacme issue, served by SNI, PID unchanged
    def hacme_available(self):
        return os.path.exists(L.exe('acme/hacme'))

    def hacme_config(self, pb):
        state = self.lab.path('hacme-state')
        certdir = self.lab.path('certs')
        text = """global
    state-dir       {state}
    runtime-api     unix@{sock}
    crt-list        {crt_list}
    cert-dir        {certdir}
    tls-check       127.0.0.1:{https}
    agent           {agent}
    preflight-port  {http}
    preflight-connect 127.0.0.1:{http}
ca pebble
    directory       {directory}
    ca-bundle       {ca}
    contact         mailto:demo@example.org
    account-key     ecdsa-p256
cert {name}
    domains         {name}
    key             ecdsa-p256
    ca              pebble
""".format(state=state, sock=self.stats_sock, crt_list=self.crt_list, certdir=certdir,
           https=self.https_port, http=self.http_port, agent=self.agent.control,
           directory=pb.directory, ca=pb.ca_bundle, name=NAME)
        return self.lab.write('hacme.conf', text)

    def issue(self):
        self.step('order a certificate with `hacme issue` from pebble')
        if not self.hacme_available():
            self.skip('%s is not built yet' % L.exe('acme/hacme'))
            return None
        pb = self.pebble
        self.say('pebble: directory %s, validates http-01 on 127.0.0.1:%d (= HAProxy :80)'
                 % (pb.directory, pb.http_port))
        cfg = self.hacme_config(pb)
        self.say('$ hacme -c %s issue %s' % (cfg, NAME))
        rc, out, err = self.lab.hacme('issue', NAME, config=cfg, timeout=120)
        self.say((out + err).strip() or '(no output)')
        self.say('exit status %d' % rc)
        if rc != 0 and 'not implemented' in (out + err).lower():
            self.skip('`hacme issue` is not implemented yet')
            return None
        if not self.check(rc == 0, 'hacme issued the certificate',
                          'hacme issue exited %d' % rc):
            return False
        state = self.lab.path('hacme-state', 'certs', NAME)
        self.say('stored in %s: %s' % (state, ' '.join(sorted(os.listdir(state)))))
        info = L.cert_info(open(os.path.join(state, 'chain.pem')).read())
        self.say('leaf: serial %s, SAN %s, key %s, notAfter %s'
                 % (info['serial'], ','.join(info['sans']), info['key_type'], info['not_after']))
        # `hacme issue` says "deployed" once it hot-loads through the runtime API
        self.deployed = 'deployed' in out
        self.say('pebble: %d order(s), issued serial(s) %s'
                 % (pb.orders_created(), ', '.join(pb.issued_serials()) or 'none'))
        return True

    def served(self):
        self.step('HAProxy serves the new certificate by SNI, without a reload')
        if not self.deployed:
            self.skip('hot-loading through the runtime API is not built yet (issue 4): '
                      'the certificate is stored, HAProxy still serves its fallback')
            return None
        root = self.lab.write('pebble-root.pem', self.pebble.roots(0))
        info = L.tls_probe(self.https_port, NAME, ca=root)
        self.say('openssl s_client -servername %s: serial %s, subject %s, SAN %s, notAfter %s, key %s'
                 % (NAME, info['serial'], info['subject'], ','.join(info['sans']),
                    info['not_after'], info['key_type']))
        self.say('issuer: %s; verify against pebble roots/0: %s' % (info['issuer'], info['verify']))
        inter = L.cert_info(self.pebble.intermediates(0))
        ok = self.check(NAME in info['sans'] and info['issuer'] == inter['subject'] and info['verified'],
                        'the certificate for %s from pebble is served' % NAME,
                        'HAProxy does not serve a pebble certificate for %s' % NAME)
        pid = self.hap.info().get('Pid')
        self.say('runtime API> show info: Pid %s (before: %s); haproxy master %d still running: %s'
                 % (pid, self.worker_pid, self.hap.pid, self.hap.alive()))
        ok &= self.check(pid == self.worker_pid and self.hap.alive(),
                         'same HAProxy process: no reload, no restart',
                         'HAProxy PID changed from %s to %s' % (self.worker_pid, pid))
        return ok


def main():
    print('hacme demo: every process runs on 127.0.0.1 with random ports; '
          'everything started here is stopped at the end.')
    binary = L.exe('spoa/hacme-spoa')
    if not os.path.exists(binary):
        print('%s is not built: run `make build` first' % binary)
        return 1
    with L.Lab('demo') as lab:
        d = Demo(lab)
        want_issue = d.hacme_available()
        http_port = lab.port()
        if want_issue:
            # pebble validates http-01 on HAProxy's :80 port
            d.pebble = lab.pebble(http_port=http_port)
        ok = d.start_agent() and d.start_haproxy(http_port) and d.challenge()
        if ok:
            r = d.issue()
            if r:
                d.served()
            elif r is None:
                d.step('HAProxy serves the new certificate by SNI, without a reload')
                d.skip('needs `hacme issue`')
            d.agent_down()
        if d.failed:
            lab.failed = True  # prints every process's log tail
    print()
    if d.failed:
        print('demo FAILED:\n  ' + '\n  '.join(d.failed))
        return 1
    print('demo: all %d steps worked%s' % (d.n - len(d.skipped),
          ('; skipped for now:\n  ' + '\n  '.join(d.skipped)) if d.skipped else '.'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
