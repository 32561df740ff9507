#!/usr/bin/env python3
"""`hacme import certbot` on lineages that Debian's certbot made against
pebble (one RSA, one ECDSA, one config dir, as the classic recipe leaves
them), with the recipe's HAProxy side: `bind ... ssl crt DIR` holding the
concatenated PEMs. After the import: cert sections in hacme.cfg, the same
certificates (serials) and keys in the state dir, certbot's account kept,
the PEMs in DIR taken over and served, what is left to do printed, and no
order placed - not by the import, not by `hacme run`; a forced renewal
then goes through the imported account and replaces the file in DIR."""

import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402
from recipe import certbot  # noqa: E402

t = L.TAP()


def served(port, name):
    try:
        return L.tls_probe(port, name)
    except L.LabError:
        return None


def recipe_haproxy(lab, crtdir, hp, https, agent_port, sock):
    conf = os.path.join(L.SRC, 'haproxy-conf')
    text = open(os.path.join(conf, 'haproxy.cfg')).read()
    text = text.replace('ssl crt-list "${HACME_CRT_LIST}"', 'ssl crt "${HACME_CRT_DIR}"')
    cfg = lab.write('haproxy.cfg', text)
    env = {'HACME_HTTP_BIND': '127.0.0.1:%d' % hp, 'HACME_HTTPS_BIND': '127.0.0.1:%d' % https,
           'HACME_CRT_DIR': crtdir, 'HACME_SPOE_CONF': os.path.join(conf, 'spoe-acme.conf'),
           'HACME_AGENT_ADDR': '127.0.0.1:%d' % agent_port, 'HACME_AGENT_CHECK_INTER': '200ms',
           'HACME_STATS_SOCKET': sock, 'HACME_APP_ADDR': '127.0.0.1:%d' % lab.port()}
    return lab.haproxy(cfg, env=env)


