"""hacme test lab: real haproxy, pebble, pebble-challtestsrv, redis-server and
our own binaries on loopback, for the integration tests and the demo.

Standard library only. Typical use:

    from lab import Lab, TAP
    t = TAP()
    with Lab() as lab:
        pb = lab.pebble()
        ...
        t.ok(cond, 'what was checked')
    sys.exit(t.done())

Every process the lab starts gets its own session (so its own process group);
the lab stops exactly those groups on exit, on an exception, on SIGTERM (what
meson sends on a timeout) and at interpreter exit. Logs live in the lab's temp
dir; their tails are printed as TAP comments when anything failed. The dir is
removed unless HACME_KEEP=1.
"""

import atexit
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get('HACME_SRC') or os.path.join(HERE, '..', '..'))
BUILD = os.path.abspath(os.environ.get('HACME_BUILD') or os.path.join(HERE, '..', '..', 'build'))
KEEP = os.environ.get('HACME_KEEP', '') not in ('', '0')

TAIL_LINES = 30


class LabError(Exception):
    """A lab step failed: the message carries the relevant log tail."""


class Terminated(Exception):
    """SIGTERM arrived (meson's timeout): unwind so the lab cleans up."""


def _diag(text):
    for line in str(text).rstrip('\n').split('\n'):
        print('# ' + line, flush=True)


def tail(path, n=TAIL_LINES):
    """The last n lines of a file, as one string ('' when unreadable)."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(data.rstrip('\n').split('\n')[-n:])


def exe(rel):
    """Path of one of our binaries in the build dir ('spoa/hacme-spoa')."""
    return os.path.join(BUILD, rel)


# ---------------------------------------------------------------- TAP

class TAP:
    """Minimal TAP producer. An uncaught exception after TAP() is created
    becomes `not ok - <exception>` (with the traceback as comments), so a
    crashing test never passes silently."""

    current = None

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.finished = False
        TAP.current = self
        self._prev_hook = sys.excepthook
        sys.excepthook = self._excepthook
        atexit.register(self._atexit)

    def _line(self, ok, desc, directive=''):
        self.n += 1
        desc = ' '.join(str(desc).split())
        desc = desc.replace('#', '\\#')
        print('%s %d - %s%s' % ('ok' if ok else 'not ok', self.n, desc, directive),
              flush=True)

    def ok(self, cond, desc):
        cond = bool(cond)
        self._line(cond, desc)
        if not cond:
            self.failed += 1
        return cond

    def eq(self, got, want, desc):
        good = got == want
        self.ok(good, desc)
        if not good:
            _diag('     got: %r\nexpected: %r' % (got, want))
        return good

    def like(self, got, regex, desc):
        good = got is not None and re.search(regex, str(got)) is not None
        self.ok(good, desc)
        if not good:
            _diag('     got: %r\n    want: /%s/' % (got, regex))
        return good

    def skip(self, desc, why):
        self._line(True, desc, ' # SKIP %s' % ' '.join(str(why).split()))

    def diag(self, text):
        _diag(text)

    def fail_exception(self, exc_type, exc, tb):
        msg = '%s: %s' % (exc_type.__name__, exc)
        self.failed += 1
        self._line(False, 'uncaught exception: ' + msg.split('\n')[0])
        _diag(''.join(traceback.format_exception(exc_type, exc, tb)))

    def _excepthook(self, exc_type, exc, tb):
        if self.finished or issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            return self._prev_hook(exc_type, exc, tb)
        self.fail_exception(exc_type, exc, tb)
        self.done()
        sys.stdout.flush()

    def _atexit(self):
        if not self.finished:
            self.failed += 1
            self._line(False, 'test ended without calling done()')
            self.done()

    def done(self):
        """Print the plan; returns the exit code (0 only if all passed and
        at least one check ran)."""
        if not self.finished:
            self.finished = True
            if self.n == 0:
                self._line(False, 'no checks ran')
                self.failed += 1
            print('1..%d' % self.n, flush=True)
            if self.failed:
                _diag('%d of %d checks failed' % (self.failed, self.n))
        return 1 if self.failed else 0


def _any_failed():
    return TAP.current is not None and TAP.current.failed > 0


# ---------------------------------------------------------------- readiness

def tcp_accepting(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def unix_connectable(path):
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def mem_kb(pid):
    """{'VmRSS': KiB, 'VmHWM': KiB} of process pid, from /proc/<pid>/status."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for l in f:
            k, _, v = l.partition(':')
            if k in ('VmRSS', 'VmHWM'):
                out[k] = int(v.split()[0])
    return out


