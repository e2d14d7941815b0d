import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource, silentLogger, type FileSource } from '@meshless/core';
import { kubernetesVolume, type IssuedCertificate, type KubernetesVolume } from '@meshless/testing';

export interface Mounted {
  volume: KubernetesVolume;
  source: FileSource;
  write(issued: IssuedCertificate, ca?: string): Promise<void>;
  close(): Promise<void>;
}

/** A Kubernetes-style volume in a fresh temp dir, with a fileSource watching it. */
export async function mount(issued: IssuedCertificate, ca = issued.ca): Promise<Mounted> {
  const dir = await mkdtemp(join(tmpdir(), 'meshless-grpc-'));
  const volume = kubernetesVolume(dir);
  const write = (i: IssuedCertificate, bundle = i.ca) => volume.write({ 'tls.crt': i.cert, 'tls.key': i.key, 'ca.crt': bundle });
  await write(issued, ca);
  const source = await fileSource({ dir }, { logger: silentLogger, recheckIntervalMs: 0 });
  return {
    volume,
    source,
    write,
    async close() {
      await source.close();
      await volume.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