def main(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    base = lab.path('letsencrypt')
    names = {'rsa.example': 'rsa', 'ec.example': 'ecdsa'}
    got = {n: certbot(lab, pb, base, n, kt) for n, kt in names.items()}
    conf_dir = os.path.join(base, 'conf')
    t.ok(all(os.path.islink(g['fullchain']) for g in got.values()),
         'certbot made two lineages (live/ symlinks into archive/)')
    # the recipe's post-hook: cat fullchain privkey > /etc/haproxy/ssl/NAME.pem
    crtdir = lab.path('ssl')
    os.makedirs(crtdir)
    for n, g in got.items():
        with open(os.path.join(crtdir, n + '.pem'), 'w') as f:
            f.write(open(g['fullchain']).read() + open(g['privkey']).read())
    serial = {n: L.cert_info(open(g['fullchain']).read())['serial'] for n, g in got.items()}

    agent_port, https, sock = lab.port(), lab.port(), lab.path('admin.sock')
    hap = recipe_haproxy(lab, crtdir, hp, https, agent_port, sock)
    pid = hap.info().get('Pid')
    for n in names:
        i = served(https, n)
        t.eq(i and i['serial'], serial[n], 'before: HAProxy serves certbot\'s %s from the directory' % n)
    state = lab.path('state')
    cfg = lab.write('hacme.cfg', '\n'.join([
        'global', '    state-dir %s' % state, '    runtime-api unix@%s' % sock,
        '    crt-list %s' % crtdir, '    tls-check 127.0.0.1:%d' % https,
        '    preflight-connect 127.0.0.1:%d' % hp, '    spoa-listen 127.0.0.1:%d' % agent_port,
        'ca pebble', '    directory %s' % pb.directory, '    ca-bundle %s' % pb.ca_bundle, '']), mode=0o640)

    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('import', 'certbot', '--config-dir', conf_dir, config=cfg)
    t.eq(rc, 0, 'hacme import certbot: exit 0' + ('' if rc == 0 else ': ' + (out + err)[-600:]))
    text = open(cfg).read()
    t.like(text, r'(?m)^cert rsa\.example\n\s+domains\s+rsa\.example\n\s+key\s+rsa2048\n\s+ca\s+pebble$',
           'a cert section for the RSA lineage: domains, key rsa2048, ca pebble (same directory)')
    t.like(text, r'(?m)^cert ec\.example\n\s+domains\s+ec\.example\n\s+key\s+ecdsa-p256\n',
           'a cert section for the ECDSA lineage: key ecdsa-p256')
    t.eq(oct(os.stat(cfg).st_mode & 0o777), '0o640', 'the config keeps its mode')
    rc2, out2, err2 = lab.hacme('check', config=cfg)
    t.eq(rc2, 0, 'hacme check accepts the config import wrote')
    for n in names:
        meta = json.load(open(os.path.join(state, 'certs', n, 'meta.json')))
        t.eq(meta.get('serial', '').upper().lstrip('0'), serial[n], '%s: the state dir holds certbot\'s certificate' % n)
        key = open(os.path.join(state, 'certs', n, 'key.pem')).read()
        t.eq(key.strip(), open(got[n]['privkey']).read().strip(), '%s: and its key' % n)
    t.ok(os.path.exists(os.path.join(state, 'account', 'pebble', 'key.pem')) and 'account' in out and 'imported' in out,
         'certbot\'s account key imported')
    regr = [os.path.join(r, 'regr.json') for r, d, f in os.walk(os.path.join(conf_dir, 'accounts')) if 'regr.json' in f]
    acct = json.load(open(os.path.join(state, 'account', 'pebble', 'account.json')))
    t.ok(regr and acct.get('url') == json.load(open(regr[0])).get('uri'), 'the account URL is certbot\'s')
    t.like(out, r'certbot\.timer', 'prints what is left: disable certbot\'s timer')
    t.like(out, r'side-port backend', 'prints what is left: remove the side-port backend')
    t.like(out, r'rsa\.example\.pem is hacme\'s from now on', 'the PEM of the post-hook is taken over')
    t.eq(pb.orders_created(mark), 0, 'import placed no order')
    for n in names:
        i = served(https, n)
        t.eq(i and i['serial'], serial[n], 'after import: %s still served (the same certificate)' % n)

    # hacme run: nothing is due, nothing is ordered
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                    ready=r'hacme run: \d+ certificates', timeout=30)
    time.sleep(3)   # what a restart would order, it orders at once
    t.eq(pb.orders_created(mark), 0, 'hacme run: no order (the imported certificates are valid)')
    rc, out, err = lab.hacme('status', config=cfg)
    for n in names:
        t.like(out, r'(?m)^%s\s.*\s1/1\s' % re.escape(n), 'status: %s deployed 1/1' % n)
    run.stop()

    # a renewal goes through certbot's account and replaces the file in DIR
    rc, out, err = lab.hacme('renew', '--force', 'ec.example', config=cfg)
    t.eq(rc, 0, 'renew --force ec.example: exit 0' + ('' if rc == 0 else ': ' + err[-400:]))
    t.eq(pb.orders_created(mark), 1, 'one order for the forced renewal')
    i = served(https, 'ec.example')
    t.ok(i is not None and i['serial'] != serial['ec.example'], 'the renewed certificate is served by SNI')
    on_disk = L.cert_info(open(os.path.join(crtdir, 'ec.example.pem')).read())['serial']
    t.eq(on_disk, i and i['serial'], 'and is in DIR/ec.example.pem (the taken-over file)')
    acct2 = json.load(open(os.path.join(state, 'account', 'pebble', 'account.json')))
    t.eq(acct2.get('url'), acct.get('url'), 'the order used certbot\'s account')
    t.eq(hap.info().get('Pid'), pid, 'the same HAProxy process all along')

    rc, out, err = lab.hacme('import', 'certbot', '--config-dir', conf_dir, config=cfg)
    t.ok(rc == 0 and 'exists: skipped' in out and open(cfg).read().count('cert rsa.example') == 1,
         'a second import changes nothing (sections exist)')


with L.Lab('import') as lab:
    main(lab)
sys.exit(t.done())