def wait_until(pred, timeout, what, proc=None, interval=0.02):
    """Poll pred() until true; raise LabError (with the log tail of proc)
    on timeout or when proc dies first."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if proc is not None and not proc.alive():
            raise LabError('%s: process %s exited (rc %s) while waiting for %s\n%s'
                           % (proc.name, proc.pid, proc.returncode(), what, proc.tail()))
        if time.monotonic() > deadline:
            msg = 'timeout after %.1fs waiting for %s' % (timeout, what)
            if proc is not None:
                msg += ' (%s)\n%s' % (proc.name, proc.tail())
            raise LabError(msg)
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


class Ready:
    """Readiness conditions for spawn(ready=...). A plain str is a log
    regex, a plain int a TCP port on 127.0.0.1; a list means all of them."""

    def __init__(self, kind, arg):
        self.kind, self.arg = kind, arg

    @staticmethod
    def log(regex):
        return Ready('log', regex)

    @staticmethod
    def tcp(port):
        return Ready('tcp', port)

    @staticmethod
    def unix(path):
        return Ready('unix', path)

    @staticmethod
    def listen(port):
        """The process itself has a TCP socket listening on 127.0.0.1:port
        (seen in /proc, without connecting: no noise in its log/stats)."""
        return Ready('listen', port)

    def describe(self):
        return {'log': 'log line /%s/', 'tcp': 'TCP 127.0.0.1:%s accepting',
                'unix': 'unix socket %s connectable',
                'listen': 'a listening socket on 127.0.0.1:%s'}[self.kind] % (self.arg,)


def _norm_ready(ready):
    if ready is None:
        return []
    if isinstance(ready, (list, tuple)) and not (len(ready) == 2 and ready[0] in ('log', 'tcp', 'unix', 'listen')):
        out = []
        for r in ready:
            out.extend(_norm_ready(r))
        return out
    if isinstance(ready, Ready):
        return [ready]
    if isinstance(ready, tuple):
        return [Ready(ready[0], ready[1])]
    if isinstance(ready, int):
        return [Ready.tcp(ready)]
    if isinstance(ready, str):
        return [Ready.log(ready)]
    if callable(ready):
        return [Ready('call', ready)]
    raise TypeError('ready: %r' % (ready,))


# ---------------------------------------------------------------- processes

def _session_members(sid):
    """PIDs of live processes whose session id is sid (read from /proc)."""
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
        except OSError:
            continue
        # fields after the ')' : state ppid pgrp session ...
        rest = st[st.rfind(')') + 2:].split()
        if len(rest) > 3 and rest[3] == str(sid) and rest[0] != 'Z':
            out.append(int(d))
    return out


class Proc:
    """A process the lab started, in its own session/process group."""

    def __init__(self, lab, name, argv, env, log_path, cwd):
        self.lab = lab
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.log = log_path
        self._logf = open(log_path, 'ab')
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=self._logf, stderr=subprocess.STDOUT,
                                      env=env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        self.stopped = False

    def __repr__(self):
        return '<Proc %s pid %d>' % (self.name, self.pid)

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def tail(self, n=TAIL_LINES):
        return tail(self.log_path, n)

    def read_log(self, since=0):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(since)
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def log_mark(self):
        """Current log size: pass as since= to wait_log to see only new lines."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def wait_log(self, regex, timeout=10, since=0):
        """Wait for regex (multiline search) in the log after byte offset
        since; returns the match object."""
        rx = re.compile(regex, re.M)
        return wait_until(lambda: rx.search(self.read_log(since)), timeout,
                          'log line /%s/' % regex, self)

    def count_log(self, regex, since=0):
        return len(re.findall(regex, self.read_log(since), re.M))

    def wait_ready(self, ready, timeout):
        for r in _norm_ready(ready):
            if r.kind == 'log':
                self.wait_log(r.arg, timeout)
            elif r.kind == 'tcp':
                wait_until(lambda: tcp_accepting(r.arg), timeout, r.describe(), self)
            elif r.kind == 'unix':
                wait_until(lambda: unix_connectable(r.arg), timeout, r.describe(), self)
            elif r.kind == 'listen':
                want = '127.0.0.1:%d' % int(r.arg)
                wait_until(lambda: want in listening_addresses(self.session_pids()),
                           timeout, r.describe(), self)
            else:
                wait_until(r.arg, timeout, 'readiness check %r' % r.arg, self)

    def session_pids(self):
        """The leader and every live process of its session."""
        return sorted(set([self.pid] + _session_members(self.pid)))

    def kill(self, sig):
        """Send sig to the process (leader only), e.g. SIGUSR2, SIGHUP."""
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Signal the whole process group, wait, SIGKILL what remains.
        Returns the leader's exit status."""
        if not self.stopped:
            if self.alive():
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
            # stragglers of our session (children the leader left behind);
            # the session id stays reserved while any member lives
            deadline = time.monotonic() + timeout
            while _session_members(self.pid):
                if time.monotonic() > deadline:
                    for p in _session_members(self.pid):
                        try:
                            os.kill(p, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    break
                for p in _session_members(self.pid):
                    try:
                        os.kill(p, sig)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
            self.stopped = True
            self._logf.close()
        return self.popen.returncode

    def wait(self, timeout=10):
        """Wait for the process to exit by itself; returns its exit status."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise LabError('%s: still running after %ss\n%s' % (self.name, timeout, self.tail()))


def _hexaddr(h):
    ip, port = h.split(':')
    port = int(port, 16)
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return '%s:%d' % (socket.inet_ntop(socket.AF_INET, raw[::-1]), port)
    # /proc prints IPv6 as four host-order 32-bit words
    words = b''.join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return '[%s]:%d' % (socket.inet_ntop(socket.AF_INET6, words), port)


def listening_addresses(pids):
    """Addresses ('127.0.0.1:80', '[::]:8055', 'udp 127.0.0.1:53') that the
    given processes listen on (TCP LISTEN sockets and bound UDP sockets),
    from /proc: lets a test prove nothing listens beyond loopback."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    l = os.readlink('/proc/%d/fd/%s' % (pid, fd))
                except OSError:
                    continue
                if l.startswith('socket:['):
                    inodes.add(l[8:-1])
        except OSError:
            continue
    out = set()
    for proto in ('tcp', 'tcp6', 'udp', 'udp6'):
        try:
            with open('/proc/net/' + proto) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[9] not in inodes:
                continue
            if proto.startswith('tcp') and f[3] != '0A':
                continue
            a = _hexaddr(f[1])
            out.add(a if proto.startswith('tcp') else 'udp ' + a)
    return sorted(out)


# ---------------------------------------------------------------- HTTP helpers

def _ssl_ctx(ca=None, verify=True):
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
    else:
        ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


USER_AGENT = 'hacme-lab'


def http_request(method, url, body=None, headers=None, ca=None, timeout=10, host=None):
    """One HTTP(S) request; returns (status, headers dict with lower-case
    keys, body bytes). host overrides the Host header; a User-Agent is sent
    unless headers names another."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == 'https':
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout,
                                           context=_ssl_ctx(ca))
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    path = u.path or '/'
    if u.query:
        path += '?' + u.query
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader('Host', host if host is not None else u.netloc)
        hdrs = {'User-Agent': USER_AGENT}  # pebble 2.10 refuses requests without one
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            conn.putheader('Content-Length', str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
        return r.status, hdrs, data
    finally:
        conn.close()


def http_get(url_or_port, path=None, host=None, timeout=5):
    """GET http://127.0.0.1:<port><path> (url_or_port an int) or
    <url><path> with the given Host header; returns (status, headers,
    body bytes)."""
    if isinstance(url_or_port, int) or str(url_or_port).isdigit():
        url = 'http://127.0.0.1:%d%s' % (int(url_or_port), path or '/')
    else:
        url = str(url_or_port)
        if path:
            url = url.rstrip('/') + path
    return http_request('GET', url, host=host, timeout=timeout)


def _run(argv, input=None, timeout=30, env=None):
    p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def cert_info(pem):
    """Parse one PEM certificate with openssl x509: dict with serial (hex,
    upper case, no leading zeros), subject, issuer, sans (list), not_after
    (string), not_after_ts and not_before_ts (epoch), key_type ('ecdsa-p256', 'rsa2048', ...)."""
    if isinstance(pem, str):
        pem = pem.encode()
    rc, out, err = _run(['openssl', 'x509', '-noout', '-serial', '-subject', '-issuer',
                         '-startdate', '-enddate', '-ext', 'subjectAltName', '-text'], input=pem)
    if rc != 0:
        raise LabError('openssl x509: ' + err)
    info = {'pem': pem.decode()}
    m = re.search(r'^serial=([0-9A-Fa-f]+)', out, re.M)
    info['serial'] = (m.group(1).upper().lstrip('0') or '0') if m else None
    m = re.search(r'^subject=\s*(.*)$', out, re.M)
    info['subject'] = m.group(1).strip() if m else None
    m = re.search(r'^issuer=\s*(.*)$', out, re.M)
    info['issuer'] = m.group(1).strip() if m else None
    m = re.search(r'^notBefore=(.*)$', out, re.M)
    info['not_before_ts'] = ssl.cert_time_to_seconds(m.group(1).strip()) if m else None
    m = re.search(r'^notAfter=(.*)$', out, re.M)
    info['not_after'] = m.group(1).strip() if m else None
    info['not_after_ts'] = ssl.cert_time_to_seconds(info['not_after']) if info['not_after'] else None
    m = re.search(r'X509v3 Subject Alternative Name:.*?\n\s*(.*)\n', out)
    sans = []
    if m:
        for part in m.group(1).split(','):
            part = part.strip()
            if part.startswith('DNS:'):
                sans.append(part[4:])
            elif part.startswith('IP Address:'):
                sans.append(part[11:])
    info['sans'] = sans
    if 'id-ecPublicKey' in out:
        m = re.search(r'NIST CURVE: P-(\d+)', out)
        info['key_type'] = 'ecdsa-p%s' % (m.group(1) if m else '?')
    elif 'rsaEncryption' in out:
        m = re.search(r'Public-Key: \((\d+) bit\)', out)
        info['key_type'] = 'rsa%s' % (m.group(1) if m else '?')
    else:
        info['key_type'] = 'unknown'
    return info


SIGALGS = {
    'ecdsa': 'ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512',
    'rsa': 'rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256:rsa_pkcs1_sha384',
}


def tls_probe(port, sni, ca=None, only=None, host='127.0.0.1', timeout=10):
    """Connect with openssl s_client to host:port with SNI sni and return
    cert_info() of the served leaf, plus 'verify' (openssl's verify
    result line, meaningful when ca is given) and 'chain' (list of PEMs).
    only='ecdsa' or 'rsa' offers only those signature algorithms (for dual
    certificates). Raises LabError when no certificate came back."""
    argv = ['openssl', 's_client', '-connect', '%s:%d' % (host, int(port)),
            '-servername', sni, '-showcerts']
    if ca:
        argv += ['-CAfile', ca, '-verify_hostname', sni]
    if only:
        argv += ['-sigalgs', SIGALGS[only]]
    rc, out, err = _run(argv, input=b'', timeout=timeout)
    pems = re.findall(r'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?', out, re.S)
    if not pems:
        raise LabError('tls_probe %s:%s sni=%s: no certificate (rc %d)\n%s%s'
                       % (host, port, sni, rc, out[-2000:], err[-2000:]))
    info = cert_info(pems[0])
    info['chain'] = pems
    m = re.search(r'Verify return code: (\d+) \(([^)]*)\)', out)
    info['verify'] = '%s (%s)' % (m.group(1), m.group(2)) if m else None
    info['verified'] = bool(m and m.group(1) == '0')
    return info


# ---------------------------------------------------------------- services

class HAProxy(Proc):
    """haproxy -db (or -W -S master socket) with a stats socket."""

    def cmd(self, line, payload=None, timeout=5):
        """One runtime-API command on the stats socket (one per
        connection). With payload, sends `line <<\\n<payload>\\n\\n`.
        Returns the reply text."""
        return unix_request(self.stats_socket, _cli_line(line, payload), timeout)

    def master(self, line, payload=None, timeout=5):
        """One command on the master CLI (needs master_socket=True), e.g.
        master('show proc') or master('@1 show info')."""
        if not self.master_socket:
            raise LabError('haproxy started without master_socket=True')
        # the master CLI keeps a connection open until `quit`
        if payload is None:
            data = line.rstrip('\n') + ';quit\n'
        else:
            data = _cli_line(line, payload) + 'quit\n'
        return unix_request(self.master_socket, data, timeout)

    def info(self):
        """`show info` as a dict."""
        out = {}
        for l in self.cmd('show info').splitlines():
            if ':' in l:
                k, v = l.split(':', 1)
                out[k.strip()] = v.strip()
        return out

    def worker_pid(self):
        return int(self.info()['Pid'])


def _cli_line(line, payload):
    if payload is None:
        return line.rstrip('\n') + '\n'
    payload = payload.rstrip('\n')
    if '\n\n' in payload:
        raise LabError('runtime API payload must not contain blank lines')
    return line.rstrip('\n') + ' <<\n' + payload + '\n\n'


def unix_request(path, data, timeout=5):
    """Send data to a unix stream socket, read until EOF."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(data.encode() if isinstance(data, str) else data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b''.join(chunks).decode('utf-8', 'replace')
    finally:
        s.close()


class Stack:
    """agent + HAProxy; see Lab.stack()."""


class Pebble:
    """pebble + pebble-challtestsrv; see Lab.pebble()."""

    def __init__(self, lab):
        self.lab = lab

    def mgmt_get(self, path, timeout=10):
        st, h, body = http_request('GET', self.mgmt + path, ca=self.ca_bundle, timeout=timeout)
        if st != 200:
            raise LabError('pebble management %s: HTTP %d %s' % (path, st, body[:300]))
        return body.decode()

    def roots(self, i=0):
        """PEM of root i (i > 0 exists with PEBBLE_ALTERNATE_ROOTS)."""
        return self.mgmt_get('/roots/%d' % i)

    def intermediates(self, i=0):
        return self.mgmt_get('/intermediates/%d' % i)

    def root_keys(self, i=0):
        return self.mgmt_get('/root-keys/%d' % i)

    def cert_status(self, serial):
        """Revocation status of a certificate by serial (hex, as
        cert_info()['serial']): dict from /cert-status-by-serial/<serial>,
        e.g. {'Status': 'Valid'|'Revoked', 'Serial': ..., 'Reason': ...,
        'RevokedAt': ..., 'Certificate': PEM}; None when pebble does not
        know the serial."""
        st, h, body = http_request('GET', self.mgmt + '/cert-status-by-serial/' + serial.lower(),
                                   ca=self.ca_bundle)
        if st == 404:
            return None
        if st != 200:
            raise LabError('pebble cert-status-by-serial %s: HTTP %d %s' % (serial, st, body[:300]))
        return json.loads(body)

    def directory_json(self):
        st, h, body = http_request('GET', self.directory, ca=self.ca_bundle)
        if st != 200:
            raise LabError('pebble directory: HTTP %d' % st)
        return json.loads(body)

    def orders_created(self, since=0):
        """Number of new orders pebble has logged (after log offset since,
        from self.proc.log_mark()). pebble 2.4.0 has no management endpoint
        that lists or counts orders; this counts its `Added order` lines."""
        return self.proc.count_log(r'Added order "', since)

    def issued_serials(self, since=0):
        """Serials (lower-case hex, as pebble prints them) of the
        certificates pebble has issued, from its log."""
        return re.findall(r'Issued certificate serial ([0-9a-f]+) for order',
                          self.proc.read_log(since))

    def validations(self, since=0):
        """Number of http-01 validations pebble started (each is three
        fetches: pebble logs `Starting 3 validations.`)."""
        return self.proc.count_log(r'Starting \d+ validations', since)

    def renewal_info(self, pem):
        """GET the directory's renewalInfo for a certificate (PEM): (status,
        headers, parsed JSON or None). pebble >= 2.10 only."""
        url = self.directory_json().get('renewalInfo')
        if not url:
            raise LabError('pebble %s serves no renewalInfo (pebble 2.10: newer=True)'
                           % self.directory)
        st, h, body = http_request('GET', url.rstrip('/') + '/' + ari_cert_id(pem),
                                   ca=self.ca_bundle)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        return st, h, doc

    def set_renewal_info(self, pem, start, end, explanation=None, raw=None):
        """Make pebble (>= 2.10) answer renewalInfo for certificate pem
        with the suggestedWindow start..end (epoch seconds), through its
        management POST /set-renewal-info; raw (str) replaces the whole
        answer. pebble keeps its own Retry-After (6 h)."""
        if raw is None:
            doc = {'suggestedWindow': {'start': rfc3339(start), 'end': rfc3339(end)}}
            if explanation:
                doc['explanationURL'] = explanation
            raw = json.dumps(doc)
        st, h, body = http_request('POST', self.mgmt + '/set-renewal-info/',
                                   body=json.dumps({'Certificate': pem, 'ARIResponse': raw}),
                                   headers={'Content-Type': 'application/json'},
                                   ca=self.ca_bundle)
        if st != 200:
            raise LabError('pebble set-renewal-info: HTTP %d %s' % (st, body[:300]))

    def renewal_info_requests(self, since=0):
        """Number of renewalInfo requests pebble has served (from its log)."""
        return self.proc.count_log(r'GET /[^ ]*renewalInfo/ -> calling handler', since)

    def tail(self):
        return self.proc.tail()


def rfc3339(ts):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ts))


