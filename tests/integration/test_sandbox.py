#!/usr/bin/env python3
"""hacme.service's SystemCallFilter is sufficient: `hacme run` (and the
hacme-spoa child it starts) runs under strace while it orders a
certificate from pebble, deploys it into HAProxy, re-reads its config on
SIGHUP and stops on SIGTERM; every system call seen must be in the set the
unit's SystemCallFilter= lines allow, expanded by `systemd-analyze
syscall-filter` (the same tables systemd compiles into the seccomp filter)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

SRC = os.environ.get('HACME_SRC', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.join(SRC, 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()
_groups = {}


def expand(item):
    """The syscalls of a name or @group, recursively."""
    if not item.startswith('@'):
        return {item}
    if item not in _groups:
        out = subprocess.run(['systemd-analyze', 'syscall-filter', item], capture_output=True,
                             text=True, check=True).stdout
        names = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            names |= expand(line)
        _groups[item] = names
    return _groups[item]


def unit_filter(unit_text):
    """The allowed set of a unit's SystemCallFilter= lines, in order (an
    allow list first, then '~' lines remove)."""
    allowed = None
    for m in re.finditer(r'(?m)^SystemCallFilter=(.*)$', unit_text):
        val = m.group(1).strip()
        deny = val.startswith('~')
        items = set()
        for w in val.lstrip('~').split():
            items |= expand(w)
        if deny:
            allowed = (allowed or set()) - items
        else:
            allowed = items if allowed is None else allowed | items
    return allowed or set()


def traced(path):
    seen = set()
    with open(path, errors='replace') as f:
        for line in f:
            m = re.match(r'^\d+\s+([a-z0-9_]+)\(', line)
            if m:
                seen.add(m.group(1))
    return seen


def main(lab):
    unit = open(os.path.join(SRC, 'dist', 'hacme.service.in')).read()
    allowed = unit_filter(unit)
    t.ok(len(allowed) > 150 and 'connect' in allowed and 'reboot' not in allowed,
         'the unit\'s SystemCallFilter expands to %d system calls (connect in, reboot out)' % len(allowed))

    hp = lab.port()
    pb = lab.pebble(http_port=hp)
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, certs=[('sandboxed', ['domains sandboxed.example'])], agents=[])
    trace = lab.path('strace.out')
    # In the ASan build (make test-sanitize) LeakSanitizer's exit check needs
    # ptrace, which strace holds: off for the traced processes only.
    env = {}
    if os.environ.get('ASAN_OPTIONS'):
        env['ASAN_OPTIONS'] = os.environ['ASAN_OPTIONS'] + ':detect_leaks=0'
    run = lab.spawn('hacme-run', ['strace', '-f', '-qq', '-o', trace, L.exe('acme/hacme'),
                                  '-c', cfg, 'run'], env=env, ready=r'hacme run: \d+ certificates',
                    timeout=60)
    info = None
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            info = L.tls_probe(st.https_port, 'sandboxed.example')
            if info and 'Pebble' in (info.get('issuer') or ''):
                break
        except L.LabError:
            pass
        time.sleep(0.3)
    t.ok(info is not None and 'Pebble' in (info.get('issuer') or ''),
         'under strace, hacme run ordered and deployed a certificate (served by SNI)')
    # the traced hacme: the child of strace in the lab's session
    pids = [p for p in run.session_pids() if p != run.pid and
            open('/proc/%d/cmdline' % p, 'rb').read().split(b'\0')[0].endswith(b'/hacme')]
    t.eq(len(pids), 1, 'the traced hacme run process found')
    if pids:
        mark = run.log_mark()
        os.kill(pids[0], signal.SIGHUP)
        try:
            run.wait_log(r'SIGHUP: .* reloaded', timeout=15, since=mark)
            ok = True
        except L.LabError:
            ok = False
        t.ok(ok, 'SIGHUP: the config is read again')
        os.kill(pids[0], signal.SIGTERM)
    rc = run.wait(timeout=30)
    t.eq(rc, 0, 'SIGTERM: hacme run (under strace) exits 0')
    seen = traced(trace)
    t.ok(len(seen) >= 40 and {'connect', 'execve', 'epoll_wait', 'rename'} <= seen,
         'the trace covers the service\'s work: %d distinct system calls, connect, execve (the agent), rename' % len(seen))
    extra = sorted(seen - allowed)
    t.eq(extra, [], 'every system call made is allowed by hacme.service\'s SystemCallFilter')
    if extra:
        t.diag('not allowed: ' + ' '.join(extra))


def can_trace():
    try:
        return subprocess.run(['strace', '-f', '-qq', '-o', '/dev/null', 'true'],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


if shutil.which('strace') is None or shutil.which('systemd-analyze') is None:
    t.skip('sandbox', 'strace or systemd-analyze not installed')
elif not can_trace():
    t.skip('sandbox', 'strace cannot trace here (no ptrace in this container)')
else:
    with L.Lab('sandbox') as lab:
        main(lab)
sys.exit(t.done())
