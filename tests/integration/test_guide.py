#!/usr/bin/env python3
"""README "Switching from certbot" cannot rot: the diff it shows is applied
(patch) to the classic recipe's haproxy.cfg exactly as
shared/reference/CERTBOT-RECIPE.md gives it, under Debian's packaged global
section; the result passes `haproxy -c` and, moved onto loopback, serves a
pebble certificate that hacme issued through it by SNI (the challenge
answered on the migrated :80 frontend), next to the certificate the recipe
had put in /etc/haproxy/ssl/. The README's "copy" paragraph names every
piece this needed."""

import os
import re
import subprocess
import sys

SRC = os.environ.get('HACME_SRC', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.join(SRC, 'tests', 'lab'))
import lab as L  # noqa: E402
from recipe import RECIPE, DEBIAN, localize, migrated, readme_section  # noqa: E402

t = L.TAP()

def main(lab):
    refs = [os.path.join(SRC, *(['..'] * k), 'shared', 'reference', 'CERTBOT-RECIPE.md') for k in (1, 2)]
    ref = ([r for r in refs if os.path.exists(r)] or [None])[0]
    if ref is not None:
        m = re.search(r'(?s)```\n(frontend http\n.*?)```', open(ref).read())
        t.eq(m and m.group(1), RECIPE, 'the recipe tested is CERTBOT-RECIPE.md\'s haproxy.cfg, verbatim')
    else:
        t.skip('the recipe tested is CERTBOT-RECIPE.md\'s haproxy.cfg', 'shared/reference not beside the tree')
    rc, after, found = migrated(lab)
    t.ok(found, 'README "Switching from certbot" has the haproxy.cfg change as a diff')
    if not found:
        return
    t.eq(rc, 0, 'the README\'s diff applies to the recipe cleanly' + ('' if rc == 0 else ': ' + after))
    t.ok('backend-certbot' not in after and '2031' not in after, 'the side-port backend and its ACLs are gone')
    copy = readme_section('Wiring HAProxy to the agent')
    for piece in ('filter spoe engine acme config', 'acl acme_path', 'http-request return', 'be_acme_agent'):
        t.ok(piece in after and piece.split()[0] in copy, 'the copy paragraph and the diff both have `%s`' % piece)
    t.ok('${HACME_' not in after, 'no ${HACME_*} variable in the migrated config')

    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    ports = {'http': hp, 'https': lab.port(), 'agent': lab.port(), 'app': lab.port(),
             'ssl': lab.path('ssl'), 'sock': lab.path('admin.sock')}
    os.makedirs(ports['ssl'])
    # what the recipe left in /etc/haproxy/ssl/: a certificate for my-app.com
    rc, out, err = L._run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                           '-nodes', '-days', '30', '-subj', '/CN=my-app.com', '-addext', 'subjectAltName=DNS:my-app.com',
                           '-keyout', lab.path('k.pem'), '-out', lab.path('c.pem')])
    with open(os.path.join(ports['ssl'], 'my-app.com.pem'), 'w') as f:
        f.write(open(lab.path('c.pem')).read() + open(lab.path('k.pem')).read())
    for name, text in (('before', RECIPE), ('after', after)):
        path = lab.write('haproxy-%s.cfg' % name, localize(DEBIAN + text, lab, ports))
        rc, out, err = L._run(['haproxy', '-c', '-f', path])
        t.eq(rc, 0, 'haproxy -c: Debian\'s global + the %s config' % ('recipe\'s' if name == 'before' else 'migrated')
             + ('' if rc == 0 else ': ' + (out + err)[-500:]))
    hap = lab.haproxy(lab.path('haproxy-after.cfg'), stats_socket=ports['sock'])
    pid = hap.info().get('Pid')

    # hacme.cfg as the guide says: crt-list the directory, no cert-dir
    cfg = lab.write('hacme.cfg', '\n'.join([
        'global', '    state-dir %s' % lab.path('state'),
        '    runtime-api unix@%s' % ports['sock'], '    crt-list %s' % ports['ssl'],
        '    tls-check 127.0.0.1:%d' % ports['https'],
        '    preflight-connect 127.0.0.1:%d' % hp, '    spoa-listen 127.0.0.1:%d' % ports['agent'],
        'ca letsencrypt', '    directory %s' % pb.directory, '    ca-bundle %s' % pb.ca_bundle,
        'cert shop.my-app.com', '']))
    rc, out, err = lab.hacme('issue', 'shop.my-app.com', config=cfg)
    t.eq(rc, 0, 'hacme issue through the migrated config: exit 0' + ('' if rc == 0 else ': ' + err[-500:]))
    try:
        info = L.tls_probe(ports['https'], 'shop.my-app.com')
    except L.LabError:
        info = None
    t.ok(info is not None and 'Pebble' in info['issuer'], 'served by SNI on the recipe\'s `crt /etc/haproxy/ssl/` bind')
    try:
        old = L.tls_probe(ports['https'], 'my-app.com')
    except L.LabError:
        old = None
    t.ok(old is not None and old['subject'].endswith('my-app.com'), 'the recipe\'s certificate is still served')
    t.eq(hap.info().get('Pid'), pid, 'no reload')
    r = L.http_get(hp, '/.well-known/acme-challenge/unknown-token', host='my-app.com')
    t.ok(r[0] in (404, 503) and r[2] in (b'no such challenge', b'acme agent unavailable'),
         'a challenge request is answered by HAProxy on :80 (%d %r: no agent between orders), not sent to a side port' % (r[0], r[2]))


with L.Lab('guide') as lab:
    main(lab)
sys.exit(t.done())
