import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, kubernetesVolume } from '@meshless/testing';
import { JsonChild } from '../helpers/child.js';
import { createTestNetwork, inNamespace, networkUnavailable, returnAddress, stealAddress, type TestNetwork } from './netns.js';
import { readPcap, serverHelloIsTls13, stream, tlsRecords } from './pcap.js';

// Three hosts — client, wire, server — in network namespaces made by this test. The wire sees
// every packet; it sniffs, then plays an active man in the middle.

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/server`;
const CLIENT_ID = `spiffe://${TD}/ns/orders/sa/client`;
const INTRUDER_ID = `spiffe://${TD}/ns/tools/sa/intruder`;
const MARKER = '4111111111111111';
const TCPDUMP = ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].find((p) => existsSync(p));
const node = (script: string, args: string[]) => [process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, 'fixtures', script), ...args]] as const;

describe('network: client — wire — server in namespaces', function () {
  this.timeout(90_000);
  let net: TestNetwork;
  let work: string;
  const dirs: Record<string, string> = {};
  const children: JsonChild[] = [];

  function start(ns: string, script: string, args: string[]): JsonChild {
    const [cmd, argv] = node(script, args);
    const [ipCmd, ipArgs] = inNamespace(ns, cmd, [...argv]);
    const child = new JsonChild(ipCmd, ipArgs);
    children.push(child);
    return child;
  }

  async function capture(port: number): Promise<{ stop: () => Promise<string> }> {
    const file = join(work, `capture-${port}-${Date.now()}.pcap`);
    const [cmd, args] = inNamespace(net.wire, TCPDUMP!, ['-Z', 'root', '--immediate-mode', '-i', net.wireToServer, '-U', '-n', '-s', '0', '-w', file, `tcp port ${port}`]);
    const child = new JsonChild(cmd, args);
    children.push(child);
    await waitForStderr(child, /listening on/);
    return {
      stop: async () => {
        await child.stop('SIGINT');
        return file;
      },
    };
  }

  async function waitForStderr(child: JsonChild, re: RegExp, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!child.stderr.some((l) => re.test(l))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${child.stderr.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function runClient(args: string[]): Promise<JsonChild> {
    const client = start(net.client, 'client.ts', args);
    await client.waitFor((e) => e.event === 'done', 30_000, 'client done');
    return client;
  }

  before(async function () {
    const why = networkUnavailable() ?? (TCPDUMP ? undefined : 'tcpdump is not installed');
    if (why) {
      console.log(`    skipped: ${why}`);
      this.skip();
    }
    work = mkdtempSync(join(tmpdir(), 'meshless-net-'));
    const ca = await createTestCA({ trustDomain: TD });
    const otherCa = await createTestCA({ trustDomain: TD });
    const write = async (name: string, m: { cert: string; key: string; ca: string }) => {
      dirs[name] = join(work, name);
      await kubernetesVolume(dirs[name]).write({ 'tls.crt': m.cert, 'tls.key': m.key, 'ca.crt': m.ca });
    };
    await write('server', await ca.issue({ spiffeId: SERVER_ID, dnsNames: ['server.test'] }));
    await write('client', await ca.issue(CLIENT_ID));
    await write('intruder', await ca.issue({ spiffeId: INTRUDER_ID, dnsNames: ['server.test'] }));
    await write('impostor', await otherCa.issue({ spiffeId: SERVER_ID, dnsNames: ['server.test'] }));
    net = createTestNetwork();
  });

  after(async () => {
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    net?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let server: JsonChild;
  it('starts a meshless server in the server namespace', async () => {
    server = start(net.server, 'server.ts', ['--dir', dirs.server!, '--host', '0.0.0.0', '--port', '8443', '--allow', CLIENT_ID]);
    await server.waitFor((e) => e.event === 'ready', 20_000, 'server ready');
  });

  it('a sniffer on the wire sees only TLS 1.3 records, never the card number', async () => {
    const cap = await capture(8443);
    const client = await runClient(['--dir', dirs.client!, '--url', `https://${net.serverAddr}:8443/pay`, '--allow', SERVER_ID, '--count', '5', '--marker', MARKER]);
    assert.deepEqual(client.events.at(-1), { event: 'done', ok: 5, failed: 0 }, JSON.stringify(client.events));
    await server.waitFor((e) => e.event === 'request' && e.card === MARKER, 5000, 'the server saw the marker in clear');
    const capFile = await cap.stop();
    const { raw, segments } = readPcap(capFile);
    assert.ok(segments.length > 0, 'the capture holds packets');
    assert.equal(raw.includes(Buffer.from(MARKER)), false, 'the marker must not cross the wire in clear');
    const up = tlsRecords(stream(segments, 8443));
    const down = tlsRecords(segments.filter((s) => s.srcPort === 8443).reduce((b, s) => Buffer.concat([b, s.payload]), Buffer.alloc(0)));
    assert.equal(up.rest, 0, 'client→server bytes are all TLS records');
    assert.equal(down.rest, 0, 'server→client bytes are all TLS records');
    assert.ok(serverHelloIsTls13(down.records), 'the server chose TLS 1.3');
    assert.ok(up.records.filter((r) => r.type === 23).length >= 5, 'requests travel as application-data records');
  });

  it('control: the same exchange over plain http does show the marker (so the check can fail)', async () => {
    const plain = start(net.server, 'server.ts', ['--mode', 'plain', '--host', '0.0.0.0', '--port', '8080']);
    await plain.waitFor((e) => e.event === 'ready', 20_000, 'plain server ready');
    const cap = await capture(8080);
    const client = await runClient(['--mode', 'plain', '--url', `http://${net.serverAddr}:8080/pay`, '--count', '2', '--marker', MARKER]);
    assert.deepEqual(client.events.at(-1), { event: 'done', ok: 2, failed: 0 });
    const { raw } = readPcap(await cap.stop());
    assert.ok(raw.includes(Buffer.from(MARKER)), 'plaintext carries the marker');
    await plain.stop();
  });

  for (const [kind, dir, expected] of [
    ['a certificate from another CA', 'impostor', /MESHLESS_ERR_PEER_UNVERIFIED|MESHLESS_ERR_/],
    ['a valid certificate of the same CA for another identity', 'intruder', /MESHLESS_ERR_PEER_DENIED/],
  ] as const) {
    it(`an active man in the middle with ${kind} gets no byte of the request, and cannot call the server`, async () => {
      stealAddress(net, net.serverAddr);
      let proxy: JsonChild | undefined;
      try {
        proxy = start(net.wire, 'proxy.ts', ['--dir', dirs[dir]!, '--host', net.serverAddr, '--port', '8443', '--upstream', `${net.serverAltAddr}:8443`]);
        await proxy.waitFor((e) => e.event === 'ready', 20_000, 'proxy ready');
        const client = await runClient(['--dir', dirs.client!, '--url', `https://${net.serverAddr}:8443/pay`, '--allow', SERVER_ID, '--count', '1', '--marker', MARKER]);
        const error = client.events.find((e) => e.event === 'error');
        assert.ok(error, `the client must refuse: ${JSON.stringify(client.events)}`);
        assert.match(`${error.code} ${error.cause}`, expected);
        assert.deepEqual(client.events.at(-1), { event: 'done', ok: 0, failed: 1 });
        // The proxy's own attempt on the real server, with its certificate as client certificate.
        const upstream = await proxy.waitFor((e) => e.event === 'upstream', 15_000, 'proxy upstream attempt');
        assert.equal(upstream.ok, false, 'the server must refuse the proxy');
        assert.equal(proxy.events.filter((e) => e.event === 'data').length, 0, `the proxy decrypted nothing: ${JSON.stringify(proxy.events)}`);
        if (dir === 'intruder') await server.waitFor((e) => e.event === 'refused' && String(e.peer ?? e.reason).includes(INTRUDER_ID), 5000, 'server logs the refused intruder');
        else await server.waitFor((e) => e.event === 'refused', 5000, 'server refuses the other-CA client');
      } finally {
        await proxy?.stop();
        returnAddress(net, net.serverAddr);
      }
    });
  }
});
