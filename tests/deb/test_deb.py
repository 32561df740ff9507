#!/usr/bin/env python3
"""The Debian package as a user gets it: `dpkg -i` of the .deb that `make
deb` built, then the installed files checked where Debian puts them
(binaries, man pages, unit, conffile, the hacme user and its permissions:
the cert dir, the crt-list, and a HAProxy stats socket made by Debian's own
`global` section, mode 660 group haproxy).

usage: test_deb.py PATH.deb   (root; prints TAP, then 'N passed, N failed')"""

import grp
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


def run(argv, user=None, timeout=120, **kw):
    if user is not None:
        argv = ['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups',
                '--reset-env'] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def as_hacme(code):
    """Python code run as the hacme user with its groups (as the unit does)."""
    return run([sys.executable, '-c', code], user='hacme')


def smoke(deb):
    rc, out, err = run(['dpkg', '-i', deb], timeout=300)
    t.eq(rc, 0, 'dpkg -i %s' % os.path.basename(deb) + ('' if rc == 0 else ': ' + (out + err)[-800:]))
    rc, out, err = run(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'hacme'])
    t.like(out, r'^install ok installed ', 'dpkg: hacme is installed (%s)' % out)
    for prog in ('/usr/bin/hacme', '/usr/bin/hacme-spoa'):
        rc, out, err = run([prog, '--version'])
        t.ok(rc == 0 and out.startswith(os.path.basename(prog) + ' '), '%s --version: %s' % (prog, out.strip()))
    rc, out, err = run(['/usr/bin/hacme', 'help'])
    t.ok(rc == 0 and 'import certbot' in out or rc == 0 and 'usage: hacme' in out, 'hacme help')
    for page, sect in (('hacme', '8'), ('hacme-spoa', '8'), ('hacme.conf', '5')):
        rc, out, err = run(['man', '-w', sect, page])
        t.ok(rc == 0 and out.strip().startswith('/usr/share/man/man%s/%s.%s' % (sect, page, sect)),
             'man -w %s %s: %s' % (sect, page, out.strip() or err.strip()))
    rc, out, err = run(['man', '--warnings', '-P', 'cat', '5', 'hacme.conf'], env=dict(os.environ, MANWIDTH='80'))
    t.ok(rc == 0 and 'notify-command' in out and 'crt-list' in out, 'man hacme.conf renders (notify-command, crt-list)')
    rc, out, err = run(['systemd-analyze', 'verify', '/lib/systemd/system/hacme.service'])
    t.ok(rc == 0 and err.strip() == '', 'systemd-analyze verify /lib/systemd/system/hacme.service' +
         ('' if rc == 0 and not err.strip() else ': ' + err.strip()[-600:]))
    rc, out, err = run(['dpkg-query', '-W', '-f', '${Conffiles}', 'hacme'])
    t.like(out, r'/etc/hacme/hacme\.cfg [0-9a-f]{32}', 'dpkg: /etc/hacme/hacme.cfg is a conffile')
    for f in ('/usr/share/hacme/haproxy.cfg', '/usr/share/hacme/spoe-acme.conf',
              '/usr/share/hacme/make-fallback-cert.sh', '/usr/lib/sysusers.d/hacme.conf',
              '/usr/lib/tmpfiles.d/hacme.conf'):
        t.ok(os.path.isfile(f), 'installed: %s' % f)

    # the hacme user and what it may touch
    try:
        pw = pwd.getpwnam('hacme')
        groups = [g.gr_name for g in grp.getgrall() if 'hacme' in g.gr_mem]
    except KeyError:
        pw, groups = None, []
    t.ok(pw is not None and pw.pw_shell in ('/usr/sbin/nologin', '/bin/false'),
         'a system user hacme exists, without a login shell')
    t.ok('haproxy' in groups, 'hacme is in group haproxy (%s)' % ' '.join(groups))
    st = os.stat('/etc/hacme/hacme.cfg')
    t.ok(stat.S_IMODE(st.st_mode) == 0o640 and grp.getgrgid(st.st_gid).gr_name == 'hacme',
         '/etc/hacme/hacme.cfg: 0640 root:hacme (it may hold an EAB key)')
    st = os.stat('/var/lib/hacme')
    t.ok(pw is not None and st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700,
         '/var/lib/hacme: hacme, 0700')
    rc, out, err = run(['/usr/bin/hacme', '-c', '/etc/hacme/hacme.cfg', 'check', '--offline'], user='hacme')
    if rc != 0 and 'unknown' in err and '--offline' in err:
        rc, out, err = run(['/usr/bin/hacme', '-c', '/etc/hacme/hacme.cfg', 'check'], user='hacme')
    t.eq(rc, 0, 'as hacme: hacme check accepts the shipped /etc/hacme/hacme.cfg' + ('' if rc == 0 else ': ' + err.strip()))
    for f in ('/etc/haproxy/certs/fallback.pem', '/etc/haproxy/certs/certs.list'):
        t.ok(os.path.isfile(f), 'postinst made %s' % f)
    rc, out, err = as_hacme(
        'import os\n'
        'p = "/etc/haproxy/certs/.probe"\n'
        'open(p, "w").write("x"); os.rename(p, p + "2"); os.unlink(p + "2")\n'
        'open("/etc/haproxy/certs/certs.list", "a").close()\n')
    t.eq(rc, 0, 'as hacme: the cert dir and the crt-list are writable' + ('' if rc == 0 else ': ' + err.strip()[-300:]))
    rc, out, err = run(['haproxy', '-c', '-f', '/dev/stdin'],
                       input='global\ndefaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n'
                             'frontend f\n  bind 127.0.0.1:8443 ssl crt-list /etc/haproxy/certs/certs.list\n')
    t.eq(rc, 0, 'haproxy -c accepts the crt-list postinst wrote' + ('' if rc == 0 else ': ' + (out + err)[-300:]))


