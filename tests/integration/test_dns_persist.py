#!/usr/bin/env python3
"""dns-persist-01 (draft-ietf-acme-dns-persist) against pebble 2.10 (from
Debian sid, tests/lab/platforms.sh), its resolver an unbound in front of
knot: `hacme dns-persist` prints the record, the test publishes it once
(as a user would, with knsupdate), then three orders of a wildcard + base
name certificate validate with no DNS update from hacme (the zone's serial
does not move). Without the record, the pre-flight says what to publish."""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402
import knot as K  # noqa: E402

t = L.TAP()
ZONE = 'persist.test'


def main():
    if os.geteuid() != 0:
        # NS records carry no port: knot must listen on 53 (127.x.y.1, .2)
        t.skip('dns-persist-01 with knot', 'needs root to bind port 53 on loopback addresses')
        return
    with L.Lab() as lab:
        net = K.free_loopback_net()
        dns = K.KnotSet(lab, {ZONE: K.zone_text(ZONE, [net + '1'])}, secondaries=0, net=net)
        ub = K.Unbound(lab, dns)
        try:
            pb = lab.pebble(newer=True, dns_server=ub.addr, env={'PEBBLE_AUTHZREUSE': '0'})
        except L.LabError as e:
            t.skip('dns-persist-01 with pebble 2.10', 'pebble 2.10 unavailable: %s' % e)
            return
        cfg = lab.hacme_config(pb, None, certs=[
            ('p', ['domains www.%s *.www.%s' % (ZONE, ZONE), 'challenge dns-persist-01',
                   'dns lookups'])], glob=['spoa-listen 127.0.0.1:%d' % lab.port()])
        with open(cfg, 'a') as f:
            f.write('dns lookups\n    server %s\n' % dns.primary_ip)

        rc, out, err = lab.hacme('issue', 'p', config=cfg)
        t.eq(rc, 2, 'without the record: the order stops at the pre-flight')
        t.like(err, r'no TXT record at _validation-persist\.www\.persist\.test authorizes this '
               r'account.*publish _validation-persist\.www\.persist\.test\. IN TXT "',
               'the error gives the record to publish')
        t.eq(pb.validations(), 0, 'the CA was not asked to validate')

        rc, out, err = lab.hacme('dns-persist', 'p', config=cfg)
        t.eq(rc, 0, 'hacme dns-persist: exit 0')
        m = re.search(r'^(_validation-persist\.www\.persist\.test)\. IN TXT "([^"]+)"$', out, re.M)
        t.ok(m is not None, 'it prints one record: %s' % out.strip())
        acct = open(os.path.join(cfg + '.state', 'account', 'pebble', 'account.json')).read()
        url = re.search(r'"(https://[^"]+/my-account/[^"]+)"', acct)
        value = m.group(2) if m else ''
        t.ok(url is not None and re.fullmatch(r'[a-z0-9.-]+; accounturi=%s; policy=wildcard'
                                             % re.escape(url.group(1)), value) is not None,
             'the value: issuer; accounturi=<this account>; policy=wildcard (%s)' % value)
        if not m:
            return
        dns.nsupdate(['zone %s' % ZONE, 'update add %s 300 TXT "%s"' % (m.group(1), value)])
        serial = dns.serial(ZONE)
        for i in range(3):
            mark = pb.proc.log_mark()
            rc, out, err = lab.hacme('renew', '--force', 'p', config=cfg)
            t.eq(rc, 0, 'order %d with the persistent record: issued' % (i + 1))
            if rc != 0:
                t.diag(err)
            t.ok(pb.validations(mark) >= 1, 'order %d: the CA validated (no reuse)' % (i + 1))
        t.eq(dns.serial(ZONE), serial, 'no DNS update was sent in three orders (serial %s)'
             % serial)
        pem = open(os.path.join(cfg + '.state', 'certs', 'p', 'chain.pem')).read()
        t.eq(sorted(L.cert_info(pem)['sans']), sorted(['www.' + ZONE, '*.www.' + ZONE]),
             'the certificate names the wildcard and its base')
        rc, out, err = lab.hacme('status', config=cfg)
        t.like(out, r'(?m)^p\s+ecdsa-p256\s+dns-persist-01\s', 'status: CHALLENGE dns-persist-01')


if __name__ == '__main__':
    try:
        main()
    finally:
        t.done()
