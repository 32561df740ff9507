#!/usr/bin/env python3
"""What `meson install` puts on a machine, checked as installed (DESTDIR):
binaries, man pages (mandoc -T lint, every config keyword of acme/config.c
and every verb of `hacme --help` documented), the systemd unit
(systemd-analyze verify), sysusers.d/tmpfiles.d, the example config
(`hacme check`), the HAProxy snippets; --help/-h/--version/-V of both
programs and `hacme help` without a config."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ['HACME_SRC'], 'tests', 'lab'))
import lab as L  # noqa: E402

SRC, BUILD = os.environ['HACME_SRC'], os.environ['HACME_BUILD']
t = L.TAP()


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    return p.returncode, p.stdout, p.stderr


def config_keywords():
    """(section kinds, keywords) from the keyword table of acme/config.c."""
    text = open(os.path.join(SRC, 'acme', 'config.c')).read()
    kws = sorted(set(re.findall(r'\{\s*"([a-z0-9-]+)",\s*SEC_[A-Z]+', text)))
    m = re.search(r'section_word\[\]\s*=\s*\{([^}]*)\}', text)
    secs = [s for s in re.findall(r'"([a-z]*)"', m.group(1)) if s] if m else []
    return secs, kws


def verbs(help_text):
    out = []
    for line in help_text.splitlines():
        m = re.match(r'^  ([a-z][a-z-]+)\b', line)
        if m:
            out.append(m.group(1))
    return out


dest = tempfile.mkdtemp(prefix='hacme-dist-')
try:
    rc, out, err = run(['meson', 'install', '-C', BUILD, '--no-rebuild', '--quiet',
                        '--destdir', dest])
    t.eq(rc, 0, 'meson install --destdir succeeds' + ('' if rc == 0 else ': ' + err[-500:]))
    rc, out, err = run(['meson', 'introspect', BUILD, '--buildoptions'])
    import json
    opts = {o['name']: o['value'] for o in json.loads(out)}
    prefix = opts['prefix']
    sysconf = opts['sysconfdir'] if opts['sysconfdir'].startswith('/') else prefix + '/' + opts['sysconfdir']
    R = lambda *p: os.path.join(dest, *(x.lstrip('/') for x in p))  # noqa: E731
    bindir, mandir = R(prefix, 'bin'), R(prefix, 'share', 'man')
    share = R(prefix, 'share', 'hacme')
    units = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if f == 'hacme.service']
    want = {
        'hacme': os.path.join(bindir, 'hacme'),
        'hacme-spoa': os.path.join(bindir, 'hacme-spoa'),
        'hacme(8)': os.path.join(mandir, 'man8', 'hacme.8'),
        'hacme-spoa(8)': os.path.join(mandir, 'man8', 'hacme-spoa.8'),
        'hacme.conf(5)': os.path.join(mandir, 'man5', 'hacme.conf.5'),
        'example config': R(sysconf, 'hacme', 'hacme.cfg'),
        'sysusers.d': R('/usr/lib/sysusers.d/hacme.conf'),
        'tmpfiles.d': R('/usr/lib/tmpfiles.d/hacme.conf'),
        'haproxy.cfg snippet': os.path.join(share, 'haproxy.cfg'),
        'spoe-acme.conf': os.path.join(share, 'spoe-acme.conf'),
        'acme.lua': os.path.join(share, 'acme.lua'),
        'make-fallback-cert.sh': os.path.join(share, 'make-fallback-cert.sh'),
    }
    for what, path in want.items():
        t.ok(os.path.isfile(path), 'installed: %s (%s)' % (what, path[len(dest):]))
    t.eq(len(units), 1, 'installed: one hacme.service')
    for exe in ('hacme', 'hacme-spoa', 'make-fallback-cert.sh'):
        p = want[exe]
        t.ok(os.path.exists(p) and os.stat(p).st_mode & 0o111, '%s is executable' % exe)
    if os.path.exists(want['example config']):
        t.eq(stat.S_IMODE(os.stat(want['example config']).st_mode), 0o640,
             'the example config is 0640 (it may hold an EAB key)')

    # man pages: lint clean at warning level
    for page in ('hacme(8)', 'hacme-spoa(8)', 'hacme.conf(5)'):
        rc, out, err = run(['mandoc', '-T', 'lint', '-W', 'warning', want[page]])
        t.ok(rc == 0 and out.strip() == '' and err.strip() == '',
             'mandoc -T lint -W warning: %s is clean%s' % (page, '' if rc == 0 else ': ' + (out + err)[-400:]))
    conf5 = open(want['hacme.conf(5)']).read()
    secs, kws = config_keywords()
    t.ok(len(kws) >= 25 and len(secs) >= 3, 'acme/config.c: %d keywords in %d sections found' % (len(kws), len(secs)))
    missing = [k for k in kws if not re.search(r'(?m)^\.It Ic %s\b' % re.escape(k), conf5)]
    t.eq(missing, [], 'hacme.conf(5) documents every keyword of acme/config.c')
    missing = [s for s in secs if not re.search(r'(?m)^\.Ss %s\b' % re.escape(s), conf5)]
    t.eq(missing, [], 'hacme.conf(5) has a subsection per section kind (%s)' % ' '.join(secs))

    # both programs: help and version
    hacme, spoa = want['hacme'], want['hacme-spoa']
    for prog in (hacme, spoa):
        name = os.path.basename(prog)
        for flag in ('-h', '--help'):
            rc, out, err = run([prog, flag])
            t.ok(rc == 0 and out.startswith('usage: ' + name), '%s %s: usage on stdout, exit 0' % (name, flag))
        for flag in ('-V', '--version'):
            rc, out, err = run([prog, flag])
            t.ok(rc == 0 and re.match(r'^%s \d+\.\d+' % re.escape(name), out), '%s %s: prints the version' % (name, flag))
    rc, out, err = run([hacme, '-c', '/nonexistent/hacme.cfg', 'help'])
    t.ok(rc == 0 and out.startswith('usage: hacme'), 'hacme help: works without a config file')
    rc, out, err = run([hacme, '-c', '/nonexistent/hacme.cfg', 'status'])
    t.ok(rc == 1 and 'nonexistent' in err, 'a verb needing the config still names the missing file')
    vs = verbs(run([hacme, '--help'])[1])
    man8 = open(want['hacme(8)']).read()
    t.ok(len(vs) >= 9, 'hacme --help lists %d verbs' % len(vs))
    missing = [v for v in vs if not re.search(r'(?m)^\.It Cm %s\b' % re.escape(v), man8)]
    t.eq(missing, [], 'hacme(8) documents every verb of hacme --help')
    for opt in re.findall(r'--[a-z][a-z-]+', run([spoa, '--help'])[1]):
        t.ok(re.search(r'(?m)^\.It .*Fl -%s\b' % re.escape(opt[2:]), open(want['hacme-spoa(8)']).read()),
             'hacme-spoa(8) documents %s' % opt)

    # the example config is accepted as installed
    rc, out, err = run([hacme, '-c', want['example config'], 'check'] +
                       (['--offline'] if '--offline' in run([hacme, '--help'])[1] else []))
    t.eq(rc, 0, 'hacme check accepts the installed example config' + ('' if rc == 0 else ': ' + err.strip()))

    # the unit: systemd-analyze verify (ExecStart pointed into DESTDIR, the
    # man pages found there: everything else as installed)
    if units and shutil.which('systemd-analyze'):
        unit = open(units[0]).read()
        m = re.search(r'(?m)^ExecStart=(\S+)', unit)
        t.ok(m and m.group(1) == os.path.join(prefix, 'bin', 'hacme'), 'ExecStart runs <prefix>/bin/hacme')
        for kw in ('Type=exec', 'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID',
                   'User=hacme', 'SupplementaryGroups=haproxy', 'StateDirectory=hacme',
                   'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes',
                   'ProtectHome=yes', 'SystemCallFilter=@system-service'):
            t.ok(re.search(r'(?m)^%s$' % re.escape(kw), unit), 'hacme.service: %s' % kw)
        t.like(unit, r'(?m)^ReadWritePaths=.*/etc/haproxy/certs', 'hacme.service: the cert dir is writable')
        tmp = os.path.join(dest, 'hacme.service')
        with open(tmp, 'w') as f:
            f.write(unit.replace('ExecStart=' + m.group(1), 'ExecStart=' + hacme) if m else unit)
        rc, out, err = run(['systemd-analyze', 'verify', tmp], env=dict(os.environ, MANPATH=mandir))
        t.ok(rc == 0 and err.strip() == '', 'systemd-analyze verify hacme.service' + ('' if rc == 0 else ': ' + err.strip()[-500:]))
    else:
        t.skip('systemd-analyze verify', 'systemd-analyze not installed')
    su = open(want['sysusers.d']).read()
    t.like(su, r'(?m)^u hacme ', 'sysusers.d makes the hacme user')
    t.like(su, r'(?m)^m hacme haproxy$', 'sysusers.d puts hacme in group haproxy (admin.sock is 660 group haproxy)')
finally:
    shutil.rmtree(dest, ignore_errors=True)
sys.exit(t.done())
