#!/usr/bin/env python3
"""notify-command against the real pebble and HAProxy: one event each for
issued, renewed, failed, revoked, removed (CLI verbs) and, from `hacme run`,
issued, failed and expiring (60-second certificates whose renewal fails
because the CA went away); the environment (event, name, domains, serial,
not_after, error); argv split without a shell, a shell when asked for;
a command that hangs is killed after the timeout; one that fails is
logged."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()

RECORDER = '''#!/usr/bin/env python3
import json, os, sys
with open(%r, 'a') as f:
    f.write(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items()
                        if k.startswith('HACME_')}}) + '\\n')
'''


def events(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except FileNotFoundError:
        return []


def wait_event(path, pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in events(path):
            if pred(e):
                return e
        time.sleep(0.2)
    t.diag('%s: events seen: %s' % (what, [e['env'].get('HACME_EVENT') for e in events(path)]))
    return None


def ev_is(name, event):
    return lambda e: e['env'].get('HACME_EVENT') == event and e['env'].get('HACME_NAME') == name


def cli_events(lab, pb, st):
    log = lab.path('cli-events.jsonl')
    rec = lab.write('notify.py', RECORDER % log, mode=0o755)
    cfg = lab.hacme_config(pb, st, certs=[('one', ['domains one.example www.one.example'])],
                           glob=['notify-command "%s \'two words\' plain"' % rec], name='cli.cfg')
    rc, out, err = lab.hacme('issue', 'one', config=cfg)
    e = wait_event(log, ev_is('one', 'issued'), 20, 'issued')
    t.ok(rc == 0 and e is not None, 'issue: event issued')
    if e:
        env = e['env']
        t.eq(e['argv'], ['two words', 'plain'], 'argv split without a shell (quotes kept one word)')
        meta = json.load(open(os.path.join(cfg + '.state', 'certs', 'one', 'meta.json')))
        rc_, o_, e_ = L._run(['openssl', 'x509', '-noout', '-serial', '-in',
                              os.path.join(cfg + '.state', 'certs', 'one', 'chain.pem')])
        t.eq('serial=' + env.get('HACME_SERIAL', ''), o_.strip(), 'HACME_SERIAL is the new serial, as openssl x509 -serial prints it')
        t.eq(env.get('HACME_SERIAL', '').lstrip('0'), meta['serial'].lstrip('0'), 'and it is meta.json\'s serial')
        t.eq(env.get('HACME_DOMAINS'), 'one.example www.one.example', 'HACME_DOMAINS lists the names')
        t.like(env.get('HACME_NOT_AFTER', ''), r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', 'HACME_NOT_AFTER is RFC 3339')
        t.eq(env.get('HACME_ERROR'), '', 'HACME_ERROR is empty on success')
        t.ok('HACME_BUILD' not in env, 'hacme\'s own HACME_* environment is not passed on')
    rc, out, err = lab.hacme('renew', '--force', 'one', config=cfg)
    e = wait_event(log, ev_is('one', 'renewed'), 20, 'renewed')
    t.ok(rc == 0 and e is not None, 'renew --force: event renewed')
    rc, out, err = lab.hacme('revoke', 'one', config=cfg)
    e = wait_event(log, ev_is('one', 'revoked'), 20, 'revoked')
    t.ok(rc == 0 and e is not None and e['env'].get('HACME_SERIAL'), 'revoke: event revoked, with the serial')
    rc, out, err = lab.hacme('remove', 'one', config=cfg)
    e = wait_event(log, ev_is('one', 'removed'), 20, 'removed')
    t.ok(rc == 0 and e is not None, 'remove: event removed')

    # hacme check catches a command that cannot run
    for bad, what in (('"/bin/sh -c \'echo unclosed"', 'a single quote is not closed'),
                      ('"/nonexistent/notify arg"', 'No such file or directory')):
        c = lab.hacme_config(pb, st, glob=['notify-command %s' % bad], name='badnotify.cfg')
        rc, out, err = lab.hacme('check', '--offline', config=c)
        t.ok(rc == 1 and 'notify-command' in err and what in err, 'hacme check: %s (%s)' % (what, err.strip()[-120:]))

    # failed: the pre-flight finds nothing on the port
    dead = lab.port()
    cfg2 = lab.hacme_config(pb, st, certs=[('bad', ['domains bad.example'])], name='fail.cfg',
                            glob=['notify-command "/bin/sh -c \'echo \\"$HACME_EVENT $HACME_NAME $HACME_ERROR\\" >> %s\'"'
                                  % lab.path('shell.txt')])
    text = open(cfg2).read().replace('preflight-connect 127.0.0.1:%d' % st.http_port, 'preflight-connect 127.0.0.1:%d' % dead)
    open(cfg2, 'w').write(text)
    rc, out, err = lab.hacme('issue', 'bad', config=cfg2)
    try:
        L.wait_until(lambda: os.path.exists(lab.path('shell.txt')) and open(lab.path('shell.txt')).read().strip(), 20, 'shell notify')
        line = open(lab.path('shell.txt')).read()
    except L.LabError:
        line = ''
    t.ok(rc == 2 and line.startswith('failed bad ') and len(line.split()) > 3,
         'a failed order: event failed, through /bin/sh -c (asked for), with the error: %s' % line.strip()[:120])

    # bounded: a command that hangs is killed; a failing one is logged
    cfg3 = lab.hacme_config(pb, st, certs=[('slow', ['domains slow.example'])], name='slow.cfg',
                            glob=['notify-command "/bin/sh -c \'echo start >> %s; /bin/sleep 31.5; echo end >> %s\'"'
                                  % (lab.path('slow.txt'), lab.path('slow.txt'))])
    t0 = time.time()
    rc, out, err = lab.hacme('issue', 'slow', config=cfg3, env={'HACME_NOTIFY_TIMEOUT': '2'})
    t.ok(rc == 0 and time.time() - t0 < 25, 'hacme does not wait for the notify-command (exit %d in %.1f s)' % (rc, time.time() - t0))
    sleeping = lambda: [p for p in os.listdir('/proc') if p.isdigit() and _cmd(p) == ['/bin/sleep', '31.5']]  # noqa: E731
    slow = lab.path('slow.txt')
    try:
        L.wait_until(lambda: os.path.exists(slow) and 'start' in open(slow).read() and not sleeping(),
                     15, 'the notify-command started and was killed')
        ok = 'end' not in open(slow).read() and time.time() - t0 < 25
    except L.LabError:
        ok = False
    t.ok(ok, 'a hanging notify-command (and its children) is killed after HACME_NOTIFY_TIMEOUT (2 s), not after its 31.5 s')


def _cmd(pid):
    try:
        return open('/proc/%s/cmdline' % pid, 'rb').read().decode(errors='replace').rstrip('\0').split('\0')
    except OSError:
        return None


def example_commands(lab, pb, st):
    """The two examples of dist/hacme.cfg (the shipped /etc/hacme/hacme.cfg)
    work as written: mail (a mail(1) stand-in on PATH records its input)
    and the curl webhook (to an HTTP server of this test instead of
    hooks.example.com)."""
    import http.server
    import threading
    lines = [l.strip()[1:].strip() for l in open(os.path.join(L.SRC, 'dist', 'hacme.cfg'))
             if l.strip().startswith('# notify-command')]
    t.eq(len(lines), 2, 'dist/hacme.cfg shows two notify-command examples (mail, curl)')
    bindir = lab.path('bin')
    os.makedirs(bindir, exist_ok=True)
    lab.write('bin/mail', '#!/bin/sh\n{ echo "args: $*"; cat; } >> %s\n' % lab.path('mail.txt'), mode=0o755)
    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.path, self.headers.get('Content-Type'),
                        self.rfile.read(int(self.headers.get('Content-Length', 0)))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(('127.0.0.1', 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for i, line in enumerate(lines):
            line = line.replace('https://hooks.example.com/hacme', 'http://127.0.0.1:%d/hacme' % srv.server_port)
            cfg = lab.hacme_config(pb, st, certs=[('ex%d' % i, ['domains ex%d.example' % i])],
                                   glob=[line], name='ex%d.cfg' % i)
            rc, out, err = lab.hacme('issue', 'ex%d' % i, config=cfg,
                                     env={'PATH': bindir + ':' + os.environ.get('PATH', '/usr/bin:/bin')})
            t.eq(rc, 0, 'example %d: issue with it: exit 0' % i)
        try:
            L.wait_until(lambda: os.path.exists(lab.path('mail.txt')) and 'issued ex0' in open(lab.path('mail.txt')).read(),
                         20, 'mail')
            mail = open(lab.path('mail.txt')).read()
        except L.LabError:
            mail = ''
        t.ok('args: -s hacme: issued ex0 root' in mail and 'issued ex0 ' in mail,
             'the mail example mails "issued ex0" to root, subject "hacme: issued ex0": %r' % mail[:100])
        try:
            L.wait_until(lambda: got, 20, 'webhook')
        except L.LabError:
            pass
        body = json.loads(got[0][2]) if got else {}
        t.ok(got and got[0][0] == '/hacme' and got[0][1] == 'application/json' and
             body.get('event') == 'issued' and body.get('name') == 'ex1',
             'the curl example POSTs JSON {event, name, error} to the webhook: %r' % (got[:1],))
    finally:
        srv.shutdown()


def run_events(lab):
    """hacme run: issued; the CA goes away; failed, then expiring."""
    hp = lab.port()
    pb = lab.pebble(http_port=hp, config={'certificateValidityPeriod': 40})
    st = lab.stack(http_port=hp, agent=False, name='haproxy-run')
    log = lab.path('run-events.jsonl')
    rec = lab.write('notify-run.py', RECORDER % log, mode=0o755)
    cfg = lab.hacme_config(pb, st, certs=[('exp', ['domains exp.example'])], agents=[],
                           glob=['notify-command %s' % rec], name='run.cfg')
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                    ready=r'hacme run: \d+ certificates', timeout=30)
    e = wait_event(log, ev_is('exp', 'issued'), 30, 'run issued')
    t.ok(e is not None, 'hacme run: event issued')
    pb.proc.stop()
    e = wait_event(log, ev_is('exp', 'failed'), 40, 'run failed')
    t.ok(e is not None and e['env'].get('HACME_ERROR'), 'hacme run: the renewal fails without the CA: event failed, with the error')
    e = wait_event(log, ev_is('exp', 'expiring'), 60, 'run expiring')
    t.ok(e is not None and e['env'].get('HACME_SERIAL'), 'hacme run: within 1/6 of its lifetime and not renewed: event expiring')
    time.sleep(1)
    n = len([x for x in events(log) if x['env'].get('HACME_EVENT') == 'expiring'])
    t.eq(n, 1, 'expiring is sent once per certificate')
    run.stop()


with L.Lab('notify') as lab:
    hp = lab.port()
    pb = lab.pebble(http_port=hp)
    st = lab.stack(http_port=hp)
    cli_events(lab, pb, st)
    example_commands(lab, pb, st)
    run_events(lab)
sys.exit(t.done())