def debian_global(sock):
    """Debian's packaged `global` section (from /usr/share/haproxy or the
    shipped /etc/haproxy/haproxy.cfg) with only the socket path moved."""
    text = None
    for p in ('/etc/haproxy/haproxy.cfg',):
        if os.path.exists(p):
            text = open(p).read()
    m = re.search(r'(?ms)^global\n(.*?)^\S', text or '')
    body = m.group(1) if m else ''
    if 'stats socket /run/haproxy/admin.sock mode 660 level admin' not in body:
        return None
    return 'global\n' + body.replace('/run/haproxy/admin.sock', sock)


def admin_socket(lab):
    # a directory like Debian's /run/haproxy (haproxy:haproxy 2775: the
    # setgid bit gives the socket its group haproxy)
    sockdir = tempfile.mkdtemp(prefix='hacme-debtest-', dir='/run')
    ref = os.stat('/run/haproxy') if os.path.isdir('/run/haproxy') else None
    hg = grp.getgrnam('haproxy').gr_gid
    os.chown(sockdir, ref.st_uid if ref else 0, ref.st_gid if ref else hg)
    os.chmod(sockdir, stat.S_IMODE(ref.st_mode) if ref else 0o2775)
    try:
        sock = os.path.join(sockdir, 'admin.sock')
        g = debian_global(sock)
        if g is None:
            t.skip('admin.sock of Debian\'s global section', '/etc/haproxy/haproxy.cfg is not Debian\'s stock file')
            return
        cfg = lab.write('debian-haproxy.cfg', g + '\ndefaults\n    mode http\n    timeout client 5s\n'
                        '    timeout server 5s\n    timeout connect 5s\n')
        lab.haproxy(cfg, stats_socket=sock, name='debian-haproxy')
        st = os.stat(sock)
        t.ok(stat.S_IMODE(st.st_mode) == 0o660 and grp.getgrgid(st.st_gid).gr_name == 'haproxy',
             'Debian\'s stats socket line makes admin.sock 0660 group haproxy')
        rc, out, err = as_hacme(
            'import socket\n'
            's = socket.socket(socket.AF_UNIX); s.connect(%r); s.sendall(b"show info\\n")\n'
            'b = b""\n'
            'while True:\n'
            '    d = s.recv(65536)\n'
            '    if not d: break\n'
            '    b += d\n'
            'print(b.decode())\n' % sock)
        t.ok(rc == 0 and 'Name: HAProxy' in out, 'as hacme: `show info` through admin.sock (group haproxy)' +
             ('' if rc == 0 else ': ' + err.strip()[-300:]))
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def main():
    if len(sys.argv) != 2 or os.geteuid() != 0:
        print('usage (as root): test_deb.py PATH.deb', file=sys.stderr)
        return 2
    t0 = time.time()
    smoke(sys.argv[1])
    with L.Lab('deb') as lab:
        admin_socket(lab)
    rc = t.done()
    print('test-deb: %.0f s (after the build)' % (time.time() - t0))
    print('%d passed, %d failed' % (t.n - t.failed, t.failed))
    return rc


sys.exit(main())
