#!/usr/bin/env python3
"""hacme issue against the real pebble, through the real HAProxy (shipped
haproxy-conf) and the real hacme-spoa: multi-name, every key type, badNonce
storms, EAB, preferred-chain, a name the CA cannot validate, authorization
reuse, and the pre-flight self-check."""

import http.server
import json
import os
import re
import socketserver
import stat
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get('HACME_SRC', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'lab'))
import lab as L  # noqa: E402

t = L.TAP()


def run(lab, cfg, *args, timeout=180):
    rc, out, err = lab.hacme(*args, config=cfg, timeout=timeout)
    return rc, out, err


def pem_blocks(text):
    return re.findall(r'-----BEGIN [A-Z ]+-----\n.*?-----END [A-Z ]+-----\n', text, re.S)


def verify_chain(lab, pb, chain_pem, root_index=0, name='v'):
    """openssl verify of the leaf against pebble's root i, with the rest of
    the chain as untrusted intermediates."""
    blocks = pem_blocks(chain_pem)
    root = lab.write('%s-root%d.pem' % (name, root_index), pb.roots(root_index))
    leaf = lab.write('%s-leaf.pem' % name, blocks[0])
    inter = lab.write('%s-inter.pem' % name, ''.join(blocks[1:]) or blocks[0])
    rc, out, err = L._run(['openssl', 'verify', '-CAfile', root, '-untrusted', inter, leaf])
    return rc == 0 and out.strip().endswith('OK'), (out + err).strip()


def state(cfg, *parts):
    return os.path.join(cfg + '.state', *parts)


def read(path):
    with open(path) as f:
        return f.read()


def agent_tokens(agent):
    rep = agent.ctl('LIST')
    return [l for l in rep if l != 'END']


