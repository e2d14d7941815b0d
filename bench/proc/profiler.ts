// In-process V8 CPU profiling for bench children, around the measured window only (no start-up,
// no warm-up): `profileStart` and `profileStop` IPC requests. The reply summarises the profile:
// sampled time by area (meshless, undici, node's HTTP, TLS and sockets, GC…) and the top
// functions by self time, in ms; the orchestrator divides by the window's requests.
import { Session } from 'node:inspector';
import { handle } from './ipc.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

let session: Session | undefined;
let cpuAtStart: NodeJS.CpuUsage | undefined;

function post<T>(method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => session!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))));
}

/** Where a function lives, in a few areas a reader can act on. */
function areaOf(cf: CallFrame): string {
  const { url, functionName } = cf;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)') return 'native (program)';
  if (/packages\/(core|http|grpc)\//.test(url) || /@meshless\//.test(url)) return 'meshless';
  if (/node_modules\/.*undici/.test(url)) return 'undici';
  if (/node_modules\/.*@grpc\/grpc-js/.test(url)) return 'grpc-js';
  if (/\/bench\//.test(url)) return 'bench harness';
  if (/^node:(_http|http|internal\/http)/.test(url)) return 'node http';
  if (/^node:(_tls|tls|internal\/tls|net|internal\/net|internal\/stream_base|internal\/streams|stream|internal\/crypto|crypto)/.test(url)) return 'node tls/net/streams';
  if (url === '') return 'native';
  return 'other';
}

handle('profileStart', async () => {
  session ??= new Session();
  session.connect();
  await post('Profiler.enable');
  // V8's default 1 ms sampling: a finer one costs the process noticeably more CPU.
  await post('Profiler.setSamplingInterval', { interval: 1000 });
  await post('Profiler.start');
  cpuAtStart = process.cpuUsage();
  return {};
});

handle('profileStop', async (m) => {
  const cpu = process.cpuUsage(cpuAtStart);
  const { profile } = await post<{ profile: Profile }>('Profiler.stop');
  await post('Profiler.disable');
  session!.disconnect();
  const top = Number(m.top ?? 12);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Each sample counts for the code that caused it: a frame of meshless, undici, grpc-js or the
  // bench harness owns everything it calls (node internals, native work such as certificate parsing or
  // socket writes); node-internal frames with no such caller (TLS handshakes driven by libuv, the
  // HTTP parser) count as node's, and a native function as its nearest JavaScript caller's.
  // A pass-through frame owns its own time but not what it forwards to: the HTTP server's request
  // gate wraps the server's emit, so every listener of every event (Node's own HTTP connection
  // set-up included) runs under it; what those listeners do belongs to whoever called emit.
  const OWNERS = new Set(['meshless', 'undici', 'grpc-js', 'bench harness']);
  const PASS_THROUGH = new Set(['gatedEmit']);
  const ownerCache = new Map<number, string>();
  const calleeOwnerOf = (id: number): string => {
    const cf = byId.get(id)!.callFrame;
    if (PASS_THROUGH.has(cf.functionName) && areaOf(cf) === 'meshless') return parent.has(id) ? calleeOwnerOf(parent.get(id)!) : 'native';
    return ownerOf(id);
  };
  const ownerOf = (id: number): string => {
    const known = ownerCache.get(id);
    if (known !== undefined) return known;
    const cf = byId.get(id)!.callFrame;
    const own = areaOf(cf);
    const up = parent.has(id) ? calleeOwnerOf(parent.get(id)!) : 'native';
    const owner = OWNERS.has(own) || own === 'idle' || own === 'gc' || own === 'native (program)' ? own : OWNERS.has(up) ? up : own === 'native' ? up : own;
    ownerCache.set(id, owner);
    return owner;
  };
  // For meshless's share: the meshless function nearest to each sample (what to cut).
  const frameKey = (cf: CallFrame) =>
    `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/(node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?|packages\/|bench\/)/, '')}:${cf.lineNumber + 1}` : ''}`.trim();
  const nearestMeshless = new Map<number, string | undefined>();
  const meshlessFrameOf = (id: number): string | undefined => {
    if (nearestMeshless.has(id)) return nearestMeshless.get(id);
    const cf = byId.get(id)!.callFrame;
    const found = areaOf(cf) === 'meshless' && !PASS_THROUGH.has(cf.functionName) ? frameKey(cf) : parent.has(id) ? meshlessFrameOf(parent.get(id)!) : undefined;
    nearestMeshless.set(id, found);
    return found;
  };
  const inMeshless = new Map<string, number>();
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const cf = byId.get(id)!.callFrame;
    const area = ownerOf(id);
    areas.set(area, (areas.get(area) ?? 0) + dt);
    if (area === 'idle') return;
    total += dt;
    if (area === 'meshless') {
      const key = (PASS_THROUGH.has(cf.functionName) ? frameKey(cf) : meshlessFrameOf(id)) ?? '(meshless)';
      inMeshless.set(key, (inMeshless.get(key) ?? 0) + dt);
    }
    const where = cf.url ? `${cf.url.replace(/^.*\/(node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?|packages\/|bench\/)/, '')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const ms = (us: number) => us / 1000;
  return {
    // Samples are wall-clock: on a busy machine a descheduled process still collects them, so
    // the orchestrator scales shares by this process's own CPU time.
    cpuMs: (cpu.user + cpu.system) / 1000,
    busyMs: ms(total),
    areasMs: Object.fromEntries([...areas.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, ms(v)])),
    meshlessTopMs: [...inMeshless.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: ms(us) })),
    topMs: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: ms(us) })),
  };
});
