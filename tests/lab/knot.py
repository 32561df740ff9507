"""knot (Debian 12's knotd 3.2) for the DNS tests: a primary that takes
TSIG-signed UPDATEs and secondaries that get each zone by NOTIFY + IXFR,
each on its own loopback address, port 53 (NS records carry no port, and
hacme asks every NS of a zone on 53). Only loopback; stopped by the Lab.

    dns = KnotSet(lab, zones={'hacme.test': ZONE_TEXT}, secondaries=1)
    dns.primary_ip, dns.secondary_ips, dns.key_name, dns.secret, dns.secret_file
    dns.txt('_acme-challenge.x.hacme.test', ip)   -> list of TXT values
    dns.ctl(i, 'zone-xfr-freeze', 'hacme.test')    (i: 0 primary, 1.. secondaries)
"""
import base64
import os
import random
import socket
import subprocess

from lab import LabError, Ready, wait_until


def free_loopback_net():
    """127.X.Y.0/24 with nothing bound on port 53 of .1-.4 (random X, Y)."""
    for _ in range(50):
        net = '127.%d.%d.' % (random.randint(60, 250), random.randint(1, 250))
        free = True
        for h in (1, 2, 3, 4):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind((net + str(h), 53))
                except OSError:
                    free = False
                finally:
                    s.close()
        if free:
            return net
    raise LabError('no free 127.x.y.0/24 with port 53 unbound')


def kdig(ip, name, rtype='TXT', port=53, rd=False, timeout=3):
    """Answers (text of each RR's data) of name/rtype asked to ip directly."""
    argv = ['kdig', '@%s' % ip, '-p', str(port), name, rtype, '+short',
            '+time=%d' % timeout, '+retry=1']
    if not rd:
        argv.append('+norecurse')
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * 3 + 5)
    return [l.strip().strip('"') for l in r.stdout.splitlines() if l.strip()]


class KnotSet:
    def __init__(self, lab, zones, secondaries=1, notify=True, net=None, standalone=()):
        """zones: {origin: zone text (SOA, NS, ...)}; standalone: extra
        primaries (not in any NS set) that serve the same zone files and
        never get updates (what a CA sees when its DNS differs)."""
        self.lab = lab
        self.net = net or free_loopback_net()
        self.primary_ip = self.net + '1'
        self.secondary_ips = [self.net + str(2 + i) for i in range(secondaries)]
        self.standalone_ips = [self.net + str(2 + secondaries + i) for i in range(len(standalone))]
        self.zones = zones
        self.key_name = 'hacme-key'
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.secret_file = lab.write('tsig.secret', self.secret + '\n', mode=0o600)
        self.procs = []
        self.confs = []
        zdir = lab.path('knot-zones')
        os.makedirs(zdir, exist_ok=True)
        for origin, text in zones.items():
            with open(os.path.join(zdir, origin + '.zone'), 'w') as f:
                f.write(text)
        self.zdir = zdir
        self._start(0, self.primary_ip, role='primary', notify=notify)
        for i, ip in enumerate(self.secondary_ips):
            self._start(1 + i, ip, role='secondary')
        for i, ip in enumerate(self.standalone_ips):
            self._start(1 + secondaries + i, ip, role='standalone')
        for ip in [self.primary_ip] + self.secondary_ips + self.standalone_ips:
            for origin in zones:
                wait_until(lambda: kdig(ip, origin, 'SOA', timeout=1) != [], 20,
                           'knot at %s serving %s' % (ip, origin))

    def _start(self, i, ip, role, notify=True):
        d = self.lab.path('knot-%d' % i)
        os.makedirs(os.path.join(d, 'db'), exist_ok=True)
        lines = ['server:', '    listen: %s@53' % ip, '    rundir: %s' % d,
                 '    background-workers: 1', '    udp-workers: 1', '    tcp-workers: 1',
                 'log:', '  - target: stderr', '    any: info',
                 'database:', '    storage: %s' % os.path.join(d, 'db'),
                 'control:', '    listen: %s' % os.path.join(d, 'knot.sock'),
                 'key:', '  - id: %s' % self.key_name, '    algorithm: hmac-sha256',
                 '    secret: %s' % self.secret]
        if role == 'primary':
            lines += ['remote:']
            for k, sip in enumerate(self.secondary_ips):
                lines += ['  - id: sec%d' % k, '    address: %s@53' % sip]
            lines += ['acl:', '  - id: update', '    key: %s' % self.key_name,
                      '    action: update',
                      '  - id: xfr', '    address: 127.0.0.0/8', '    action: transfer']
            lines += ['template:', '  - id: default', '    storage: %s' % self.zdir,
                      '    journal-content: all', '    semantic-checks: off']
            lines += ['zone:']
            for origin in self.zones:
                lines += ['  - domain: %s' % origin, '    acl: [update, xfr]']
                if notify and self.secondary_ips:
                    lines += ['    notify: [%s]' % ', '.join(
                        'sec%d' % k for k in range(len(self.secondary_ips)))]
        elif role == 'secondary':
            lines += ['remote:', '  - id: primary', '    address: %s@53' % self.primary_ip,
                      'acl:', '  - id: notify', '    address: %s' % self.primary_ip,
                      '    action: notify',
                      'template:', '  - id: default', '    storage: %s' % d,
                      '    zonefile-sync: -1', '    refresh-min-interval: 2',
                      '    retry-min-interval: 2']
            lines += ['zone:']
            for origin in self.zones:
                lines += ['  - domain: %s' % origin, '    master: primary', '    acl: notify']
        else:
            lines += ['template:', '  - id: default', '    storage: %s' % self.zdir,
                      '    zonefile-sync: -1', '    semantic-checks: off']
            lines += ['zone:'] + ['  - domain: %s' % o for o in self.zones]
        conf = self.lab.write('knot-%d.conf' % i, '\n'.join(lines) + '\n')
        self.confs.append(conf)
        p = self.lab.spawn('knot-%d' % i, ['knotd', '-c', conf],
                           ready=[Ready.log(r'server started')], timeout=20)
        self.procs.append(p)

    def ctl(self, i, *args):
        """knotc of instance i (0: the primary); returns (rc, output)."""
        r = subprocess.run(['knotc', '-c', self.confs[i]] + list(args),
                           capture_output=True, text=True, timeout=20)
        return r.returncode, r.stdout + r.stderr

    def txt(self, name, ip=None):
        return kdig(ip or self.primary_ip, name, 'TXT')

    def serial(self, origin, ip=None):
        soa = kdig(ip or self.primary_ip, origin, 'SOA')
        return int(soa[0].split()[2]) if soa else None

    def nsupdate(self, commands):
        """knsupdate with the TSIG key against the primary; commands is a
        list of lines (`update add ...`), `send` is appended."""
        text = 'server %s 53\nkey hmac-sha256:%s %s\n%s\nsend\n' % (
            self.primary_ip, self.key_name, self.secret, '\n'.join(commands))
        r = subprocess.run(['knsupdate'], input=text, capture_output=True, text=True,
                           timeout=20)
        if r.returncode != 0:
            raise LabError('knsupdate failed: %s%s' % (r.stdout, r.stderr))


