#!/usr/bin/env python3
"""Real ARI (RFC 9773) and real ACME profiles: hacme against pebble 2.10 from
Debian sid (tests/lab/platforms.sh fetches it), with no emulation in between.

pebble 2.10 serves renewalInfo with a window of its own (about 2/3 through
the lifetime, +-24 h) and `Retry-After: 21600` (6 h) on every answer; its
management `POST /set-renewal-info` replaces the answer for one certificate.

1. A window moved into the near future before `hacme run` starts: hacme polls
   at start, renews inside the window, sends `replaces` (pebble logs the
   order as a replacement), then polls about the new certificate and honours
   pebble's Retry-After: the next poll is stored 6 h ahead.
2. A window moved earlier (into the past, as a CA does before a mass
   revocation) is not seen before the next poll: no poll and no order while
   hacme runs, nor after a restart (the next-poll time survives it). The
   6 hours are stood in for by moving the stored next-poll time
   (schedule.json) into the past while hacme is stopped; started again,
   hacme polls at once and renews at once ("ari window passed").
3. Profiles: the directory lists classic and shortlived; a certificate of
   each is ordered with its profile and its lifetime is the profile's; a
   profile the directory does not list is a config error and no order.

The in-test emulation (test_ari.py) stays for what pebble cannot produce: a
short Retry-After."""

import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()

CLASSIC = 7776000      # 90 days
SHORT = 518400         # 6 days: its own ARI window is still days away
PEBBLE_RETRY_AFTER = 21600


