#!/usr/bin/env python3
"""hacme-spoa behind the REAL haproxy, through the shipped haproxy-conf/
(haproxy.cfg here; test_agent_lua.py runs the same cases through
haproxy-lua.cfg): published, unknown, expired, deleted, wrong-host and
malformed tokens; 1000 concurrent challenges; the agent stopped (503 within
the processing timeout), restarted (HAProxy reconnects by itself); the health
check; the redirect; the control socket's mode and the refusal of a remote
tcp control socket; raw SPOP (IPv6 src, AGENT-DISCONNECT on SIGTERM, garbage);
RSS with 10,000 pending tokens. Everything on loopback, random ports."""

import base64
import concurrent.futures
import os
import signal
import socket
import stat
import subprocess
import sys
import time

from lab import Lab, TAP, LabError, exe, http_get, mem_kb, wait_until, SRC

PREFIX = '/.well-known/acme-challenge/'
PROCESSING_TIMEOUT = 0.5        # spoe-acme.conf: timeout processing 500ms
RSS_LIMIT_KB = 8 * 1024


def b64(n):
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b'=').decode()


def new_token():
    """A realistic token and key authorization (43 + 1 + 43 characters)."""
    tok = b64(32)
    return tok, '%s.%s' % (tok, b64(32))


# ---------------------------------------------------------------- SPOP bytes

def varint(v):
    if v < 240:
        return bytes([v])
    out = bytearray([(v & 0xff) | 0xf0])
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v & 0xff) | 0x80)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def sstr(s):
    s = s.encode() if isinstance(s, str) else s
    return varint(len(s)) + s


def typed_str(s):
    return b'\x08' + sstr(s)


def frame(ftype, sid, fid, payload):
    body = bytes([ftype]) + b'\x00\x00\x00\x01' + varint(sid) + varint(fid) + payload
    return len(body).to_bytes(4, 'big') + body


def haproxy_hello():
    return frame(1, 0, 0, sstr('supported-versions') + typed_str('2.0') +
                 sstr('max-frame-size') + b'\x03' + varint(16380) +
                 sstr('capabilities') + typed_str('pipelining') +
                 sstr('engine-id') + typed_str('4f6e7b1c-2f4e-4c83-9b1e-5a2c3d4e5f60'))


def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise LabError('SPOP: connection closed after %d of %d bytes' % (len(buf), n))
        buf += b
    return buf


def recv_frame(s):
    n = int.from_bytes(recv_exact(s, 4), 'big')
    return recv_exact(s, n)


# ---------------------------------------------------------------- helpers

def notify(sid, fid, path, host=None, count=1):
    """A NOTIFY with count acme-challenge messages."""
    msg = sstr('acme-challenge') + (b'\x02' if host else b'\x01') + sstr('path') + typed_str(path)
    if host:
        msg += sstr('host') + typed_str(host)
    return frame(3, sid, fid, msg * count)


def ctl_ping(agent, timeout=5):
    try:
        return agent.ctl('PING', timeout=timeout) == ['PONG']
    except (OSError, LabError):
        return False


def server_status(hap, backend='be_acme_agent', server='agent1'):
    """The server's status column of `show stat` (UP, DOWN, ...)."""
    lines = hap.cmd('show stat').splitlines()
    if not lines or not lines[0].startswith('# '):
        return None
    cols = lines[0][2:].split(',')
    i_px, i_sv, i_st = cols.index('pxname'), cols.index('svname'), cols.index('status')
    for l in lines[1:]:
        f = l.split(',')
        if len(f) > i_st and f[i_px] == backend and f[i_sv] == server:
            return f[i_st]
    return None


def get(port, token_or_path, host='www.example.com', timeout=5):
    path = token_or_path if token_or_path.startswith('/') else PREFIX + token_or_path
    return http_get(port, path, host=host, timeout=timeout)


