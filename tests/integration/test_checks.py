#!/usr/bin/env python3
"""Issue 8 section 2: never spend an order that cannot be stored and served.
Real pebble, real HAProxy (the shipped haproxy-conf), real hacme-spoa.

For each thing a user gets wrong -- a wrong runtime-api socket path, a
socket at level operator, a crt-list HAProxy does not bind, HAProxy down, a
read-only cert-dir, an SPOE config without `option set-on-error` --
`hacme check` names it with the fix (exit 1), `hacme check --offline` does
not look (exit 0), `hacme issue` stops before newOrder (pebble logs zero
orders) with the same error and exits 1 (a setup error, not an ACME
failure: that is 2), and `hacme run` (one case) keeps backing off without
an order."""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()

MINI_HAPROXY = """global
    stats socket {sock} level {level}
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend tls
    bind 127.0.0.1:{port} ssl crt-list {crt_list}
    http-request return status 200
"""

# the shipped SPOE engine, its agent backend at agent_port
MINI_SPOE = """frontend http
    bind 127.0.0.1:{hport}
    filter spoe engine acme config "${{SPOE_CONF}}"
    http-request return status 404
backend be_acme_agent
    mode tcp
    timeout connect 5s
    timeout server 3m
    server agent1 127.0.0.1:{agent_port}
"""


def mini_haproxy(lab, name, level='admin', crt_list=None, spoe=None, agent_port=None):
    """A HAProxy of its own: a stats socket at level, TLS on crt_list and,
    with spoe (a SPOE config file, given through the environment as the
    shipped haproxy.cfg does), the challenge frontend and agent backend."""
    sock = lab.path(name + '.sock')
    text = MINI_HAPROXY.format(sock=sock, level=level, port=lab.port(), crt_list=crt_list)
    env = {}
    if spoe:
        text += MINI_SPOE.format(hport=lab.port(), agent_port=agent_port)
        env['SPOE_CONF'] = spoe
    cfg = lab.write(name + '-haproxy.cfg', text)
    return lab.haproxy(cfg, stats_socket=sock, name=name, env=env), sock


def read(path):
    with open(path) as f:
        return f.read()


def case(lab, pb, name, cfg, want, wrap=None):
    """check fails with want, --offline passes, issue orders nothing."""
    argv0 = list(wrap or [])

    def hacme(*args):
        rc, out, err = L._run(argv0 + [L.exe('acme/hacme'), '-c', cfg] + list(args),
                              timeout=120)
        with open(lab.path('hacme.log'), 'a') as f:
            f.write('$ %s %s\n[rc %d]\n%s%s' % (' '.join(argv0), ' '.join(args), rc, out, err))
        return rc, out, err

    rc, out, err = hacme('check')
    t.eq(rc, 1, '%s: hacme check exits 1' % name)
    t.like(err, want, '%s: hacme check names it (%s)' % (name, err.strip().splitlines()[0][:300]
                                                          if err.strip() else ''))
    lines = [l for l in err.splitlines() if re.search(want, l)]
    t.ok(len(lines) >= 1 and all(l.startswith('hacme: ') for l in lines),
         '%s: the error is one line' % name)
    rc, out, err = hacme('check', '--offline')
    t.eq(rc, 0, '%s: hacme check --offline skips the live checks (%s)' % (name, err.strip()[:200]))
    mark = pb.proc.log_mark()
    rc, out, err = hacme('issue', 'a.example')
    t.eq(rc, 1, '%s: hacme issue exits 1, a setup error' % name)
    t.like(err, r'a\.example: not ordered: ', '%s: issue says it did not order' % name)
    t.like(err, want, '%s: issue gives the same reason' % name)
    rc, out, err = hacme('renew', '--force', 'a.example')
    t.eq(rc, 1, '%s: hacme renew --force exits 1 too (%s)' % (name, err.strip()[-200:]))
    t.like(err, want, '%s: renew gives the same reason' % name)
    t.eq(pb.orders_created(mark), 0, '%s: pebble logged zero orders' % name)