def ts(text):
    """RFC 3339 (hacme's 2026-12-02T03:04:05Z, pebble's with .123Z) -> epoch."""
    m = re.match(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z$', text)
    return calendar.timegm(time.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S'))


def served(st, name):
    try:
        return L.tls_probe(st.https_port, name)
    except L.LabError:
        return None


def wait_new(st, name, old_serial, inter, timeout):
    """Wait until name is served with a pebble certificate other than
    old_serial; returns its cert_info or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = served(st, name)
        if s and s['serial'] != old_serial and s['issuer'] == inter:
            return s
        time.sleep(0.3)
    return None


def start_run(lab, cfg, name):
    return lab.spawn(name, [L.exe('acme/hacme'), '-c', cfg, 'run'],
                     ready=r'hacme run: \d+ certificates')


def schedule(cfg):
    with open(cfg + '.state/schedule.json') as f:
        return json.load(f)


with L.Lab('ari-pebble') as lab:
    hp = lab.port()
    pb = lab.pebble(http_port=hp, newer=True, env={'PEBBLE_AUTHZREUSE': '100'},
                    config={'profiles': {
                        'classic': {'description': '90 days', 'validityPeriod': CLASSIC},
                        'shortlived': {'description': '6 days', 'validityPeriod': SHORT}}})
    st = lab.stack(http_port=hp)
    inter = L.cert_info(pb.intermediates(0))['subject']
    d = pb.directory_json()
    t.ok(d.get('renewalInfo') and sorted(d.get('meta', {}).get('profiles', {})) == ['classic', 'shortlived'],
         'pebble 2.10 directory: renewalInfo and the profiles classic, shortlived')

    # ---- 1. a window moved into the near future
    cfg = lab.hacme_config(pb, st, certs=[('moved', ['domains moved.example', 'profile classic'])])
    rc, out, err = lab.hacme('issue', 'moved', config=cfg)
    if not t.eq(rc, 0, 'hacme issue: the first certificate'):
        t.diag(err)
    c1 = served(st, 'moved.example')
    t.ok(c1 is not None and c1['issuer'] == inter, 'served by SNI, issued by pebble')
    id1 = L.ari_cert_id(c1['pem'])
    now = time.time()
    w1 = (int(now) + 20, int(now) + 28)
    pb.set_renewal_info(c1['pem'], *w1)
    sti, hdr, doc = pb.renewal_info(c1['pem'])
    t.ok(sti == 200 and doc and ts(doc['suggestedWindow']['start']) == w1[0],
         'pebble answers renewalInfo with the window the test set (%s)' % (doc,))
    t.eq(hdr.get('retry-after'), str(PEBBLE_RETRY_AFTER), 'pebble\'s renewalInfo Retry-After is 6 h')

    mark = pb.proc.log_mark()
    run = start_run(lab, cfg, 'hacme-run')
    # "(ari window (open))" if a loaded machine started hacme that late
    m = run.wait_log(r'moved: renewal at (\S+) \(ari window(?: \(open\))?\)', timeout=30)
    at = ts(m.group(1))
    t.ok(w1[0] <= at <= w1[1], 'hacme run polled at start and chose a moment inside the window (%s)' % m.group(1))
    c2 = wait_new(st, 'moved.example', c1['serial'], inter, 45)
    t.ok(c2 is not None, 'renewed and hot-loaded')
    if c2 is None:
        sys.exit(t.done())
    t.ok(c2['not_before_ts'] >= w1[0] - 1, 'not before the window opened (notBefore %d, window %d)'
         % (c2['not_before_ts'], w1[0]))
    t.like(run.read_log(), r'moved: ordering \(ari window(?: \(open\))?, replaces %s\)' % re.escape(id1),
           'the order carries replaces = the old certificate\'s ID')
    t.like(pb.proc.read_log(mark), r'ARI: order "\S+" is a replacement of "\S+"',
           'pebble took the order as a replacement')
    t.like(pb.proc.read_log(mark), r'Order \S+ has been marked as replaced',
           'and marked the old order replaced')

    # the new certificate: pebble's own window, polled once, then Retry-After
    id2 = L.ari_cert_id(c2['pem'])
    sti, hdr, doc = pb.renewal_info(c2['pem'])
    want = (ts(doc['suggestedWindow']['start']), ts(doc['suggestedWindow']['end']))

    def last_window():
        w = re.findall(r'moved: ARI window (\S+) \.\. (\S+)', run.read_log())
        return w and (ts(w[-1][0]), ts(w[-1][1]))
    try:
        L.wait_until(lambda: last_window() == want, 20, 'hacme logs pebble\'s window')
    except L.LabError:
        pass
    t.eq(last_window(), want, 'hacme took pebble\'s own window for the new certificate')
    t.ok(want[0] > time.time() + 50 * 86400, 'a window about 2/3 through 90 days')
    L.wait_until(lambda: schedule(cfg).get('moved', {}).get('serial') == c2['serial']
                 and 'ari_next_poll' in schedule(cfg)['moved'], 10, 'schedule.json for the new certificate')
    nxt = ts(schedule(cfg)['moved']['ari_next_poll'])
    t.ok(time.time() + PEBBLE_RETRY_AFTER - 120 <= nxt <= time.time() + PEBBLE_RETRY_AFTER + 1,
         'the next poll is stored Retry-After (6 h) ahead (%+d s from now)' % (nxt - time.time()))

    # ---- 2. a window moved earlier: seen at the next poll, renewed at once
    pb.set_renewal_info(c2['pem'], int(time.time()) - 7200, int(time.time()) - 3600)
    mark = pb.proc.log_mark()
    time.sleep(4)
    t.eq((pb.renewal_info_requests(mark), pb.orders_created(mark)), (0, 0),
         'before the next poll: no renewalInfo request, no order')
    run.stop()
    t.eq(run.returncode(), 0, 'SIGTERM: exit 0')
    run = start_run(lab, cfg, 'hacme-run2')
    time.sleep(4)
    t.eq((pb.renewal_info_requests(mark), pb.orders_created(mark)), (0, 0),
         'restarted: the stored next poll is kept (no request, no order)')
    run.stop()
    # stand in for the 6 hours: move the stored next poll into the past
    path = cfg + '.state/schedule.json'
    sched = schedule(cfg)
    sched['moved']['ari_next_poll'] = L.rfc3339(time.time() - 1)
    with open(path, 'w') as f:
        json.dump(sched, f)
    t0 = time.time()
    run = start_run(lab, cfg, 'hacme-run3')
    c3 = wait_new(st, 'moved.example', c2['serial'], inter, 30)
    t.ok(c3 is not None, 'next poll: the moved window was seen and the certificate renewed at once (%.1f s)'
         % (time.time() - t0))
    log = run.read_log()
    m = re.search(r'moved: ARI window (\S+) \.\. (\S+)\n(?:.*\n)*?.*moved: ordering', log)
    t.ok(m and ts(m.group(2)) < t0, 'polled first: the window in the past (%s)' % (m and m.group(0).split('\n')[0]))
    t.like(run.read_log(), r'moved: renewal at \S+ \(ari window passed\)', 'reason: ari window passed')
    t.like(run.read_log(), r'moved: ordering \(ari window passed, replaces %s\)' % re.escape(id2),
           'with replaces = the replaced certificate\'s ID')
    run.stop()

    # ---- 3. profiles
    prof = lab.hacme_config(pb, st, name='prof.cfg',
                            certs=[('short', ['domains short.example', 'profile shortlived']),
                                   ('long', ['domains long.example', 'profile classic']),
                                   ('nope', ['domains nope.example', 'profile tlsserver'])])
    for name, period in (('short', SHORT), ('long', CLASSIC)):
        rc, out, err = lab.hacme('issue', name, config=prof)
        if not t.eq(rc, 0, 'hacme issue %s' % name):
            t.diag(err)
        c = served(st, '%s.example' % name)
        life = c and c['not_after_ts'] - c['not_before_ts']
        t.eq(life, period - 1, '%s: the lifetime of its profile (%d s)' % (name, period))
    mark = pb.proc.log_mark()
    rc, out, err = lab.hacme('issue', 'nope', config=prof)
    t.eq(rc, 1, 'a profile the directory does not list: exit 1')
    t.like(err, r'cert nope: profile .tlsserver.: ca pebble does not offer it \(it offers: classic, shortlived\)',
           'the error names the profile and what pebble offers')
    t.eq(pb.orders_created(mark), 0, 'and no order was sent')
sys.exit(t.done())