def raw_get(port, path, host, timeout=10):
    """One HTTP/1.1 request on a raw socket (Connection: close); returns
    (status, body bytes)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        s.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n'
                   % (path, host)).encode())
        data = b''
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return int(head.split(b' ', 2)[1]), body


def sanitized_build():
    """True when the build dir was set up with -Dsanitize=true or
    -Db_sanitize=... (ASan makes RSS figures meaningless)."""
    from lab import BUILD
    import json
    try:
        with open(os.path.join(BUILD, 'meson-info', 'intro-buildoptions.json')) as f:
            return any((o.get('name') == 'sanitize' and o.get('value') is True) or
                       (o.get('name') == 'b_sanitize' and o.get('value') not in ('none', None))
                       for o in json.load(f))
    except (OSError, ValueError):
        return False


def check_configs(t, lab, certs_list):
    """haproxy -c on every shipped config (and make-fallback-cert.sh)."""
    conf = os.path.join(SRC, 'haproxy-conf')
    env = dict(os.environ, HACME_CRT_LIST=certs_list,
               HACME_SPOE_CONF=os.path.join(conf, 'spoe-acme.conf'),
               HACME_LUA=os.path.join(conf, 'acme.lua'),
               HACME_STATS_SOCKET=lab.path('check.sock'))
    for cfg in ('haproxy.cfg', 'haproxy-lua.cfg'):
        p = subprocess.run(['haproxy', '-c', '-f', os.path.join(conf, cfg)],
                           env=env, capture_output=True, text=True, timeout=30)
        if not t.ok(p.returncode == 0, 'haproxy -c accepts the shipped %s' % cfg):
            t.diag(p.stdout + p.stderr)


def make_cert(t, lab):
    script = os.path.join(SRC, 'haproxy-conf', 'make-fallback-cert.sh')
    d = lab.path('certs')
    p = subprocess.run([script, d], capture_output=True, text=True, timeout=60)
    t.eq(p.returncode, 0, 'make-fallback-cert.sh runs')
    pem, lst = os.path.join(d, 'fallback.pem'), os.path.join(d, 'certs.list')
    t.eq(stat.S_IMODE(os.stat(pem).st_mode), 0o600, 'fallback.pem is 0600')
    with open(lst) as f:
        t.eq(f.read(), pem + '\n', 'the crt-list is one line naming fallback.pem')
    with open(pem) as f:
        text = f.read()
    t.ok('PRIVATE KEY' in text and 'BEGIN CERTIFICATE' in text,
         'fallback.pem holds a key and a certificate')
    with open(lst, 'a') as f:
        f.write('# hacme appends here\n')
    p = subprocess.run([script, d], capture_output=True, text=True, timeout=60)
    with open(lst) as f:
        t.ok(p.returncode == 0 and f.read().endswith('# hacme appends here\n'),
             'running it again keeps the existing crt-list')
    return lst


# ---------------------------------------------------------------- the cases

def run(cfg_name):
    t = TAP()
    with Lab('agent-' + cfg_name.split('.')[0]) as lab:
        certs_list = make_cert(t, lab)
        check_configs(t, lab, certs_list)

        # --- the control socket: mode, tcp refusal --------------------
        agent = lab.agent(log_level='info')
        t.eq(stat.S_IMODE(os.stat(agent.control_path).st_mode), 0o600,
             'the unix control socket is mode 0600')
        rport = lab.port()
        p = subprocess.run([exe('spoa/hacme-spoa'), '--listen', '127.0.0.1:%d' % lab.port(),
                            '--control', '0.0.0.0:%d' % rport],
                           capture_output=True, text=True, timeout=10)
        t.ok(p.returncode == 1 and '--control-allow-remote' in p.stderr,
             'a tcp --control on 0.0.0.0 is refused without --control-allow-remote (rc %s)'
             % p.returncode)
        t.ok(not any(l.split()[1].endswith(':%04X' % rport)
                     for l in open('/proc/net/tcp').read().splitlines()[1:]),
             'nothing listens on the refused control port')
        tcp_ctl = lab.agent(control=lab.port())
        t.eq(tcp_ctl.ctl('PING'), ['PONG'], 'a tcp --control on 127.0.0.1 is accepted')
        tcp_ctl.stop()

        # a scripted client (`... | socat`) sends everything, then half-closes
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(agent.control_path)
        c.sendall(b'STATS\n' * 1000 + b'PING\n')
        c.shutdown(socket.SHUT_WR)
        data = b''
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.close()
        t.ok(data.count(b'\nEND\n') == 1000 and data.endswith(b'END\nPONG\n'),
             'half-closed control client: all 1001 requests answered (%d bytes), then closed'
             % len(data))

        # out of fds: accept pauses, logs, and serves again once fds free up
        lim_port, lim_ctl = lab.port(), lab.path('lim.ctl')
        lim = lab.spawn('agent-fdlimit', ['prlimit', '--nofile=16', exe('spoa/hacme-spoa'),
                                          '--listen', '127.0.0.1:%d' % lim_port,
                                          '--control', 'unix@' + lim_ctl],
                        ready=r'ready: SPOP')
        socks = []
        for _ in range(24):
            c = socket.create_connection(('127.0.0.1', lim_port), timeout=5)
            c.sendall(haproxy_hello())
            socks.append(c)
        lim.wait_log(r'accept: Too many open files; pausing')
        t.ok(lim.alive(), 'out of file descriptors: the agent logs it and keeps running')
        answered = 0
        for c in socks[:5]:
            try:
                answered += recv_frame(c)[0] == 101
            except (OSError, LabError):
                pass
        t.eq(answered, 5, 'connections accepted before the limit are served')
        for c in socks:
            c.close()
        c = socket.create_connection(('127.0.0.1', lim_port), timeout=5)
        c.sendall(haproxy_hello())
        t.eq(recv_frame(c)[0], 101, 'once fds are free again a new connection is served')
        c.close()
        lim.stop()

        # --- haproxy through the shipped config ------------------------
        hap = lab.shipped_haproxy(agent.listen_port, certs_list, cfg=cfg_name,
                                  env={'HACME_LUA': os.path.join(SRC, 'haproxy-conf', 'acme.lua')})
        http_port = hap.http_port
        wait_until(lambda: server_status(hap) == 'UP', 10, 'agent UP in show stat', hap)
        t.eq(server_status(hap), 'UP', 'the spop-check health check reports the agent UP')

        s0 = agent.stats()
        tok, ka = new_token()
        t.eq(agent.ctl('ADD %s %s 300' % (tok, ka)), ['OK'], 'ADD a token')
        st, h, body = get(http_port, tok)
        t.eq((st, body.decode()), (200, ka), 'published token: 200 with the exact key authorization')
        t.like(h.get('content-type'), r'^text/plain', 'served as text/plain')
        st, _, body = get(http_port, tok, host='anything.example:8080')
        t.eq(st, 200, 'a token without host is served for any Host')

        st, _, _ = get(http_port, new_token()[0])
        t.eq(st, 404, 'unknown token: 404')
        for bad in ('tok=bad', 'a.b', '', tok + '/x', tok + '%2F', 'A' * 129, '..%2F..%2Fetc'):
            st, _, _ = get(http_port, bad)
            t.eq(st, 404, 'malformed token %r: 404' % bad[:20])
        st, _, _ = get(http_port, '/.well-known/acme-challenge')
        t.eq(st, 301, 'the challenge directory without a slash is not a challenge (redirect)')

        # host-bound tokens: (published host, request Host, status)
        for pub, req, want in (('WWW.Example.com', 'www.example.COM:80', 200),
                               ('WWW.Example.com', 'example.com', 404),
                               ('::1', '[::1]:80', 200),
                               ('::1', '[::2]', 404)):
            htok, hka = new_token()
            agent.ctl('ADD %s %s 300 %s' % (htok, hka, pub))
            st, _, body = get(http_port, htok, host=req)
            t.eq((st, body.decode() if st == 200 else None),
                 (want, hka if want == 200 else None),
                 'token for host %s, Host %s: %d' % (pub, req, want))

        # deleted
        dtok, dka = new_token()
        agent.ctl('ADD %s %s 300' % (dtok, dka))
        t.eq(get(http_port, dtok)[0], 200, 'token to delete: 200 first')
        t.eq(agent.ctl('DEL %s' % dtok), ['OK'], 'DEL')
        t.eq(get(http_port, dtok)[0], 404, 'deleted token: 404')

        # expired: ttl 1, wait until LIST no longer shows it
        etok, eka = new_token()
        agent.ctl('ADD %s %s 1' % (etok, eka))
        t.eq(get(http_port, etok)[0], 200, 'ttl-1 token: 200 while pending')
        wait_until(lambda: not any(l.startswith(etok + ' ') for l in agent.ctl('LIST')),
                   5, 'the ttl-1 token to leave LIST')
        t.eq(get(http_port, etok)[0], 404, 'expired token: 404')

        # the rest of :80 is redirected and never reaches the agent
        n = agent.stats()['notifies']
        st, h, _ = get(http_port, '/index.html?x=1')
        t.eq(st, 301, 'non-challenge path: 301')
        t.like(h.get('location'), r'^https://', 'redirected to https')
        t.eq(agent.stats()['notifies'], n, 'a non-challenge request sends no NOTIFY')

        s1 = agent.stats()
        t.ok(s1['hits'] - s0['hits'] >= 6 and s1['misses'] - s0['misses'] >= 5 and
             s1['invalid'] - s0['invalid'] >= 5,
             'STATS counts hits, misses and invalid (%d/%d/%d)'
             % (s1['hits'] - s0['hits'], s1['misses'] - s0['misses'], s1['invalid'] - s0['invalid']))
        t.ok(s1['connections_total'] >= 1 and s1['notifies'] > s0['notifies'],
             'STATS counts connections and notifies')
        t.like(agent.read_log(), r'challenge src=127\.0\.0\.1 host=www\.example\.com token=%s hit'
               % tok[:8], 'each challenge is logged at info with src, host, 8 token characters')
        t.ok(tok not in agent.read_log() and ka not in agent.read_log(),
             'the full token and key authorization are not logged')

        # --- 1000 concurrent challenge requests ------------------------
        toks = [new_token() for _ in range(50)]
        replies = agent.ctl_many(['ADD %s %s 300' % tk for tk in toks])
        t.ok(all(r == ['OK'] for r in replies), '50 tokens added on one connection')
        misses = [new_token()[0] for _ in range(10)]
        jobs = [(toks[i % 50] if i % 5 else (misses[i % 10], None)) for i in range(1000)]

        def one(job):
            tk, want = job
            try:
                st, body = raw_get(http_port, PREFIX + tk, 'www.example.com')
            except OSError as e:
                return 'error %s' % e
            if want is None:
                return None if st == 404 else 'miss got %d' % st
            return None if (st, body.decode()) == (200, want) else 'hit got %d %r' % (st, body[:60])
        sb = agent.stats()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as ex:
            results = list(ex.map(one, jobs))
        dt = time.monotonic() - t0
        sa = agent.stats()
        bad = [r for r in results if r is not None]
        if not t.ok(not bad, '1000 concurrent challenge requests (100 at a time) all correct'):
            t.diag('%d wrong, first: %s' % (len(bad), bad[:5]))
        t.diag('1000 challenge requests through haproxy in %.2fs (%.0f/s)' % (dt, 1000 / dt))
        t.eq(server_status(hap), 'UP', 'the agent is still UP after the burst')
        # HAProxy 2.6 keeps its SPOE applets' connections, 3.1+ reuses
        # connections from its pool, at most maxconn 64 either way: with
        # pipelining many NOTIFYs share each connection (health checks add
        # one connection each)
        nn = sa['notifies'] - sb['notifies']
        nc = sa['connections_total'] - sb['connections_total']
        t.ok(nn >= 1000 and nn >= 5 * nc,
             'the burst used few connections: %d NOTIFYs over %d new connections' % (nn, nc))

        # --- raw SPOP: src as IPv6, garbage --------------------------
        s = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=5)
        s.sendall(haproxy_hello())
        hello = recv_frame(s)
        t.eq(hello[0], 101, 'raw SPOP: AGENT-HELLO')
        notify = frame(3, 5, 1, sstr('acme-challenge') + b'\x03' +
                       sstr('path') + typed_str(PREFIX + tok) +
                       sstr('host') + typed_str('www.example.com') +
                       sstr('src') + b'\x07' + socket.inet_pton(socket.AF_INET6, '2001:db8::7'))
        s.sendall(notify)
        ack = recv_frame(s)
        want = (bytes([103]) + b'\x00\x00\x00\x01' + b'\x05\x01' + b'\x01\x03\x02' +
                sstr('keyauth') + typed_str(ka))
        t.eq(ack, want, 'raw SPOP: NOTIFY with an IPv6 src -> ACK set-var txn keyauth')
        agent.wait_log(r'challenge src=2001:db8::7 host=www\.example\.com token=%s hit' % tok[:8])
        t.ok(True, 'the IPv6 src is logged')
        s.close()
        pe = agent.stats()['protocol_errors']
        g = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=5)
        g.sendall(b'\x00\x00\x00\x05\x63garbage-not-spop')
        try:
            r = g.recv(4096)
        except OSError:
            r = b''
        g.close()
        t.ok(r[4:5] == bytes([102]), 'garbage on the SPOP port: AGENT-DISCONNECT')
        t.eq(agent.ctl('PING'), ['PONG'], 'the agent still serves after garbage')
        t.eq(agent.stats()['protocol_errors'], pe + 1, 'STATS counts the protocol error')

        # --- memory: 10,000 pending tokens ------------------------------
        many = [new_token() for _ in range(10000)]
        host = 'host-%d.example.com'
        replies = agent.ctl_many(['ADD %s %s 600 %s' % (tk, k, host % i)
                                  for i, (tk, k) in enumerate(many)], timeout=30)
        t.ok(all(r == ['OK'] for r in replies), '10,000 ADDs pipelined on one connection')
        st, _, body = get(http_port, many[1234][0], host=host % 1234)
        t.eq((st, body.decode()), (200, many[1234][1]), 'one of the 10,000 is served')
        lst = agent.ctl('LIST', timeout=30)
        t.ok(len(lst) >= 10001 and lst[-1] == 'END', 'LIST returns every token (%d lines)' % len(lst))
        kb = mem_kb(agent.pid).get('VmRSS')
        if sanitized_build():
            t.skip('agent RSS with 10,000 pending tokens', 'ASan build (%s KiB)' % kb)
        else:
            t.ok(kb is not None and kb < RSS_LIMIT_KB,
                 'agent RSS with 10,000 pending tokens after LIST: %s KiB < %d KiB'
                 % (kb, RSS_LIMIT_KB))
        t.diag('agent RSS with 10,000 tokens: %s KiB' % kb)

        # --- agent stopped: AGENT-DISCONNECT, 503 fast -----------------
        s = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=5)
        s.sendall(haproxy_hello())
        recv_frame(s)
        os.kill(agent.pid, signal.SIGTERM)
        try:
            bye = recv_frame(s)
        except (OSError, LabError) as e:
            bye = b''
            t.diag('no frame after SIGTERM: %s' % e)
        s.close()
        t.ok(bye[:1] == bytes([102]) and sstr('status-code') + b'\x03\x00' in bye,
             'SIGTERM: AGENT-DISCONNECT with status 0 on an open SPOP connection')
        t.eq(agent.wait(10), 0, 'SIGTERM: the agent exits 0')
        t.ok(not os.path.exists(agent.control_path), 'the control socket file is removed at exit')
        times = []
        sts = []
        for i in range(5):
            t0 = time.monotonic()
            st, _, _ = get(http_port, tok)
            times.append(time.monotonic() - t0)
            sts.append(st)
        t.eq(sts, [503] * 5, 'agent stopped: 503 on the challenge path')
        t.ok(max(times) < PROCESSING_TIMEOUT + 0.3,
             'each 503 within the processing timeout (max %.0f ms, bound %.0f ms)'
             % (max(times) * 1000, (PROCESSING_TIMEOUT + 0.3) * 1000))
        t.diag('503 latency with the agent stopped: %s ms'
               % ' '.join('%.0f' % (x * 1000) for x in times))
        wait_until(lambda: server_status(hap) not in ('UP', None) and
                   server_status(hap).startswith('DOWN'), 10, 'agent DOWN', hap)
        t.ok(server_status(hap).startswith('DOWN'), 'the health check marks the stopped agent DOWN')
        t0 = time.monotonic()
        st, _, _ = get(http_port, tok)
        dt = time.monotonic() - t0
        t.ok(st == 503 and dt < PROCESSING_TIMEOUT + 0.3,
             'agent DOWN: 503 in %.0f ms' % (dt * 1000))
        t.eq(get(http_port, '/other')[0], 301, 'other traffic is untouched while the agent is down')

        # --- restart: HAProxy reconnects by itself ---------------------
        agent2 = lab.agent(listen_port=agent.listen_port, control='unix@' + agent.control_path,
                           log_level='info')
        agent2.ctl('ADD %s %s 300' % (tok, ka))
        wait_until(lambda: get(http_port, tok)[0] == 200, 10, 'a 200 after the agent restart')
        st, _, body = get(http_port, tok)
        t.eq((st, body.decode()), (200, ka), 'agent restarted: HAProxy reconnects and the token is served')
        wait_until(lambda: server_status(hap) == 'UP', 10, 'agent UP again', hap)
        t.eq(server_status(hap), 'UP', 'the health check reports the restarted agent UP')

        # --- SPOP over a unix socket (haproxy.cfg) ------------------------
        if cfg_name == 'haproxy.cfg':
            spop_path = lab.path('spop.sock')
            uagent = lab.agent(listen_unix=spop_path, log_level='info')
            t.eq(stat.S_ISSOCK(os.stat(spop_path).st_mode), True,
                 '--listen unix@PATH: the agent listens on a unix socket')
            uhap = lab.shipped_haproxy(uagent.listen_addr, certs_list, name='haproxy-unix')
            uport = uhap.http_port
            wait_until(lambda: server_status(uhap) == 'UP', 10, 'unix agent UP in show stat', uhap)
            t.eq(server_status(uhap), 'UP', 'HACME_AGENT_ADDR=unix@PATH: the spop-check reports UP')
            utok, uka = new_token()
            uagent.ctl('ADD %s %s 300' % (utok, uka))
            st, _, body = get(uport, utok)
            t.eq((st, body.decode()), (200, uka), 'over the unix socket: 200 with the key authorization')
            t.eq(get(uport, new_token()[0])[0], 404, 'over the unix socket: unknown token 404')
            t.ok(uagent.stats()['notifies'] >= 2, 'the NOTIFYs came over the unix socket')
            uagent.stop()
            t.eq(get(uport, utok)[0], 503, 'unix socket agent stopped: 503')
    return t.done()


if __name__ == '__main__':
    sys.exit(run('haproxy.cfg'))
