#!/usr/bin/env python3
"""`crt-list` naming a directory bound with `bind ... ssl crt DIR` (the
certbot recipe's /etc/haproxy/ssl/), against the real HAProxy 2.6: a new
name is added with `add ssl crt-list DIR DIR/name.pem` and served by SNI at
once, no reload; cert-dir defaults to DIR; a renewal keeps the mode and
group the admin gave the file; a file hacme did not write is never
replaced; remove takes the name out; a restarted HAProxy loads DIR."""

import grp
import os
import re
import shutil
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


def served(port, name):
    try:
        return L.tls_probe(port, name)
    except L.LabError:
        return None


def dir_config(lab, src_cfg):
    """haproxy-conf/haproxy.cfg with `crt "${HACME_CRT_DIR}"` in place of
    the crt-list (what the certbot recipe binds)."""
    text = open(src_cfg).read()
    new = text.replace('ssl crt-list "${HACME_CRT_LIST}"', 'ssl crt "${HACME_CRT_DIR}"')
    assert new != text
    return lab.write('haproxy-dir.cfg', new)


def self_signed(lab, name, path):
    key, crt = lab.path(name + '.key'), lab.path(name + '.crt')
    rc, out, err = L._run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                           'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj',
                           '/CN=' + name, '-addext', 'subjectAltName=DNS:' + name,
                           '-keyout', key, '-out', crt])
    if rc != 0:
        raise L.LabError(err)
    with open(path, 'w') as f:
        f.write(open(key).read() + open(crt).read())
    os.chmod(path, 0o600)


