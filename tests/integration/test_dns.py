#!/usr/bin/env python3
"""dns-01 and wildcards with real DNS: knot (Debian 12) authoritative for
the test zones on loopback, a primary taking TSIG-signed UPDATEs and a
secondary fed by NOTIFY + IXFR, pebble's resolver pointed at the primary
(names, TXT and A come from knot, no challtestsrv). hacme issue with the
rfc2136 and exec providers: one name, wildcard + base name served by
HAProxy for any subdomain by SNI, a mixed http-01/dns-01 order, a
CNAME-delegated _acme-challenge, a wrong TSIG secret, a failed validation,
a lagging secondary, and the records gone after every order and after a
crash."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402
import knot as K  # noqa: E402

t = L.TAP()
ZONE = 'hacme.test'
DELEG = 'deleg.test'


def run(lab, cfg, *args, timeout=180):
    """hacme -v (info lines: the DNS steps the checks read) args..."""
    return lab.hacme('-v', *args, config=cfg, timeout=timeout)


def cert_names(cfg, name):
    pem = open(os.path.join(cfg + '.state', 'certs', name, 'chain.pem')).read()
    return sorted(L.cert_info(pem)['sans'])


def challenge_txts(dns, names):
    """Every _acme-challenge TXT value at every server, for names."""
    out = []
    for n in names:
        for ip in [dns.primary_ip] + dns.secondary_ips:
            out += dns.txt('_acme-challenge.' + n, ip)
    return out


def gone(dns, names, timeout=15):
    """True once no server serves an _acme-challenge TXT for names (the
    primary drops it at once, the secondary after its IXFR)."""
    try:
        L.wait_until(lambda: challenge_txts(dns, names) == [], timeout, 'TXT removal')
        return True
    except L.LabError:
        return False


def journal(cfg, section):
    p = os.path.join(cfg + '.state', 'dns-%s.records' % section)
    return open(p).read() if os.path.exists(p) else ''


def main():
    if os.geteuid() != 0:
        # NS records carry no port: knot must listen on 53 (127.x.y.1, .2)
        t.skip('dns-01 with knot', 'needs root to bind port 53 on loopback addresses')
        return
    with L.Lab() as lab:
        net = K.free_loopback_net()
        ips = [net + '1', net + '2']
        zones = {
            ZONE: K.zone_text(ZONE, ips, extra=[
                '_acme-challenge.cname CNAME _acme-challenge.cname.%s.' % DELEG]),
            DELEG: K.zone_text(DELEG, ips),
        }
        dns = K.KnotSet(lab, zones, secondaries=1, net=net, standalone=['stale'])
        # the CA's resolver: recursive, following CNAMEs across zones
        ub = K.Unbound(lab, dns)
        st = lab.stack()
        pb = lab.pebble(http_port=st.http_port, dns_server=ub.addr,
                        env={'PEBBLE_AUTHZREUSE': '0'})
        bad_secret = lab.write('bad.secret', 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\n')
        hook_log = lab.path('hook.log')
        hook = lab.write('dns-hook.sh', '''#!/bin/sh
# lego's exec contract: $1 present|cleanup, $2 FQDN (final dot), $3 value
echo "$1 $2 $3" >> %s
case "$1" in
present) op=add; ttl=60;;
cleanup) op=delete; ttl=;;
*) echo "unknown action $1"; exit 2;;
esac
printf 'server %s 53\\nzone %s\\nkey hmac-sha256:%s %s\\nupdate %%s %%s %%s TXT "%%s"\\nsend\\n' \\
    "$op" "$2" "$ttl" "$3" | knsupdate
''' % (hook_log, dns.primary_ip, ZONE, dns.key_name, dns.secret), mode=0o755)
        dns_lines = ['provider rfc2136', 'server %s' % dns.primary_ip,
                     'tsig-key %s' % dns.key_name, 'tsig-secret-file %s' % dns.secret_file,
                     'propagation-timeout 60']
        cfg = lab.hacme_config(pb, st, certs=[
            ('one', ['domains one.%s' % ZONE, 'challenge dns-01', 'dns knot']),
            ('wild', ['domains w.%s *.w.%s' % (ZONE, ZONE), 'challenge dns-01',
                      'dns knot']),
            ('mixed', ['domains http.%s dnsname.%s' % (ZONE, ZONE),
                       'challenge dns-01 dnsname.%s' % ZONE, 'dns knot']),
            ('cname', ['domains cname.%s' % ZONE, 'challenge dns-01', 'dns knot']),
            ('badkey', ['domains badkey.%s' % ZONE, 'challenge dns-01', 'dns wrongkey']),
            ('hook', ['domains hook.%s' % ZONE, 'challenge dns-01', 'dns hook']),
        ])
        with open(cfg, 'a') as f:
            f.write('dns knot\n' + ''.join('    %s\n' % l for l in dns_lines))
            f.write('dns wrongkey\n    server %s\n    tsig-key %s\n    tsig-secret-file %s\n'
                    % (dns.primary_ip, dns.key_name, bad_secret))
            f.write('dns hook\n    provider exec\n    command %s\n    server %s\n'
                    '    propagation-timeout 60\n' % (hook, dns.primary_ip))

        rc, out, err = run(lab, cfg, 'check', '--offline')
        t.eq(rc, 0, 'check: dns sections, challenge dns-01 and a wildcard are valid')

        # --- one name
        rc, out, err = run(lab, cfg, 'issue', 'one')
        t.eq(rc, 0, 'one name with dns-01 (rfc2136): issued')
        if rc != 0:
            t.diag(err)
        t.eq(cert_names(cfg, 'one') if rc == 0 else None, ['one.' + ZONE],
             'one: the certificate names one.hacme.test')
        t.ok(gone(dns, ['one.' + ZONE]),
             'one: no _acme-challenge TXT left on the primary or the secondary')
        t.eq(journal(cfg, 'knot'), '', 'one: the journal of published records is empty')

        # --- wildcard + base name, served by HAProxy for any subdomain by SNI
        rc, out, err = run(lab, cfg, 'issue', 'wild')
        t.eq(rc, 0, 'wildcard + base name with dns-01: issued and deployed')
        if rc != 0:
            t.diag(err)
        t.eq(cert_names(cfg, 'wild') if rc == 0 else None, sorted(['w.' + ZONE, '*.w.' + ZONE]),
             'wild: names w.hacme.test and *.w.hacme.test')
        t.like(err, r'added TXT _acme-challenge\.w\.hacme\.test[^\n]*\n(.*\n)*.*added TXT '
               r'_acme-challenge\.w\.hacme\.test', 'wild: two values at the same name')
        serial = None
        if rc == 0:
            pem = open(os.path.join(cfg + '.state', 'certs', 'wild', 'chain.pem')).read()
            serial = L.cert_info(pem)['serial']
        for sni in ('anything.w.' + ZONE, 'x9.w.' + ZONE, 'w.' + ZONE):
            try:
                got = L.tls_probe(st.https_port, sni)['serial']
            except L.LabError as e:
                got = str(e)
            t.eq(got, serial, 'HAProxy serves the wildcard certificate for SNI %s' % sni)
        t.ok(gone(dns, ['w.' + ZONE]), 'wild: both TXT values removed')

        # --- mixed: http-01 through HAProxy + hacme-spoa, dns-01 through knot
        rc, out, err = run(lab, cfg, 'issue', 'mixed')
        t.eq(rc, 0, 'mixed http-01/dns-01 order: issued')
        t.like(err, r'added TXT _acme-challenge\.dnsname\.hacme\.test',
               'mixed: dnsname.hacme.test through DNS')
        t.ok('_acme-challenge.http.' + ZONE not in err, 'mixed: no TXT for http.hacme.test')
        t.eq(cert_names(cfg, 'mixed') if rc == 0 else None,
             sorted(['http.' + ZONE, 'dnsname.' + ZONE]), 'mixed: both names in the certificate')

        # --- CNAME-delegated _acme-challenge
        rc, out, err = run(lab, cfg, 'issue', 'cname')
        t.eq(rc, 0, 'CNAME-delegated _acme-challenge: issued')
        if rc != 0:
            t.diag(err)
        t.like(err, r'_acme-challenge\.cname\.hacme\.test is a CNAME to '
               r'_acme-challenge\.cname\.deleg\.test', 'cname: the CNAME is followed')
        t.like(err, r'added TXT _acme-challenge\.cname\.deleg\.test',
               'cname: the record goes into the delegated zone')
        t.ok(gone(dns, ['cname.' + DELEG]), 'cname: record removed from deleg.test')

        # --- wrong TSIG secret: a clear error, no order at the CA
        mark = pb.proc.log_mark()
        rc, out, err = run(lab, cfg, 'issue', 'badkey')
        t.eq(rc, 2, 'wrong TSIG secret: exit 2')
        t.like(err, r'NOTAUTH, TSIG (BADSIG|BADKEY).*hacme-key.*zone hacme\.test.*'
               r'tsig-secret-file', 'wrong TSIG secret: says NOTAUTH/BADSIG, key, zone, fix')
        t.eq(pb.orders_created(mark), 0, 'wrong TSIG secret: no order placed')

        rc, out, err = run(lab, cfg, 'check')
        t.ok(rc == 1 and re.search(r'cert badkey: badkey\.hacme\.test: DNS UPDATE .*NOTAUTH', err)
             and re.search(r'ok +cert one: one\.hacme\.test: DNS zone found, update authorized',
                           out) is not None,
             'hacme check (live): the wrong key fails with NOTAUTH, the right one is authorized')

        # --- exec provider (lego's contract)
        rc, out, err = run(lab, cfg, 'issue', 'hook')
        t.eq(rc, 0, 'exec provider: issued')
        if rc != 0:
            t.diag(err)
        calls = open(hook_log).read().split('\n') if os.path.exists(hook_log) else []
        pres = [c for c in calls if c.startswith('present _acme-challenge.hook.%s. ' % ZONE)]
        clean = [c for c in calls if c.startswith('cleanup _acme-challenge.hook.%s. ' % ZONE)]
        t.ok(len(pres) == 1 and len(clean) == 1 and pres[0].split()[2] == clean[0].split()[2]
             and re.fullmatch(r'[A-Za-z0-9_-]{43}', pres[0].split()[2]),
             'exec: `present FQDN. VALUE` then `cleanup FQDN. VALUE`, same 43-char value')
        t.ok(gone(dns, ['hook.' + ZONE]), 'exec: the script removed the record')

        # --- a lagging secondary: the CA is asked only once it serves the record
        rc0, _ = dns.ctl(0, 'zone-xfr-freeze', ZONE)
        mark = pb.proc.log_mark()
        argv = [L.exe('acme/hacme'), '-c', cfg, '-v', 'issue', 'lag.' + ZONE]
        with open(cfg, 'a') as f:
            f.write('cert lag.%s\n    challenge dns-01\n    dns knot\n' % ZONE)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fq = '_acme-challenge.lag.' + ZONE
        try:
            L.wait_until(lambda: dns.txt(fq) != [], 30, 'the TXT on the primary')
            on_primary = True
        except L.LabError:
            on_primary = False
        time.sleep(3)
        t.ok(rc0 == 0 and on_primary and dns.txt(fq, dns.secondary_ips[0]) == [],
             'lag: the primary serves the TXT, the frozen secondary does not')
        t.eq(pb.validations(mark), 0, 'lag: 3 s later the CA has not been asked to validate')
        t.ok(proc.poll() is None, 'lag: hacme still waits')
        dns.ctl(0, 'zone-xfr-thaw', ZONE)
        dns.ctl(1, 'zone-refresh', ZONE)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        t.eq(proc.returncode, 0, 'lag: issued once the secondary caught up')
        t.ok(pb.validations(mark) >= 1, 'lag: the CA validated after that')
        t.like(err, r'served by all 2 servers of hacme\.test', 'lag: both servers checked')

        # --- a crash leaves a record: the next start deletes it
        dns.ctl(0, 'zone-xfr-freeze', ZONE)
        with open(cfg, 'a') as f:
            f.write('cert crash.%s\n    challenge dns-01\n    dns knot\n' % ZONE)
        proc = subprocess.Popen([L.exe('acme/hacme'), '-c', cfg, 'issue', 'crash.' + ZONE],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fq = '_acme-challenge.crash.' + ZONE
        try:
            L.wait_until(lambda: dns.txt(fq) != [], 30, 'the TXT on the primary')
        except L.LabError:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        dns.ctl(0, 'zone-xfr-thaw', ZONE)
        dns.ctl(1, 'zone-refresh', ZONE)
        t.ok(dns.txt(fq) != [] and fq in journal(cfg, 'knot'),
             'crash: hacme killed with its record published and journaled')
        rc, out, err = run(lab, cfg, 'renew', '--force', 'one')
        t.eq(rc, 0, 'crash: the next run (renew one) works')
        t.like(err, r'deleting _acme-challenge\.crash\.hacme\.test TXT .*left by an earlier run',
               'crash: it deletes what the killed run left')
        t.eq(dns.txt(fq), [], 'crash: the record is gone')
        t.eq(journal(cfg, 'knot'), '', 'crash: the journal is empty')

        # --- hacme run (before a second pebble: lab.pebble rewrites the CA bundle file)
        # --- hacme run: a dns-01 wildcard issued and served; SIGHUP with the
        # dns section changed (its solver replaced), then unchanged
        cfg3 = lab.hacme_config(pb, st, name='run.cfg', certs=[
            ('r', ['domains r.%s *.r.%s' % (ZONE, ZONE), 'challenge dns-01', 'dns knot'])],
            glob=['log-level info'])
        with open(cfg3, 'a') as f:
            f.write('dns knot\n' + ''.join('    %s\n' % l for l in dns_lines))
        hr = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg3, 'run'],
                       ready=r'hacme run: \d+ certificates')
        try:
            hr.wait_log(r'r: new certificate, serial', timeout=90)
            chain = open(os.path.join(cfg3 + '.state', 'certs', 'r', 'chain.pem')).read()
            serial = L.cert_info(chain)['serial']
            L.wait_until(lambda: L.tls_probe(st.https_port, 'any.r.' + ZONE)['serial'] == serial,
                         30, 'HAProxy serving r')
            served = True
        except L.LabError as e:
            served = False
            t.diag(str(e)[-500:])
        t.ok(served, 'hacme run: dns-01 wildcard issued and served by SNI')
        t.ok(gone(dns, ['r.' + ZONE]) and journal(cfg3, 'knot') == '',
             'hacme run: records removed, journal empty')
        with open(cfg3, 'a') as f:
            f.write('    ttl 61\n')
        mark = hr.log_mark()
        hr.kill(signal.SIGHUP)
        try:
            hr.wait_log(r'SIGHUP: .* reloaded', timeout=20, since=mark)
            hr.kill(signal.SIGHUP)
            hr.wait_log(r'SIGHUP: .* reloaded(.|\n)*SIGHUP: .* reloaded', timeout=20, since=mark)
            reloaded = True
        except L.LabError:
            reloaded = False
        t.ok(reloaded and hr.alive(), 'hacme run: SIGHUP with the dns section changed, then '
             'unchanged: reloaded, still running')
        hr.stop()

        # --- a failed validation: the CA's DNS (a stale copy) lacks the record
        pb2 = lab.pebble(dns_server='%s:53' % dns.standalone_ips[0],
                         env={'PEBBLE_AUTHZREUSE': '0'})
        cfg2 = lab.hacme_config(pb2, st, name='stale.cfg', certs=[
            ('fail', ['domains fail.%s' % ZONE, 'challenge dns-01', 'dns knot'])])
        with open(cfg2, 'a') as f:
            f.write('dns knot\n' + ''.join('    %s\n' % l for l in dns_lines))
        rc, out, err = run(lab, cfg2, 'issue', 'fail')
        t.eq(rc, 2, 'failed validation: exit 2')
        t.like(err, r'fail\.hacme\.test.*(TXT|dns)', 'failed validation: the CA\'s reason')
        t.like(err, r'deleted TXT _acme-challenge\.fail\.hacme\.test',
               'failed validation: the record is deleted')
        t.ok(gone(dns, ['fail.' + ZONE]), 'failed validation: no TXT left')
        t.eq(journal(cfg2, 'knot'), '', 'failed validation: the journal is empty')

        rc, out, err = run(lab, cfg, 'status')
        t.like(out, r'(?m)^one\s+ecdsa-p256\s+dns-01\s', 'status: CHALLENGE column says dns-01')
        t.like(out, r'(?m)^mixed\s+ecdsa-p256\s+http-01,dns-01\s',
               'status: a mixed cert lists both challenge types')


if __name__ == '__main__':
    try:
        main()
    finally:
        t.done()
