#!/usr/bin/env python3
"""Cluster mode through Redis Sentinel (issue 11): a master and a replica
(both with a password), three sentinels, two nodes (`store sentinel://`,
store-password-file) behind a round-robin HAProxy in front of pebble's
http-01 port. The master is killed while an order waits for the nodes'
acknowledgements: the sentinels promote the replica, the nodes follow it,
and the order finishes through the new master without a second order. A
node with a wrong password says which setting to fix."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402
from test_cluster import (agent_reached, all_served, front, serial_served,  # noqa: E402
                          start_node)

t = L.TAP()
PW = 'cluster-' + os.urandom(6).hex()
NAMES = ['s0.example', 's1.example']


def redis_at(lab, name, port, extra=()):
    d = lab.path('%s-%d' % (name, port))
    os.makedirs(d, exist_ok=True)
    p = lab.spawn(name, ['redis-server', '--port', port, '--bind', '127.0.0.1', '--save', '',
                         '--appendonly', 'no', '--dir', d, '--daemonize', 'no',
                         '--requirepass', PW, '--masterauth', PW] + list(extra), cls=L.Redis)
    p.port = port
    p.wait_ready([L.Ready.listen(port)], 15)
    return p


def sentinel(lab, port, mport):
    conf = lab.write('sentinel-%d.conf' % port, '\n'.join([
        'port %d' % port, 'bind 127.0.0.1', 'daemonize no',
        'dir %s' % lab.path(),
        'sentinel monitor mymaster 127.0.0.1 %d 2' % mport,
        'sentinel auth-pass mymaster %s' % PW,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 10000',
        'sentinel parallel-syncs mymaster 1', '']))
    p = lab.spawn('sentinel', ['redis-sentinel', conf])
    p.wait_ready([L.Ready.listen(port)], 15)
    return p


def master_port(sport):
    s = L.Redis.__new__(L.Redis)
    s.port = sport
    try:
        r = L.Redis.cmd(s, 'SENTINEL', 'get-master-addr-by-name', 'mymaster')
        return int(r[1])
    except Exception:
        return None


def auth_cmd(port, *args):
    s = L.Redis.__new__(L.Redis)
    s.port = port
    import socket
    c = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        def one(a):
            req = b'*%d\r\n' % len(a)
            for x in a:
                x = str(x).encode()
                req += b'$%d\r\n%s\r\n' % (len(x), x)
            c.sendall(req)
            return L._resp_read(f)
        f = c.makefile('rb')
        one(['AUTH', PW])
        return one(list(args))
    finally:
        c.close()


def config(lab, pb, st, i, sports, keyfile, pwfile, names):
    return lab.hacme_config(pb, st, certs=[(n.split('.')[0], ['domains %s' % n]) for n in names],
                            name='snode%d.cfg' % i, glob=[
                                'store sentinel://%s/mymaster' % ','.join(
                                    '127.0.0.1:%d' % p for p in sports),
                                'store-password-file %s' % pwfile,
                                'store-key-file %s' % keyfile, 'node-name n%d' % i])


def main():
    with L.Lab('cluster-sentinel') as lab:
        hp = lab.port()
        pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
        inter = L.cert_info(pb.intermediates(0))['subject']
        mp, rp = lab.port(), lab.port()
        master = redis_at(lab, 'redis-master', mp)
        replica = redis_at(lab, 'redis-replica', rp, ['--replicaof', '127.0.0.1', str(mp)])
        sports = [lab.port() for _ in range(3)]
        for sp in sports:
            sentinel(lab, sp, mp)
        L.wait_until(lambda: auth_cmd(rp, 'INFO', 'replication').find('master_link_status:up') >= 0,
                     30, 'the replica syncs')
        keyfile = lab.write('store.key', os.urandom(32).hex() + '\n', mode=0o600)
        pwfile = lab.write('redis.pass', PW + '\n', mode=0o600)
        nodes = [lab.stack(name='shap-n%d' % i) for i in range(2)]
        for st in nodes:
            L.wait_until(lambda: agent_reached(st), 20, 'HAProxy reaches its agent')
        fr = front(lab, hp, nodes)
        cfgs = [config(lab, pb, st, i, sports, keyfile, pwfile, NAMES[:1])
                for i, st in enumerate(nodes)]
        runs = [start_node(lab, c, i) for i, c in enumerate(cfgs)]
        for r in runs:
            r.wait_log(r'store 127\.0\.0\.1:%d: connected' % mp, timeout=20)
        t.ok(True, 'both nodes found the master through the sentinels and authenticated')
        ok = L.wait_until(lambda: all_served(nodes, NAMES[:1], inter), 60, 's0 served',
                          interval=0.5)
        t.ok(ok, 'sentinel://: s0 issued once and served by both nodes')

        # an order that waits (a node that never acknowledges), then the
        # master dies under it
        auth_cmd(mp, 'SET', 'hacme:node:ghost', '{}', 'PX', 60000)
        auth_cmd(mp, 'SADD', 'hacme:nodes', 'ghost')
        mark = pb.proc.log_mark()
        for i, st in enumerate(nodes):
            config(lab, pb, st, i, sports, keyfile, pwfile, NAMES)
            runs[i].kill(signal.SIGHUP)
        L.wait_until(lambda: any(r.count_log(r's1: order https') for r in runs), 30,
                     's1 ordered')
        L.wait_until(lambda: auth_cmd(rp, 'GET', 'hacme:lock:s1'), 10, 'the lock replicated')
        t_kill = time.time()
        master.stop(signal.SIGKILL)
        newm = L.wait_until(lambda: master_port(sports[0]) == rp, 30,
                            'the sentinels promote the replica')
        t.ok(newm, 'the sentinels promoted the replica (%.1f s)' % (time.time() - t_kill))
        ok = L.wait_until(lambda: all(r.count_log(r'store 127\.0\.0\.1:%d: connected' % rp)
                                      for r in runs), 30, 'the nodes follow the new master')
        t.ok(ok, 'both nodes followed the failover to the new master')
        ok = L.wait_until(lambda: all_served(nodes, NAMES, inter), 60, 's1 served',
                          interval=0.5)
        t.ok(ok, 'the order running when the master died finished (%.1f s after the kill); '
             'both nodes serve s1' % (time.time() - t_kill))
        t.eq(pb.orders_created(mark), 1, 'one order for s1: finished through the new master')
        t.eq(len({serial_served(st, 's1.example') for st in nodes}), 1,
             'both nodes serve the same s1')
        t.ok(auth_cmd(rp, 'HGET', 'hacme:cert:s1', 'serial'),
             'the new master holds s1')

        # a wrong password: a clear error naming the setting, no crash
        badpw = lab.write('bad.pass', 'not-the-password\n', mode=0o600)
        st = nodes[0]
        bad = lab.hacme_config(pb, st, certs=[], name='bad.cfg', glob=[
            'store sentinel://%s/mymaster' % ','.join('127.0.0.1:%d' % p for p in sports),
            'store-password-file %s' % badpw, 'store-key-file %s' % keyfile,
            'node-name bad'], agents=['unix@%s' % lab.path('no-agent.sock')])
        r = lab.spawn('hacme-bad', [L.exe('acme/hacme'), '-c', bad, 'run'])
        m = r.wait_log(r'refused the password.*', timeout=20)
        line = m.group(0)
        t.ok('store-password-file' in line and badpw in line,
             'wrong password: the error names store-password-file and the file: %s' % line[:160])
        t.ok('not-the-password' not in r.read_log() and PW not in r.read_log(),
             'no password in the log')
        t.ok(r.alive(), 'the node with the wrong password keeps running (and retrying)')
    return t.done()


if __name__ == '__main__':
    sys.exit(main())