def ari_cert_id(pem):
    """RFC 9773 section 4.1 certificate ID of a PEM certificate:
    base64url(AKI keyIdentifier) '.' base64url(serial as DER INTEGER
    content), from the openssl CLI."""
    if isinstance(pem, str):
        pem = pem.encode()
    rc, out, err = _run(['openssl', 'x509', '-noout', '-text', '-serial'], input=pem)
    m = re.search(r'Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)', out)
    if rc != 0 or m is None:
        raise LabError('ari_cert_id: no Authority Key Identifier (%s)' % err.strip())
    aki = bytes.fromhex(m.group(1).replace(':', ''))
    serial = int(re.search(r'^serial=([0-9A-F]+)', out, re.M).group(1), 16)
    n = (serial.bit_length() + 8) // 8  # DER: a leading 0 when the top bit is set
    b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
    return b64u(aki) + '.' + b64u(serial.to_bytes(n, 'big'))


class Redis(Proc):
    def cmd(self, *args, timeout=5):
        """One command over RESP; returns the decoded reply (str, int,
        list, None) or raises LabError on an error reply."""
        s = socket.create_connection(('127.0.0.1', self.port), timeout=timeout)
        try:
            req = b'*%d\r\n' % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                req += b'$%d\r\n%s\r\n' % (len(a), a)
            s.sendall(req)
            f = s.makefile('rb')
            return _resp_read(f)
        finally:
            s.close()