def main(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp)
    good = lab.hacme_config(pb, st, certs=[('a.example', [])], name='good.cfg')
    text = read(good)
    sock_line = 'runtime-api unix@%s' % st.stats_sock

    # positive control: everything in place
    rc, out, err = lab.hacme('check', config=good)
    t.eq(rc, 0, 'good config: hacme check exits 0 (%s)' % err.strip()[:300])
    t.like(out, r'HAProxy unix@\S+: reachable, level admin', 'good config: level admin seen')
    t.like(out, r'HAProxy unix@\S+: crt-list %s is bound' % re.escape(st.crt_list),
           'good config: the crt-list is bound')
    t.like(out, r'ok   cert-dir %s: writable' % re.escape(st.cert_dir), 'good config: cert-dir writable')

    # 1. wrong socket path
    cfg = lab.write('wrong-sock.cfg', text.replace(sock_line, 'runtime-api unix@%s' %
                                                   lab.path('no-such-haproxy.sock')))
    case(lab, pb, 'wrong socket path', cfg,
         r'HAProxy unix@\S+no-such-haproxy\.sock: connect: No such file or directory: '
         r'is HAProxy running, and is this its `stats socket`')

    # 2. a socket at level operator (a second HAProxy, same crt-list)
    _, osock = mini_haproxy(lab, 'oper', level='operator', crt_list=st.crt_list)
    cfg = lab.write('oper.cfg', text.replace(sock_line, 'runtime-api unix@%s' % osock))
    case(lab, pb, 'level operator', cfg,
         r'HAProxy unix@\S+oper\.sock: the socket is at level operator, hacme needs level '
         r'admin: write `level admin` on its `stats socket` line')

    # 3. a crt-list HAProxy does not bind
    other = os.path.join(st.cert_dir, 'other.list')
    shutil.copy(st.crt_list, other)
    cfg = lab.write('unbound.cfg', text.replace('crt-list %s' % st.crt_list, 'crt-list %s' % other))
    case(lab, pb, 'crt-list not bound', cfg,
         r'crt-list %s: HAProxy unix@\S+ does not use it \(its crt-lists: %s\): bind it on the '
         r'TLS frontend' % (re.escape(other), re.escape(st.crt_list)))

    # 4. HAProxy down (started, then stopped)
    shipped_spoe = os.path.join(L.SRC, 'haproxy-conf', 'spoe-acme.conf')
    h3, dsock = mini_haproxy(lab, 'down', crt_list=st.crt_list, spoe=shipped_spoe,
                             agent_port=st.agent_port)
    cfg = lab.write('down.cfg', text.replace(sock_line, 'runtime-api unix@%s' % dsock))
    rc, out, err = lab.hacme('check', config=cfg)
    t.eq(rc, 0, 'HAProxy down: while it runs, check passes (%s)' % err.strip()[:200])
    h3.stop()
    case(lab, pb, 'HAProxy down', cfg,
         r'HAProxy unix@\S+down\.sock: connect: (No such file or directory|Connection refused): '
         r'is HAProxy running')

    # 5. cert-dir read-only (a read-only bind mount in a mount namespace of
    # its own: root writes through file modes)
    if shutil.which('unshare') and os.geteuid() == 0:
        wrap = ['unshare', '-m', 'sh', '-c',
                'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"',
                st.cert_dir]
        rc, out, err = L._run(wrap + ['touch', os.path.join(st.cert_dir, 'probe')])
        if rc == 0 or 'Read-only' not in err:
            t.skip('cert-dir read-only', 'no read-only bind mount here (%s)' % err.strip()[:100])
        else:
            case(lab, pb, 'cert-dir read-only', good,
                 r'cert-dir %s: cannot create a file in %s: Read-only file system: hacme '
                 r'writes <name>\.pem there' % (re.escape(st.cert_dir), re.escape(st.cert_dir)),
                 wrap=wrap)
    else:
        t.skip('cert-dir read-only', 'needs root and unshare')

    # 6. the SPOE side, read from HAProxy's own files (local agent mode:
    # hacme-spoa on spoa-listen, a port nothing else uses)
    lport = lab.port()
    local = text.replace('spoa-listen 127.0.0.1:%d' % st.agent_port, 'spoa-listen 127.0.0.1:%d' % lport)
    local = '\n'.join(l for l in local.splitlines() if not l.strip().startswith('agent ')) + '\n'
    _, ssock = mini_haproxy(lab, 'spoe-ok', crt_list=st.crt_list, spoe=shipped_spoe, agent_port=lport)
    cfg = lab.write('spoe-ok.cfg', local.replace(sock_line, 'runtime-api unix@%s' % ssock))
    rc, out, err = lab.hacme('check', config=cfg)
    t.eq(rc, 0, 'SPOE as shipped: check passes (%s)' % err.strip()[:300])
    t.like(out, r'spoe-acme\.conf:\d+: spoe-agent acme-agent: option set-on-error',
           'SPOE as shipped: set-on-error seen in the file HAProxy loaded')
    t.like(out, r'backend be_acme_agent of spoe-agent acme-agent reaches spoa-listen 127\.0\.0\.1:%d' % lport,
           'SPOE as shipped: HAProxy (show servers state) sends to spoa-listen')

    no_soe = lab.write('spoe-no-set-on-error.conf', ''.join(
        l for l in open(shipped_spoe).readlines() if 'set-on-error' not in l))
    _, ssock = mini_haproxy(lab, 'spoe-nosoe', crt_list=st.crt_list, spoe=no_soe, agent_port=lport)
    cfg = lab.write('spoe-nosoe.cfg', local.replace(sock_line, 'runtime-api unix@%s' % ssock))
    case(lab, pb, 'set-on-error missing', cfg,
         r'%s:\d+: spoe-agent acme-agent has no `option set-on-error`: add `option set-on-error err`'
         % re.escape(no_soe))

    _, ssock = mini_haproxy(lab, 'spoe-elsewhere', crt_list=st.crt_list, spoe=shipped_spoe,
                            agent_port=lab.port())
    cfg = lab.write('spoe-elsewhere.cfg', local.replace(sock_line, 'runtime-api unix@%s' % ssock))
    case(lab, pb, 'agent backend elsewhere', cfg,
         r'spoe-acme\.conf:\d+: spoe-agent acme-agent sends challenges to backend be_acme_agent, '
         r'whose servers are 127\.0\.0\.1:\d+ \(HAProxy unix@\S+\), not hacme-spoa\'s spoa-listen '
         r'127\.0\.0\.1:%d: point its server there' % lport)

    # an external agent that does not answer: a setup error too (exit 1),
    # found before the CA is asked
    gone = lab.path('no-such-agent.sock')
    cfg = lab.write('agent-gone.cfg', '\n'.join(
        '    agent unix@%s' % gone if l.strip().startswith('agent ') else l
        for l in text.splitlines()) + '\n')
    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('issue', 'a.example', config=cfg)
    t.eq(rc, 1, 'agent not answering: hacme issue exits 1, a setup error (%s)' % err.strip()[-200:])
    t.like(err, r'%s.*check that hacme-spoa runs there' % re.escape(gone),
           'agent not answering: the error names the agent and the fix')
    t.eq(pb.orders_created(mark), 0, 'agent not answering: pebble logged zero orders')

    # hacme run: HAProxy's socket wrong -> failures with backoff, no order
    cfg = lab.write('run-wrong.cfg', text.replace(sock_line, 'runtime-api unix@%s' %
                                                  lab.path('no-such-haproxy.sock')))
    mark = pb.proc.log_mark()
    p = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                  ready=r'hacme run: \d+ certificates')
    got = p.wait_log(r'a\.example: order failed.*next attempt .*not ordered: '
                     r'HAProxy unix@\S+: connect: No such file', timeout=60)
    t.ok(got, 'hacme run: the order fails before the CA is asked, with a next attempt')
    t.eq(pb.orders_created(mark), 0, 'hacme run: pebble logged zero orders')
    t.ok(p.alive(), 'hacme run keeps running')
    p.stop()

    # the good config still orders (the checks do not block a correct setup)
    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('issue', 'a.example', config=good, timeout=180)
    t.eq(rc, 0, 'good config: hacme issue orders and deploys (%s)' % err.strip()[-300:])
    t.eq(pb.orders_created(mark), 1, 'good config: one order at pebble')


with L.Lab('checks') as lab:
    main(lab)
t.done()
