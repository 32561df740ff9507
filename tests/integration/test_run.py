#!/usr/bin/env python3
"""hacme run against the real pebble, HAProxy (shipped haproxy-conf) and its
own hacme-spoa child: three certificates served; 60-second certificates
renewed and hot-loaded again and again, never an expired one served; the
child agent killed and restarted; a restart orders nothing; SIGHUP adds and
removes; revoke; account rollover."""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


def serving(st, name, root=None):
    try:
        return L.tls_probe(st.https_port, name, ca=root)
    except L.LabError:
        return None


def wait_served(st, name, pred, timeout, what):
    deadline = time.time() + timeout
    info = None
    while time.time() < deadline:
        info = serving(st, name)
        if info is not None and pred(info):
            return info
        time.sleep(0.3)
    t.diag('%s: last seen %s' % (what, info and (info['serial'], info['issuer'])))
    return None


def start_run(lab, cfg, name='hacme-run'):
    p = lab.spawn(name, [L.exe('acme/hacme'), '-c', cfg, 'run'],
                  ready=r'hacme run: \d+ certificates')
    return p


def main_case(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, config={'certificateValidityPeriod': 60},
                    env={'PEBBLE_AUTHZREUSE': '100'})
    st = lab.stack(http_port=hp, agent=False)
    names = ['one.example', 'two.example', 'three.example']
    certs = [(n.split('.')[0], ['domains %s' % n]) for n in names]
    mport = lab.port()
    cfg = lab.hacme_config(pb, st, certs=certs, agents=[], glob=['metrics-listen 127.0.0.1:%d' % mport])
    inter = L.cert_info(pb.intermediates(0))['subject']
    pebble_issued = lambda i: i['issuer'] == inter

    mark = pb.proc.log_mark()
    run = start_run(lab, cfg)
    first = {}
    for n in names:
        info = wait_served(st, n, pebble_issued, 30, n)
        t.ok(info is not None, 'hacme run: %s is served over TLS by SNI with a pebble certificate' % n)
        first[n] = info and info['serial']
    t.eq(pb.orders_created(mark), 3, 'three orders for three certificates')
    hap_pid = st.hap.info().get('Pid')

    # the child agent: killed -> restarted by run
    out = subprocess.run(['pgrep', '-f', 'hacme-spoa --listen 127.0.0.1:%d' % st.agent_port],
                         capture_output=True, text=True).stdout.split()
    t.eq(len(out), 1, 'hacme run started one hacme-spoa on spoa-listen')
    if out:
        agent_pid = int(out[0])
        os.kill(agent_pid, signal.SIGKILL)
        try:
            run.wait_log(r'the agent hacme-spoa exited', timeout=10)
            L.wait_until(lambda: subprocess.run(['pgrep', '-f', 'hacme-spoa --listen 127.0.0.1:%d' % st.agent_port],
                                                capture_output=True, text=True).stdout.split() not in ([], [str(agent_pid)]),
                         10, 'agent restarted')
            ok = True
        except L.LabError:
            ok = False
        t.ok(ok, 'the killed agent is restarted by hacme run')

    # 60 s certificates: renewed at half their life, hot-loaded, repeatedly
    seen = {n: [first[n]] for n in names}
    expired_served = []
    deadline = time.time() + 75
    while time.time() < deadline and not all(len(set(v)) >= 3 for v in seen.values()):
        for n in names:
            info = serving(st, n)
            if info is None:
                continue
            if info['not_after_ts'] is not None and info['not_after_ts'] <= time.time():
                expired_served.append((n, info['serial']))
            if info['serial'] != seen[n][-1]:
                seen[n].append(info['serial'])
        time.sleep(0.5)
    for n in names:
        t.ok(len(set(seen[n])) >= 3, '%s: renewed and hot-loaded on its own, twice (serials %s)' % (n, ' '.join(str(x) for x in seen[n])))
    t.eq(expired_served, [], 'HAProxy never served an expired certificate')
    t.eq(st.hap.info().get('Pid'), hap_pid, 'the same HAProxy process all along (no reload)')

    # status, table and JSON
    rc, out, err = lab.hacme('status', config=cfg)
    t.eq(rc, 0, 'status: exit 0')
    t.like(out, r'^NAME\s+KEY\s+CHALLENGE\s+NOTAFTER\s+LEFT\s+NEXT\s+REASON\s+DEPLOYED\s+ERROR', 'status prints the columns DESIGN.md gives')
    for n in names:
        t.like(out, r'(?m)^%s\s+ecdsa-p256\s+http-01\s+\S+Z\s+\S+\s+\S+\s+1/2 of lifetime left\s+1/1\s' % n.split('.')[0],
               'status: %s, its renewal reason, deployed to 1 of 1 HAProxy' % n.split('.')[0])
    rc, out, err = lab.hacme('status', '--json', config=cfg)
    js = json.loads(out)
    one = [e for e in js if e['name'] == 'one'][0]
    t.ok(one['domains'] == ['one.example'] and one['key'] == 'ecdsa-p256' and one['serial']
         and one['not_after'] and one['next_renewal'] and one['deployed'][0]['ok'] is True,
         'status --json: name, domains, key, serial, not_after, next_renewal, deployed[].ok')

    # metrics
    st_, h, body = L.http_request('GET', 'http://127.0.0.1:%d/metrics' % mport)
    body = body.decode()
    t.eq(st_, 200, 'metrics endpoint answers 200')
    t.like(body, r'(?m)^hacme_certificate_not_after_seconds\{name="one"\} \d{10}$', 'metrics: expiry per certificate')
    t.like(body, r'(?m)^hacme_certificate_next_renewal_seconds\{name="two",reason="[^"]+"\} \d{10}$', 'metrics: next renewal and why')
    t.like(body, r'(?m)^hacme_orders_total\{name="three",outcome="ok"\} [1-9]\d*$', 'metrics: orders by outcome')
    t.like(body, r'(?m)^hacme_deploy_ok\{name="one",runtime_api="unix@[^"]+",serial="[0-9A-F]+"\} 1$', 'metrics: deploy result per HAProxy')
    t.like(body, r'(?m)^hacme_agent_up\{agent="unix@[^"]+agent.sock"\} 1$', 'metrics: the agent answers STATS')
    for k in ('hits_total', 'misses_total', 'invalid_total', 'protocol_errors_total'):
        t.like(body, r'(?m)^hacme_agent_%s\{agent="[^"]+"\} \d+$' % k, 'metrics: the agent\'s %s from its STATS' % k)

    # restart: nothing valid is ordered again
    run.stop()
    t.eq(run.returncode(), 0, 'SIGTERM: hacme run exits 0')
    mark = pb.proc.log_mark()
    run = start_run(lab, cfg, name='hacme-run2')
    time.sleep(3)
    t.eq(pb.orders_created(mark), 0, 'a restarted hacme run orders nothing that is still valid')
    run.stop()
    return pb, st, cfg


