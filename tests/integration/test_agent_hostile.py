#!/usr/bin/env python3
"""hacme-spoa stays up under hostile peers (issue 8, section 3), against the
real agent and the REAL haproxy with the shipped haproxy-conf/:

* 1,100 idle SPOP connections under a soft fd limit of 1024: the agent
  raises RLIMIT_NOFILE to the hard limit, keeps at most --max-connections
  (the least recently active one goes), and the control socket and a
  legitimate request through HAProxy still work;
* a peer that never sends HELLO, or trickles it, is closed at the HELLO
  deadline; one that trickles a frame is closed at the idle deadline, which
  only whole frames restart; a peer sending whole frames stays;
* peers pipelining NOTIFYs without reading their ACKs are closed over
  --max-buffer-memory, greediest first, while a client that reads is
  answered and the control socket works; the kernel's send buffer of
  such a peer stays small and what the kernel queues is counted in the budget;
* 300 idle control clients do not lock hacme out (256 at most, the longest
  idle goes; --control-idle-timeout closes idle ones);
* a NOTIFY packing hundreds of messages: a handful of warnings that name the
  cause, then "N similar messages suppressed";
* the shipped SPOE config binds a token to the whole Host header
  (req.fhdr: "Host: b.example, a.example" is not a.example);
* a value echoed in a start-up error is escaped: the error stays one line.
Everything on loopback, random ports."""

import re
import resource
import socket
import subprocess
import sys
import time

from lab import Lab, TAP, Agent, LabError, Ready, exe, mem_kb, wait_until
from test_agent import (PREFIX, ctl_ping, haproxy_hello, make_cert, new_token, notify,
                        recv_frame, server_status, sstr, typed_str, get, raw_get)

IDLE_CONNS = 1100


def start_agent(lab, args=(), prefix=(), name='agent'):
    """hacme-spoa on a free port with a unix control socket; prefix wraps
    the command (prlimit). Returns an Agent."""
    port, ctl = lab.port(), lab.path(lab._unique(name) + '.ctl')
    argv = list(prefix) + [exe('spoa/hacme-spoa'), '--listen', 'ipv4@127.0.0.1:%d' % port,
                           '--control', 'unix@' + ctl] + list(args)
    a = lab.spawn(name, argv, cls=Agent)
    a.listen_port, a.control, a.control_path, a.control_port = port, 'unix@' + ctl, ctl, None
    a.wait_ready([Ready.listen(port), Ready.unix(ctl)], 15)
    return a


def hello_conn(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(('127.0.0.1', port))
    s.sendall(haproxy_hello())
    if recv_frame(s)[0] != 101:
        raise LabError('no AGENT-HELLO')
    return s


def closed_by_peer(s, timeout):
    """Waits up to timeout for the agent to close s; the seconds it took,
    or None when it stayed open."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            b = s.recv(65536)
            if not b:
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0
    return None


def case_fds(t, lab, certs_list):
    """1,100 idle SPOP connections under `ulimit -n 1024`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNS + 200:
        t.skip('1,100 idle connections', 'the test itself has only %d fds' % hard)
        return
    if soft != resource.RLIM_INFINITY and soft < IDLE_CONNS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    agent = start_agent(lab, prefix=['prlimit', '--nofile=1024:4096'], args=['--log-level', 'info'])
    with open('/proc/%d/limits' % agent.pid) as f:
        lim = [l for l in f if l.startswith('Max open files')][0].split()
    t.eq(lim[3:5], ['4096', '4096'], 'the agent raised RLIMIT_NOFILE from 1024 to the hard limit')
    hap = lab.shipped_haproxy(agent.listen_port, certs_list)
    http_port = hap.http_port
    tok, ka = new_token()
    agent.ctl('ADD %s %s 300' % (tok, ka))
    wait_until(lambda: server_status(hap) == 'UP', 15, 'agent UP', hap)
    socks = []
    for i in range(IDLE_CONNS):
        s = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=10)
        if i % 2:
            s.sendall(haproxy_hello())      # half of them done with HELLO, then idle
        socks.append(s)
    wait_until(lambda: agent.stats()['connections_total'] >= IDLE_CONNS, 30,
               'the agent to accept %d connections' % IDLE_CONNS, agent)
    t0 = time.monotonic()
    t.ok(ctl_ping(agent), 'with %d idle SPOP connections the control socket answers PING (%.0f ms)'
         % (IDLE_CONNS, (time.monotonic() - t0) * 1000))
    st = agent.stats()
    t.ok(st['connections_active'] <= 1000 and st['closed_max_connections'] >= IDLE_CONNS - 1000,
         'at most --max-connections (1000 by default) stay open: %d active, %d closed at the cap'
         % (st['connections_active'], st['closed_max_connections']))
    ok = 0
    for _ in range(5):
        try:
            stc, _, body = get(http_port, tok, timeout=10)
            ok += (stc, body.decode()) == (200, ka)
        except OSError:
            pass
    t.eq(ok, 5, 'with %d idle SPOP connections HAProxy still gets the challenge answered (5/5)'
         % IDLE_CONNS)
    t.ok(re.search(r'closing the least recently active one', agent.read_log()) is not None,
         'the agent logs that it closes connections at the cap')
    t.ok(agent.count_log(r'least recently active') <= 11,
         'and says it at most 10 times per 10 s (%d lines)' % agent.count_log(r'least recently active'))
    for s in socks:
        s.close()
    hap.stop()
    agent.stop()


