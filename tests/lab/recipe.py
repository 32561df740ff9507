"""The classic certbot recipe (shared/reference/CERTBOT-RECIPE.md) and the
README's way from it to hacme, for test_guide.py and tests/deb/test_deb.py."""

import os
import re

import lab as L

SRC = L.SRC

# CERTBOT-RECIPE.md's haproxy.cfg, verbatim (checked against the file when
# it is there)
RECIPE = '''frontend http
    bind *:80
    mode http
    option httplog
    http-request redirect scheme https code 301 if !{ path_beg /.well-known/acme-challenge/ }
    use_backend backend-certbot if { path_beg /.well-known/acme-challenge/ }

frontend https-tcp
    bind *:443 ssl crt /etc/haproxy/ssl/ crt-ignore-err all
    mode http
    option httplog
    use_backend backend-certbot if { path_beg /.well-known/acme-challenge/ }
    use_backend my-app if { hdr(host) -i my-app.com }

backend backend-certbot
    mode http
    server certbot 127.0.0.1:2031

backend my-app
    mode http
    balance roundrobin
    server Serveur_A 192.168.10.1:80
    server Serveur_B 192.168.10.2:80
'''

# Debian 12's packaged global/defaults, as far as they matter here
DEBIAN = '''global
	log /dev/log	local0
	log /dev/log	local1 notice
	chroot /var/lib/haproxy
	stats socket /run/haproxy/admin.sock mode 660 level admin
	stats timeout 30s
	user haproxy
	group haproxy
	daemon

defaults
	log	global
	mode	http
	option	httplog
	option	dontlognull
        timeout connect 5000
        timeout client  50000
        timeout server  50000

'''


def readme_section(title):
    text = open(os.path.join(SRC, 'README.md')).read()
    m = re.search(r'(?ms)^## %s\n(.*?)(?=^## )' % re.escape(title), text)
    return m.group(1) if m else ''


def localize(cfg, lab, ports):
    """The same config on loopback and lab paths (test-only substitutions)."""
    out = cfg
    out = out.replace('bind *:80', 'bind 127.0.0.1:%d' % ports['http'])
    out = out.replace('bind *:443', 'bind 127.0.0.1:%d' % ports['https'])
    out = out.replace('/etc/haproxy/ssl/', ports['ssl'] + '/')
    out = out.replace('/run/haproxy/admin.sock', ports['sock'])
    out = out.replace('/usr/share/hacme/spoe-acme.conf', os.path.join(SRC, 'haproxy-conf', 'spoe-acme.conf'))
    out = out.replace('127.0.0.1:12345', '127.0.0.1:%d' % ports['agent'])
    out = re.sub(r'192\.168\.10\.\d+:80', '127.0.0.1:%d' % ports['app'], out)
    # the lab runs haproxy in the foreground as root, logging to stderr
    out = re.sub(r'(?m)^\s*(chroot|user|group|daemon|log /dev/log).*\n', '', out)
    return out



def migrated(lab):
    """README's diff applied to RECIPE with patch: (rc, after text, diff
    found)."""
    sec = readme_section('Switching from certbot')
    m = re.search(r'(?s)```diff\n(.*?)```', sec)
    if m is None:
        return -1, '', False
    before = lab.write('recipe.cfg', RECIPE)
    diff = lab.write('migration.diff', m.group(1))
    rc, out, err = L._run(['patch', '--no-backup-if-mismatch', '-o', lab.path('after.cfg'), before, diff])
    after = open(lab.path('after.cfg')).read() if rc == 0 else out + err
    return rc, after, True


def certbot(lab, pb, base, name, key_type):
    """certbot certonly --standalone as the recipe runs it (one config dir)."""
    argv = ['certbot', 'certonly', '--standalone', '--non-interactive', '--agree-tos',
            '--email', 'ops@example.com', '--server', pb.directory,
            '--preferred-challenges', 'http', '--http-01-address', '127.0.0.1',
            '--http-01-port', str(pb.http_port),
            '--config-dir', base + '/conf', '--work-dir', base + '/work',
            '--logs-dir', base + '/logs', '--key-type', key_type, '-d', name]
    if key_type == 'rsa':
        argv += ['--rsa-key-size', '2048']
    for attempt in range(3):
        rc, out, err = L._run(argv, timeout=180, env=dict(os.environ, REQUESTS_CA_BUNDLE=pb.ca_bundle))
        # Debian 12's certbot on Python 3.11 crashes on any ACME error (certbot#9539),
        # e.g. pebble's deliberate badNonce rejections: try again
        if rc == 0 or "AttributeError: can't set attribute" not in out + err:
            break
    if rc != 0:
        raise L.LabError('certbot failed: %s' % (out + err)[-2000:])
    live = os.path.join(base, 'conf', 'live', name)
    return {'fullchain': os.path.join(live, 'fullchain.pem'),
            'privkey': os.path.join(live, 'privkey.pem')}