def sighup_case(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp, agent=False)
    cfg = lab.hacme_config(pb, st, certs=[('keep', ['domains keep.example']),
                                          ('drop', ['domains drop.example'])], agents=[])
    inter = L.cert_info(pb.intermediates(0))['subject']
    ours = lambda i: i['issuer'] == inter
    run = start_run(lab, cfg)
    t.ok(wait_served(st, 'keep.example', ours, 30, 'keep') is not None, 'SIGHUP case: keep.example served')
    t.ok(wait_served(st, 'drop.example', ours, 30, 'drop') is not None, 'SIGHUP case: drop.example served')

    # a broken config: the old one stays
    good = open(cfg).read()
    lab.write(os.path.basename(cfg), good + 'cert bad\n    domains *.bad.example\n')
    mark = run.log_mark()
    run.kill(signal.SIGHUP)
    run.wait_log(r'keeping the running configuration', timeout=10, since=mark)
    t.like(run.read_log(mark), r'hacme\.cfg:\d+: .*wildcard', 'SIGHUP with an error: file:line logged, old config kept')
    t.ok(wait_served(st, 'drop.example', ours, 5, 'drop still') is not None, 'nothing was removed')

    lab.write(os.path.basename(cfg), good.replace('cert drop\n    domains drop.example\n',
                                                  'cert added\n    domains added.example\n'))
    mark = run.log_mark()
    run.kill(signal.SIGHUP)
    run.wait_log(r'SIGHUP: .* reloaded', timeout=10, since=mark)
    t.ok(wait_served(st, 'added.example', ours, 30, 'added') is not None, 'SIGHUP: the added section is issued and served')
    t.ok(wait_served(st, 'drop.example', lambda i: not ours(i), 15, 'dropped') is not None,
         'SIGHUP: the removed section is taken out of HAProxy (its SNI falls back)')
    t.ok(wait_served(st, 'keep.example', ours, 5, 'keep') is not None, 'the kept section is still served')

    # revoke (CLI beside the running daemon): pebble says revoked, a replacement is served
    before = serving(st, 'keep.example')
    rc, out, err = lab.hacme('revoke', 'keep', '--reason', 'keyCompromise', config=cfg)
    t.eq(rc, 0, 'revoke: exit 0 (%s)' % (out + err).strip()[-300:])
    status = pb.cert_status(before['serial'])
    t.eq(status and status.get('Status'), 'Revoked', 'pebble reports the certificate revoked')
    after = wait_served(st, 'keep.example', lambda i: i['serial'] != before['serial'] and ours(i), 20, 'replacement')
    t.ok(after is not None, 'the replacement certificate is served')

    # account rollover, then another issuance with the new key
    acct = os.path.join(cfg + '.state', 'account', 'pebble', 'key.pem')
    old_key = open(acct).read()
    rc, out, err = lab.hacme('account', 'rollover', config=cfg)
    t.eq(rc, 0, 'account rollover: exit 0 (%s)' % (out + err).strip()[-300:])
    t.ok(open(acct).read() != old_key, 'the stored account key changed')
    rc, out, err = lab.hacme('renew', '--force', 'keep', config=cfg)
    t.eq(rc, 0, 'after the rollover, another issuance works with the new key (%s)' % (out + err).strip()[-300:])
    rc, out, err = lab.hacme('account', 'show', config=cfg)
    t.like(out, r'status:\s+valid', 'the account is still valid after the rollover')
    run.stop()
    t.eq(run.returncode(), 0, 'hacme run stops cleanly')

    # deactivation ends the account: the CA refuses it from then on
    rc, out, err = lab.hacme('account', 'deactivate', config=cfg)
    t.eq(rc, 0, 'account deactivate: exit 0 (%s)' % (out + err).strip()[-200:])
    t.like(out, r'account https://\S+ deactivated', 'it says which account')
    rc, out, err = lab.hacme('renew', '--force', 'keep', config=cfg)
    t.eq(rc, 2, 'an order with the deactivated account fails: exit 2')
    t.like(err, r'(?i)deactivated|unauthorized', 'and says the account is no longer usable (%s)' % err.strip()[-200:])