def case_deadlines(t, lab):
    agent = start_agent(lab, args=['--hello-timeout', '1', '--idle-timeout', '2'])
    tok, ka = new_token()
    agent.ctl('ADD %s %s 300' % (tok, ka))
    silent = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=10)
    dt = closed_by_peer(silent, 8)
    t.ok(dt is not None and dt >= 0.8, 'no HELLO: closed at the 1 s HELLO deadline (%s s)'
         % ('%.1f' % dt if dt is not None else 'still open after 8'))
    silent.close()

    # a HELLO trickled one byte every 0.1 s would take ~13 s
    hello = haproxy_hello()
    s = socket.create_connection(('127.0.0.1', agent.listen_port), timeout=10)
    t0, closed = time.monotonic(), None
    for b in hello[:-1]:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = time.monotonic() - t0
            break
        if closed_by_peer(s, 0.1) is not None:
            closed = time.monotonic() - t0
            break
    s.close()
    t.ok(closed is not None and closed < 6, 'a trickled HELLO does not extend the HELLO deadline '
         '(closed after %s s)' % ('%.1f' % closed if closed is not None else 'never'))

    # after HELLO: a NOTIFY trickled one byte every 0.2 s (~25 s for all)
    s = hello_conn(agent.listen_port)
    body = notify(1, 1, PREFIX + tok)
    t0, closed = time.monotonic(), None
    for b in body:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = time.monotonic() - t0
            break
        if closed_by_peer(s, 0.2) is not None:
            closed = time.monotonic() - t0
            break
    s.close()
    t.ok(closed is not None and 1.5 < closed < 8, 'a frame trickled byte by byte is closed at the '
         '2 s idle deadline, not extended by each byte (closed after %s s)'
         % ('%.1f' % closed if closed is not None else 'never'))

    # a peer that sends whole frames more often than the idle deadline stays
    s = hello_conn(agent.listen_port)
    answers, t0 = 0, time.monotonic()
    try:
        for i in range(8):
            s.sendall(notify(1, i + 1, PREFIX + tok))
            answers += sstr('keyauth') + typed_str(ka) in recv_frame(s)
            time.sleep(0.5)
    except (OSError, LabError):
        pass
    s.close()
    t.ok(answers == 8, 'whole frames every 0.5 s for %.1f s (past the 2 s idle deadline): '
         'open and answered (%d/8)' % (time.monotonic() - t0, answers))
    st = agent.stats()
    t.ok(st['closed_hello_timeout'] >= 2 and st['closed_idle_timeout'] >= 1,
         'STATS counts connections closed at the HELLO (%d) and idle (%d) deadlines'
         % (st['closed_hello_timeout'], st['closed_idle_timeout']))
    agent.stop()


