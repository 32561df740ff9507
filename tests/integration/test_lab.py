#!/usr/bin/env python3
"""Smoke test of the test lab itself: pebble (+ challtestsrv) over HTTPS with
the lab's CA, a haproxy with a stats socket, redis, and the cleanup: every
process the lab started is gone afterwards, and nothing else was touched."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lab'))
import lab as L  # noqa: E402

HAPROXY_CFG = """
global
    stats socket "${STATS_SOCK}" level admin
    log stderr format raw local0 info

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:"${FE_PORT}"
    http-request return status 200 content-type text/plain string "lab ok\\n" if { path /hello }
    http-request return status 404 content-type text/plain string "no\\n"
"""


def alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(')') + 2:].split()[0] != 'Z'


TLS_CFG = """
global
    stats socket "${STATS_SOCK}" level admin

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend fe_tls
    bind 127.0.0.1:"${TLS_PORT}" ssl crt-list "${CRT_LIST}"
    http-request return status 200 content-type text/plain string "tls ok\\n"
"""


def real_certs(t, lab, pb):
    """certbot gets an ECDSA and an RSA certificate for one name from
    pebble (http-01 through the lab's DNS and pebble.http_port); haproxy
    serves both; tls_probe picks each by signature algorithms; then one is
    revoked and pebble's management API reports it."""
    mark = pb.proc.log_mark()
    name = 'dual.example'
    ec = lab.certbot(pb, [name], key_type='ecdsa')
    rsa = lab.certbot(pb, [name], key_type='rsa')
    # certbot run again after its certbot#9539 crash may have ordered twice
    tries = ec['attempts'] + rsa['attempts']
    n = pb.orders_created(since=mark)
    if tries == 2:
        t.eq(n, 2, 'pebble logged 2 new orders (orders_created)')
    else:
        t.ok(2 <= n <= tries, 'pebble logged %d new orders for 2 certificates in %d certbot runs '
             '(orders_created; certbot#9539 retries)' % (n, tries))
    t.eq(len(pb.issued_serials(since=mark)), 2, 'pebble logged 2 issued serials')
    t.ok(pb.validations(since=mark) >= 1, 'pebble validated http-01 on pebble.http_port')
    files = []
    for label, got in (('ecdsa', ec), ('rsa', rsa)):
        text = open(got['privkey']).read() + open(got['fullchain']).read()
        files.append(lab.write('%s.%s.pem' % (name, label), text, 0o600))
    crt_list = lab.write('certs.list', '\n'.join(files) + '\n')
    root = lab.write('pebble-root.pem', pb.roots(0))
    port = lab.port()
    hp = lab.haproxy(lab.write('tls.cfg', TLS_CFG), env={'TLS_PORT': port, 'CRT_LIST': crt_list})
    want = {k: L.cert_info(open(g['cert']).read()) for k, g in (('ecdsa', ec), ('rsa', rsa))}
    for kind, key in (('ecdsa', 'ecdsa-p256'), ('rsa', 'rsa2048')):
        got = L.tls_probe(port, name, ca=root, only=kind)
        t.eq((got['serial'], got['key_type']), (want[kind]['serial'], key),
             'tls_probe only=%s gets the %s certificate by serial' % (kind, key))
        t.ok(got['verified'] and name in got['sans'],
             'it verifies against pebble roots/0 for %s (%s)' % (name, got['verify']))
    t.ok(want['ecdsa']['not_after_ts'] > time.time() + 86400, 'notAfter parsed into a timestamp')
    st = pb.cert_status(want['rsa']['serial'])
    t.eq(st and st.get('Status'), 'Valid', 'cert_status of an issued certificate: Valid')
    lab.certbot_revoke(rsa, reason='keycompromise')
    st = pb.cert_status(want['rsa']['serial'])
    t.eq(st and st.get('Status'), 'Revoked', 'cert_status after revoke: Revoked')
    t.diag('cert-status after revoke: %s' % {k: v for k, v in (st or {}).items() if k != 'Certificate'})
    hp.stop()


def main():
    t = L.TAP()
    # a bystander process the lab did not start: it must survive the lab
    bystander = subprocess.Popen(['sleep', '300'], start_new_session=True)
    pids = []
    lab_dir = None
    try:
        with L.Lab('smoke') as lab:
            lab_dir = lab.dir
            t.ok(os.path.isdir(lab.dir), 'lab dir exists')
            ports = {lab.port() for _ in range(50)}
            t.eq(len(ports), 50, 'port() hands out 50 distinct ports')

            # ---- pebble + challtestsrv
            pb = lab.pebble()
            pids += [pb.proc.pid, pb.challtestsrv.pid]
            d = pb.directory_json()
            t.ok('newNonce' in d and d['newNonce'].startswith('https://127.0.0.1:'),
                 'pebble directory over HTTPS with the lab CA has newNonce')
            t.ok('newOrder' in d and 'newAccount' in d, 'directory has newOrder and newAccount')
            st, h, _ = L.http_request('HEAD', d['newNonce'], ca=pb.ca_bundle)
            t.ok(st in (200, 204) and h.get('replay-nonce'),
                 'HEAD newNonce gives a Replay-Nonce (HTTP %d)' % st)
            root = pb.roots(0)
            t.ok(root.startswith('-----BEGIN CERTIFICATE-----'), 'roots/0 is a PEM certificate')
            ri = L.cert_info(root)
            t.like(ri['subject'], r'Pebble Root CA', 'roots/0 subject is a Pebble Root CA')
            inter = L.cert_info(pb.intermediates(0))
            t.eq(inter['issuer'], ri['subject'], 'intermediates/0 is issued by roots/0')
            t.eq(pb.cert_status('7e57ab1e'), None, 'cert_status of an unknown serial is None')
            t.ok(all(a.startswith('127.0.0.1:') for a in
                     (pb.config['listenAddress'], pb.config['managementListenAddress'])),
                 'pebble listens on loopback only')
            listening = L.listening_addresses([pb.proc.pid, pb.challtestsrv.pid])
            t.ok(listening and all(a.split()[-1].startswith('127.0.0.1:') for a in listening),
                 'pebble and challtestsrv sockets are all on 127.0.0.1: %s' % ' '.join(sorted(listening)))
            t.eq(pb.orders_created(), 0, 'no orders counted yet')

            # ---- haproxy
            cfg = lab.write('haproxy.cfg', HAPROXY_CFG)
            fe = lab.port()
            hp = lab.haproxy(cfg, env={'FE_PORT': fe})
            pids.append(hp.pid)
            info = hp.info()
            t.eq(info.get('Name'), 'HAProxy', 'show info over the stats socket answers')
            t.eq(int(info.get('Pid', 0)), hp.pid, 'show info Pid is the process we started (-db)')
            st, h, body = L.http_get(fe, '/hello', host='example.com')
            t.eq((st, body), (200, b'lab ok\n'), 'HTTP through the haproxy frontend')
            st, h, body = L.http_get(fe, '/other')
            t.eq(st, 404, 'haproxy answers 404 on another path')
            stat = hp.cmd('show stat')
            t.like(stat, r'(?m)^fe,FRONTEND,', 'show stat lists the frontend (one command per connection)')
            t.like(hp.cmd('show info'), r'(?m)^Uptime_sec: \d+', 'a second command on a new connection')
            bad = lab.write('bad.cfg', 'frontend x\n    bind 127.0.0.1:1\n    nonsense here\n')
            try:
                lab.haproxy(bad)
                t.ok(False, 'a bad haproxy config is refused by haproxy -c')
            except L.LabError as e:
                t.like(str(e), r'nonsense', 'a bad haproxy config raises with haproxy -c output')

            # master-worker mode
            hm = lab.haproxy(cfg, env={'FE_PORT': lab.port()}, master_socket=True)
            pids.append(hm.pid)
            procs = hm.master('show proc')
            t.like(procs, r'(?m)^\d+\s+master', 'master CLI show proc lists the master')
            wpid = hm.worker_pid()
            t.ok(wpid != hm.pid and alive(wpid), 'master-worker: worker %d alive' % wpid)
            pids.append(wpid)

            # ---- real pebble certificates (certbot), served by SNI, dual ECDSA/RSA
            if shutil.which('certbot'):
                real_certs(t, lab, pb)
            else:
                t.skip('real certificates from pebble', 'certbot not installed')

            # ---- redis
            r = lab.redis()
            pids.append(r.pid)
            t.eq(r.cmd('PING'), 'PONG', 'redis PING')
            r.cmd('SET', 'k', 'v')
            t.eq(r.cmd('GET', 'k'), 'v', 'redis SET/GET')

            # ---- readiness failures carry the log tail
            try:
                lab.spawn('dies', ['sh', '-c', 'echo about to fail; exit 3'], ready=r'never')
                t.ok(False, 'a dying process makes spawn raise')
            except L.LabError as e:
                t.like(str(e), r'about to fail', 'spawn of a dying process raises with its log tail')
            p = lab.spawn('slow', ['sleep', '60'])
            pids.append(p.pid)
            try:
                p.wait_log(r'never', timeout=0.3)
                t.ok(False, 'wait_log times out')
            except L.LabError as e:
                t.like(str(e), r'timeout', 'wait_log raises on timeout')
            # a process that ignores SIGTERM and leaves a child behind
            stubborn = lab.spawn('stubborn', ['sh', '-c',
                                              'trap "" TERM; sleep 300 & echo child $!; wait'],
                                 ready=r'child \d+')
            child = int(stubborn.wait_log(r'child (\d+)').group(1))
            rc = stubborn.stop(timeout=1)
            t.ok(rc == -signal.SIGKILL and not alive(child),
                 'stop() kills a group that ignores SIGTERM, child included (rc %s)' % rc)

            # ---- agent, when built
            if os.path.exists(L.exe('spoa/hacme-spoa')):
                a = lab.agent()
                pids.append(a.pid)
                t.eq(a.ctl('PING'), ['PONG'], 'agent control PING')
            else:
                t.skip('agent control PING', 'hacme-spoa not built')

            t.ok(all(alive(p) for p in pids), 'all %d started processes alive inside the lab'
                 % len(pids))
            pids += [stubborn.pid, child]
    finally:
        still = [p for p in pids if alive(p)]
        t.eq(still, [], 'every process the lab started is gone after the lab exits')
        t.ok(alive(bystander.pid), 'a process the lab did not start is untouched')
        bystander.kill()
        bystander.wait()
        if not L.KEEP:
            t.ok(lab_dir and not os.path.exists(lab_dir), 'lab dir removed')
    return t.done()


if __name__ == '__main__':
    sys.exit(main())