def agent_pids(port):
    return subprocess.run(['pgrep', '-f', 'hacme-spoa --listen 127.0.0.1:%d' % port],
                          capture_output=True, text=True).stdout.split()


def tokens_back_case(lab):
    """pebble sleeping before each validation (PEBBLE_VA_NOSLEEP off) keeps
    tokens pending for seconds: kill the child agent then, and the restarted
    one must hold them again, and the certificate still comes."""
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_VA_NOSLEEP': '0', 'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp, agent=False)
    names = ['t%d.example' % i for i in range(5)]
    cfg = lab.hacme_config(pb, st, certs=[('slow', ['domains ' + ' '.join(names)])], agents=[])
    sock = os.path.join(cfg + '.state', 'agent.sock')
    run = start_run(lab, cfg)
    before = []
    deadline = time.time() + 20
    while time.time() < deadline and not before:
        before = L.agent_list(sock) or []
        time.sleep(0.05)
    t.ok(len(before) > 0, 'tokens are pending on the child agent while pebble validates (%d)' % len(before))
    pids = agent_pids(st.agent_port)
    if pids:
        os.kill(int(pids[0]), signal.SIGKILL)
    after = None
    deadline = time.time() + 10
    while time.time() < deadline:
        now = agent_pids(st.agent_port)
        if now and now != pids:
            after = L.agent_list(sock)
            if after:       # hacme re-adds them once it has reconnected
                break
        time.sleep(0.05)
    t.ok(after is not None, 'the killed agent was restarted')
    order_done = 'slow: new certificate' in run.read_log()
    if order_done:
        t.skip('the restarted agent holds the pending tokens again', 'pebble finished the order before the restart')
    else:
        # a fresh agent holds nothing: whatever it holds, hacme re-added (the
        # tokens seen before the kill may have been the pre-flight's probes,
        # withdrawn since: the re-added ones are those pending now)
        m = re.search(r'up again, (\d+) pending tokens re-added', run.read_log())
        t.ok(after and m and int(m.group(1)) >= 1,
             'the restarted agent holds the pending tokens again (%d; %d seen before the kill)'
             % (len(after or []), len(before)))
    inter = L.cert_info(pb.intermediates(0))['subject']
    t.ok(wait_served(st, names[0], lambda i: i['issuer'] == inter, 60, 'slow') is not None,
         'the certificate was issued through the restarted agent and is served')
    run.stop()


