#!/usr/bin/env python3
"""bench_dns.py - a wildcard + base name certificate through dns-01 against
knot (one authoritative server: no propagation delay) and pebble 2.4
(AUTHZREUSE=0, resolving at knot): hacme issue / renew --force until
HAProxy serves the new certificate by SNI, vs lego's rfc2136 provider
(Debian sid's lego, fetched by tests/lab/platforms.sh; its propagation check
asks knot, the zone's only server, through --dns.resolvers: lego would look
the NS names up with the system's resolver, off loopback) until its
certificate file is written (lego does not deploy: serving would still need
a reload). lego runs with its defaults, then tuned (polling 1 s, sequence
interval 1 s). Figures, not a test.

Environment: BENCH_DNS_ROUNDS (5), BENCH_DNS_LEGO=0 (skip lego)."""
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lab'))
import lab as L  # noqa: E402
import knot as K  # noqa: E402

ZONE = 'bench.test'
ROUNDS = int(os.environ.get('BENCH_DNS_ROUNDS', '5'))


def fmt(xs):
    if not xs:
        return 'n/a'
    return 'median %.2f s (min %.2f, max %.2f, n=%d)' % (statistics.median(xs), min(xs),
                                                          max(xs), len(xs))


def report(line):
    print(line)
    print('SUMMARY dns: ' + line)
    sys.stdout.flush()


def hacme_rounds(lab, dns, st, pb):
    cfg = lab.hacme_config(pb, st, certs=[
        ('wild', ['domains w.%s *.w.%s' % (ZONE, ZONE), 'challenge dns-01', 'dns knot'])])
    with open(cfg, 'a') as f:
        f.write('dns knot\n    server %s\n    tsig-key %s\n    tsig-secret-file %s\n'
                % (dns.primary_ip, dns.key_name, dns.secret_file))
    chain = os.path.join(cfg + '.state', 'certs', 'wild', 'chain.pem')
    served, stored = [], []
    for i in range(ROUNDS):
        verb = ['issue', 'wild'] if i == 0 else ['renew', '--force', 'wild']
        t0 = time.monotonic()
        rc, out, err = lab.hacme(*verb, config=cfg, timeout=300)
        t1 = time.monotonic()
        if rc != 0:
            print('hacme round %d failed: %s' % (i, err.strip()[-300:]))
            return None, None
        serial = L.cert_info(open(chain).read())['serial']
        L.wait_until(lambda: L.tls_probe(st.https_port, 'x%d.w.%s' % (i, ZONE))['serial']
                     == serial, 60, 'HAProxy serving serial %s' % serial)
        served.append(time.monotonic() - t0)
        stored.append(t1 - t0)
    return stored, served


def lego_rounds(lab, dns, pb, bindir, tuned):
    path = lab.path('lego-%s' % ('tuned' if tuned else 'default'))
    env = dict(os.environ, LEGO_CA_CERTIFICATES=pb.ca_bundle,
               DNSUPDATE_NAMESERVER='%s:53' % dns.primary_ip,
               DNSUPDATE_TSIG_KEY=dns.key_name, DNSUPDATE_TSIG_SECRET=dns.secret,
               DNSUPDATE_TSIG_ALGORITHM='hmac-sha256.', DNSUPDATE_TTL='60')
    if tuned:
        env.update(DNSUPDATE_POLLING_INTERVAL='1', DNSUPDATE_SEQUENCE_INTERVAL='1')
    times = []
    for i in range(ROUNDS):
        argv = [os.path.join(bindir, 'lego'), '--server', pb.directory, '--email',
                'ops@example.com', '--accept-tos', '--dns', 'rfc2136',
                '--dns.resolvers', '%s:53' % dns.primary_ip, '--key-type', 'ec256',
                # lego looks NS names up with the system's resolver (off
                # loopback): check through knot, the zone's only server
                '--dns.propagation-disable-ans', '--dns.propagation-rns',
                '-d', 'w.' + ZONE, '-d', '*.w.' + ZONE, '--path', path, 'run']
        t0 = time.monotonic()
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        dt = time.monotonic() - t0
        if r.returncode != 0:
            print('lego round %d failed: %s' % (i, (r.stdout + r.stderr).strip()[-400:]))
            return None
        times.append(dt)
    return times


def main():
    with L.Lab() as lab:
        net = K.free_loopback_net()
        dns = K.KnotSet(lab, {ZONE: K.zone_text(ZONE, [net + '1'])}, secondaries=0, net=net)
        st = lab.stack()
        pb = lab.pebble(http_port=st.http_port, dns_server='%s:53' % dns.primary_ip,
                        env={'PEBBLE_AUTHZREUSE': '0'})
        stored, served = hacme_rounds(lab, dns, st, pb)
        report('hacme dns-01 (rfc2136), wildcard + base, issue -> stored: %s' % fmt(stored))
        report('hacme dns-01 (rfc2136), wildcard + base, issue -> served by HAProxy: %s'
               % fmt(served))
        if os.environ.get('BENCH_DNS_LEGO', '1') == '0':
            return 0 if served else 1
        r = subprocess.run(['sh', os.path.join(HERE, '..', 'lab', 'platforms.sh'), 'lego'],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            print('lego: not available (%s)' % r.stderr.strip().splitlines()[-1:])
            return 0 if served else 1
        bindir = r.stdout.strip()
        ver = subprocess.run([os.path.join(bindir, 'lego'), '--version'], capture_output=True,
                             text=True).stdout.strip()
        for tuned in (False, True):
            times = lego_rounds(lab, dns, pb, bindir, tuned)
            report('%s rfc2136 (%s), wildcard + base, run -> certificate file: %s'
                   % (ver, 'polling 1 s, sequence interval 1 s' if tuned else 'defaults',
                      fmt(times)))
        return 0 if served else 1


if __name__ == '__main__':
    sys.exit(main())