def zone_text(origin, ns_ips, extra=(), refresh=2):
    """A zone with ns1.., ns2.. in it (glue A records) and a wildcard A to
    127.0.0.1 (http-01 and HAProxy's SNI tests resolve any name)."""
    lines = ['$ORIGIN %s.' % origin, '$TTL 60',
             '@ SOA ns1.%s. hostmaster.%s. 1 %d 1 600 60' % (origin, origin, refresh)]
    for k, ip in enumerate(ns_ips):
        lines += ['@ NS ns%d' % (k + 1), 'ns%d A %s' % (k + 1, ip)]
    lines += ['@ A 127.0.0.1', '* A 127.0.0.1']
    lines += list(extra)
    return '\n'.join(lines) + '\n'


class Unbound:
    """unbound as the CA's recursive resolver: every zone of dns is a stub
    zone pointing at its primary, CNAMEs into other zones are followed as a
    real CA's resolver would; caching is kept to a second so a record just
    added or deleted is seen at once."""

    def __init__(self, lab, dns, ip_last=9):
        self.ip = dns.net + str(ip_last)
        self.port = lab.port(udp=True)
        lines = ['server:', '    interface: %s@%d' % (self.ip, self.port),
                 '    port: %d' % self.port, '    do-daemonize: no', '    username: ""',
                 '    chroot: ""', '    directory: "%s"' % lab.path(),
                 '    pidfile: ""', '    use-syslog: no', '    verbosity: 1',
                 '    access-control: 127.0.0.0/8 allow', '    do-not-query-localhost: no',
                 '    module-config: "iterator"', '    cache-max-ttl: 1',
                 '    cache-max-negative-ttl: 1', '    num-threads: 1',
                 '    do-ip6: no', '    harden-referral-path: no', '    qname-minimisation: no',
                 '    domain-insecure: "test"', '    local-zone: "test." nodefault']
        for origin in dns.zones:
            lines += ['stub-zone:', '    name: "%s"' % origin,
                      '    stub-addr: %s@53' % dns.primary_ip]
        conf = lab.write('unbound.conf', '\n'.join(lines) + '\n')
        self.proc = lab.spawn('unbound', ['unbound', '-d', '-c', conf], timeout=20)
        wait_until(lambda: kdig(self.ip, list(dns.zones)[0], 'SOA', port=self.port, rd=True,
                                timeout=1) != [], 20, 'unbound answering')
        self.addr = '%s:%d' % (self.ip, self.port)