def failure_case(lab):
    """A name the CA cannot validate: the failure, its backoff and the
    failed-validation budget are written down and survive a restart."""
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp, agent=False)
    L.http_request('POST', pb.challtestsrv_mgmt + '/add-a',
                   body=json.dumps({'host': 'broken.example.', 'addresses': ['127.0.0.2']}).encode())
    cfg = lab.hacme_config(pb, st, certs=[('broken', ['domains broken.example'])], agents=[])
    run = start_run(lab, cfg)
    run.wait_log(r'broken: order failed \(1 in a row\)', timeout=30)
    t0 = time.time()

    def entry():    # written just after the error line is logged
        try:
            return json.load(open(os.path.join(cfg + '.state', 'schedule.json')))['broken']
        except (OSError, ValueError, KeyError):
            return None
    L.wait_until(lambda: (entry() or {}).get('failures') == 1, 10, 'schedule.json with the failure')
    sched = entry()
    t.eq(sched.get('failures'), 1, 'schedule.json: one failure recorded')
    t.like(sched.get('last_error', ''), r'urn:ietf:params:acme:error:connection', 'schedule.json: the last error, in words')
    t.eq(len(sched.get('validation_failures', [])), 1, 'schedule.json: the failed validation counts against the per-name budget')
    na = time.mktime(time.strptime(sched['next_attempt'], '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
    t.ok(t0 + 30 <= na <= t0 + 70, 'the next attempt backs off (%+.0f s)' % (na - t0))
    run.stop()
    mark = pb.proc.log_mark()
    run = start_run(lab, cfg, name='hacme-run-again')
    time.sleep(3)
    t.eq(pb.orders_created(mark), 0, 'a restart keeps the backoff: no new order for the failing name')
    run.stop()


with L.Lab('failure') as lab:
    failure_case(lab)
with L.Lab('tokens') as lab:
    tokens_back_case(lab)
with L.Lab('run') as lab:
    main_case(lab)
with L.Lab('sighup') as lab:
    sighup_case(lab)
sys.exit(t.done())