def case_budget(t, lab):
    """Peers pipelining NOTIFYs without reading, over a 1 MiB budget."""
    agent = start_agent(lab, args=['--max-buffer-memory', '1'])
    tok, ka = new_token()
    agent.ctl('ADD %s %s 300' % (tok, ka))
    good = hello_conn(agent.listen_port)
    # ~120 messages per NOTIFY: a 16 KiB ACK for each ~11 KiB NOTIFY
    big = notify(1, 1, PREFIX + tok, count=120)
    greedy = []
    for i in range(30):
        s = hello_conn(agent.listen_port, rcvbuf=4096)
        s.setblocking(False)
        greedy.append(s)
    t0, last, peak = time.monotonic(), 0, 0
    while time.monotonic() - t0 < 30:
        progress = False
        for i, s in enumerate(greedy):
            if s is None:
                continue
            try:
                progress = s.send(big) > 0 or progress
            except BlockingIOError:
                pass
            except OSError:
                greedy[i] = None
        if not progress:
            time.sleep(0.05)
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            st = agent.stats()
            peak = max(peak, mem_kb(agent.pid).get('VmRSS', 0))
            if st['closed_buffer_memory'] >= 5:
                break
    closed = sum(1 for s in greedy if s is None)
    st = agent.stats()
    t.ok(st['closed_buffer_memory'] > 0,
         'pipelining without reading over --max-buffer-memory 1: connections closed '
         '(%d by STATS, %d seen by the peers)' % (st['closed_buffer_memory'], closed))
    t.ok(st['buffer_bytes'] <= 1 << 20, 'the agent holds at most the budget in buffers (%d bytes)'
         % st['buffer_bytes'])
    t.ok(agent.read_log().count('over --max-buffer-memory') <= 11,
         'the closes are logged, at most 10 lines per 10 s')
    ok = 0
    for i in range(5):
        try:
            good.sendall(notify(1, i + 1, PREFIX + tok))
            ok += sstr('keyauth') + typed_str(ka) in recv_frame(good)
        except (OSError, LabError):
            break
    t.eq(ok, 5, 'a connection that reads its ACKs (HELLO before the flood) is kept and answered')
    t.ok(ctl_ping(agent), 'the control socket answers during the flood')
    t.diag('agent peak RSS during the pipelining flood: %s KiB' % peak)
    for s in greedy:
        if s is not None:
            s.close()
    good.close()
    agent.stop()


def agent_skmem(port):
    """The agent side of its one SPOP connection on port, by `ss -tm`:
    (recv-q, send-q, rcvbuf, sndbuf) in bytes, or None."""
    out = subprocess.run(['ss', '-tmnH', 'state', 'established', 'sport = :%d' % port],
                         capture_output=True, text=True).stdout
    m = re.search(r'^\s*(\d+)\s+(\d+)\s.*?skmem:\(r\d+,rb(\d+),t\d+,tb(\d+)', out,
                  re.S | re.M)
    return tuple(int(x) for x in m.groups()) if m else None


def case_kernel_buffers(t, lab):
    """A peer pipelining without reading: the kernel's send buffer of its
    connection stays a few frames (autotuned, it grows to 4 MiB) and what
    the kernel queues both ways is counted in the budget (STATS
    buffer_bytes)."""
    agent = start_agent(lab)
    tok, ka = new_token()
    agent.ctl('ADD %s %s 300' % (tok, ka))
    s = hello_conn(agent.listen_port, rcvbuf=4096)
    s.setblocking(False)
    big = notify(1, 1, PREFIX + tok, count=120)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4:
        try:
            s.send(big)
        except BlockingIOError:
            time.sleep(0.01)
    # the agent stopped reading: no event tells it what the kernel queues
    # after that; it reads that again every second
    time.sleep(1.5)
    sk, st = agent_skmem(agent.listen_port), agent.stats()
    t.ok(sk is not None, 'ss -tm shows the agent side of the connection')
    if sk is not None:
        recvq, sendq, rb, tb = sk
        t.diag('kernel: recv-q %d send-q %d rcvbuf %d sndbuf %d; STATS buffer_bytes %d'
               % (recvq, sendq, rb, tb, st['buffer_bytes']))
        t.ok(tb <= 256 << 10,
             'the kernel send buffer of a peer that does not read stays at most 256 KiB '
             '(sndbuf %d; autotuned it grows to 4 MiB)' % tb)
        t.ok(st['buffer_bytes'] >= recvq + sendq,
             'the bytes the kernel queues for it are counted in buffer_bytes (%d >= %d)'
             % (st['buffer_bytes'], recvq + sendq))
    t.ok(ctl_ping(agent), 'the control socket answers')
    s.close()
    agent.stop()


def case_control(t, lab):
    agent = start_agent(lab, args=['--control-idle-timeout', '2'])
    idle = []
    for _ in range(300):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(agent.control_path)
        idle.append(c)
    t0 = time.monotonic()
    t.ok(ctl_ping(agent), 'with 300 idle control clients a new client gets PONG (%.0f ms)'
         % ((time.monotonic() - t0) * 1000))
    dt = closed_by_peer(idle[-1], 10)
    t.ok(dt is not None, 'an idle control client is closed at --control-idle-timeout 2 (%s s)'
         % ('%.1f' % dt if dt is not None else 'still open after 10'))
    # a client trickling a line does not hold its slot either
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(agent.control_path)
    t0, closed = time.monotonic(), None
    for b in b'STATS' * 20:
        try:
            c.sendall(bytes([b]))
        except OSError:
            closed = time.monotonic() - t0
            break
        if closed_by_peer(c, 0.2) is not None:
            closed = time.monotonic() - t0
            break
    t.ok(closed is not None and closed < 8, 'a control client trickling one line is closed at '
         'the idle deadline (%s s)' % ('%.1f' % closed if closed is not None else 'never'))
    c.close()
    # a client that keeps asking stays
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(agent.control_path)
    f = c.makefile('rb')
    pongs = 0
    for _ in range(6):
        c.sendall(b'PING\n')
        pongs += f.readline() == b'PONG\n'
        time.sleep(0.6)
    t.eq(pongs, 6, 'a control client asking every 0.6 s stays past the 2 s idle deadline')
    c.close()
    for s in idle:
        s.close()
    agent.stop()


