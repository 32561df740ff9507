#!/usr/bin/env python3
"""Names issued from the command line are kept, like a certbot lineage:
`hacme issue NAME` for a name without a cert section records it;
`hacme status` shows it as such; `hacme run` renews it (30-second
certificates from pebble) and serves each renewal; a failed issue records
nothing; `hacme remove NAME` forgets it: a running `hacme run` orders it no
more."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


def served(st, name):
    try:
        return L.tls_probe(st.https_port, name)
    except L.LabError:
        return None


def main(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, config={'certificateValidityPeriod': 30},
                    env={'PEBBLE_AUTHZREUSE': '100'})
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, agents=[])
    names_file = cfg + '.state/cli-names'

    rc, out, err = lab.hacme('issue', 'kept.example', config=cfg)
    t.eq(rc, 0, 'hacme issue kept.example (no cert section): exit 0' + ('' if rc == 0 else ': ' + err[-300:]))
    t.ok(os.path.exists(names_file) and 'kept.example' in open(names_file).read().split(),
         'the name is recorded in <state-dir>/cli-names')
    rc, out, err = lab.hacme('status', config=cfg)
    t.like(out, r'(?m)^kept\.example\s+ecdsa-p256\s.*\(hacme issue\)', 'status: shown as kept from `hacme issue`')
    js = json.loads(lab.hacme('status', '--json', config=cfg)[1])
    e = [x for x in js if x['name'] == 'kept.example']
    t.ok(e and e[0]['from_cli'] is True and e[0]['in_config'] is True, 'status --json: from_cli true')

    # a failed issue records nothing
    bad = cfg + '.bad'
    text = open(cfg).read().replace('preflight-connect 127.0.0.1:%d' % st.http_port,
                                    'preflight-connect 127.0.0.1:%d' % lab.port())
    open(bad, 'w').write(text)
    rc, out, err = lab.hacme('issue', 'failed.example', config=bad)
    t.ok(rc == 2 and 'failed.example' not in open(names_file).read().split(),
         'a failed issue records nothing (exit %d)' % rc)

    s0 = served(st, 'kept.example')
    mark = pb.proc.log_mark()
    run = lab.spawn('hacme-run', [L.exe('acme/hacme'), '-c', cfg, 'run'],
                    ready=r'hacme run: 1 certificates', timeout=30)
    t.like(run.read_log(), r'hacme run: 1 certificates', 'hacme run takes the kept name as one certificate')
    seen = [s0 and s0['serial']]
    deadline = time.time() + 50
    while time.time() < deadline and len(set(seen)) < 3:
        i = served(st, 'kept.example')
        if i and i['serial'] != seen[-1]:
            seen.append(i['serial'])
        time.sleep(0.5)
    t.ok(len(set(seen)) >= 3, 'hacme run renews the kept name and serves each renewal (serials %s)' % ' '.join(map(str, seen)))

    rc, out, err = lab.hacme('remove', 'kept.example', config=cfg)
    t.eq(rc, 0, 'hacme remove kept.example: exit 0')
    t.ok('kept.example' not in open(names_file).read().split(), 'remove forgets the name')
    n = pb.orders_created(mark)
    time.sleep(20)   # more than half of a 30 s lifetime: it would have renewed
    t.eq(pb.orders_created(mark), n, 'the running hacme run orders it no more')
    i = served(st, 'kept.example')
    t.ok(i is None or 'Pebble' not in i['issuer'], 'and HAProxy no longer serves it')
    run.stop()


with L.Lab('kept') as lab:
    main(lab)
sys.exit(t.done())