def main(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp)
    conf = os.path.join(L.SRC, 'haproxy-conf')
    crtdir = lab.path('ssl')
    os.makedirs(crtdir)
    # what the admin has: a certificate of the old recipe and the fallback
    tmp = lab.path('fb')
    L._run([os.path.join(conf, 'make-fallback-cert.sh'), tmp])
    shutil.copy(os.path.join(tmp, 'fallback.pem'), os.path.join(crtdir, '000-fallback.pem'))
    foreign = os.path.join(crtdir, 'old.example.pem')
    self_signed(lab, 'old.example', foreign)
    foreign_bytes = open(foreign, 'rb').read()
    agent_port, https = lab.port(), lab.port()
    sock = lab.path('admin.sock')
    env = {'HACME_HTTP_BIND': '127.0.0.1:%d' % hp, 'HACME_HTTPS_BIND': '127.0.0.1:%d' % https,
           'HACME_CRT_DIR': crtdir, 'HACME_SPOE_CONF': os.path.join(conf, 'spoe-acme.conf'),
           'HACME_AGENT_ADDR': '127.0.0.1:%d' % agent_port, 'HACME_AGENT_CHECK_INTER': '200ms',
           'HACME_STATS_SOCKET': sock, 'HACME_APP_ADDR': '127.0.0.1:%d' % lab.port()}
    hcfg = dir_config(lab, os.path.join(conf, 'haproxy.cfg'))
    hap = lab.haproxy(hcfg, env=env)
    pid = hap.info().get('Pid')
    cfg = lab.write('hacme.cfg', '\n'.join([
        'global', '    state-dir %s' % lab.path('state'),
        '    runtime-api unix@%s' % sock,
        '    crt-list %s/' % crtdir,
        '    tls-check 127.0.0.1:%d' % https,
        '    preflight-connect 127.0.0.1:%d' % hp,
        '    spoa-listen 127.0.0.1:%d' % agent_port,
        'ca pebble', '    directory %s' % pb.directory, '    ca-bundle %s' % pb.ca_bundle,
        'cert new.example', 'cert old.example', '']))

    rc, out, err = lab.hacme('issue', 'new.example', config=cfg)
    t.eq(rc, 0, 'issue with crt-list DIR: exit 0' + ('' if rc == 0 else ': ' + err.strip()[-400:]))
    pem = os.path.join(crtdir, 'new.example.pem')
    t.ok(os.path.isfile(pem), 'cert-dir defaults to the directory: %s written' % pem)
    info = served(https, 'new.example')
    t.ok(info is not None and 'Pebble' in info['issuer'], 'the new name is served by SNI at once')
    t.eq(hap.info().get('Pid'), pid, 'same HAProxy process (no reload)')
    rc, out, err = L._run(['socat', '-', 'UNIX-CONNECT:' + sock], input=b'show ssl crt-list %s\n' % crtdir.encode())
    t.ok(pem in out, '`show ssl crt-list DIR` lists %s' % os.path.basename(pem))
    s0 = info and info['serial']

    # the admin gives the file another mode and group: a renewal keeps them
    gid = grp.getgrnam('haproxy').gr_gid if 'haproxy' in [g.gr_name for g in grp.getgrall()] else os.getgid()
    os.chown(pem, -1, gid)
    os.chmod(pem, 0o640)
    rc, out, err = lab.hacme('renew', '--force', 'new.example', config=cfg)
    st = os.stat(pem)
    t.eq(rc, 0, 'renew --force: exit 0')
    t.ok(stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == gid,
         'the renewed file keeps mode 0640 and its group (%o, %d)' % (stat.S_IMODE(st.st_mode), st.st_gid))
    info = served(https, 'new.example')
    t.ok(info is not None and info['serial'] != s0, 'the renewed certificate is served')

    # a file hacme did not write: never replaced
    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('issue', 'old.example', config=cfg)
    t.ok(rc != 0 and 'hacme did not write it' in err and foreign in err,
         'a file hacme did not write is refused, named: %s' % err.strip()[-200:])
    t.eq(pb.orders_created(mark), 0, 'and refused before ordering: no order spent on it')
    t.eq(open(foreign, 'rb').read(), foreign_bytes, 'the foreign file is unchanged')
    info = served(https, 'old.example')
    t.ok(info is not None and info['subject'].endswith('old.example') and 'Pebble' not in info['issuer'],
         'HAProxy still serves the old certificate for that name')

    # restart: DIR loads with hacme's file in it
    hap.stop()
    hap = lab.haproxy(hcfg, env=env, name='haproxy2')
    info = served(https, 'new.example')
    t.ok(info is not None and 'Pebble' in info['issuer'], 'a restarted HAProxy loads the file from DIR')
    rc, out, err = lab.hacme('status', config=cfg)
    t.like(out, r'(?m)^new\.example\s+ecdsa-p256\s.*\s1/1\s', 'status: new.example deployed 1/1')

    # an older certificate for the same name, loaded first: HAProxy's `show
    # ssl cert` still shows ours, clients get the other one
    shadow = os.path.join(crtdir, '000-shadow.pem')
    self_signed(lab, 'new.example', shadow)
    hap.stop()
    hap = lab.haproxy(hcfg, env=env, name='haproxy3')
    info = served(https, 'new.example')
    if info is not None and 'Pebble' not in info['issuer']:
        rc, out, err = lab.hacme('status', config=cfg)
        t.like(out, r'(?m)^new\.example\s+ecdsa-p256\s.*\s0/1\s+tls-check 127\.0\.0\.1:%d serves serial' % https,
               'status: DEPLOYED 0/1 when the handshake by SNI shows another serial, and says so')
    else:
        t.skip('status by SNI', 'this HAProxy serves the newest file for a duplicate name')
    os.unlink(shadow)
    hap.stop()
    hap = lab.haproxy(hcfg, env=env, name='haproxy4')

    # remove
    rc, out, err = lab.hacme('remove', 'new.example', config=cfg)
    t.eq(rc, 0, 'remove: exit 0' + ('' if rc == 0 else ': ' + err.strip()[-300:]))
    t.ok(not os.path.exists(pem), 'remove: the file is gone from DIR')
    info = served(https, 'new.example')
    t.ok(info is not None and 'Pebble' not in info['issuer'], 'remove: HAProxy no longer serves it')
    t.ok(os.path.exists(foreign), 'remove: the foreign file stays')


with L.Lab('crtdir') as lab:
    main(lab)
sys.exit(t.done())
