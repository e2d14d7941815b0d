import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import grpc from '@grpc/grpc-js';
import { fileSource, type MeshlessError, type Source, type SourceEvents, silentLogger } from '@meshless/core';
import { channelCredentials, peerOf as grpcPeerOf, serverCredentials } from '@meshless/grpc';
import { createAgent, createServer, peerOf, peerOfResponse } from '@meshless/http';
import { createTestCA, kubernetesVolume, type TestCA } from '@meshless/testing';
import { request } from 'undici';

// Rotation soak: the mounts of a server and a client rotate every 250 ms for SOAK_SECONDS
// (default 60), with a CA rotation in the middle and deliberately broken generations, while
// HTTP and gRPC clients run bounded load. Zero failed requests; every broken generation is
// reported and never served; the last good generation is the one served at the end.

const SECONDS = Number(process.env.MESHLESS_SOAK_SECONDS ?? 60);
const STEP_MS = 250;
const TD = 'soak.example';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const CLIENT_ID = `spiffe://${TD}/ns/orders/sa/web`;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) };
const echoService = {
  who: { path: '/soak.Echo/Who', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
} as const;

/** Resolves with the next event of `name`, or rejects after timeoutMs. */
function next<K extends 'update' | 'error'>(source: Source, name: K, timeoutMs: number): Promise<SourceEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const emitter = source as unknown as NodeJS.EventEmitter;
    const on = (v: SourceEvents[K][0]) => {
      clearTimeout(timer);
      resolve(v);
    };
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`no '${name}' within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(name, on);
  });
}

describe('soak: rotation under HTTP and gRPC load', function () {
  this.timeout((SECONDS + 60) * 1000);
  let work: string;

  after(() => work && rmSync(work, { recursive: true, force: true }));

  it(`rotates every ${STEP_MS} ms for ${SECONDS} s with a CA rotation and broken generations, dropping nothing`, async () => {
    work = mkdtempSync(join(tmpdir(), 'meshless-soak-'));
    const ca1 = await createTestCA({ trustDomain: TD });
    const ca2 = await createTestCA({ trustDomain: TD });
    const serverVolume = kubernetesVolume(join(work, 'server'));
    const clientVolume = kubernetesVolume(join(work, 'client'));
    const write = (v: typeof serverVolume, m: { cert: string; key: string }, bundle: string) => v.write({ 'tls.crt': m.cert, 'tls.key': m.key, 'ca.crt': bundle });
    await write(serverVolume, await ca1.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }), ca1.bundle);
    await write(clientVolume, await ca1.issue(CLIENT_ID), ca1.bundle);
    const serverSource = await fileSource({ dir: serverVolume.dir }, { logger: silentLogger });
    const clientSource = await fileSource({ dir: clientVolume.dir }, { logger: silentLogger });

    const goodServerSerials = new Set<string>([serverSource.current().identity.serialNumber]);
    const goodClientSerials = new Set<string>([clientSource.current().identity.serialNumber]);
    const seenServerSerials = new Set<string>();
    const seenClientSerials = new Set<string>();

    const http = createServer({ source: serverSource, allow: `spiffe://${TD}/ns/orders/**`, logger: silentLogger }, (req, res) => {
      seenClientSerials.add(peerOf(req)!.serialNumber);
      res.end(serverSource.current().identity.serialNumber);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const httpPort = (http.address() as { port: number }).port;

    const grpcServer = new grpc.Server({ 'grpc.max_connection_age_ms': 2000, 'grpc.max_connection_age_grace_ms': 5000 });
    grpcServer.addService(echoService, {
      who: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        seenClientSerials.add(grpcPeerOf(call)!.serialNumber);
        cb(null, { ok: true });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('localhost:0', serverCredentials({ source: serverSource, allow: `spiffe://${TD}/ns/orders/**`, logger: silentLogger }), (err, port) => (err ? reject(err) : resolve(port))),
    );
    const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
    const grpcClient = new EchoClient(`localhost:${grpcPort}`, channelCredentials({ source: clientSource, allow: SERVER_ID, logger: silentLogger }), { 'grpc.max_connection_age_ms': 2000 } as grpc.ClientOptions) as unknown as {
      who(req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void): void;
      close(): void;
    };
    const agent = createAgent({ source: clientSource, allow: SERVER_ID, logger: silentLogger, maxConnectionAgeMs: 1000, peerContext: true });

    const errors = { server: [] as MeshlessError[], client: [] as MeshlessError[] };
    serverSource.on('error', (e) => errors.server.push(e));
    clientSource.on('error', (e) => errors.client.push(e));

    // Load: bounded in time; every failure is kept with its reason.
    const failures: string[] = [];
    let httpOk = 0;
    let grpcOk = 0;
    let stop = false;
    const httpLoop = async () => {
      while (!stop) {
        try {
          const res = await request(`https://localhost:${httpPort}/`, { dispatcher: agent });
          const body = await res.body.text();
          if (res.statusCode !== 200) failures.push(`http status ${res.statusCode}`);
          else {
            httpOk++;
            seenServerSerials.add(peerOfResponse(res)?.serialNumber ?? body);
          }
        } catch (err) {
          failures.push(`http: ${(err as Error).message}`);
        }
      }
    };
    const grpcLoop = async () => {
      while (!stop) {
        await new Promise<void>((resolve) =>
          grpcClient.who({}, (err) => {
            if (err) failures.push(`grpc: ${err.code} ${err.details}`);
            else grpcOk++;
            resolve();
          }),
        );
      }
    };
    const loops = [...Array.from({ length: 6 }, httpLoop), ...Array.from({ length: 3 }, grpcLoop)];

    // Warm up, then measure the heap at the start.
    while (httpOk + grpcOk < 200 && failures.length === 0) await new Promise((r) => setTimeout(r, 20));
    gc();
    const heapStart = process.memoryUsage().heapUsed;

    // Rotations. Bundle phases: CA1 → CA1+CA2 → (certs from CA2) → CA2 only.
    const started = Date.now();
    const end = started + SECONDS * 1000;
    let step = 0;
    let broken = 0;
    let good = 0;
    let lastServerSerial = serverSource.current().identity.serialNumber;
    while (Date.now() < end) {
      const tickStart = Date.now();
      const phase = (tickStart - started) / (SECONDS * 1000);
      const issuer: TestCA = phase < 0.5 ? ca1 : ca2;
      const bundle = phase < 0.3 ? ca1.bundle : phase < 0.8 ? ca1.bundle + ca2.bundle : ca2.bundle;
      const side = step % 2 === 0 ? 'server' : 'client';
      const volume = side === 'server' ? serverVolume : clientVolume;
      const source = side === 'server' ? serverSource : clientSource;
      const fresh = side === 'server' ? await issuer.issue({ spiffeId: SERVER_ID, dnsNames: ['localhost'] }) : await issuer.issue(CLIENT_ID);
      if (step % 5 === 2) {
        // A broken generation: a mismatched pair, garbage, or an expired certificate.
        const other = await issuer.issue(CLIENT_ID);
        const expired = await issuer.issue({ spiffeId: side === 'server' ? SERVER_ID : CLIENT_ID, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
        const kind = Math.floor(step / 5) % 3;
        const files = kind === 0 ? { cert: fresh.cert, key: other.key } : kind === 1 ? { cert: 'garbage', key: fresh.key } : expired;
        const reported = next(source, 'error', 5000);
        await write(volume, files, bundle);
        const err = await reported;
        assert.match(err.code, /^MESHLESS_ERR_/);
        broken++;
      } else {
        const updated = next(source, 'update', 5000);
        await write(volume, fresh, bundle);
        await updated;
        (side === 'server' ? goodServerSerials : goodClientSerials).add(fresh.serialNumber);
        if (side === 'server') lastServerSerial = fresh.serialNumber;
        good++;
      }
      step++;
      const wait = STEP_MS - (Date.now() - tickStart);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }

    stop = true;
    await Promise.all(loops);
    gc();
    const heapEnd = process.memoryUsage().heapUsed;
    const growthMb = (heapEnd - heapStart) / 1048576;
    console.log(
      `    soak: ${SECONDS} s, ${good} good and ${broken} broken generations, ${httpOk} HTTP + ${grpcOk} gRPC requests, ${failures.length} failed; ` +
        `errors reported: server ${errors.server.length}, client ${errors.client.length}; heap growth ${growthMb.toFixed(1)} MB`,
    );

    try {
      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed`);
      assert.ok(httpOk > 100 && grpcOk > 100, 'both protocols carried load');
      assert.ok(errors.server.length + errors.client.length >= broken, 'every broken generation was reported');
      for (const s of seenServerSerials) assert.ok(goodServerSerials.has(s), `served serial ${s} must be a good generation`);
      for (const s of seenClientSerials) assert.ok(goodClientSerials.has(s), `client serial ${s} must be a good generation`);
      assert.equal(serverSource.current().identity.serialNumber, lastServerSerial, 'the last good generation is served');
      // A new connection presents the last good generation.
      const check = createAgent({ source: clientSource, allow: SERVER_ID, logger: silentLogger, peerContext: true });
      const res = await request(`https://localhost:${httpPort}/`, { dispatcher: check });
      assert.equal(await res.body.text(), lastServerSerial);
      assert.equal(peerOfResponse(res)?.serialNumber, lastServerSerial);
      await check.close();
      assert.ok(growthMb < 50, `heap growth ${growthMb.toFixed(1)} MB must stay bounded`);
    } finally {
      grpcClient.close();
      await agent.close();
      grpcServer.forceShutdown();
      http.close();
      http.closeAllConnections();
      await serverSource.close();
      await clientSource.close();
      await serverVolume.close();
      await clientVolume.close();
    }
  });
});