def _resp_read(f):
    line = f.readline()
    if not line:
        raise LabError('redis: connection closed')
    t, rest = line[:1], line[1:].rstrip(b'\r\n')
    if t == b'+':
        return rest.decode()
    if t == b'-':
        raise LabError('redis error: ' + rest.decode())
    if t == b':':
        return int(rest)
    if t == b'$':
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:n]
        return data.decode('utf-8', 'replace')
    if t == b'*':
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f) for _ in range(n)]
    raise LabError('redis: bad reply %r' % line)


def control_connect(target, timeout=5):
    """A connected socket to an agent's control address: a path (unix
    socket) or a port (tcp 127.0.0.1)."""
    if isinstance(target, int):
        return socket.create_connection(('127.0.0.1', target), timeout=timeout)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(target)
    except OSError:
        s.close()
        raise
    return s


def control_many(target, lines, timeout=5, tail=lambda: ''):
    """Several pipelined control requests on one connection to target (see
    control_connect); a list of replies, each the reply lines read up to and
    including OK / PONG / END / ERR ... (the last element)."""
    s = control_connect(target, timeout)
    try:
        s.sendall(''.join(l.rstrip('\n') + '\n' for l in lines).encode())
        f = s.makefile('rb')
        replies = []
        for _ in lines:
            rep = []
            while True:
                raw = f.readline()
                if not raw:
                    raise LabError('agent control: connection closed after %r\n%s'
                                   % (rep, tail()))
                l = raw.decode('utf-8', 'replace').rstrip('\r\n')
                rep.append(l)
                # 'ERR <reason>': a LIST line is a token, and 1 in
                # 64^3 tokens starts with ERR (test_agent's 10,000)
                if l in ('OK', 'PONG', 'END', 'ERR') or l.startswith('ERR '):
                    break
            replies.append(rep)
        return replies
    finally:
        s.close()


def agent_list(target, timeout=3):
    """LIST on an agent's control socket (a path or a port): {token: line}
    of the tokens it holds, or None when nothing answers there (no agent,
    or one that died mid-reply)."""
    try:
        rep = control_many(target, ['LIST'], timeout)[0]
    except (OSError, LabError):
        return None
    if rep[-1] != 'END':
        return None
    return {l.split()[0]: l for l in rep[:-1]}