class FixedAnswer(http.server.BaseHTTPRequestHandler):
    """Something else on port 80: answers every path with 200 'hello'."""

    def do_GET(self):
        body = b'hello from something else'
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def case_main(lab):
    """One pebble rejecting half of all nonces and never reusing an
    authorization: multi-name, every key type, idempotent issue, a name
    the CA cannot validate."""
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_WFE_NONCEREJECT': '50',
                                       'PEBBLE_AUTHZREUSE': '0'})
    st = lab.stack(http_port=hp)
    certs = [('multi', ['domains a.example www.a.example b.example'])]
    for kt in ('ecdsa-p384', 'rsa2048', 'rsa3072', 'rsa4096'):
        certs.append((kt, ['domains %s.example' % kt, 'key %s' % kt]))
    certs.append(('broken', ['domains broken.example']))
    cfg = lab.hacme_config(pb, st, certs=certs)

    rc, out, err = run(lab, cfg, 'check')
    t.eq(rc, 0, 'hacme check accepts the config (%s)' % (out + err).strip()[:200])

    mark = pb.proc.log_mark()
    rc, out, err = run(lab, cfg, '-v', 'issue', 'multi')
    t.eq(rc, 0, 'issue multi: exit 0 (%s)' % err.strip()[-300:])
    t.like(out, r'multi: issued, serial [0-9A-F]+, valid until ', 'issue prints the serial and the end date')
    bad = len(re.findall(r'badNonce', pb.proc.read_log(mark)))
    t.diag('pebble rejected %d nonces during that order' % bad)
    t.ok(bad > 0 or 'badNonce' in err, 'with PEBBLE_WFE_NONCEREJECT=50 pebble rejected nonces, and the order still succeeded')

    chain = read(state(cfg, 'certs', 'multi', 'chain.pem'))
    ok, why = verify_chain(lab, pb, chain, 0, 'multi')
    t.ok(ok, 'the chain verifies with openssl against pebble\'s root from its management API (%s)' % why)
    info = L.cert_info(pem_blocks(chain)[0])
    t.eq(sorted(info['sans']), sorted(['a.example', 'www.a.example', 'b.example']), 'the certificate names exactly the three domains')
    t.eq(info['key_type'], 'ecdsa-p256', 'default key type is ecdsa-p256')
    key = read(state(cfg, 'certs', 'multi', 'key.pem'))
    t.eq(stat.S_IMODE(os.stat(state(cfg, 'certs', 'multi', 'key.pem')).st_mode), 0o600, 'key.pem is 0600')
    t.eq(stat.S_IMODE(os.stat(state(cfg, 'certs')).st_mode) & 0o077, 0, 'the certs directory is not open to others')
    hpem = read(state(cfg, 'certs', 'multi', 'haproxy.pem'))
    t.eq(hpem, key + chain, 'haproxy.pem is key + leaf + chain')
    t.ok('\n\n' not in hpem and hpem.endswith('\n'), 'haproxy.pem has no blank line')
    meta = json.loads(read(state(cfg, 'certs', 'multi', 'meta.json')))
    t.eq(meta.get('serial'), info['serial'], 'meta.json holds the serial')
    t.eq(meta.get('names'), ['a.example', 'www.a.example', 'b.example'], 'meta.json holds the names in config order')
    for k in ('not_before', 'not_after', 'issuer', 'ca', 'order_url', 'key_type'):
        t.ok(meta.get(k), 'meta.json has %s' % k)
    t.eq(agent_tokens(st.agent), [], 'no token is left published on the agent after the order')
    rc2, out2, err2 = run(lab, cfg, 'account', 'show')
    t.eq(rc2, 0, 'account show: exit 0 (%s)' % err2.strip()[-200:])
    t.like(out2, r'status:\s+valid', 'account show reports a valid account')
    t.like(out2, r'contact:\s+mailto:ops@example.com', 'account show lists the contact')

    # idempotent: a valid stored certificate is not ordered again
    mark = pb.proc.log_mark()
    rc, out, err = run(lab, cfg, 'issue', 'multi')
    t.eq(rc, 0, 'issue multi again: exit 0')
    t.like(out, r'multi: valid until ', 'a second issue says the stored certificate is valid')
    t.eq(pb.orders_created(mark), 0, 'and creates no new order at pebble')

    # every key type, concurrently
    rc, out, err = run(lab, cfg, 'issue', 'ecdsa-p384', 'rsa2048', 'rsa3072', 'rsa4096')
    t.eq(rc, 0, 'four certificates of the other key types: exit 0 (%s)' % err.strip()[-300:])
    for kt in ('ecdsa-p384', 'rsa2048', 'rsa3072', 'rsa4096'):
        chain = read(state(cfg, 'certs', kt, 'chain.pem'))
        info = L.cert_info(pem_blocks(chain)[0])
        t.eq(info['key_type'], kt, '%s: the certificate\'s key is %s' % (kt, kt))
        ok, why = verify_chain(lab, pb, chain, 0, kt)
        t.ok(ok, '%s: the chain verifies (%s)' % (kt, why))

    # the CA cannot validate: its DNS sends broken.example to 127.0.0.2,
    # where nothing listens; the pre-flight (through preflight-connect)
    # passes, so the failure is the CA's own
    st_, h, body = L.http_request('POST', pb.challtestsrv_mgmt + '/add-a',
                                  body=json.dumps({'host': 'broken.example.', 'addresses': ['127.0.0.2']}).encode())
    t.eq(st_, 200, 'challtestsrv points broken.example at 127.0.0.2')
    rc, out, err = run(lab, cfg, 'issue', 'broken')
    t.eq(rc, 2, 'a name the CA cannot validate: exit 2')
    t.like(err, r'broken\.example: .*\(urn:ietf:params:acme:error:connection\).*check that port 80 of broken\.example',
           'the error names the name, the CA\'s problem type and the fix')
    t.eq(agent_tokens(st.agent), [], 'after the failed order no token is left published')
    t.ok(not os.path.exists(state(cfg, 'certs', 'broken', 'chain.pem')), 'nothing is stored for the failed name')


