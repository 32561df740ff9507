#!/usr/bin/env python3
"""Log lines under systemd: with JOURNAL_STREAM naming stderr (what
systemd sets for StandardError=journal), each line of hacme and
hacme-spoa starts with its syslog priority (<3> error ... <7> debug), so
`journalctl -p warning` works; without it, or when stderr is not that
stream, no prefix. The CLI prints notices and above by default, -v more."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ['HACME_SRC'], 'tests', 'lab'))
import lab as L  # noqa: E402

BUILD = os.environ['HACME_BUILD']
t = L.TAP()


def run_spoa(tmp, journal):
    """hacme-spoa with stderr to a file; JOURNAL_STREAM = that file (or
    another one). Returns its stderr."""
    err = os.path.join(tmp, 'stderr-%s' % journal)
    other = os.path.join(tmp, 'other')
    open(other, 'w').close()
    with open(err, 'w') as f:
        st = os.fstat(f.fileno()) if journal == 'match' else os.stat(other)
        env = dict(os.environ)
        env.pop('JOURNAL_STREAM', None)
        if journal != 'unset':
            env['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen([os.path.join(BUILD, 'spoa', 'hacme-spoa'), '--listen', '127.0.0.1:%d' % port,
                              '--control', 'unix@' + os.path.join(tmp, 'c-%s.sock' % journal),
                              '--log-level', 'debug'], stderr=f, env=env)
        deadline = time.time() + 10
        while time.time() < deadline and os.path.getsize(err) == 0:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    return open(err).read()


tmp = tempfile.mkdtemp(prefix='hacme-journal-')
out = run_spoa(tmp, 'match')
lines = [l for l in out.splitlines() if l]
t.ok(lines and all(re.match(r'^<[3-7]>\d{4}-', l) for l in lines),
     'JOURNAL_STREAM = stderr: every line starts with <N> (%d lines)' % len(lines))
t.ok(any(l.startswith('<5>') and ' notice: ' in l for l in lines), 'notice lines carry <5>')
t.ok(all(('<%d>' % (3 + ['error', 'warning', 'notice', 'info', 'debug'].index(re.search(r' (error|warning|notice|info|debug): ', l).group(1)))) == l[:3]
         for l in lines if re.search(r' (error|warning|notice|info|debug): ', l)),
     'each prefix matches its level (error 3, warning 4, notice 5, info 6, debug 7)')
for mode in ('unset', 'other'):
    out = run_spoa(tmp, mode)
    lines = [l for l in out.splitlines() if l]
    t.ok(lines and not any(l.startswith('<') for l in lines),
         'JOURNAL_STREAM %s: no prefix' % ('unset' if mode == 'unset' else 'naming another stream'))

# the CLI: notices by default, -v for more
cfg = os.path.join(tmp, 'h.cfg')
with open(cfg, 'w') as f:
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    f.write('global\n  state-dir %s/state\n  spoa-listen 127.0.0.1:%d\nca x\n  directory https://127.0.0.1:9/dir\n'
            % (tmp, s.getsockname()[1]))
    s.close()
hacme = os.path.join(BUILD, 'acme', 'hacme')
q = subprocess.run([hacme, '-c', cfg, 'issue', 'nothing.example'], capture_output=True, text=True, timeout=60)
v = subprocess.run([hacme, '-v', '-c', cfg, 'issue', 'nothing.example'], capture_output=True, text=True, timeout=60)
t.ok(' info: ' not in q.stderr and ' debug: ' not in q.stderr, 'a CLI verb prints no info/debug lines by default')
t.ok(' info: ' in v.stderr or ' debug: ' in v.stderr, 'with -v it does: %s' % v.stderr.strip().splitlines()[:1])
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
