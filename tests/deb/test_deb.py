#!/usr/bin/env python3
"""The Debian package as a user gets it: `dpkg -i` of the .deb that `make
deb` built, then the installed files checked where Debian puts them
(binaries, man pages, unit, conffile, the hacme user and its permissions:
the cert dir, the crt-list, and a HAProxy stats socket made by Debian's own
`global` section, mode 660 group haproxy).

usage: test_deb.py PATH.deb   (root; prints TAP, then 'N passed, N failed')"""

import grp
import signal
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
from recipe import DEBIAN, certbot, localize, migrated  # noqa: E402

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


def unit_exec(unit_path):
    """ExecStart, User, Group, SupplementaryGroups, UMask of the unit."""
    u = {}
    for line in open(unit_path):
        m = re.match(r'^(ExecStart|User|Group|SupplementaryGroups|UMask)=(.*)$', line.strip())
        if m:
            u[m.group(1)] = m.group(2)
    return u


def done_when(lab):
    """The issue's "done when": the package installed, /etc/hacme/hacme.cfg
    edited as the README says, `hacme import certbot` of lineages certbot
    made against pebble, the service's ExecStart run as the unit runs it
    (user hacme, groups hacme + haproxy, its umask), the certificates served
    by SNI, no new order."""
    cfg_path = '/etc/hacme/hacme.cfg'
    saved = open(cfg_path).read()
    st_cfg = os.stat(cfg_path)
    ssl = '/etc/haproxy/ssl'
    made_ssl = not os.path.exists(ssl)
    bundle = '/etc/hacme/test-pebble-ca.pem'
    sockdir = None
    try:
        hp = lab.port()
        pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
        le = lab.path('letsencrypt')
        got = {n: certbot(lab, pb, le, n, kt) for n, kt in (('rsa.example', 'rsa'), ('ec.example', 'ecdsa'))}
        serial = {n: L.cert_info(open(g['fullchain']).read())['serial'] for n, g in got.items()}
        if made_ssl:
            os.makedirs(ssl)
        for n, g in got.items():   # the recipe's post-hook
            with open(os.path.join(ssl, n + '.pem'), 'w') as f:
                f.write(open(g['fullchain']).read() + open(g['privkey']).read())
        # README step 1: the directory to hacme
        subprocess.run(['chown', '-R', 'hacme:haproxy', ssl], check=True)
        os.chmod(ssl, 0o2750)

        # HAProxy with the README's migrated config, Debian's global
        rc, after, found = migrated(lab)
        t.ok(found and rc == 0, 'README\'s haproxy.cfg change applies to the recipe')
        sockdir = tempfile.mkdtemp(prefix='hacme-debtest-', dir='/run')
        os.chown(sockdir, 0, grp.getgrnam('haproxy').gr_gid)
        os.chmod(sockdir, 0o2775)
        ports = {'http': hp, 'https': lab.port(), 'agent': lab.port(), 'app': lab.port(),
                 'ssl': ssl, 'sock': os.path.join(sockdir, 'admin.sock')}
        hcfg = lab.write('haproxy.cfg', localize(DEBIAN + after, lab, ports).replace(
            os.path.join(L.SRC, 'haproxy-conf', 'spoe-acme.conf'), '/usr/share/hacme/spoe-acme.conf'))
        hap = lab.haproxy(hcfg, stats_socket=ports['sock'], name='haproxy-deb')
        pid = hap.info().get('Pid')

        # README step 2: edit /etc/hacme/hacme.cfg (test-only: the CA is pebble
        # on loopback, the self-check and the agent on this test's ports)
        shutil.copy(pb.ca_bundle, bundle)
        os.chmod(bundle, 0o644)
        text = saved
        text = text.replace('    crt-list        /etc/haproxy/certs/certs.list\n', '    crt-list        /etc/haproxy/ssl\n')
        text = text.replace('    cert-dir        /etc/haproxy/certs\n', '')
        text = text.replace('unix@/run/haproxy/admin.sock', 'unix@' + ports['sock'])
        text = text.replace('tls-check       127.0.0.1:443', 'tls-check       127.0.0.1:%d' % ports['https'])
        text = text.replace('spoa-listen     127.0.0.1:12345', 'spoa-listen     127.0.0.1:%d\n    preflight-connect 127.0.0.1:%d' % (ports['agent'], hp))
        text = text.replace('    directory       https://acme-v02.api.letsencrypt.org/directory\n',
                            '    directory       %s\n    ca-bundle       %s\n' % (pb.directory, bundle))
        t.ok(text.count('\n') > saved.count('\n') - 2 and 'crt-list        /etc/haproxy/ssl' in text and pb.directory in text,
             'edited /etc/hacme/hacme.cfg as the README says')
        with open(cfg_path, 'w') as f:
            f.write(text)
        mark = pb.proc.log_mark()

        # README step 3: as root
        rc, out, err = run(['/usr/bin/hacme', 'import', 'certbot', '--config-dir', os.path.join(le, 'conf')])
        t.eq(rc, 0, 'sudo hacme import certbot: exit 0' + ('' if rc == 0 else ': ' + (out + err)[-600:]))
        owners = set()
        for r, ds, fs in os.walk('/var/lib/hacme'):
            for x in ds + fs:
                owners.add(pwd.getpwuid(os.lstat(os.path.join(r, x)).st_uid).pw_name)
        t.eq(owners, {'hacme'}, 'after the import, /var/lib/hacme belongs to hacme')
        st = os.stat(cfg_path)
        t.ok(stat.S_IMODE(st.st_mode) == stat.S_IMODE(st_cfg.st_mode) and st.st_gid == st_cfg.st_gid,
             'the import kept the config\'s mode and group')

        # the service's ExecStart, run as the unit runs it
        u = unit_exec('/lib/systemd/system/hacme.service')
        argv = u['ExecStart'].split()
        groups = ','.join([u.get('Group', 'hacme')] + u.get('SupplementaryGroups', '').split())
        umask = u.get('UMask', '0022')
        svc = lab.spawn('hacme-service', ['setpriv', '--reuid=' + u['User'], '--regid=' + u.get('Group', u['User']),
                                          '--groups=' + groups, '--reset-env', 'sh', '-c',
                                          'umask %s && exec "$@"' % umask, 'sh'] + argv,
                        ready=r'hacme run: \d+ certificates', timeout=30)
        for n in serial:
            try:
                i = L.tls_probe(ports['https'], n)
            except L.LabError:
                i = None
            t.eq(i and i['serial'], serial[n], 'served by SNI: certbot\'s %s, from /etc/haproxy/ssl' % n)
        time.sleep(3)   # a restart orders what it lacks at once
        t.eq(pb.orders_created(mark), 0, 'no new order (import, then the service)')
        rc, out, err = run(['/usr/bin/hacme', 'status'], user='hacme')
        t.ok(rc == 0 and all(re.search(r'(?m)^%s\s.*\s1/1\s' % re.escape(n), out) for n in serial),
             'hacme status as hacme: both deployed 1/1' + ('' if rc == 0 else ': ' + err[-300:]))
        svc.kill(signal.SIGTERM)
        t.eq(svc.wait(15), 0, 'SIGTERM: the service exits 0')
        t.eq(hap.info().get('Pid'), pid, 'HAProxy was never reloaded')
    finally:
        with open(cfg_path, 'w') as f:
            f.write(saved)
        os.chown(cfg_path, st_cfg.st_uid, st_cfg.st_gid)
        os.chmod(cfg_path, stat.S_IMODE(st_cfg.st_mode))
        if os.path.exists(bundle):
            os.unlink(bundle)
        if sockdir is not None:
            shutil.rmtree(sockdir, ignore_errors=True)
        if made_ssl:
            shutil.rmtree(ssl, ignore_errors=True)
        for x in os.listdir('/var/lib/hacme'):
            p = os.path.join('/var/lib/hacme', x)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)


def main():
    if len(sys.argv) != 2 or os.geteuid() != 0:
        print('usage (as root): test_deb.py PATH.deb', file=sys.stderr)
        return 2
    t0 = time.time()
    smoke(sys.argv[1])
    with L.Lab('deb') as lab:
        admin_socket(lab)
    with L.Lab('deb-done') as lab:
        done_when(lab)
    rc = t.done()
    print('test-deb: %.0f s (after the build)' % (time.time() - t0))
    print('%d passed, %d failed' % (t.n - t.failed, t.failed))
    return rc


sys.exit(main())