def case_log_flood(t, lab):
    """NOTIFYs packing hundreds of messages: the ACK cannot hold every
    answer. Returns (agent, mark) for the summary checked later."""
    agent = start_agent(lab)
    # a 2-character token: 53-byte messages, 60-byte answers
    tok, ka = 'tk', 'tk.' + new_token()[0]
    agent.ctl('ADD %s %s 300' % (tok, ka))
    s = hello_conn(agent.listen_port)
    big = notify(1, 1, PREFIX + tok, count=300)
    acks = 0
    for i in range(200):
        s.sendall(big)
        acks += recv_frame(s)[0] == 103
    s.close()
    t.eq(acks, 200, '200 NOTIFYs of 300 messages each: 200 ACKs')
    log = agent.read_log()
    n = len(re.findall(r'challenge not answered', log))
    t.ok(1 <= n <= 10, 'answers that do not fit: %d warning lines, not one per message '
         '(at most 10 per 10 s)' % n)
    t.like(log, r'the ACK of a NOTIFY is full \(\d+ answers of its earlier messages fill the '
           r'16380-byte frame; this was message \d+\): the peer packs many messages into one NOTIFY',
           'the warning names the real cause (a NOTIFY packing many messages), not the frame size flag')
    t.ok(len(log) < 64 * 1024, 'the agent log stays small (%d bytes)' % len(log))
    return agent


def case_log_summary(t, agent):
    m = None
    try:
        m = agent.wait_log(r'(\d+) similar messages suppressed: challenge answers that did not fit',
                           timeout=20)
    except LabError as e:
        t.diag(str(e))
    t.ok(m is not None and int(m.group(1)) > 1000,
         'after the window one line says how many were suppressed (%s)'
         % (m.group(0) if m else 'none'))
    agent.stop()


def case_fhdr(t, lab, certs_list):
    agent = start_agent(lab)
    hap = lab.shipped_haproxy(agent.listen_port, certs_list)
    http_port = hap.http_port
    wait_until(lambda: server_status(hap) == 'UP', 15, 'agent UP', hap)
    tok, ka = new_token()
    agent.ctl('ADD %s %s 300 a.example' % (tok, ka))
    st, body = raw_get(http_port, PREFIX + tok, 'a.example')
    t.eq((st, body.decode()), (200, ka), 'token bound to a.example: Host a.example gets it')
    st, body = raw_get(http_port, PREFIX + tok, 'b.example, a.example')
    # HAProxy 2.6 passes the header on (the agent sees it whole through
    # req.fhdr and misses: 404); 3.x refuses a Host with a comma itself (400)
    ver = hap.info().get('Version', '')
    want = 400 if int(ver.split('.')[0] or 0) >= 3 else 404
    t.eq(st, want, '"Host: b.example, a.example" does not get a.example\'s key authorization '
         '(HAProxy %s: %d)' % (ver, want))
    hap.stop()
    agent.stop()


def case_escape(t, lab):
    for args, want in ((['--max-tokens', '12\nfake: line'], "--max-tokens '12\\x0afake: line'"),
                       (['--listen', 'bad\nhost:1', '--control', 'unix@/x'], "'bad\\x0ahost"),
                       (['--control-idle-timeout', '\x1b[31mred'], "'\\x1b[31mred'")):
        argv = [exe('spoa/hacme-spoa')] + args
        if '--listen' not in args:
            argv += ['--listen', '127.0.0.1:1', '--control', 'unix@/nonexistent/x']
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        lines = p.stderr.rstrip('\n').split('\n')
        t.ok(p.returncode == 1 and len(lines) == 1 and want in lines[0],
             '%s: the value is echoed escaped, on one line: %r' % (args[0], p.stderr[:120]))


def main():
    t = TAP()
    with Lab('agent-hostile') as lab:
        certs_list = make_cert(t, lab)
        case_escape(t, lab)
        flood = case_log_flood(t, lab)     # its summary comes after a 10 s window
        case_deadlines(t, lab)
        case_control(t, lab)
        case_budget(t, lab)
        case_kernel_buffers(t, lab)
        case_log_summary(t, flood)
        case_fhdr(t, lab, certs_list)
        case_fds(t, lab, certs_list)
    return t.done()


if __name__ == '__main__':
    sys.exit(main())