def case_reuse_preflight(lab):
    """pebble reusing every valid authorization: a second order publishes
    nothing; the pre-flight stops before the CA validates anything."""
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_AUTHZREUSE': '100'})
    st = lab.stack(http_port=hp)
    dead = lab.port()
    other = socketserver.TCPServer(('127.0.0.1', 0), FixedAnswer)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    certs = [('reuse', ['domains r1.example r2.example']),
             ('samekey', ['domains samekey.example', 'reuse-key on'])]
    cfg = lab.hacme_config(pb, st, certs=certs)
    rc, out, err = run(lab, cfg, 'issue', 'reuse', 'samekey')
    t.eq(rc, 0, 'first order: exit 0 (%s)' % err.strip()[-300:])
    key1 = read(state(cfg, 'certs', 'reuse', 'key.pem'))
    same1 = read(state(cfg, 'certs', 'samekey', 'key.pem'))
    serial1 = json.loads(read(state(cfg, 'certs', 'samekey', 'meta.json')))['serial']
    rc, out, err = run(lab, cfg, 'renew', '--force', 'samekey')
    t.eq(rc, 0, 'renew --force with reuse-key on: exit 0 (%s)' % err.strip()[-300:])
    t.eq(read(state(cfg, 'certs', 'samekey', 'key.pem')), same1, 'reuse-key on: the renewed certificate has the same key')
    t.ok(json.loads(read(state(cfg, 'certs', 'samekey', 'meta.json')))['serial'] != serial1, 'and a new serial')
    mark = pb.proc.log_mark()
    rc, out, err = run(lab, cfg, 'renew', '--force', 'reuse')
    t.eq(rc, 0, 'renew --force: exit 0 (%s)' % err.strip()[-300:])
    t.like(out, r'reuse: issued, .*2 of 2 authorizations reused', 'the second order found both authorizations valid')
    t.eq(pb.validations(mark), 0, 'pebble validated nothing for the second order')
    t.eq(pb.orders_created(mark), 1, 'exactly one new order')
    t.ok(read(state(cfg, 'certs', 'reuse', 'key.pem')) != key1, 'reuse-key off (default): a new key for the new certificate')

    for connect, want, what in ((dead, 'nothing listens', 'nothing listens on the port'),
                                (other.server_address[1], 'answer is not ours', 'another server answers')):
        cfg2 = lab.hacme_config(pb, st, certs=[('pf', ['domains pf%d.example' % connect])],
                                name='pf-%d.cfg' % connect)
        text = read(cfg2).replace('preflight-connect 127.0.0.1:%d' % st.http_port,
                                  'preflight-connect 127.0.0.1:%d' % connect)
        lab.write(os.path.basename(cfg2), text)
        mark = pb.proc.log_mark()
        rc, out, err = run(lab, cfg2, 'issue', 'pf')
        t.eq(rc, 2, 'pre-flight, %s: exit 2' % what)
        t.like(err, r'pf%d\.example: pre-flight: %s' % (connect, want), 'pre-flight says exactly "%s"' % want)
        t.eq(pb.validations(mark), 0, 'pebble was not asked to validate anything (%s)' % what)
        t.eq(agent_tokens(st.agent), [], 'no token or probe left on the agent (%s)' % what)
    # preflight off: the same broken path goes to the CA
    cfg3 = lab.hacme_config(pb, st, certs=[('pfoff', ['domains pfoff.example', 'preflight off'])],
                            name='pfoff.cfg')
    lab.write('pfoff.cfg', read(cfg3).replace('preflight-connect 127.0.0.1:%d' % st.http_port,
                                             'preflight-connect 127.0.0.1:%d' % dead))
    rc, out, err = run(lab, cfg3, 'issue', 'pfoff')
    t.eq(rc, 0, '`preflight off` skips the self-check (the CA itself reaches HAProxy): exit 0 (%s)' % err.strip()[-200:])
    other.shutdown()