class Agent(Proc):
    """hacme-spoa with its control socket."""

    def ctl(self, line, timeout=5):
        """Send one control line; returns the reply lines (list), read up to
        and including OK / PONG / END / ERR ... (the last element)."""
        return self.ctl_many([line], timeout)[0]

    def ctl_many(self, lines, timeout=5):
        """Several pipelined requests on one connection; a list of replies."""
        return control_many(self.control_path or self.control_port, lines, timeout, self.tail)

    def stats(self):
        out = {}
        for l in self.ctl('STATS')[:-1]:
            k, _, v = l.partition(' ')
            out[k] = int(v) if v.isdigit() else v
        return out


# ---------------------------------------------------------------- the lab

_live_labs = []
_sig_installed = False


def _on_sigterm(signum, frame):
    # unwind through the with-blocks (Lab.__exit__ cleans up); while a lab
    # is already cleaning up, just let it finish
    if any(l._closing for l in _live_labs):
        return
    raise Terminated('signal %d (timeout?)' % signum)


def _atexit_cleanup():
    for l in list(_live_labs):
        l.close()


class Lab:
    """A temp dir plus every process started through it; see module doc."""

    _ports_handed = set()

    def __init__(self, name='lab'):
        global _sig_installed
        self.dir = tempfile.mkdtemp(prefix='hacme-%s-' % name)
        self.procs = []
        self._closing = False
        self._closed = False
        self._names = {}
        self.failed = False
        _live_labs.append(self)
        if not _sig_installed:
            atexit.register(_atexit_cleanup)
            try:
                signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:
                pass  # not the main thread
            _sig_installed = True

    # context manager
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # an exception marks the lab failed (log tails get printed); it then
        # propagates to TAP's excepthook, which reports it as not ok
        if exc_type is not None and not issubclass(exc_type, SystemExit):
            self.failed = True
        self.close()
        return False

    def path(self, *parts):
        """A path inside the lab dir."""
        return os.path.join(self.dir, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'w') as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def _unique(self, name):
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        return name if n == 0 else '%s-%d' % (name, n + 1)

    def port(self, udp=False):
        """A free loopback TCP port (also free for UDP when udp=True), never
        handed out twice by this process."""
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(('127.0.0.1', 0))
                p = s.getsockname()[1]
            finally:
                s.close()
            if p in Lab._ports_handed:
                continue
            if udp:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    u.bind(('127.0.0.1', p))
                except OSError:
                    continue
                finally:
                    u.close()
            Lab._ports_handed.add(p)
            return p
        raise LabError('no free port found')

    def spawn(self, name, argv, env=None, ready=None, timeout=15, cls=Proc, cwd=None):
        """Start argv in its own session with stdout+stderr to
        <dir>/<name>.log; env adds to os.environ. ready: a log regex (str),
        a TCP port (int), Ready.unix(path), a callable, or a list of them;
        waits up to timeout seconds, raising LabError with the log tail."""
        if self._closed:
            raise LabError('lab already closed')
        return self._start(self._unique(name), argv, env, ready, timeout, cls, cwd)

    def _start(self, name, argv, env=None, ready=None, timeout=15, cls=Proc, cwd=None):
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        log = self.path(name + '.log')
        p = cls(self, name, [str(a) for a in argv], full_env, log, cwd or self.dir)
        self.procs.append(p)
        if ready is not None:
            p.wait_ready(ready, timeout)
        return p

    # ---- haproxy
    def haproxy(self, cfg_path, env=None, extra_args=(), master_socket=False,
                stats_socket=None, ready=None, timeout=15, name='haproxy'):
        """Check then start haproxy -f cfg_path in the foreground.

        The config sees these environment variables (plus env):
          LAB_DIR      the lab dir
          STATS_SOCK and HACME_STATS_SOCKET (haproxy-conf/haproxy.cfg's name)
                       the unix socket path for `stats socket "${...}" level
                       admin`; give stats_socket=, or set either in env
        Readiness: the stats socket accepts (or ready=...)."""
        env = {k: str(v) for k, v in (env or {}).items()}
        name = self._unique(name)
        sock = (stats_socket or env.get('STATS_SOCK') or env.get('HACME_STATS_SOCKET')
                or self.path(name + '.sock'))
        env.setdefault('STATS_SOCK', sock)
        env.setdefault('HACME_STATS_SOCKET', sock)
        env.setdefault('LAB_DIR', self.dir)
        full_env = dict(os.environ)
        full_env.update(env)
        rc, out, err = _run(['haproxy', '-c', '-f', cfg_path] + list(extra_args), env=full_env)
        if rc != 0:
            raise LabError('haproxy -c -f %s failed (rc %d):\n%s%s' % (cfg_path, rc, out, err))
        argv = ['haproxy', '-f', cfg_path]
        msock = None
        if master_socket:
            msock = self.path(name + '-master.sock')
            argv += ['-W', '-db', '-S', msock]
        else:
            argv += ['-db']
        argv += list(extra_args)
        if ready is None:
            ready = [Ready.unix(sock)] + ([Ready.unix(msock)] if msock else [])
        p = self._start(name, argv, env=env, cls=HAProxy)
        p.stats_socket = sock
        p.master_socket = msock
        p.cfg = cfg_path
        p.wait_ready(ready, timeout)
        if msock:
            # the master socket accepts before the master serves its CLI: a
            # connection then is reset. Ready = `show proc` lists a worker.
            def master_up():
                try:
                    return re.search(r'(?m)^\d+\s+worker', p.master('show proc', timeout=2))
                except OSError:
                    return False
            wait_until(master_up, timeout, 'the master CLI of %s lists a worker' % name, proc=p)
        return p

    # ---- pebble
    def make_ca(self, prefix='lab', names=('localhost',), ips=('127.0.0.1',)):
        """A throw-away CA and a leaf for names/ips (ECDSA P-256), made
        with openssl. Returns (ca_pem, leaf_pem, leaf_key) paths."""
        ca_key, ca_pem = self.path(prefix + '-ca.key'), self.path(prefix + '-ca.pem')
        key, csr, pem = (self.path(prefix + '-leaf.key'), self.path(prefix + '-leaf.csr'),
                         self.path(prefix + '-leaf.pem'))
        ext = self.write(prefix + '-leaf.ext',
                         'basicConstraints=critical,CA:FALSE\n'
                         'keyUsage=critical,digitalSignature\n'
                         'extendedKeyUsage=serverAuth\n'
                         'subjectAltName=' + ','.join(['DNS:' + n for n in names] +
                                                      ['IP:' + i for i in ips]) + '\n')
        ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        steps = [
            ['openssl', 'req', '-x509'] + ec + ['-keyout', ca_key, '-out', ca_pem, '-days', '7',
             '-subj', '/CN=hacme lab CA %s' % os.getpid(),
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
            ['openssl', 'req'] + ec + ['-keyout', key, '-out', csr, '-subj', '/CN=' + names[0]],
            ['openssl', 'x509', '-req', '-in', csr, '-CA', ca_pem, '-CAkey', ca_key,
             '-set_serial', '0x%x' % (int.from_bytes(os.urandom(8), 'big') | 1),
             '-days', '7', '-out', pem, '-extfile', ext],
        ]
        for argv in steps:
            rc, out, err = _run(argv)
            if rc != 0:
                raise LabError('%s failed:\n%s%s' % (' '.join(argv[:3]), out, err))
        return ca_pem, pem, key

    def pebble(self, env=None, config=None, http_port=None, tls_port=None, timeout=30,
               newer=None, dns_server=None):
        """Start pebble-challtestsrv (DNS: every name -> 127.0.0.1) then
        pebble, both on loopback only. Returns a Pebble with:
          directory, ca_bundle, http_port, tls_port, mgmt, listen_port,
          dns_port, challtestsrv_mgmt, proc, challtestsrv (Procs),
          roots(i), intermediates(i), cert_status(serial), orders_created().
        env: PEBBLE_* variables (PEBBLE_VA_NOSLEEP=1 is preset; pebble's
        default 5 % nonce rejection stays on unless env sets
        PEBBLE_WFE_NONCEREJECT). config: extra keys for the "pebble"
        object (certificateValidityPeriod, externalAccountBindingRequired,
        externalAccountMACKeys, retryAfter, ...).

        newer=True runs pebble 2.10 from Debian sid instead of the
        system's 2.4 (fetched and cached by tests/lab/platforms.sh; the
        default comes from HACME_PEBBLE=2.10 in the environment). 2.10 adds
        renewalInfo (ARI: pb.set_renewal_info()), profiles (config
        {'profiles': {name: {'description', 'validityPeriod'}}}) and the
        dns-persist-01/dns-account-01 challenges. certificateValidityPeriod,
        which 2.10 ignores, becomes the validityPeriod of its single
        profile 'default' (2.10 picks a random profile for an order that
        names none, so the lab never configures more than one unless
        config gives 'profiles'). pb.newer tells which one runs.

        dns_server='HOST:PORT' makes pebble resolve every name (A, AAAA,
        TXT, CAA) there instead of at challtestsrv (which still runs), e.g.
        a zone served by knot on loopback for dns-01 / dns-persist-01."""
        if newer is None:
            newer = os.environ.get('HACME_PEBBLE', '') == '2.10'
        bindir = pebble_newer_bindir() if newer else None
        pb = Pebble(self)
        pb.newer = bool(newer)
        pb.ca_bundle, cert, key = self.make_ca('pebble')
        pb.listen_port = self.port()
        pb.mgmt_port = self.port()
        pb.http_port = http_port or self.port()
        pb.tls_port = tls_port or self.port()
        pb.dns_port = self.port(udp=True)
        pb.challtestsrv_mgmt_port = self.port()
        cfg = {
            'listenAddress': '127.0.0.1:%d' % pb.listen_port,
            'managementListenAddress': '127.0.0.1:%d' % pb.mgmt_port,
            'certificate': cert,
            'privateKey': key,
            'httpPort': pb.http_port,
            'tlsPort': pb.tls_port,
            'ocspResponderURL': '',
            'externalAccountBindingRequired': False,
        }
        cfg.update(config or {})
        if newer and 'profiles' not in cfg:
            cfg['profiles'] = {'default': {
                'description': 'the lab profile',
                'validityPeriod': int(cfg.pop('certificateValidityPeriod', 0))}}
        pb.config_path = self.write('pebble-config.json', json.dumps({'pebble': cfg}, indent=2))
        pb.config = cfg
        ctsrv, pebble_bin = 'pebble-challtestsrv', 'pebble'
        dns_flag, extra = '-dns01', []
        if newer:
            ctsrv = os.path.join(bindir, ctsrv)
            pebble_bin = os.path.join(bindir, pebble_bin)
            # 2.10 renamed -dns01 and added DNS-over-HTTPS (on all interfaces
            # unless disabled)
            dns_flag, extra = '-dnsserver', ['-doh', '']
        pb.challtestsrv = self.spawn('challtestsrv', [
            ctsrv, '-http01', '', '-https01', '', '-tlsalpn01', '',
            dns_flag, '127.0.0.1:%d' % pb.dns_port,
            '-management', '127.0.0.1:%d' % pb.challtestsrv_mgmt_port,
            '-defaultIPv6', '', '-defaultIPv4', '127.0.0.1'] + extra,
            ready=[Ready.listen(pb.challtestsrv_mgmt_port)], timeout=timeout)
        penv = {'PEBBLE_VA_NOSLEEP': '1'}
        penv.update(env or {})
        pb.env = penv
        pb.dns_server = dns_server or '127.0.0.1:%d' % pb.dns_port
        pb.proc = self.spawn('pebble', [pebble_bin, '-config', pb.config_path,
                                        '-dnsserver', pb.dns_server],
                             env=penv,
                             ready=[Ready.listen(pb.listen_port), Ready.listen(pb.mgmt_port)],
                             timeout=timeout)
        pb.directory = 'https://127.0.0.1:%d/dir' % pb.listen_port
        pb.mgmt = 'https://127.0.0.1:%d' % pb.mgmt_port
        pb.challtestsrv_mgmt = 'http://127.0.0.1:%d' % pb.challtestsrv_mgmt_port
        # the port accepting is not yet the directory answering over TLS
        wait_until(lambda: _probe_ok(pb.directory, pb.ca_bundle), timeout,
                   'pebble directory %s' % pb.directory, pb.proc)
        return pb

    # ---- redis
    def redis(self, args=(), timeout=15):
        """redis-server on a free loopback port, no persistence. .port,
        .cmd(*args)."""
        port = self.port()
        d = self.path('redis-%d' % port)
        os.makedirs(d, exist_ok=True)
        p = self.spawn('redis', ['redis-server', '--port', port, '--bind', '127.0.0.1',
                                 '--save', '', '--appendonly', 'no', '--dir', d,
                                 '--protected-mode', 'yes', '--daemonize', 'no'] + list(args),
                       cls=Redis)
        p.port = port
        p.wait_ready([Ready.listen(port), lambda: _redis_ping(p)], timeout)
        return p

    # ---- hacme-spoa
    def agent(self, listen_port=None, control=None, args=(), timeout=15, log_level=None,
              listen_unix=None):
        """Start $HACME_BUILD/spoa/hacme-spoa --listen 127.0.0.1:<listen_port>
        (or unix@<listen_unix>, a path) --control <control> (default a unix
        socket in the lab dir; an int means tcp 127.0.0.1:<port>) and wait
        for the control socket to answer PING. Returns an Agent:
        .listen_port (None with listen_unix), .listen_addr (what HAProxy's
        server line takes), .control (address), .ctl(line) -> reply lines,
        .stats()."""
        binary = exe('spoa/hacme-spoa')
        if not os.path.exists(binary):
            raise LabError('%s not built' % binary)
        if listen_unix:
            listen_port, listen_addr = None, 'unix@' + listen_unix
        else:
            listen_port = listen_port or self.port()
            listen_addr = '127.0.0.1:%d' % listen_port
        control_path = control_port = None
        if control is None:
            control_path = self.path(self._unique('agent') + '.ctl')
            control = 'unix@' + control_path
        elif isinstance(control, int):
            control_port = control
            control = 'ipv4@127.0.0.1:%d' % control
        elif control.startswith(('unix@', 'unix:')):
            control_path = control[5:]
        else:
            control_port = int(control.rsplit(':', 1)[1])
        argv = [binary, '--listen', 'unix@' + listen_unix if listen_unix
                else 'ipv4@127.0.0.1:%d' % listen_port, '--control', control]
        if log_level:
            argv += ['--log-level', log_level]
        argv += list(args)
        p = self.spawn('agent', argv, cls=Agent)
        p.listen_port = listen_port
        p.listen_addr = listen_addr
        p.control = control
        p.control_path = control_path
        p.control_port = control_port
        # /proc, not a connection: a probe would show in the agent's STATS
        p.wait_ready([Ready.unix(listen_unix) if listen_unix else Ready.listen(listen_port),
                      Ready.unix(control_path) if control_path else Ready.listen(control_port)],
                     timeout)
        return p

    # ---- certbot, an independent ACME client for real pebble certificates
    def certbot(self, pb, names, key_type='ecdsa', extra=(), timeout=120):
        """Get a real certificate from pebble pb with certbot --standalone
        answering http-01 on 127.0.0.1:pb.http_port (so nothing else may
        listen there meanwhile). names: list of names; key_type 'ecdsa'
        (P-256) or 'rsa' (2048). Returns a dict of paths: cert, chain,
        fullchain, privkey, and dir (certbot's --config-dir, for revoke()).
        For tests that need real CA-issued certificates without hacme."""
        if shutil.which('certbot') is None:
            raise LabError('certbot not installed (apt-get install certbot)')
        base = self.path(self._unique('certbot'))
        argv = ['certbot', 'certonly', '--standalone', '--non-interactive', '--agree-tos',
                '--register-unsafely-without-email', '--server', pb.directory,
                '--http-01-port', str(pb.http_port), '--http-01-address', '127.0.0.1',
                '--config-dir', base + '/conf', '--work-dir', base + '/work',
                '--logs-dir', base + '/logs', '--cert-name', names[0],
                '--key-type', key_type] + list(extra)
        if key_type == 'rsa':
            argv += ['--rsa-key-size', '2048']
        for n in names:
            argv += ['-d', n]
        env = dict(os.environ, REQUESTS_CA_BUNDLE=pb.ca_bundle)
        for attempt in range(3):
            rc, out, err = _run(argv, timeout=timeout, env=env)
            with open(self.path('certbot.log'), 'a') as f:
                f.write('$ %s\n[rc %d]\n%s%s' % (' '.join(argv), rc, out, err))
            # Debian 12's certbot on Python 3.11 crashes on any ACME error
            # (certbot#9539), e.g. one of pebble's deliberate badNonce
            # rejections that it would otherwise retry: try again.
            if rc == 0 or "AttributeError: can't set attribute" not in out + err:
                break
        if rc != 0:
            raise LabError('certbot failed (rc %d):\n%s\n%s' % (rc, (out + err)[-3000:], pb.tail()))
        live = os.path.join(base, 'conf', 'live', names[0])
        r = {k: os.path.join(live, k + '.pem') for k in ('cert', 'chain', 'fullchain', 'privkey')}
        r['dir'] = base
        r['server'] = pb.directory
        r['ca_bundle'] = pb.ca_bundle
        r['attempts'] = attempt + 1     # a crashed attempt may have ordered too
        return r

    def certbot_revoke(self, got, reason='unspecified', timeout=60):
        """Revoke a certificate from certbot() with its account."""
        base = got['dir']
        argv = ['certbot', 'revoke', '--non-interactive', '--server', got['server'],
                '--config-dir', base + '/conf', '--work-dir', base + '/work',
                '--logs-dir', base + '/logs', '--cert-path', got['cert'],
                '--reason', reason, '--no-delete-after-revoke']
        rc, out, err = _run(argv, timeout=timeout,
                            env=dict(os.environ, REQUESTS_CA_BUNDLE=got['ca_bundle']))
        if rc != 0:
            raise LabError('certbot revoke failed (rc %d):\n%s' % (rc, (out + err)[-3000:]))

    # ---- hacme
    def hacme(self, *args, config=None, env=None, timeout=120):
        """Run $HACME_BUILD/acme/hacme [-c config] args...; returns
        (rc, stdout, stderr). Output is also appended to <dir>/hacme.log."""
        binary = exe('acme/hacme')
        argv = [binary] + (['-c', config] if config else []) + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        rc, out, err = _run(argv, timeout=timeout, env=full_env)
        with open(self.path('hacme.log'), 'a') as f:
            f.write('$ %s\n[rc %d]\n%s%s' % (' '.join(argv), rc, out, err))
        return rc, out, err

    # ---- the whole hacme path: agent + HAProxy with the shipped haproxy-conf
    def stack(self, http_port=None, agent=True, agent_port=None, name='haproxy',
              agent_log_level='info'):
        """hacme-spoa (unless agent=False: then HAProxy's agent backend
        points to agent_port, where `hacme` may start its own) and HAProxy
        with haproxy-conf/haproxy.cfg: challenges on 127.0.0.1:http_port
        (give pebble's http_port), TLS on .https_port with the crt-list
        .crt_list (fallback certificate first), runtime API .stats_sock.
        Returns a Stack with .hap, .agent (or None), .agent_port and the
        ports and paths above."""
        conf = os.path.join(SRC, 'haproxy-conf')
        st = Stack()
        st.agent = self.agent(log_level=agent_log_level) if agent else None
        st.agent_port = st.agent.listen_port if agent else (agent_port or self.port())
        certs = self.path(self._unique('certs'))
        rc, out, err = _run([os.path.join(conf, 'make-fallback-cert.sh'), certs], timeout=60)
        if rc != 0:
            raise LabError('make-fallback-cert.sh failed:\n%s%s' % (out, err))
        st.cert_dir = certs
        st.crt_list = os.path.join(certs, 'certs.list')
        st.hap = self.shipped_haproxy(st.agent_port, st.crt_list, http_port, name=name)
        st.http_port, st.https_port = st.hap.http_port, st.hap.https_port
        st.stats_sock, st.env = st.hap.stats_socket, st.hap.env
        return st

    def shipped_haproxy(self, agent_port, crt_list, http_port=None, check_inter='200ms',
                        cfg='haproxy.cfg', env=None, name='haproxy'):
        """haproxy with the shipped haproxy-conf/<cfg> in front of the agent
        at 127.0.0.1:agent_port (a str: that address, e.g. an agent's
        .listen_addr; checked every check_inter): challenges on
        127.0.0.1:http_port (a free port unless given), TLS on .https_port
        with crt_list, the runtime API on .stats_socket; env adds to the
        variables the config reads. Returns the HAProxy with .http_port,
        .https_port and .env."""
        conf = os.path.join(SRC, 'haproxy-conf')
        http_port = http_port or self.port()
        https_port = self.port()
        full = {
            'HACME_HTTP_BIND': '127.0.0.1:%d' % http_port,
            'HACME_HTTPS_BIND': '127.0.0.1:%d' % https_port,
            'HACME_CRT_LIST': crt_list,
            'HACME_SPOE_CONF': os.path.join(conf, 'spoe-acme.conf'),
            'HACME_AGENT_ADDR': (agent_port if isinstance(agent_port, str)
                                 else '127.0.0.1:%d' % agent_port),
            'HACME_AGENT_CHECK_INTER': check_inter,
            'HACME_STATS_SOCKET': self.path(self._unique(name) + '-admin.sock'),
            'HACME_APP_ADDR': '127.0.0.1:%d' % self.port(),
        }
        full.update(env or {})
        p = self.haproxy(os.path.join(conf, cfg), env=full, name=name)
        p.http_port, p.https_port, p.env = http_port, https_port, full
        return p

    def hacme_config(self, pb, stack=None, certs=(), glob=(), ca=(), name='hacme.cfg',
                     agents=None, ca_name='pebble'):
        """Writes a hacme config for pebble pb and stack: global state-dir
        (in the lab), the stack's runtime API, crt-list, cert-dir and agent
        (agents=[] for none: `hacme` then starts its own), preflight-connect
        to the stack's :80; one `ca` section; certs is a list of (name,
        [keyword lines]). glob and ca add lines. Returns the path; the
        state dir is <path>.state."""
        path = self.path(name)
        lines = ['global', '    state-dir %s.state' % path]
        if stack is not None:
            lines += ['    runtime-api unix@%s' % stack.stats_sock,
                      '    crt-list %s' % stack.crt_list,
                      '    cert-dir %s' % stack.cert_dir,
                      '    tls-check 127.0.0.1:%d' % stack.https_port,
                      '    preflight-connect 127.0.0.1:%d' % stack.http_port,
                      '    spoa-listen 127.0.0.1:%d' % stack.agent_port]
            if agents is None and stack.agent is not None:
                agents = [stack.agent.control]
        for a in agents or ():
            lines.append('    agent %s' % a)
        lines += ['    ' + l for l in glob]
        lines += ['ca %s' % ca_name, '    directory %s' % pb.directory,
                  '    ca-bundle %s' % pb.ca_bundle, '    contact mailto:ops@example.com']
        lines += ['    ' + l for l in ca]
        for cname, kw in certs:
            lines.append('cert %s' % cname)
            lines += ['    ' + l for l in kw]
        self.write(name, '\n'.join(lines) + '\n')
        return path

    # ---- shutdown
    def close(self):
        if self._closed:
            return
        self._closing = True
        try:
            for p in reversed(self.procs):
                try:
                    p.stop()
                except Exception as e:  # keep stopping the others
                    _diag('lab: stopping %s: %s' % (p.name, e))
            if self.failed or _any_failed():
                self.print_tails()
            if KEEP:
                _diag('lab: kept %s (HACME_KEEP)' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self._closed = True
            self._closing = False
            if self in _live_labs:
                _live_labs.remove(self)

    def print_tails(self, n=TAIL_LINES):
        logs = [(p.name, p.log_path) for p in self.procs]
        for extra in ('hacme', 'certbot'):
            hl = self.path(extra + '.log')
            if os.path.exists(hl):
                logs.append((extra, hl))
        for name, path in logs:
            t = tail(path, n)
            _diag('---- %s (%s), last lines:' % (name, os.path.basename(path)))
            if t:
                _diag(t)
            else:
                _diag('(empty)')


_newer_bindir = None


def pebble_newer_bindir():
    """Directory holding pebble and pebble-challtestsrv 2.10 from Debian
    sid (tests/lab/platforms.sh pebble: fetched once, then cached)."""
    global _newer_bindir
    if _newer_bindir is None:
        script = os.path.join(SRC, 'tests', 'lab', 'platforms.sh')
        rc, out, err = _run(['sh', script, 'pebble'], timeout=600)
        if rc != 0 or not out.strip():
            raise LabError('%s pebble failed (rc %d):\n%s' % (script, rc, err[-2000:]))
        _newer_bindir = out.strip().split('\n')[-1]
    return _newer_bindir


def _probe_ok(url, ca):
    try:
        st, _, _ = http_request('GET', url, ca=ca, timeout=2)
        return st == 200
    except (OSError, http.client.HTTPException, ssl.SSLError):
        return False


def _redis_ping(p):
    try:
        return p.cmd('PING', timeout=1) == 'PONG'
    except (OSError, LabError):
        return False
