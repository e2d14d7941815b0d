// A development CA (or two, during a CA rotation) issuing SPIFFE identities into
// Kubernetes-style mounts: each write is the kubelet's atomic ..data swap.
import { join } from 'node:path';
import { createTestCA, kubernetesVolume } from '@meshless/testing';

export class Identities {
  constructor(dir, trustDomain) {
    this.dir = dir;
    this.trustDomain = trustDomain;
    this.mounts = new Map();
  }

  /** Creates the first CA; the bundle trusts it alone. */
  async init() {
    this.issuer = await createTestCA({ trustDomain: this.trustDomain });
    this.trusted = [this.issuer];
    return this.issuer;
  }

  /** A new root for the same trust domain (for a CA rotation). */
  newCA() {
    return createTestCA({ trustDomain: this.trustDomain });
  }

  /** Declares a workload: its SPIFFE ID and its mount directory. */
  mount(name, spiffeId) {
    const dir = join(this.dir, name);
    this.mounts.set(name, { spiffeId, dir, volume: kubernetesVolume(dir), serial: undefined });
    return dir;
  }

  /** Issues the workload's certificate from the current issuer, with the current bundle, into its mount. */
  async issue(name) {
    const m = this.mounts.get(name);
    const issued = await this.issuer.issue({ spiffeId: m.spiffeId, dnsNames: ['localhost'], ttlMs: 3_600_000 });
    await m.volume.write({ 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': this.trusted.map((ca) => ca.certPem).join('') });
    m.serial = issued.serialNumber;
    return issued.serialNumber;
  }

  async close() {
    for (const m of this.mounts.values()) await m.volume.close();
  }
}