def case_eab(lab):
    hp = lab.port()
    kid, hmac = 'kid-hacme', 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W'
    pb = lab.pebble(http_port=hp, config={'externalAccountBindingRequired': True,
                                          'externalAccountMACKeys': {kid: hmac}})
    st = lab.stack(http_port=hp)
    cfg = lab.hacme_config(pb, st, certs=[('eab', ['domains eab.example'])], name='noeab.cfg')
    rc, out, err = run(lab, cfg, 'issue', 'eab')
    t.eq(rc, 2, 'a CA that requires EAB, no eab-kid: exit 2')
    t.like(err, r'requires External Account Binding: set eab-kid and eab-hmac-key', 'the error says which keywords to set')
    cfg = lab.hacme_config(pb, st, certs=[('eab', ['domains eab.example'])], name='eab.cfg',
                           ca=['eab-kid %s' % kid, 'eab-hmac-key %s' % hmac])
    rc, out, err = run(lab, cfg, 'issue', 'eab')
    t.eq(rc, 0, 'with eab-kid and eab-hmac-key: exit 0 (%s)' % err.strip()[-300:])
    ok, why = verify_chain(lab, pb, read(state(cfg, 'certs', 'eab', 'chain.pem')), 0, 'eab')
    t.ok(ok, 'the EAB account got a certificate that verifies (%s)' % why)


def case_chain(lab):
    hp = lab.port()
    pb = lab.pebble(http_port=hp, env={'PEBBLE_ALTERNATE_ROOTS': '1'})
    st = lab.stack(http_port=hp)
    r1 = L.cert_info(pb.roots(1))
    cn = re.search(r'CN\s*=\s*(.*)$', r1['subject']).group(1).strip()
    cfg = lab.hacme_config(pb, st, certs=[('alt', ['domains alt.example', 'preferred-chain "%s"' % cn]),
                                          ('def', ['domains def.example'])],
                           ca=['account-key rsa2048'])
    rc, out, err = run(lab, cfg, 'issue', 'alt', 'def')
    t.eq(rc, 0, 'preferred-chain: exit 0 (%s)' % err.strip()[-300:])
    ok, why = verify_chain(lab, pb, read(state(cfg, 'certs', 'alt', 'chain.pem')), 1, 'alt')
    t.ok(ok, 'preferred-chain "%s": the stored chain leads to pebble\'s alternate root (%s)' % (cn, why))
    ok, why = verify_chain(lab, pb, read(state(cfg, 'certs', 'alt', 'chain.pem')), 0, 'alt0')
    t.ok(not ok, 'and not to the default root')
    ok, why = verify_chain(lab, pb, read(state(cfg, 'certs', 'def', 'chain.pem')), 0, 'def')
    t.ok(ok, 'without preferred-chain the default chain is kept (%s)' % why)
    acct = read(state(cfg, 'account', 'pebble', 'key.pem'))
    rc, out, err = L._run(['openssl', 'pkey', '-noout', '-text'], input=acct.encode())
    t.like(out, r'Private-Key: \(2048 bit', 'account-key rsa2048: the account key is RSA 2048 (JWS RS256 accepted by pebble)')


def case_shipped_configs(lab):
    """Every hacme config the project ships passes `hacme check --offline`
    (the live checks would look at this host's /var/lib/hacme and HAProxy)."""
    for rel in ('docker/hacme.cfg.example', 'docker/hacme-demo.cfg'):
        rc, out, err = lab.hacme('check', '--offline', config=os.path.join(L.SRC, rel))
        t.eq(rc, 0, 'hacme check %s (%s)' % (rel, (out + err).strip()))
    rc, out, err = lab.hacme('check', config=lab.write('bad.cfg', 'global\n    concurency 4\nca x\n    directory https://x.example/dir\n'))
    t.eq(rc, 1, 'hacme check of a bad config: exit 1')
    t.like(err, r'bad\.cfg:2: .*concurency.*did you mean .concurrency', 'the error names file:line and the fix')


with L.Lab('configs') as lab:
    case_shipped_configs(lab)
with L.Lab('issue') as lab:
    case_main(lab)
with L.Lab('reuse') as lab:
    case_reuse_preflight(lab)
with L.Lab('eab') as lab:
    case_eab(lab)
with L.Lab('chain') as lab:
    case_chain(lab)
sys.exit(t.done())
