#!/usr/bin/env python3
"""SIGHUP never costs an order (real pebble, HAProxy, hacme run): with five
orders in flight (pebble sleeping before each validation), five SIGHUPs with
the same file keep every order going -- five orders in all, where hacme used
to cancel and re-order them all at every SIGHUP (28 orders for 5
certificates). A section that does change has its order cancelled and
ordered again; the others are not touched."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()
NAMES = ['s%d' % i for i in range(1, 6)]

with L.Lab('sighup') as lab:
    hp = lab.port()
    # pebble sleeps 0..15 s before each validation: orders stay in flight
    pb = lab.pebble(http_port=hp, env={'PEBBLE_VA_NOSLEEP': '0', 'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, certs=[(n, ['domains %s.example' % n]) for n in NAMES],
                           agents=[])
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                    ready=r'hacme run: \d+ certificates')
    L.wait_until(lambda: len(re.findall(r'order https://', run.read_log())) >= 5, 30,
                 'five orders created', run)
    for i in range(5):
        mark = run.log_mark()
        run.kill(signal.SIGHUP)
        run.wait_log(r'SIGHUP: .* reloaded', timeout=10, since=mark)
        time.sleep(0.3)
    log = run.read_log()
    done_before = len(re.findall(r': new certificate, serial', log))
    m = re.findall(r'SIGHUP: .* reloaded: 5 certificates, 0 removed; 5 unchanged \((\d+) orders in flight go on\)', log)
    t.eq(len(m), 5, 'five SIGHUPs with the same file: every section unchanged, every time')
    t.ok(m and int(m[0]) + done_before >= 5,
         'the first SIGHUP found the orders in flight and kept them (%s in flight)' % (m[0] if m else '?'))
    t.ok('its order is cancelled' not in log, 'no order was cancelled')

    # one section changes (key type) while orders may still run
    text = open(cfg).read()
    lab.write(os.path.basename(cfg), text.replace('cert s5\n    domains s5.example\n',
                                                  'cert s5\n    domains s5.example\n    key rsa2048\n'))
    mark = run.log_mark()
    run.kill(signal.SIGHUP)
    run.wait_log(r'SIGHUP: .* reloaded', timeout=10, since=mark)
    after = run.read_log(mark)
    t.like(after, r'reloaded: 5 certificates, 0 removed; 4 unchanged', 'the changed section is not kept')
    t.ok(not re.search(r's[1-4]: changed or removed', after), 'the unchanged sections\' orders are not cancelled')

    inter = L.cert_info(pb.intermediates(0))['subject']

    def served(n):
        try:
            return L.tls_probe(st.https_port, n + '.example')['issuer'] == inter
        except L.LabError:
            return False

    for n in NAMES:
        L.wait_until(lambda: served(n), 90, '%s served' % n, run)
        t.ok(served(n), '%s issued and served' % n)
    L.wait_until(lambda: re.search(r's5: new certificate', run.read_log(mark)), 60,
                 's5 ordered again with its new key', run)
    orders = pb.orders_created()
    t.eq(orders, 6, 'pebble created 6 orders: one per section, one more for the changed one (was 28 for 5)')

    # sections added, then removed while their orders run: cancelled, not leaked
    base = open(cfg).read()
    lab.write(os.path.basename(cfg), base + ''.join('cert n%d\n    domains n%d.example\n' % (i, i)
                                                    for i in range(3)))
    mark = run.log_mark()
    run.kill(signal.SIGHUP)
    L.wait_until(lambda: len(re.findall(r'n\d: order https://', run.read_log(mark))) >= 3, 30,
                 'three new orders', run)
    lab.write(os.path.basename(cfg), base)
    mark2 = run.log_mark()
    run.kill(signal.SIGHUP)
    run.wait_log(r'SIGHUP: .* reloaded', timeout=10, since=mark2)
    cancelled = re.findall(r'n\d: changed or removed: its order is cancelled', run.read_log(mark2))
    t.ok(1 <= len(cancelled) <= 3, 'removed sections: their orders in flight are cancelled (%d)' % len(cancelled))
    t.like(run.read_log(mark2), r'reloaded: 5 certificates, 3 removed; 5 unchanged', 'the other five stay')
    time.sleep(2)
    t.eq(pb.orders_created() - orders, 3, 'no order again for the removed sections')
    run.stop()
    t.eq(run.returncode(), 0, 'hacme run stopped cleanly')
    leaks = re.findall(r'(?:LeakSanitizer|ERROR: AddressSanitizer).*', run.read_log())
    t.eq(leaks, [], 'no sanitizer report (meaningful in a -Db_sanitize=address build)')
sys.exit(t.done())
